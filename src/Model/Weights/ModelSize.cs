namespace MixupBert.Model.Weights;

/// <summary>
/// What a config costs in memory, computed in 64-bit arithmetic from the config alone, so that a
/// config asking for more than the machine has is refused with the figure before anything is allocated.
/// </summary>
public static class ModelSize
{
    /// <summary>The sequence length of the smallest run the tool makes (the default --max-length).</summary>
    public const int ProbeSequenceLength = 128;

    /// <summary>float32 parameters of BertForSequenceClassification; long.MaxValue when it does not even fit in 64 bits.</summary>
    public static long ParameterCount(BertConfig c)
    {
        try
        {
            checked
            {
                long C = c.HiddenSize, I = c.IntermediateSize, L = c.NumLabels;
                long embeddings = ((long)c.VocabSize + c.MaxPositionEmbeddings + c.TypeVocabSize) * C + 2 * C;
                // Q, K, V and output projections with biases, two LayerNorms, the feed-forward pair with biases
                long layer = 4 * C * C + 4 * C + 4 * C + 2 * I * C + I + C;
                long pooler = C * C + C, classifier = L * C + L;
                return embeddings + c.NumHiddenLayers * layer + pooler + classifier;
            }
        }
        catch (OverflowException) { return long.MaxValue; }
    }

    /// <summary>Bytes of the activation and backward buffers for <paramref name="batch"/> sequences of
    /// <paramref name="seqLen"/> tokens: the engines' own inventory (<see cref="Bert.BertActivations{T}"/>), counted
    /// instead of allocated.</summary>
    public static long ActivationBytes(BertConfig c, long batch, long seqLen)
    {
        if (batch > int.MaxValue || seqLen > int.MaxValue) return long.MaxValue;
        long floats = 0;
        try
        {
            _ = new Bert.BertActivations<long>(c, (int)batch, (int)seqLen, n => checked(floats += n));
            return checked(4 * floats);
        }
        catch (OverflowException) { return long.MaxValue; }
    }

    /// <summary>The memory this process may use: the machine's or the container's limit, as the GC sees it.</summary>
    public static long AvailableBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

    /// <summary>
    /// Refuses a config whose weights do not fit in one float32 buffer (the engines' layout), or whose
    /// weights plus the activations of one <see cref="ProbeSequenceLength"/>-token sequence exceed the
    /// available memory.
    /// </summary>
    /// <param name="availableBytes">the memory to fit in; null for <see cref="AvailableBytes"/>.</param>
    public static void RequireFits(BertConfig c, string source, long? availableBytes = null)
    {
        long parameters = ParameterCount(c);
        string shape = $"vocab_size {c.VocabSize}, hidden_size {c.HiddenSize}, num_hidden_layers {c.NumHiddenLayers}, intermediate_size {c.IntermediateSize}, " +
            $"max_position_embeddings {c.MaxPositionEmbeddings}, num_labels {c.NumLabels}";
        if (parameters > Array.MaxLength)
            throw new ModelFormatException($"{source}: the model has {Count(parameters)} parameters ({shape}); this engine holds at most {Array.MaxLength:N0} in one float32 buffer");
        long seqLen = Math.Min(c.MaxPositionEmbeddings, ProbeSequenceLength);
        long activations = ActivationBytes(c, 1, seqLen);
        long needed = activations == long.MaxValue ? long.MaxValue : 4 * parameters + activations;
        long available = availableBytes ?? AvailableBytes;
        if (needed < 0 || needed > available)
            throw new ModelFormatException($"{source}: the model needs {Gib(needed)} ({Count(parameters)} float32 parameters, {Gib(4 * parameters)}, " +
                $"plus {Gib(activations)} of activations for one {seqLen}-token sequence) but {Gib(available)} of memory is available ({shape})");
    }

    /// <summary>
    /// Refuses a CPU training run whose weights, gradients, Adam moments (4 float32 copies of the
    /// parameters) and activations for <paramref name="batch"/> × <paramref name="seqLen"/> tokens exceed
    /// the available memory: the figure before the first step, not an OutOfMemoryException during it.
    /// </summary>
    public static void RequireTrainingFits(BertConfig c, int batch, int seqLen, string source, long? availableBytes = null)
    {
        long parameters = ParameterCount(c), activations = ActivationBytes(c, batch, seqLen);
        long needed = parameters > long.MaxValue / 16 || activations == long.MaxValue ? long.MaxValue : 16 * parameters + activations;
        long available = availableBytes ?? AvailableBytes;
        if (needed > available)
            throw new ArgumentException($"{source}: training needs {Gib(needed)} ({Gib(16 * parameters)} for weights, gradients and Adam moments, " +
                $"{Gib(activations)} of activations for a batch of {batch} × {seqLen} tokens) but {Gib(available)} of memory is available: lower --batch-size, --eval-batch-size or --max-length");
    }

    private static string Count(long n) => n == long.MaxValue ? "more than 9.2e18" : n.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);

    private static string Gib(long bytes) => bytes == long.MaxValue ? "more than 8 EiB"
        : (bytes / (double)(1L << 30)).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) + " GiB";
}
