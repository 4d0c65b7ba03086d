namespace MixupBert.Kernels.Cpu;

/// <summary>The attention mask of a mixed batch.</summary>
public static class AttentionMask
{
    /// <summary>
    /// union[b, t] = max(own weight > 0 ? mask[b, t] : 0, partner weight > 0 ? mask[partner_b, t] : 0),
    /// with weights λ_b and 1 − λ_b: a token attends where either mixed example has a real token, and
    /// a side with weight 0 contributes nothing (so λ = 1 is exactly the unmixed example).
    /// </summary>
    public static void Union(ReadOnlySpan<float> mask, ReadOnlySpan<int> partner, ReadOnlySpan<float> lambda, Span<float> union, int batch, int seqLen)
    {
        for (int b = 0; b < batch; b++)
        {
            float l = lambda[b];
            for (int t = 0; t < seqLen; t++)
            {
                float own = l > 0f ? mask[b * seqLen + t] : 0f, other = l < 1f ? mask[partner[b] * seqLen + t] : 0f;
                union[b * seqLen + t] = Math.Max(own, other);
            }
        }
    }
}
