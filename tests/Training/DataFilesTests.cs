using MixupBert.Model.Data;
using MixupBert.Model.Hub;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>A Hub dataset's splits found in its file list as `datasets` finds them (DataFiles), in the layouts
/// real repositories have, and the whole path through the Hub client's tree API, pages, and the cache offline.</summary>
public class DataFilesTests
{
    private static Dictionary<string, string[]> Splits(string? config, params string[] files) =>
        DataFiles.Resolve(files, config, "org/x").ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());

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
}
