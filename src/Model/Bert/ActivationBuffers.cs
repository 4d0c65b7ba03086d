namespace MixupBert.Model.Bert;

/// <summary>What one encoder layer keeps from its forward for its backward ([N = B·T] rows).</summary>
internal sealed class LayerActivations(int n, int c, int i, long probs)
{
    public readonly float[] Qkv = Buf(n * 3L * c);     // [N, 3C] projections
    public readonly float[] Probs = Buf(probs);        // [B, H, T, T] softmax (pre-dropout)
    public readonly float[] Ctx = Buf((long)n * c);    // [N, C] attention output, heads merged
    public readonly float[] Ln1In = Buf((long)n * c);  // [N, C] x + dropout(attn_out)
    public readonly float[] Ln1Mean = Buf(n), Ln1Rstd = Buf(n);
    public readonly float[] H1 = Buf((long)n * c);     // [N, C] LN1 output
    public readonly float[] Fc1 = Buf((long)n * i);    // [N, I] pre-activation
    public readonly float[] Gelu = Buf((long)n * i);   // [N, I]
    public readonly float[] Ln2In = Buf((long)n * c);  // [N, C] h1 + dropout(fc2)
    public readonly float[] Ln2Mean = Buf(n), Ln2Rstd = Buf(n);
    public readonly float[] Out = Buf((long)n * c);    // [N, C] layer output

    internal static float[] Buf(long n) => GC.AllocateUninitializedArray<float>(checked((int)n), pinned: true);
}

/// <summary>All forward activations and backward scratch of <see cref="BertClassifier"/>, sized for
/// MaxBatch × MaxSeqLen tokens and reused by every smaller batch.</summary>
internal sealed class ActivationBuffers
{
    public readonly int MaxBatch, MaxSeqLen;
    public readonly float[] MaskOwn, MaskUnion, EmbSum, EmbLn, EmbMean, EmbRstd, EmbOut, MixedHidden;
    public readonly int[] InputIds, TokenTypeIds, PartnerIds;
    public readonly LayerActivations[] Layers;
    public readonly float[] Cls, PooledPre, Pooled, PooledMixed, PooledDrop, Logits, Probs, Targets;
    // backward scratch, shared by all layers
    public readonly float[] GOut, GH1, GTmp, GI, GQkv, GCtx, GLogits, GPooled, GPooledPre, GCls;

    public ActivationBuffers(Weights.BertConfig c, int maxBatch, int maxSeqLen)
    {
        MaxBatch = maxBatch; MaxSeqLen = maxSeqLen;
        int n = maxBatch * maxSeqLen, C = c.HiddenSize, I = c.IntermediateSize, L = c.NumLabels;
        long nc = (long)n * C;
        static float[] Buf(long k) => LayerActivations.Buf(k);
        MaskOwn = Buf(n); MaskUnion = Buf(n);
        EmbSum = Buf(nc); EmbLn = Buf(nc); EmbMean = Buf(n); EmbRstd = Buf(n); EmbOut = Buf(nc); MixedHidden = Buf(nc);
        InputIds = new int[n]; TokenTypeIds = new int[n]; PartnerIds = new int[n];
        long probs = (long)maxBatch * c.NumAttentionHeads * maxSeqLen * maxSeqLen;
        Layers = new LayerActivations[c.NumHiddenLayers];
        for (int l = 0; l < Layers.Length; l++) Layers[l] = new LayerActivations(n, C, I, probs);
        long bc = (long)maxBatch * C;
        Cls = Buf(bc); PooledPre = Buf(bc); Pooled = Buf(bc); PooledMixed = Buf(bc); PooledDrop = Buf(bc);
        Logits = Buf(maxBatch * L); Probs = Buf(maxBatch * L); Targets = Buf(maxBatch * L);
        GOut = Buf(nc); GH1 = Buf(nc); GTmp = Buf(nc); GI = Buf((long)n * I); GQkv = Buf(nc * 3); GCtx = Buf(nc);
        GLogits = Buf(maxBatch * L); GPooled = Buf(bc); GPooledPre = Buf(bc); GCls = Buf(bc);
    }
}
