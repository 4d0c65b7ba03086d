using MixupBert.Model.Data;

namespace MixupBert.Model.Training;

/// <summary>Tokenized splits.</summary>
public sealed record EncodedData(int[][] Train, int[][] Validation, int[][]? Test, int PadId)
{
    public static EncodedData From(TextEncoder encoder, LabeledSplit train, TextClassificationData data, int maxLength) => new(
        train.Texts.Select(t => encoder.Encode(t, maxLength)).ToArray(),
        data.Validation.Texts.Select(t => encoder.Encode(t, maxLength)).ToArray(),
        data.Test?.Texts.Select(t => encoder.Encode(t, maxLength)).ToArray(),
        encoder.PadId);
}
