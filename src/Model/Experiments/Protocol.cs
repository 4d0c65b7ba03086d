using System.Globalization;
using MixupBert.Model.Bert;
using MixupBert.Model.Training;

namespace MixupBert.Model.Experiments;

/// <summary>A cell of the report: a train size, a mode and its α and β (null for baseline), over seeds and learning rates.</summary>
public sealed record Cell(string Size, string Mode, float? Alpha, float? Beta);

/// <summary>The learning rate a cell uses and the validation means it was chosen from (one per lr, over seeds).</summary>
public sealed record LrChoice(float Chosen, IReadOnlyList<(float Lr, Statistics.MeanSd Validation)> Tuning);

/// <summary>A cell at its chosen lr: its runs there, and its paired comparison with baseline at baseline's chosen lr
/// (null for baseline itself or where no seed pairs), with the p-value Holm-adjusted over the report's family.</summary>
public sealed record CellResult(Cell Cell, string Label, string Slug, LrChoice Choice, List<RunResult> Runs,
    Statistics.Paired? VsBaseline, double HolmP);

/// <summary>The report's cells per train size (smallest first), and the size of the Holm family.</summary>
public sealed record Analysis(IReadOnlyList<string> Sizes, IReadOnlyDictionary<string, List<CellResult>> Cells, int Comparisons,
    bool SeveralLearningRates, string Metric);

/// <summary>
/// The comparison protocol of `report`:
/// <list type="number">
/// <item>For each train size, mode and α (a cell), the learning rate is the one with the best mean over
/// seeds of the validation metric of each run's best epoch (--metric, accuracy by default); ties go to the
/// smaller lr. Only validation is read: <see cref="ChooseLearningRate"/> is given learning rates and
/// validation scores, nothing else.</item>
/// <item>Test metrics are those of the runs at the chosen lr; the test numbers of other lrs' runs (each run
/// tests its best epoch at its end, as train always does) are neither shown nor used.</item>
/// <item>Each mixing cell is compared with baseline of the same train size at baseline's own chosen lr,
/// paired by seed (same subset, initialisation and shuffling): mean difference in test accuracy, its 95%
/// t interval, the paired t-test's two-sided p, and that p Holm-adjusted over the family of every such
/// comparison in the report (all train sizes, modes and α together).</item>
/// </list>
/// </summary>
public static class Protocol
{
    public static LrChoice ChooseLearningRate(IEnumerable<(float Lr, double ValidationScore)> runs)
    {
        var tuning = runs.GroupBy(r => r.Lr).OrderBy(g => g.Key)
            .Select(g => (Lr: g.Key, Validation: Statistics.Describe(g.Select(r => r.ValidationScore).ToList()))).ToList();
        if (tuning.Count == 0) throw new ArgumentException("no run to choose a learning rate from");
        var best = tuning[0];
        foreach (var t in tuning.Skip(1)) if (t.Validation.Mean > best.Validation.Mean) best = t; // strictly better: ties keep the smaller lr
        return new LrChoice(best.Lr, tuning);
    }

    /// <summary>A validation score as the metric reads (loss and ECE back to their sign: lower is better).</summary>
    public static double Display(string metric, double score) => metric is "loss" or "ece" ? -score : score;

    public static Analysis Analyze(IReadOnlyList<RunResult> runs)
    {
        var baselineName = TrainOptions.ModeName(MixMode.Baseline);
        var modeOrder = ExperimentRuns.Modes(runs).ToList();
        // α in the labels only where the mixing runs have more than one (α, β)
        bool severalAlphas = runs.Where(r => r.Mode != baselineName).Select(r => (r.Alpha, r.Beta)).Distinct().Count() > 1;
        var sizes = ExperimentRuns.Sizes(runs).ToList();
        var cells = new Dictionary<string, List<CellResult>>();
        foreach (var size in sizes)
        {
            var list = new List<CellResult>();
            var groups = runs.Where(r => r.Size == size).GroupBy(r => new Cell(r.Size, r.Mode, r.Alpha, r.Beta))
                .OrderBy(g => modeOrder.IndexOf(g.Key.Mode)).ThenBy(g => g.Key.Alpha ?? 0).ThenBy(g => g.Key.Beta ?? 0);
            foreach (var g in groups)
            {
                var choice = ChooseLearningRate(g.Select(r => (r.LearningRate, r.ValidationScore)));
                var chosen = g.Where(r => r.LearningRate == choice.Chosen).OrderBy(r => r.Seed).ToList();
                list.Add(new CellResult(g.Key, Label(g.Key, severalAlphas), Slug(g.Key, severalAlphas), choice, chosen, null, double.NaN));
            }
            // (a folder holding one seed twice at one lr, an old and a new layout, pairs with the first by name)
            var baseline = list.FirstOrDefault(c => c.Cell.Mode == baselineName)?.Runs.GroupBy(r => r.Seed)
                .ToDictionary(g => g.Key, g => g.OrderBy(r => r.Name, StringComparer.Ordinal).First());
            for (int i = 0; i < list.Count; i++)
            {
                if (list[i].Cell.Mode == baselineName || baseline == null) continue;
                var paired = list[i].Runs.Where(r => baseline.ContainsKey(r.Seed)).ToList();
                if (paired.Count == 0) continue;
                var t = Statistics.PairedTTest(paired.Select(r => r.TestMetric(m => m.Accuracy)).ToList(),
                    paired.Select(r => baseline[r.Seed].TestMetric(m => m.Accuracy)).ToList());
                list[i] = list[i] with { VsBaseline = t };
            }
            cells[size] = list;
        }
        // Holm over every comparison of the report
        var family = cells.Values.SelectMany(l => l).Where(c => c.VsBaseline is { P: var p } && !double.IsNaN(p)).ToList();
        var adjusted = Statistics.Holm(family.Select(c => c.VsBaseline!.Value.P).ToList());
        var holm = family.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => adjusted[x.i]);
        foreach (var size in sizes) cells[size] = cells[size].Select(c => holm.TryGetValue(c, out double p) ? c with { HolmP = p } : c).ToList();
        var metrics = runs.Select(r => r.Metric).Distinct().ToList();
        return new Analysis(sizes, cells, family.Count, runs.Select(r => r.LearningRate).Distinct().Count() > 1,
            metrics.Count == 1 ? metrics[0] : string.Join("/", metrics));
    }

    private static string Label(Cell c, bool severalAlphas) =>
        c.Alpha is float a && severalAlphas ? $"{c.Mode} α={ExperimentPlan.Number(a)}" + (c.Beta is float b && b != a ? $" β={ExperimentPlan.Number(b)}" : "") : c.Mode;

    private static string Slug(Cell c, bool severalAlphas) =>
        c.Alpha is float a && severalAlphas ? $"{c.Mode}-alpha{ExperimentPlan.Number(a)}" + (c.Beta is float b && b != a ? $"-beta{ExperimentPlan.Number(b)}" : "") : c.Mode;

    /// <summary>"2e-05" etc.; for table headers and the chosen-lr column.</summary>
    public static string Lr(float lr) => ExperimentPlan.Number(lr);

    internal static string Format(double x, string format) => double.IsNaN(x) ? "n/a" : x.ToString(format, CultureInfo.InvariantCulture);
}
