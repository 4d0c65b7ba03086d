using MixupBert.Kernels.Cpu;
using MixupBert.Model.Bert;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Engine;

/// <summary>SSMix's token saliency (IBertEngine.TokenSaliency) against finite differences of the loss,
/// and its pass leaving nothing behind in the training step that follows.</summary>
public class SaliencyTests
{
    private const int B = 3, T = 6;

    /// <summary>Rows of 6, 5 and 3 tokens, two segments in row 1, every real token's id used once (so
    /// the gradient of its word-embedding row is the gradient at that one token's embedding).</summary>
    private static Batch UniqueIds(Model.Weights.BertConfig c)
    {
        int[] lengths = [6, 5, 3];
        var ids = new int[B * T]; var mask = new float[B * T]; var types = new int[B * T];
        int next = 1;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
            {
                bool real = t < lengths[b];
                ids[b * T + t] = real ? next++ : c.PadTokenId;
                mask[b * T + t] = real ? 1 : 0;
                types[b * T + t] = real && b == 1 && t >= 3 ? 1 : 0;
            }
        return new Batch(T, c.NumLabels, ids, mask, [2, 0, 1], types);
    }

    [Fact]
    public void SaliencyIsTheNormOfTheLossGradientAtEachTokensEmbedding()
    {
        var config = TinyConfig(labels: 3, dropout: 0.1f); // dropout on, as in the pass; its masks are fixed by seed and step
        var model = new CpuBertEngine(config, BertCheckpoint.RandomInit(config, 13));
        var batch = UniqueIds(config);
        var saliency = new float[B * T];
        model.TokenSaliency(batch, seed: 3, step: 9, saliency);
        double Loss() => model.Forward(batch, training: true, seed: 3, step: 9);

        int C = config.HiddenSize, word = model.Layout.WordEmbeddings;
        var p = model.Parameters;
        double largest = saliency.Max();
        Assert.True(largest > 1e-4, $"the saliency is all but zero ({largest})");
        for (int i = 0; i < B * T; i++)
        {
            if (batch.AttentionMask[i] == 0f)
            {
                Assert.Equal(0f, saliency[i]); // padding is attended by nothing: no gradient reaches it
                continue;
            }
            int row = word + batch.InputIds[i] * C;
            double squares = 0;
            for (int c = 0; c < C; c++)
            {
                float saved = p[row + c];
                p[row + c] = saved + GradCheck.Step; double plus = Loss();
                p[row + c] = saved - GradCheck.Step; double minus = Loss();
                p[row + c] = saved;
                double g = (plus - minus) / (2 * GradCheck.Step);
                squares += g * g;
            }
            double numeric = Math.Sqrt(squares);
            Assert.True(Math.Abs(numeric - saliency[i]) <= 1e-2 * numeric + 1e-3 * largest,
                $"token {i / T}, {i % T}: finite differences give ‖∂L/∂e‖ = {numeric:G6}, the saliency pass {saliency[i]:G6}");
        }
    }

    [Fact]
    public void TheSaliencyPassLeavesNothingInTheStepThatFollows()
    {
        var config = TinyConfig(labels: 3, dropout: 0.1f);
        var init = BertCheckpoint.RandomInit(config, 17);
        var batch = UniqueIds(config);
        var mix = new Mix(MixSite.Tokens, [1, 2, 0], [0.8f, 1f, 0.5f]);
        using var plain = new CpuBertEngine(config, (float[])init.Clone());
        using var salient = new CpuBertEngine(config, (float[])init.Clone());
        var saliency = new float[B * T];
        salient.TokenSaliency(batch, seed: 1, step: 1, saliency);
        Assert.All(salient.Gradients, g => Assert.Equal(0f, g));
        var a = plain.TrainStep(batch, mix, 1e-3f, 1, 1, new OptimizerSettings());
        var b = salient.TrainStep(batch, mix, 1e-3f, 1, 1, new OptimizerSettings());
        Assert.Equal(a, b);
        Assert.Equal(plain.Parameters, salient.Parameters);
        var (ma, va, mb, vb) = (new float[init.Length], new float[init.Length], new float[init.Length], new float[init.Length]);
        plain.CopyOptimizerState(ma, va); salient.CopyOptimizerState(mb, vb);
        Assert.Equal(ma, mb);
        Assert.Equal(va, vb);
    }

    [Fact]
    public void RowNormIsTheEuclideanNormOfEachRow()
    {
        var rng = new Random(2);
        int rows = 5, cols = 37;
        var x = Random(rng, rows * cols, 3f);
        var y = new float[rows];
        RowNorm.Forward(x, y, rows, cols);
        for (int r = 0; r < rows; r++)
            Assert.Equal(Math.Sqrt(x.Skip(r * cols).Take(cols).Sum(v => (double)v * v)), y[r], 1e-5 * y[r]);
    }
}
