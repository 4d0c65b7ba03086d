namespace MixupBert.Kernels.Cpu;

/// <summary>
/// Mixup inside one batch: example b is interpolated with its partner p_b (another example of the
/// batch) with weight λ_b on itself. <see cref="Forward"/>/<see cref="Backward"/> mix rows of
/// activations (hidden states: T rows per example; pooled vectors: 1), <see cref="UnionMask"/> is the
/// attention mask the mixed examples attend with. The word-embedding site is fused into
/// <see cref="Embedding.Forward"/> (its partner and λ arguments). CUDA: kernels/mixup.cuh.
/// </summary>
public static class Mixup
{
    /// <summary>y[b] = λ_b · x[b] + (1 − λ_b) · x[p_b], rows × channels per example.</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<int> partner, ReadOnlySpan<float> lambda, Span<float> y,
        int batch, int rows, int channels)
    {
        int per = rows * channels;
        Check(x, partner, lambda, y, batch, per);
        for (int b = 0; b < batch; b++)
        {
            float l = lambda[b];
            var own = x.Slice(b * per, per);
            var other = x.Slice(partner[b] * per, per);
            var dst = y.Slice(b * per, per);
            for (int j = 0; j < per; j++) dst[j] = l * own[j] + (1f - l) * other[j];
        }
    }

    /// <summary>dx[e] = Σ_b (b = e ? λ_b·dy[b] : 0) + (p_b = e ? (1 − λ_b)·dy[b] : 0), examples b in
    /// order (overwrites dx; dx must not alias dy).</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<int> partner, ReadOnlySpan<float> lambda, Span<float> dx,
        int batch, int rows, int channels)
    {
        int per = rows * channels;
        Check(dy, partner, lambda, dx, batch, per);
        dx[..(batch * per)].Clear();
        for (int b = 0; b < batch; b++)
        {
            float l = lambda[b];
            var g = dy.Slice(b * per, per);
            var own = dx.Slice(b * per, per);
            var other = dx.Slice(partner[b] * per, per);
            for (int j = 0; j < per; j++) { own[j] += l * g[j]; other[j] += (1f - l) * g[j]; }
        }
    }

    /// <summary>
    /// union[b, t] = max(λ_b > 0 ? mask[b, t] : 0, λ_b &lt; 1 ? mask[p_b, t] : 0): a mixed token
    /// attends where either example has a real token, and a side with weight 0 contributes nothing
    /// (so λ = 1 is exactly the unmixed example).
    /// </summary>
    public static void UnionMask(ReadOnlySpan<float> mask, ReadOnlySpan<int> partner, ReadOnlySpan<float> lambda, Span<float> union,
        int batch, int seqLen)
    {
        Check(mask, partner, lambda, union, batch, seqLen);
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

    private static void Check(ReadOnlySpan<float> x, ReadOnlySpan<int> partner, ReadOnlySpan<float> lambda, Span<float> y, int batch, int per)
    {
        long n = (long)batch * per;
        if (x.Length < n || y.Length < n || partner.Length < batch || lambda.Length < batch)
            throw new ArgumentException($"mixup: buffers too small for {batch} examples of {per} values");
        if (partner[..batch].ContainsAnyExceptInRange(0, batch - 1))
            throw new ArgumentException($"mixup: a partner is outside the batch of {batch}");
    }
}
