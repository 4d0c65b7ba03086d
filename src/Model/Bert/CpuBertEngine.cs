using MixupBert.Kernels.Cpu;
using MixupBert.Model.Weights;

namespace MixupBert.Model.Bert;

/// <summary>
/// BertForSequenceClassification on the CPU: forward, backward, clipping and AdamW on host arrays,
/// llm.c style. <see cref="GpuBertEngine"/> is the same sequence of the same ops on a GPU; both follow
/// <see cref="BertSchedule"/>. Every activation the backward needs is kept in
/// <see cref="BertActivations{T}"/>, allocated once for the largest batch seen, so a training step
/// allocates nothing in steady state. Parameters, gradients and Adam moments are flat arrays laid out
/// by <see cref="BertLayout"/>.
/// </summary>
public sealed class CpuBertEngine : IBertEngine
{
    private readonly float[] m, v;
    private BertActivations<float[]>? act;
    private Forwarded last; // default until the first forward: no batch, not training

    /// <summary>What the last forward ran on: what its backward replays.</summary>
    private readonly record struct Forwarded(Batch? Batch, Mix? Mix, bool Training, DropoutKeys Keys, float PHidden, float PAttn, float PCls);

    public CpuBertEngine(BertConfig config, float[] parameters)
    {
        Config = config;
        Layout = new BertLayout(config);
        if (parameters.Length != Layout.Size) throw new ArgumentException($"parameters have {parameters.Length} floats; the config needs {Layout.Size}");
        Parameters = parameters;
        Gradients = BertLayout.Allocate(Layout.Size);
        adamTensors = Layout.OptimizerTensors();
        m = BertLayout.Allocate(Layout.Size);
        v = BertLayout.Allocate(Layout.Size);
    }

    private readonly AdamW.Tensor[] adamTensors;

    public string Backend => $"cpu ({WorkerPool.Shared.WorkerCount} threads)";
    public BertConfig Config { get; }
    public BertLayout Layout { get; }
    public float[] Parameters { get; }
    public float[] Gradients { get; }

    private int B => last.Batch!.BatchSize;
    private int T => last.Batch!.SeqLen;
    /// <summary>Logits [B, L] of the last forward.</summary>
    public ReadOnlySpan<float> Logits => act!.Logits.AsSpan(0, B * Config.NumLabels);
    /// <summary>Class probabilities [B, L] of the last forward.</summary>
    public ReadOnlySpan<float> Probabilities => act!.Probs.AsSpan(0, B * Config.NumLabels);
    /// <summary>The encoder's output [B, T, C] of the last forward.</summary>
    public ReadOnlySpan<float> LastHiddenState => act!.Layers[^1].Out.AsSpan(0, B * T * Config.HiddenSize);
    /// <summary>The pooler's output (tanh, before classifier dropout) [B, C].</summary>
    public ReadOnlySpan<float> PooledOutput => act!.Pooled.AsSpan(0, B * Config.HiddenSize);

    private Span<float> P(int offset, int length) => Parameters.AsSpan(offset, length);
    private Span<float> G(int offset, int length) => Gradients.AsSpan(offset, length);

    public void ZeroGradients() => Array.Clear(Gradients);

    // ---------------------------------------------------------------------------------------
    // forward

    /// <summary>
    /// Runs the network on a batch and returns the mean (mixed) cross-entropy. With
    /// <paramref name="training"/>, dropout is on (its masks drawn from seed and step), the mix is
    /// applied and the activations and the logits' gradient are kept for <see cref="Backward"/>.
    /// </summary>
    public double Forward(Batch batch, bool training, ulong seed = 0, long step = 0, Mix? mix = null)
    {
        var c = Config; var lo = Layout;
        batch.Validate(c, mix);
        int B = batch.BatchSize, T = batch.SeqLen;
        var a = EnsureActivations(B, T);
        last = new Forwarded(batch, mix, training, new DropoutKeys(seed, step),
            training ? c.HiddenDropoutProb : 0f, training ? c.AttentionProbsDropoutProb : 0f, training ? c.ClassifierDropoutProb : 0f);
        var (keys, pHidden, pAttn, pCls) = (last.Keys, last.PHidden, last.PAttn, last.PCls);
        int N = B * T, C = c.HiddenSize, I = c.IntermediateSize, H = c.NumAttentionHeads, L = c.NumLabels;
        ReadOnlySpan<int> partner = mix != null ? mix.Partner : default;
        ReadOnlySpan<float> lambda = mix != null ? mix.Lambda : default;

        // embeddings (mixup: the partner's words interpolated in the lookup), LayerNorm, dropout
        if (BertSchedule.NeedsUnionMask(mix)) Mixup.UnionMask(batch.AttentionMask, partner, lambda, a.MaskUnion, B, T);
        bool mixWords = BertSchedule.MixesWords(mix);
        Embedding.Forward(batch.InputIds, batch.TokenTypeIds, P(lo.WordEmbeddings, c.VocabSize * C), P(lo.PositionEmbeddings, c.MaxPositionEmbeddings * C),
            P(lo.TypeEmbeddings, c.TypeVocabSize * C), a.EmbSum, B, T, C, mixWords ? partner : default, mixWords ? lambda : default);
        LayerNorm.Forward(a.EmbSum, P(lo.EmbLnGamma, C), P(lo.EmbLnBeta, C), a.EmbLn, a.EmbMean, a.EmbRstd, N, C, c.LayerNormEps);
        if (pHidden > 0f) Dropout.Forward(a.EmbLn.AsSpan(0, N * C), a.EmbOut, pHidden, keys.Embeddings);

        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            var w = lo.Layers[l];
            var s = a.Layers[l];
            if (BertSchedule.MixesLayerInput(mix, l)) Mixup.Forward(a.Layers[l - 1].Out, partner, lambda, a.MixedHidden, B, T, C);
            var x = LayerInput(l);
            ReadOnlySpan<float> mask = BertSchedule.UsesUnionMask(mix, l) ? a.MaskUnion : batch.AttentionMask;

            // h1 = LN1(x + dropout(attention output projection(attention(qkv(x)))))
            Linear.Forward(x, P(w.QkvWeight, 3 * C * C), P(w.QkvBias, 3 * C), s.Qkv, N, C, 3 * C);
            Attention.Forward(s.Qkv, mask, s.Probs, s.Ctx, B, T, C, H, pAttn, keys.AttentionProbs(l));
            Linear.Forward(s.Ctx, P(w.AttnOutWeight, C * C), P(w.AttnOutBias, C), a.GTmp, N, C, C);
            LayerNorm.DropoutResidualForward(a.GTmp, x, P(w.Ln1Gamma, C), P(w.Ln1Beta, C), s.Ln1Sum, s.H1, s.Ln1Mean, s.Ln1Rstd, N, C, c.LayerNormEps, pHidden, keys.AttentionOutput(l));
            // out = LN2(h1 + dropout(fc2(gelu(fc1(h1)))))
            Linear.ForwardGelu(s.H1, P(w.Fc1Weight, I * C), P(w.Fc1Bias, I), s.Fc1, s.Gelu, N, C, I);
            Linear.Forward(s.Gelu, P(w.Fc2Weight, C * I), P(w.Fc2Bias, C), a.GTmp, N, I, C);
            LayerNorm.DropoutResidualForward(a.GTmp, s.H1, P(w.Ln2Gamma, C), P(w.Ln2Beta, C), s.Ln2Sum, s.Out, s.Ln2Mean, s.Ln2Rstd, N, C, c.LayerNormEps, pHidden, keys.FeedForwardOutput(l));
        }

        // pooler on [CLS] (tmix after the last layer mixes first), senmix, dropout, classifier, loss
        float[] encoded = a.Layers[^1].Out;
        if (BertSchedule.MixesEncoderOutput(mix, c.NumHiddenLayers))
        {
            Mixup.Forward(encoded, partner, lambda, a.MixedHidden, B, T, C);
            encoded = a.MixedHidden;
        }
        FirstToken.Forward(encoded, a.Cls, B, T, C);
        Linear.Forward(a.Cls, P(lo.PoolerWeight, C * C), P(lo.PoolerBias, C), a.PooledPre, B, C, C);
        Activations.TanhForward(a.PooledPre.AsSpan(0, B * C), a.Pooled);
        if (BertSchedule.MixesPooled(mix)) Mixup.Forward(a.Pooled, partner, lambda, a.PooledMixed, B, 1, C);
        if (pCls > 0f) Dropout.Forward(PooledMixedOrPlain.AsSpan(0, B * C), a.PooledDrop, pCls, keys.Classifier(c.NumHiddenLayers));
        Linear.Forward(ClassifierInput, P(lo.ClassifierWeight, L * C), P(lo.ClassifierBias, L), a.Logits, B, C, L);
        return CrossEntropy.Forward(a.Logits, batch.Labels, partner, lambda, a.Probs, a.Losses, training ? a.GLogits : default, B, L);
    }

    /// <summary>The input of layer l as the forward saw it (the mixed states for tmix's layer).</summary>
    private float[] LayerInput(int l)
    {
        var a = act!;
        if (l == 0) return last.PHidden > 0f ? a.EmbOut : a.EmbLn;
        return BertSchedule.MixesLayerInput(last.Mix, l) ? a.MixedHidden : a.Layers[l - 1].Out;
    }

    private float[] PooledMixedOrPlain => BertSchedule.MixesPooled(last.Mix) ? act!.PooledMixed : act!.Pooled;
    private float[] ClassifierInput => last.PCls > 0f ? act!.PooledDrop : PooledMixedOrPlain;

    // ---------------------------------------------------------------------------------------
    // backward

    /// <summary>∂loss/∂θ of the last training forward into <see cref="Gradients"/>: the linear layers' weight
    /// gradients are written (Linear.Backward), every other one added into (callers zero them first).</summary>
    public void Backward()
    {
        float[] gEmbeddings = BackwardToEmbeddings();
        var (batch, mix) = (last.Batch!, last.Mix);
        var c = Config; var lo = Layout;
        int B = batch.BatchSize, T = batch.SeqLen, C = c.HiddenSize;
        bool mixWords = BertSchedule.MixesWords(mix);
        Embedding.Backward(gEmbeddings, batch.InputIds, batch.TokenTypeIds, G(lo.WordEmbeddings, c.VocabSize * C), G(lo.PositionEmbeddings, c.MaxPositionEmbeddings * C),
            G(lo.TypeEmbeddings, c.TypeVocabSize * C), B, T, C, mixWords ? mix!.Partner : default, mixWords ? mix!.Lambda : default);
    }

    /// <summary>The backward down to the embeddings: ∂loss/∂θ of every tensor but the three embedding
    /// tables into <see cref="Gradients"/> (as <see cref="Backward"/> says) and returns the buffer that holds ∂loss/∂e [N, C],
    /// e = word + position + type embedding of each token (the input of the embeddings' LayerNorm).</summary>
    private float[] BackwardToEmbeddings()
    {
        if (!last.Training || act == null) throw new InvalidOperationException("Backward needs a preceding Forward with training: true");
        var c = Config; var a = act; var lo = Layout;
        var (batch, mix, _, keys, pHidden, pAttn, pCls) = last;
        if (batch == null) throw new InvalidOperationException("no forward to go back through");
        int B = batch.BatchSize, T = batch.SeqLen, N = B * T, C = c.HiddenSize, I = c.IntermediateSize, H = c.NumAttentionHeads, L = c.NumLabels;
        ReadOnlySpan<int> partner = mix != null ? mix.Partner : default;
        ReadOnlySpan<float> lambda = mix != null ? mix.Lambda : default;

        // logits → classifier → dropout → (senmix) → tanh → pooler → [CLS]
        Linear.Backward(a.GLogits, ClassifierInput, P(lo.ClassifierWeight, L * C), a.GPooled, G(lo.ClassifierWeight, L * C), G(lo.ClassifierBias, L), B, C, L);
        if (pCls > 0f) Dropout.Backward(a.GPooled.AsSpan(0, B * C), a.GPooled, pCls, keys.Classifier(c.NumHiddenLayers), accumulate: false);
        float[] gPooled = a.GPooled;
        if (BertSchedule.MixesPooled(mix)) { Mixup.Backward(a.GPooled, partner, lambda, a.GCls, B, 1, C); gPooled = a.GCls; }
        Activations.TanhBackward(a.Pooled.AsSpan(0, B * C), gPooled.AsSpan(0, B * C), a.GPooledPre);
        Linear.Backward(a.GPooledPre, a.Cls, P(lo.PoolerWeight, C * C), a.GCls, G(lo.PoolerWeight, C * C), G(lo.PoolerBias, C), B, C, C);
        float[] gOut = a.GOut, gTmp = a.GTmp;
        FirstToken.Backward(a.GCls, gOut, B, T, C);
        if (BertSchedule.MixesEncoderOutput(mix, c.NumHiddenLayers))
        {
            Mixup.Backward(gOut, partner, lambda, gTmp, B, T, C);
            (gOut, gTmp) = (gTmp, gOut);
        }

        for (int l = c.NumHiddenLayers - 1; l >= 0; l--)
        {
            var w = lo.Layers[l];
            var s = a.Layers[l];
            var x = LayerInput(l);

            // out = LN2(h1 + dropout(fc2(gelu(fc1(h1)))))
            LayerNorm.Backward(gOut, s.Ln2Sum, s.Ln2Mean, s.Ln2Rstd, P(w.Ln2Gamma, C), a.GH1, G(w.Ln2Gamma, C), G(w.Ln2Beta, C), N, C);
            float[] gFc2 = a.GH1;
            if (pHidden > 0f) { Dropout.Backward(a.GH1.AsSpan(0, N * C), gTmp, pHidden, keys.FeedForwardOutput(l), accumulate: false); gFc2 = gTmp; }
            Linear.Backward(gFc2, s.Gelu, P(w.Fc2Weight, C * I), a.GI, G(w.Fc2Weight, C * I), G(w.Fc2Bias, C), N, I, C);
            Activations.GeluBackward(s.Fc1.AsSpan(0, N * I), a.GI.AsSpan(0, N * I), a.GI);
            Linear.Backward(a.GI, s.H1, P(w.Fc1Weight, I * C), a.GH1, G(w.Fc1Weight, I * C), G(w.Fc1Bias, I), N, C, I, accumulateDx: true);

            // h1 = LN1(x + dropout(attention output projection(attention(qkv(x)))))
            LayerNorm.Backward(a.GH1, s.Ln1Sum, s.Ln1Mean, s.Ln1Rstd, P(w.Ln1Gamma, C), gOut, G(w.Ln1Gamma, C), G(w.Ln1Beta, C), N, C);
            float[] gProj = gOut;
            if (pHidden > 0f) { Dropout.Backward(gOut.AsSpan(0, N * C), gTmp, pHidden, keys.AttentionOutput(l), accumulate: false); gProj = gTmp; }
            Linear.Backward(gProj, s.Ctx, P(w.AttnOutWeight, C * C), a.GCtx, G(w.AttnOutWeight, C * C), G(w.AttnOutBias, C), N, C, C);
            Attention.Backward(a.GCtx, s.Qkv, s.Probs, a.GQkv, B, T, C, H, pAttn, keys.AttentionProbs(l));
            Linear.Backward(a.GQkv, x, P(w.QkvWeight, 3 * C * C), gOut, G(w.QkvWeight, 3 * C * C), G(w.QkvBias, 3 * C), N, C, 3 * C, accumulateDx: true);

            if (BertSchedule.MixesLayerInput(mix, l))
            {
                // the layer's input was λ·h[b] + (1−λ)·h[partner]: send the gradient to both
                Mixup.Backward(gOut, partner, lambda, gTmp, B, T, C);
                (gOut, gTmp) = (gTmp, gOut);
            }
        }

        // embeddings: dropout → LayerNorm (→ the scatter-add into the tables, in Backward)
        if (pHidden > 0f) Dropout.Backward(gOut.AsSpan(0, N * C), gOut, pHidden, keys.Embeddings, accumulate: false);
        LayerNorm.Backward(gOut, a.EmbSum, a.EmbMean, a.EmbRstd, P(lo.EmbLnGamma, C), gTmp, G(lo.EmbLnGamma, C), G(lo.EmbLnBeta, C), N, C);
        return gTmp;
    }

    // ---------------------------------------------------------------------------------------
    // IBertEngine

    public double ForwardBackward(Batch batch, Mix? mix, ulong seed, long step)
    {
        inFlight.RequireNone(nameof(ForwardBackward));
        return ForwardBackwardNow(batch, mix, seed, step);
    }

    private double ForwardBackwardNow(Batch batch, Mix? mix, ulong seed, long step)
    {
        ZeroGradients();
        double loss = Forward(batch, training: true, seed, step, mix);
        Backward();
        return loss;
    }

    public void TokenSaliency(Batch batch, ulong seed, long step, Span<float> saliency)
    {
        int n = batch.BatchSize * batch.SeqLen;
        if (saliency.Length < n) throw new ArgumentException($"token saliency: {saliency.Length} floats for {n} tokens");
        inFlight.RequireNone(nameof(TokenSaliency));
        Forward(batch, training: true, seed, step);
        RowNorm.Forward(BackwardToEmbeddings(), saliency, n, Config.HiddenSize);
        ZeroGradients(); // the parameter gradients were scratch: nothing of this pass reaches an optimizer step
    }

    // the CPU computes a step when it starts; its result waits here until it is finished (the
    // contract of IBertEngine.StartTrainStep, kept as the GPU keeps it, so CPU runs test the callers)
    private StepsInFlight inFlight;
    private readonly Queue<StepResult> results = new(StepsInFlight.Max);

    public StepResult TrainStep(Batch batch, Mix? mix, float learningRate, long step, ulong seed, in OptimizerSettings o)
    {
        inFlight.RequireNone(nameof(TrainStep));
        return Step(batch, mix, learningRate, step, seed, o);
    }

    public void StartTrainStep(Batch batch, Mix? mix, float learningRate, long step, ulong seed, in OptimizerSettings o)
    {
        inFlight.CheckCanStart();
        results.Enqueue(Step(batch, mix, learningRate, step, seed, o));
        inFlight.Start();
    }

    public StepResult FinishTrainStep()
    {
        inFlight.Finish();
        return results.Dequeue();
    }

    private StepResult Step(Batch batch, Mix? mix, float learningRate, long step, ulong seed, in OptimizerSettings o)
    {
        double loss = ForwardBackwardNow(batch, mix, seed, step);
        float clip = AdamW.GlobalNormClip(Gradients, o.MaxGradNorm, out double norm);
        // the gradients are cleared at the start of the next pass (ZeroGradients), as callers of Forward
        // and Backward expect, not here as the GPU's one launch does
        AdamW.StepTensors(Parameters, Gradients, m, v, adamTensors, new AdamW.Hyper(learningRate, o.Beta1, o.Beta2, o.Epsilon, o.WeightDecay, step),
            clip, clearGradients: false);
        return new StepResult(loss, norm);
    }

    public double Evaluate(Batch batch, Span<float> probabilities)
    {
        inFlight.RequireNone(nameof(Evaluate));
        double loss = Forward(batch, training: false);
        Probabilities.CopyTo(probabilities);
        return loss;
    }

    public void CopyLogits(Span<float> destination) { inFlight.RequireNone(nameof(CopyLogits)); Logits.CopyTo(destination); }
    public void CopyGradients(Span<float> destination) { inFlight.RequireNone(nameof(CopyGradients)); Gradients.CopyTo(destination); }
    public void CopyParameters(Span<float> destination) { inFlight.RequireNone(nameof(CopyParameters)); Parameters.CopyTo(destination); }
    public void CopyOptimizerState(Span<float> mOut, Span<float> vOut) { inFlight.RequireNone(nameof(CopyOptimizerState)); m.CopyTo(mOut); v.CopyTo(vOut); }

    public void LoadState(ReadOnlySpan<float> parameters, ReadOnlySpan<float> mIn, ReadOnlySpan<float> vIn)
    {
        inFlight.RequireNone(nameof(LoadState));
        parameters.CopyTo(Parameters);
        if (!mIn.IsEmpty) mIn.CopyTo(m);
        if (!vIn.IsEmpty) vIn.CopyTo(v);
    }

    public void Reserve(int batchSize, int seqLen)
    {
        inFlight.RequireNone(nameof(Reserve));
        EnsureActivations(batchSize, seqLen);
    }

    /// <summary>Activations for the largest batch seen so far; smaller batches reuse them.</summary>
    private BertActivations<float[]> EnsureActivations(int batch, int seqLen)
    {
        if (act != null && act.MaxBatch >= batch && act.MaxSeqLen >= seqLen) return act;
        static float[] Buffer(long n) => GC.AllocateUninitializedArray<float>(checked((int)n), pinned: true);
        return act = new BertActivations<float[]>(Config, Math.Max(batch, act?.MaxBatch ?? 0), Math.Max(seqLen, act?.MaxSeqLen ?? 0), Buffer);
    }

    public void Dispose() { }
}
