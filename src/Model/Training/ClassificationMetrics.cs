namespace MixupBert.Model.Training;

/// <summary>
/// Validation and test metrics: accuracy; precision, recall and F1 of the positive class (label 1)
/// for two classes and their macro averages for more, as scikit-learn's defaults; and the expected
/// calibration error over 15 equal-width confidence bins (Guo et al., 2017).
/// </summary>
public sealed record ClassificationMetrics(double Loss, double Accuracy, double F1, double Precision, double Recall, double Ece, int Count)
{
    public const int EceBins = 15;

    /// <param name="probabilities">[N, L] predicted class probabilities.</param>
    public static ClassificationMetrics Compute(ReadOnlySpan<int> labels, ReadOnlySpan<float> probabilities, int numLabels, double loss)
    {
        int n = labels.Length;
        var predicted = new int[n];
        var confidence = new double[n];
        for (int i = 0; i < n; i++)
        {
            var p = probabilities.Slice(i * numLabels, numLabels);
            int best = 0;
            for (int c = 1; c < numLabels; c++) if (p[c] > p[best]) best = c;
            predicted[i] = best;
            confidence[i] = p[best];
        }
        int correct = 0;
        for (int i = 0; i < n; i++) if (predicted[i] == labels[i]) correct++;

        var truth = labels.ToArray();
        double PrecisionOf(int c) { int tp = 0, pp = 0; for (int i = 0; i < n; i++) if (predicted[i] == c) { pp++; if (truth[i] == c) tp++; } return pp == 0 ? 0 : (double)tp / pp; }
        double RecallOf(int c) { int tp = 0, ap = 0; for (int i = 0; i < n; i++) if (truth[i] == c) { ap++; if (predicted[i] == c) tp++; } return ap == 0 ? 0 : (double)tp / ap; }
        static double F(double p, double r) => p + r == 0 ? 0 : 2 * p * r / (p + r);
        double precision, recall, f1;
        if (numLabels == 2) { precision = PrecisionOf(1); recall = RecallOf(1); f1 = F(precision, recall); }
        else
        {
            precision = recall = f1 = 0;
            for (int c = 0; c < numLabels; c++) { double p = PrecisionOf(c), r = RecallOf(c); precision += p; recall += r; f1 += F(p, r); }
            precision /= numLabels; recall /= numLabels; f1 /= numLabels;
        }
        return new ClassificationMetrics(loss, (double)correct / n, f1, precision, recall, ExpectedCalibrationError(labels, predicted, confidence), n);
    }

    /// <summary>Σ_bins (|bin| / N) · |accuracy(bin) − mean confidence(bin)|, bins (k/15, (k+1)/15].</summary>
    public static double ExpectedCalibrationError(ReadOnlySpan<int> labels, ReadOnlySpan<int> predicted, ReadOnlySpan<double> confidence)
    {
        var count = new int[EceBins]; var hits = new int[EceBins]; var conf = new double[EceBins];
        for (int i = 0; i < labels.Length; i++)
        {
            int bin = Math.Clamp((int)Math.Ceiling(confidence[i] * EceBins) - 1, 0, EceBins - 1);
            count[bin]++; conf[bin] += confidence[i];
            if (predicted[i] == labels[i]) hits[bin]++;
        }
        double ece = 0;
        for (int b = 0; b < EceBins; b++)
            if (count[b] > 0) ece += (double)count[b] / labels.Length * Math.Abs((double)hits[b] / count[b] - conf[b] / count[b]);
        return ece;
    }

    /// <summary>Per-bin counts, accuracy and mean confidence, for reliability diagrams.</summary>
    public static ReliabilityBins Reliability(ReadOnlySpan<int> labels, ReadOnlySpan<float> probabilities, int numLabels)
    {
        var count = new int[EceBins]; var acc = new double[EceBins]; var conf = new double[EceBins];
        for (int i = 0; i < labels.Length; i++)
        {
            var p = probabilities.Slice(i * numLabels, numLabels);
            int best = 0;
            for (int c = 1; c < numLabels; c++) if (p[c] > p[best]) best = c;
            int bin = Math.Clamp((int)Math.Ceiling(p[best] * EceBins) - 1, 0, EceBins - 1);
            count[bin]++; conf[bin] += p[best]; if (best == labels[i]) acc[bin]++;
        }
        for (int b = 0; b < EceBins; b++) if (count[b] > 0) { acc[b] /= count[b]; conf[b] /= count[b]; }
        return new ReliabilityBins(count, acc, conf);
    }

    public double Get(string metric) => metric switch
    {
        "accuracy" => Accuracy, "f1" => F1, "precision" => Precision, "recall" => Recall,
        "loss" => -Loss, "ece" => -Ece, // lower is better: negate so that larger is always better
        _ => throw new ArgumentException($"unknown metric '{metric}' (accuracy, f1, precision, recall, loss, ece)"),
    };
}
