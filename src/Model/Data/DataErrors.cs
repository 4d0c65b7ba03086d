namespace MixupBert.Model.Data;

/// <summary>A problem with a dataset; the message names the file and, where there is one, the column and row.</summary>
public sealed class DataFormatException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>Set when the file lacks the label column: a split without labels (a benchmark's test split),
    /// which is not used rather than refused where it is not train.</summary>
    public string? MissingLabelColumn { get; init; }
}
