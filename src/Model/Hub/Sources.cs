namespace MixupBert.Model.Hub;

/// <summary>
/// Turns what the user typed for --model or --dataset into local files: an existing path is used as
/// it is; anything else is a Hub id (legacy short ids such as bert-base-cased and rotten_tomatoes
/// map to their current organisation repositories, as the Hub redirects them).
/// </summary>
public static class Sources
{
    public static readonly IReadOnlyDictionary<string, string> ModelAliases = new Dictionary<string, string>
    {
        ["bert-base-cased"] = "google-bert/bert-base-cased",
        ["bert-base-uncased"] = "google-bert/bert-base-uncased",
        ["bert-large-cased"] = "google-bert/bert-large-cased",
        ["bert-large-uncased"] = "google-bert/bert-large-uncased",
        ["all-MiniLM-L6-v2"] = "sentence-transformers/all-MiniLM-L6-v2",
    };

    public static readonly IReadOnlyDictionary<string, string> DatasetAliases = new Dictionary<string, string>
    {
        ["rotten_tomatoes"] = "cornell-movie-review-data/rotten_tomatoes",
    };

    public static readonly string[] Splits = { "train", "validation", "test" };

    /// <summary>A --model or --dataset that names a local file or folder (or a local folder's configuration,
    /// folder/config) as an absolute path without a trailing separator; null for a Hub id. A local path wins
    /// over a Hub id, as when it is resolved.</summary>
    public static string? LocalPath(string modelOrDataset) =>
        File.Exists(modelOrDataset) || Directory.Exists(modelOrDataset) ? Path.TrimEndingDirectorySeparator(Path.GetFullPath(modelOrDataset))
        : LocalConfiguration(modelOrDataset) is { } local ? Path.Combine(local.Folder, local.Config)
        : null;

    /// <summary>A run's --model or --dataset as given (<paramref name="given"/>, relative to where it ran), read again:
    /// the same name where it still names something here (data staged anew beside a resubmitted job), else the
    /// absolute path recorded when the run started (eval or --resume from another directory).</summary>
    public static string Recorded(string given, string? recordedPath)
    {
        if (recordedPath == null || LocalPath(given) != null) return given;
        if (LocalPath(recordedPath) != null) return recordedPath;
        // the run read a local folder or file: a Hub repository of the same name is other data
        throw new HubException($"the run's local '{given}' is neither here nor at {recordedPath}, where it was when the run started: put it back there " +
            "(eval also takes --dataset)");
    }

    /// <summary>Whether two spellings of a --model or --dataset name the same input: the same text, a short Hub id
    /// and its organisation's, or two paths to one local file or folder ("data/", "./data").</summary>
    public static bool SameInput(string a, string b)
    {
        if (a == b) return true;
        string? localA = LocalPath(a), localB = LocalPath(b);
        // an alias names a Hub repository: a local folder called rotten_tomatoes is not cornell-movie-review-data's
        return localA != null || localB != null ? localA == localB : Canonical(a) == Canonical(b);
    }

    private static string Canonical(string id) =>
        ModelAliases.TryGetValue(id, out var model) ? model : DatasetAliases.TryGetValue(id, out var dataset) ? dataset : id;

    /// <summary>The model folder: a local path, or the Hub snapshot holding config.json, model.safetensors and the tokenizer files.</summary>
    public static string ResolveModel(string model, HubClient hub, string revision = "main", CancellationToken cancel = default)
    {
        if (Directory.Exists(model)) return Path.GetFullPath(model);
        if (File.Exists(model)) throw new HubException($"--model {model} is a file; give the folder that holds config.json and model.safetensors");
        string repo = ModelAliases.TryGetValue(model, out var a) ? a : model;
        if (!LooksLikeRepoId(repo))
            throw new HubException($"model '{model}' is neither a local folder nor a Hub id (org/name)");
        // offline, a missing config.json is missing from the cache, not from the Hub: the client says so
        string config = hub.Download(RepoType.Model, repo, "config.json", revision, optional: !hub.Settings.Offline, cancel)
            ?? throw new HubException(hub.NotAnsweringReason is string silent
                // the cache has the repository but not this revision's config.json, and the Hub could not be asked
                ? $"config.json of model '{repo}' (revision {revision}) is not in the Hugging Face cache ({hub.Settings.CacheDir}), and the Hub at {hub.Settings.Endpoint} {silent}"
                : $"model '{model}' was not found: no local folder of that name, and the Hub ({hub.Settings.Endpoint}) has no {repo} (HTTP 404 for config.json)");
        hub.Download(RepoType.Model, repo, "model.safetensors", revision, optional: false, cancel);
        // tokenizer.json (hundreds of KB) only where there is no vocab.txt: then its vocabulary is the one
        bool haveVocab = false;
        foreach (var f in Data.TextEncoder.Files)
        {
            if (f == Data.TokenizerJson.FileName && haveVocab) continue;
            string? path = hub.Download(RepoType.Model, repo, f, revision, optional: true, cancel);
            if (f == "vocab.txt") haveVocab = path != null;
        }
        return Path.GetDirectoryName(config)!;
    }

    /// <summary>The files of each split: a local file (train only) or folder, or a Hub dataset's parquet files.</summary>
    public static Dictionary<string, IReadOnlyList<string>> ResolveDataset(string dataset, HubClient hub, string revision = "main", CancellationToken cancel = default) =>
        ResolveDataset(dataset, hub, revision, out _, cancel);

    /// <summary>The files of each split, and the class names the dataset card (README.md, of a Hub dataset or a local
    /// folder) gives its ClassLabel columns (<see cref="DatasetCard.ClassLabels"/>; empty without them).</summary>
    public static Dictionary<string, IReadOnlyList<string>> ResolveDataset(string dataset, HubClient hub, string revision,
        out IReadOnlyDictionary<string, IReadOnlyList<string>> classLabels, CancellationToken cancel = default)
    {
        classLabels = new Dictionary<string, IReadOnlyList<string>>();
        if (File.Exists(dataset)) return new() { ["train"] = [Path.GetFullPath(dataset)] };
        if (Directory.Exists(dataset)) return LocalDataset(dataset, null, out classLabels);
        // folder/config: one configuration of a local folder's README (it is not itself a folder)
        if (LocalConfiguration(dataset) is { } local) return LocalDataset(local.Folder, local.Config, out classLabels);
        string repo = DatasetAliases.TryGetValue(dataset, out var a) ? a : dataset;
        string? config = null;
        // org/name/config: one configuration (a top-level folder) of a repository that has several
        if (repo.Split('/') is [var org, var name, var folder] && LooksLikeRepoId($"{org}/{name}") && folder.Length > 0) { repo = $"{org}/{name}"; config = folder; }
        if (!LooksLikeRepoId(repo))
            throw new HubException($"dataset '{dataset}' is neither a local file or folder nor a Hub id (org/name, or org/name/config)");
        // the repository's own file list, as `datasets` reads it; a server without the API (a static mirror) gets the fixed places below
        if (hub.ListFiles(RepoType.Dataset, repo, revision, cancel) is { } listing)
        {
            // the card's configs first, as datasets reads them; else the files' names and folders
            string? readme = listing.Contains("README.md") ? hub.Download(RepoType.Dataset, repo, "README.md", revision, optional: true, cancel) : null;
            var card = readme != null ? DatasetCard.Read(readme) : null;
            var chosen = card?.Configs.Count > 0 ? DatasetCard.Choose(card.Configs, config, repo) : null;
            var splits = chosen != null ? DataFiles.FromConfig(chosen, listing, repo, hub.Settings.Offline) : DataFiles.Resolve(listing, config, repo);
            if (card != null) classLabels = card.ClassLabels(chosen?.Name ?? config);
            if (!splits.ContainsKey("train") && chosen?.DataFiles is { } given && !given.Keys.Any(k => DataFiles.Keywords("train").Contains(k.ToLowerInvariant())))
                throw new HubException($"dataset '{dataset}': configuration '{chosen.Name}' of its README has the splits {string.Join(", ", given.Keys)}, and this tool trains on " +
                    $"a split named {string.Join(" or ", DataFiles.Keywords("train"))} (validation and test as {string.Join("/", DataFiles.Keywords("validation"))} and {string.Join("/", DataFiles.Keywords("test"))})");
            if (!splits.ContainsKey("train"))
                throw new HubException($"dataset '{dataset}' (revision {revision}) has no data files this tool reads (parquet, csv, tsv, jsonl, json) for a train split" +
                    $"{(config != null ? $" in '{config}'" : "")}; its files: {string.Join(", ", listing.Take(12))}{(listing.Count > 12 ? ", …" : "")}");
            return splits.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value
                .Select(f => hub.Download(RepoType.Dataset, repo, f, revision, optional: false, cancel)!).ToArray());
        }
        if (config != null)
            throw new HubException($"dataset '{dataset}': choosing the configuration '{config}' needs the Hub's file list, which {hub.Settings.Endpoint} does not give (and the cache has no snapshot of {repo} at {revision})");
        var found = new Dictionary<string, IReadOnlyList<string>>();
        foreach (var split in Splits)
            foreach (var candidate in Candidates(split))
            {
                var path = hub.Download(RepoType.Dataset, repo, candidate, revision, optional: true, cancel);
                if (path != null) { found[split] = [path]; break; }
            }
        if (!found.ContainsKey("train") && hub.Settings.Offline)
            throw new HubException($"dataset '{dataset}': no train split of {repo} (revision {revision}) is in the Hugging Face cache ({hub.Settings.CacheDir}) and HF_HUB_OFFLINE is set (looked for {string.Join(", ", Candidates("train"))}): download it once online (unset HF_HUB_OFFLINE), or point HF_HUB_CACHE at a cache that has it");
        if (!found.ContainsKey("train"))
            throw new HubException($"dataset '{dataset}' was not found: no local path of that name, and the Hub ({hub.Settings.Endpoint}) gave no file list of {repo} " +
                $"(revision {revision}) nor a train split where this tool then looks: {string.Join(", ", Candidates("train"))}. Check the id and the revision; " +
                "or download the dataset's files and give --dataset the local folder (or one file, read as train)");
        return found;
    }

    /// <summary>Where a Hub dataset may keep a split's parquet file, in the order tried.</summary>
    private static string[] Candidates(string split) =>
        [$"{split}.parquet", $"data/{split}.parquet", $"data/{split}-00000-of-00001.parquet", $"plain_text/{split}-00000-of-00001.parquet"];

    /// <summary>A split's file names in a local folder: the names `datasets` takes for it (GLUE's original
    /// files are train.tsv, dev.tsv and test.tsv).</summary>
    private static IReadOnlyList<string> LocalNames(string split) => DataFiles.Keywords(split);

    /// <summary>A local folder as datasets loads one (load_dataset(folder)): by its README.md's configs (the default
    /// configuration, or <paramref name="config"/>) when it has them, a downloaded snapshot of a Hub dataset being
    /// such a folder; else by the splits' file names (<see cref="LocalSplits"/>).</summary>
    private static Dictionary<string, IReadOnlyList<string>> LocalDataset(string folder, string? config, out IReadOnlyDictionary<string, IReadOnlyList<string>> classLabels)
    {
        string readme = Path.Combine(folder, "README.md");
        classLabels = new Dictionary<string, IReadOnlyList<string>>();
        if (!File.Exists(readme)) return LocalSplits(folder);
        DatasetCard card;
        try { card = DatasetCard.Read(readme); }
        catch (HubException e)
        {
            throw new HubException($"{e.Message}. A folder's README.md is read as a dataset card, as datasets reads it: fix its header (YAML between two --- lines at the top), or rename the file to read the folder by its file names");
        }
        var chosen = card.Configs.Count > 0 ? DatasetCard.Choose(card.Configs, config, folder) : null;
        classLabels = card.ClassLabels(chosen?.Name);
        if (chosen == null) return LocalSplits(folder);
        string root = Path.GetFullPath(folder);
        var splits = DataFiles.FromConfig(chosen, FilesUnder(root), folder);
        if (!splits.ContainsKey("train"))
            throw new HubException($"{readme}: configuration '{chosen.Name}' gives no train split this tool reads (its splits: {string.Join(", ", chosen.DataFiles?.Keys ?? ["found by name"])}; parquet, csv, tsv, jsonl, json files, the text formats also gzipped)");
        return splits.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value.Select(f => Path.Combine(root, f.Replace('/', Path.DirectorySeparatorChar))).ToArray());
    }

    /// <summary>folder/config, where folder's README.md has a configuration of that name; null for anything else
    /// (a Hub id among them, whatever README.md lies in the folder it would name).</summary>
    private static (string Folder, string Config)? LocalConfiguration(string dataset)
    {
        if (dataset.IndexOfAny(['/', '\\']) < 0 || Path.GetDirectoryName(Path.GetFullPath(dataset)) is not string parent) return null;
        string readme = Path.Combine(parent, "README.md"), name = Path.GetFileName(dataset);
        try { return File.Exists(readme) && DatasetCard.Read(readme).Configs.Any(c => c.Name == name) ? (parent, name) : null; }
        catch (HubException) { return null; }   // a README that is no dataset card: not this form
    }

    /// <summary>The files under <paramref name="root"/> as repository paths (a/b.csv). Linked files count (a Hugging Face
    /// cache snapshot is made of them); a linked folder is entered once, so that a link to a folder above cannot loop.</summary>
    private static List<string> FilesUnder(string root)
    {
        var files = new List<string>();
        var entered = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>([root]);
        while (pending.Count > 0)
        {
            string dir = pending.Pop();
            string real = Directory.ResolveLinkTarget(dir, returnFinalTarget: true)?.FullName ?? Path.GetFullPath(dir);
            if (!entered.Add(real)) continue;
            files.AddRange(Directory.EnumerateFiles(dir).Select(f => Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/')));
            foreach (var sub in Directory.EnumerateDirectories(dir)) pending.Push(sub);
        }
        return files;
    }

    private static Dictionary<string, IReadOnlyList<string>> LocalSplits(string folder)
    {
        var found = new Dictionary<string, IReadOnlyList<string>>();
        foreach (var split in Splits)
            foreach (var dir in new[] { folder, Path.Combine(folder, "data") })
            {
                if (!Directory.Exists(dir)) continue;
                var files = Directory.EnumerateFiles(dir)
                    .Where(f => Data.TextTable.Extensions.Contains(Data.TextTable.FormatOf(f)))
                    .Where(f => LocalNames(split).Any(name => Data.TextTable.StemOf(f) == name || Path.GetFileName(f).StartsWith(name + "-", StringComparison.Ordinal)))
                    .ToList();
                // one format (the first of TextTable.Extensions the folder has for the split); then the file named
                // exactly for it, else its shards (train-00000-of-00002.parquet, …: all of them, in name order), else
                // the first in name order (train-small.csv beside train-backup.csv is not read twice)
                var format = Data.TextTable.Extensions.FirstOrDefault(e => files.Any(f => Data.TextTable.FormatOf(f) == e));
                if (format == null) continue;
                var ofFormat = files.Where(f => Data.TextTable.FormatOf(f) == format).Order(StringComparer.Ordinal).ToList();
                var exact = ofFormat.Where(f => LocalNames(split).Contains(Data.TextTable.StemOf(f))).ToList();
                var shards = ofFormat.Where(f => DataFiles.IsShard(Path.GetFileName(f))).ToList();
                found[split] = exact.Count > 0 ? [exact[0]] : shards.Count > 0 ? shards : [ofFormat[0]];
                if (shards.Count > 0 && exact.Count == 0) DataFiles.RequireEveryShard(shards, split, folder);
                break;
            }
        if (!found.ContainsKey("train"))
            throw new HubException($"{folder}: no train split (expected train.parquet, train.csv, train.tsv, train.jsonl or train.json, the text formats gzipped too, here or in data/)");
        return found;
    }

    private static bool LooksLikeRepoId(string s) => HubNames.IsRepoId(s);
}
