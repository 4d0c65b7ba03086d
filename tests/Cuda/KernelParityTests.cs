using MixupBert.Kernels.Cpu;
using static MixupBert.Tests.Cuda.Compare;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Cuda;

/// <summary>
/// Every kernel of kernels.cu, run on the CPU through the CUDA shim, against the CPU backend's op,
/// on fresh random inputs of awkward sizes: not multiples of 32, a batch of 1, sequences of
/// length 1 and 512.
/// </summary>
public class KernelParityTests
{
    [Theory]
    [InlineData(3, 7, 37, false)]
    [InlineData(1, 1, 33, false)]
    [InlineData(2, 512, 20, false)]
    [InlineData(3, 9, 45, true)]
    public void Embedding(int batch, int seqLen, int channels, bool mixed)
    {
        var rng = new Random(batch * 1000 + seqLen);
        int n = batch * seqLen, vocab = 23;
        var word = Random(rng, vocab * channels); var pos = Random(rng, seqLen * channels); var type = Random(rng, 2 * channels);
        var ids = Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
        var types = Enumerable.Range(0, n).Select(_ => rng.Next(2)).ToArray();
        var mask = Enumerable.Range(0, n).Select(i => i % seqLen < seqLen - (i / seqLen) ? 1f : 0f).ToArray();
        var partner = Enumerable.Range(0, batch).Select(b => (b + 1) % batch).ToArray();
        var lambda = Enumerable.Range(0, batch).Select(b => b == 0 ? 1f : (float)rng.NextDouble()).ToArray();
        var partnerIds = mixed ? Enumerable.Range(0, n).Select(i => ids[partner[i / seqLen] * seqLen + i % seqLen]).ToArray() : null;

        var expected = new float[n * channels];
        Kernels.Cpu.Embedding.Forward(expected, word, pos, type, ids, types, batch, seqLen, channels, partnerIds, mixed ? lambda : default);
        var expectedMask = (float[])mask.Clone();
        if (mixed) AttentionMask.Union(mask, partner, lambda, expectedMask, batch, seqLen);

        using var d = new ShimDevice();
        nint dOut = d.Empty(n * channels), dMask = d.Empty(n), dIds = d.Up(ids), dTypes = d.Up(types), dPartner = d.Up(partner), dLambda = d.Up(lambda);
        nint dWord = d.Up(word), dPos = d.Up(pos), dType = d.Up(type);
        d.Ops.EmbeddingForward(dOut, dMask, dWord, dPos, dType, dIds, dTypes, d.Up(mask), mixed ? dPartner : 0, mixed ? dLambda : 0, mixed, batch, seqLen, channels);
        Close(expected, d.Down(dOut, n * channels), ElementwiseRel, ElementwiseAbs, "embedding_forward");
        Close(expectedMask, d.Down(dMask, n), 0, 0, "embedding_forward mask");

        var g = Random(rng, n * channels);
        var dw = Random(rng, word.Length); var dp = Random(rng, pos.Length); var dt = Random(rng, type.Length); // accumulate onto existing values
        nint gdw = d.Up(dw), gdp = d.Up(dp), gdt = d.Up(dt);
        Kernels.Cpu.Embedding.Backward(g, dw, dp, dt, ids, types, batch, seqLen, channels, partnerIds, mixed ? lambda : default);
        d.Ops.EmbeddingBackward(d.Up(g), gdw, gdp, gdt, dIds, dTypes, mixed ? dPartner : 0, mixed ? dLambda : 0, mixed, batch, seqLen, channels);
        Close(dw, d.Down(gdw, dw.Length), ReductionRel, ReductionAbs, "embedding_backward word");
        Close(dp, d.Down(gdp, dp.Length), ReductionRel, ReductionAbs, "embedding_backward position");
        Close(dt, d.Down(gdt, dt.Length), ReductionRel, ReductionAbs, "embedding_backward type");
    }

    [Theory]
    [InlineData(37, 45, 0f, false)]
    [InlineData(1, 33, 0f, true)]
    [InlineData(130, 70, 0.2f, true)] // more rows than one reduction chunk
    public void ResidualLayerNorm(int rows, int cols, float p, bool residual)
    {
        var rng = new Random(rows + cols);
        var x = Random(rng, rows * cols, 3f); var r = Random(rng, rows * cols); var gamma = Random(rng, cols); var beta = Random(rng, cols);
        uint key = Kernels.Cpu.Dropout.Key(5, 6, 7);
        // CPU: dropout, add, layernorm, as BertClassifier does them
        var sum = new float[rows * cols];
        Kernels.Cpu.Dropout.Forward(x, sum, p, key);
        if (residual) System.Numerics.Tensors.TensorPrimitives.Add(sum, r, sum);
        var y = new float[rows * cols]; var mean = new float[rows]; var rstd = new float[rows];
        LayerNorm.Forward(sum, gamma, beta, y, mean, rstd, rows, cols, 1e-12f);

        using var d = new ShimDevice();
        nint dy = d.Empty(rows * cols), dsum = d.Empty(rows * cols), dmean = d.Empty(rows), drstd = d.Empty(rows);
        nint dGamma = d.Up(gamma), dBeta = d.Up(beta);
        d.Ops.ResidualLayerNormForward(dy, dsum, dmean, drstd, d.Up(x), residual ? d.Up(r) : 0, dGamma, dBeta, rows, cols, 1e-12f, p, key);
        Close(sum, d.Down(dsum, sum.Length), ElementwiseRel, ElementwiseAbs, "residual_layernorm_forward sum");
        Close(y, d.Down(dy, y.Length), ReductionRel, ReductionAbs, "residual_layernorm_forward out");
        Close(mean, d.Down(dmean, rows), ReductionRel, ReductionAbs, "residual_layernorm_forward mean");
        Close(rstd, d.Down(drstd, rows), ReductionRel, ReductionAbs, "residual_layernorm_forward rstd");

        var g = Random(rng, rows * cols);
        var dx = new float[rows * cols]; var dgamma = Random(rng, cols); var dbeta = Random(rng, cols);
        nint gdg = d.Up(dgamma), gdb = d.Up(dbeta), gdx = d.Empty(rows * cols);
        LayerNorm.Backward(g, sum, mean, rstd, gamma, dx, dgamma, dbeta, rows, cols);
        d.Ops.LayerNormBackward(d.Up(g), dsum, dmean, drstd, dGamma, gdx, gdg, gdb, rows, cols);
        Close(dx, d.Down(gdx, dx.Length), ReductionRel, ReductionAbs, "layernorm_backward dx");
        Close(dgamma, d.Down(gdg, cols), ReductionRel, ReductionAbs, "layernorm_backward dgamma");
        Close(dbeta, d.Down(gdb, cols), ReductionRel, ReductionAbs, "layernorm_backward dbeta");
    }

    [Theory]
    [InlineData(37, 45, 53)]
    [InlineData(1, 1, 1)]
    [InlineData(130, 33, 97)]
    public void LinearWithBiasAndBiasGradient(int rows, int inF, int outF)
    {
        var rng = new Random(rows * inF);
        var x = Random(rng, rows * inF); var w = Random(rng, outF * inF); var b = Random(rng, outF);
        var y = new float[rows * outF];
        Kernels.Cpu.Linear.Forward(x, w, b, y, rows, inF, outF);
        using var d = new ShimDevice();
        nint dx = d.Up(x), dw = d.Up(w), dy = d.Empty(rows * outF);
        d.Ops.LinearForward(dx, dw, d.Up(b), dy, rows, inF, outF);
        Close(y, d.Down(dy, y.Length), ReductionRel, ReductionAbs, "linear forward (GEMM + add_bias)");

        var g = Random(rng, rows * outF);
        var gx = new float[rows * inF]; var gw = Random(rng, w.Length); var gb = Random(rng, outF);
        nint dgw = d.Up(gw), dgb = d.Up(gb), dgx = d.Empty(rows * inF);
        Kernels.Cpu.Linear.Backward(g, x, w, gx, gw, gb, rows, inF, outF);
        d.Ops.LinearBackward(d.Up(g), dx, dw, dgx, dgw, dgb, rows, inF, outF);
        Close(gx, d.Down(dgx, gx.Length), ReductionRel, ReductionAbs, "linear backward dx");
        Close(gw, d.Down(dgw, gw.Length), ReductionRel, ReductionAbs, "linear backward dW");
        Close(gb, d.Down(dgb, gb.Length), ReductionRel, ReductionAbs, "column_sum_partial + add_chunk_partials (db)");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(1000 + 7)]
    public void Elementwise(int n)
    {
        var rng = new Random(n);
        var x = Random(rng, n, 5f); var g = Random(rng, n);
        using var d = new ShimDevice();
        nint dx = d.Up(x), dg = d.Up(g), dout = d.Empty(n);

        var y = new float[n];
        Activations.GeluForward(x, y);
        d.Ops.GeluForward(dx, dout, n);
        Close(y, d.Down(dout, n), ElementwiseRel, ElementwiseAbs, "gelu_forward");
        Activations.GeluBackward(x, g, y);
        d.Ops.GeluBackward(dx, dg, dout, n);
        Close(y, d.Down(dout, n), ElementwiseRel, ElementwiseAbs, "gelu_backward");

        Activations.TanhForward(x, y);
        d.Ops.TanhForward(dx, dout, n);
        Close(y, d.Down(dout, n), ElementwiseRel, ElementwiseAbs, "tanh_forward");
        var t = (float[])y.Clone();
        Activations.TanhBackward(t, g, y);
        d.Ops.TanhBackward(d.Up(t), dg, dout, n);
        Close(y, d.Down(dout, n), ElementwiseRel, ElementwiseAbs, "tanh_backward");

        uint key = Kernels.Cpu.Dropout.Key(1, 2, 3);
        Kernels.Cpu.Dropout.Forward(x, y, 0.3f, key);
        d.Ops.DropoutForward(dx, dout, n, 0.3f, key);
        Assert.Equal(y, d.Down(dout, n)); // the same hash: the same mask, bit for bit
        var acc = Random(rng, n); nint dacc = d.Up(acc);
        Kernels.Cpu.Dropout.Backward(g, acc, 0.3f, key, accumulate: true);
        d.Ops.DropoutBackward(dg, dacc, n, 0.3f, key, accumulate: true);
        Close(acc, d.Down(dacc, n), ElementwiseRel, ElementwiseAbs, "dropout_backward");
    }

    [Theory]
    [InlineData(2, 7, 24, 3, 0f)]
    [InlineData(1, 1, 16, 2, 0f)]
    [InlineData(1, 512, 16, 2, 0.1f)]
    [InlineData(3, 33, 40, 5, 0.2f)]
    public void Attention(int batch, int seqLen, int channels, int heads, float dropout)
    {
        var rng = new Random(batch * 100 + seqLen);
        int n = batch * seqLen;
        var qkv = Random(rng, n * 3 * channels);
        var mask = Enumerable.Range(0, n).Select(i => i % seqLen < Math.Max(1, seqLen - 3 * (i / seqLen)) ? 1f : 0f).ToArray();
        var probs = new float[batch * heads * seqLen * seqLen]; var ctx = new float[n * channels];
        uint key = Kernels.Cpu.Dropout.Key(9, 8, 7);
        Kernels.Cpu.Attention.Forward(qkv, mask, probs, ctx, batch, seqLen, channels, heads, dropout, key);

        using var d = new ShimDevice();
        long nc = (long)n * channels, bhtt = (long)batch * heads * seqLen * seqLen;
        var s = new Kernels.Cuda.GpuOps.AttentionScratch(d.Empty(nc), d.Empty(nc), d.Empty(nc), d.Empty(nc), d.Empty(bhtt), d.Empty(bhtt),
            d.Empty(nc), d.Empty(nc), d.Empty(nc), d.Empty(nc));
        nint dqkv = d.Up(qkv), dprobs = d.Empty(bhtt), dctx = d.Empty(nc);
        d.Ops.AttentionForward(dqkv, d.Up(mask), dprobs, dctx, batch, seqLen, channels, heads, dropout, key, s);
        Close(probs, d.Down(dprobs, bhtt), ReductionRel, ReductionAbs, "attention_softmax_forward (probs)");
        Close(ctx, d.Down(dctx, nc), ReductionRel, ReductionAbs, "attention forward (ctx)");

        var g = Random(rng, n * channels);
        var grad = new float[n * 3 * channels];
        Kernels.Cpu.Attention.Backward(g, qkv, probs, grad, batch, seqLen, channels, heads, dropout, key);
        nint dgrad = d.Empty(3 * nc);
        d.Ops.AttentionBackward(d.Up(g), dqkv, dprobs, dgrad, batch, seqLen, channels, heads, dropout, key, s);
        Close(grad, d.Down(dgrad, 3 * nc), ReductionRel, ReductionAbs, "attention backward (dqkv)");
    }

    [Fact]
    public void MixedCrossEntropy()
    {
        var rng = new Random(3);
        int batch = 5, classes = 3;
        var logits = Random(rng, batch * classes, 3f);
        int[] labels = { 0, 2, 1, 1, 0 }, partner = { 3, 0, 4, 1, 2 };
        float[] lambda = { 0.2f, 1f, 0.5f, 0f, 0.9f };
        var targets = new float[batch * classes];
        for (int b = 0; b < batch; b++) { targets[b * classes + labels[b]] += lambda[b]; targets[b * classes + labels[partner[b]]] += 1 - lambda[b]; }
        var probs = new float[batch * classes]; var dlogits = new float[batch * classes];
        double loss = CrossEntropy.Forward(logits, targets, probs, batch, classes);
        CrossEntropy.Backward(probs, targets, dlogits, batch, classes);

        using var d = new ShimDevice();
        nint dl = d.Empty(batch), dp = d.Empty(batch * classes), dg = d.Empty(batch * classes), stats = d.Empty(4);
        d.Ops.MixedCrossEntropy(d.Up(logits), d.Up(labels), d.Up(partner), d.Up(lambda), dl, dp, dg, batch, classes);
        d.Ops.StepStats(stats, dl, batch, 0, 0, 0, 0f);
        Close(probs, d.Down(dp, probs.Length), ReductionRel, ReductionAbs, "mixed_cross_entropy probs");
        Close(dlogits, d.Down(dg, dlogits.Length), ReductionRel, ReductionAbs, "mixed_cross_entropy dlogits");
        Close(new[] { (float)loss }, d.Down(stats, 1), ReductionRel, ReductionAbs, "finalize_step_stats loss");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(4, 1)]
    public void MixRowsAndFirstToken(int batch, int rows)
    {
        var rng = new Random(batch + rows);
        int channels = 19;
        var src = Random(rng, batch * rows * channels); var g = Random(rng, src.Length);
        var partner = Enumerable.Range(0, batch).Select(_ => rng.Next(batch)).ToArray();
        var lambda = Enumerable.Range(0, batch).Select(_ => (float)rng.NextDouble()).ToArray();
        // CPU reference: MixRows / UnmixRows as BertClassifier computes them
        var mixed = new float[src.Length]; var dsrc = new float[src.Length];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < rows * channels; i++)
            {
                mixed[b * rows * channels + i] = lambda[b] * src[b * rows * channels + i] + (1 - lambda[b]) * src[partner[b] * rows * channels + i];
                dsrc[b * rows * channels + i] += lambda[b] * g[b * rows * channels + i];
                dsrc[partner[b] * rows * channels + i] += (1 - lambda[b]) * g[b * rows * channels + i];
            }
        using var d = new ShimDevice();
        nint dout = d.Empty(src.Length), dPartner = d.Up(partner), dLambda = d.Up(lambda);
        d.Ops.MixRows(d.Up(src), dout, dPartner, dLambda, batch, rows, channels);
        Close(mixed, d.Down(dout, src.Length), ElementwiseRel, ElementwiseAbs, "mix_rows");
        d.Ops.MixRowsBackward(d.Up(g), dout, dPartner, dLambda, batch, rows, channels);
        Close(dsrc, d.Down(dout, src.Length), ElementwiseRel, ElementwiseAbs, "mix_rows_backward");

        var cls = new float[batch * channels];
        for (int b = 0; b < batch; b++) Array.Copy(src, b * rows * channels, cls, b * channels, channels);
        nint dcls = d.Empty(batch * channels);
        d.Ops.GatherFirstToken(d.Up(src), dcls, batch, rows, channels);
        Assert.Equal(cls, d.Down(dcls, cls.Length));
        var back = new float[src.Length];
        for (int b = 0; b < batch; b++) Array.Copy(cls, b * channels, back, b * rows * channels, channels);
        d.Ops.GatherFirstTokenBackward(dcls, dout, batch, rows, channels);
        Assert.Equal(back, d.Down(dout, src.Length));
    }

    [Fact]
    public void GradientNormClippingAndAdamW()
    {
        var rng = new Random(4);
        int n = 5000 + 3;
        var p = Random(rng, n); var g = Random(rng, n, 0.5f); var m = new float[n]; var v = new float[n];
        using var d = new ShimDevice();
        nint dp = d.Up(p), dg = d.Up(g), dm = d.Zeros(n), dv = d.Zeros(n), stats = d.Empty(4), part = d.Empty(Kernels.Cuda.GpuOps.NormBlocks), losses = d.Zeros(1);
        double norm = Math.Sqrt(Reduce.SumOfSquares(g));
        float clip = (float)Math.Min(1.0, 1.0 / (norm + 1e-6));
        d.Ops.StepStats(stats, losses, 1, dg, n, part, 1f);
        var s = d.Down(stats, 3);
        Close(new[] { (float)norm, clip }, s.AsSpan(1, 2), ReductionRel, ReductionAbs, "squared_norm_partial + finalize_step_stats");
        System.Numerics.Tensors.TensorPrimitives.Multiply(g, clip, g);
        for (int t = 1; t <= 3; t++)
        {
            var h = new AdamW.Hyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
            Kernels.Cpu.AdamW.Step(p, g, m, v, h);
            d.Ops.AdamWStep(dp, dg, dm, dv, n, h, stats);
        }
        Close(p, d.Down(dp, n), ElementwiseRel, ElementwiseAbs, "adamw_update params");
        Close(m, d.Down(dm, n), ElementwiseRel, ElementwiseAbs, "adamw_update m");
        Close(v, d.Down(dv, n), ElementwiseRel, ElementwiseAbs, "adamw_update v");
    }
}
