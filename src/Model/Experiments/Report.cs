using System.Globalization;
using System.Text;
using MixupBert.Model.Training;
using ScottPlot;

namespace MixupBert.Model.Experiments;

/// <summary>One finished run as the report reads it back from its folder.</summary>
public sealed record RunResult(string Folder, string Mode, int Seed, string Size, int TrainExamples,
    ClassificationMetrics Validation, ClassificationMetrics? Test, double[] EpochSeconds, List<TrainLossRecord> TrainLoss,
    List<EvalRecord> Eval, ReliabilityBins? Reliability)
{
    /// <summary>A test metric; NaN for a run on a dataset without a test split.</summary>
    public double TestMetric(Func<ClassificationMetrics, double> metric) => Test is null ? double.NaN : metric(Test);
}

/// <summary>A table row as both the markdown and the terminal show it.</summary>
public sealed record ReportRow(string Mode, int Runs, string TestAccuracy, string TestF1, string TestEce, string BestValidationAccuracy,
    string DeltaAccuracy, string DeltaCi, string PValue, string NotebookMean, string NotebookMax);

/// <summary>
/// `mixup-bert report`: reads every finished run under an experiment folder and writes report.md
/// (per train size: mean ± sd over seeds of test accuracy, F1, ECE and best validation accuracy; for
/// each mode against baseline the mean paired difference in test accuracy with its 95% interval and
/// a paired t-test p-value; the notebook's average and maximum validation accuracy over epochs),
/// runs.csv (every run's final metrics), and PNG figures: training loss against step and validation
/// loss and accuracy against epoch (mean over seeds with a ±1 sd band), test accuracy against train
/// size, and a reliability diagram per mode. Text is drawn with the embedded DejaVu Sans font, so the
/// figures read the same on a machine without fonts.
/// </summary>
public static class Report
{
    private const string FontName = "DejaVu Sans";
    private static bool fontReady;

    public static List<RunResult> ReadRuns(string experimentDir)
    {
        var runs = new List<RunResult>();
        foreach (var summaryPath in Directory.EnumerateFiles(experimentDir, "summary.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string folder = Path.GetDirectoryName(summaryPath)!;
            var run = new RunFolder(folder);
            var summary = run.ReadSummary();
            var args = run.ReadArgs() ?? throw new FileNotFoundException($"{run.ArgsFile}: no such file; a finished run has one", run.ArgsFile);
            var metrics = run.ReadMetrics();
            runs.Add(new RunResult(folder, summary.Mode, args.Options.Seed, new TrainSize(args.Options.TrainSize, args.Options.PerClass).Name,
                summary.TrainExamples, summary.Validation, summary.Test, summary.EpochSeconds, metrics.TrainLoss,
                metrics.Evaluations.Where(e => e.Prefix == EvalRecord.Validation).ToList(), summary.TestReliability));
        }
        return runs;
    }

    /// <summary>The table of one train size: one row per mode, baseline first.</summary>
    public static List<ReportRow> Table(IReadOnlyList<RunResult> runs)
    {
        var rows = new List<ReportRow>();
        var baseline = runs.Where(r => r.Mode == "baseline").ToDictionary(r => r.Seed);
        foreach (var mode in Modes(runs))
        {
            var group = runs.Where(r => r.Mode == mode).OrderBy(r => r.Seed).ToList();
            string Stat(Func<RunResult, double> f) => Statistics.Describe(group.Select(f).ToList()).ToString();
            string delta = "", ci = "", p = "";
            if (mode != "baseline")
            {
                var paired = group.Where(r => baseline.ContainsKey(r.Seed)).ToList();
                if (paired.Count > 0)
                {
                    var t = Statistics.PairedTTest(paired.Select(r => r.TestMetric(m => m.Accuracy)).ToList(), paired.Select(r => baseline[r.Seed].TestMetric(m => m.Accuracy)).ToList());
                    delta = $"{t.MeanDifference * 100:+0.00;-0.00} pt";
                    ci = double.IsNaN(t.Low) ? "n/a (1 seed)" : $"[{t.Low * 100:+0.00;-0.00}, {t.High * 100:+0.00;-0.00}]";
                    p = double.IsNaN(t.P) ? "n/a" : t.P.ToString("F3", CultureInfo.InvariantCulture);
                }
            }
            rows.Add(new ReportRow(mode, group.Count, Stat(r => r.TestMetric(m => m.Accuracy)), Stat(r => r.TestMetric(m => m.F1)), Stat(r => r.TestMetric(m => m.Ece)),
                Stat(r => r.Validation.Accuracy), delta, ci, p,
                Stat(r => r.Eval.Count > 0 ? r.Eval.Average(e => e.Metrics.Accuracy) : double.NaN), Stat(r => r.Eval.Count > 0 ? r.Eval.Max(e => e.Metrics.Accuracy) : double.NaN)));
        }
        return rows;
    }

    private static IEnumerable<string> Modes(IEnumerable<RunResult> runs)
    {
        string[] order = { "baseline", "mixup", "tmix", "senmix" };
        return runs.Select(r => r.Mode).Distinct().OrderBy(m => Array.IndexOf(order, m) is int i && i >= 0 ? i : 99).ThenBy(m => m, StringComparer.Ordinal);
    }

    private static IEnumerable<string> Sizes(IEnumerable<RunResult> runs) =>
        runs.GroupBy(r => r.Size).OrderBy(g => g.Min(r => r.TrainExamples)).Select(g => g.Key);

    /// <summary>Writes report.md, runs.csv and the figures; returns the tables per train size.</summary>
    public static Dictionary<string, List<ReportRow>> Write(string experimentDir, string? command = null)
    {
        var runs = ReadRuns(experimentDir);
        if (runs.Count == 0) throw new ArgumentException($"{experimentDir}: no finished run (no summary.json) to report on");
        var tables = new Dictionary<string, List<ReportRow>>();
        var md = new StringBuilder();
        md.AppendLine("# Experiment report").AppendLine();
        if (command != null) md.AppendLine("    " + command).AppendLine();
        md.AppendLine($"{runs.Count} finished runs; modes {string.Join(", ", Modes(runs))}; seeds {string.Join(", ", runs.Select(r => r.Seed).Distinct().Order())}.");
        md.AppendLine("Test metrics are those of each run's best validation epoch; ± is the standard deviation over seeds. Δ is the mean paired");
        md.AppendLine("difference in test accuracy against baseline (same seed: same subset, initialisation and shuffling), with a 95% t interval");
        md.AppendLine("and the two-sided p-value of a paired t-test. \"Notebook\" columns: the mean and the maximum of validation accuracy over");
        md.AppendLine("epochs, as the notebook summarised its runs.").AppendLine();
        string figures = Path.Combine(experimentDir, "figures");
        Directory.CreateDirectory(figures);
        foreach (var size in Sizes(runs))
        {
            var group = runs.Where(r => r.Size == size).ToList();
            var table = Table(group);
            tables[size] = table;
            md.AppendLine($"## Train size: {size} ({group.Max(r => r.TrainExamples)} examples)").AppendLine();
            md.AppendLine("| mode | runs | test accuracy | test F1 | test ECE | best val. accuracy | Δ accuracy | 95% CI | p | notebook: mean val. acc. | notebook: max val. acc. |");
            md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            foreach (var r in table)
                md.AppendLine($"| {r.Mode} | {r.Runs} | {r.TestAccuracy} | {r.TestF1} | {r.TestEce} | {r.BestValidationAccuracy} | {r.DeltaAccuracy} | {r.DeltaCi} | {r.PValue} | {r.NotebookMean} | {r.NotebookMax} |");
            md.AppendLine();
            double epochSeconds = group.SelectMany(r => r.EpochSeconds).DefaultIfEmpty(double.NaN).Average();
            md.AppendLine($"Mean time per epoch: {epochSeconds:F1} s.").AppendLine();
            string lossPng = $"loss-{size}.png", valLossPng = $"validation-loss-{size}.png", valAccPng = $"validation-accuracy-{size}.png";
            var curves = new List<string>();
            if (CurvePlot(group, r => r.TrainLoss.Select(x => ((double)x.Step, x.Loss)).ToList(), "step", "training loss", $"Training loss, {size}", Path.Combine(figures, lossPng)))
                curves.Add($"![training loss](figures/{lossPng})");
            else md.AppendLine("(No training-loss records: the runs were shorter than --logging-steps.)").AppendLine();
            if (CurvePlot(group, r => r.Eval.Select(x => ((double)x.Epoch, x.Metrics.Loss)).ToList(), "epoch", "validation loss", $"Validation loss, {size}", Path.Combine(figures, valLossPng)))
                curves.Add($"![validation loss](figures/{valLossPng})");
            if (CurvePlot(group, r => r.Eval.Select(x => ((double)x.Epoch, x.Metrics.Accuracy)).ToList(), "epoch", "validation accuracy", $"Validation accuracy, {size}", Path.Combine(figures, valAccPng)))
                curves.Add($"![validation accuracy](figures/{valAccPng})");
            md.AppendLine(string.Join(" ", curves)).AppendLine();
            var reliability = new List<string>();
            foreach (var mode in Modes(group))
            {
                string png = $"reliability-{size}-{mode}.png";
                if (ReliabilityPlot(group.Where(r => r.Mode == mode).ToList(), $"Reliability, {mode}, {size}", Path.Combine(figures, png))) reliability.Add($"![reliability {mode}](figures/{png})");
            }
            if (reliability.Count > 0) md.AppendLine(string.Join(" ", reliability)).AppendLine();
        }
        if (Sizes(runs).Count() > 1)
        {
            FewShotPlot(runs, Path.Combine(figures, "few-shot.png"));
            md.AppendLine("## Test accuracy against train size").AppendLine().AppendLine("![few-shot curve](figures/few-shot.png)").AppendLine();
        }
        RunFolder.WriteAtomic(Path.Combine(experimentDir, "report.md"), md.ToString());
        RunFolder.WriteAtomic(Path.Combine(experimentDir, "runs.csv"), Csv(runs));
        return tables;
    }

    public static string Csv(IEnumerable<RunResult> runs)
    {
        var sb = new StringBuilder("size,train_examples,mode,seed,best_val_accuracy,test_accuracy,test_f1,test_precision,test_recall,test_ece,test_loss,mean_epoch_seconds,folder\n");
        foreach (var r in runs.OrderBy(r => r.TrainExamples).ThenBy(r => r.Mode).ThenBy(r => r.Seed))
        {
            string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
            sb.AppendLine(string.Join(",", r.Size, r.TrainExamples, r.Mode, r.Seed, F(r.Validation.Accuracy), F(r.TestMetric(m => m.Accuracy)), F(r.TestMetric(m => m.F1)),
                F(r.TestMetric(m => m.Precision)), F(r.TestMetric(m => m.Recall)), F(r.TestMetric(m => m.Ece)), F(r.TestMetric(m => m.Loss)),
                F(r.EpochSeconds.DefaultIfEmpty(double.NaN).Average()), "\"" + r.Folder.Replace("\"", "\"\"") + "\""));
        }
        return sb.ToString();
    }

    // ---------------------------------------------------------------------------------------------
    // figures

    private static Plot NewPlot(string title, string x, string y)
    {
        EnsureFont();
        var plot = new Plot();
        plot.Font.Set(FontName);
        plot.Title(title);
        plot.XLabel(x);
        plot.YLabel(y);
        return plot;
    }

    /// <summary>The embedded DejaVu Sans, registered with ScottPlot once per process.</summary>
    private static void EnsureFont()
    {
        if (fontReady) return;
        string path = Path.Combine(Path.GetTempPath(), "mixup-bert-DejaVuSans.ttf");
        if (!File.Exists(path))
        {
            using var s = typeof(Report).Assembly.GetManifestResourceStream("DejaVuSans.ttf") ?? throw new InvalidOperationException("the embedded font is missing");
            using var f = File.Create(path + ".tmp");
            s.CopyTo(f);
            f.Close();
            File.Move(path + ".tmp", path, overwrite: true);
        }
        Fonts.AddFontFile(FontName, path);
        Fonts.Default = FontName;
        fontReady = true;
    }

    /// <summary>Mean over seeds at each x, with a ±1 sd band, one line per mode.</summary>
    private static bool CurvePlot(List<RunResult> group, Func<RunResult, List<(double X, double Y)>> series, string x, string y, string title, string path)
    {
        if (!group.Any(r => series(r).Count > 0)) return false;
        var plot = NewPlot(title, x, y);
        foreach (var (mode, color) in Modes(group).Zip(Palette()))
        {
            var points = group.Where(r => r.Mode == mode).SelectMany(series).GroupBy(p => p.X).OrderBy(g => g.Key)
                .Select(g => (X: g.Key, S: Statistics.Describe(g.Select(p => p.Y).ToList()))).ToList();
            if (points.Count == 0) continue;
            double[] xs = points.Select(p => p.X).ToArray(), mean = points.Select(p => p.S.Mean).ToArray();
            if (points.All(p => p.S.N > 1))
            {
                var band = plot.Add.FillY(xs, mean.Zip(points, (m, p) => m - p.S.Sd).ToArray(), mean.Zip(points, (m, p) => m + p.S.Sd).ToArray());
                band.FillColor = color.WithAlpha(0.2);
                band.LineWidth = 0;
            }
            var line = plot.Add.ScatterLine(xs, mean);
            line.Color = color;
            line.LineWidth = 2;
            line.LegendText = mode;
        }
        plot.ShowLegend();
        plot.SavePng(path, 800, 500);
        return true;
    }

    private static bool ReliabilityPlot(List<RunResult> runs, string title, string path)
    {
        var withBins = runs.Where(r => r.Reliability != null).ToList();
        if (withBins.Count == 0) return false;
        int bins = withBins[0].Reliability!.Count.Length;
        var count = new double[bins]; var hits = new double[bins]; var conf = new double[bins];
        foreach (var r in withBins)
        {
            var (c, a, f) = r.Reliability!;
            for (int b = 0; b < bins; b++) { count[b] += c[b]; hits[b] += a[b] * c[b]; conf[b] += f[b] * c[b]; }
        }
        var plot = NewPlot(title, "confidence", "accuracy");
        var bars = new List<Bar>();
        for (int b = 0; b < bins; b++)
            if (count[b] > 0)
                bars.Add(new Bar { Position = (b + 0.5) / bins, Value = hits[b] / count[b], Size = 0.9 / bins, FillColor = Colors.SteelBlue });
        plot.Add.Bars(bars);
        var diagonal = plot.Add.Line(0, 0, 1, 1);
        diagonal.Color = Colors.Gray;
        diagonal.LinePattern = LinePattern.Dashed;
        plot.Axes.SetLimits(0, 1, 0, 1);
        plot.SavePng(path, 600, 600);
        return true;
    }

    private static void FewShotPlot(List<RunResult> runs, string path)
    {
        var plot = NewPlot("Test accuracy against train size", "train examples", "test accuracy");
        foreach (var (mode, color) in Modes(runs).Zip(Palette()))
        {
            var points = runs.Where(r => r.Mode == mode).GroupBy(r => r.TrainExamples).OrderBy(g => g.Key)
                .Select(g => (X: (double)g.Key, S: Statistics.Describe(g.Select(r => r.TestMetric(m => m.Accuracy)).ToList()))).ToList();
            var xs = points.Select(p => Math.Log10(p.X)).ToArray();
            var line = plot.Add.ScatterLine(xs, points.Select(p => p.S.Mean).ToArray());
            line.Color = color; line.LineWidth = 2; line.LegendText = mode; line.MarkerSize = 8;
            if (points.All(p => p.S.N > 1))
            {
                var err = plot.Add.ErrorBar(xs, points.Select(p => p.S.Mean).ToArray(), points.Select(p => p.S.Sd).ToArray());
                err.Color = color;
            }
        }
        var ticks = runs.Select(r => r.TrainExamples).Distinct().Order().Select(n => new Tick(Math.Log10(n), n.ToString(CultureInfo.InvariantCulture))).ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plot.XLabel("train examples (log scale)");
        plot.ShowLegend();
        plot.SavePng(path, 800, 500);
    }

    private static IEnumerable<Color> Palette()
    {
        Color[] c = { Colors.Black, Colors.OrangeRed, Colors.SteelBlue, Colors.ForestGreen, Colors.Purple, Colors.Brown };
        for (int i = 0; ; i++) yield return c[i % c.Length];
    }
}
