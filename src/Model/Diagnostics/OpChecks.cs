using System.Numerics.Tensors;
using Cpu = MixupBert.Kernels.Cpu;
using Cuda = MixupBert.Kernels.Cuda;
using static MixupBert.Model.Diagnostics.GpuSelfTest;

namespace MixupBert.Model.Diagnostics;

/// <summary>
/// One check per op family: the CPU op (Cpu.X.Forward) and its CUDA launcher of the same name
/// (Cuda.X.Forward) on the same random inputs, outputs compared within the stated tolerances.
/// Gradient outputs start from random values where the op accumulates, NaN where it overwrites.
/// On bf16 activations the inputs are bf16-exact on both sides, so an output the kernel computes and
/// stores in float32 from them (weight and table gradients, norms, the loss, AdamW) keeps the float32
/// tolerance; only what is stored as bf16 gets bf16's (<see cref="SelfTestDevice"/>).
/// </summary>
internal static class OpChecks
{
    /// <summary>Uniform in [−scale, scale], exact in the device's activation type (both sides see the same inputs).</summary>
    private static float[] Random(SelfTestDevice d, Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return d.Exact(a);
    }

    /// <summary>Partners and λ for a batch: a rotation, λ = 1 for example 0 (the unmixed edge case).</summary>
    private static (int[] Partner, float[] Lambda) SomeMix(Random rng, int batch) =>
        (Enumerable.Range(0, batch).Select(b => (b + 1) % batch).ToArray(),
         Enumerable.Range(0, batch).Select(b => b == 0 ? 1f : (float)rng.NextDouble()).ToArray());

    public static void Embedding(Checker c, SelfTestDevice d, int batch, int seqLen, int channels, bool mixed)
    {
        var rng = new Random(batch * 1000 + seqLen);
        int n = batch * seqLen, vocab = 23;
        var word = Random(d, rng, vocab * channels); var pos = Random(d, rng, seqLen * channels); var type = Random(d, rng, 2 * channels);
        var ids = Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
        var types = Enumerable.Range(0, n).Select(_ => rng.Next(2)).ToArray();
        var (partner, lambda) = mixed ? SomeMix(rng, batch) : (Array.Empty<int>(), Array.Empty<float>());
        nint dIds = d.Up(ids), dTypes = d.Up(types), dPartner = mixed ? d.Up(partner) : 0, dLambda = mixed ? d.Up(lambda) : 0;

        var expected = new float[n * channels];
        Cpu.Embedding.Forward(ids, types, word, pos, type, expected, batch, seqLen, channels, partner, lambda);
        nint dOut = d.EmptyX(n * channels);
        Cuda.Embedding.Forward(d.Context, dIds, dTypes, d.Up(word), d.Up(pos), d.Up(type), dOut, batch, seqLen, channels, dPartner, dLambda);
        c.Close(expected, d.DownX(dOut, n * channels), d.Elementwise, "embedding_forward");

        var g = Random(d, rng, n * channels);
        var dw = Random(d, rng, word.Length); var dp = Random(d, rng, pos.Length); var dt = Random(d, rng, type.Length); // accumulate onto existing values
        nint gdw = d.Up(dw), gdp = d.Up(dp), gdt = d.Up(dt);
        Cpu.Embedding.Backward(g, ids, types, dw, dp, dt, batch, seqLen, channels, partner, lambda);
        using var buckets = new Cuda.Embedding.Buckets(d.Gpu);
        buckets.Build(ids, types, batch, seqLen, vocab, 2, partner, lambda);
        Cuda.Embedding.Backward(d.Context, d.UpX(g), buckets, gdw, gdp, gdt, batch, seqLen, channels);
        c.Close(dw, d.Down(gdw, dw.Length), Float32Reduction, "embedding_backward word");
        c.Close(dp, d.Down(gdp, dp.Length), Float32Reduction, "embedding_backward position");
        c.Close(dt, d.Down(gdt, dt.Length), Float32Reduction, "embedding_backward type");
    }

    public static void LayerNorm(Checker c, SelfTestDevice d, int rows, int cols, float p, bool residual)
    {
        var rng = new Random(rows + cols);
        var x = Random(d, rng, rows * cols, 3f); var r = Random(d, rng, rows * cols); var gamma = Random(d, rng, cols); var beta = Random(d, rng, cols);
        uint key = Cpu.Dropout.Key(5, 6, 7);
        var sum = residual ? new float[rows * cols] : x;
        var y = new float[rows * cols]; var mean = new float[rows]; var rstd = new float[rows];
        nint dy = d.EmptyX(rows * cols), dsum = residual ? d.EmptyX(rows * cols) : d.UpX(x), dmean = d.Empty(rows), drstd = d.Empty(rows);
        nint dGamma = d.Up(gamma), dBeta = d.Up(beta);
        if (residual)
        {
            // the GPU adds the linear layer's bias before the dropout; on the CPU the GEMM added it
            var bias = Random(d, rng, cols);
            var biased = new float[rows * cols];
            for (int i = 0; i < biased.Length; i++) biased[i] = x[i] + bias[i % cols];
            Cpu.LayerNorm.DropoutResidualForward(biased, r, gamma, beta, sum, y, mean, rstd, rows, cols, 1e-12f, p, key);
            Cuda.LayerNorm.DropoutResidualForward(d.Context, d.UpX(x), d.Up(bias), d.UpX(r), dGamma, dBeta, dsum, dy, dmean, drstd, rows, cols, 1e-12f, p, key);
            c.Close(sum, d.DownX(dsum, sum.Length), d.Elementwise, "layernorm_forward sum (dropout and residual)");
            d.Exact(sum); // the backward below reads the sum as the device stored it
        }
        else
        {
            Cpu.LayerNorm.Forward(x, gamma, beta, y, mean, rstd, rows, cols, 1e-12f);
            Cuda.LayerNorm.Forward(d.Context, dsum, dGamma, dBeta, dy, dmean, drstd, rows, cols, 1e-12f);
        }
        c.Close(y, d.DownX(dy, y.Length), d.Reduction, "layernorm_forward out");
        c.Close(mean, d.Down(dmean, rows), d.Reduction, "layernorm_forward mean");
        c.Close(rstd, d.Down(drstd, rows), d.Reduction, "layernorm_forward rstd");

        var g = Random(d, rng, rows * cols);
        var dx = new float[rows * cols]; var dgamma = Random(d, rng, cols); var dbeta = Random(d, rng, cols);
        nint gdg = d.Up(dgamma), gdb = d.Up(dbeta), gdx = d.EmptyX(rows * cols);
        Cpu.LayerNorm.Backward(g, sum, mean, rstd, gamma, dx, dgamma, dbeta, rows, cols);
        Cuda.LayerNorm.Backward(d.Context, d.UpX(g), dsum, dmean, drstd, dGamma, gdx, gdg, gdb, rows, cols);
        c.Close(dx, d.DownX(gdx, dx.Length), d.Reduction, "layernorm_backward dx");
        c.Close(dgamma, d.Down(gdg, cols), d.Reduction, "layernorm_backward dgamma");
        c.Close(dbeta, d.Down(gdb, cols), d.Reduction, "layernorm_backward dbeta");
        if (p > 0f) LayerNormDropouts(c, d, g, sum, mean, rstd, gamma, dx, dsum, dmean, drstd, dGamma, rows, cols, p, key);
    }

    /// <summary>The two dropouts fused into the LayerNorm backward: through the residual branch's dropout
    /// after it (dx_dropped), and before it on dy (the embeddings').</summary>
    private static void LayerNormDropouts(Checker c, SelfTestDevice d, float[] g, float[] sum, float[] mean, float[] rstd, float[] gamma,
        float[] dx, nint dsum, nint dmean, nint drstd, nint dGamma, int rows, int cols, float p, uint key)
    {
        int n = rows * cols;
        var dropped = new float[n];
        Cpu.Dropout.Backward(dx, dropped, p, key, accumulate: false);
        var branchBias = Random(d, new Random(cols), cols); var gBranchBias = d.Up(branchBias);   // accumulates
        Cpu.Reduce.AddColumnSums(dropped, rows, cols, branchBias);
        nint gdx = d.EmptyX(n), gdropped = d.EmptyX(n);
        Cuda.LayerNorm.BackwardAndDropout(d.Context, d.UpX(g), dsum, dmean, drstd, dGamma, gdx, gdropped, d.Zeros(cols), d.Zeros(cols), gBranchBias,
            rows, cols, p, key);
        c.Close(dx, d.DownX(gdx, n), d.Reduction, "layernorm_backward dx (with dx_dropped)");
        c.Close(dropped, d.DownX(gdropped, n), d.Reduction, "layernorm_backward dx_dropped (the branch's dropout)");
        c.Close(branchBias, d.Down(gBranchBias, cols), d.Reduction, "layernorm_backward the branch's bias gradient (column sums of dx_dropped)");

        var masked = new float[n];
        Cpu.Dropout.Backward(g, masked, p, key, accumulate: false);
        var dx2 = new float[n]; var dgamma = new float[cols]; var dbeta = new float[cols];
        Cpu.LayerNorm.Backward(masked, sum, mean, rstd, gamma, dx2, dgamma, dbeta, rows, cols);
        nint gdx2 = d.EmptyX(n), gdg = d.Zeros(cols), gdb = d.Zeros(cols);
        Cuda.LayerNorm.DropoutAndBackward(d.Context, d.UpX(g), dsum, dmean, drstd, dGamma, gdx2, gdg, gdb, rows, cols, p, key);
        c.Close(dx2, d.DownX(gdx2, n), d.Reduction, "layernorm_backward with dropout on dy: dx");
        c.Close(dgamma, d.Down(gdg, cols), d.Reduction, "layernorm_backward with dropout on dy: dgamma");
        c.Close(dbeta, d.Down(gdb, cols), d.Reduction, "layernorm_backward with dropout on dy: dbeta");
    }

    public static void Linear(Checker c, SelfTestDevice d, int rows, int inF, int outF)
    {
        var rng = new Random(rows * inF);
        var x = Random(d, rng, rows * inF, 2f); var w = Random(d, rng, outF * inF); var b = Random(d, rng, outF);
        nint dx = d.UpX(x), dw = d.UpX(w), db = d.Up(b); // w as the GEMMs read it (the bf16 copy under bf16)
        var y = new float[rows * outF];
        Cpu.Linear.Forward(x, w, b, y, rows, inF, outF);
        nint dy = d.EmptyX(rows * outF);
        Cuda.Linear.Forward(d.Context, dx, dw, db, dy, rows, inF, outF);
        c.Close(y, d.DownX(dy, y.Length), d.Reduction, "linear forward (GEMM + add_bias)");

        var gelu = new float[rows * outF];
        Cpu.Linear.ForwardGelu(x, w, b, y, gelu, rows, inF, outF);
        nint dgelu = d.EmptyX(rows * outF);
        Cuda.Linear.ForwardGelu(d.Context, dx, dw, db, dy, dgelu, rows, inF, outF);
        var pre = d.DownX(dy, y.Length);   // the device keeps the pre-activation without its bias
        for (int i = 0; i < pre.Length; i++) pre[i] += b[i % outF];
        c.Close(y, pre, d.Reduction, "linear forward with GELU: pre-activation (+ bias)");
        c.Close(gelu, d.DownX(dgelu, gelu.Length), d.Reduction, "bias_gelu_forward");
        var dgeluIn = Random(d, rng, rows * outF); var geluGrad = new float[rows * outF];
        Cpu.Activations.GeluBackward(y, dgeluIn, geluGrad);
        var geluBias = Random(d, rng, outF); nint dGeluBias = d.Up(geluBias);   // accumulates
        Cpu.Reduce.AddColumnSums(geluGrad, rows, outF, geluBias);
        nint dGeluGrad = d.EmptyX(rows * outF);
        Cuda.Activations.GeluBackward(d.Context, dy, db, d.UpX(dgeluIn), dGeluGrad, rows, outF, dGeluBias);
        c.Close(geluGrad, d.DownX(dGeluGrad, geluGrad.Length), d.Reduction, "gelu_backward (pre-activation + bias)");
        // bf16: the sums are float32 but their terms carry the pre-activation's rounding (the CPU's is exact)
        c.Close(geluBias, d.Down(dGeluBias, outF), d.Reduction, "gelu_backward's bias gradient (column sums of dx)");

        var g = Random(d, rng, rows * outF);
        // dW is overwritten (beta 0): NaN on both sides until the GEMM writes it; db accumulates
        var gx = new float[rows * inF]; var gw = new float[w.Length]; var gb = Random(d, rng, outF);
        Array.Fill(gw, float.NaN);
        nint dgw = d.Empty(gw.Length), dgb = d.Up(gb), dgx = d.EmptyX(rows * inF);
        Cpu.Linear.Backward(g, x, w, gx, gw, gb, rows, inF, outF);
        Cuda.Linear.Backward(d.Context, d.UpX(g), dx, dw, dgx, dgw, dgb, rows, inF, outF);
        c.Close(gx, d.DownX(dgx, gx.Length), d.Reduction, "linear backward dx");
        c.Close(gw, d.Down(dgw, gw.Length), Float32Reduction, "linear backward dW");
        c.Close(gb, d.Down(dgb, gb.Length), Float32Reduction, "column_sum_partial + add_chunk_partials (db)");
    }

    /// <summary>The elementwise kernels over n elements; <paramref name="unaligned"/>: every buffer one
    /// element past a 16-byte boundary, so the kernels must take their scalar path (no 128-bit packs).</summary>
    public static void Elementwise(Checker c, SelfTestDevice d, int n, bool unaligned = false)
    {
        var rng = new Random(n);
        var x = Random(d, rng, n, 5f); var g = Random(d, rng, n);
        int shift = unaligned ? (d.Activations == Cuda.DType.BF16 ? 2 : 4) : 0;
        nint Up(float[] a) => unaligned ? d.UpX([0f, .. a]) + shift : d.UpX(a);
        nint dx = Up(x), dg = Up(g), dout = (unaligned ? d.EmptyX(n + 1) : d.EmptyX(n)) + shift;
        var y = new float[n];

        Cpu.Activations.GeluBackward(x, g, y);
        Cuda.Activations.GeluBackward(d.Context, dx, 0, dg, dout, 1, n);
        c.Close(y, d.DownX(dout, n), d.Elementwise, "gelu_backward");

        Cpu.Activations.TanhForward(x, y);
        Cuda.Activations.TanhForward(d.Context, dx, dout, n);
        c.Close(y, d.DownX(dout, n), d.Elementwise, "tanh_forward");
        var t = d.Exact((float[])y.Clone());
        Cpu.Activations.TanhBackward(t, g, y);
        Cuda.Activations.TanhBackward(d.Context, Up(t), dg, dout, n);
        c.Close(y, d.DownX(dout, n), d.Elementwise, "tanh_backward");

        uint key = Cpu.Dropout.Key(1, 2, 3);
        Cpu.Dropout.Forward(x, y, 0.3f, key);
        Cuda.Dropout.Forward(d.Context, dx, dout, n, 0.3f, key);
        c.Exact(d.Exact(y), d.DownX(dout, n), "dropout_forward mask (the same hash, bit for bit)");
        var acc = Random(d, rng, n); nint dacc = Up(acc);
        Cpu.Dropout.Backward(g, acc, 0.3f, key, accumulate: true);
        Cuda.Dropout.Backward(d.Context, dg, dacc, n, 0.3f, key, accumulate: true);
        c.Close(acc, d.DownX(dacc, n), d.Elementwise, "dropout_backward");
    }

    /// <summary>Attention over a QKV projection's output: with <paramref name="bias"/>, the device gets the
    /// output without its bias and the bias apart (its kernels add it as they read Q, K and V), the CPU
    /// their sum.</summary>
    /// <param name="gaps">Masks whole stretches instead of a few trailing keys: batch entry 0 entirely (its
    /// rows attend to nothing: ctx 0, log-sum-exp +∞), entry 1 its first 70 keys (whole key tiles masked
    /// before valid ones: the online softmax's running max starts at −∞), the others' last keys.</param>
    public static void Attention(Checker c, SelfTestDevice d, int batch, int seqLen, int channels, int heads, float dropout, bool bias = true,
        bool gaps = false)
    {
        var rng = new Random(batch * 100 + seqLen);
        int n = batch * seqLen;
        var projected = Random(d, rng, n * 3 * channels);
        // the bias at a quarter of the projection's scale: at full scale the scores spread to ±11 and the
        // softmax saturates, where bf16's backward loses more than its 4u to the cancellation in
        // P·(dP − Σ P·dP) with Σ P·dP = dO·O from the bf16 O (up to 7× the bound, measured; FlashAttention
        // takes that sum from its bf16 O as well)
        var qkvBias = bias ? Random(d, rng, 3 * channels, 0.25f) : null;
        var qkv = qkvBias == null ? projected : projected.Select((v, i) => v + qkvBias[i % (3 * channels)]).ToArray();
        var mask = Enumerable.Range(0, n).Select(i => (i / seqLen, i % seqLen) switch
        {
            (0, _) when gaps => 0f,
            (1, var t) when gaps => t < 70 ? 0f : 1f,
            (var b, var t) => t < Math.Max(1, seqLen - 3 * b) ? 1f : 0f,
        }).ToArray();
        var probs = new float[batch * heads * seqLen * seqLen]; var ctx = new float[n * channels];
        uint key = Cpu.Dropout.Key(9, 8, 7);
        Cpu.Attention.Forward(qkv, mask, probs, ctx, batch, seqLen, channels, heads, dropout, key);

        long nc = (long)n * channels, bhtt = (long)batch * heads * seqLen * seqLen;
        bool fused = Cuda.Attention.Fused(channels, heads);
        string kernels = Cuda.Attention.FusedKernels(d.Context, channels, heads);
        var s = Cuda.Attention.Scratch.Allocate(d.EmptyX, d.Empty, batch, seqLen, channels, heads);
        long saved = Cuda.Attention.SavedElements(batch, seqLen, channels, heads);
        nint dqkv = d.UpX(projected), dbias = qkvBias == null ? 0 : d.Up(qkvBias), dmask = d.Up(mask), dsaved = fused ? d.Empty(saved) : d.EmptyX(saved), dctx = d.EmptyX(nc);
        Cuda.Attention.Forward(d.Context, dqkv, dbias, dmask, dsaved, dctx, batch, seqLen, channels, heads, dropout, key, s);
        // with gaps, batch entry 0 attends to nothing: its results are exact (0, or a log-sum-exp of +∞), and
        // they are compared apart so that their zeros do not shrink the others' RMS-scaled tolerance
        void Compare(float[] expected, float[] actual, long perEntry, string what)
        {
            int skip = gaps ? (int)perEntry : 0;
            if (gaps) c.Exact(expected.AsSpan(0, skip), actual.AsSpan(0, skip), what + ", batch entry 0 (every key masked)");
            c.Close(expected.AsSpan(skip), actual.AsSpan(skip), d.Reduction, what);
        }
        if (fused) Compare(LogSumExps(qkv, mask, batch, seqLen, channels, heads), d.Down(dsaved, Cuda.Attention.LogSumExps(batch, seqLen, heads)), (long)heads * seqLen,
            $"attention_forward_{kernels} (log-sum-exp per query)");
        else Compare(probs, d.DownX(dsaved, bhtt), (long)heads * seqLen * seqLen, "attention_softmax_forward (probs)");
        Compare(ctx, d.DownX(dctx, nc), (long)seqLen * channels, fused ? $"attention_forward_{kernels} (ctx)" : "attention forward (ctx)");

        var g = Random(d, rng, n * channels);
        var grad = new float[n * 3 * channels];
        Cpu.Attention.Backward(g, qkv, probs, grad, batch, seqLen, channels, heads, dropout, key);
        nint dgrad = d.EmptyX(3 * nc);
        Cuda.Attention.Backward(d.Context, d.UpX(g), dqkv, dbias, dmask, dsaved, dctx, dgrad, batch, seqLen, channels, heads, dropout, key, s);
        Compare(grad, d.DownX(dgrad, 3 * nc), 3L * seqLen * channels, fused ? $"attention backward {kernels} (dqkv)" : "attention backward (dqkv)");
    }

    /// <summary>log Σ_j exp(q·k_j / √d) over each query's unmasked keys, in double; +∞ when it has none.</summary>
    private static float[] LogSumExps(float[] qkv, float[] mask, int batch, int seqLen, int channels, int heads)
    {
        int d = channels / heads, ld = 3 * channels;
        var lse = new float[batch * heads * seqLen];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < seqLen; i++)
                {
                    var s = new List<double>();
                    for (int j = 0; j < seqLen; j++)
                    {
                        if (mask[b * seqLen + j] == 0f) continue;
                        double dot = 0;
                        for (int k = 0; k < d; k++) dot += (double)qkv[(b * seqLen + i) * ld + h * d + k] * qkv[(b * seqLen + j) * ld + channels + h * d + k];
                        s.Add(dot / Math.Sqrt(d));
                    }
                    double mx = s.Count > 0 ? s.Max() : 0;
                    lse[(b * heads + h) * seqLen + i] = s.Count > 0 ? (float)(mx + Math.Log(s.Sum(x => Math.Exp(x - mx)))) : float.PositiveInfinity;
                }
        return lse;
    }

    public static void MixedCrossEntropy(Checker c, SelfTestDevice d)
    {
        var rng = new Random(3);
        int batch = 5, classes = 3;
        var logits = Random(d, rng, batch * classes, 3f);
        int[] labels = [0, 2, 1, 1, 0], partner = [3, 0, 4, 1, 2];
        float[] lambda = [0.2f, 1f, 0.5f, 0f, 0.9f];
        var probs = new float[batch * classes]; var losses = new float[batch]; var dlogits = new float[batch * classes];
        double loss = Cpu.CrossEntropy.Forward(logits, labels, partner, lambda, probs, losses, dlogits, batch, classes);

        nint dl = d.Empty(batch), dp = d.Empty(batch * classes), dg = d.EmptyX(batch * classes), stats = d.Empty(1);
        Cuda.CrossEntropy.Forward(d.Context, d.UpX(logits), d.Up(labels), d.Up(partner), d.Up(lambda), dp, dl, dg, batch, classes);
        Cuda.CrossEntropy.Mean(d.Context, dl, batch, stats);
        c.Close(probs, d.Down(dp, probs.Length), Float32Reduction, "cross_entropy_forward probs");
        c.Close(losses, d.Down(dl, batch), Float32Reduction, "cross_entropy_forward losses");
        c.Close(dlogits, d.DownX(dg, dlogits.Length), d.Reduction, "cross_entropy_forward dlogits");
        c.Close([(float)loss], d.Down(stats, 1), Float32Reduction, "cross_entropy_mean");
    }

    public static void Mixup(Checker c, SelfTestDevice d, int batch, int rows)
    {
        var rng = new Random(batch + rows);
        int channels = 19, n = batch * rows * channels;
        var x = Random(d, rng, n); var g = Random(d, rng, n);
        var partner = Enumerable.Range(0, batch).Select(_ => rng.Next(batch)).ToArray();
        var lambda = Enumerable.Range(0, batch).Select(_ => (float)rng.NextDouble()).ToArray();
        lambda[0] = 1f;
        if (batch > 1) lambda[1] = 0f;
        nint dout = d.EmptyX(n), dPartner = d.Up(partner), dLambda = d.Up(lambda);

        var y = new float[n];
        Cpu.Mixup.Forward(x, partner, lambda, y, batch, rows, channels);
        Cuda.Mixup.Forward(d.Context, d.UpX(x), dPartner, dLambda, dout, batch, rows, channels);
        c.Close(y, d.DownX(dout, n), d.Elementwise, "mixup_forward");
        Cpu.Mixup.Backward(g, partner, lambda, y, batch, rows, channels);
        Cuda.Mixup.Backward(d.Context, d.UpX(g), dPartner, dLambda, dout, batch, rows, channels);
        c.Close(y, d.DownX(dout, n), d.Elementwise, "mixup_backward");

        // the union mask, with rows as the sequence length and padding that differs per example
        var mask = Enumerable.Range(0, batch * rows).Select(i => i % rows <= i / rows ? 1f : 0f).ToArray();
        var union = new float[batch * rows];
        Cpu.Mixup.UnionMask(mask, partner, lambda, union, batch, rows);
        nint dunion = d.Empty(batch * rows);
        Cuda.Mixup.UnionMask(d.Context, d.Up(mask), dPartner, dLambda, dunion, batch, rows);
        c.Exact(union, d.Down(dunion, union.Length), "mixup_union_mask");
    }

    /// <summary>channels a multiple of 8 takes the backward's 128-bit packs (bf16 and float32), 19 the element path.</summary>
    public static void FirstToken(Checker c, SelfTestDevice d, int batch, int seqLen, int channels)
    {
        var rng = new Random(batch * seqLen + channels);
        var hidden = Random(d, rng, batch * seqLen * channels);
        var first = new float[batch * channels];
        Cpu.FirstToken.Forward(hidden, first, batch, seqLen, channels);
        nint dfirst = d.EmptyX(first.Length), dhidden = d.EmptyX(hidden.Length);
        Cuda.FirstToken.Forward(d.Context, d.UpX(hidden), dfirst, batch, seqLen, channels);
        c.Exact(first, d.DownX(dfirst, first.Length), "first_token_forward");
        Cpu.FirstToken.Backward(first, hidden, batch, seqLen, channels);
        Cuda.FirstToken.Backward(d.Context, dfirst, dhidden, batch, seqLen, channels);
        c.Exact(hidden, d.DownX(dhidden, hidden.Length), "first_token_backward");
    }

    public static void RowNorm(Checker c, SelfTestDevice d, int rows, int cols)
    {
        var rng = new Random(rows * 7 + cols);
        var x = Random(d, rng, rows * cols, 2f);
        var y = new float[rows];
        Cpu.RowNorm.Forward(x, y, rows, cols);
        nint dy = d.Empty(rows);
        Cuda.RowNorm.Forward(d.Context, d.UpX(x), dy, rows, cols);
        c.Close(y, d.Down(dy, rows), Float32Reduction, "row_norm_forward");
    }

    /// <summary>The norm over n floats: more than 32 partials (n > 32 · 4096) put two or more on some of
    /// global_norm_clip's lanes and a partial on every lane; the shuffle tree brings them to lane 0.</summary>
    public static void GlobalNorm(Checker c, SelfTestDevice d, int n)
    {
        var g = Random(d, new Random(n), n, 0.5f);
        nint stats = d.Empty(3);
        float clip = Cpu.AdamW.GlobalNormClip(g, 1f, out double norm);
        Cuda.AdamW.GlobalNormClip(d.Context, d.Up(g), n, 1f, stats);
        c.True(Cuda.AdamW.NormBlocks(n) > 32, "the check means more partials than lanes");
        c.Close([(float)norm, clip], d.Down(stats, 3).AsSpan(1, 2), Float32Reduction, "squared_norm_partial + global_norm_clip");
    }

    public static void ClipAndAdamW(Checker c, SelfTestDevice d)
    {
        var rng = new Random(4);
        int n = 5000 + 3;
        var p = Random(d, rng, n); var g = Random(d, rng, n, 0.5f); var m = new float[n]; var v = new float[n];
        nint dp = d.Up(p), dg = d.Up(g), dm = d.Zeros(n), dv = d.Zeros(n), stats = d.Empty(3);
        float clip = Cpu.AdamW.GlobalNormClip(g, 1f, out double norm);
        Cuda.AdamW.GlobalNormClip(d.Context, dg, n, 1f, stats);
        c.Close([(float)norm, clip], d.Down(stats, 3).AsSpan(1, 2), Float32Reduction, "squared_norm_partial + global_norm_clip");
        c.True(clip < 1f, "the check means clipping to act");
        // one tensor through the engine's one-launch update, the clip factor read on the device
        using var blocks = new Cuda.AdamW.TensorBlocks(d.Gpu, [new Cpu.AdamW.Tensor(0, n, true)]);
        for (int t = 1; t <= 3; t++)
        {
            var h = new Cpu.AdamW.Hyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
            Cpu.AdamW.Step(p, g, m, v, h, clip);
            Cuda.AdamW.StepTensors(d.Context, blocks, dp, dg, dm, dv, h, stats + 8, clearGradients: false);
        }
        c.Close(p, d.Down(dp, n), Float32Elementwise, "adamw_update_tensors params");
        c.Close(m, d.Down(dm, n), Float32Elementwise, "adamw_update_tensors m");
        c.Close(v, d.Down(dv, n), Float32Elementwise, "adamw_update_tensors v");
    }

    /// <summary>AdamW over several tensors in one launch: blocks that end inside a tensor and at its end,
    /// decay and no-decay tensors side by side, a one-element tensor; the gradients cleared after use, but
    /// for the two tensors marked as overwritten by the backward (the block table puts them last).</summary>
    public static void AdamWOverTensors(Checker c, SelfTestDevice d)
    {
        Cpu.AdamW.Tensor[] tensors = [new(0, 1000, true, GradientOverwritten: true), new(1000, 3, false), new(1003, Cuda.AdamW.ElementsPerBlock + 5, true),
            new(1003 + Cuda.AdamW.ElementsPerBlock + 5, 1, false, GradientOverwritten: true)];
        int n = (int)(tensors[^1].Offset + tensors[^1].Length);
        var rng = new Random(9);
        var p = Random(d, rng, n); var m = new float[n]; var v = new float[n];
        nint dp = d.Up(p), dg = d.Empty(n), dm = d.Zeros(n), dv = d.Zeros(n), clip = d.Up([0.75f]);
        nint dpx = d.EmptyX(n); // the GEMMs' copy of the parameters, in the activations' type
        Cuda.AdamW.CopyToActivations(d.Context, dp, dpx, n);
        c.Exact(d.Exact((float[])p.Clone()), d.DownX(dpx, n), "copy_to_floatx (the parameters rounded once)");
        using var blocks = new Cuda.AdamW.TensorBlocks(d.Gpu, tensors);
        c.True(blocks.Count == 5, $"the block table cuts the tensors into 1 + 1 + 2 + 1 blocks, not {blocks.Count}");
        c.True(blocks.ClearingBlocks == 3, $"the tensors to clear take the table's first 1 + 2 blocks, not {blocks.ClearingBlocks}");
        var g = new float[n];
        for (int t = 1; t <= 3; t++)
        {
            g = Random(d, rng, n, 0.5f);
            d.Gpu.CopyToDevice<float>(dg, g);
            var h = new Cpu.AdamW.Hyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, t);
            Cpu.AdamW.StepTensors(p, g, m, v, tensors, h, 0.75f, clearGradients: true);
            Cuda.AdamW.StepTensors(d.Context, blocks, dp, dg, dm, dv, h, clip, clearGradients: true, paramX: dpx);
        }
        c.Close(p, d.Down(dp, n), Float32Elementwise, "adamw_update_tensors params");
        c.Close(m, d.Down(dm, n), Float32Elementwise, "adamw_update_tensors m");
        c.Close(v, d.Down(dv, n), Float32Elementwise, "adamw_update_tensors v");
        var gAfter = d.Down(dg, n);
        foreach (var t in tensors)
        {
            var cpuAfter = g.AsSpan((int)t.Offset, (int)t.Length); var gpuAfter = gAfter.AsSpan((int)t.Offset, (int)t.Length);
            string what = t.GradientOverwritten ? "left (the backward overwrites it)" : "cleared";
            c.True(t.GradientOverwritten ? TensorPrimitives.MaxMagnitude(cpuAfter) > 0f : TensorPrimitives.MaxMagnitude(cpuAfter) == 0f,
                $"the CPU's gradient at {t.Offset} {what}");
            c.Exact(cpuAfter.ToArray(), gpuAfter.ToArray(), $"adamw_update_tensors' gradient at {t.Offset} {what}");
        }
        c.Exact(d.Exact(d.Down(dp, n)), d.DownX(dpx, n), "adamw_update_tensors' copy of the new parameters (rounded once)");
    }
}
