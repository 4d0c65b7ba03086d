namespace MixupBert.Kernels.Cpu;

/// <summary>The first token's vector of each sequence (BERT's pooler reads [CLS] only). CUDA: kernels/pooling.cuh.</summary>
public static class FirstToken
{
    /// <summary>first[b] = hidden[b, 0].</summary>
    public static void Forward(ReadOnlySpan<float> hidden, Span<float> first, int batch, int seqLen, int channels)
    {
        Check(hidden, first, batch, seqLen, channels);
        for (int b = 0; b < batch; b++) hidden.Slice(b * seqLen * channels, channels).CopyTo(first.Slice(b * channels, channels));
    }

    /// <summary>dhidden = 0 except dhidden[b, 0] = dfirst[b] (overwrites dhidden).</summary>
    public static void Backward(ReadOnlySpan<float> dfirst, Span<float> dhidden, int batch, int seqLen, int channels)
    {
        Check(dhidden, dfirst, batch, seqLen, channels);
        dhidden[..(batch * seqLen * channels)].Clear();
        for (int b = 0; b < batch; b++) dfirst.Slice(b * channels, channels).CopyTo(dhidden.Slice(b * seqLen * channels, channels));
    }

    private static void Check(ReadOnlySpan<float> hidden, ReadOnlySpan<float> first, int batch, int seqLen, int channels)
    {
        if (hidden.Length < (long)batch * seqLen * channels || first.Length < (long)batch * channels)
            throw new ArgumentException($"first token: buffers too small for {batch}×{seqLen}×{channels}");
    }
}
