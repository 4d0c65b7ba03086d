using MixupBert.Kernels.Cuda;
using MixupBert.Model.Weights;
using Hyper = MixupBert.Kernels.Cpu.AdamW.Hyper;

namespace MixupBert.Model.Bert;

/// <summary>
/// BertForSequenceClassification on a CUDA GPU: <see cref="CpuBertEngine"/>'s forward and backward,
/// op for op under the same names (MixupBert.Kernels.Cuda's launchers instead of
/// MixupBert.Kernels.Cpu's ops), following the same <see cref="BertSchedule"/>. Weights, gradients,
/// Adam moments and activations stay on the device for the whole run; per step the host sends token
/// ids, type ids, masks, labels, partners and λ, and the embedding backward's buckets (copies from
/// page-locked memory, enqueued without waiting) and reads back the loss and the gradient norm.
/// A training step waits for nothing: <see cref="StartTrainStep"/> enqueues it, ending with an
/// asynchronous copy of [loss, norm] into a page-locked slot and an event; <see cref="FinishTrainStep"/>
/// waits for that event. So the host builds and enqueues step n + 1 while the GPU computes step n.
/// The per-step host buffers (the uploads' staging, the result slot, the event) come in two
/// <see cref="StepSlot"/>s, by the parity of the step's start: step n + 1 fills the other slot while the
/// stream may still be copying step n's, and reuses step n − 1's, which has been finished (waited for).
/// Every other public call needs no step in flight and ends with a synchronous read-back. Under bf16 (<see cref="DType.BF16"/> activations) the activations and the GEMMs'
/// copy of the weights are bfloat16 (AdamW rounds each new weight into that copy as it writes the
/// float32 master); everything else stays float32.
/// </summary>
public sealed class GpuBertEngine : IBertEngine
{
    private readonly IGpu gpu;
    private readonly GpuContext g;
    private readonly List<nint> fixedAllocations = new(), batchAllocations = new();
    private readonly nint parameters, parametersX, gradients, adamM, adamV, stats;
    private readonly DType activations;
    private readonly float[] hostStats = new float[2];
    private BertActivations<nint>? act;
    private Uploads up;
    private Attention.Scratch scratch;
    private int B, T;
    private Mix? mix;
    private Batch? current; // the batch of the last forward: the embedding backward buckets its ids on the host
    private readonly Embedding.Buckets embeddingBuckets;
    private float pHidden, pAttn, pCls;
    private DropoutKeys keys;
    private readonly StepSlot[] slots; // per-step host buffers, two: see the class's summary
    private StepsInFlight inFlight;

    /// <summary>One step's host side: the staging of its uploads, the page-locked slot its [loss, norm]
    /// is copied into, and the event recorded after that copy.</summary>
    private sealed class StepSlot(IGpu gpu) : IDisposable
    {
        public readonly PinnedStaging Ints = new(gpu), Floats = new(gpu);
        public readonly nint Stats = gpu.AllocHost(2 * sizeof(float));
        public readonly nint Event = gpu.CreateEvent();

        public unsafe StepResult Result => new(((float*)Stats)[0], ((float*)Stats)[1]);

        public void Dispose()
        {
            Ints.Dispose(); Floats.Dispose();
            gpu.FreeHost(Stats);
            gpu.DestroyEvent(Event);
        }
    }

    /// <summary>The slot of the next step to start, and of any call made with no step in flight: never
    /// the slot of a step in flight (at most one is when a step starts).</summary>
    private StepSlot NextSlot => slots[inFlight.Started % 2];

    public string Backend => activations == DType.BF16 ? $"cuda ({gpu.Name}, bf16)" : $"cuda ({gpu.Name})";
    /// <summary>The device it runs on (for the driver's memory figures in bench).</summary>
    public IGpu Gpu => gpu;
    /// <summary>The bf16 fused attention's tensor-core kernels (bench's --attention-kernels).</summary>
    public TensorCoreKernels AttentionTensorCores { get => g.AttentionTensorCores; set => g.AttentionTensorCores = value; }
    public BertConfig Config { get; }
    public BertLayout Layout { get; }

    private readonly bool ownsGpu;

    /// <param name="activations">F32, or BF16 for mixed precision (kernels.cu's bf16 module).</param>
    /// <param name="ownsGpu">Dispose the device with the engine (a run's device: its context, stream,
    /// cuBLAS handle and modules go when the run does; compare makes one per run).</param>
    public GpuBertEngine(IGpu gpu, BertConfig config, float[] initialParameters, DType activations = DType.F32, bool ownsGpu = false)
    {
        this.gpu = gpu;
        this.ownsGpu = ownsGpu;
        this.activations = activations;
        g = new GpuContext(gpu, activations);
        Config = config;
        Layout = new BertLayout(config);
        if (initialParameters.Length != Layout.Size) throw new ArgumentException($"parameters have {initialParameters.Length} floats; the config needs {Layout.Size}");
        nint Fixed(long floats) { nint p = gpu.Alloc(floats * 4); fixedAllocations.Add(p); return p; }
        parameters = Fixed(Layout.Size); gradients = Fixed(Layout.Size); adamM = Fixed(Layout.Size); adamV = Fixed(Layout.Size);
        stats = Fixed(4);
        if (activations == DType.BF16) { parametersX = gpu.Alloc((long)Layout.Size * 2); fixedAllocations.Add(parametersX); }
        gpu.CopyToDevice<float>(parameters, initialParameters);
        RefreshParametersX();
        gpu.Fill32(adamM, 0, Layout.Size); gpu.Fill32(adamV, 0, Layout.Size); gpu.Fill32(gradients, 0, Layout.Size);
        gradientsClear = true;
        embeddingBuckets = new Embedding.Buckets(gpu);
        slots = [new StepSlot(gpu), new StepSlot(gpu)];
        adamBlocks = new AdamW.TensorBlocks(gpu, Layout.OptimizerTensors());
    }

    // AdamW updates every tensor in one launch and clears the gradients the backward adds into as it
    // goes: the next step then skips its own pass over them (gradientsClear says whether they are all
    // zero now; the linear layers' weight gradients may hold the last step's, which the next backward's
    // GEMMs overwrite: BertLayout.OptimizerTensors)
    private readonly AdamW.TensorBlocks adamBlocks;
    private bool gradientsClear;

    private void ClearGradients()
    {
        if (!gradientsClear) gpu.Fill32(gradients, 0, Layout.Size);
        gradientsClear = true;
    }

    private static nint At(nint p, long floats) => p + (nint)(floats * 4);
    private nint P(int offset) => At(parameters, offset);
    private nint G(int offset) => At(gradients, offset);
    /// <summary>A weight matrix as the GEMMs read it: the float32 master, or its bf16 copy.</summary>
    private nint W(int offset) => parametersX != 0 ? parametersX + (nint)offset * 2 : P(offset);

    private void RefreshParametersX()
    {
        if (parametersX != 0) AdamW.CopyToActivations(g, parameters, parametersX, Layout.Size);
    }

    // ---------------------------------------------------------------------------------------
    // per-step uploads: [ids N | type ids N | labels B | partner B] and [mask N | λ B], each in one copy

    private readonly record struct Uploads(nint Ints, nint Floats);

    private nint Ids => up.Ints;
    private nint TypeIds => At(up.Ints, B * T);
    private nint Labels => At(up.Ints, 2 * B * T);
    private nint Partner => mix == null ? 0 : At(up.Ints, 2 * B * T + B);
    private nint Mask => up.Floats;
    private nint Lambda => mix == null ? 0 : At(up.Floats, B * T);

    private void Upload(Batch batch)
    {
        int n = B * T;
        var slot = NextSlot;
        var ints = slot.Ints.Get<int>(2 * n + 2 * B);
        var floats = slot.Floats.Get<float>(n + B);
        batch.InputIds.CopyTo(ints);
        batch.TokenTypeIds.CopyTo(ints[n..]);
        batch.Labels.CopyTo(ints[(2 * n)..]);
        batch.AttentionMask.CopyTo(floats);
        if (mix != null)
        {
            mix.Partner.AsSpan(0, B).CopyTo(ints[(2 * n + B)..]);
            mix.Lambda.AsSpan(0, B).CopyTo(floats[n..]);
        }
        slot.Ints.Upload<int>(up.Ints, ints.Length);
        slot.Floats.Upload<float>(up.Floats, floats.Length);
    }

    public void Reserve(int batchSize, int seqLen)
    {
        inFlight.RequireNone(nameof(Reserve));
        EnsureActivations(batchSize, seqLen);
    }

    /// <summary>Device buffers for the largest batch seen (the same inventory as the CPU's).</summary>
    private BertActivations<nint> EnsureActivations(int batch, int seqLen)
    {
        if (act != null && act.MaxBatch >= batch && act.MaxSeqLen >= seqLen) return act;
        int mb = Math.Max(batch, act?.MaxBatch ?? 0), mt = Math.Max(seqLen, act?.MaxSeqLen ?? 0);
        // act goes before its memory does: if an allocation below fails (out of GPU memory), the next
        // call allocates afresh instead of using freed buffers
        act = null;
        foreach (var p in batchAllocations) gpu.Free(p);
        batchAllocations.Clear();
        nint Alloc(long floats) { nint p = gpu.Alloc(Math.Max(floats, 1) * 4); batchAllocations.Add(p); return p; }
        nint AllocX(long elements) { nint p = gpu.Alloc(Math.Max(elements, 1) * activations.Size()); batchAllocations.Add(p); return p; }
        long n = (long)mb * mt;
        up = new Uploads(Alloc(2 * n + 2 * mb), Alloc(n + mb));
        int C = Config.HiddenSize, H = Config.NumAttentionHeads;
        scratch = Attention.Scratch.Allocate(AllocX, Alloc, mb, mt, C, H);
        // fused attention saves a float32 log-sum-exp per query (and its dropout bits), not the [B, H, T, T] probabilities
        return act = new BertActivations<nint>(Config, mb, mt, AllocX, Alloc, Attention.Fused(C, H) ? Attention.SavedElements(mb, mt, C, H) : null);
    }

    // ---------------------------------------------------------------------------------------
    // forward

    private void Forward(Batch batch, bool training, ulong seed, long step, Mix? m)
    {
        var c = Config; var lo = Layout;
        batch.Validate(c, m);
        B = batch.BatchSize; T = batch.SeqLen; current = batch;
        var a = EnsureActivations(B, T);
        mix = m;
        keys = new DropoutKeys(seed, step);
        pHidden = training ? c.HiddenDropoutProb : 0f; pAttn = training ? c.AttentionProbsDropoutProb : 0f; pCls = training ? c.ClassifierDropoutProb : 0f;
        Upload(batch);
        int N = B * T, C = c.HiddenSize, I = c.IntermediateSize, H = c.NumAttentionHeads, L = c.NumLabels;

        // embeddings (mixup: the partner's words interpolated in the lookup), LayerNorm, dropout
        if (BertSchedule.NeedsUnionMask(m)) Mixup.UnionMask(g, Mask, Partner, Lambda, a.MaskUnion, B, T);
        bool mixWords = BertSchedule.MixesWords(m);
        Embedding.Forward(g, Ids, TypeIds, P(lo.WordEmbeddings), P(lo.PositionEmbeddings), P(lo.TypeEmbeddings), a.EmbSum, B, T, C,
            mixWords ? Partner : 0, mixWords ? Lambda : 0);
        LayerNorm.Forward(g, a.EmbSum, P(lo.EmbLnGamma), P(lo.EmbLnBeta), a.EmbLn, a.EmbMean, a.EmbRstd, N, C, c.LayerNormEps);
        if (pHidden > 0f) Dropout.Forward(g, a.EmbLn, a.EmbOut, (long)N * C, pHidden, keys.Embeddings);

        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            var w = lo.Layers[l];
            var s = a.Layers[l];
            if (BertSchedule.MixesLayerInput(m, l)) Mixup.Forward(g, a.Layers[l - 1].Out, Partner, Lambda, a.MixedHidden, B, T, C);
            nint x = LayerInput(l);
            nint mask = BertSchedule.UsesUnionMask(m, l) ? a.MaskUnion : Mask;

            // h1 = LN1(x + dropout(attention output projection(attention(qkv(x)))))
            Linear.Forward(g, x, W(w.QkvWeight), 0, s.Qkv, N, C, 3 * C);  // its bias is added by attention as it reads Q, K and V
            Attention.Forward(g, s.Qkv, P(w.QkvBias), mask, s.Probs, s.Ctx, B, T, C, H, pAttn, keys.AttentionProbs(l), scratch);
            Linear.Forward(g, s.Ctx, W(w.AttnOutWeight), 0, a.GTmp, N, C, C); // its bias is added by the LayerNorm
            LayerNorm.DropoutResidualForward(g, a.GTmp, P(w.AttnOutBias), x, P(w.Ln1Gamma), P(w.Ln1Beta), s.Ln1Sum, s.H1, s.Ln1Mean, s.Ln1Rstd, N, C, c.LayerNormEps, pHidden, keys.AttentionOutput(l));
            // out = LN2(h1 + dropout(fc2(gelu(fc1(h1)))))
            Linear.ForwardGelu(g, s.H1, W(w.Fc1Weight), P(w.Fc1Bias), s.Fc1, s.Gelu, N, C, I);
            Linear.Forward(g, s.Gelu, W(w.Fc2Weight), 0, a.GTmp, N, I, C);    // its bias is added by the LayerNorm
            LayerNorm.DropoutResidualForward(g, a.GTmp, P(w.Fc2Bias), s.H1, P(w.Ln2Gamma), P(w.Ln2Beta), s.Ln2Sum, s.Out, s.Ln2Mean, s.Ln2Rstd, N, C, c.LayerNormEps, pHidden, keys.FeedForwardOutput(l));
        }

        // pooler on [CLS] (tmix after the last layer mixes first), senmix, dropout, classifier, loss
        nint encoded = a.Layers[^1].Out;
        if (BertSchedule.MixesEncoderOutput(m, c.NumHiddenLayers))
        {
            Mixup.Forward(g, encoded, Partner, Lambda, a.MixedHidden, B, T, C);
            encoded = a.MixedHidden;
        }
        FirstToken.Forward(g, encoded, a.Cls, B, T, C);
        Linear.Forward(g, a.Cls, W(lo.PoolerWeight), P(lo.PoolerBias), a.PooledPre, B, C, C);
        Activations.TanhForward(g, a.PooledPre, a.Pooled, (long)B * C);
        if (BertSchedule.MixesPooled(m)) Mixup.Forward(g, a.Pooled, Partner, Lambda, a.PooledMixed, B, 1, C);
        if (pCls > 0f) Dropout.Forward(g, PooledMixedOrPlain, a.PooledDrop, (long)B * C, pCls, keys.Classifier(c.NumHiddenLayers));
        Linear.Forward(g, ClassifierInput, W(lo.ClassifierWeight), P(lo.ClassifierBias), a.Logits, B, C, L);
        CrossEntropy.Forward(g, a.Logits, Labels, Partner, Lambda, a.Probs, a.Losses, training ? a.GLogits : 0, B, L);
        CrossEntropy.Mean(g, a.Losses, B, stats);
    }

    /// <summary>The input of layer l as the forward saw it (the mixed states for tmix's layer).</summary>
    private nint LayerInput(int l)
    {
        if (l == 0) return pHidden > 0f ? act!.EmbOut : act!.EmbLn;
        return BertSchedule.MixesLayerInput(mix, l) ? act!.MixedHidden : act!.Layers[l - 1].Out;
    }

    private nint PooledMixedOrPlain => BertSchedule.MixesPooled(mix) ? act!.PooledMixed : act!.Pooled;
    private nint ClassifierInput => pCls > 0f ? act!.PooledDrop : PooledMixedOrPlain;

    // ---------------------------------------------------------------------------------------
    // backward

    private void Backward()
    {
        nint gEmbeddings = BackwardToEmbeddings();
        var c = Config; var lo = Layout;
        bool mixWords = BertSchedule.MixesWords(mix);
        var batch = current!;
        embeddingBuckets.Build(batch.InputIds, batch.TokenTypeIds, B, T, c.VocabSize, c.TypeVocabSize,
            mixWords ? mix!.Partner.AsSpan(0, B) : default, mixWords ? mix!.Lambda.AsSpan(0, B) : default);
        Embedding.Backward(g, gEmbeddings, embeddingBuckets, G(lo.WordEmbeddings), G(lo.PositionEmbeddings), G(lo.TypeEmbeddings), B, T, c.HiddenSize);
    }

    /// <summary>CpuBertEngine.BackwardToEmbeddings: every gradient but the embedding tables'; returns
    /// the buffer holding ∂loss/∂e [N, C] at the input of the embeddings' LayerNorm.</summary>
    private nint BackwardToEmbeddings()
    {
        var c = Config; var a = act!; var lo = Layout; var m = mix;
        int N = B * T, C = c.HiddenSize, I = c.IntermediateSize, H = c.NumAttentionHeads, L = c.NumLabels;
        long BC = (long)B * C;

        // logits → classifier → dropout → (senmix) → tanh → pooler → [CLS]
        Linear.Backward(g, a.GLogits, ClassifierInput, W(lo.ClassifierWeight), a.GPooled, G(lo.ClassifierWeight), G(lo.ClassifierBias), B, C, L);
        if (pCls > 0f) Dropout.Backward(g, a.GPooled, a.GPooled, BC, pCls, keys.Classifier(c.NumHiddenLayers), false);
        nint gPooled = a.GPooled;
        if (BertSchedule.MixesPooled(m)) { Mixup.Backward(g, a.GPooled, Partner, Lambda, a.GCls, B, 1, C); gPooled = a.GCls; }
        Activations.TanhBackward(g, a.Pooled, gPooled, a.GPooledPre, BC);
        Linear.Backward(g, a.GPooledPre, a.Cls, W(lo.PoolerWeight), a.GCls, G(lo.PoolerWeight), G(lo.PoolerBias), B, C, C);
        nint gOut = a.GOut, gTmp = a.GTmp;
        FirstToken.Backward(g, a.GCls, gOut, B, T, C);
        if (BertSchedule.MixesEncoderOutput(m, c.NumHiddenLayers))
        {
            Mixup.Backward(g, gOut, Partner, Lambda, gTmp, B, T, C);
            (gOut, gTmp) = (gTmp, gOut);
        }

        for (int l = c.NumHiddenLayers - 1; l >= 0; l--)
        {
            var w = lo.Layers[l];
            var s = a.Layers[l];
            nint x = LayerInput(l);

            // out = LN2(h1 + dropout(fc2(gelu(fc1(h1)))))
            // the LayerNorm's backward writes the residual's gradient and, through the dropout, FC2's, with
            // FC2's bias gradient (the bias its forward added)
            nint gFc2 = pHidden > 0f ? gTmp : a.GH1;
            LayerNorm.BackwardAndDropout(g, gOut, s.Ln2Sum, s.Ln2Mean, s.Ln2Rstd, P(w.Ln2Gamma), a.GH1, pHidden > 0f ? gTmp : 0,
                G(w.Ln2Gamma), G(w.Ln2Beta), G(w.Fc2Bias), N, C, pHidden, keys.FeedForwardOutput(l));
            Linear.Backward(g, gFc2, s.Gelu, W(w.Fc2Weight), a.GI, G(w.Fc2Weight), 0, N, I, C);
            Activations.GeluBackward(g, s.Fc1, P(w.Fc1Bias), a.GI, a.GI, N, I, dbias: G(w.Fc1Bias));  // FC1's bias gradient on the way
            Linear.Backward(g, a.GI, s.H1, W(w.Fc1Weight), a.GH1, G(w.Fc1Weight), 0, N, C, I, accumulateDx: true);

            // h1 = LN1(x + dropout(attention output projection(attention(qkv(x)))))
            nint gProj = pHidden > 0f ? gTmp : gOut;
            LayerNorm.BackwardAndDropout(g, a.GH1, s.Ln1Sum, s.Ln1Mean, s.Ln1Rstd, P(w.Ln1Gamma), gOut, pHidden > 0f ? gTmp : 0,
                G(w.Ln1Gamma), G(w.Ln1Beta), G(w.AttnOutBias), N, C, pHidden, keys.AttentionOutput(l));
            Linear.Backward(g, gProj, s.Ctx, W(w.AttnOutWeight), a.GCtx, G(w.AttnOutWeight), 0, N, C, C);
            Attention.Backward(g, a.GCtx, s.Qkv, P(w.QkvBias), BertSchedule.UsesUnionMask(m, l) ? a.MaskUnion : Mask, s.Probs, s.Ctx, a.GQkv, B, T, C, H, pAttn, keys.AttentionProbs(l), scratch);
            Linear.Backward(g, a.GQkv, x, W(w.QkvWeight), gOut, G(w.QkvWeight), G(w.QkvBias), N, C, 3 * C, accumulateDx: true);

            if (BertSchedule.MixesLayerInput(m, l))
            {
                // the layer's input was λ·h[b] + (1−λ)·h[partner]: send the gradient to both
                Mixup.Backward(g, gOut, Partner, Lambda, gTmp, B, T, C);
                (gOut, gTmp) = (gTmp, gOut);
            }
        }

        // embeddings: dropout → LayerNorm (→ the scatter-add into the tables, in Backward)
        LayerNorm.DropoutAndBackward(g, gOut, a.EmbSum, a.EmbMean, a.EmbRstd, P(lo.EmbLnGamma), gTmp, G(lo.EmbLnGamma), G(lo.EmbLnBeta), N, C,
            pHidden, keys.Embeddings);
        return gTmp;
    }

    // ---------------------------------------------------------------------------------------
    // IBertEngine

    public double ForwardBackward(Batch batch, Mix? m, ulong seed, long step)
    {
        inFlight.RequireNone(nameof(ForwardBackward));
        ClearGradients();
        gradientsClear = false; // from here the backward adds into them (also if it stops half-way)
        Forward(batch, training: true, seed, step, m);
        Backward();
        return DownloadStats().Loss;
    }

    public void TokenSaliency(Batch batch, ulong seed, long step, Span<float> saliency)
    {
        int n = batch.BatchSize * batch.SeqLen;
        if (saliency.Length < n) throw new ArgumentException($"token saliency: {saliency.Length} floats for {n} tokens");
        inFlight.RequireNone(nameof(TokenSaliency));
        gradientsClear = false; // the backward below adds into them
        Forward(batch, training: true, seed, step, null);
        RowNorm.Forward(g, BackwardToEmbeddings(), act!.Saliency, n, Config.HiddenSize);
        ClearGradients(); // the parameter gradients were scratch (as on the CPU)
        gpu.CopyToHost(saliency[..n], act.Saliency);
    }

    public StepResult TrainStep(Batch batch, Mix? m, float learningRate, long step, ulong seed, in OptimizerSettings o)
    {
        inFlight.RequireNone(nameof(TrainStep));
        StartTrainStep(batch, m, learningRate, step, seed, o);
        return FinishTrainStep();
    }

    public void StartTrainStep(Batch batch, Mix? m, float learningRate, long step, ulong seed, in OptimizerSettings o)
    {
        inFlight.CheckCanStart();
        var slot = NextSlot; // Forward stages its uploads in it too (Embedding.Buckets alternates its own)
        try
        {
            ClearGradients();
            gradientsClear = false; // from here the backward adds into them (also if it stops half-way)
            Forward(batch, training: true, seed, step, m);
            Backward();
            // the clip factor stays on the device, where AdamW reads it
            AdamW.GlobalNormClip(g, gradients, Layout.Size, o.MaxGradNorm, stats);
            AdamW.StepTensors(g, adamBlocks, parameters, gradients, adamM, adamV,
                new Hyper(learningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay, step), At(stats, 2), clearGradients: true, paramX: parametersX);
            gradientsClear = true;
            // [loss, norm] into the slot, behind the step on the stream; the next step's kernels overwrite
            // the device's stats only after this copy has read them (one stream, in order)
            gpu.CopyToHostAsync(slot.Stats, stats, 2 * sizeof(float));
            gpu.RecordEvent(slot.Event);
        }
        catch
        {
            // the step failed half-way (a shape the kernels refuse, an allocation): what it queued may
            // still read the slot's staging, which the next start refills, so wait for it
            try { gpu.RecordEvent(slot.Event); gpu.WaitEvent(slot.Event); }
            catch (CudaException) { } // a dead context: the first exception says more
            throw;
        }
        inFlight.Start();
    }

    public StepResult FinishTrainStep()
    {
        var slot = slots[inFlight.Oldest % 2];
        inFlight.Finish(); // throws when none is in flight
        gpu.WaitEvent(slot.Event);
        return slot.Result;
    }

    private StepResult DownloadStats()
    {
        gpu.CopyToHost<float>(hostStats, stats);
        return new StepResult(hostStats[0], hostStats[1]);
    }

    public double Evaluate(Batch batch, Span<float> probabilities)
    {
        inFlight.RequireNone(nameof(Evaluate));
        Forward(batch, training: false, 0, 0, null);
        double loss = DownloadStats().Loss;
        gpu.CopyToHost(probabilities[..(B * Config.NumLabels)], act!.Probs);
        return loss;
    }

    public void CopyLogits(Span<float> destination)
    {
        inFlight.RequireNone(nameof(CopyLogits));
        int n = B * Config.NumLabels;
        if (activations == DType.F32) { gpu.CopyToHost(destination[..n], act!.Logits); return; }
        Span<ushort> bits = n <= 1024 ? stackalloc ushort[n] : new ushort[n];
        gpu.CopyToHost(bits, act!.Logits);
        BFloat16.ToFloat(bits, destination);
    }
    public void CopyGradients(Span<float> destination)
    {
        inFlight.RequireNone(nameof(CopyGradients));
        gpu.CopyToHost(destination[..Layout.Size], gradients);
    }

    public void CopyParameters(Span<float> destination)
    {
        inFlight.RequireNone(nameof(CopyParameters));
        gpu.CopyToHost(destination[..Layout.Size], parameters);
    }

    public void CopyOptimizerState(Span<float> m, Span<float> v)
    {
        inFlight.RequireNone(nameof(CopyOptimizerState));
        gpu.CopyToHost(m[..Layout.Size], adamM);
        gpu.CopyToHost(v[..Layout.Size], adamV);
    }

    public void LoadState(ReadOnlySpan<float> p, ReadOnlySpan<float> m, ReadOnlySpan<float> v)
    {
        inFlight.RequireNone(nameof(LoadState));
        gpu.CopyToDevice(parameters, p[..Layout.Size]);
        if (!m.IsEmpty) gpu.CopyToDevice(adamM, m[..Layout.Size]);
        if (!v.IsEmpty) gpu.CopyToDevice(adamV, v[..Layout.Size]);
        RefreshParametersX();
    }

    public void Dispose()
    {
        // Every release is tried even when one fails: after a kernel fault the context is dead and every
        // call in it fails, and the owned device must still be released (releasing its primary context is
        // what frees the device memory). The first failure is rethrown.
        Exception? first = null;
        void Release(Action release)
        {
            try { release(); }
            catch (Exception e) { first ??= e; }
        }
        // a step still in flight (a run stopped by a diverging loss or an exception) is waited for and
        // dropped: its kernels must not outlive the memory they use
        Release(() => { while (inFlight.Count > 0) FinishTrainStep(); });
        Release(g.Dispose);
        Release(adamBlocks.Dispose);
        Release(embeddingBuckets.Dispose);
        foreach (var slot in slots) Release(slot.Dispose);
        foreach (var p in batchAllocations) Release(() => gpu.Free(p));
        foreach (var p in fixedAllocations) Release(() => gpu.Free(p));
        batchAllocations.Clear(); fixedAllocations.Clear();
        if (ownsGpu) Release(gpu.Dispose);
        if (first != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
    }
}
