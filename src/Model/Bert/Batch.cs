namespace MixupBert.Model.Bert;

/// <summary>
/// One padded batch: B sequences of T tokens, row-major [B, T]. Targets are soft labels [B, L]
/// (one-hot for plain training; mixed for mixup).
/// </summary>
public sealed class Batch
{
    public Batch(int batchSize, int seqLen, int numLabels)
    {
        BatchSize = batchSize;
        SeqLen = seqLen;
        NumLabels = numLabels;
        InputIds = new int[batchSize * seqLen];
        TokenTypeIds = new int[batchSize * seqLen];
        AttentionMask = new float[batchSize * seqLen];
        Targets = new float[batchSize * numLabels];
        Labels = new int[batchSize];
    }

    public int BatchSize { get; }
    public int SeqLen { get; }
    public int NumLabels { get; }
    public int[] InputIds { get; }
    public int[] TokenTypeIds { get; }
    /// <summary>1 for real tokens, 0 for padding.</summary>
    public float[] AttentionMask { get; }
    /// <summary>Soft targets [B, L] for <see cref="BertClassifier.Forward"/>; see <see cref="SetTargets"/>.</summary>
    public float[] Targets { get; }
    /// <summary>Class ids [B].</summary>
    public int[] Labels { get; }

    /// <summary>Sets the class ids and one-hot targets.</summary>
    public void SetLabels(ReadOnlySpan<int> labels)
    {
        for (int b = 0; b < BatchSize; b++)
            if ((uint)labels[b] >= (uint)NumLabels) throw new ArgumentOutOfRangeException(nameof(labels), $"label {labels[b]} of example {b} is outside 0..{NumLabels - 1}");
        labels[..BatchSize].CopyTo(Labels);
        SetTargets(null);
    }

    /// <summary>Targets from the labels: one-hot, or with a mix λ·onehot(y_b) + (1−λ)·onehot(y_partner(b)),
    /// so that cross-entropy against them is λ·CE(y_b) + (1−λ)·CE(y_partner).</summary>
    public void SetTargets(Mix? mix)
    {
        Array.Clear(Targets);
        for (int b = 0; b < BatchSize; b++)
        {
            float l = mix?.Lambda[b] ?? 1f;
            Targets[b * NumLabels + Labels[b]] += l;
            if (mix != null) Targets[b * NumLabels + Labels[mix.Partner[b]]] += 1f - l;
        }
    }
}

/// <summary>Where in the network a mixup batch interpolates each example with its partner.</summary>
public enum MixSite
{
    /// <summary>Word embeddings, before position/type embeddings and LayerNorm (mode "mixup").</summary>
    WordEmbeddings,
    /// <summary>Hidden states after encoder layer <see cref="Mix.Layer"/> (mode "tmix").</summary>
    Hidden,
    /// <summary>The pooled [CLS] vector, before the classifier (mode "senmix").</summary>
    Pooled,
}

/// <summary>
/// How one batch is mixed: example b is interpolated with example Partner[b] of the same batch with
/// weight Lambda[b] on itself. The attention mask above the mixing point is the union of both masks.
/// The targets are mixed by the caller with the same λ.
/// </summary>
public sealed record Mix(MixSite Site, int[] Partner, float[] Lambda, int Layer = 0);
