using MixupBert.Model.Bert;
using MixupBert.Model.Weights;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Engine;

/// <summary>
/// The whole BertForSequenceClassification backward against finite differences of its forward, for
/// every parameter tensor, on a tiny random model (2 layers, hidden 32, 4 heads).
/// </summary>
public class ModelGradientTests
{
    private const float H = 1e-2f;

    private static (CpuBertEngine Model, Batch Batch) Tiny(float dropout = 0f, int seed = 11)
    {
        var config = TinyConfig(labels: 3, dropout: dropout);
        var model = new CpuBertEngine(config, BertCheckpoint.RandomInit(config, seed));
        return (model, RandomBatch(config, batch: 4, seqLen: 7, seed: seed));
    }

    /// <summary>
    /// Per tensor: (1) the directional derivative along the analytic gradient itself, which must
    /// equal ‖g‖ (catches a gradient of the wrong scale or direction), (2) along a random unit
    /// direction, and (3) single coordinates where |g| is largest and a few at random.
    /// </summary>
    private static void CheckEveryTensor(CpuBertEngine model, Func<double> loss, string what)
    {
        model.ZeroGradients();
        loss();
        model.Backward();
        var grad = (float[])model.Gradients.Clone();
        var p = model.Parameters;
        var rng = new Random(5);
        foreach (var t in model.Layout.Tensors)
        {
            var g = grad.AsSpan(t.Offset, t.Length).ToArray();
            double norm = Math.Sqrt(g.Sum(v => (double)v * v));
            if (t.Name.EndsWith("attention.self.key.bias", StringComparison.Ordinal))
            {
                // softmax is invariant to a per-query constant, and q·b_k is one: this gradient is exactly 0
                Assert.True(norm < 1e-5, $"{what}: gradient of {t.Name} should vanish, norm {norm}");
                continue;
            }
            Assert.True(norm > 1e-6, $"{what}: gradient of {t.Name} is zero");
            var random = new float[t.Length];
            for (int i = 0; i < random.Length; i++) random[i] = (float)BertCheckpoint.Normal(rng);
            foreach (var (dirName, dir) in new[] { ("along g", g), ("random", random) })
                GradCheck.Directional($"{what}: {t.Name} {dirName}", p, t.Offset, g, dir, loss, H);
            var coords = Enumerable.Range(0, t.Length).OrderByDescending(i => Math.Abs(g[i])).Take(3)
                .Concat(Enumerable.Range(0, 3).Select(_ => rng.Next(t.Length))).Distinct();
            foreach (int i in coords)
            {
                float saved = p[t.Offset + i];
                p[t.Offset + i] = saved + H; double plus = loss();
                p[t.Offset + i] = saved - H; double minus = loss();
                p[t.Offset + i] = saved;
                double numeric = (plus - minus) / (2 * H);
                Assert.True(Math.Abs(numeric - g[i]) <= 2e-4 + 2e-2 * Math.Abs(numeric),
                    $"{what}: {t.Name}[{i}]: finite difference {numeric:G6}, backward {g[i]:G6}");
            }
        }
    }

    [Fact]
    public void EveryParameterTensorWithoutDropout()
    {
        var (model, batch) = Tiny();
        CheckEveryTensor(model, () => model.Forward(batch, training: true, seed: 1, step: 1), "no dropout");
    }

    [Fact]
    public void EveryParameterTensorWithDropoutOn()
    {
        // dropout masks are a function of (seed, step, site, index), so the loss is a deterministic
        // function of the parameters and finite differences apply
        var (model, batch) = Tiny(dropout: 0.2f);
        CheckEveryTensor(model, () => model.Forward(batch, training: true, seed: 3, step: 9), "dropout 0.2");
    }

    public static TheoryData<MixSite, int> MixSites => new()
    {
        { MixSite.WordEmbeddings, 0 }, { MixSite.Hidden, 1 }, { MixSite.Hidden, 2 }, { MixSite.Pooled, 0 },
        { MixSite.Tokens, 0 }, // ssmix's step: its tokens were mixed before, the loss alone reads partner and λ
    };

    [Theory]
    [MemberData(nameof(MixSites))]
    public void EveryParameterTensorWithMixup(MixSite site, int layer)
    {
        var (model, batch) = Tiny();
        var mix = new Mix(site, Partner: new[] { 2, 0, 3, 1 }, Lambda: new[] { 0.7f, 0.4f, 1f, 0.15f }, Layer: layer);
        CheckEveryTensor(model, () => model.Forward(batch, training: true, seed: 1, step: 1, mix: mix), $"mix {site} {layer}");
    }
}
