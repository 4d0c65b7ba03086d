using System.Globalization;
using System.Text;
using MixupBert.Model.Training;

namespace MixupBert.Model.Experiments;

/// <summary>A table row as both the markdown and the terminal show it: one cell (mode and α) at its chosen lr.</summary>
public sealed record ReportRow(string Mode, string Alpha, string LearningRate, int Runs, string TestAccuracy, string TestF1, string TestEce,
    string BestValidationAccuracy, string DeltaAccuracy, string DeltaCi, string PValue, string HolmP, string NotebookMean, string NotebookMax);

/// <summary>What <see cref="Report.Write"/> wrote: the table per train size and the planned runs that have no result.</summary>
public sealed record ReportOutcome(Dictionary<string, List<ReportRow>> Tables, IReadOnlyList<string> Missing, int Planned);

/// <summary>
/// `mixup-bert report`: reads every finished run under an experiment folder (one compare, its shards, or
/// an older compare) and, by the rule of <see cref="Protocol"/> (lr chosen per train size, mode and α on
/// validation only), writes report.md (per train size: the validation means per lr that chose it; per
/// cell at its chosen lr, mean ± sd over seeds of test accuracy, F1, ECE and best validation accuracy, the
/// paired difference in test accuracy against baseline with its 95% interval, p and Holm-adjusted p; the
/// notebook's average and maximum validation accuracy over epochs; the planned runs still missing),
/// runs.csv (every run's deterministic results: the same bytes however the grid was sharded),
/// timings.csv, and the figures of <see cref="ReportFigures"/>.
/// </summary>
public static class Report
{
    /// <summary>The table of one train size: one row per cell, baseline first.</summary>
    public static List<ReportRow> Table(IReadOnlyList<CellResult> cells) => cells.Select(c =>
    {
        string Stat(Func<RunResult, double> f) => Statistics.Describe(c.Runs.Select(f).ToList()).ToString();
        string delta = "", ci = "", p = "", holm = "";
        if (c.VsBaseline is Statistics.Paired t)
        {
            delta = $"{t.MeanDifference * 100:+0.00;-0.00} pt";
            ci = double.IsNaN(t.Low) ? "n/a (1 seed)" : $"[{t.Low * 100:+0.00;-0.00}, {t.High * 100:+0.00;-0.00}]";
            p = Protocol.Format(t.P, "F3");
            holm = Protocol.Format(c.HolmP, "F3");
        }
        return new ReportRow(c.Cell.Mode, c.Cell.Alpha is float a ? ExperimentPlan.Number(a) + (c.Cell.Beta is float b && b != a ? $" (β {ExperimentPlan.Number(b)})" : "") : "—",
            Protocol.Lr(c.Choice.Chosen), c.Runs.Count, Stat(r => r.TestMetric(m => m.Accuracy)), Stat(r => r.TestMetric(m => m.F1)), Stat(r => r.TestMetric(m => m.Ece)),
            Stat(r => r.Validation.Accuracy), delta, ci, p, holm,
            Stat(r => r.Eval.Count > 0 ? r.Eval.Average(e => e.Metrics.Accuracy) : double.NaN), Stat(r => r.Eval.Count > 0 ? r.Eval.Max(e => e.Metrics.Accuracy) : double.NaN));
    }).ToList();

    /// <summary>Writes report.md, runs.csv, timings.csv and the figures.</summary>
    public static ReportOutcome Write(string experimentDir, string? command = null)
    {
        if (!ExperimentRuns.IsExperiment(experimentDir))
            throw new ArgumentException($"{experimentDir}: not an experiment folder written by compare (expected its plan/ folder or runs at " +
                $"{{size}}/seed-{{seed}}/{{mode}}{(File.Exists(Path.Combine(experimentDir, "args.json")) ? "; this is a single run's folder" : "")}); nothing was written");
        var runs = ExperimentRuns.Read(experimentDir);
        if (runs.Count == 0) throw new ArgumentException($"{experimentDir}: no finished run (no summary.json) to report on");
        var planned = ExperimentPlan.ReadPlanned(experimentDir);
        var missing = planned.Except(runs.Select(r => r.Name)).ToList();
        var analysis = Protocol.Analyze(runs);
        var tables = new Dictionary<string, List<ReportRow>>();
        var md = new StringBuilder();
        md.AppendLine("# Experiment report").AppendLine();
        if (command != null) md.AppendLine("    " + command).AppendLine();
        md.AppendLine($"{runs.Count} finished runs; modes {string.Join(", ", ExperimentRuns.Modes(runs))}; seeds {string.Join(", ", runs.Select(r => r.Seed).Distinct().Order())}; " +
            $"learning rates {string.Join(", ", runs.Select(r => r.LearningRate).Distinct().Order().Select(Protocol.Lr))}" +
            (runs.Any(r => r.Alpha != null) ? $"; α {string.Join(", ", runs.Where(r => r.Alpha != null).Select(r => r.Alpha!.Value).Distinct().Order().Select(ExperimentPlan.Number))}" : "") + ".");
        if (planned.Count > 0) md.AppendLine(missing.Count == 0 ? $"All {planned.Count} planned runs are here." : $"{missing.Count} of {planned.Count} planned runs are missing (listed at the end).");
        md.AppendLine();
        md.AppendLine($"Protocol. For each train size, mode and α, the learning rate is the one with the best mean over seeds of the validation {analysis.Metric}");
        md.AppendLine("of each run's best epoch (ties: the smaller lr); validation alone chooses it. Test metrics are those of the chosen lr's runs, each");
        md.AppendLine("at its best validation epoch; the other lrs' test numbers are not shown or used. ± is the standard deviation over seeds. Δ is the");
        md.AppendLine("mean paired difference in test accuracy against baseline at baseline's own chosen lr (same seed: same subset, initialisation and");
        md.AppendLine("shuffling), with a 95% t interval and the two-sided p-value of a paired t-test; \"p (Holm)\" is that p adjusted by Holm's method");
        md.AppendLine($"over the family of all {analysis.Comparisons} comparisons in this report (every train size, mode and α). \"Notebook\" columns: the mean");
        md.AppendLine("and the maximum of validation accuracy over epochs, as the notebook summarised its runs.").AppendLine();
        string figures = Path.Combine(experimentDir, "figures");
        Directory.CreateDirectory(figures);
        foreach (var size in analysis.Sizes)
        {
            var cells = analysis.Cells[size];
            var table = Table(cells);
            tables[size] = table;
            var sizeRuns = runs.Where(r => r.Size == size).ToList();
            md.AppendLine($"## Train size: {size} ({sizeRuns.Max(r => r.TrainExamples)} examples)").AppendLine();
            var epochs = sizeRuns.Select(r => r.Epochs).Distinct().Order().ToList();
            md.AppendLine($"Epochs trained: {string.Join(", ", epochs)}.").AppendLine();
            if (analysis.SeveralLearningRates) Tuning(md, cells, analysis.Metric);
            md.AppendLine("| mode | α | lr | runs | test accuracy | test F1 | test ECE | best val. accuracy | Δ accuracy | 95% CI | p | p (Holm) | notebook: mean val. acc. | notebook: max val. acc. |");
            md.AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            foreach (var r in table)
                md.AppendLine($"| {r.Mode} | {r.Alpha} | {r.LearningRate} | {r.Runs} | {r.TestAccuracy} | {r.TestF1} | {r.TestEce} | {r.BestValidationAccuracy} | {r.DeltaAccuracy} | {r.DeltaCi} | {r.PValue} | {r.HolmP} | {r.NotebookMean} | {r.NotebookMax} |");
            md.AppendLine();
            double epochSeconds = sizeRuns.SelectMany(r => r.EpochSeconds).DefaultIfEmpty(double.NaN).Average();
            md.AppendLine($"Mean time per epoch: {epochSeconds:F1} s.").AppendLine();
            Figures(md, cells, size, figures);
        }
        if (analysis.Sizes.Count > 1)
        {
            ReportFigures.FewShotPlot(analysis, Path.Combine(figures, "few-shot.png"));
            md.AppendLine("## Test accuracy against train size").AppendLine().AppendLine("Each mode and α at its chosen lr per train size.").AppendLine()
                .AppendLine("![few-shot curve](figures/few-shot.png)").AppendLine();
        }
        if (missing.Count > 0)
        {
            md.AppendLine("## Missing runs").AppendLine().AppendLine($"Planned (plan/*.json) but not finished (no summary.json): {missing.Count}.").AppendLine();
            foreach (var name in missing) md.AppendLine($"- {name}");
            md.AppendLine();
        }
        RunFolder.WriteAtomic(Path.Combine(experimentDir, "report.md"), md.ToString());
        RunFolder.WriteAtomic(Path.Combine(experimentDir, "runs.csv"), Csv(runs, analysis));
        RunFolder.WriteAtomic(Path.Combine(experimentDir, "timings.csv"), Timings(runs));
        return new ReportOutcome(tables, missing, planned.Count);
    }

    /// <summary>The validation means per lr that chose each cell's lr (the chosen one in bold).</summary>
    private static void Tuning(StringBuilder md, List<CellResult> cells, string metric)
    {
        var lrs = cells.SelectMany(c => c.Choice.Tuning.Select(t => t.Lr)).Distinct().Order().ToList();
        md.AppendLine($"Learning rate, chosen on validation: mean validation {metric} over seeds (runs) per lr; the chosen lr in bold.").AppendLine();
        md.AppendLine("| mode | α | " + string.Join(" | ", lrs.Select(l => $"lr {Protocol.Lr(l)}")) + " |");
        md.AppendLine("| --- | --- | " + string.Join(" | ", lrs.Select(_ => "---")) + " |");
        foreach (var c in cells)
        {
            var row = lrs.Select(l => c.Choice.Tuning.Where(t => t.Lr == l).Select(t =>
            {
                string v = $"{Protocol.Display(metric, t.Validation.Mean):F4} ({t.Validation.N})";
                return l == c.Choice.Chosen ? $"**{v}**" : v;
            }).FirstOrDefault() ?? "");
            md.AppendLine($"| {c.Cell.Mode} | {(c.Cell.Alpha is float a ? ExperimentPlan.Number(a) : "—")} | {string.Join(" | ", row)} |");
        }
        md.AppendLine();
    }

    private static void Figures(StringBuilder md, List<CellResult> cells, string size, string figures)
    {
        string lossPng = $"loss-{size}.png", valLossPng = $"validation-loss-{size}.png", valAccPng = $"validation-accuracy-{size}.png";
        var curves = new List<string>();
        if (ReportFigures.CurvePlot(cells, r => r.TrainLoss.Select(x => ((double)x.Step, x.Loss)).ToList(), "step", "training loss", $"Training loss, {size}", Path.Combine(figures, lossPng)))
            curves.Add($"![training loss](figures/{lossPng})");
        else md.AppendLine("(No training-loss records: the runs were shorter than --logging-steps.)").AppendLine();
        if (ReportFigures.CurvePlot(cells, r => r.Eval.Select(x => ((double)x.Epoch, x.Metrics.Loss)).ToList(), "epoch", "validation loss", $"Validation loss, {size}", Path.Combine(figures, valLossPng)))
            curves.Add($"![validation loss](figures/{valLossPng})");
        if (ReportFigures.CurvePlot(cells, r => r.Eval.Select(x => ((double)x.Epoch, x.Metrics.Accuracy)).ToList(), "epoch", "validation accuracy", $"Validation accuracy, {size}", Path.Combine(figures, valAccPng), fraction: true))
            curves.Add($"![validation accuracy](figures/{valAccPng})");
        md.AppendLine(string.Join(" ", curves)).AppendLine();
        var reliability = new List<string>();
        foreach (var c in cells)
        {
            string png = $"reliability-{size}-{c.Slug}.png";
            if (ReportFigures.ReliabilityPlot(c.Runs, $"Reliability, {c.Label}, {size}", Path.Combine(figures, png))) reliability.Add($"![reliability {c.Label}](figures/{png})");
        }
        if (reliability.Count > 0) md.AppendLine(string.Join(" ", reliability)).AppendLine();
    }

    /// <summary>The order of runs.csv and timings.csv: a function of each run's settings alone, so any sharding of
    /// a grid gives the same file.</summary>
    private static IOrderedEnumerable<RunResult> Ordered(IEnumerable<RunResult> runs)
    {
        var modes = ExperimentRuns.Modes(runs).ToList();
        return runs.OrderBy(r => r.TrainExamples).ThenBy(r => r.Size, StringComparer.Ordinal).ThenBy(r => modes.IndexOf(r.Mode))
            .ThenBy(r => r.Alpha ?? 0).ThenBy(r => r.Beta ?? 0).ThenBy(r => r.LearningRate).ThenBy(r => r.Seed).ThenBy(r => r.Name, StringComparer.Ordinal);
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static string Quoted(string s) => "\"" + s.Replace("\"", "\"\"") + "\"";

    /// <summary>
    /// runs.csv: one line per finished run, with what it was (size, mode, α, β, lr, seed, epochs trained)
    /// and its validation results; `selected` says whether its lr is its cell's chosen one, and only those
    /// lines carry test metrics (the others' are empty: not shown, not used). No timing, and folders
    /// relative to the experiment, so the file's bytes depend on the results alone.
    /// </summary>
    public static string Csv(IEnumerable<RunResult> runs, Analysis analysis)
    {
        var selected = analysis.Cells.Values.SelectMany(l => l).SelectMany(c => c.Runs).Select(r => r.Name).ToHashSet();
        var sb = new StringBuilder("size,train_examples,mode,alpha,beta,lr,seed,epochs,best_epoch,metric,best_val_metric,best_val_accuracy,selected," +
            "test_accuracy,test_f1,test_precision,test_recall,test_ece,test_loss,folder\n");
        foreach (var r in Ordered(runs))
        {
            bool chosen = selected.Contains(r.Name);
            string T(Func<ClassificationMetrics, double> m) => chosen ? F(r.TestMetric(m)) : "";
            sb.Append(string.Join(",", r.Size, r.TrainExamples, r.Mode, r.Alpha is float a ? ExperimentPlan.Number(a) : "", r.Beta is float b ? ExperimentPlan.Number(b) : "",
                ExperimentPlan.Number(r.LearningRate), r.Seed, r.Epochs, r.BestEpoch, r.Metric, F(Protocol.Display(r.Metric, r.ValidationScore)), F(r.Validation.Accuracy),
                chosen ? "true" : "false", T(m => m.Accuracy), T(m => m.F1), T(m => m.Precision), T(m => m.Recall), T(m => m.Ece), T(m => m.Loss), Quoted(r.Name))).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>timings.csv: each run's epochs and time per epoch (what varies between machines and sharings).</summary>
    public static string Timings(IEnumerable<RunResult> runs)
    {
        var sb = new StringBuilder("folder,epochs,mean_epoch_seconds,train_seconds\n");
        foreach (var r in Ordered(runs))
            sb.Append(string.Join(",", Quoted(r.Name), r.Epochs, F(r.EpochSeconds.DefaultIfEmpty(double.NaN).Average()), F(r.EpochSeconds.Sum()))).Append('\n');
        return sb.ToString();
    }
}
