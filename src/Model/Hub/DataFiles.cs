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
        var data = files.Where(f => Data.TextTable.Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Where(f => !f.Split('/').Any(s => s.StartsWith('.'))).ToList();
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
            chosen = data.Where(f => ConfigOf(f) == "").ToList();
            if (chosen.Count == 0 && configs.Count == 1) chosen = data;
            else if (chosen.Count == 0 && configs.Count > 1)
                throw new HubException($"dataset '{dataset}' has several configurations ({string.Join(", ", configs)}): choose one as --dataset {dataset}/{configs[0]}");
        }
        var bySplit = chosen.GroupBy(f => SplitOf(config != null ? f[(config.Length + 1)..] : f) ?? "").ToDictionary(g => g.Key, g => g.ToList());
        if (bySplit.Keys.All(k => k == "") && chosen.Count > 0) bySplit = new() { ["train"] = chosen };   // no split names: all of it is train
        var result = new Dictionary<string, IReadOnlyList<string>>();
        foreach (var (split, _) in SplitKeywords)
        {
            if (!bySplit.TryGetValue(split, out var splitFiles)) continue;
            string format = Data.TextTable.Extensions.First(e => splitFiles.Any(f => Path.GetExtension(f).ToLowerInvariant() == e));
            result[split] = splitFiles.Where(f => Path.GetExtension(f).ToLowerInvariant() == format).Order(StringComparer.Ordinal).ToArray();
        }
        return result;
    }
}
