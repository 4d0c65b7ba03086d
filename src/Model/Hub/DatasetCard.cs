using System.Text;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace MixupBert.Model.Hub;

/// <summary>One configuration of a dataset card: its name, whether it is the default, and each split's
/// data_files patterns (paths inside the repository, with * ** ? [..] wildcards).</summary>
public sealed record DatasetConfig(string Name, bool IsDefault, IReadOnlyDictionary<string, IReadOnlyList<string>> DataFiles);

/// <summary>
/// The `configs` of a dataset card (README.md's YAML header), which the `datasets` library reads before
/// anything else to find a repository's data files (datasets' MetadataConfigs): each entry a config_name
/// (default "default"), its data_files (a pattern, a list of patterns, or a list of {split, path} where path
/// is a pattern or a list; a split not named is train) and whether it is the default. The default
/// configuration is the one marked `default: true`, the one named "default", or the only one.
/// </summary>
public static partial class DatasetCard
{
    /// <summary>huggingface_hub's front-matter pattern (RepoCard): the YAML between two --- lines at the start.</summary>
    [GeneratedRegex(@"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")]
    private static partial Regex FrontMatter();

    /// <summary>The YAML header's top mapping; null when the card has none. A header that is not YAML is an error naming the file.</summary>
    private static YamlMappingNode? Header(string readmePath)
    {
        var m = FrontMatter().Match(File.ReadAllText(readmePath, Encoding.UTF8));
        if (!m.Success) return null;
        var yaml = new YamlStream();
        try { yaml.Load(new StringReader(m.Groups[2].Value)); }
        catch (YamlException e) { throw new HubException($"{readmePath}: its YAML header does not parse (line {e.Start.Line}: {e.Message})"); }
        return yaml.Documents.Count > 0 ? yaml.Documents[0].RootNode as YamlMappingNode : null;
    }

    /// <summary>The card's configurations (none when it has no YAML header or no configs). A header that is
    /// not YAML, or configs not shaped as datasets reads them, is an error naming the file.</summary>
    public static IReadOnlyList<DatasetConfig> ReadConfigs(string readmePath)
    {
        if (Header(readmePath) is not YamlMappingNode root || !root.Children.TryGetValue(new YamlScalarNode("configs"), out var configsNode)) return [];
        HubException Bad(string what) => new($"{readmePath}: 'configs' in its YAML header: {what}");
        if (configsNode is not YamlSequenceNode configs) throw Bad("expected a list of configurations");
        var result = new List<DatasetConfig>();
        foreach (var node in configs)
        {
            if (node is not YamlMappingNode config) throw Bad("each configuration should be a mapping (config_name, data_files)");
            string name = Scalar(config, "config_name") ?? "default";
            bool isDefault = Scalar(config, "default") is string d && d.Equals("true", StringComparison.OrdinalIgnoreCase);
            if (!config.Children.TryGetValue(new YamlScalarNode("data_files"), out var files))
                throw Bad($"configuration '{name}' has no data_files");
            result.Add(new DatasetConfig(name, isDefault, DataFilesOf(files, name, Bad)));
        }
        if (result.GroupBy(c => c.Name).FirstOrDefault(g => g.Count() > 1) is { } twice) throw Bad($"configuration '{twice.Key}' is given twice");
        return result;
    }

    /// <summary>
    /// The class names the card gives its ClassLabel columns (dataset_info.features: a column's
    /// dtype.class_label.names, '0': name, … or a list), for <paramref name="config"/> where dataset_info is a
    /// list per configuration. Empty when the card says nothing.
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> ReadClassLabels(string readmePath, string? config)
    {
        var result = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        if (Header(readmePath) is not YamlMappingNode root || !root.Children.TryGetValue(new YamlScalarNode("dataset_info"), out var info)) return result;
        // one dataset_info, or one per configuration (config_name; "default" when absent)
        var infos = info is YamlSequenceNode perConfig ? perConfig.OfType<YamlMappingNode>().ToList() : info is YamlMappingNode one ? [one] : [];
        var chosen = infos.Count == 1 ? infos[0] : infos.FirstOrDefault(i => (Scalar(i, "config_name") ?? "default") == (config ?? "default"));
        if (chosen == null || !chosen.Children.TryGetValue(new YamlScalarNode("features"), out var features) || features is not YamlSequenceNode columns) return result;
        foreach (var column in columns.OfType<YamlMappingNode>())
        {
            if (Scalar(column, "name") is not string name || !column.Children.TryGetValue(new YamlScalarNode("dtype"), out var dtype)
                || dtype is not YamlMappingNode d || !d.Children.TryGetValue(new YamlScalarNode("class_label"), out var label)
                || label is not YamlMappingNode l || !l.Children.TryGetValue(new YamlScalarNode("names"), out var names)) continue;
            var list = names switch
            {
                YamlMappingNode byId => NamesById(byId),
                YamlSequenceNode seq when seq.All(x => x is YamlScalarNode) => seq.Select(x => ((YamlScalarNode)x).Value ?? "").ToList(),
                _ => null,
            };
            if (list != null) result[name] = list;
        }
        return result;
    }

    /// <summary>'0': name, '1': name, …: the names in id order, when the ids are exactly 0..n-1; else null.</summary>
    private static List<string>? NamesById(YamlMappingNode byId)
    {
        var named = new SortedDictionary<int, string>();
        foreach (var (key, value) in byId.Children)
        {
            if (key is not YamlScalarNode { Value: var k } || value is not YamlScalarNode v
                || !int.TryParse(k, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id)
                || !named.TryAdd(id, v.Value ?? "")) return null;
        }
        return named.Keys.SequenceEqual(Enumerable.Range(0, named.Count)) ? [.. named.Values] : null;
    }

    private static string? Scalar(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode s ? s.Value : null;

    /// <summary>data_files in each form datasets accepts, as split → patterns.</summary>
    private static Dictionary<string, IReadOnlyList<string>> DataFilesOf(YamlNode node, string config, Func<string, HubException> bad)
    {
        List<string> Patterns(YamlNode n) => n switch
        {
            YamlScalarNode s when !string.IsNullOrEmpty(s.Value) => [s.Value],
            YamlSequenceNode list when list.All(x => x is YamlScalarNode { Value.Length: > 0 }) => list.Select(x => ((YamlScalarNode)x).Value!).ToList(),
            _ => throw bad($"configuration '{config}': a path should be a pattern or a list of patterns"),
        };
        var splits = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        switch (node)
        {
            case YamlScalarNode:
                splits["train"] = Patterns(node);
                break;
            case YamlSequenceNode list when list.All(x => x is YamlScalarNode):
                splits["train"] = Patterns(node);
                break;
            case YamlSequenceNode list:
                foreach (var entry in list)
                {
                    if (entry is not YamlMappingNode e || !e.Children.TryGetValue(new YamlScalarNode("path"), out var path))
                        throw bad($"configuration '{config}': each data_files entry should have a split and a path");
                    string split = Scalar(e, "split") ?? "train";
                    if (!splits.TryAdd(split, Patterns(path))) throw bad($"configuration '{config}': split '{split}' is given twice");
                }
                break;
            case YamlMappingNode map:   // the older form, split: pattern(s)
                foreach (var (key, value) in map.Children)
                    splits[((YamlScalarNode)key).Value ?? "train"] = Patterns(value);
                break;
        }
        return splits;
    }

    /// <summary>The configuration to read: <paramref name="chosen"/> when given, else the default one. Throws
    /// naming the configurations when the chosen one is not among them, or when there are several and no default.</summary>
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

    /// <summary>The repository paths a data_files pattern matches, as datasets resolves it on the Hub's file
    /// system: * and ? within a folder, ** across folders, [..] a class; files or folders starting with . or
    /// __ only where the pattern names them.</summary>
    public static IEnumerable<string> Match(string pattern, IEnumerable<string> files)
    {
        var regex = new Regex("^" + GlobToRegex(pattern.TrimStart('/')) + "$", RegexOptions.CultureInvariant);
        bool hiddenNamed = pattern.Split('/').Any(s => s.StartsWith('.') || s.StartsWith("__", StringComparison.Ordinal));
        return files.Where(f => regex.IsMatch(f) && (hiddenNamed || !f.Split('/').Any(s => s.StartsWith('.') || s.StartsWith("__", StringComparison.Ordinal))));
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
