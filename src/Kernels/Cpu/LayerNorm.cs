using System.Numerics.Tensors;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// LayerNorm over the last dimension: y = (x − mean) · rstd · γ + β, with rstd = 1/√(var + eps)
/// (biased variance, as PyTorch). The forward keeps mean and rstd per row for the backward.
/// </summary>
public static unsafe class LayerNorm
{
    private struct ForwardBody : ParallelFor.IRangeBody
    {
        public float* X, Residual, Sum, Gamma, Beta, Y, Mean, Rstd;
        public int Cols;
        public float Eps, P;
        public uint Key;
        public void Run(int begin, int end)
        {
            var gamma = new ReadOnlySpan<float>(Gamma, Cols);
            var beta = new ReadOnlySpan<float>(Beta, Cols);
            Span<float> keep = Residual != null && P > 0f ? stackalloc float[Cols] : default;
            for (int r = begin; r < end; r++)
            {
                var x = new Span<float>(X + (long)r * Cols, Cols);
                var y = new Span<float>(Y + (long)r * Cols, Cols);
                if (Residual != null)
                {
                    // sum = residual + dropout(x), the dropout mask indexed by the element's flat index
                    var sum = new Span<float>(Sum + (long)r * Cols, Cols);
                    if (P > 0f)
                    {
                        Dropout.Multipliers(keep, P, Key, (uint)((long)r * Cols));
                        TensorPrimitives.Multiply(x, keep, sum);
                    }
                    else if (Sum != X) x.CopyTo(sum);
                    TensorPrimitives.Add(sum, new ReadOnlySpan<float>(Residual + (long)r * Cols, Cols), sum);
                    x = sum;
                }
                float mean = TensorPrimitives.Sum(x) / Cols;
                // two-pass variance: Σ(x − mean)² is exact enough where E[x²] − mean² is not
                TensorPrimitives.Subtract(x, mean, y);
                float variance = TensorPrimitives.SumOfSquares(y) / Cols;
                float rstd = 1f / MathF.Sqrt(variance + Eps);
                TensorPrimitives.Multiply(y, rstd, y);
                TensorPrimitives.FusedMultiplyAdd(y, gamma, beta, y);
                Mean[r] = mean;
                Rstd[r] = rstd;
            }
        }
    }

    /// <summary>y = LayerNorm(x) (the embeddings' LayerNorm).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        Span<float> y, Span<float> mean, Span<float> rstd, int rows, int cols, float eps)
    {
        Check(x, y, mean, rstd, gamma, beta, rows, cols);
        fixed (float* px = x, pg = gamma, pb = beta, py = y, pm = mean, pr = rstd)
            ParallelFor.Run(rows, new ForwardBody { X = px, Gamma = pg, Beta = pb, Y = py, Mean = pm, Rstd = pr, Cols = cols, Eps = eps }, cols * 4L);
    }

    /// <summary>sum = residual + dropout(x), then y = LayerNorm(sum): a post-LN block's "dropout, add
    /// &amp; norm" in one pass over the rows (each row is summed while it is in L1). sum, which the
    /// backward needs, may be x itself. p = 0: no dropout.</summary>
    public static void DropoutResidualForward(ReadOnlySpan<float> x, ReadOnlySpan<float> residual, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        Span<float> sum, Span<float> y, Span<float> mean, Span<float> rstd, int rows, int cols, float eps, float p, uint key)
    {
        Check(x, y, mean, rstd, gamma, beta, rows, cols);
        if (residual.Length < (long)rows * cols || sum.Length < (long)rows * cols) throw new ArgumentException($"layernorm: residual or sum too small for {rows}×{cols}");
        fixed (float* px = x, pres = residual, ps = sum, pg = gamma, pb = beta, py = y, pm = mean, pr = rstd)
            ParallelFor.Run(rows, new ForwardBody { X = px, Residual = pres, Sum = ps, Gamma = pg, Beta = pb, Y = py, Mean = pm, Rstd = pr, Cols = cols, Eps = eps, P = p, Key = key }, cols * 6L);
    }

    private struct BackwardBody : ParallelFor.IRangeBody
    {
        public float* DY, X, Mean, Rstd, Gamma, DX, Partial;
        public int Rows, Cols;
        public bool Accumulate;
        public void Run(int begin, int end)
        {
            var gamma = new ReadOnlySpan<float>(Gamma, Cols);
            Span<float> xhat = stackalloc float[Cols];
            Span<float> g = stackalloc float[Cols];
            for (int chunk = begin; chunk < end; chunk++)
            {
                var dgamma = new Span<float>(Partial + (long)chunk * 2 * Cols, Cols);
                var dbeta = new Span<float>(Partial + ((long)chunk * 2 + 1) * Cols, Cols);
                dgamma.Clear(); dbeta.Clear();
                int r1 = Math.Min(Rows, (chunk + 1) * Reduce.RowsPerChunk);
                for (int r = chunk * Reduce.RowsPerChunk; r < r1; r++)
                {
                    var x = new ReadOnlySpan<float>(X + (long)r * Cols, Cols);
                    var dy = new ReadOnlySpan<float>(DY + (long)r * Cols, Cols);
                    var dx = new Span<float>(DX + (long)r * Cols, Cols);
                    float rstd = Rstd[r];
                    TensorPrimitives.Subtract(x, Mean[r], xhat);
                    TensorPrimitives.Multiply(xhat, rstd, xhat);
                    // parameter gradients: dγ += dy·x̂, dβ += dy
                    TensorPrimitives.FusedMultiplyAdd(dy, xhat, dgamma, dgamma);
                    TensorPrimitives.Add(dbeta, dy, dbeta);
                    // input gradient: dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)), g = dy·γ
                    TensorPrimitives.Multiply(dy, gamma, g);
                    float meanG = TensorPrimitives.Sum(g) / Cols;
                    float meanGx = TensorPrimitives.Dot(g, xhat) / Cols;
                    TensorPrimitives.Subtract(g, meanG, g);
                    TensorPrimitives.FusedMultiplyAdd(xhat, -meanGx, g, g);
                    if (Accumulate) TensorPrimitives.FusedMultiplyAdd(g, rstd, dx, dx);
                    else TensorPrimitives.Multiply(g, rstd, dx);
                }
            }
        }
    }

    /// <summary>dx (+)= ∂L/∂x; dγ += Σ dy·x̂; dβ += Σ dy (summed in fixed row chunks: deterministic).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> gamma, Span<float> dx, Span<float> dgamma, Span<float> dbeta, int rows, int cols, bool accumulateDx = false)
    {
        Check(x, dy, mean, rstd, gamma, dgamma, rows, cols);
        if (dx.Length < (long)rows * cols || dbeta.Length < cols) throw new ArgumentException("layernorm backward: buffer too small");
        int chunks = (rows + Reduce.RowsPerChunk - 1) / Reduce.RowsPerChunk;
        var part = Reduce.Partials(chunks * 2 * cols);
        fixed (float* pdy = dy, px = x, pm = mean, pr = rstd, pg = gamma, pdx = dx, pp = part)
            ParallelFor.Run(chunks, new BackwardBody { DY = pdy, X = px, Mean = pm, Rstd = pr, Gamma = pg, DX = pdx, Partial = pp, Rows = rows, Cols = cols, Accumulate = accumulateDx }, (long)Reduce.RowsPerChunk * cols * 8);
        for (int chunk = 0; chunk < chunks; chunk++)
        {
            TensorPrimitives.Add(dgamma[..cols], part.AsSpan(chunk * 2 * cols, cols), dgamma[..cols]);
            TensorPrimitives.Add(dbeta[..cols], part.AsSpan((chunk * 2 + 1) * cols, cols), dbeta[..cols]);
        }
    }

    private static void Check(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd,
        ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, int rows, int cols)
    {
        long n = (long)rows * cols;
        if (a.Length < n || b.Length < n || mean.Length < rows || rstd.Length < rows || gamma.Length < cols || beta.Length < cols)
            throw new ArgumentException($"layernorm: buffers too small for {rows}×{cols}");
    }
}
