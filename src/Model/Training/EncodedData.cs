using MixupBert.Model.Data;

namespace MixupBert.Model.Training;

/// <summary>A split's token ids, a row per example; for sentence pairs, where each row's second segment
/// (token_type_id 1: the second text and its [SEP]) starts, null for single texts.</summary>
public sealed record EncodedSplit(int[][] Ids, int[]? SecondStarts = null)
{
    public static EncodedSplit Of(TextEncoder encoder, LabeledSplit split, int maxLength)
    {
        if (split.Pairs is not string[] pairs) return new(split.Texts.Select(t => encoder.Encode(t, maxLength)).ToArray());
        var ids = new int[split.Count][];
        var starts = new int[split.Count];
        for (int i = 0; i < ids.Length; i++) (ids[i], starts[i]) = encoder.EncodePair(split.Texts[i], pairs[i], maxLength);
        return new(ids, starts);
    }
}

/// <summary>Tokenized splits.</summary>
public sealed record EncodedData(EncodedSplit Train, EncodedSplit Validation, EncodedSplit? Test, int PadId)
{
    public static EncodedData From(TextEncoder encoder, LabeledSplit train, TextClassificationData data, int maxLength) => new(
        EncodedSplit.Of(encoder, train, maxLength),
        EncodedSplit.Of(encoder, data.Validation, maxLength),
        data.Test == null ? null : EncodedSplit.Of(encoder, data.Test, maxLength),
        encoder.PadId);
}
