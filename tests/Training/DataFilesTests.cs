using MixupBert.Model.Data;
using MixupBert.Model.Hub;
using MixupBert.Model.Training;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>A Hub dataset's splits found in its file list as `datasets` finds them (DataFiles), in the layouts
/// real repositories have, and the whole path through the Hub client's tree API, pages, and the cache offline.</summary>
public class DataFilesTests
{
    private static Dictionary<string, string[]> Splits(string? config, params string[] files) =>
        DataFiles.Resolve(files, config, "org/x").ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());

    [Fact]
    public void GzippedFilesAreSplitsByTheirNames()
    {
        // a repository of gzipped JSON Lines, as many on the Hub are
        var gz = Splits(null, "README.md", "data/train.jsonl.gz", "data/validation.jsonl.gz", "data/test.jsonl.gz");
        Assert.Equal(["data/train.jsonl.gz"], gz["train"]);
        Assert.Equal(["data/validation.jsonl.gz"], gz["validation"]);
        Assert.Equal(["data/test.jsonl.gz"], gz["test"]);
    }

    [Fact]
    public void TheLayoutsOfRealRepositories()
    {
        // the Hub's parquet conversion, in shards, with the repository's other files
        var shards = Splits(null, ".gitattributes", "README.md", "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/test-00000-of-00001.parquet");
        Assert.Equal(["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"], shards["train"]);
        Assert.Equal(["data/test-00000-of-00001.parquet"], shards["test"]);
        Assert.False(shards.ContainsKey("validation"));
        // stanfordnlp/imdb: one configuration folder, and an unsupervised split that is none of the three
        var imdb = Splits(null, "README.md", "plain_text/train-00000-of-00001.parquet", "plain_text/test-00000-of-00001.parquet", "plain_text/unsupervised-00000-of-00001.parquet");
        Assert.Equal(["train", "test"], imdb.Keys);
        // older hashed shard names, a CSV repository, GLUE's dev file, the refs/convert/parquet layout
        Assert.Equal(["data/train-00000-of-00001-a09b74b3ef9c3b56.parquet"], Splits(null, "data/train-00000-of-00001-a09b74b3ef9c3b56.parquet")["train"]);
        Assert.Equal(["train", "test"], Splits(null, "train.csv", "test.csv").Keys);
        Assert.Equal(["dev.tsv"], Splits(null, "train.tsv", "dev.tsv", "test.tsv")["validation"]);
        var converted = Splits(null, "default/train/0000.parquet", "default/train/0001.parquet", "default/validation/0000.parquet");
        Assert.Equal(["default/train/0000.parquet", "default/train/0001.parquet"], converted["train"]);
        // no split names at all: everything is train; a split in two formats reads one
        Assert.Equal(["data.csv"], Splits(null, "data.csv")["train"]);
        Assert.Equal(["train.parquet"], Splits(null, "train.csv", "train.parquet")["train"]);
    }

    [Fact]
    public void SeveralConfigurationsNeedOneChosen()
    {
        string[] glue = ["sst2/train-00000-of-00001.parquet", "sst2/validation-00000-of-00001.parquet", "sst2/test-00000-of-00001.parquet",
            "cola/train-00000-of-00001.parquet", "mnli/validation_matched-00000-of-00001.parquet"];
        var e = Assert.Throws<HubException>(() => Splits(null, glue));
        Assert.Contains("several configurations (cola, mnli, sst2)", e.Message);
        Assert.Contains("--dataset org/x/cola", e.Message);
        var sst2 = Splits("sst2", glue);
        Assert.Equal(["sst2/train-00000-of-00001.parquet"], sst2["train"]);
        Assert.Equal(["sst2/test-00000-of-00001.parquet"], sst2["test"]);
        Assert.Contains("no data files in the folder 'qqp'", Assert.Throws<HubException>(() => Splits("qqp", glue)).Message);
    }

    [Fact]
    public void MetadataIsNotDataExactShardNamesAreSplitsAndAShortShardSetIsRefused()
    {
        // dataset_infos.json beside configuration folders is metadata, not a train split; nor is a stray top-level file
        string[] withInfos = ["dataset_infos.json", "sample.csv", "cola/train-00000-of-00001.parquet", "sst2/train-00000-of-00001.parquet"];
        Assert.Contains("several configurations (cola, sst2)", Assert.Throws<HubException>(() => Splits(null, withInfos)).Message);
        Assert.Equal(["reviews.json"], Splits(null, "dataset_info.json", "reviews.json")["train"]);
        // sharded names name their split exactly (datasets reads them first): MNLI's validation_matched is not validation
        var mnli = Splits(null, "data/train-00000-of-00001.parquet", "data/validation_matched-00000-of-00001.parquet", "data/validation_mismatched-00000-of-00001.parquet");
        Assert.Equal(["train"], mnli.Keys);
        // one shard of three missing (a cache an interrupted download left short)
        var e = Assert.Throws<HubException>(() => Splits(null, "data/train-00000-of-00003.parquet", "data/train-00002-of-00003.parquet"));
        Assert.Contains("2 of its 3 shards (missing 00001)", e.Message);
    }

    [Fact]
    public void ALocalSplitIsItsExactFileOrItsShardsNotEveryFileStartingWithItsName()
    {
        var dir = TempDir();
        File.WriteAllText(Path.Combine(dir, "train.csv"), "text,label\na,0\nb,1\n");
        File.WriteAllText(Path.Combine(dir, "train-backup.csv"), "text,label\nc,0\nd,1\n");
        using var hub = new HubClient(new HubSettings("http://127.0.0.1:9", TempDir(), true, null));
        Assert.Equal([Path.Combine(dir, "train.csv")], Sources.ResolveDataset(dir, hub)["train"]);
    }

    private static string GlueLikeMirror()
    {
        var root = TempDir();
        var repo = Path.Combine(root, "datasets", "org", "glue-like", "resolve", "main");
        foreach (var config in new[] { "sst2", "cola" }) Directory.CreateDirectory(Path.Combine(repo, config));
        File.WriteAllText(Path.Combine(repo, "README.md"), "---\nconfigs: []\n---\n");
        File.WriteAllText(Path.Combine(repo, "sst2", "train-00000-of-00002.csv"), "sentence,label\na,0\nb,1\nc,0\n");
        File.WriteAllText(Path.Combine(repo, "sst2", "train-00001-of-00002.csv"), "sentence,label\nd,1\ne,0\nf,1\n");
        File.WriteAllText(Path.Combine(repo, "sst2", "validation-00000-of-00001.csv"), "sentence,label\ng,0\nh,1\n");
        File.WriteAllText(Path.Combine(repo, "sst2", "test-00000-of-00001.csv"), "sentence,label\ni,-1\nj,-1\n");
        File.WriteAllText(Path.Combine(repo, "cola", "train-00000-of-00001.csv"), "sentence,label\nk,0\nl,1\n");
        return root;
    }

    [Fact]
    public void AConfigurationOfAHubDatasetIsListedDownloadedAndReadOfflineAgain()
    {
        using var server = new MirrorServer(GlueLikeMirror()) { TreePageSize = 2 };   // pages linked by the Link header
        var cache = TempDir();
        using (var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null)))
        {
            Assert.Contains("several configurations (cola, sst2)", Assert.Throws<HubException>(() => Sources.ResolveDataset("org/glue-like", hub)).Message);
            var files = Sources.ResolveDataset("org/glue-like/sst2", hub);
            Assert.Equal(2, files["train"].Count);
            var data = TextClassificationData.Load(files, "sentence", "label", seed: 1);
            Assert.Equal(6, data.Train.Count);
            Assert.Equal(2, data.Validation.Count);
            Assert.Null(data.Test);   // its labels are all -1
            Assert.True(server.Requests.Count(r => r.StartsWith("GET /api/datasets/org/glue-like/tree/main", StringComparison.Ordinal)) >= 4);
        }
        // offline, the cached snapshot is the file list
        using (var offline = new HubClient(new HubSettings(server.Endpoint, cache, true, null)))
        {
            int before = server.Requests.Count;
            var files = Sources.ResolveDataset("org/glue-like/sst2", offline);
            Assert.Equal(["train", "validation", "test"], files.Keys);
            Assert.Equal(before, server.Requests.Count);
        }
    }

    [Fact]
    public void WithoutTheTreeApiTheFixedPlacesAreTriedAndAConfigurationCannotBeChosen()
    {
        using var server = new MirrorServer(GlueLikeMirror()) { TreeApi = false };
        using var hub = new HubClient(new HubSettings(server.Endpoint, TempDir(), false, null));
        Assert.Contains("was not found", Assert.Throws<HubException>(() => Sources.ResolveDataset("org/glue-like", hub)).Message);
        Assert.Contains("needs the Hub's file list", Assert.Throws<HubException>(() => Sources.ResolveDataset("org/glue-like/sst2", hub)).Message);
    }

    private static IReadOnlyList<DatasetConfig> Card(string yaml)
    {
        var path = Path.Combine(TempDir(), "README.md");
        File.WriteAllText(path, $"---\n{yaml}\n---\n# A dataset\n\nSome text with --- in it.\n");
        return DatasetCard.Read(path).Configs;
    }

    [Fact]
    public void AReadmesConfigsChooseTheFilesAsDatasetsReadsThem()
    {
        // dair-ai/emotion: two configuration folders, split (the default) and unsplit; names alone cannot choose
        string[] emotion = ["README.md", "split/train-00000-of-00001.parquet", "split/validation-00000-of-00001.parquet", "split/test-00000-of-00001.parquet",
            "unsplit/train-00000-of-00001.parquet"];
        var configs = Card("""
            configs:
            - config_name: split
              data_files:
              - split: train
                path: split/train-*
              - split: validation
                path: split/validation-*
              - split: test
                path: split/test-*
              default: true
            - config_name: unsplit
              data_files:
              - split: train
                path: unsplit/train-*
            dataset_info:
              features:
              - name: text
                dtype: string
            """);
        Assert.Equal(["split", "unsplit"], configs.Select(c => c.Name));
        Assert.Contains("several configurations", Assert.Throws<HubException>(() => DataFiles.Resolve(emotion, null, "dair-ai/emotion")).Message);
        var chosen = DataFiles.FromConfig(DatasetCard.Choose(configs, null, "dair-ai/emotion"), emotion, "dair-ai/emotion");
        Assert.Equal(["split/train-00000-of-00001.parquet"], chosen["train"]);
        Assert.Equal(["train", "validation", "test"], chosen.Keys);
        Assert.Equal(["unsplit/train-00000-of-00001.parquet"], DataFiles.FromConfig(DatasetCard.Choose(configs, "unsplit", "x"), emotion, "x")["train"]);
        Assert.Contains("no configuration 'other' (its README's configurations: split, unsplit)", Assert.Throws<HubException>(() => DatasetCard.Choose(configs, "other", "x")).Message);

        // files whose names say nothing: a list of patterns is train; ** crosses folders (or none); ? stays in one;
        // validation wins over dev; a split that is none of the three is not read; hidden files and the files
        // datasets ignores are matched only where the pattern names them
        string[] custom = ["raw/part_a.csv", "raw/part_b.csv", "raw/part_10.csv", "raw/.backup.csv", "holdout/final.csv", "extra/held.csv", "extra/deep/x/held.csv",
            "extra/dev.csv", "notes.txt", "meta/dataset_infos.json", "meta/a.json", ".hidden/b.csv", "__cache__/c.csv"];
        Dictionary<string, IReadOnlyList<string>> From(string yaml) => DataFiles.FromConfig(DatasetCard.Choose(Card(yaml), null, "x"), custom, "x");
        Assert.Equal(["raw/part_10.csv", "raw/part_a.csv", "raw/part_b.csv"], From("configs:\n- config_name: default\n  data_files: [\"raw/*.csv\"]")["train"]);
        var bySplit = From("""
            configs:
            - config_name: main
              data_files:
              - split: train
                path: ["raw/part_?.csv", "raw/part_[0-9]*.csv"]
              - split: dev
                path: extra/dev.csv
              - split: validation
                path: extra/**/held.csv
              - split: unlabeled
                path: holdout/final.csv
            """);
        Assert.Equal(["train", "validation"], bySplit.Keys);
        Assert.Equal(["raw/part_a.csv", "raw/part_b.csv", "raw/part_10.csv"], bySplit["train"]);   // pattern order
        Assert.Equal(["extra/deep/x/held.csv", "extra/held.csv"], bySplit["validation"]);
        Assert.Equal(["meta/a.json"], From("configs:\n- config_name: default\n  data_files: meta/*.json")["train"]);
        Assert.Equal(["meta/dataset_infos.json"], From("configs:\n- config_name: default\n  data_files: meta/dataset_infos.json")["train"]);
        Assert.Equal([".hidden/b.csv"], From("configs:\n- config_name: default\n  data_files: .hidden/*.csv")["train"]);
        Assert.Equal(["__cache__/c.csv"], From("configs:\n- config_name: default\n  data_files: __cache__/*.csv")["train"]);
        Assert.DoesNotContain("__cache__/c.csv", From("configs:\n- config_name: default\n  data_files: \"**/*.csv\"")["train"]);
        Assert.DoesNotContain(From("configs:\n- config_name: default\n  data_files: \"**/*.csv\"")["train"], f => f.Contains("/.") || f.StartsWith('.'));
        Assert.Empty(From("configs:\n- config_name: default\n  data_files: raw?part_a.csv"));   // ? is no /
        Assert.Equal(["holdout/final.csv"], From("configs:\n- config_name: default\n  data_files:\n    test: raw/part_a.csv\n    train: holdout/*")["train"]);   // split: path, read too
        // a wildcard may match nothing (the split is then absent); a named file must be there
        Assert.Equal(["train"], From("configs:\n- config_name: d\n  data_files:\n  - split: train\n    path: raw/*.csv\n  - split: test\n    path: raw/*.parquet").Keys);
        Assert.Contains("names 'raw/missing.csv', which is not among the repository's files", Assert.Throws<HubException>(() =>
            From("configs:\n- config_name: default\n  data_files: raw/missing.csv")).Message);
        // data_dir: the splits by their names inside it, or data_files relative to it
        string[] languages = ["en/train.csv", "en/test.csv", "fr/train.csv", "fr/x/dev.csv"];
        var en = DataFiles.FromConfig(DatasetCard.Choose(Card("configs:\n- config_name: en\n  data_dir: en\n- config_name: fr\n  data_dir: fr"), "en", "x"), languages, "x");
        Assert.Equal(["en/train.csv"], en["train"]);
        Assert.Equal(["en/test.csv"], en["test"]);
        var fr = DataFiles.FromConfig(Card("configs:\n- config_name: fr\n  data_dir: fr\n  data_files:\n  - split: train\n    path: train.csv\n  - split: validation\n    path: \"**/dev.csv\"").Single(), languages, "x");
        Assert.Equal(["fr/x/dev.csv"], fr["validation"]);
        // a split in shards needs them all; one format a split
        Assert.Contains("has 1 of its 2 shards", Assert.Throws<HubException>(() => DataFiles.FromConfig(Card("configs:\n- config_name: d\n  data_files: \"data/*\"").Single(),
            ["data/train-00000-of-00002.parquet"], "x")).Message);
        Assert.Equal(["d/t.parquet"], DataFiles.FromConfig(Card("configs:\n- config_name: d\n  data_files: \"d/*\"").Single(), ["d/t.csv", "d/t.parquet"], "x")["train"]);

        // the header read as PyYAML reads it: a repeated key keeps its last value, merge keys, `default:` as Python's truth
        Assert.Equal("b", Card("license: mit\nlicense: apache\nconfigs:\n- config_name: a\n  data_files: a.csv\nconfigs:\n- config_name: b\n  data_files: b.csv").Single().Name);
        Assert.Equal(["x.csv"], Card("base: &base\n  data_files: x.csv\nconfigs:\n- <<: *base\n  config_name: m").Single().DataFiles!["train"]);
        foreach (var (value, isDefault) in new[] { ("true", true), ("True", true), ("yes", true), ("1", true), ("false", false), ("no", false), ("0", false), ("\"\"", false) })
            Assert.True(isDefault == Card($"configs:\n- config_name: a\n  data_files: a.csv\n  default: {value}").Single().IsDefault, $"default: {value}");
        // no configs (absent, empty or null): nothing; several and no default: choose one; several defaults, a
        // configuration twice or without config_name: refused; a header that is not YAML: refused
        Assert.Empty(Card("license: mit"));
        Assert.Empty(Card("configs:"));
        Assert.Empty(Card("configs: []"));
        Assert.Contains("choose one as --dataset x/a", Assert.Throws<HubException>(() => DatasetCard.Choose(
            Card("configs:\n- config_name: a\n  data_files: a.csv\n- config_name: b\n  data_files: b.csv"), null, "x")).Message);
        Assert.Equal("default", DatasetCard.Choose(Card("configs:\n- config_name: a\n  data_files: a.csv\n- config_name: default\n  data_files: b.csv"), null, "x").Name);
        Assert.Contains("several configurations as the default (a, b)", Assert.Throws<HubException>(() => DatasetCard.Choose(
            Card("configs:\n- config_name: a\n  data_files: a.csv\n  default: true\n- config_name: b\n  data_files: b.csv\n  default: true"), null, "x")).Message);
        Assert.Contains("'a' is given twice", Assert.Throws<HubException>(() => Card("configs:\n- config_name: a\n  data_files: a.csv\n- config_name: a\n  data_files: b.csv")).Message);
        Assert.Contains("no config_name", Assert.Throws<HubException>(() => Card("configs:\n- data_files: a.csv")).Message);
        Assert.Contains("README.md: its YAML header does not parse", Assert.Throws<HubException>(() => Card("configs: [unclosed")).Message);
    }

    [Fact]
    public async Task AReadmesHeaderIsFoundAsHuggingFaceHubFindsIt()
    {
        string Write(string text) { var path = Path.Combine(TempDir(), "README.md"); File.WriteAllText(path, text); return path; }
        const string header = "configs:\n- config_name: a\n  data_files: a.csv";
        Assert.Single(DatasetCard.Read(Write($"---\r\n{header.Replace("\n", "\r\n")}\r\n---\r\nText\r\n")).Configs);   // Windows line ends
        Assert.Single(DatasetCard.Read(Write($"---\n{header}\n---  \nText")).Configs);   // spaces after the closing line
        Assert.Empty(DatasetCard.Read(Write($"\uFEFF---\n{header}\n---\n")).Configs);   // a byte-order mark: no header, as huggingface_hub reads it
        Assert.Empty(DatasetCard.Read(Write($"# Title\n---\n{header}\n---\n")).Configs);   // not at the start
        // huggingface_hub's older pattern backtracked without end on an unclosed header of many blank lines
        var unclosed = Write("---\n" + new string('\n', 80_000));
        var read = Task.Run(() => DatasetCard.Read(unclosed).Configs);
        Assert.True(await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(30))) == read, "reading an unclosed header still running after 30 s");
        Assert.Empty(await read);
    }

    [Fact]
    public void AHubDatasetWithAReadmeConfigIsReadByItsDefaultConfiguration()
    {
        var root = TempDir();
        var data = Path.Combine(root, "datasets", "org", "emotion-like", "resolve", "main");
        foreach (var (file, rows) in new[] { ("split/train.csv", 8), ("split/validation.csv", 4), ("unsplit/train.csv", 20) })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(data, file))!);
            File.WriteAllText(Path.Combine(data, file), "text,label\n" + string.Concat(Enumerable.Range(0, rows).Select(i => $"text {i},{i % 2}\n")));
        }
        File.WriteAllText(Path.Combine(data, "README.md"), "---\nconfigs:\n- config_name: split\n  default: true\n  data_files:\n  - split: train\n    path: split/train.csv\n" +
            "  - split: validation\n    path: split/validation.csv\n- config_name: unsplit\n  data_files: unsplit/train.csv\n" +
            "- config_name: prefs\n  data_files:\n  - split: train_prefs\n    path: split/train.csv\n" +
            "dataset_info:\n- config_name: unsplit\n  features:\n  - name: label\n    dtype:\n      class_label:\n        names: [u0, u1]\n" +
            "- config_name: split\n  features:\n  - name: label\n    dtype:\n      class_label:\n        names: [sadness, joy]\n---\n");
        using var server = new MirrorServer(root);
        var cache = TempDir();
        using (var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null)))
        {
            var files = Sources.ResolveDataset("org/emotion-like", hub, "main", out var classLabels);
            Assert.Equal(8, TextClassificationData.Load(files, "text", "label", seed: 1).Train.Count);
            Assert.Equal(["sadness", "joy"], classLabels["label"]);   // the chosen configuration's dataset_info
            Assert.Equal(20 - 2, TextClassificationData.Load(Sources.ResolveDataset("org/emotion-like/unsplit", hub), "text", "label", seed: 1).Train.Count);
            // splits named otherwise: the message says which there are and which this tool reads
            Assert.Contains("configuration 'prefs' of its README has the splits train_prefs", Assert.Throws<HubException>(() => Sources.ResolveDataset("org/emotion-like/prefs", hub)).Message);
        }
        // a local copy of the repository (a git clone, a downloaded snapshot) is read by its README too, as
        // load_dataset(folder) reads it
        using (var local = new HubClient(new HubSettings("http://127.0.0.1:9", TempDir(), true, null)))
        {
            var localFiles = Sources.ResolveDataset(data, local);
            Assert.Equal([Path.Combine(Path.GetFullPath(data), "split", "train.csv")], localFiles["train"]);
            Assert.Equal(["train", "validation"], localFiles.Keys);
        }
        // offline, the cached README still chooses
        using var offline = new HubClient(new HubSettings(server.Endpoint, cache, true, null));
        Assert.EndsWith(Path.Combine("split", "train.csv"), Sources.ResolveDataset("org/emotion-like", offline)["train"].Single());
    }

    [Fact]
    public void TheCardsClassLabelNamesNameTheClassesAsDatasetsCastsThem()
    {
        // a CSV repository whose card gives the label column's ClassLabel names, in an order that is not sorted
        var root = TempDir();
        var data = Path.Combine(root, "datasets", "org", "csv-labels", "resolve", "main");
        Directory.CreateDirectory(data);
        File.WriteAllText(Path.Combine(data, "README.md"), """
            ---
            dataset_info:
            - config_name: other
              features:
              - name: label
                dtype:
                  class_label:
                    names:
                      '0': wrong
                      '1': config
            - config_name: default
              features:
              - name: text
                dtype: string
              - name: label
                dtype:
                  class_label:
                    names:
                      '0': positive
                      '1': negative
              - name: topic
                dtype:
                  class_label:
                    names: [sports, arts, news]
            ---
            """.ReplaceLineEndings("\n"));
        File.WriteAllText(Path.Combine(data, "train.csv"), "text,label,ids\n" + string.Concat(Enumerable.Range(0, 10).Select(i => $"t{i},{(i % 2 == 0 ? "negative" : "positive")},{i % 2}\n")));
        using var server = new MirrorServer(root);
        using var hub = new HubClient(new HubSettings(server.Endpoint, TempDir(), false, null));
        var files = Sources.ResolveDataset("org/csv-labels", hub, "main", out var classLabels);
        Assert.Equal(["positive", "negative"], classLabels["label"]);
        Assert.Equal(["sports", "arts", "news"], classLabels["topic"]);
        // string labels take the card's ids (datasets' str2int), not the sorted order
        var byCard = TextClassificationData.Load(files, "text", "label", seed: 1, classLabels: classLabels);
        Assert.Equal(["positive", "negative"], byCard.LabelNames);
        Assert.Equal(["negative", "positive"], TextClassificationData.Load(files, "text", "label", seed: 1).LabelNames);
        Assert.Equal(1, byCard.Train.Labels[Array.IndexOf(byCard.Train.Texts, "t0")]);   // t0 is negative: id 1
        // and so does train: the model's labels in the card's order
        var prepared = FineTuning.Prepare(new RunInputs(Cli.TinyModelRepo(TempDir()), "org/csv-labels"), new TrainOptions(), hub, _ => { });
        Assert.Equal(["positive", "negative"], prepared.Config.Id2Label);
        // integer labels are named by the card
        Assert.Equal(["positive", "negative"], TextClassificationData.Load(files, "text", "ids", seed: 1, classLabels: new Dictionary<string, IReadOnlyList<string>> { ["ids"] = classLabels["label"] }).LabelNames);
        // a label the card does not name is an error naming the file and row
        File.WriteAllText(Path.Combine(data, "train.csv"), "text,label\na,positive\nb,neutral\nc,negative\n");
        var e = Assert.Throws<DataFormatException>(() => TextClassificationData.Load(new Dictionary<string, string> { ["train"] = Path.Combine(data, "train.csv") }, "text", "label", seed: 1,
            classLabels: classLabels));
        Assert.Contains("row 1: label 'neutral' is not one of the labels [positive, negative]", e.Message);
        // ids that are not 0..n-1 are not names
        var readme = Path.Combine(TempDir(), "README.md");
        File.WriteAllText(readme, "---\ndataset_info:\n  features:\n  - name: label\n    dtype:\n      class_label:\n        names:\n          '0': a\n          '2': b\n---\n");
        Assert.Empty(DatasetCard.Read(readme).ClassLabels(null));
    }

    [Fact]
    public async Task ClassLabelNamesFollowDatasetsWhereCardAndFilesMeetOrDisagree()
    {
        string Readme(string yaml) { var dir = TempDir(); File.WriteAllText(Path.Combine(dir, "README.md"), $"---\n{yaml}\n---\n"); return Path.Combine(dir, "README.md"); }
        // each dataset_info is its configuration's: another configuration gets none; without configs a single one is the one
        var perConfig = Readme("dataset_info:\n- config_name: a\n  features:\n  - name: label\n    dtype:\n      class_label:\n        names:\n          '1': y\n          '0': x");
        Assert.Equal(["x", "y"], DatasetCard.Read(perConfig).ClassLabels("a")["label"]);   // in id order, not the file's
        Assert.Empty(DatasetCard.Read(perConfig).ClassLabels("b"));
        Assert.Equal(["x", "y"], DatasetCard.Read(perConfig).ClassLabels(null)["label"]);
        // the card wins over a parquet file's own names (datasets casts the file to the card's features)
        var dir = TempDir();
        var parquet = Path.Combine(dir, "train.parquet");
        await WriteTextParquet(parquet, [("text", ["a", "b", "c", "d"])], "label", [0, 1, 0, 1],
            new Dictionary<string, string> { ["huggingface"] = """{"info": {"features": {"label": {"names": ["from-file-0", "from-file-1"]}}}}""" });
        var files = new Dictionary<string, string> { ["train"] = parquet };
        Assert.Equal(["from-file-0", "from-file-1"], TextClassificationData.Load(files, "text", "label", seed: 1).LabelNames);
        var card = new Dictionary<string, IReadOnlyList<string>> { ["label"] = ["neg", "pos"] };
        Assert.Equal(["neg", "pos"], TextClassificationData.Load(files, "text", "label", seed: 1, classLabels: card).LabelNames);
        // a label the card's names do not cover, or a name given twice: refused, as datasets' cast refuses them
        Assert.Contains("row 1: label 1, but the dataset card (README.md) names 1 classes", Assert.Throws<DataFormatException>(() =>
            TextClassificationData.Load(files, "text", "label", seed: 1, classLabels: new Dictionary<string, IReadOnlyList<string>> { ["label"] = ["only"] })).Message);
        Assert.Contains("names the class 'a' of column 'label' twice", Assert.Throws<DataFormatException>(() =>
            TextClassificationData.Load(files, "text", "label", seed: 1, classLabels: new Dictionary<string, IReadOnlyList<string>> { ["label"] = ["a", "b", "a"] })).Message);
    }

    [Fact]
    public void ALocalFolderIsReadByItsCardByNameOrByAConfigurationNamedAfterIt()
    {
        using var hub = new HubClient(new HubSettings("http://127.0.0.1:9", TempDir(), true, null));
        // a README without configs: the file names decide, and its ClassLabel names still name the classes
        var named = TempDir();
        File.WriteAllText(Path.Combine(named, "train.csv"), "text,label\n" + string.Concat(Enumerable.Range(0, 10).Select(i => $"t{i},{i % 2}\n")));
        File.WriteAllText(Path.Combine(named, "README.md"), "---\ndataset_info:\n  features:\n  - name: label\n    dtype:\n      class_label:\n        names: [sad, happy]\n---\n# Notes\n");
        var files = Sources.ResolveDataset(named, hub, "main", out var classLabels);
        Assert.Equal([Path.Combine(named, "train.csv")], files["train"]);
        Assert.Equal(["sad", "happy"], TextClassificationData.Load(files, "text", "label", seed: 1, classLabels: classLabels).LabelNames);
        // several configurations and no default: folder/config chooses one, as the message says
        var several = TempDir();
        foreach (var lang in new[] { "en", "fr" })
        {
            Directory.CreateDirectory(Path.Combine(several, "data-" + lang));
            File.WriteAllText(Path.Combine(several, "data-" + lang, "train.csv"), "text,label\na,0\nb,1\n");
        }
        File.WriteAllText(Path.Combine(several, "README.md"), "---\nconfigs:\n- config_name: en\n  data_dir: data-en\n- config_name: fr\n  data_dir: data-fr\n---\n");
        var e = Assert.Throws<HubException>(() => Sources.ResolveDataset(several, hub));
        Assert.Contains($"choose one as --dataset {several}/en", e.Message);
        Assert.Equal([Path.Combine(several, "data-fr", "train.csv")], Sources.ResolveDataset(Path.Combine(several, "fr"), hub)["train"]);
        // a folder linked into itself is read once
        File.WriteAllText(Path.Combine(several, "README.md"), "---\nconfigs:\n- config_name: all\n  data_files: \"**/train.csv\"\n---\n");
        Directory.CreateSymbolicLink(Path.Combine(several, "loop"), several);
        Assert.Equal(2, Sources.ResolveDataset(several, hub)["train"].Count);
        // a README whose header is not YAML: refused, saying how the folder can be read
        File.WriteAllText(Path.Combine(several, "README.md"), "---\nSome intro: text: here\n---\n");
        Assert.Contains("rename the file to read the folder by its file names", Assert.Throws<HubException>(() => Sources.ResolveDataset(several, hub)).Message);
        // but folder/name is only looked for in a README that has that configuration: a Hub id whose first part
        // happens to be such a folder stays a Hub id
        Assert.Contains("neither a local file or folder nor a Hub id", Assert.Throws<HubException>(() => Sources.ResolveDataset(Path.Combine(several, "en"), hub)).Message);
    }
}
