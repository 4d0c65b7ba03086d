using System.Numerics.Tensors;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// Deterministic reductions over rows: rows are cut into fixed chunks (not per worker), each chunk
/// is summed in order, then the chunk sums are added in order. The result is the same bit for bit
/// whatever the thread count.
/// </summary>
public static unsafe class Reduce
{
    public const int RowsPerChunk = 64;

    [ThreadStatic] private static float[]? partials;

    /// <summary>A caller-thread scratch of at least n floats, reused across calls.</summary>
    internal static float[] Partials(int n)
    {
        var p = partials;
        if (p == null || p.Length < n) partials = p = GC.AllocateUninitializedArray<float>(n, pinned: true);
        return p;
    }

    private struct ColumnSumBody : ParallelFor.IRangeBody
    {
        public float* X, Partial;
        public int Rows, Cols;
        public void Run(int begin, int end)
        {
            for (int chunk = begin; chunk < end; chunk++)
            {
                var acc = new Span<float>(Partial + (long)chunk * Cols, Cols);
                acc.Clear();
                int r1 = Math.Min(Rows, (chunk + 1) * RowsPerChunk);
                for (int r = chunk * RowsPerChunk; r < r1; r++)
                    TensorPrimitives.Add(acc, new ReadOnlySpan<float>(X + (long)r * Cols, Cols), acc);
            }
        }
    }

    /// <summary>sum[c] += Σ_r x[r, c] (the bias gradient of a linear layer).</summary>
    public static void AddColumnSums(ReadOnlySpan<float> x, int rows, int cols, Span<float> sum)
    {
        if (x.Length < (long)rows * cols || sum.Length < cols) throw new ArgumentException("column sum: buffer too small");
        int chunks = (rows + RowsPerChunk - 1) / RowsPerChunk;
        var part = Partials(chunks * cols);
        fixed (float* px = x, pp = part)
        {
            ParallelFor.Run(chunks, new ColumnSumBody { X = px, Partial = pp, Rows = rows, Cols = cols }, (long)RowsPerChunk * cols);
        }
        for (int chunk = 0; chunk < chunks; chunk++)
            TensorPrimitives.Add(sum[..cols], part.AsSpan(chunk * cols, cols), sum[..cols]);
    }

    /// <summary>Σ x² in double, in fixed chunks (for the global gradient norm).</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        const int chunk = 1 << 16;
        double total = 0;
        for (int i = 0; i < x.Length; i += chunk)
        {
            var s = x.Slice(i, Math.Min(chunk, x.Length - i));
            total += TensorPrimitives.SumOfSquares(s);
        }
        return total;
    }
}
