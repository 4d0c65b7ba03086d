using System.Numerics.Tensors;
using MixupBert.Kernels.Cpu;
using Kernels = MixupBert.Kernels;
using MixupBert.Kernels.Cuda;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;

namespace MixupBert.Model.Diagnostics;

/// <summary>
/// The CUDA backend checked against the CPU backend on one device: every op of kernels.cu on fresh
/// random inputs of awkward sizes (not multiples of 32, a batch of 1, sequences of length 1 and
/// 512), one whole training step of a small BERT in each mixup mode (loss, logits, every gradient
/// tensor), and three AdamW steps with clipping. `mixup-bert selftest --backend cuda` runs it on a
/// GPU; the tests run it on the CUDA shim, so CI executes the same checks on the CPU.
/// Tolerances: 1e-5 relative for elementwise ops, 1e-4 for anything that reduces.
/// </summary>
public static class GpuSelfTest
{
    public const double ElementwiseRel = 1e-5, ElementwiseAbs = 1e-6;
    public const double ReductionRel = 1e-4, ReductionAbs = 1e-5;

    public sealed record Result(string Check, bool Passed, string Detail, double Seconds);

    /// <summary>The checks, by name, in the order they run.</summary>
    public static readonly IReadOnlyList<string> Checks = new[]
    {
        "embedding 3x7x37", "embedding 1x1x33", "embedding 2x512x20", "embedding mixed 3x9x45",
        "layernorm 37x45", "layernorm 1x33 residual", "layernorm 130x70 residual dropout",
        "linear 37x45x53", "linear 1x1x1", "linear 130x33x97",
        "elementwise 1", "elementwise 1007",
        "attention 2x7 C24 H3", "attention 1x1 C16 H2", "attention 1x512 C16 H2 dropout", "attention 3x33 C40 H5 dropout",
        "cross-entropy mixed", "mix rows 1x1", "mix rows 3x7", "mix rows 4x1", "clip and adamw",
        "train step baseline", "train step dropout", "train step mixup", "train step tmix", "train step tmix-last", "train step senmix",
        "three adamw steps",
    };

    /// <summary>Runs one check on <paramref name="gpu"/> (everything it allocates is freed again).</summary>
    public static Result Run(string check, IGpu gpu)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var c = new Checker();
        try
        {
            using var d = new Device(gpu);
            var p = check.Split(' ');
            int[] Dims(string s) => s.Split('x').Select(int.Parse).ToArray();
            switch (p[0])
            {
                case "embedding": { bool mixed = p[1] == "mixed"; var x = Dims(mixed ? p[2] : p[1]); Embedding(c, d, x[0], x[1], x[2], mixed); break; }
                case "layernorm": { var x = Dims(p[1]); LayerNorm(c, d, x[0], x[1], check.Contains("dropout") ? 0.2f : 0f, check.Contains("residual")); break; }
                case "linear": { var x = Dims(p[1]); Linear(c, d, x[0], x[1], x[2]); break; }
                case "elementwise": Elementwise(c, d, int.Parse(p[1])); break;
                case "attention": { var x = Dims(p[1]); Attention(c, d, x[0], x[1], int.Parse(p[2][1..]), int.Parse(p[3][1..]), check.Contains("dropout") ? (x[1] > 100 ? 0.1f : 0.2f) : 0f); break; }
                case "cross-entropy": MixedCrossEntropy(c, d); break;
                case "mix": { var x = Dims(p[2]); MixRows(c, d, x[0], x[1]); break; }
                case "clip": ClipAndAdamW(c, d); break;
                case "train": TrainStep(c, d, p[2]); break;
                case "three": ThreeAdamWSteps(c, d); break;
                default: throw new ArgumentException($"unknown self-test check '{check}'");
            }
        }
        catch (Exception e)
        {
            c.Fail($"{e.GetType().Name}: {e.Message}");
        }
        return new Result(check, c.Failure == null, c.Failure ?? c.Summary, sw.Elapsed.TotalSeconds);
    }

    /// <summary>Collects the first disagreement and the worst agreement seen.</summary>
    private sealed class Checker
    {
        public string? Failure { get; private set; }
        private double worst;
        private string worstWhat = "";
        public string Summary => $"worst {worst:F3}× the tolerance ({worstWhat})";

        public void Fail(string message) => Failure ??= message;

        public void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rel, double abs, string what)
        {
            if (expected.Length != actual.Length) { Fail($"{what}: {expected.Length} vs {actual.Length} elements"); return; }
            double w = 0; int at = -1;
            for (int i = 0; i < expected.Length; i++)
            {
                double err = Math.Abs((double)expected[i] - actual[i]);
                double ratio = float.IsNaN(actual[i]) || float.IsNaN(expected[i]) ? double.PositiveInfinity : err / (abs + rel * Math.Abs(expected[i]));
                if (ratio > w) { w = ratio; at = i; }
            }
            if (w > worst) { worst = w; worstWhat = what; }
            if (w > 1.0) Fail($"{what}: element {at}: CPU {expected[at]}, GPU {actual[at]} ({w:F2}× the tolerance)");
        }

        public void Exact(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what) => Close(expected, actual, 0, 0, what);

        public void True(bool condition, string what) { if (!condition) Fail(what); }
    }

    /// <summary>A device with helpers to move test data in and out; frees everything on dispose.</summary>
    private sealed class Device : IDisposable
    {
        private readonly List<nint> owned = new();
        public IGpu Gpu { get; }
        public GpuOps Ops { get; }

        public Device(IGpu gpu) { Gpu = gpu; Ops = new GpuOps(gpu); }

        private nint Alloc(long n) { nint p = Gpu.Alloc(Math.Max(n, 1) * 4); owned.Add(p); return p; }
        public nint Up(float[] host) { nint p = Alloc(host.Length); Gpu.CopyToDevice<float>(p, host); return p; }
        public nint Up(int[] host) { nint p = Alloc(host.Length); Gpu.CopyToDevice<int>(p, host); return p; }
        public nint Zeros(long n) { nint p = Alloc(n); Gpu.Fill32(p, 0, n); return p; }
        /// <summary>Memory a kernel must overwrite entirely: filled with NaN first.</summary>
        public nint Empty(long n) { nint p = Alloc(n); Gpu.Fill32(p, 0x7FC00000u, n); return p; }
        public float[] Down(nint p, long n) { var a = new float[n]; Gpu.CopyToHost<float>(a, p); return a; }

        public void Dispose()
        {
            Ops.Dispose();
            foreach (var p in owned) Gpu.Free(p);
        }
    }

    private static float[] Random(Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return a;
    }

    private static void Embedding(Checker c, Device d, int batch, int seqLen, int channels, bool mixed)
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
        if (mixed) Kernels.Cpu.AttentionMask.Union(mask, partner, lambda, expectedMask, batch, seqLen);

        
        nint dOut = d.Empty(n * channels), dMask = d.Empty(n), dIds = d.Up(ids), dTypes = d.Up(types), dPartner = d.Up(partner), dLambda = d.Up(lambda);
        nint dWord = d.Up(word), dPos = d.Up(pos), dType = d.Up(type);
        d.Ops.EmbeddingForward(dOut, dMask, dWord, dPos, dType, dIds, dTypes, d.Up(mask), mixed ? dPartner : 0, mixed ? dLambda : 0, mixed, batch, seqLen, channels);
        c.Close(expected, d.Down(dOut, n * channels), ElementwiseRel, ElementwiseAbs, "embedding_forward");
        c.Close(expectedMask, d.Down(dMask, n), 0, 0, "embedding_forward mask");

        var g = Random(rng, n * channels);
        var dw = Random(rng, word.Length); var dp = Random(rng, pos.Length); var dt = Random(rng, type.Length); // accumulate onto existing values
        nint gdw = d.Up(dw), gdp = d.Up(dp), gdt = d.Up(dt);
        Kernels.Cpu.Embedding.Backward(g, dw, dp, dt, ids, types, batch, seqLen, channels, partnerIds, mixed ? lambda : default);
        d.Ops.EmbeddingBackward(d.Up(g), gdw, gdp, gdt, dIds, dTypes, mixed ? dPartner : 0, mixed ? dLambda : 0, mixed, batch, seqLen, channels);
        c.Close(dw, d.Down(gdw, dw.Length), ReductionRel, ReductionAbs, "embedding_backward word");
        c.Close(dp, d.Down(gdp, dp.Length), ReductionRel, ReductionAbs, "embedding_backward position");
        c.Close(dt, d.Down(gdt, dt.Length), ReductionRel, ReductionAbs, "embedding_backward type");
    }

    private static void LayerNorm(Checker c, Device d, int rows, int cols, float p, bool residual)
    {
        var rng = new Random(rows + cols);
        var x = Random(rng, rows * cols, 3f); var r = Random(rng, rows * cols); var gamma = Random(rng, cols); var beta = Random(rng, cols);
        uint key = Kernels.Cpu.Dropout.Key(5, 6, 7);
        // CPU: dropout, add, layernorm, as BertClassifier does them
        var sum = new float[rows * cols];
        Kernels.Cpu.Dropout.Forward(x, sum, p, key);
        if (residual) TensorPrimitives.Add(sum, r, sum);
        var y = new float[rows * cols]; var mean = new float[rows]; var rstd = new float[rows];
        Kernels.Cpu.LayerNorm.Forward(sum, gamma, beta, y, mean, rstd, rows, cols, 1e-12f);

        
        nint dy = d.Empty(rows * cols), dsum = d.Empty(rows * cols), dmean = d.Empty(rows), drstd = d.Empty(rows);
        nint dGamma = d.Up(gamma), dBeta = d.Up(beta);
        d.Ops.ResidualLayerNormForward(dy, dsum, dmean, drstd, d.Up(x), residual ? d.Up(r) : 0, dGamma, dBeta, rows, cols, 1e-12f, p, key);
        c.Close(sum, d.Down(dsum, sum.Length), ElementwiseRel, ElementwiseAbs, "residual_layernorm_forward sum");
        c.Close(y, d.Down(dy, y.Length), ReductionRel, ReductionAbs, "residual_layernorm_forward out");
        c.Close(mean, d.Down(dmean, rows), ReductionRel, ReductionAbs, "residual_layernorm_forward mean");
        c.Close(rstd, d.Down(drstd, rows), ReductionRel, ReductionAbs, "residual_layernorm_forward rstd");

        var g = Random(rng, rows * cols);
        var dx = new float[rows * cols]; var dgamma = Random(rng, cols); var dbeta = Random(rng, cols);
        nint gdg = d.Up(dgamma), gdb = d.Up(dbeta), gdx = d.Empty(rows * cols);
        Kernels.Cpu.LayerNorm.Backward(g, sum, mean, rstd, gamma, dx, dgamma, dbeta, rows, cols);
        d.Ops.LayerNormBackward(d.Up(g), dsum, dmean, drstd, dGamma, gdx, gdg, gdb, rows, cols);
        c.Close(dx, d.Down(gdx, dx.Length), ReductionRel, ReductionAbs, "layernorm_backward dx");
        c.Close(dgamma, d.Down(gdg, cols), ReductionRel, ReductionAbs, "layernorm_backward dgamma");
        c.Close(dbeta, d.Down(gdb, cols), ReductionRel, ReductionAbs, "layernorm_backward dbeta");
    }

    private static void Linear(Checker c, Device d, int rows, int inF, int outF)
    {
        var rng = new Random(rows * inF);
        var x = Random(rng, rows * inF); var w = Random(rng, outF * inF); var b = Random(rng, outF);
        var y = new float[rows * outF];
        Kernels.Cpu.Linear.Forward(x, w, b, y, rows, inF, outF);
        
        nint dx = d.Up(x), dw = d.Up(w), dy = d.Empty(rows * outF);
        d.Ops.LinearForward(dx, dw, d.Up(b), dy, rows, inF, outF);
        c.Close(y, d.Down(dy, y.Length), ReductionRel, ReductionAbs, "linear forward (GEMM + add_bias)");

        var g = Random(rng, rows * outF);
        var gx = new float[rows * inF]; var gw = Random(rng, w.Length); var gb = Random(rng, outF);
        nint dgw = d.Up(gw), dgb = d.Up(gb), dgx = d.Empty(rows * inF);
        Kernels.Cpu.Linear.Backward(g, x, w, gx, gw, gb, rows, inF, outF);
        d.Ops.LinearBackward(d.Up(g), dx, dw, dgx, dgw, dgb, rows, inF, outF);
        c.Close(gx, d.Down(dgx, gx.Length), ReductionRel, ReductionAbs, "linear backward dx");
        c.Close(gw, d.Down(dgw, gw.Length), ReductionRel, ReductionAbs, "linear backward dW");
        c.Close(gb, d.Down(dgb, gb.Length), ReductionRel, ReductionAbs, "column_sum_partial + add_chunk_partials (db)");
    }

    private static void Elementwise(Checker c, Device d, int n)
    {
        var rng = new Random(n);
        var x = Random(rng, n, 5f); var g = Random(rng, n);
        
        nint dx = d.Up(x), dg = d.Up(g), dout = d.Empty(n);

        var y = new float[n];
        Kernels.Cpu.Activations.GeluForward(x, y);
        d.Ops.GeluForward(dx, dout, n);
        c.Close(y, d.Down(dout, n), ElementwiseRel, ElementwiseAbs, "gelu_forward");
        Kernels.Cpu.Activations.GeluBackward(x, g, y);
        d.Ops.GeluBackward(dx, dg, dout, n);
        c.Close(y, d.Down(dout, n), ElementwiseRel, ElementwiseAbs, "gelu_backward");

        Kernels.Cpu.Activations.TanhForward(x, y);
        d.Ops.TanhForward(dx, dout, n);
        c.Close(y, d.Down(dout, n), ElementwiseRel, ElementwiseAbs, "tanh_forward");
        var t = (float[])y.Clone();
        Kernels.Cpu.Activations.TanhBackward(t, g, y);
        d.Ops.TanhBackward(d.Up(t), dg, dout, n);
        c.Close(y, d.Down(dout, n), ElementwiseRel, ElementwiseAbs, "tanh_backward");

        uint key = Kernels.Cpu.Dropout.Key(1, 2, 3);
        Kernels.Cpu.Dropout.Forward(x, y, 0.3f, key);
        d.Ops.DropoutForward(dx, dout, n, 0.3f, key);
        c.Exact(y, d.Down(dout, n), "dropout_forward mask (the same hash, bit for bit)");
        var acc = Random(rng, n); nint dacc = d.Up(acc);
        Kernels.Cpu.Dropout.Backward(g, acc, 0.3f, key, accumulate: true);
        d.Ops.DropoutBackward(dg, dacc, n, 0.3f, key, accumulate: true);
        c.Close(acc, d.Down(dacc, n), ElementwiseRel, ElementwiseAbs, "dropout_backward");
    }

    private static void Attention(Checker c, Device d, int batch, int seqLen, int channels, int heads, float dropout)
    {
        var rng = new Random(batch * 100 + seqLen);
        int n = batch * seqLen;
        var qkv = Random(rng, n * 3 * channels);
        var mask = Enumerable.Range(0, n).Select(i => i % seqLen < Math.Max(1, seqLen - 3 * (i / seqLen)) ? 1f : 0f).ToArray();
        var probs = new float[batch * heads * seqLen * seqLen]; var ctx = new float[n * channels];
        uint key = Kernels.Cpu.Dropout.Key(9, 8, 7);
        Kernels.Cpu.Attention.Forward(qkv, mask, probs, ctx, batch, seqLen, channels, heads, dropout, key);

        
        long nc = (long)n * channels, bhtt = (long)batch * heads * seqLen * seqLen;
        var s = new GpuOps.AttentionScratch(d.Empty(nc), d.Empty(nc), d.Empty(nc), d.Empty(nc), d.Empty(bhtt), d.Empty(bhtt),
            d.Empty(nc), d.Empty(nc), d.Empty(nc), d.Empty(nc));
        nint dqkv = d.Up(qkv), dprobs = d.Empty(bhtt), dctx = d.Empty(nc);
        d.Ops.AttentionForward(dqkv, d.Up(mask), dprobs, dctx, batch, seqLen, channels, heads, dropout, key, s);
        c.Close(probs, d.Down(dprobs, bhtt), ReductionRel, ReductionAbs, "attention_softmax_forward (probs)");
        c.Close(ctx, d.Down(dctx, nc), ReductionRel, ReductionAbs, "attention forward (ctx)");

        var g = Random(rng, n * channels);
        var grad = new float[n * 3 * channels];
        Kernels.Cpu.Attention.Backward(g, qkv, probs, grad, batch, seqLen, channels, heads, dropout, key);
        nint dgrad = d.Empty(3 * nc);
        d.Ops.AttentionBackward(d.Up(g), dqkv, dprobs, dgrad, batch, seqLen, channels, heads, dropout, key, s);
        c.Close(grad, d.Down(dgrad, 3 * nc), ReductionRel, ReductionAbs, "attention backward (dqkv)");
    }

    private static void MixedCrossEntropy(Checker c, Device d)
    {
        var rng = new Random(3);
        int batch = 5, classes = 3;
        var logits = Random(rng, batch * classes, 3f);
        int[] labels = { 0, 2, 1, 1, 0 }, partner = { 3, 0, 4, 1, 2 };
        float[] lambda = { 0.2f, 1f, 0.5f, 0f, 0.9f };
        var targets = new float[batch * classes];
        for (int b = 0; b < batch; b++) { targets[b * classes + labels[b]] += lambda[b]; targets[b * classes + labels[partner[b]]] += 1 - lambda[b]; }
        var probs = new float[batch * classes]; var dlogits = new float[batch * classes];
        double loss = Kernels.Cpu.CrossEntropy.Forward(logits, targets, probs, batch, classes);
        Kernels.Cpu.CrossEntropy.Backward(probs, targets, dlogits, batch, classes);

        
        nint dl = d.Empty(batch), dp = d.Empty(batch * classes), dg = d.Empty(batch * classes), stats = d.Empty(4);
        d.Ops.MixedCrossEntropy(d.Up(logits), d.Up(labels), d.Up(partner), d.Up(lambda), dl, dp, dg, batch, classes);
        d.Ops.StepStats(stats, dl, batch, 0, 0, 0, 0f);
        c.Close(probs, d.Down(dp, probs.Length), ReductionRel, ReductionAbs, "mixed_cross_entropy probs");
        c.Close(dlogits, d.Down(dg, dlogits.Length), ReductionRel, ReductionAbs, "mixed_cross_entropy dlogits");
        c.Close(new[] { (float)loss }, d.Down(stats, 1), ReductionRel, ReductionAbs, "finalize_step_stats loss");
    }

    private static void MixRows(Checker c, Device d, int batch, int rows)
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
        
        nint dout = d.Empty(src.Length), dPartner = d.Up(partner), dLambda = d.Up(lambda);
        d.Ops.MixRows(d.Up(src), dout, dPartner, dLambda, batch, rows, channels);
        c.Close(mixed, d.Down(dout, src.Length), ElementwiseRel, ElementwiseAbs, "mix_rows");
        d.Ops.MixRowsBackward(d.Up(g), dout, dPartner, dLambda, batch, rows, channels);
        c.Close(dsrc, d.Down(dout, src.Length), ElementwiseRel, ElementwiseAbs, "mix_rows_backward");

        var cls = new float[batch * channels];
        for (int b = 0; b < batch; b++) Array.Copy(src, b * rows * channels, cls, b * channels, channels);
        nint dcls = d.Empty(batch * channels);
        d.Ops.GatherFirstToken(d.Up(src), dcls, batch, rows, channels);
        c.Exact(cls, d.Down(dcls, cls.Length), "gather_cls");
        var back = new float[src.Length];
        for (int b = 0; b < batch; b++) Array.Copy(cls, b * channels, back, b * rows * channels, channels);
        d.Ops.GatherFirstTokenBackward(dcls, dout, batch, rows, channels);
        c.Exact(back, d.Down(dout, src.Length), "gather_cls_backward");
    }

    private static void ClipAndAdamW(Checker c, Device d)
    {
        var rng = new Random(4);
        int n = 5000 + 3;
        var p = Random(rng, n); var g = Random(rng, n, 0.5f); var m = new float[n]; var v = new float[n];
        
        nint dp = d.Up(p), dg = d.Up(g), dm = d.Zeros(n), dv = d.Zeros(n), stats = d.Empty(4), part = d.Empty(GpuOps.NormBlocks), losses = d.Zeros(1);
        double norm = Math.Sqrt(Kernels.Cpu.Reduce.SumOfSquares(g));
        float clip = (float)Math.Min(1.0, 1.0 / (norm + 1e-6));
        d.Ops.StepStats(stats, losses, 1, dg, n, part, 1f);
        var s = d.Down(stats, 3);
        c.Close(new[] { (float)norm, clip }, s.AsSpan(1, 2), ReductionRel, ReductionAbs, "squared_norm_partial + finalize_step_stats");
        TensorPrimitives.Multiply(g, clip, g);
        for (int t = 1; t <= 3; t++)
        {
            var h = new Kernels.Cpu.AdamW.Hyper(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
            Kernels.Cpu.AdamW.Step(p, g, m, v, h);
            d.Ops.AdamWStep(dp, dg, dm, dv, n, h, stats);
        }
        c.Close(p, d.Down(dp, n), ElementwiseRel, ElementwiseAbs, "adamw_update params");
        c.Close(m, d.Down(dm, n), ElementwiseRel, ElementwiseAbs, "adamw_update m");
        c.Close(v, d.Down(dv, n), ElementwiseRel, ElementwiseAbs, "adamw_update v");
    }
    // --- the whole backend -------------------------------------------------------------------

    /// <summary>A small BERT: 2 layers, hidden 32, 4 heads, 3 labels.</summary>
    private static BertConfig Small(float dropout) => new()
    {
        VocabSize = 50, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 4, IntermediateSize = 48,
        MaxPositionEmbeddings = 16, HiddenDropoutProb = dropout, AttentionProbsDropoutProb = dropout, InitializerRange = 0.2f,
        Id2Label = new[] { "a", "b", "c" },
    };

    /// <summary>Random ids with varied lengths and padding (the first row full), two segments in odd
    /// rows, random labels: a batch that exercises masks and token types.</summary>
    public static Batch RandomBatch(BertConfig c, int batch, int seqLen, int seed)
    {
        var rng = new Random(seed);
        var b = new Batch(batch, seqLen, c.NumLabels);
        for (int i = 0; i < batch; i++)
        {
            int len = i == 0 ? seqLen : 1 + rng.Next(seqLen);
            for (int t = 0; t < seqLen; t++)
            {
                b.InputIds[i * seqLen + t] = t < len ? rng.Next(c.VocabSize) : c.PadTokenId;
                b.AttentionMask[i * seqLen + t] = t < len ? 1 : 0;
                b.TokenTypeIds[i * seqLen + t] = t < len && t >= len / 2 && i % 2 == 1 ? 1 : 0;
            }
        }
        b.SetLabels(Enumerable.Range(0, batch).Select(_ => rng.Next(c.NumLabels)).ToArray());
        return b;
    }

    private static Mix? MixFor(string mode) => mode switch
    {
        "mixup" => new Mix(MixSite.WordEmbeddings, new[] { 2, 3, 0, 1 }, new[] { 0.7f, 1f, 0.25f, 0.5f }),
        "tmix" => new Mix(MixSite.Hidden, new[] { 1, 0, 3, 2 }, new[] { 0.6f, 0.4f, 0.9f, 0f }, Layer: 1),
        "tmix-last" => new Mix(MixSite.Hidden, new[] { 3, 2, 1, 0 }, new[] { 0.6f, 0.4f, 0.9f, 0.1f }, Layer: 2),
        "senmix" => new Mix(MixSite.Pooled, new[] { 2, 3, 0, 1 }, new[] { 0.3f, 0.8f, 0.5f, 0.5f }),
        _ => null,
    };

    private static bool IsKeyBias(string name) => name.EndsWith("attention.self.key.bias", StringComparison.Ordinal);

    /// <summary>One training step (forward + backward) on both backends: loss, logits, every gradient.</summary>
    private static void TrainStep(Checker c, Device d, string mode)
    {
        var config = Small(mode == "dropout" ? 0.1f : 0f);
        var init = BertCheckpoint.RandomInit(config, 21);
        var batch = RandomBatch(config, batch: 4, seqLen: 9, seed: 22);
        var mix = MixFor(mode);
        using var cpu = new CpuBertEngine(config, (float[])init.Clone());
        using var gpu = new GpuBertEngine(d.Gpu, config, (float[])init.Clone());
        double lossCpu = cpu.ForwardBackward(batch, mix, seed: 5, step: 3);
        double lossGpu = gpu.ForwardBackward(batch, mix, seed: 5, step: 3);
        c.Close(new[] { (float)lossCpu }, new[] { (float)lossGpu }, ReductionRel, 0, "loss");
        var logitsCpu = new float[4 * 3]; var logitsGpu = new float[4 * 3];
        cpu.CopyLogits(logitsCpu); gpu.CopyLogits(logitsGpu);
        c.Close(logitsCpu, logitsGpu, ReductionRel, ReductionAbs, "logits");
        var gc = new float[cpu.Layout.Size]; var gg = new float[cpu.Layout.Size];
        cpu.CopyGradients(gc); gpu.CopyGradients(gg);
        foreach (var t in cpu.Layout.Tensors)
        {
            var e = gc.AsSpan(t.Offset, t.Length); var a = gg.AsSpan(t.Offset, t.Length);
            if (IsKeyBias(t.Name))
            {
                // exactly 0 in exact arithmetic (softmax ignores a per-query constant): both sides hold
                // rounding residue only, far below the query bias gradient just before it
                double q = Math.Sqrt(TensorPrimitives.SumOfSquares(gc.AsSpan(t.Offset - t.Length, t.Length)) / t.Length);
                c.True(TensorPrimitives.MaxMagnitude(a) < 1e-4 * q, $"gradient {t.Name} should vanish");
                continue;
            }
            // a gradient is a sum of many terms: the absolute floor scales with the tensor's size
            double scale = Math.Sqrt(TensorPrimitives.SumOfSquares(e) / t.Length) + 1e-12;
            c.Close(e, a, ReductionRel, ReductionRel * scale, $"gradient {t.Name}");
        }
    }

    /// <summary>Three AdamW steps (dropout on, clipping active, one mixup batch) on both backends.</summary>
    private static void ThreeAdamWSteps(Checker c, Device d)
    {
        var config = Small(0.1f) with { Id2Label = new[] { "a", "b" } };
        var init = BertCheckpoint.RandomInit(config, 31);
        using var cpu = new CpuBertEngine(config, (float[])init.Clone());
        using var gpu = new GpuBertEngine(d.Gpu, config, (float[])init.Clone());
        var settings = new OptimizerSettings(MaxGradNorm: 0.5f);
        for (int step = 1; step <= 3; step++)
        {
            var batch = RandomBatch(config, batch: 3, seqLen: 6 + step, seed: 40 + step);
            var mix = step == 2 ? new Mix(MixSite.WordEmbeddings, new[] { 2, 0, 1 }, new[] { 0.3f, 0.6f, 0.9f }) : null;
            var rc = cpu.TrainStep(batch, mix, 1e-3f, step, 7, settings);
            var rg = gpu.TrainStep(batch, mix, 1e-3f, step, 7, settings);
            c.Close(new[] { (float)rc.Loss, (float)rc.GradNorm }, new[] { (float)rg.Loss, (float)rg.GradNorm }, ReductionRel, 0, $"step {step} loss and gradient norm");
            c.True(rc.GradNorm > settings.MaxGradNorm, "the check means clipping to act");
        }
        var pc = new float[cpu.Layout.Size]; var pg = new float[pc.Length];
        var mc = new float[pc.Length]; var vc = new float[pc.Length]; var mg = new float[pc.Length]; var vg = new float[pc.Length];
        cpu.CopyParameters(pc); gpu.CopyParameters(pg);
        cpu.CopyOptimizerState(mc, vc); gpu.CopyOptimizerState(mg, vg);
        // Adam turns the key biases' rounding-residue gradients into full-size steps of either sign,
        // on any two implementations: they are left out of this comparison
        foreach (var t in cpu.Layout.Tensors.Where(t => !IsKeyBias(t.Name)))
        {
            c.Close(pc.AsSpan(t.Offset, t.Length), pg.AsSpan(t.Offset, t.Length), ReductionRel, 1e-6, $"{t.Name} after three AdamW steps");
            c.Close(mc.AsSpan(t.Offset, t.Length), mg.AsSpan(t.Offset, t.Length), 1e-3, 1e-7, $"{t.Name} Adam first moment");
        }
    }
}
