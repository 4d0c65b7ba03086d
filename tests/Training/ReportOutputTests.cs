using System.Text.RegularExpressions;
using MixupBert.Model.Experiments;
using MixupBert.Model.Training;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>What report shows a reader: its console table when output is redirected, the folders it takes,
/// its figures' axes.</summary>
public class ReportOutputTests
{
    private static readonly Dictionary<string, string?> NoHub = new() { ["HF_HUB_OFFLINE"] = "1" };

    private static string Fixture => Path.Combine(RepositoryRoot(), "tests", "Training", "Fixtures", "run-records", "finished");

    /// <summary>A finished run (the fixture: tmix, one lr and α) copied to <paramref name="folder"/>.</summary>
    private static string CopyRun(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var f in new[] { "args.json", "summary.json", "metrics.jsonl" }) File.Copy(Path.Combine(Fixture, f), Path.Combine(folder, f));
        return folder;
    }

    [Fact]
    public void TheTableKeepsEachNumberOnOneLineWhenOutputIsRedirected()
    {
        string experiment = TempDir();
        foreach (var seed in new[] { 7, 8 }) CopyRun(Path.Combine(experiment, "12-per-class", $"seed-{seed}", "tmix"));
        var result = Cli.Run(NoHub, "report", experiment); // stdout is a pipe here, as for `report DIR | less` or a job's log
        Assert.True(result.ExitCode == 0, result.All);
        var row = Assert.Single(result.Stdout.Split('\n'), l => l.Contains("tmix"));
        // every cell whole on the row: at Spectre's 80 columns "0.5047 ± 0.0000" came out as "0.50 / 47 ± / 0.00 / 00"
        Assert.Equal(4, Regex.Matches(row, @"\d\.\d{4} ± \d\.\d{4}").Count);
        Assert.Contains("0.0003", row);
        // the file is written as it always was
        Assert.Contains("| tmix | 1 | 0.0003 | 2 |", File.ReadAllText(Path.Combine(experiment, "report.md")));
    }

    [Fact]
    public void AFolderThatIsNotAnExperimentIsRefusedAndNothingIsWrittenIntoIt()
    {
        string run = CopyRun(TempDir());
        var single = Cli.Run(NoHub, "report", run);
        Assert.Equal(2, single.ExitCode);
        Assert.Contains($"{run}: not an experiment folder written by compare", single.Stderr);
        Assert.Contains("plan/", single.Stderr);
        Assert.Contains("single run's folder", single.Stderr);
        Assert.Equal(["args.json", "metrics.jsonl", "summary.json"], Directory.GetFileSystemEntries(run).Select(Path.GetFileName).Order());

        // runs that train wrote side by side are not a compare's either
        string runs = TempDir();
        CopyRun(Path.Combine(runs, "a"));
        CopyRun(Path.Combine(runs, "b"));
        var several = Cli.Run(NoHub, "report", runs);
        Assert.Equal(2, several.ExitCode);
        Assert.Contains($"{runs}: not an experiment folder written by compare", several.Stderr);
        Assert.Equal(["a", "b"], Directory.GetFileSystemEntries(runs).Select(Path.GetFileName).Order());

        // a compare's folder, even one whose runs have not finished, is one
        string planned = TempDir();
        Directory.CreateDirectory(Path.Combine(planned, "plan"));
        Assert.True(ExperimentRuns.IsExperiment(planned));
        Assert.False(ExperimentRuns.IsExperiment(run));
    }

    private static ClassificationMetrics Metrics(double accuracy) => new(0.3, accuracy, accuracy, accuracy, accuracy, 0.05, 100);

    [Fact]
    public void TheValidationAccuracyFigureHasWholeEpochTicksAndAnAxisThatStopsAtOne()
    {
        // accuracies near 1 whose ±1 sd band reaches past it, over three epochs
        var runs = new List<RunResult>();
        foreach (var (seed, top) in new[] { (1, 0.97), (2, 1.0), (3, 0.93) })
            runs.Add(new RunResult("/nowhere", $"8-per-class/seed-{seed}/baseline", "baseline", seed, "8-per-class", 16, 5e-5f, null, null, 3, 3, "accuracy",
                Metrics(top), Metrics(top), [1.0], [],
                [.. Enumerable.Range(1, 3).Select(e => new EvalRecord(EvalRecord.Validation, Metrics(top - (3 - e) * 0.02), e, e * 2L))], null));
        var cells = Protocol.Analyze(runs).Cells["8-per-class"];
        var plot = ReportFigures.Curve(cells, r => r.Eval.Select(x => ((double)x.Epoch, x.Metrics.Accuracy)).ToList(), "epoch", "validation accuracy", "t", fraction: true)!;
        plot.SavePng(Path.Combine(TempDir(), "figure.png"), 800, 500); // lays out the ticks
        var ticks = plot.Axes.Bottom.TickGenerator.Ticks.Where(t => t.IsMajor).Select(t => t.Position).ToList();
        Assert.NotEmpty(ticks);
        Assert.All(ticks, t => Assert.Equal(Math.Round(t), t));
        Assert.True(plot.Axes.GetLimits().Top <= 1, $"the accuracy axis runs to {plot.Axes.GetLimits().Top}");
    }
}
