using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace MixupBert.Model.Hub;

/// <summary>One configuration of a dataset card: its name, whether it is the default, its data_dir (null: the
/// repository's top) and each split's data_files patterns (inside data_dir, with * ** ? [..] wildcards); null
/// DataFiles: none given, so the splits are found by their names inside data_dir.</summary>
public sealed record DatasetConfig(string Name, bool IsDefault, string? DataDir, IReadOnlyDictionary<string, IReadOnlyList<string>>? DataFiles);

/// <summary>
/// The parts of a dataset card (README.md's YAML header) that the `datasets` library reads to find a
/// repository's data files and classes (datasets' MetadataConfigs, data_files.py; huggingface_hub's RepoCard):
/// `configs`, each with a config_name, optional data_files (a pattern, a list of patterns, or a list of
/// {split, path} where path is a pattern or a list), optional data_dir and whether it is the default; and
/// dataset_info's ClassLabel names. The header is read as PyYAML's safe_load reads it where it matters here: a
/// repeated key keeps its last value, merge keys (&lt;&lt;) merge, `default:` is true as Python's truth is.
/// </summary>
public sealed partial class DatasetCard
{
    private readonly Dictionary<object, object?>? header;

    /// <summary>The card's configurations (none when it has no YAML header or no configs).</summary>
    public IReadOnlyList<DatasetConfig> Configs { get; }

    private DatasetCard(Dictionary<object, object?>? header, IReadOnlyList<DatasetConfig> configs) => (this.header, Configs) = (header, configs);

    /// <summary>A README.md read once: its YAML header and configurations. A header that is not YAML, or configs not
    /// shaped as datasets reads them, is an error naming the file.</summary>
    public static DatasetCard Read(string readmePath)
    {
        var header = Header(readmePath);
        return new DatasetCard(header, header == null ? [] : ConfigsOf(header, readmePath));
    }

    /// <summary>huggingface_hub's front-matter pattern (RepoCard, from 1.25, whose older one backtracked without
    /// end on some cards): the YAML between two --- lines at the very start (a byte-order mark is no start).</summary>
    [GeneratedRegex(@"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))", RegexOptions.None, matchTimeoutMilliseconds: 5000)]
    private static partial Regex FrontMatter();

    /// <summary>Files `datasets` never takes as data unless a pattern names them exactly (FILES_TO_IGNORE).</summary>
    private static readonly HashSet<string> FilesToIgnore = new(StringComparer.Ordinal)
        { "README.md", "config.json", "dataset_info.json", "dataset_infos.json", "dummy_data.zip", "dataset_dict.json" };

    /// <summary>The YAML header's top mapping; null when the card has none. A header that is not YAML is an error naming the file.</summary>
    private static Dictionary<object, object?>? Header(string readmePath)
    {
        // as huggingface_hub opens it: UTF-8, a byte-order mark kept (so that such a card has no header)
        string text = Encoding.UTF8.GetString(File.ReadAllBytes(readmePath));
        Match m;
        try { m = FrontMatter().Match(text); }
        catch (RegexMatchTimeoutException) { throw new HubException($"{readmePath}: its YAML header could not be found in {FrontMatter().MatchTimeout.TotalSeconds:0} s"); }
        if (!m.Success) return null;
        try
        {
            var parser = new MergingParser(new Parser(new StringReader(m.Groups[2].Value)));
            return new DeserializerBuilder().Build().Deserialize<object?>(parser) as Dictionary<object, object?>;
        }
        catch (YamlException e) { throw new HubException($"{readmePath}: its YAML header does not parse (line {e.Start.Line}: {e.Message})"); }
    }

    private static object? Get(Dictionary<object, object?> map, string key) => map.TryGetValue(key, out var v) ? v : null;

    /// <summary>Python's truth of a YAML 1.1 scalar as PyYAML types it: true/yes/on, a nonzero number, any other non-empty text.</summary>
    private static bool Truthy(object? value) => value switch
    {
        null => false,
        string s when s.Length == 0 || s is "~" or "null" or "Null" or "NULL" => false,
        string s when s.ToLowerInvariant() is "false" or "no" or "off" => false,
        string s when double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d != 0,
        string => true,
        System.Collections.ICollection c => c.Count > 0,
        _ => true,
    };

    private static List<DatasetConfig> ConfigsOf(Dictionary<object, object?> root, string readmePath)
    {
        if (Get(root, "configs") is not { } configsNode) return [];   // absent or empty: no configs
        HubException Bad(string what) => new($"{readmePath}: 'configs' in its YAML header: {what}");
        if (configsNode is not List<object?> configs) throw Bad("expected a list of configurations");
        var result = new List<DatasetConfig>();
        foreach (var node in configs)
        {
            if (node is not Dictionary<object, object?> config) throw Bad("each configuration should be a mapping (config_name, data_files)");
            if (Get(config, "config_name") is not string name || name.Length == 0) throw Bad("a configuration has no config_name");
            string? dataDir = Get(config, "data_dir") is string dir && dir.Trim('/').Length > 0 ? dir.Trim('/') : null;
            var files = Get(config, "data_files") is { } given ? DataFilesOf(given, name, Bad) : null;
            result.Add(new DatasetConfig(name, Truthy(Get(config, "default")), dataDir, files));
        }
        if (result.GroupBy(c => c.Name).FirstOrDefault(g => g.Count() > 1) is { } twice) throw Bad($"configuration '{twice.Key}' is given twice");
        return result;
    }

    /// <summary>data_files as split → patterns: a pattern or a list of them (train), or a list of {split, path}.
    /// A mapping split: path(s), which datasets refuses, is read too.</summary>
    private static Dictionary<string, IReadOnlyList<string>> DataFilesOf(object node, string config, Func<string, HubException> bad)
    {
        List<string> Patterns(object? n) => n switch
        {
            string s when s.Length > 0 => [s],
            List<object?> list when list.All(x => x is string { Length: > 0 }) => list.Cast<string>().ToList(),
            _ => throw bad($"configuration '{config}': a path should be a pattern or a list of patterns"),
        };
        var splits = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        switch (node)
        {
            case string:
            case List<object?> list when list.All(x => x is string):
                splits["train"] = Patterns(node);
                break;
            case List<object?> list:
                foreach (var entry in list)
                {
                    if (entry is not Dictionary<object, object?> e || Get(e, "path") is not { } path)
                        throw bad($"configuration '{config}': each data_files entry should have a split and a path");
                    string split = Get(e, "split") as string ?? "train";
                    if (!splits.TryAdd(split, Patterns(path))) throw bad($"configuration '{config}': split '{split}' is given twice");
                }
                break;
            case Dictionary<object, object?> map:
                foreach (var (key, value) in map)
                    splits[key.ToString() ?? "train"] = Patterns(value);
                break;
            default:
                throw bad($"configuration '{config}': data_files should be a pattern, a list of patterns or a list of {{split, path}}");
        }
        return splits;
    }

    /// <summary>
    /// The class names the card gives its ClassLabel columns (dataset_info.features: a column's
    /// dtype.class_label.names, '0': name, … or a list), as datasets files each dataset_info under its config_name
    /// ("default" when it has none) and looks up the configuration read: <paramref name="config"/>; null when the
    /// card has no configs, where a single dataset_info is the one (datasets makes its name the configuration's).
    /// Empty when the card says nothing for that configuration.
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> ClassLabels(string? config)
    {
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        if (header == null || Get(header, "dataset_info") is not { } info) return result;
        // one dataset_info, or one per configuration (config_name; "default" when absent)
        var infos = info switch
        {
            List<object?> perConfig => perConfig.OfType<Dictionary<object, object?>>().ToList(),
            Dictionary<object, object?> one => [one],
            _ => [],
        };
        var chosen = config == null && infos.Count == 1 ? infos[0] : infos.FirstOrDefault(i => (Get(i, "config_name") as string ?? "default") == (config ?? "default"));
        if (chosen == null || Get(chosen, "features") is not List<object?> columns) return result;
        foreach (var column in columns.OfType<Dictionary<object, object?>>())
        {
            if (Get(column, "name") is not string name || Get(column, "dtype") is not Dictionary<object, object?> dtype
                || Get(dtype, "class_label") is not Dictionary<object, object?> label) continue;
            var list = Get(label, "names") switch
            {
                Dictionary<object, object?> byId => NamesById(byId),
                List<object?> seq when seq.All(x => x is string) => seq.Cast<string>().ToList(),
                _ => null,
            };
            if (list != null) result[name] = list;
        }
        return result;
    }

    /// <summary>'0': name, '1': name, …: the names in id order, when the ids are exactly 0..n-1; else null.</summary>
    private static List<string>? NamesById(Dictionary<object, object?> byId)
    {
        var named = new SortedDictionary<int, string>();
        foreach (var (key, value) in byId)
        {
            if (value is not string v || !int.TryParse(key.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out int id) || !named.TryAdd(id, v)) return null;
        }
        return named.Keys.SequenceEqual(Enumerable.Range(0, named.Count)) ? [.. named.Values] : null;
    }

    /// <summary>The configuration to read: <paramref name="chosen"/> when given, else the default one (datasets'
    /// get_default_config_name: the only one, the one named "default", or the one marked default). Throws naming
    /// the configurations when the chosen one is not among them, or when there are several and no default.</summary>
    public static DatasetConfig Choose(IReadOnlyList<DatasetConfig> configs, string? chosen, string dataset)
    {
        string names = string.Join(", ", configs.Select(c => c.Name));
        if (chosen != null)
            return configs.FirstOrDefault(c => c.Name == chosen)
                ?? throw new HubException($"dataset '{dataset}' has no configuration '{chosen}' (its README's configurations: {names})");
        var defaults = configs.Where(c => configs.Count == 1 || c.IsDefault || c.Name == "default").ToList();
        if (defaults.Count > 1) throw new HubException($"dataset '{dataset}': its README marks several configurations as the default ({string.Join(", ", defaults.Select(c => c.Name))})");
        return defaults.Count == 1 ? defaults[0]
            : throw new HubException($"dataset '{dataset}' has several configurations ({names}) and none is the default: choose one as --dataset {dataset}/{configs[0].Name}");
    }

    /// <summary>Whether a pattern has wildcards (fsspec's has_magic): one that has none names a file that must exist.</summary>
    public static bool HasWildcards(string pattern) => pattern.IndexOfAny(['*', '?', '[']) >= 0;

    /// <summary>
    /// The repository paths a data_files pattern matches, in name order, as datasets' resolve_pattern finds them
    /// with fsspec's glob: * and ? within a folder, ** across folders, [..] a class; not the files datasets
    /// ignores (README.md, dataset_infos.json, …) unless the pattern names one; and only paths with as many
    /// hidden parts (.name) and as many __folders__ as the pattern itself has.
    /// </summary>
    public static IEnumerable<string> Match(string pattern, IEnumerable<string> files)
    {
        pattern = pattern.TrimStart('/');
        var regex = new Regex("^" + GlobToRegex(pattern) + "$", RegexOptions.CultureInvariant);
        string named = pattern.Split('/')[^1];
        int Hidden(string path) => path.Split('/').Count(p => p.StartsWith('.') && p.Any(c => c != '.'));
        int Special(string path) => path.Split('/')[..^1].Count(p => p.StartsWith("__", StringComparison.Ordinal));
        int hidden = Hidden(pattern), special = Special(pattern);
        return files.Where(f => regex.IsMatch(f) && (!FilesToIgnore.Contains(f.Split('/')[^1]) || f.Split('/')[^1] == named)
                && Hidden(f) == hidden && Special(f) == special)
            .Order(StringComparer.Ordinal);
    }

    private static string GlobToRegex(string glob)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < glob.Length; i++)
        {
            char c = glob[i];
            if (c == '*' && i + 1 < glob.Length && glob[i + 1] == '*')
            {
                bool folders = i + 2 < glob.Length && glob[i + 2] == '/';
                sb.Append(folders ? "(?:.*/)?" : ".*");
                i += folders ? 2 : 1;
            }
            else if (c == '*') sb.Append("[^/]*");
            else if (c == '?') sb.Append("[^/]");
            else if (c == '[' && glob.IndexOf(']', i + 1) is int end and > 0)
            {
                string inside = glob[(i + 1)..end];
                sb.Append('[').Append(inside.StartsWith('!') ? "^" + Regex.Escape(inside[1..]) : Regex.Escape(inside)).Append(']');
                i = end;
            }
            else sb.Append(Regex.Escape(c.ToString()));
        }
        return sb.ToString();
    }
}
