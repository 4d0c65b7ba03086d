using System.Security.Cryptography;
using MixupBert.Model.Hub;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>The Hub client against a loopback mirror of ../shared/hf, with a cache of its own per test.</summary>
public class HubClientTests
{
    private static string HfRoot => Path.Combine(SharedDir, "hf");
    private const string Repo = "sentence-transformers/all-MiniLM-L6-v2";

    [Fact]
    public void DownloadsIntoThePythonCacheLayoutAndReusesIt()
    {
        using var server = new MirrorServer(HfRoot);
        var cache = TempDir();
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        var path = hub.Download(RepoType.Model, Repo, "config.json")!;
        var repoDir = Path.Combine(cache, "models--sentence-transformers--all-MiniLM-L6-v2");
        Assert.Equal(Path.Combine(repoDir, "snapshots", "main", "config.json"), path);
        Assert.Equal("main", File.ReadAllText(Path.Combine(repoDir, "refs", "main"))); // no X-Repo-Commit: cached under the revision
        var link = new FileInfo(path).LinkTarget;
        Assert.NotNull(link);
        Assert.StartsWith(Path.Combine("..", "..", "blobs"), link);
        var original = File.ReadAllBytes(Path.Combine(HfRoot, Repo, "resolve", "main", "config.json"));
        Assert.Equal(original, File.ReadAllBytes(path));
        Assert.True(File.Exists(Path.Combine(repoDir, "blobs", Convert.ToHexString(SHA256.HashData(original)).ToLowerInvariant())));
        Assert.Empty(Directory.GetFiles(Path.Combine(repoDir, "blobs"), "*.incomplete"));

        int gets = server.Requests.Count(r => r.StartsWith("GET"));
        hub.Download(RepoType.Model, Repo, "config.json");
        Assert.Equal(gets, server.Requests.Count(r => r.StartsWith("GET"))); // the blob is there: no second download
    }

    [Fact]
    public void OfflineUsesTheCacheOnlyAndSaysWhatToDoWhenItIsMissing()
    {
        using var server = new MirrorServer(HfRoot);
        var cache = TempDir();
        using (var online = new HubClient(new HubSettings(server.Endpoint, cache, false, null)))
            online.Download(RepoType.Model, Repo, "vocab.txt");
        int before = server.Requests.Count;
        using var offline = new HubClient(new HubSettings(server.Endpoint, cache, Offline: true, null));
        Assert.NotNull(offline.Download(RepoType.Model, Repo, "vocab.txt"));
        Assert.Equal(before, server.Requests.Count); // not one request
        var e = Assert.Throws<HubException>(() => offline.Download(RepoType.Model, Repo, "model.safetensors"));
        Assert.Contains("HF_HUB_OFFLINE", e.Message);
        Assert.Contains("not in the Hugging Face cache", e.Message);
    }

    [Fact]
    public void UnreachableHubWithEmptyCacheSaysWhatToDo()
    {
        string endpoint;
        using (var server = new MirrorServer(HfRoot)) endpoint = server.Endpoint; // stopped
        using var hub = new HubClient(new HubSettings(endpoint, TempDir(), false, null));
        var e = Assert.Throws<HubException>(() => hub.Download(RepoType.Model, Repo, "config.json"));
        Assert.Contains("cannot reach the Hugging Face Hub", e.Message);
        Assert.Contains("HF_ENDPOINT", e.Message);
    }

    [Fact]
    public void ResumesAnIncompleteDownloadWithARangeRequest()
    {
        using var server = new MirrorServer(HfRoot);
        var cache = TempDir();
        var original = File.ReadAllBytes(Path.Combine(HfRoot, Repo, "resolve", "main", "vocab.txt"));
        string etag = Convert.ToHexString(SHA256.HashData(original)).ToLowerInvariant();
        var blobs = Path.Combine(cache, "models--sentence-transformers--all-MiniLM-L6-v2", "blobs");
        Directory.CreateDirectory(blobs);
        File.WriteAllBytes(Path.Combine(blobs, etag + ".incomplete"), original.AsSpan(0, 100_000).ToArray());
        var progress = new List<DownloadProgress>();
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null), progress.Add);
        var path = hub.Download(RepoType.Model, Repo, "vocab.txt")!;
        Assert.Equal(original, File.ReadAllBytes(path));
        Assert.Contains(server.Requests, r => r == $"GET /{Repo}/resolve/main/vocab.txt bytes=100000-");
        Assert.True(progress.Last().Done);
        Assert.Equal(original.Length, progress.Last().Received);
        Assert.False(File.Exists(Path.Combine(blobs, etag + ".incomplete")));
    }

    [Fact]
    public void ABrokenDownloadIsKeptForResumeAndNeverMovedIntoPlace()
    {
        using var server = new MirrorServer(HfRoot) { TruncateBodiesAt = 50_000 };
        var cache = TempDir();
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        var e = Assert.Throws<HubException>(() => hub.Download(RepoType.Model, Repo, "vocab.txt"));
        Assert.Contains("run again to resume", e.Message);
        var blobs = Path.Combine(cache, "models--sentence-transformers--all-MiniLM-L6-v2", "blobs");
        Assert.Single(Directory.GetFiles(blobs), f => f.EndsWith(".incomplete"));
        Assert.False(Directory.Exists(Path.Combine(cache, "models--sentence-transformers--all-MiniLM-L6-v2", "snapshots")));
        server.TruncateBodiesAt = null;
        Assert.Equal(File.ReadAllBytes(Path.Combine(HfRoot, Repo, "resolve", "main", "vocab.txt")), File.ReadAllBytes(hub.Download(RepoType.Model, Repo, "vocab.txt")!));
    }

    [Fact]
    public void FollowsRedirectsAndSendsTheTokenAsBearer()
    {
        using var server = new MirrorServer(HfRoot);
        using var hub = new HubClient(new HubSettings(server.Endpoint + "/redirect", TempDir(), false, "hf_secret"));
        Assert.NotNull(hub.Download(RepoType.Model, Repo, "tokenizer_config.json"));
        Assert.Contains(server.Requests, r => r.StartsWith("GET /redirect/"));
        Assert.Contains(server.Requests, r => r == $"GET /{Repo}/resolve/main/tokenizer_config.json");
        Assert.Contains("Bearer hf_secret", server.Authorizations);
    }

    [Fact]
    public void DatasetsUseTheDatasetsPrefixAndAliases()
    {
        using var server = new MirrorServer(HfRoot);
        var cache = TempDir();
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        var files = Sources.ResolveDataset("rotten_tomatoes", hub);
        Assert.Equal(new[] { "test", "train", "validation" }, files.Keys.Order());
        Assert.Contains(server.Requests, r => r == "GET /datasets/cornell-movie-review-data/rotten_tomatoes/resolve/main/train.parquet");
        Assert.True(Directory.Exists(Path.Combine(cache, "datasets--cornell-movie-review-data--rotten_tomatoes", "snapshots", "main")));
    }

    [Fact]
    public void TokenizerJsonIsFetchedOnlyForAModelWithoutVocabTxt()
    {
        // a mirror of one model that has tokenizers' tokenizer.json and no vocab.txt, beside MiniLM (which has vocab.txt)
        var root = TempDir();
        var repo = Path.Combine(root, "someone", "wordpiece-json-only", "resolve", "main");
        Directory.CreateDirectory(repo);
        var miniLm = Path.Combine(HfRoot, Repo, "resolve", "main");
        File.Copy(Path.Combine(miniLm, "config.json"), Path.Combine(repo, "config.json"));
        File.CreateSymbolicLink(Path.Combine(repo, "model.safetensors"), Path.Combine(miniLm, "model.safetensors"));
        File.WriteAllText(Path.Combine(repo, "tokenizer_config.json"), """{"do_lower_case": true}""");
        using (var gz = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(RepositoryRoot(), "tests", "Tokenization", "tokenizer-uncased-added.json.gz")), System.IO.Compression.CompressionMode.Decompress))
        using (var file = File.Create(Path.Combine(repo, "tokenizer.json")))
            gz.CopyTo(file);
        Directory.CreateSymbolicLink(Path.Combine(root, "sentence-transformers"), Path.Combine(HfRoot, "sentence-transformers"));
        using var server = new MirrorServer(root);
        using var hub = new HubClient(new HubSettings(server.Endpoint, TempDir(), false, null));

        var folder = Sources.ResolveModel("someone/wordpiece-json-only", hub);
        Assert.True(File.Exists(Path.Combine(folder, "tokenizer.json")));
        Assert.Equal(new[] { 101, 7592, 102, 30522, 102 }, Model.Data.TextEncoder.FromModelFolder(folder).Encode("hello [SEP] <ent>", 16));

        Sources.ResolveModel(Repo, hub);
        Assert.DoesNotContain(server.Requests, r => r.Contains(Repo) && r.EndsWith("/tokenizer.json"));
    }

    [Fact]
    public void UnknownIdsGetAClearMessage()
    {
        using var server = new MirrorServer(HfRoot);
        using var hub = new HubClient(new HubSettings(server.Endpoint, TempDir(), false, null));
        var e = Assert.Throws<HubException>(() => Sources.ResolveModel("no-such-org/no-such-model", hub));
        Assert.Contains("model 'no-such-org/no-such-model' was not found", e.Message);
        var d = Assert.Throws<HubException>(() => Sources.ResolveDataset("no-such-org/no-such-data", hub));
        Assert.Contains("dataset 'no-such-org/no-such-data' was not found", d.Message);
        Assert.Contains("give --dataset the local folder", d.Message);   // what to do when the dataset is there in another layout
    }
}
