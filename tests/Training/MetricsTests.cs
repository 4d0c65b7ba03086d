using MixupBert.Model.Training;

namespace MixupBert.Tests.Training;

public class MetricsTests
{
    [Fact]
    public void BinaryMetricsAndEceMatchHandComputedValues()
    {
        // predictions: p(1) = .9 .8 .3 .6 .2 → predicted 1 1 0 1 0; truth 1 0 0 1 1
        int[] labels = { 1, 0, 0, 1, 1 };
        float[] probs = { .1f, .9f, .2f, .8f, .7f, .3f, .4f, .6f, .8f, .2f };
        var m = ClassificationMetrics.Compute(labels, probs, 2, loss: 0.5);
        Assert.Equal(3.0 / 5, m.Accuracy, 12);
        Assert.Equal(2.0 / 3, m.Precision, 12);   // tp 2 of 3 predicted positive
        Assert.Equal(2.0 / 3, m.Recall, 12);      // tp 2 of 3 actual positive
        Assert.Equal(2.0 / 3, m.F1, 12);
        // confidence and correctness per row: .9 right, .8 wrong, .7 right, .6 right, .8 wrong; bins of width 1/15:
        // (13/15, 14/15] holds .9: |1 − .9|·1/5; (11/15, 12/15] both .8: |0 − .8|·2/5; .7: |1 − .7|·1/5; .6: |1 − .6|·1/5
        double expected = (0.1 + 2 * 0.8 + 0.3 + 0.4) / 5;
        Assert.Equal(expected, m.Ece, 5);
    }

    [Fact]
    public void MulticlassUsesMacroAverages()
    {
        int[] labels = { 0, 1, 2, 2 };
        float[] probs = { .8f, .1f, .1f, /**/ .6f, .3f, .1f, /**/ .1f, .1f, .8f, /**/ .1f, .7f, .2f };
        var m = ClassificationMetrics.Compute(labels, probs, 3, 0);
        // predicted 0 0 2 1: class 0 p=1/2 r=1; class 1 p=0 r=0; class 2 p=1 r=1/2
        Assert.Equal(0.5, m.Accuracy, 12);
        Assert.Equal((0.5 + 0 + 1) / 3, m.Precision, 12);
        Assert.Equal((1 + 0 + 0.5) / 3, m.Recall, 12);
        Assert.Equal((2.0 / 3 + 0 + 2.0 / 3) / 3, m.F1, 12);
    }
}
