using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
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

/// <summary>One run of the grid and its folder (<paramref name="Name"/>: the folder relative to the experiment, '/'-separated).</summary>
public sealed record PlannedRun(TrainSize Size, int Seed, MixMode Mode, string Name, string Folder, TrainOptions Options);

/// <summary>
/// The axes of a grid. <paramref name="LearningRates"/> and <paramref name="Alphas"/> are null when the
/// grid has no such axis (every run takes the template's --lr and --alpha, and the folders keep the
/// layout of grids from before these axes). With an α axis, β follows α (λ ~ Beta(α, α), symmetric as
/// the notebook's α = β) unless <paramref name="FixedBeta"/> holds. Baseline and ssmix have no α (<see cref="MixSampler.DrawsLambda"/>): each runs once per
/// train size, seed and learning rate.
/// </summary>
public sealed record Grid(IReadOnlyList<TrainSize> Sizes, int Seeds, IReadOnlyList<MixMode> Modes,
    IReadOnlyList<float>? LearningRates = null, IReadOnlyList<float>? Alphas = null, bool FixedBeta = false);

/// <summary>
/// The grid of `compare`: train size × seed × learning rate × mode × α, with identical settings per
/// seed (the same subset, initialisation of new heads, shuffling and dropout masks for every mode), one
/// folder each: {experiment}/{size}/seed-{seed}/{mode}[-alpha{α}][-lr{lr}] (the suffixes only for the
/// axes the grid has).
/// </summary>
public static class ExperimentPlan
{
    public static List<PlannedRun> Plan(string experimentDir, Grid grid, TrainOptions template)
    {
        var runs = new List<PlannedRun>();
        foreach (var size in grid.Sizes)
            for (int i = 0; i < grid.Seeds; i++)
            {
                int seed = template.Seed + i;
                foreach (float? lr in Axis(grid.LearningRates))
                    foreach (var mode in grid.Modes)
                        foreach (float? alpha in MixSampler.DrawsLambda(mode) ? Axis(grid.Alphas) : Axis(null))
                        {
                            var options = template with { Mode = mode, Seed = seed, TrainSize = size.Total, PerClass = size.PerClass };
                            if (lr is float l) options = options with { LearningRate = l };
                            if (alpha is float a) options = options with { Alpha = a, Beta = grid.FixedBeta ? template.Beta : a };
                            string name = $"{size.Name}/seed-{seed}/{TrainOptions.ModeName(mode)}" +
                                (alpha is float a2 ? $"-alpha{Number(a2)}" : "") + (lr is float l2 ? $"-lr{Number(l2)}" : "");
                            runs.Add(new PlannedRun(size, seed, mode, name, Path.Combine([experimentDir, .. name.Split('/')]), options));
                        }
            }
        return runs;
    }

    /// <summary>An axis's values, or the single null of an axis the grid does not have.</summary>
    private static IEnumerable<float?> Axis(IReadOnlyList<float>? values) => values?.Select(x => (float?)x) ?? new float?[] { null };

    /// <summary>A number as folder names and reports write it: the shortest form that reads back the same float (2e-05, 0.2, 1).</summary>
    public static string Number(float x) => x.ToString("R", CultureInfo.InvariantCulture).ToLowerInvariant();

    /// <summary>
    /// Shard <paramref name="shard"/> of <paramref name="count"/> (1-based): the runs whose index in the plan is
    /// shard − 1 modulo count. The plan's order is a function of the grid's options alone, so every machine
    /// given the same options computes the same shares, which are disjoint and together the whole grid,
    /// whatever order runs finish in; round robin spreads the sizes and modes evenly over the shards.
    /// </summary>
    public static List<PlannedRun> Shard(IReadOnlyList<PlannedRun> plan, int shard, int count) =>
        plan.Where((_, i) => i % count == shard - 1).ToList();

    /// <summary>Parses --shard K/N.</summary>
    public static (int Shard, int Count) ParseShard(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            throw new ArgumentException($"--shard '{text}' is not K/N (shard K of N, e.g. 1/4)");
        if (n < 1 || k < 1 || k > n) throw new ArgumentException($"--shard {text}: K must be in 1..N (shard {k} of {n} does not exist; the first is 1/{Math.Max(n, 1)})");
        return (k, n);
    }

    /// <summary>Parses a comma-separated list of positive finite numbers, e.g. --lrs 2e-5,5e-5,1e-4; duplicates are dropped.</summary>
    public static List<float> ParsePositiveNumbers(string option, string text)
    {
        var list = new List<float>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!float.TryParse(item, NumberStyles.Float, CultureInfo.InvariantCulture, out float x))
                throw new ArgumentException($"{option}: '{item}' is not a number");
            if (!float.IsFinite(x)) throw new ArgumentException($"{option}: '{item}' is not a finite number (float32)");
            if (x <= 0) throw new ArgumentException($"{option}: {item} is not positive (every value must be > 0)");
            if (!list.Contains(x)) list.Add(x);
        }
        return list;
    }

    /// <summary>Parses --devices 0,1,...: CUDA device ordinals; a device listed twice gets two workers.</summary>
    public static List<int> ParseDevices(string text)
    {
        var list = new List<int>();
        foreach (var item in text.Split(',', StringSplitOptions.TrimEntries))
            list.Add(int.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out int d) && d < 1024 ? d
                : throw new ArgumentException($"--devices: '{item}' is not a device number (0, 1, ...)"));
        return list;
    }

    /// <summary>Finished: it has a summary; Started: a committed checkpoint to resume; else New.</summary>
    public static RunStatus Status(PlannedRun run)
    {
        var folder = new RunFolder(run.Folder);
        return folder.Finished ? RunStatus.Finished : folder.HasState ? RunStatus.Started : RunStatus.New;
    }

    /// <summary>
    /// How a run folder that already holds a run (finished or started) differs from what the grid plans
    /// for it: the inputs and every option that changes the result (all but --logging-steps), as
    /// "--epochs 3 (planned: 5)"; empty when they agree or the folder holds no args.json. A finished
    /// run is reused by its folder's name alone, so a grid given other options in the same --output
    /// would otherwise mix runs made two ways.
    /// </summary>
    public static List<string> Differences(PlannedRun run, RunInputs inputs)
    {
        var differences = new List<string>();
        if (new RunFolder(run.Folder).ReadArgs() is not RunArgs recorded) return differences;
        void Compare(string name, string? was, string? planned)
        {
            if (was != planned) differences.Add($"{name} {was ?? "(none)"} (planned: {planned ?? "(none)"})");
        }
        // inputs as given: the same relative path on each node of a sharded grid, or spelt otherwise ("data/", an alias)
        if (!Hub.Sources.SameInput(recorded.Inputs.Model, inputs.Model)) Compare("--model", recorded.Inputs.Model, inputs.Model);
        if (!Hub.Sources.SameInput(recorded.Inputs.Dataset, inputs.Dataset)) Compare("--dataset", recorded.Inputs.Dataset, inputs.Dataset);
        Compare("--revision", recorded.Inputs.Revision, inputs.Revision);
        Compare("--dataset-revision", recorded.Inputs.DatasetRevisionOrDefault, inputs.DatasetRevisionOrDefault);
        Compare("--text-column", recorded.Inputs.TextColumn, inputs.TextColumn);
        Compare("--text-pair-column", recorded.Inputs.TextPairColumn, inputs.TextPairColumn);
        Compare("--label-column", recorded.Inputs.LabelColumn, inputs.LabelColumn);
        foreach (var option in TrainOptions.All)
            if (Matters(option, run.Mode))
                Compare(option.Name, option.ToJson(recorded.Options)?.ToJsonString(), option.ToJson(run.Options)?.ToJsonString());
        return differences;
    }

    /// <summary>Whether an option can change a run of this mode: --logging-steps changes no result; the
    /// mixing options mean nothing to baseline, λ's Beta(α, β) nothing to ssmix, TMix's layers and
    /// SSMix's span nothing to the other modes. So a grid that adds ssmix with another --ssmix-span
    /// still continues the baseline runs already there.</summary>
    private static bool Matters(TrainOption option, MixMode mode) => option.Key switch
    {
        "logging_steps" => false,
        "alpha" or "beta" or "lambda_per_example" => MixSampler.DrawsLambda(mode),
        "mix_prob" => mode != MixMode.Baseline,
        "mix_layers" => mode == MixMode.TMix,
        "ssmix_span" => mode == MixMode.SsMix,
        _ => true,
    };

    /// <summary>Every planned run whose folder already holds a run made otherwise (<see cref="Differences"/>),
    /// as "folder: differences"; checked for the whole grid before anything runs or the plan file is written.</summary>
    public static List<string> Conflicts(IEnumerable<PlannedRun> plan, RunInputs inputs) =>
        plan.Where(r => Status(r) != RunStatus.New)
            .Select(r => (r.Folder, Differences: Differences(r, inputs)))
            .Where(x => x.Differences.Count > 0)
            .Select(x => $"{x.Folder}: {string.Join(", ", x.Differences)}").ToList();

    /// <summary>Where a compare invocation records the grid it planned (every run, its shard's or not): plan/all.json,
    /// or plan/shard-K-of-N.json for a shard, so that shards writing into one folder never write the same file.</summary>
    public static string PlanFile(string experimentDir, (int Shard, int Count)? shard) =>
        Path.Combine(experimentDir, "plan", shard is var (k, n) ? $"shard-{k}-of-{n}.json" : "all.json");

    /// <summary>Records a grid in its plan file. A file already there (another grid run into the same
    /// folder, e.g. more modes or sizes added later) keeps its runs: the file lists the union, in the order
    /// first planned, and the commands that planned them, so that report knows every planned run.</summary>
    public static void WritePlan(string file, IEnumerable<PlannedRun> runs, string command)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var names = new List<string>(); var commands = new List<string>();
        if (File.Exists(file))
        {
            try
            {
                var old = JsonNode.Parse(File.ReadAllText(file));
                if (old?["runs"] is JsonArray oldRuns) names.AddRange(oldRuns.Select(r => r?.GetValue<string>()).OfType<string>());
                if (old?["commands"] is JsonArray oldCommands) commands.AddRange(oldCommands.Select(c => c?.GetValue<string>()).OfType<string>());
                else if (old?["command"]?.GetValue<string>() is string oldCommand) commands.Add(oldCommand);
            }
            catch (JsonException e) { throw new ArgumentException($"{file}: not a plan file ({e.Message})"); }
            // GetValue's message would name .NET types ('System.String')
            catch (InvalidOperationException) { throw new ArgumentException($"{file}: not a plan file ('runs' and 'commands' should be lists of strings, 'command' a string)"); }
        }
        var known = new HashSet<string>(names, StringComparer.Ordinal);
        names.AddRange(runs.Select(r => r.Name).Where(known.Add));
        if (!commands.Contains(command)) commands.Add(command);
        var json = new JsonObject
        {
            ["command"] = command, ["commands"] = new JsonArray(commands.Select(c => (JsonNode)c).ToArray()),
            ["runs"] = new JsonArray(names.Select(n => (JsonNode)n).ToArray()),
        };
        RunFolder.WriteAtomic(file, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Every run that some compare invocation planned in this folder (the union of plan/*.json); empty
    /// for an experiment from before plan files.</summary>
    public static SortedSet<string> ReadPlanned(string experimentDir)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        string dir = Path.Combine(experimentDir, "plan");
        if (!Directory.Exists(dir)) return names;
        foreach (var file in Directory.EnumerateFiles(dir, "*.json"))
        {
            try
            {
                if (JsonNode.Parse(File.ReadAllText(file))?["runs"] is JsonArray runs)
                    foreach (var r in runs) if (r is JsonValue v && v.TryGetValue(out string? s)) names.Add(s);
            }
            catch (JsonException e) { throw new ArgumentException($"{file}: not a plan file ({e.Message})"); }
        }
        return names;
    }
}
