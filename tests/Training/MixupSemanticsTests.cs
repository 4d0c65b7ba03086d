using MixupBert.Kernels.Cpu;
using MixupBert.Model.Bert;
using MixupBert.Model.Training;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>What each mixup mode must and must not change.</summary>
public class MixupSemanticsTests
{
    private static readonly int[] Partner = { 2, 3, 0, 1 };

    [Theory]
    [InlineData(MixSite.WordEmbeddings, 0)]
    [InlineData(MixSite.Hidden, 1)]
    [InlineData(MixSite.Pooled, 0)]
    [InlineData(MixSite.Tokens, 0)]
    public void LambdaOneIsExactlyTheBaselineStep(MixSite site, int layer)
    {
        var config = TinyConfig(labels: 3, dropout: 0.1f);
        var init = BertCheckpoint.RandomInit(config, 5);
        var batch = RandomBatch(config, 4, 9, 6); // rows of different lengths: the union mask would differ if λ = 1 used it
        using var plain = new CpuBertEngine(config, (float[])init.Clone());
        using var mixed = new CpuBertEngine(config, (float[])init.Clone());
        double a = plain.ForwardBackward(batch, null, 1, 1);
        double b = mixed.ForwardBackward(batch, new Mix(site, Partner, new[] { 1f, 1f, 1f, 1f }, layer), 1, 1);
        Assert.Equal(a, b);
        var ga = new float[plain.Layout.Size]; var gb = new float[ga.Length];
        plain.CopyGradients(ga); mixed.CopyGradients(gb);
        Assert.Equal(ga, gb);
    }

    [Fact]
    public void UnionMaskAndPartnerTargetsAreRight()
    {
        // example 0 has 2 tokens, example 1 has 4; 0 is mixed with 1 and 1 with 0
        float[] mask = { 1, 1, 0, 0, 1, 1, 1, 1 };
        var union = new float[8];
        Mixup.UnionMask(mask, new[] { 1, 0 }, new[] { 0.5f, 0.5f }, union, 2, 4);
        Assert.Equal(new float[] { 1, 1, 1, 1, 1, 1, 1, 1 }, union);
        Mixup.UnionMask(mask, new[] { 1, 0 }, new[] { 1f, 0f }, union, 2, 4); // λ = 1: own only; λ = 0: partner's only
        Assert.Equal(new float[] { 1, 1, 0, 0, 1, 1, 0, 0 }, union);

        // the mixed cross-entropy's targets, read back from its gradient: t = p − B·dlogits
        int[] labels = { 0, 2, 1 }, partner = { 1, 2, 0 };
        float[] lambda = { 0.7f, 0.4f, 1f }, logits = { 0.3f, -1f, 2f, 0.5f, 0.5f, -0.2f, 1f, 0f, -1f };
        var probs = new float[9]; var losses = new float[3]; var dlogits = new float[9];
        CrossEntropy.Forward(logits, labels, partner, lambda, probs, losses, dlogits, 3, 3);
        var targets = probs.Select((p, i) => MathF.Round(p - 3 * dlogits[i], 6)).ToArray();
        Assert.Equal(new[] { 0.7f, 0, 0.3f, /**/ 0, 0.6f, 0.4f, /**/ 0, 1f, 0 }, targets);
    }

    [Fact]
    public void TMixAtTheLastLayerAndSenMixChangeOnlyWhatFollowsTheirMixingPoint()
    {
        var config = TinyConfig(labels: 2);
        var p = BertCheckpoint.RandomInit(config, 9);
        var batch = RandomBatch(config, 4, 7, 10);
        var lambda = new[] { 0.3f, 0.6f, 1f, 0.2f };
        var model = new CpuBertEngine(config, p);

        model.Forward(batch, training: false);
        var hidden = model.LastHiddenState.ToArray(); var pooled = model.PooledOutput.ToArray(); var logits = model.Logits.ToArray();

        model.Forward(batch, training: false, mix: new Mix(MixSite.Hidden, Partner, lambda, Layer: config.NumHiddenLayers));
        Assert.Equal(hidden, model.LastHiddenState.ToArray()); // every encoder layer ran unmixed
        AssertRowsDifferOnlyWhereMixed(pooled, model.PooledOutput.ToArray(), lambda, config.HiddenSize);

        model.Forward(batch, training: false, mix: new Mix(MixSite.Pooled, Partner, lambda));
        Assert.Equal(hidden, model.LastHiddenState.ToArray());
        Assert.Equal(pooled, model.PooledOutput.ToArray()); // the pooler ran unmixed; the classifier saw the mix
        AssertRowsDifferOnlyWhereMixed(logits, model.Logits.ToArray(), lambda, config.NumLabels);
    }

    private static void AssertRowsDifferOnlyWhereMixed(float[] plain, float[] mixed, float[] lambda, int width)
    {
        for (int b = 0; b < lambda.Length; b++)
        {
            var x = plain.AsSpan(b * width, width).ToArray(); var y = mixed.AsSpan(b * width, width).ToArray();
            if (lambda[b] == 1f) Assert.Equal(x, y);
            else Assert.NotEqual(x, y);
        }
    }

    [Fact]
    public void SamplerDrawsPermutationsAndBetaLambdas()
    {
        var sampler = new MixSampler(MixMode.Mixup, alpha: 0.4f, beta: 0.4f, perExample: true);
        var rng = new Random(3);
        double sum = 0; int n = 0;
        for (int i = 0; i < 200; i++)
        {
            var mix = sampler.Sample(8, rng)!;
            Assert.Equal(Enumerable.Range(0, 8), mix.Partner.Order());
            foreach (var l in mix.Lambda) { Assert.InRange(l, 0f, 1f); sum += l; n++; }
        }
        Assert.InRange(sum / n, 0.45, 0.55); // Beta(0.4, 0.4) has mean 0.5
        Assert.Null(new MixSampler(MixMode.Baseline).Sample(8, rng));
        Assert.Equal(new[] { 4, 5, 6 }, MixSampler.DefaultTMixLayers(6)); // 7, 9, 12 of 12 layers, scaled to 6
    }
}
