using MixupBert.Model.Weights;

namespace MixupBert.Model.Bert;

/// <summary>
/// What both engines (<see cref="CpuBertEngine"/>, <see cref="GpuBertEngine"/>) must agree on beyond
/// the ops themselves: where a mixed batch is mixed and which attention mask each layer sees. Dropout
/// masks are named by <see cref="DropoutKeys"/>, activations by <see cref="BertActivations{T}"/>.
/// A new mix site or dropout site is added here once.
/// </summary>
public static class BertSchedule
{
    /// <summary>Mixup: the partner's word vectors interpolated inside the embedding lookup.</summary>
    public static bool MixesWords(Mix? mix) => mix is { Site: MixSite.WordEmbeddings };

    /// <summary>TMix after layer k (1-based) mixes the input of encoder layer k (0-based index); after
    /// the last layer it mixes the pooler's input instead (<see cref="MixesEncoderOutput"/>).</summary>
    public static bool MixesLayerInput(Mix? mix, int layer) => layer > 0 && mix is { Site: MixSite.Hidden } && mix.Layer == layer;

    public static bool MixesEncoderOutput(Mix? mix, int layers) => mix is { Site: MixSite.Hidden } && mix.Layer == layers;

    /// <summary>SenMix: the pooled [CLS] vectors.</summary>
    public static bool MixesPooled(Mix? mix) => mix is { Site: MixSite.Pooled };

    /// <summary>SSMix: the token ids were mixed on the host (<see cref="SpanMix"/>) before the batch
    /// reached the engine; the network mixes nothing, the loss alone reads partner and λ.</summary>
    public static bool MixesTokens(Mix? mix) => mix is { Site: MixSite.Tokens };

    /// <summary>Whether any layer attends with the union of both examples' masks (an ssmix example
    /// keeps its own positions and mask).</summary>
    public static bool NeedsUnionMask(Mix? mix) => mix is { Site: MixSite.WordEmbeddings or MixSite.Hidden };

    /// <summary>Layer l attends with the union mask once its input is mixed: every layer for word
    /// mixing, the layers from the mixing point on for tmix.</summary>
    public static bool UsesUnionMask(Mix? mix, int layer) => NeedsUnionMask(mix) && (mix!.Site == MixSite.WordEmbeddings || layer >= mix.Layer);
}

/// <summary>The keys of one step's dropout masks, one per site, from the run's seed and the step
/// (the masks are a hash of key and element index, the same on both backends).</summary>
public readonly record struct DropoutKeys(ulong Seed, long Step)
{
    private uint Key(int site) => Kernels.Cpu.Dropout.Key(Seed, Step, site);
    public uint Embeddings => Key(0);
    public uint AttentionProbs(int layer) => Key(1 + 4 * layer);
    public uint AttentionOutput(int layer) => Key(2 + 4 * layer);
    public uint FeedForwardOutput(int layer) => Key(3 + 4 * layer);
    public uint Classifier(int layers) => Key(1 + 4 * layers);
}

/// <summary>What one encoder layer keeps from its forward for its backward ([N = B·T] rows); T is a
/// host array on the CPU and a device pointer on the GPU. <paramref name="alloc"/> allocates
/// activations (bf16 on the GPU under mixed precision), <paramref name="allocStat"/> the float32
/// statistics (LayerNorm's mean and rstd).</summary>
public sealed class LayerActivations<T>(Func<long, T> alloc, Func<long, T> allocStat, long n, long c, long i, long probs, bool probsAreStats = false)
{
    public readonly T Qkv = alloc(checked(n * 3 * c));   // [N, 3C] projections
    public readonly T Probs = probsAreStats ? allocStat(probs) : alloc(probs); // [B, H, T, T] softmax (pre-dropout), or what fused attention saves
    public readonly T Ctx = alloc(n * c);       // [N, C] attention output, heads merged
    public readonly T Ln1Sum = alloc(n * c);    // [N, C] x + dropout(attention output projection)
    public readonly T Ln1Mean = allocStat(n), Ln1Rstd = allocStat(n);
    public readonly T H1 = alloc(n * c);        // [N, C] LN1 output
    public readonly T Fc1 = alloc(checked(n * i));       // [N, I] pre-activation
    public readonly T Gelu = alloc(checked(n * i));      // [N, I]
    public readonly T Ln2Sum = alloc(n * c);    // [N, C] h1 + dropout(fc2)
    public readonly T Ln2Mean = allocStat(n), Ln2Rstd = allocStat(n);
    public readonly T Out = alloc(n * c);       // [N, C] layer output
}

/// <summary>
/// Every forward activation and backward scratch buffer of BertForSequenceClassification, sized for
/// MaxBatch × MaxSeqLen tokens and reused by every smaller batch: the one inventory both engines
/// allocate (float[] on the CPU, device pointers on the GPU; the float32 statistics, masks, class
/// probabilities and losses through allocStat, the rest through alloc). Sizes are checked for overflow: the
/// memory check (ModelSize.ActivationBytes) counts this inventory for configs read from disk.
/// </summary>
public sealed class BertActivations<T>
{
    public readonly int MaxBatch, MaxSeqLen;
    public readonly T MaskUnion, EmbSum, EmbLn, EmbMean, EmbRstd, EmbOut, MixedHidden;
    /// <summary>[N] the token saliency of <see cref="IBertEngine.TokenSaliency"/> (ssmix).</summary>
    public readonly T Saliency;
    public readonly LayerActivations<T>[] Layers;
    public readonly T Cls, PooledPre, Pooled, PooledMixed, PooledDrop, Logits, Probs, Losses;
    // backward scratch, shared by all layers
    public readonly T GOut, GH1, GTmp, GI, GQkv, GCtx, GLogits, GPooled, GPooledPre, GCls;

    /// <param name="attentionSaved">When set, each layer's Probs is this many float32 statistics (the GPU's
    /// fused attention saves a log-sum-exp per query and its dropout bits: Cuda.Attention.SavedElements) instead of the [B, H, T, T] probabilities.</param>
    public BertActivations(BertConfig config, int maxBatch, int maxSeqLen, Func<long, T> alloc, Func<long, T>? allocStat = null, long? attentionSaved = null)
    {
        allocStat ??= alloc;
        checked
        {
        MaxBatch = maxBatch; MaxSeqLen = maxSeqLen;
        long n = (long)maxBatch * maxSeqLen, C = config.HiddenSize, I = config.IntermediateSize, L = config.NumLabels, bc = maxBatch * C;
        long probs = attentionSaved ?? (long)maxBatch * config.NumAttentionHeads * maxSeqLen * maxSeqLen;
        MaskUnion = allocStat(n); Saliency = allocStat(n);
        EmbSum = alloc(n * C); EmbLn = alloc(n * C); EmbMean = allocStat(n); EmbRstd = allocStat(n); EmbOut = alloc(n * C); MixedHidden = alloc(n * C);
        Layers = new LayerActivations<T>[config.NumHiddenLayers];
        for (int l = 0; l < Layers.Length; l++) Layers[l] = new LayerActivations<T>(alloc, allocStat, n, C, I, probs, attentionSaved != null);
        Cls = alloc(bc); PooledPre = alloc(bc); Pooled = alloc(bc); PooledMixed = alloc(bc); PooledDrop = alloc(bc);
        Logits = alloc(maxBatch * L); Probs = allocStat(maxBatch * L); Losses = allocStat(maxBatch);
        GOut = alloc(n * C); GH1 = alloc(n * C); GTmp = alloc(n * C); GI = alloc(n * I); GQkv = alloc(n * C * 3); GCtx = alloc(n * C);
        GLogits = alloc(maxBatch * L); GPooled = alloc(bc); GPooledPre = alloc(bc); GCls = alloc(bc);
        }
    }
}
