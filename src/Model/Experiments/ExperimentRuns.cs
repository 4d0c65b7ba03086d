using MixupBert.Model.Bert;
using MixupBert.Model.Training;

namespace MixupBert.Model.Experiments;

/// <summary>
/// One finished run as the report reads it back from its folder. <paramref name="Name"/> is the folder
/// relative to the experiment ('/'-separated); <paramref name="Alpha"/> and <paramref name="Beta"/> are null
/// for baseline (it does not mix); <paramref name="Epochs"/> is the epochs trained (--min-steps may have
/// added some); <paramref name="Metric"/> the validation metric that picked the run's best epoch.
/// </summary>
public sealed record RunResult(string Folder, string Name, string Mode, int Seed, string Size, int TrainExamples,
    float LearningRate, float? Alpha, float? Beta, int Epochs, int BestEpoch, string Metric,
    ClassificationMetrics Validation, ClassificationMetrics? Test, double[] EpochSeconds, List<TrainLossRecord> TrainLoss,
    List<EvalRecord> Eval, ReliabilityBins? Reliability)
{
    /// <summary>A test metric; NaN for a run on a dataset without a test split.</summary>
    public double TestMetric(Func<ClassificationMetrics, double> metric) => Test is null ? double.NaN : metric(Test);

    /// <summary>The validation metric of the best epoch, larger is better (loss and ECE negated).</summary>
    public double ValidationScore => Validation.Get(Metric);
}

/// <summary>Reads the finished runs of an experiment folder, whatever wrote them: one compare, shards of one, or
/// a compare from before the lr and α axes (its {size}/seed-{s}/{mode} runs read as one lr and one α).</summary>
public static class ExperimentRuns
{
    public static List<RunResult> Read(string experimentDir)
    {
        var runs = new List<RunResult>();
        foreach (var summaryPath in Directory.EnumerateFiles(experimentDir, "summary.json", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string folder = Path.GetDirectoryName(summaryPath)!;
            var run = new RunFolder(folder);
            var summary = run.ReadSummary();
            var args = run.ReadArgs() ?? throw new FileNotFoundException($"{run.ArgsFile}: no such file; a finished run has one", run.ArgsFile);
            var metrics = run.ReadMetrics();
            var o = args.Options;
            bool mixes = MixSampler.DrawsLambda(o.Mode); // α and β matter (not baseline, not ssmix)
            runs.Add(new RunResult(folder, Path.GetRelativePath(experimentDir, folder).Replace('\\', '/'), summary.Mode, o.Seed,
                new TrainSize(o.TrainSize, o.PerClass).Name, summary.TrainExamples, o.LearningRate, mixes ? o.Alpha : null, mixes ? o.Beta : null,
                summary.Epochs ?? o.Epochs, summary.BestEpoch, summary.Metric, summary.Validation, summary.Test, summary.EpochSeconds, metrics.TrainLoss,
                metrics.Evaluations.Where(e => e.Prefix == EvalRecord.Validation).ToList(), summary.TestReliability));
        }
        return runs;
    }

    /// <summary>
    /// Whether <paramref name="dir"/> is an experiment folder that compare wrote: it has plan/ (every compare
    /// since plan files) or, from before them, finished runs at {size}/seed-{seed}/{mode}; and it is not itself
    /// a run's folder (args.json). Report writes its files into the folder, so it takes no other.
    /// </summary>
    public static bool IsExperiment(string dir) =>
        !File.Exists(Path.Combine(dir, "args.json")) && (Directory.Exists(Path.Combine(dir, "plan"))
            || Directory.EnumerateFiles(dir, "summary.json", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(dir, Path.GetDirectoryName(f)!).Split(Path.DirectorySeparatorChar))
                .Any(p => p.Length == 3 && p[1].StartsWith("seed-", StringComparison.Ordinal) && int.TryParse(p[1]["seed-".Length..], out _)));

    /// <summary>The modes in MixMode's order (baseline first), any unknown name after them.</summary>
    public static IEnumerable<string> Modes(IEnumerable<RunResult> runs)
    {
        var order = Enum.GetValues<MixMode>().Select(TrainOptions.ModeName).ToList();
        return runs.Select(r => r.Mode).Distinct().OrderBy(m => order.IndexOf(m) is int i && i >= 0 ? i : int.MaxValue).ThenBy(m => m, StringComparer.Ordinal);
    }

    /// <summary>The train sizes, smallest first.</summary>
    public static IEnumerable<string> Sizes(IEnumerable<RunResult> runs) =>
        runs.GroupBy(r => r.Size).OrderBy(g => g.Min(r => r.TrainExamples)).ThenBy(g => g.Key, StringComparer.Ordinal).Select(g => g.Key);
}
