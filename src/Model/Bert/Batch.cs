namespace MixupBert.Model.Bert;

/// <summary>
/// One padded batch, read-only: B sequences of T tokens, row-major [B, T], and a class id per
/// sequence. The engines only read it; how a batch is mixed travels beside it as a <see cref="Mix"/>.
/// </summary>
public sealed class Batch
{
    private readonly int[] inputIds, tokenTypeIds, labels;
    private readonly float[] attentionMask;

    /// <summary>Copies the arrays: the caller may reuse them. tokenTypeIds null: all segment 0.</summary>
    public Batch(int seqLen, int numLabels, ReadOnlySpan<int> inputIds, ReadOnlySpan<float> attentionMask, ReadOnlySpan<int> labels,
        ReadOnlySpan<int> tokenTypeIds = default)
    {
        int batch = labels.Length;
        if (seqLen < 1 || batch < 1) throw new ArgumentException($"empty batch ({batch}×{seqLen})");
        if (inputIds.Length != batch * seqLen || attentionMask.Length != batch * seqLen || (!tokenTypeIds.IsEmpty && tokenTypeIds.Length != batch * seqLen))
            throw new ArgumentException($"a batch of {batch} labels and length {seqLen} needs {batch * seqLen} input_ids, attention_mask and token_type_ids");
        for (int b = 0; b < batch; b++)
            if ((uint)labels[b] >= (uint)numLabels) throw new ArgumentOutOfRangeException(nameof(labels), $"label {labels[b]} of example {b} is outside 0..{numLabels - 1}");
        BatchSize = batch; SeqLen = seqLen; NumLabels = numLabels;
        this.inputIds = inputIds.ToArray();
        this.attentionMask = attentionMask.ToArray();
        this.labels = labels.ToArray();
        this.tokenTypeIds = tokenTypeIds.IsEmpty ? new int[batch * seqLen] : tokenTypeIds.ToArray();
    }

    public int BatchSize { get; }
    public int SeqLen { get; }
    public int NumLabels { get; }
    public ReadOnlySpan<int> InputIds => inputIds;
    public ReadOnlySpan<int> TokenTypeIds => tokenTypeIds;
    /// <summary>1 for real tokens, 0 for padding.</summary>
    public ReadOnlySpan<float> AttentionMask => attentionMask;
    /// <summary>Class ids [B].</summary>
    public ReadOnlySpan<int> Labels => labels;

    /// <summary>Checks the batch (and its mix) against a model before any kernel reads it; messages name the tensor.</summary>
    public void Validate(Weights.BertConfig c, Mix? mix)
    {
        int B = BatchSize, T = SeqLen;
        if (NumLabels != c.NumLabels) throw new ArgumentException($"batch has {NumLabels} label columns, the model {c.NumLabels}");
        if (T > c.MaxPositionEmbeddings)
            throw new ArgumentException($"input_ids: sequence length {T} exceeds max_position_embeddings {c.MaxPositionEmbeddings}");
        for (int i = 0; i < B * T; i++)
        {
            if ((uint)inputIds[i] >= (uint)c.VocabSize)
                throw new ArgumentException($"input_ids[{i / T}, {i % T}] = {inputIds[i]} is outside the vocabulary (vocab_size {c.VocabSize})");
            if ((uint)tokenTypeIds[i] >= (uint)c.TypeVocabSize)
                throw new ArgumentException($"token_type_ids[{i / T}, {i % T}] = {tokenTypeIds[i]} is outside 0..{c.TypeVocabSize - 1} (type_vocab_size)");
        }
        mix?.Validate(B, c.NumHiddenLayers);
    }
}
