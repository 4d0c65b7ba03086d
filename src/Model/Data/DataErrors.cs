namespace MixupBert.Model.Data;

/// <summary>A problem with a dataset; the message names the file and, where there is one, the column and row.</summary>
public sealed class DataFormatException(string message, Exception? inner = null) : Exception(message, inner);
