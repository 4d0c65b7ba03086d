using MathNet.Numerics.Distributions;

namespace MixupBert.Model.Experiments;

/// <summary>Summaries over seeds and the paired comparison of a mode against baseline.</summary>
public static class Statistics
{
    public readonly record struct MeanSd(double Mean, double Sd, int N)
    {
        public override string ToString() => N > 1 ? $"{Mean:F4} ± {Sd:F4}" : $"{Mean:F4}";
    }

    /// <summary>Mean and sample standard deviation (n − 1).</summary>
    public static MeanSd Describe(IReadOnlyList<double> xs)
    {
        int n = xs.Count;
        if (n == 0) return new MeanSd(double.NaN, double.NaN, 0);
        double mean = xs.Average();
        double sd = n > 1 ? Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (n - 1)) : double.NaN;
        return new MeanSd(mean, sd, n);
    }

    /// <summary>The paired comparison over seeds: mean of d = mode − baseline, its 95% t interval and the
    /// two-sided p-value of the paired t-test (NaN with fewer than two pairs).</summary>
    public readonly record struct Paired(double MeanDifference, double Low, double High, double P, int Pairs);

    public static Paired PairedTTest(IReadOnlyList<double> treatment, IReadOnlyList<double> control)
    {
        if (treatment.Count != control.Count) throw new ArgumentException("paired samples must have the same length");
        var d = treatment.Zip(control, (a, b) => a - b).ToArray();
        var s = Describe(d);
        if (s.N < 2) return new Paired(s.Mean, double.NaN, double.NaN, double.NaN, s.N);
        double se = s.Sd / Math.Sqrt(s.N);
        double tCrit = StudentT.InvCDF(0, 1, s.N - 1, 0.975);
        double p;
        if (se == 0) p = s.Mean == 0 ? 1.0 : 0.0;
        else p = 2 * (1 - StudentT.CDF(0, 1, s.N - 1, Math.Abs(s.Mean / se)));
        return new Paired(s.Mean, s.Mean - tCrit * se, s.Mean + tCrit * se, p, s.N);
    }

    /// <summary>
    /// Holm's step-down adjustment (Holm 1979) of a family of p-values, in the order given: with the
    /// m values sorted ascending, p(i) becomes max over j ≤ i of min(1, (m − j + 1)·p(j)). Rejecting where
    /// the adjusted value is below α controls the family-wise error rate at α. NaN entries (no test) stay
    /// NaN and are not counted in m.
    /// </summary>
    public static double[] Holm(IReadOnlyList<double> p)
    {
        var adjusted = p.Select(_ => double.NaN).ToArray();
        var order = Enumerable.Range(0, p.Count).Where(i => !double.IsNaN(p[i])).OrderBy(i => p[i]).ThenBy(i => i).ToArray();
        double running = 0;
        for (int j = 0; j < order.Length; j++)
        {
            running = Math.Max(running, Math.Min(1, (order.Length - j) * p[order[j]]));
            adjusted[order[j]] = running;
        }
        return adjusted;
    }
}
