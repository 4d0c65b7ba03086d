using MixupBert.Kernels.Cpu;
using MixupBert.Model.Weights;

namespace MixupBert.Model.Bert;

/// <summary>
/// BertForSequenceClassification on the CPU: forward and backward, llm.c style. Every activation
/// the backward needs is kept in buffers allocated once for the largest batch seen, so a training
/// step allocates nothing in steady state. Parameters and gradients are flat arrays laid out by
/// <see cref="BertLayout"/>.
/// </summary>
public sealed class BertClassifier
{
    public BertConfig Config { get; }
    public BertLayout Layout { get; }
    public float[] Parameters { get; }
    public float[] Gradients { get; }

    private ActivationBuffers? act;
    private int B, T;
    private bool trained; // the last forward kept what backward needs
    private Mix? mix;
    private ulong dropoutSeed;
    private long dropoutStep;
    private bool training;

    public BertClassifier(BertConfig config, float[] parameters)
    {
        Config = config;
        Layout = new BertLayout(config);
        if (parameters.Length != Layout.Size) throw new ArgumentException($"parameters have {parameters.Length} floats; the config needs {Layout.Size}");
        Parameters = parameters;
        Gradients = BertLayout.Allocate(Layout.Size);
    }

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

    /// <summary>
    /// Runs the network on a batch and returns the mean cross-entropy against batch.Targets.
    /// With <paramref name="training"/>, dropout is on (its masks drawn from seed and step) and the
    /// activations are kept for <see cref="Backward"/>.
    /// </summary>
    public double Forward(Batch batch, bool training, ulong seed = 0, long step = 0, Mix? mix = null)
    {
        var c = Config;
        B = batch.BatchSize; T = batch.SeqLen;
        ValidateInputs(c, batch, mix);
        EnsureActivations(B, T);
        var a = act!;
        this.mix = mix;
        this.training = training;
        dropoutSeed = seed; dropoutStep = step;
        int N = B * T, C = c.HiddenSize, I = c.IntermediateSize, H = c.NumAttentionHeads, L = c.NumLabels;
        float pHidden = training ? c.HiddenDropoutProb : 0f, pAttn = training ? c.AttentionProbsDropoutProb : 0f;
        float pCls = training ? c.ClassifierDropoutProb : 0f;

        // attention mask: the example's own below the mixing layer, the union with its partner's above
        var maskOwn = a.MaskOwn.AsSpan(0, N);
        batch.AttentionMask.AsSpan(0, N).CopyTo(maskOwn);
        var maskUnion = a.MaskUnion.AsSpan(0, N);
        maskOwn.CopyTo(maskUnion);
        if (mix != null && mix.Site != MixSite.Pooled) AttentionMask.Union(maskOwn, mix.Partner, mix.Lambda, maskUnion, B, T);

        // embeddings: word (+ mixed partner word) + position + type, LayerNorm, dropout
        var lo = Layout;
        ReadOnlySpan<int> partnerIds = default;
        if (mix is { Site: MixSite.WordEmbeddings })
        {
            for (int b = 0; b < B; b++) Array.Copy(batch.InputIds, mix.Partner[b] * T, a.PartnerIds, b * T, T);
            partnerIds = a.PartnerIds.AsSpan(0, N);
        }
        Embedding.Forward(a.EmbSum, P(lo.WordEmbeddings, c.VocabSize * C), P(lo.PositionEmbeddings, c.MaxPositionEmbeddings * C),
            P(lo.TypeEmbeddings, c.TypeVocabSize * C), batch.InputIds, batch.TokenTypeIds, B, T, C,
            partnerIds, mix is { Site: MixSite.WordEmbeddings } ? mix.Lambda : default);
        LayerNorm.Forward(a.EmbSum, P(lo.EmbLnGamma, C), P(lo.EmbLnBeta, C), a.EmbLn, a.EmbMean, a.EmbRstd, N, C, c.LayerNormEps);
        Dropout.Forward(a.EmbLn.AsSpan(0, N * C), a.EmbOut, pHidden, Key(0));

        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            var w = lo.Layers[l];
            var s = a.Layers[l];
            ReadOnlySpan<float> x = l == 0 ? a.EmbOut : a.Layers[l - 1].Out;
            if (l > 0 && mix is { Site: MixSite.Hidden } && mix.Layer == l)
            {
                MixRows(a.Layers[l - 1].Out, a.MixedHidden, N, C);
                x = a.MixedHidden;
            }
            bool union = mix != null && mix.Site != MixSite.Pooled && (mix.Site == MixSite.WordEmbeddings || l >= mix.Layer);
            ReadOnlySpan<float> mask = union ? maskUnion : maskOwn;

            Linear.Forward(x, P(w.QkvWeight, 3 * C * C), P(w.QkvBias, 3 * C), s.Qkv, N, C, 3 * C);
            Attention.Forward(s.Qkv, mask, s.Probs, s.Ctx, B, T, C, H, pAttn, Key(1 + 4 * l));
            Linear.Forward(s.Ctx, P(w.AttnOutWeight, C * C), P(w.AttnOutBias, C), s.Ln1In, N, C, C);
            Dropout.Forward(s.Ln1In.AsSpan(0, N * C), s.Ln1In, pHidden, Key(2 + 4 * l));
            LayerNorm.ForwardWithResidual(s.Ln1In, x, P(w.Ln1Gamma, C), P(w.Ln1Beta, C), s.H1, s.Ln1Mean, s.Ln1Rstd, N, C, c.LayerNormEps);

            Linear.ForwardGelu(s.H1, P(w.Fc1Weight, I * C), P(w.Fc1Bias, I), s.Fc1, s.Gelu, N, C, I);
            Linear.Forward(s.Gelu, P(w.Fc2Weight, C * I), P(w.Fc2Bias, C), s.Ln2In, N, I, C);
            Dropout.Forward(s.Ln2In.AsSpan(0, N * C), s.Ln2In, pHidden, Key(3 + 4 * l));
            LayerNorm.ForwardWithResidual(s.Ln2In, s.H1, P(w.Ln2Gamma, C), P(w.Ln2Beta, C), s.Out, s.Ln2Mean, s.Ln2Rstd, N, C, c.LayerNormEps);
        }

        // pooler on [CLS] (tmix after the last layer mixes here), (senmix), dropout, classifier, loss
        var last = a.Layers[^1].Out;
        if (mix is { Site: MixSite.Hidden } && mix.Layer == c.NumHiddenLayers)
        {
            MixRows(last, a.MixedHidden, N, C);
            last = a.MixedHidden;
        }
        for (int b = 0; b < B; b++) Array.Copy(last, (long)b * T * C, a.Cls, (long)b * C, C);
        Linear.Forward(a.Cls, P(lo.PoolerWeight, C * C), P(lo.PoolerBias, C), a.PooledPre, B, C, C);
        Activations.TanhForward(a.PooledPre.AsSpan(0, B * C), a.Pooled);
        ReadOnlySpan<float> pooled = a.Pooled.AsSpan(0, B * C);
        if (mix is { Site: MixSite.Pooled })
        {
            MixRows(a.Pooled, a.PooledMixed, B, C, rowsPerExample: 1);
            pooled = a.PooledMixed.AsSpan(0, B * C);
        }
        Dropout.Forward(pooled, a.PooledDrop, pCls, Key(1 + 4 * c.NumHiddenLayers));
        Linear.Forward(a.PooledDrop, P(lo.ClassifierWeight, L * C), P(lo.ClassifierBias, L), a.Logits, B, C, L);
        trained = training;
        batch.InputIds.AsSpan(0, N).CopyTo(a.InputIds);
        batch.TokenTypeIds.AsSpan(0, N).CopyTo(a.TokenTypeIds);
        batch.Targets.AsSpan(0, B * L).CopyTo(a.Targets);
        return CrossEntropy.Forward(a.Logits, a.Targets, a.Probs, B, L);
    }

    /// <summary>Adds ∂loss/∂θ of the last training forward into <see cref="Gradients"/>.</summary>
    public void Backward()
    {
        if (!trained) throw new InvalidOperationException("Backward needs a preceding Forward with training: true");
        var c = Config; var a = act!; var lo = Layout;
        int N = B * T, C = c.HiddenSize, I = c.IntermediateSize, H = c.NumAttentionHeads, L = c.NumLabels;
        float pHidden = training ? c.HiddenDropoutProb : 0f, pAttn = training ? c.AttentionProbsDropoutProb : 0f;
        float pCls = training ? c.ClassifierDropoutProb : 0f;

        // loss → logits → classifier → dropout → (senmix) → tanh → pooler → [CLS]
        CrossEntropy.Backward(a.Probs, a.Targets, a.GLogits, B, L);
        Linear.Backward(a.GLogits, a.PooledDrop, P(lo.ClassifierWeight, L * C), a.GPooled, G(lo.ClassifierWeight, L * C), G(lo.ClassifierBias, L), B, C, L);
        Dropout.Backward(a.GPooled.AsSpan(0, B * C), a.GPooled, pCls, Key(1 + 4 * c.NumHiddenLayers), accumulate: false);
        if (mix is { Site: MixSite.Pooled })
        {
            UnmixRows(a.GPooled, a.GPooledPre, B, C, rowsPerExample: 1);
            a.GPooledPre.AsSpan(0, B * C).CopyTo(a.GPooled);
        }
        Activations.TanhBackward(a.Pooled.AsSpan(0, B * C), a.GPooled.AsSpan(0, B * C), a.GPooledPre);
        Linear.Backward(a.GPooledPre, a.Cls, P(lo.PoolerWeight, C * C), a.GCls, G(lo.PoolerWeight, C * C), G(lo.PoolerBias, C), B, C, C);
        var gOut = a.GOut.AsSpan(0, N * C);
        gOut.Clear();
        for (int b = 0; b < B; b++) a.GCls.AsSpan(b * C, C).CopyTo(gOut.Slice(b * T * C, C));
        if (mix is { Site: MixSite.Hidden } && mix.Layer == c.NumHiddenLayers)
        {
            UnmixRows(gOut, a.GTmp, N, C);
            a.GTmp.AsSpan(0, N * C).CopyTo(gOut);
        }

        for (int l = c.NumHiddenLayers - 1; l >= 0; l--)
        {
            var w = lo.Layers[l];
            var s = a.Layers[l];
            bool mixedInput = l > 0 && mix is { Site: MixSite.Hidden } && mix.Layer == l;
            ReadOnlySpan<float> x = l == 0 ? a.EmbOut : mixedInput ? a.MixedHidden : a.Layers[l - 1].Out;

            // out = LN2(h1 + dropout(fc2(gelu(fc1(h1)))))
            LayerNorm.Backward(gOut, s.Ln2In, s.Ln2Mean, s.Ln2Rstd, P(w.Ln2Gamma, C), a.GH1, G(w.Ln2Gamma, C), G(w.Ln2Beta, C), N, C);
            Dropout.Backward(a.GH1.AsSpan(0, N * C), a.GTmp, pHidden, Key(3 + 4 * l), accumulate: false);
            Linear.Backward(a.GTmp, s.Gelu, P(w.Fc2Weight, C * I), a.GI, G(w.Fc2Weight, C * I), G(w.Fc2Bias, C), N, I, C);
            Activations.GeluBackward(s.Fc1.AsSpan(0, N * I), a.GI.AsSpan(0, N * I), a.GI);
            Linear.Backward(a.GI, s.H1, P(w.Fc1Weight, I * C), a.GH1, G(w.Fc1Weight, I * C), G(w.Fc1Bias, I), N, C, I, accumulateDx: true);

            // h1 = LN1(x + dropout(attn_out(attention(qkv(x)))))
            LayerNorm.Backward(a.GH1, s.Ln1In, s.Ln1Mean, s.Ln1Rstd, P(w.Ln1Gamma, C), gOut, G(w.Ln1Gamma, C), G(w.Ln1Beta, C), N, C);
            Dropout.Backward(gOut, a.GTmp, pHidden, Key(2 + 4 * l), accumulate: false);
            Linear.Backward(a.GTmp, s.Ctx, P(w.AttnOutWeight, C * C), a.GCtx, G(w.AttnOutWeight, C * C), G(w.AttnOutBias, C), N, C, C);
            Attention.Backward(a.GCtx, s.Qkv, s.Probs, a.GQkv, B, T, C, H, pAttn, Key(1 + 4 * l));
            Linear.Backward(a.GQkv, x, P(w.QkvWeight, 3 * C * C), gOut, G(w.QkvWeight, 3 * C * C), G(w.QkvBias, 3 * C), N, C, 3 * C, accumulateDx: true);

            if (mixedInput)
            {
                // the layer's input was λ·h[b] + (1−λ)·h[partner]: send the gradient to both
                UnmixRows(gOut, a.GTmp, N, C);
                a.GTmp.AsSpan(0, N * C).CopyTo(gOut);
            }
        }

        // embeddings: dropout → LayerNorm → scatter-add into the tables
        Dropout.Backward(gOut, gOut, pHidden, Key(0), accumulate: false);
        LayerNorm.Backward(gOut, a.EmbSum, a.EmbMean, a.EmbRstd, P(lo.EmbLnGamma, C), a.GTmp, G(lo.EmbLnGamma, C), G(lo.EmbLnBeta, C), N, C);
        bool wordMix = mix is { Site: MixSite.WordEmbeddings };
        Embedding.Backward(a.GTmp, G(lo.WordEmbeddings, c.VocabSize * C), G(lo.PositionEmbeddings, c.MaxPositionEmbeddings * C),
            G(lo.TypeEmbeddings, c.TypeVocabSize * C), a.InputIds, a.TokenTypeIds, B, T, C,
            wordMix ? a.PartnerIds.AsSpan(0, N) : default, wordMix ? mix!.Lambda : default);
    }

    private uint Key(int site) => Dropout.Key(dropoutSeed, dropoutStep, site);

    /// <summary>dst[b] = λ_b · src[b] + (1 − λ_b) · src[partner_b], rows of C per token.</summary>
    private void MixRows(ReadOnlySpan<float> src, Span<float> dst, int n, int cols, int rowsPerExample = -1)
    {
        int rows = rowsPerExample < 0 ? T : rowsPerExample;
        int examples = n / rows;
        for (int b = 0; b < examples; b++)
        {
            float l = mix!.Lambda[b];
            int pb = mix.Partner[b];
            for (int r = 0; r < rows; r++)
            {
                var d = dst.Slice((b * rows + r) * cols, cols);
                var own = src.Slice((b * rows + r) * cols, cols);
                var other = src.Slice((pb * rows + r) * cols, cols);
                for (int j = 0; j < cols; j++) d[j] = l * own[j] + (1f - l) * other[j];
            }
        }
    }

    /// <summary>The backward of <see cref="MixRows"/>: dsrc[b] += λ_b·g[b], dsrc[partner_b] += (1−λ_b)·g[b].</summary>
    private void UnmixRows(ReadOnlySpan<float> g, Span<float> dsrc, int n, int cols, int rowsPerExample = -1)
    {
        int rows = rowsPerExample < 0 ? T : rowsPerExample;
        int examples = n / rows;
        dsrc[..(n * cols)].Clear();
        for (int b = 0; b < examples; b++)
        {
            float l = mix!.Lambda[b];
            int pb = mix.Partner[b];
            for (int r = 0; r < rows; r++)
            {
                var gr = g.Slice((b * rows + r) * cols, cols);
                var own = dsrc.Slice((b * rows + r) * cols, cols);
                var other = dsrc.Slice((pb * rows + r) * cols, cols);
                for (int j = 0; j < cols; j++) { own[j] += l * gr[j]; other[j] += (1f - l) * gr[j]; }
            }
        }
    }

    /// <summary>Checks a batch against the config before any kernel reads it; messages name the tensor.</summary>
    public static void ValidateInputs(BertConfig c, Batch batch, Mix? mix)
    {
        int B = batch.BatchSize, T = batch.SeqLen;
        if (batch.NumLabels != c.NumLabels) throw new ArgumentException($"batch has {batch.NumLabels} label columns, the model {c.NumLabels}");
        if (T < 1 || B < 1) throw new ArgumentException($"empty batch ({B}×{T})");
        if (T > c.MaxPositionEmbeddings)
            throw new ArgumentException($"input_ids: sequence length {T} exceeds max_position_embeddings {c.MaxPositionEmbeddings}");
        for (int i = 0; i < B * T; i++)
        {
            if ((uint)batch.InputIds[i] >= (uint)c.VocabSize)
                throw new ArgumentException($"input_ids[{i / T}, {i % T}] = {batch.InputIds[i]} is outside the vocabulary (vocab_size {c.VocabSize})");
            if ((uint)batch.TokenTypeIds[i] >= (uint)c.TypeVocabSize)
                throw new ArgumentException($"token_type_ids[{i / T}, {i % T}] = {batch.TokenTypeIds[i]} is outside 0..{c.TypeVocabSize - 1} (type_vocab_size)");
        }
        if (mix != null)
        {
            if (mix.Partner.Length < B || mix.Lambda.Length < B) throw new ArgumentException("mix: partner and λ need one entry per example");
            for (int b = 0; b < B; b++)
                if ((uint)mix.Partner[b] >= (uint)B) throw new ArgumentException($"mix: partner {mix.Partner[b]} of example {b} is outside the batch");
            if (mix.Site == MixSite.Hidden && (mix.Layer < 1 || mix.Layer > c.NumHiddenLayers))
                throw new ArgumentException($"mix: tmix layer {mix.Layer} must be in 1..{c.NumHiddenLayers}");
        }
    }

    /// <summary>Allocates activations for the largest batch seen so far; smaller batches reuse them.</summary>
    private void EnsureActivations(int batch, int seqLen)
    {
        if (act != null && act.MaxBatch >= batch && act.MaxSeqLen >= seqLen) return;
        act = new ActivationBuffers(Config, Math.Max(batch, act?.MaxBatch ?? 0), Math.Max(seqLen, act?.MaxSeqLen ?? 0));
    }

    /// <summary>Preallocates activations for batches up to this size (avoids a reallocation mid-run).</summary>
    public void Reserve(int maxBatch, int maxSeqLen) => EnsureActivations(maxBatch, maxSeqLen);
}
