namespace MixupBert.Model.Bert;

/// <summary>Which augmentation a training run uses.</summary>
public enum MixMode { Baseline, Mixup, TMix, SenMix, SsMix }

/// <summary>Where in the network a mixed batch interpolates each example with its partner.</summary>
public enum MixSite
{
    /// <summary>Word embeddings, before position/type embeddings and LayerNorm (mode "mixup").</summary>
    WordEmbeddings,
    /// <summary>Hidden states after encoder layer <see cref="Mix.Layer"/> (mode "tmix").</summary>
    Hidden,
    /// <summary>The pooled [CLS] vector, before the classifier (mode "senmix").</summary>
    Pooled,
    /// <summary>
    /// The input token ids (mode "ssmix"): a span of the partner's tokens is copied into the example on
    /// the host (<see cref="SpanMix"/>) before the engine sees the batch, so the engines mix nothing in
    /// the network and only the loss reads the partner's label and λ (the share of its own tokens the
    /// example kept). As drawn by <see cref="MixSampler"/>, before any span is chosen, λ is 1.
    /// </summary>
    Tokens,
}

/// <summary>
/// How one batch is mixed: example b is interpolated with example Partner[b] of the same batch with
/// weight Lambda[b] on itself, at <see cref="Site"/> (after encoder layer <see cref="Layer"/>, 1-based,
/// for <see cref="MixSite.Hidden"/>; nowhere in the network for <see cref="MixSite.Tokens"/>, whose
/// tokens were mixed before); its loss is λ·CE(y_b) + (1−λ)·CE(y_partner). Where each engine
/// applies it is <see cref="BertSchedule"/>; the ops are Kernels' Mixup and Embedding.
/// </summary>
public sealed record Mix(MixSite Site, int[] Partner, float[] Lambda, int Layer = 0)
{
    public void Validate(int batch, int layers)
    {
        if (Partner.Length < batch || Lambda.Length < batch) throw new ArgumentException("mix: partner and λ need one entry per example");
        for (int b = 0; b < batch; b++)
            if ((uint)Partner[b] >= (uint)batch) throw new ArgumentException($"mix: partner {Partner[b]} of example {b} is outside the batch");
        if (Site == MixSite.Hidden && (Layer < 1 || Layer > layers))
            throw new ArgumentException($"mix: tmix layer {Layer} must be in 1..{layers}");
    }
}

/// <summary>
/// Draws the mix of a batch: a random permutation of the batch as partners and λ ~ Beta(α, β), one
/// per batch or one per example (ssmix: no λ drawn, see <see cref="MixSite.Tokens"/>); a share
/// <see cref="Probability"/> of batches is mixed at all.
/// </summary>
public sealed class MixSampler(MixMode mode, float alpha = 1f, float beta = 1f, bool perExample = false, float probability = 1f, IReadOnlyList<int>? tmixLayers = null)
{
    public MixMode Mode { get; } = mode;
    public float Probability { get; } = probability;

    /// <summary>Whether a mode draws λ ~ Beta(α, β), so that α and β matter (not baseline, which does not
    /// mix, nor ssmix, whose λ is the share of tokens its spans keep).</summary>
    public static bool DrawsLambda(MixMode mode) => mode is not (MixMode.Baseline or MixMode.SsMix);

    /// <summary>The mix for a batch of <paramref name="batch"/> examples, or null to train it plainly.</summary>
    public Mix? Sample(int batch, Random rng)
    {
        if (Mode == MixMode.Baseline) return null;
        if (Probability < 1f && rng.NextDouble() >= Probability) return null;
        var partner = Enumerable.Range(0, batch).ToArray();
        rng.Shuffle(partner);
        var lambda = new float[batch];
        if (Mode == MixMode.SsMix)
        {
            // ssmix's λ follows from the spans SpanMix chooses later: until then every example keeps all its tokens
            Array.Fill(lambda, 1f);
            return new Mix(MixSite.Tokens, partner, lambda);
        }
        float shared = (float)Beta(rng, alpha, beta);
        for (int b = 0; b < batch; b++) lambda[b] = perExample ? (float)Beta(rng, alpha, beta) : shared;
        return Mode switch
        {
            MixMode.Mixup => new Mix(MixSite.WordEmbeddings, partner, lambda),
            MixMode.SenMix => new Mix(MixSite.Pooled, partner, lambda),
            _ => new Mix(MixSite.Hidden, partner, lambda, Layer: tmixLayers is { Count: > 0 } ? tmixLayers[rng.Next(tmixLayers.Count)] : 1),
        };
    }

    /// <summary>TMix's layer set (7, 9, 12 for 12 layers) scaled to a model of another depth.</summary>
    public static int[] DefaultTMixLayers(int layers) =>
        new[] { 7, 9, 12 }.Select(k => Math.Clamp((int)Math.Round(k * layers / 12.0, MidpointRounding.AwayFromZero), 1, layers)).Distinct().ToArray();

    /// <summary>A seed derived from several integers, the same in every process (unlike HashCode.Combine,
    /// which is randomised per process): SplitMix64 over the values.</summary>
    public static int StableSeed(params long[] values)
    {
        ulong z = 0x9E3779B97F4A7C15UL;
        foreach (long v in values)
        {
            z += (ulong)v * 0xBF58476D1CE4E5B9UL + 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
        }
        return (int)(z & 0x7FFFFFFF);
    }

    /// <summary>Beta(a, b) as X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b).</summary>
    public static double Beta(Random rng, double a, double b)
    {
        double x = Gamma(rng, a), y = Gamma(rng, b);
        return x / (x + y);
    }

    /// <summary>Gamma(shape, 1) by Marsaglia and Tsang (2000), with the boost for shape &lt; 1.</summary>
    public static double Gamma(Random rng, double shape)
    {
        if (shape < 1) return Gamma(rng, shape + 1) * Math.Pow(1.0 - rng.NextDouble(), 1.0 / shape);
        double d = shape - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x = BertCheckpoint.Normal(rng), v = 1 + c * x;
            if (v <= 0) continue;
            v = v * v * v;
            double u = 1.0 - rng.NextDouble();
            if (Math.Log(u) < 0.5 * x * x + d - d * v + d * Math.Log(v)) return d * v;
        }
    }
}
