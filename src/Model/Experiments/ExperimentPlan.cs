using System.Globalization;
using MixupBert.Model.Bert;
using MixupBert.Model.Training;

namespace MixupBert.Model.Experiments;

/// <summary>A train size of the grid: all of train, N examples (stratified), or N per class.</summary>
public readonly record struct TrainSize(int? Total, int? PerClass)
{
    public static TrainSize Parse(string s)
    {
        s = s.Trim();
        if (s == "all") return new TrainSize(null, null);
        if (s.EndsWith("/class", StringComparison.Ordinal) && int.TryParse(s[..^6], NumberStyles.None, CultureInfo.InvariantCulture, out int k) && k > 0) return new TrainSize(null, k);
        if (int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0) return new TrainSize(n, null);
        throw new ArgumentException($"train size '{s}' is not 'all', a number of examples or 'N/class'");
    }

    public string Name => Total is int n ? n.ToString(CultureInfo.InvariantCulture) : PerClass is int k ? $"{k}-per-class" : "all";
    public string Label => Total is int n ? $"{n} examples" : PerClass is int k ? $"{k} per class" : "all";
    public override string ToString() => Name;
}

/// <summary>Where a run of the grid stands.</summary>
public enum RunStatus { New, Started, Finished }

/// <summary>One run of the grid and its folder.</summary>
public sealed record PlannedRun(TrainSize Size, int Seed, MixMode Mode, string Folder, TrainOptions Options);

/// <summary>
/// The grid of `compare`: every mode × seed × train size, with identical settings per seed (the same
/// subset, initialisation of new heads, shuffling and dropout masks for every mode), one folder each:
/// {experiment}/{size}/seed-{seed}/{mode}.
/// </summary>
public static class ExperimentPlan
{
    public static List<PlannedRun> Plan(string experimentDir, IReadOnlyList<MixMode> modes, int seeds, IReadOnlyList<TrainSize> sizes, TrainOptions template)
    {
        var runs = new List<PlannedRun>();
        foreach (var size in sizes)
            for (int i = 0; i < seeds; i++)
            {
                int seed = template.Seed + i;
                foreach (var mode in modes)
                    runs.Add(new PlannedRun(size, seed, mode, Path.Combine(experimentDir, size.Name, $"seed-{seed}", TrainOptions.ModeName(mode)),
                        template with { Mode = mode, Seed = seed, TrainSize = size.Total, PerClass = size.PerClass }));
            }
        return runs;
    }

    /// <summary>Finished: it has a summary; Started: a committed checkpoint to resume; else New.</summary>
    public static RunStatus Status(PlannedRun run)
    {
        var folder = new RunFolder(run.Folder);
        return folder.Finished ? RunStatus.Finished : folder.HasState ? RunStatus.Started : RunStatus.New;
    }
}
