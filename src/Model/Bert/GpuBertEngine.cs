using MixupBert.Kernels.Cpu;
using MixupBert.Kernels.Cuda;
using MixupBert.Model.Weights;

namespace MixupBert.Model.Bert;

/// <summary>
/// The CUDA backend: <see cref="BertClassifier"/>'s forward and backward, op for op, with
/// <see cref="GpuOps"/> on device buffers. Weights, gradients, Adam moments and activations stay on
/// the device for the whole run; per step the host sends token ids, type ids, masks, labels,
/// partners and λ (two copies) and reads back the loss and the gradient norm (one copy).
/// </summary>
public sealed class GpuBertEngine : IBertEngine
{
    private readonly IGpu gpu;
    private readonly GpuOps ops;
    private readonly List<nint> fixedAllocations = new(), batchAllocations = new();
    private readonly nint parameters, gradients, adamM, adamV, stats, normPartial;
    private readonly float[] hostStats = new float[3];
    private Buffers? buf;
    private int B, T;
    private Mix? mix;
    private float pHidden, pAttn, pCls;
    private ulong dropoutSeed;
    private long dropoutStep;
    private int[] hostInts = [];
    private float[] hostFloats = [];

    public string Backend => $"cuda ({gpu.Name})";
    public BertConfig Config { get; }
    public BertLayout Layout { get; }

    public GpuBertEngine(IGpu gpu, BertConfig config, float[] initialParameters)
    {
        this.gpu = gpu;
        ops = new GpuOps(gpu);
        Config = config;
        Layout = new BertLayout(config);
        if (initialParameters.Length != Layout.Size) throw new ArgumentException($"parameters have {initialParameters.Length} floats; the config needs {Layout.Size}");
        nint Fixed(long floats) { nint p = gpu.Alloc(floats * 4); fixedAllocations.Add(p); return p; }
        parameters = Fixed(Layout.Size); gradients = Fixed(Layout.Size); adamM = Fixed(Layout.Size); adamV = Fixed(Layout.Size);
        stats = Fixed(4); normPartial = Fixed(GpuOps.NormBlocks);
        gpu.CopyToDevice<float>(parameters, initialParameters);
        gpu.Fill32(adamM, 0, Layout.Size); gpu.Fill32(adamV, 0, Layout.Size); gpu.Fill32(gradients, 0, Layout.Size);
    }

    private static nint At(nint p, long floats) => p + (nint)(floats * 4);
    private nint P(int offset) => At(parameters, offset);
    private nint G(int offset) => At(gradients, offset);

    // ---------------------------------------------------------------------------------------
    // device buffers, allocated for the largest batch seen (the CPU's ActivationBuffers)

    private sealed class LayerBuffers
    {
        public nint Qkv, Probs, Ctx, Ln1In, Ln1Mean, Ln1Rstd, H1, Fc1, Gelu, Ln2In, Ln2Mean, Ln2Rstd, Out;
    }

    private sealed class Buffers
    {
        public int MaxBatch, MaxSeqLen;
        public nint Ints, Floats;   // per-step uploads: [ids N | type ids N | labels B | partner B], [mask N | λ B]
        public nint MaskUnion, EmbSum, EmbLn, EmbMean, EmbRstd, EmbOut, MixedHidden;
        public GpuOps.AttentionScratch Attention;
        public LayerBuffers[] Layers = [];
        public nint Cls, PooledPre, Pooled, PooledMixed, PooledDrop, Logits, Probs, Losses;
        public nint GOut, GH1, GTmp, GI, GQkv, GCtx, GLogits, GPooled, GPooledPre, GCls;
    }

    private void Ensure(int batch, int seqLen)
    {
        if (buf != null && buf.MaxBatch >= batch && buf.MaxSeqLen >= seqLen) return;
        foreach (var p in batchAllocations) gpu.Free(p);
        batchAllocations.Clear();
        int mb = Math.Max(batch, buf?.MaxBatch ?? 0), mt = Math.Max(seqLen, buf?.MaxSeqLen ?? 0);
        var c = Config;
        long n = (long)mb * mt, C = c.HiddenSize, I = c.IntermediateSize, L = c.NumLabels;
        long nc = n * C, probs = (long)mb * c.NumAttentionHeads * mt * mt;
        nint A(long floats) { nint p = gpu.Alloc(Math.Max(floats, 1) * 4); batchAllocations.Add(p); return p; }
        var b = new Buffers
        {
            MaxBatch = mb, MaxSeqLen = mt,
            Ints = A(2 * n + 2 * mb), Floats = A(n + mb),
            MaskUnion = A(n), EmbSum = A(nc), EmbLn = A(nc), EmbMean = A(n), EmbRstd = A(n), EmbOut = A(nc), MixedHidden = A(nc),
            Attention = new GpuOps.AttentionScratch(A(nc), A(nc), A(nc), A(nc), A(probs), A(probs), A(nc), A(nc), A(nc), A(nc)),
            Cls = A(mb * C), PooledPre = A(mb * C), Pooled = A(mb * C), PooledMixed = A(mb * C), PooledDrop = A(mb * C),
            Logits = A(mb * L), Probs = A(mb * L), Losses = A(mb),
            GOut = A(nc), GH1 = A(nc), GTmp = A(nc), GI = A(n * I), GQkv = A(3 * nc), GCtx = A(nc),
            GLogits = A(mb * L), GPooled = A(mb * C), GPooledPre = A(mb * C), GCls = A(mb * C),
        };
        b.Layers = new LayerBuffers[c.NumHiddenLayers];
        for (int l = 0; l < b.Layers.Length; l++)
            b.Layers[l] = new LayerBuffers
            {
                Qkv = A(3 * nc), Probs = A(probs), Ctx = A(nc), Ln1In = A(nc), Ln1Mean = A(n), Ln1Rstd = A(n), H1 = A(nc),
                Fc1 = A(n * I), Gelu = A(n * I), Ln2In = A(nc), Ln2Mean = A(n), Ln2Rstd = A(n), Out = A(nc),
            };
        buf = b;
    }

    private nint Ids => buf!.Ints;
    private nint TypeIds => At(buf!.Ints, B * T);
    private nint Labels => At(buf!.Ints, 2 * B * T);
    private nint Partner => mix == null ? 0 : At(buf!.Ints, 2 * B * T + B);
    private nint Mask => buf!.Floats;
    private nint Lambda => mix == null ? 0 : At(buf!.Floats, B * T);

    private void Upload(Batch batch)
    {
        int n = B * T;
        if (hostInts.Length < 2 * n + 2 * B) hostInts = new int[2 * n + 2 * B];
        if (hostFloats.Length < n + B) hostFloats = new float[n + B];
        batch.InputIds.AsSpan(0, n).CopyTo(hostInts);
        batch.TokenTypeIds.AsSpan(0, n).CopyTo(hostInts.AsSpan(n));
        batch.Labels.AsSpan(0, B).CopyTo(hostInts.AsSpan(2 * n));
        batch.AttentionMask.AsSpan(0, n).CopyTo(hostFloats);
        if (mix != null)
        {
            mix.Partner.AsSpan(0, B).CopyTo(hostInts.AsSpan(2 * n + B));
            mix.Lambda.AsSpan(0, B).CopyTo(hostFloats.AsSpan(n));
        }
        gpu.CopyToDevice<int>(buf!.Ints, hostInts.AsSpan(0, 2 * n + 2 * B));
        gpu.CopyToDevice<float>(buf.Floats, hostFloats.AsSpan(0, n + B));
    }

    private uint Key(int site) => Dropout.Key(dropoutSeed, dropoutStep, site);

    private nint EmbeddingOutput => pHidden > 0f ? buf!.EmbOut : buf!.EmbLn;

    // ---------------------------------------------------------------------------------------
    // forward

    private void Forward(Batch batch, bool training, ulong seed, long step, Mix? m)
    {
        var c = Config;
        B = batch.BatchSize; T = batch.SeqLen;
        BertClassifier.ValidateInputs(c, batch, m);
        Ensure(B, T);
        mix = m;
        dropoutSeed = seed; dropoutStep = step;
        pHidden = training ? c.HiddenDropoutProb : 0f; pAttn = training ? c.AttentionProbsDropoutProb : 0f; pCls = training ? c.ClassifierDropoutProb : 0f;
        Upload(batch);
        var a = buf!; var lo = Layout;
        int N = B * T, C = c.HiddenSize, I = c.IntermediateSize, H = c.NumAttentionHeads, L = c.NumLabels;
        long NC = (long)N * C;
        bool wordMix = m is { Site: MixSite.WordEmbeddings };
        bool unionMask = m != null && m.Site != MixSite.Pooled;

        // embeddings (+ the partner's words and the union mask, in one kernel), LayerNorm, dropout
        ops.EmbeddingForward(a.EmbSum, unionMask ? a.MaskUnion : 0, P(lo.WordEmbeddings), P(lo.PositionEmbeddings), P(lo.TypeEmbeddings),
            Ids, TypeIds, Mask, unionMask ? Partner : 0, unionMask ? Lambda : 0, wordMix, B, T, C);
        ops.ResidualLayerNormForward(a.EmbLn, 0, a.EmbMean, a.EmbRstd, a.EmbSum, 0, P(lo.EmbLnGamma), P(lo.EmbLnBeta), N, C, c.LayerNormEps);
        if (pHidden > 0f) ops.DropoutForward(a.EmbLn, a.EmbOut, NC, pHidden, Key(0));

        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            var w = lo.Layers[l];
            var s = a.Layers[l];
            nint x = LayerInput(l);
            if (l > 0 && m is { Site: MixSite.Hidden } && m.Layer == l)
                ops.MixRows(a.Layers[l - 1].Out, a.MixedHidden, Partner, Lambda, B, T, C);
            bool union = unionMask && (m!.Site == MixSite.WordEmbeddings || l >= m.Layer);

            ops.LinearForward(x, P(w.QkvWeight), P(w.QkvBias), s.Qkv, N, C, 3 * C);
            ops.AttentionForward(s.Qkv, union ? a.MaskUnion : Mask, s.Probs, s.Ctx, B, T, C, H, pAttn, Key(1 + 4 * l), a.Attention);
            ops.LinearForward(s.Ctx, P(w.AttnOutWeight), P(w.AttnOutBias), a.GTmp, N, C, C);
            ops.ResidualLayerNormForward(s.H1, s.Ln1In, s.Ln1Mean, s.Ln1Rstd, a.GTmp, x, P(w.Ln1Gamma), P(w.Ln1Beta), N, C, c.LayerNormEps, pHidden, Key(2 + 4 * l));
            ops.LinearForward(s.H1, P(w.Fc1Weight), P(w.Fc1Bias), s.Fc1, N, C, I);
            ops.GeluForward(s.Fc1, s.Gelu, (long)N * I);
            ops.LinearForward(s.Gelu, P(w.Fc2Weight), P(w.Fc2Bias), a.GTmp, N, I, C);
            ops.ResidualLayerNormForward(s.Out, s.Ln2In, s.Ln2Mean, s.Ln2Rstd, a.GTmp, s.H1, P(w.Ln2Gamma), P(w.Ln2Beta), N, C, c.LayerNormEps, pHidden, Key(3 + 4 * l));
        }

        // pooler on [CLS] (tmix after the last layer mixes first), senmix, dropout, classifier, loss
        nint last = a.Layers[^1].Out;
        if (m is { Site: MixSite.Hidden } && m.Layer == c.NumHiddenLayers)
        {
            ops.MixRows(last, a.MixedHidden, Partner, Lambda, B, T, C);
            last = a.MixedHidden;
        }
        ops.GatherFirstToken(last, a.Cls, B, T, C);
        ops.LinearForward(a.Cls, P(lo.PoolerWeight), P(lo.PoolerBias), a.PooledPre, B, C, C);
        ops.TanhForward(a.PooledPre, a.Pooled, (long)B * C);
        if (m is { Site: MixSite.Pooled }) ops.MixRows(a.Pooled, a.PooledMixed, Partner, Lambda, B, 1, C);
        if (pCls > 0f) ops.DropoutForward(PooledMixedOrPlain, a.PooledDrop, (long)B * C, pCls, Key(1 + 4 * c.NumHiddenLayers));
        ops.LinearForward(ClassifierInput, P(lo.ClassifierWeight), P(lo.ClassifierBias), a.Logits, B, C, L);
        ops.MixedCrossEntropy(a.Logits, Labels, Partner, Lambda, a.Losses, a.Probs, training ? a.GLogits : 0, B, L);
    }

    /// <summary>The input of layer l as the forward saw it (the mixed states for tmix's layer).</summary>
    private nint LayerInput(int l)
    {
        if (l == 0) return EmbeddingOutput;
        return mix is { Site: MixSite.Hidden } && mix.Layer == l ? buf!.MixedHidden : buf!.Layers[l - 1].Out;
    }

    private nint PooledMixedOrPlain => mix is { Site: MixSite.Pooled } ? buf!.PooledMixed : buf!.Pooled;
    private nint ClassifierInput => pCls > 0f ? buf!.PooledDrop : PooledMixedOrPlain;

    // ---------------------------------------------------------------------------------------
    // backward (BertClassifier.Backward, op for op)

    private void Backward()
    {
        var c = Config; var a = buf!; var lo = Layout; var m = mix;
        int N = B * T, C = c.HiddenSize, I = c.IntermediateSize, H = c.NumAttentionHeads, L = c.NumLabels;
        long NC = (long)N * C, BC = (long)B * C;

        ops.LinearBackward(a.GLogits, ClassifierInput, P(lo.ClassifierWeight), a.GPooled, G(lo.ClassifierWeight), G(lo.ClassifierBias), B, C, L);
        if (pCls > 0f) ops.DropoutBackward(a.GPooled, a.GPooled, BC, pCls, Key(1 + 4 * c.NumHiddenLayers), false);
        nint gPooled = a.GPooled;
        if (m is { Site: MixSite.Pooled }) { ops.MixRowsBackward(a.GPooled, a.GCls, Partner, Lambda, B, 1, C); gPooled = a.GCls; }
        ops.TanhBackward(a.Pooled, gPooled, a.GPooledPre, BC);
        ops.LinearBackward(a.GPooledPre, a.Cls, P(lo.PoolerWeight), a.GCls, G(lo.PoolerWeight), G(lo.PoolerBias), B, C, C);
        nint gOut = a.GOut, gTmp = a.GTmp;
        ops.GatherFirstTokenBackward(a.GCls, gOut, B, T, C);
        if (m is { Site: MixSite.Hidden } && m.Layer == c.NumHiddenLayers)
        {
            ops.MixRowsBackward(gOut, gTmp, Partner, Lambda, B, T, C);
            (gOut, gTmp) = (gTmp, gOut);
        }

        for (int l = c.NumHiddenLayers - 1; l >= 0; l--)
        {
            var w = lo.Layers[l];
            var s = a.Layers[l];
            nint x = LayerInput(l);
            bool mixedInput = l > 0 && m is { Site: MixSite.Hidden } && m.Layer == l;

            // out = LN2(h1 + dropout(fc2(gelu(fc1(h1)))))
            ops.LayerNormBackward(gOut, s.Ln2In, s.Ln2Mean, s.Ln2Rstd, P(w.Ln2Gamma), a.GH1, G(w.Ln2Gamma), G(w.Ln2Beta), N, C);
            nint gFc2 = a.GH1;
            if (pHidden > 0f) { ops.DropoutBackward(a.GH1, gTmp, NC, pHidden, Key(3 + 4 * l), false); gFc2 = gTmp; }
            ops.LinearBackward(gFc2, s.Gelu, P(w.Fc2Weight), a.GI, G(w.Fc2Weight), G(w.Fc2Bias), N, I, C);
            ops.GeluBackward(s.Fc1, a.GI, a.GI, (long)N * I);
            ops.LinearBackward(a.GI, s.H1, P(w.Fc1Weight), a.GH1, G(w.Fc1Weight), G(w.Fc1Bias), N, C, I, accumulateDx: true);

            // h1 = LN1(x + dropout(attn_out(attention(qkv(x)))))
            ops.LayerNormBackward(a.GH1, s.Ln1In, s.Ln1Mean, s.Ln1Rstd, P(w.Ln1Gamma), gOut, G(w.Ln1Gamma), G(w.Ln1Beta), N, C);
            nint gProj = gOut;
            if (pHidden > 0f) { ops.DropoutBackward(gOut, gTmp, NC, pHidden, Key(2 + 4 * l), false); gProj = gTmp; }
            ops.LinearBackward(gProj, s.Ctx, P(w.AttnOutWeight), a.GCtx, G(w.AttnOutWeight), G(w.AttnOutBias), N, C, C);
            ops.AttentionBackward(a.GCtx, s.Qkv, s.Probs, a.GQkv, B, T, C, H, pAttn, Key(1 + 4 * l), a.Attention);
            ops.LinearBackward(a.GQkv, x, P(w.QkvWeight), gOut, G(w.QkvWeight), G(w.QkvBias), N, C, 3 * C, accumulateDx: true);

            if (mixedInput)
            {
                ops.MixRowsBackward(gOut, gTmp, Partner, Lambda, B, T, C);
                (gOut, gTmp) = (gTmp, gOut);
            }
        }

        if (pHidden > 0f) ops.DropoutBackward(gOut, gOut, NC, pHidden, Key(0), false);
        ops.LayerNormBackward(gOut, a.EmbSum, a.EmbMean, a.EmbRstd, P(lo.EmbLnGamma), gTmp, G(lo.EmbLnGamma), G(lo.EmbLnBeta), N, C);
        bool wordMix = m is { Site: MixSite.WordEmbeddings };
        ops.EmbeddingBackward(gTmp, G(lo.WordEmbeddings), G(lo.PositionEmbeddings), G(lo.TypeEmbeddings), Ids, TypeIds,
            wordMix ? Partner : 0, wordMix ? Lambda : 0, wordMix, B, T, C);
    }

    // ---------------------------------------------------------------------------------------
    // IBertEngine

    public double ForwardBackward(Batch batch, Mix? m, ulong seed, long step)
    {
        gpu.Fill32(gradients, 0, Layout.Size);
        Forward(batch, training: true, seed, step, m);
        Backward();
        ops.StepStats(stats, buf!.Losses, B, 0, 0, 0, 0f);
        return DownloadStats().Loss;
    }

    public StepResult TrainStep(Batch batch, Mix? m, float learningRate, long step, ulong seed, in OptimizerSettings o)
    {
        gpu.Fill32(gradients, 0, Layout.Size);
        Forward(batch, training: true, seed, step, m);
        Backward();
        // the clip factor stays on the device, where AdamW reads it
        ops.StepStats(stats, buf!.Losses, B, gradients, Layout.Size, normPartial, o.MaxGradNorm);
        foreach (var t in Layout.Tensors)
            ops.AdamWStep(P(t.Offset), G(t.Offset), At(adamM, t.Offset), At(adamV, t.Offset), t.Length,
                new AdamW.Hyper(learningRate, o.Beta1, o.Beta2, o.Epsilon, t.WeightDecay ? o.WeightDecay : 0f, step), stats);
        return DownloadStats();
    }

    private StepResult DownloadStats()
    {
        gpu.CopyToHost<float>(hostStats, stats);
        return new StepResult(hostStats[0], hostStats[1]);
    }

    public double Evaluate(Batch batch, Span<float> probabilities)
    {
        Forward(batch, training: false, 0, 0, null);
        ops.StepStats(stats, buf!.Losses, B, 0, 0, 0, 0f);
        double loss = DownloadStats().Loss;
        gpu.CopyToHost(probabilities[..(B * Config.NumLabels)], buf.Probs);
        return loss;
    }

    public void CopyLogits(Span<float> destination) => gpu.CopyToHost(destination[..(B * Config.NumLabels)], buf!.Logits);
    public void CopyGradients(Span<float> destination) => gpu.CopyToHost(destination[..Layout.Size], gradients);
    public void CopyParameters(Span<float> destination) => gpu.CopyToHost(destination[..Layout.Size], parameters);

    public void CopyOptimizerState(Span<float> m, Span<float> v)
    {
        gpu.CopyToHost(m[..Layout.Size], adamM);
        gpu.CopyToHost(v[..Layout.Size], adamV);
    }

    public void LoadState(ReadOnlySpan<float> p, ReadOnlySpan<float> m, ReadOnlySpan<float> v)
    {
        gpu.CopyToDevice(parameters, p[..Layout.Size]);
        if (!m.IsEmpty) gpu.CopyToDevice(adamM, m[..Layout.Size]);
        if (!v.IsEmpty) gpu.CopyToDevice(adamV, v[..Layout.Size]);
    }

    public void Dispose()
    {
        ops.Dispose();
        foreach (var p in batchAllocations) gpu.Free(p);
        foreach (var p in fixedAllocations) gpu.Free(p);
        batchAllocations.Clear(); fixedAllocations.Clear();
    }
}
