using System.Text.RegularExpressions;

namespace MixupBert.Model.Hub;

/// <summary>
/// Which files of a dataset repository are its train, validation and test splits, found as the `datasets`
/// library finds them when a repository has no loading script and no configs in its README (data_files.py,
/// the default patterns): a split is the files whose name, or a folder on whose path, holds one of its
/// keywords between separators (-, _, ., space, digits): train/training, validation/valid/dev/val,
/// test/testing/eval/evaluation; with no such file, every data file is train. Data files are those
/// TextTable reads (parquet, csv, tsv, jsonl, json); a split whose files come in several formats takes the
/// first of TextTable.Extensions. A repository whose splits lie in several top-level folders
/// (configurations: glue's sst2/, cola/, …) needs one chosen, as org/name/config.
/// </summary>
public static partial class DataFiles
{
    private static readonly (string Split, string[] Keywords)[] SplitKeywords =
    [
        ("train", ["train", "training"]),
        ("validation", ["validation", "valid", "dev", "val"]),
        ("test", ["test", "testing", "eval", "evaluation"]),
    ];

    [GeneratedRegex("[-._ 0-9]+")]
    private static partial Regex Separators();

    /// <summary>datasets' SPLIT_PATTERN_SHARDED: {split}-NNNNN-of-NNNNN*.* (the Hub's parquet conversion and
    /// push_to_hub), where the split is named exactly.</summary>
    [GeneratedRegex(@"^(?<split>[^/]+?)-(?<shard>\d{5})-of-(?<count>\d{5})[^/]*$")]
    private static partial Regex ShardedName();

    /// <summary>Files `datasets` never reads as data (METADATA_FILES and dataset_info files), whatever their extension.</summary>
    private static readonly HashSet<string> MetadataFiles = new(StringComparer.Ordinal)
        { "README.md", "config.json", "dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json", "dataset_state.json" };

    /// <summary>The split of a file (a path inside the repository), or null.</summary>
    public static string? SplitOf(string path)
    {
        var segments = path.Split('/');
        // the file's own name first, then its folders from the nearest up
        var names = new[] { Path.GetFileNameWithoutExtension(segments[^1]) }.Concat(segments[..^1].Reverse());
        foreach (var name in names)
        {
            var tokens = Separators().Split(name.ToLowerInvariant()).Where(t => t.Length > 0).ToArray();
            foreach (var token in tokens)
                foreach (var (split, keywords) in SplitKeywords)
                    if (keywords.Contains(token)) return split;
        }
        return null;
    }

    /// <summary>
    /// The splits' files (repository paths, name order) among <paramref name="files"/>; in
    /// <paramref name="config"/> (a top-level folder) when given. Throws naming the configurations when the
    /// splits lie in several and none was chosen, or when the chosen one has no data files.
    /// </summary>
    public static Dictionary<string, IReadOnlyList<string>> Resolve(IReadOnlyList<string> files, string? config, string dataset)
    {
        var data = files.Where(f => Data.TextTable.Extensions.Contains(Data.TextTable.FormatOf(f)))
            .Where(f => !MetadataFiles.Contains(f.Split('/')[^1]) && !f.Split('/').Any(s => s.StartsWith('.') || s.StartsWith("__", StringComparison.Ordinal))).ToList();
        // the top-level folder a file lies in, when it is a configuration's: not data/, not a split's own folder
        string ConfigOf(string f) => f.Split('/') is { Length: > 1 } s && s[0] != "data" && SplitOf(s[0] + "/x") == null ? s[0] : "";
        var configs = data.Select(ConfigOf).Where(c => c != "").Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        List<string> chosen;
        if (config != null)
        {
            chosen = data.Where(f => ConfigOf(f) == config).ToList();
            if (chosen.Count == 0)
                throw new HubException($"dataset '{dataset}': no data files in the folder '{config}'" +
                    (configs.Count > 0 ? $" (its configurations: {string.Join(", ", configs)})" : ""));
        }
        else
        {
            // files at the top (or in data/) unless only configuration folders have split files
            chosen = data.Where(f => ConfigOf(f) == "").ToList();
            bool topHasSplits = chosen.Any(f => SplitOf(f) != null);
            if (!topHasSplits && configs.Count == 1) chosen = data.Where(f => ConfigOf(f) == configs[0]).ToList();
            else if (!topHasSplits && configs.Count > 1)
                throw new HubException($"dataset '{dataset}' has several configurations ({string.Join(", ", configs)}): choose one as --dataset {dataset}/{configs[0]}");
        }
        string Inside(string f) => config != null ? f[(config.Length + 1)..] : f;
        // sharded names ({split}-00000-of-00002…) name their split exactly, as datasets reads them first: so
        // validation_matched is a split of its own, not validation; otherwise split keywords in the names
        bool sharded = chosen.Any(f => ShardedName().IsMatch(f.Split('/')[^1]));
        var bySplit = chosen.GroupBy(f => (sharded ? ShardedSplit(f) : SplitOf(Inside(f))) ?? "").ToDictionary(g => g.Key, g => g.ToList());
        if (!sharded && bySplit.Keys.All(k => k == "") && chosen.Count > 0) bySplit = new() { ["train"] = chosen };   // no split names: all of it is train
        var result = new Dictionary<string, IReadOnlyList<string>>();
        foreach (var (split, _) in SplitKeywords)
        {
            if (!bySplit.TryGetValue(split, out var splitFiles)) continue;
            string format = Data.TextTable.Extensions.First(e => splitFiles.Any(f => Data.TextTable.FormatOf(f) == e));
            result[split] = splitFiles.Where(f => Data.TextTable.FormatOf(f) == format).Order(StringComparer.Ordinal).ToArray();
            RequireEveryShard(result[split], split, dataset);
        }
        return result;
    }

    /// <summary>
    /// The splits' files (repository paths) of a dataset card's configuration, as datasets resolves them: each
    /// split's data_files patterns, inside the configuration's data_dir, matched against <paramref name="files"/>
    /// in pattern order (a pattern without wildcards must match a file; one with wildcards may match none); a
    /// configuration without data_files finds its splits by their names inside data_dir (<see cref="Resolve"/>).
    /// A split named as one of the three or by one of its keywords (dev is validation) is that split; others
    /// (imdb's unsupervised) are not read. <paramref name="offline"/>: the files are a cached snapshot's, as
    /// a message about a missing file then says.
    /// </summary>
    public static Dictionary<string, IReadOnlyList<string>> FromConfig(DatasetConfig config, IReadOnlyList<string> files, string dataset, bool offline = false)
    {
        string prefix = config.DataDir == null ? "" : config.DataDir + "/";
        if (config.DataFiles == null)
        {
            var inside = files.Where(f => f.StartsWith(prefix, StringComparison.Ordinal)).Select(f => f[prefix.Length..]).ToList();
            return Resolve(inside, null, dataset).ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value.Select(f => prefix + f).ToArray());
        }
        var result = new Dictionary<string, IReadOnlyList<string>>();
        // the exact names first, so that a card with both validation and dev reads validation
        var named = config.DataFiles.OrderBy(kv => SplitKeywords.Any(k => k.Split == kv.Key) ? 0 : 1).ThenBy(kv => kv.Key, StringComparer.Ordinal);
        foreach (var (name, patterns) in named)
        {
            string? split = SplitKeywords.FirstOrDefault(k => k.Keywords.Contains(name.ToLowerInvariant())).Split;
            if (split == null || result.ContainsKey(split)) continue;
            var matched = new List<string>();
            foreach (var pattern in patterns)
            {
                var hits = DatasetCard.Match(prefix + pattern.TrimStart('/'), files).ToList();
                if (hits.Count == 0 && !DatasetCard.HasWildcards(pattern))
                    throw new HubException($"dataset '{dataset}': the {name} split of configuration '{config.Name}' (its README) names '{prefix}{pattern.TrimStart('/')}', which is not among the repository's files" +
                        (offline ? " in the cache (offline, the file list is the cached snapshot's: download the dataset once online)" : ""));
                matched.AddRange(hits.Where(f => !matched.Contains(f)));
            }
            var data = matched.Where(f => Data.TextTable.Extensions.Contains(Data.TextTable.FormatOf(f))).ToList();
            if (data.Count == 0) continue;   // a format this tool does not read: said for train by the caller
            string format = Data.TextTable.Extensions.First(e => data.Any(f => Data.TextTable.FormatOf(f) == e));
            result[split] = data.Where(f => Data.TextTable.FormatOf(f) == format).ToArray();
            RequireEveryShard(result[split], split, dataset);
        }
        return SplitKeywords.Where(k => result.ContainsKey(k.Split)).ToDictionary(k => k.Split, k => result[k.Split]);   // train, validation, test
    }

    /// <summary>The names `datasets` takes for a split (train: train, training; validation: validation, valid,
    /// dev, val; test: test, testing, eval, evaluation).</summary>
    public static IReadOnlyList<string> Keywords(string split) => SplitKeywords.First(k => k.Split == split).Keywords;

    /// <summary>Whether a file name is a shard's: {split}-NNNNN-of-NNNNN….</summary>
    public static bool IsShard(string fileName) => ShardedName().IsMatch(fileName);

    /// <summary>The exact split a sharded file names, when it is one of the three; else null.</summary>
    private static string? ShardedSplit(string path)
    {
        var m = ShardedName().Match(path.Split('/')[^1]);
        string? split = m.Success ? m.Groups["split"].Value : null;
        return split is "train" or "validation" or "test" ? split : null;
    }

    /// <summary>A split in shards -NNNNN-of-MMMMM must have all M of them (a listing of a cache that an
    /// interrupted download left short would otherwise give part of the split, unsaid).</summary>
    public static void RequireEveryShard(IReadOnlyList<string> files, string split, string dataset)
    {
        foreach (var group in files.Select(f => ShardedName().Match(f.Split('/')[^1])).Where(m => m.Success).GroupBy(m => m.Groups["count"].Value))
        {
            int expected = int.Parse(group.Key, System.Globalization.CultureInfo.InvariantCulture);
            var present = group.Select(m => int.Parse(m.Groups["shard"].Value, System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
            var missing = Enumerable.Range(0, expected).Where(i => !present.Contains(i)).ToList();
            if (missing.Count > 0)
                throw new HubException($"dataset '{dataset}': the {split} split has {present.Count} of its {expected} shards (missing {string.Join(", ", missing.Take(5).Select(i => i.ToString("D5", System.Globalization.CultureInfo.InvariantCulture)))}" +
                    $"{(missing.Count > 5 ? ", …" : "")}): a download that was interrupted leaves it short (offline, the cache holds what was fetched); fetch the missing shards");
        }
    }
}
