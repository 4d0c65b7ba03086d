using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using MixupBert.Model.Hub;
using MixupBert.Tests.Training;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Hub;

/// <summary>
/// The Hub client against a misbehaving server and a damaged cache (issue #10): names from the
/// server, the user or the cache that would lead outside the cache, servers that stall before their
/// headers or in the middle of a body, Ctrl-C during a stall, a complete .incomplete file, a cache
/// that cannot be written, offline mode with an empty cache. Calls that hung before the fix run
/// under a time limit, so that such a test fails instead of hanging.
/// </summary>
public class HubClientFaultTests
{
    private const string Repo = "sentence-transformers/all-MiniLM-L6-v2";
    private const string RepoFolderName = "models--sentence-transformers--all-MiniLM-L6-v2";
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);
    private static string HfRoot => Path.Combine(SharedDir, "hf");
    private static byte[] Original(string file) => File.ReadAllBytes(Path.Combine(HfRoot, Repo, "resolve", "main", file));
    private static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>A cache folder alone in a fresh folder, so that anything written beside it shows.</summary>
    private static (string Outer, string Cache) Sandbox()
    {
        var outer = TempDir();
        var cache = Path.Combine(outer, "cache");
        Directory.CreateDirectory(cache);
        return (outer, cache);
    }

    private static void AssertNothingBeside(string outer, params string[] expected) =>
        Assert.Equal(expected.Append("cache").Order(), Directory.GetFileSystemEntries(outer).Select(Path.GetFileName).Order()!);

    /// <summary>What the call threw, waiting at most <see cref="Limit"/> (a call still running then fails the test).</summary>
    private static Exception? Outcome(Action call, TimeSpan? limit = null)
    {
        var task = Task.Run(call);
        Assert.True(((IAsyncResult)task).AsyncWaitHandle.WaitOne(limit ?? Limit), $"the call was still running after {(limit ?? Limit).TotalSeconds} s");
        return task.Exception?.InnerException;
    }

    private static TException Fails<TException>(Action call, TimeSpan? limit = null) where TException : Exception
    {
        var e = Outcome(call, limit);
        Assert.True(e is TException, $"expected {typeof(TException).Name}, got {e?.GetType().Name ?? "no exception"}: {e}");
        return (TException)e!;
    }

    // --- names that would lead outside the cache ---

    [Fact]
    public void ARelativeCommitHeaderCannotWriteOrDeleteOutsideTheCache()
    {
        var (outer, cache) = Sandbox();
        var victim = Path.Combine(outer, "victim", "config.json");
        Directory.CreateDirectory(Path.GetDirectoryName(victim)!);
        File.WriteAllText(victim, "precious");
        // snapshots/../../../victim is {outer}/victim: the old client deleted config.json there and linked its own
        using var server = new MirrorServer(HfRoot) { RepoCommit = "../../../victim" };
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        var e = Fails<HubException>(() => hub.Download(RepoType.Model, Repo, "config.json"));
        Assert.Contains("X-Repo-Commit '../../../victim'", e.Message);
        Assert.Equal("precious", File.ReadAllText(victim));
        Assert.Null(new FileInfo(victim).LinkTarget);
        AssertNothingBeside(outer, "victim");
    }

    [Fact]
    public void AnAbsoluteCommitHeaderCannotWriteOutsideTheCache()
    {
        var (outer, cache) = Sandbox();
        using var server = new MirrorServer(HfRoot) { RepoCommit = Path.Combine(outer, "elsewhere") };
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        var e = Fails<HubException>(() => hub.Download(RepoType.Model, Repo, "config.json"));
        Assert.Contains("not a commit hash", e.Message);
        AssertNothingBeside(outer);
    }

    [Fact]
    public void ARealCommitHeaderIsStillUsed()
    {
        var (_, cache) = Sandbox();
        const string commit = "0123456789abcdef0123456789abcdef01234567";
        using var server = new MirrorServer(HfRoot) { RepoCommit = commit };
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        var path = hub.Download(RepoType.Model, Repo, "config.json");
        Assert.Equal(Path.Combine(cache, RepoFolderName, "snapshots", commit, "config.json"), path);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(cache, RepoFolderName, "refs", "main")));
    }

    [Fact]
    public void ARefFileInTheCacheCannotPointOutsideIt()
    {
        var (outer, cache) = Sandbox();
        var victim = Path.Combine(outer, "victim", "config.json");
        Directory.CreateDirectory(Path.GetDirectoryName(victim)!);
        File.WriteAllText(victim, "{}");
        var refs = Path.Combine(cache, RepoFolderName, "refs");
        Directory.CreateDirectory(refs);
        File.WriteAllText(Path.Combine(refs, "main"), "../../../victim");
        using var hub = new HubClient(new HubSettings("http://127.0.0.1:9", cache, Offline: true, null));
        // the old client returned {outer}/victim/config.json as the model's config
        var e = Fails<HubException>(() => hub.Download(RepoType.Model, Repo, "config.json"));
        Assert.Contains(Path.Combine(refs, "main"), e.Message);
        Assert.Contains("not a commit hash", e.Message);
    }

    [Theory]
    [InlineData("relative")]
    [InlineData("absolute")]
    public void AFileNameCannotLeadOutsideTheCache(string kind)
    {
        var (outer, cache) = Sandbox();
        // a server that answers every path, so the old client had something to write
        using var server = new MirrorServer(HfRoot) { AnyPath = "not a model"u8.ToArray() };
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        string file = kind == "relative" ? "../../../../escaped.txt" : Path.Combine(outer, "escaped.txt");
        var e = Fails<HubException>(() => hub.Download(RepoType.Model, Repo, file));
        Assert.Contains($"'{file}' is not a file name inside a repository", e.Message);
        AssertNothingBeside(outer);
    }

    [Fact]
    public void ARevisionCannotLeadOutsideTheCache()
    {
        var (outer, cache) = Sandbox();
        using var server = new MirrorServer(HfRoot) { AnyPath = "{}"u8.ToArray() };
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        var e = Fails<HubException>(() => hub.Download(RepoType.Model, Repo, "config.json", revision: "../../../escaped"));
        Assert.Contains("revision '../../../escaped' is neither a commit hash", e.Message);
        AssertNothingBeside(outer);
        Assert.Empty(server.Requests);
    }

    // --- stalls, timeouts, Ctrl-C ---

    [Fact]
    public void AHeadRequestThatGetsNoAnswerTimesOutAndFallsBackToTheCache()
    {
        var (_, cache) = Sandbox();
        using var server = new MirrorServer(HfRoot);
        var settings = new HubSettings(server.Endpoint, cache, false, null) { EtagTimeout = TimeSpan.FromSeconds(1) };
        using var hub = new HubClient(settings);
        var cached = hub.Download(RepoType.Model, Repo, "config.json");
        server.StallBeforeHeadersOn = "HEAD";
        var clock = Stopwatch.StartNew();
        string? again = null;
        Assert.Null(Outcome(() => again = hub.Download(RepoType.Model, Repo, "config.json")));
        Assert.Equal(cached, again); // as huggingface_hub: a Hub that does not answer in time counts as offline
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.9, 10);

        var e = Fails<HubException>(() => hub.Download(RepoType.Model, Repo, "vocab.txt")); // not cached
        Assert.Contains("cannot reach the Hugging Face Hub", e.Message);
        Assert.Contains("HF_HUB_ETAG_TIMEOUT", e.Message);
    }

    [Fact]
    public void ADownloadThatGetsNoHeadersTimesOut()
    {
        var (_, cache) = Sandbox();
        using var server = new MirrorServer(HfRoot) { StallBeforeHeadersOn = "GET" };
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null) { DownloadTimeout = TimeSpan.FromSeconds(1) });
        var e = Fails<HubException>(() => hub.Download(RepoType.Model, Repo, "vocab.txt"));
        Assert.Contains("HF_HUB_DOWNLOAD_TIMEOUT", e.Message);
        Assert.Contains("vocab.txt of model 'sentence-transformers/all-MiniLM-L6-v2' (revision main)", e.Message);
    }

    [Fact]
    public void ADownloadThatStallsMidBodyTimesOutKeepsItsBytesAndResumes()
    {
        var (_, cache) = Sandbox();
        using var server = new MirrorServer(HfRoot) { StallBodyAfter = 100_000 };
        // 5 s without a byte: a loaded machine can pause for a second between two reads of the first 100 kB
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null) { DownloadTimeout = TimeSpan.FromSeconds(5) });
        var e = Fails<HubException>(() => hub.Download(RepoType.Model, Repo, "vocab.txt"));
        Assert.Contains("stalled at 100000 bytes", e.Message);
        Assert.Contains("HF_HUB_DOWNLOAD_TIMEOUT", e.Message);
        var partial = Assert.Single(Directory.GetFiles(Path.Combine(cache, RepoFolderName, "blobs")));
        Assert.EndsWith(".incomplete", partial);
        Assert.Equal(100_000, new FileInfo(partial).Length);

        server.StallBodyAfter = null;
        Assert.Equal(Original("vocab.txt"), File.ReadAllBytes(hub.Download(RepoType.Model, Repo, "vocab.txt")!));
        Assert.Contains(server.Requests, r => r == $"GET /{Repo}/resolve/main/vocab.txt bytes=100000-");
    }

    [Theory]
    [InlineData("HEAD")]
    [InlineData("GET")]
    [InlineData("body")]
    public void CancellingDuringAStallEndsTheCallAtOnce(string where)
    {
        var (_, cache) = Sandbox();
        using var server = new MirrorServer(HfRoot);
        if (where == "body") server.StallBodyAfter = 100_000; else server.StallBeforeHeadersOn = where;
        // timeouts far beyond the limit, so only the cancellation can end the call in time
        var settings = new HubSettings(server.Endpoint, cache, false, null) { EtagTimeout = TimeSpan.FromMinutes(5), DownloadTimeout = TimeSpan.FromMinutes(5) };
        using var hub = new HubClient(settings);
        using var ctrlC = new CancellationTokenSource();
        var blobs = Path.Combine(cache, RepoFolderName, "blobs");
        var cancelledAt = new Stopwatch();
        // Ctrl-C once the server stalls and, mid-body, once the client has written its first 64 KiB
        // buffer of the partial file: a fixed delay raced the download on a loaded machine
        var pressCtrlC = new Thread(() =>
        {
            server.Stalled.Wait(TimeSpan.FromSeconds(60));
            var until = Stopwatch.StartNew();
            while (where == "body" && until.Elapsed < TimeSpan.FromSeconds(60)
                   && !(Directory.Exists(blobs) && Directory.GetFiles(blobs).Select(f => new FileInfo(f).Length).FirstOrDefault() >= 1 << 16))
                Thread.Sleep(20);
            cancelledAt.Start();
            ctrlC.Cancel();
        });
        pressCtrlC.Start();
        Fails<OperationCanceledException>(() => hub.Download(RepoType.Model, Repo, "vocab.txt", cancel: ctrlC.Token), TimeSpan.FromSeconds(90));
        pressCtrlC.Join();
        Assert.InRange(cancelledAt.Elapsed.TotalSeconds, 0, 10); // the call ended at the cancellation, not at a timeout
        Assert.True(server.Stalled.IsSet, "the server never stalled");
        if (where == "body")
        {
            // what was received is kept (all 100 000 bytes unless Ctrl-C beat the socket's last read), and resumes
            Assert.InRange(new FileInfo(Assert.Single(Directory.GetFiles(blobs))).Length, 1 << 16, 100_000);
            server.StallBodyAfter = null;
            Assert.Equal(Original("vocab.txt"), File.ReadAllBytes(hub.Download(RepoType.Model, Repo, "vocab.txt")!));
        }
    }

    // --- a Hub that stops answering: asked once, then the cache answers ---

    /// <summary>A cache filled from the mirror with the model's files and rotten_tomatoes' splits.</summary>
    private static (string Model, Dictionary<string, IReadOnlyList<string>> Dataset) WarmCache(string cache)
    {
        using var mirror = new MirrorServer(HfRoot);
        using var hub = new HubClient(new HubSettings(mirror.Endpoint, cache, false, null));
        return (Sources.ResolveModel(Repo, hub), Sources.ResolveDataset("rotten_tomatoes", hub));
    }

    [Fact]
    public void AHubThatDoesNotAnswerIsAskedOnceAndTheWarmCacheAnswersTheRest()
    {
        var (_, cache) = Sandbox();
        var (model, dataset) = WarmCache(cache);
        using var silent = new SilentServer();
        var warnings = new ConcurrentQueue<string>();
        using var hub = new HubClient(new HubSettings(silent.Endpoint, cache, false, null) { EtagTimeout = TimeSpan.FromSeconds(1) }, warn: warnings.Enqueue);
        string? again = null;
        Dictionary<string, IReadOnlyList<string>>? againData = null;
        var clock = Stopwatch.StartNew();
        Assert.Null(Outcome(() => { again = Sources.ResolveModel(Repo, hub); againData = Sources.ResolveDataset("rotten_tomatoes", hub); }));
        var elapsed = clock.Elapsed;
        Assert.Equal(model, again);
        Assert.Equal(dataset.OrderBy(kv => kv.Key).SelectMany(kv => kv.Value), againData!.OrderBy(kv => kv.Key).SelectMany(kv => kv.Value));
        // 6 model files (config, weights, 4 tokenizer files; one not on the Hub) and 4 dataset requests (the file
        // list, 3 splits): each waited out its own timeout before, 10 s here
        Assert.Equal(1, silent.SettledRequests());
        Assert.Equal(1, silent.Connections);
        Assert.InRange(elapsed.TotalSeconds, 0.9, 5);
        var said = Assert.Single(warnings);
        Assert.Equal($"the Hugging Face Hub at {silent.Endpoint} did not answer within 1 s (HF_HUB_ETAG_TIMEOUT): using the cached files ({cache}), " +
            "without asking it again in this run (HF_HUB_OFFLINE=1 does not ask at all)", said);
    }

    [Fact]
    public void AfterTheHubDidNotAnswerAFileNotInTheCacheIsStillAskedForAndFailsAsBefore()
    {
        var (_, cache) = Sandbox();
        using (var mirror = new MirrorServer(HfRoot))
        using (var warm = new HubClient(new HubSettings(mirror.Endpoint, cache, false, null)))
            warm.Download(RepoType.Model, Repo, "config.json");
        using var silent = new SilentServer();
        var warnings = new ConcurrentQueue<string>();
        using var hub = new HubClient(new HubSettings(silent.Endpoint, cache, false, null) { EtagTimeout = TimeSpan.FromSeconds(1) }, warn: warnings.Enqueue);
        Assert.Null(Outcome(() => hub.Download(RepoType.Model, Repo, "config.json")));
        Assert.Equal(1, silent.SettledRequests());

        var clock = Stopwatch.StartNew();
        var e = Fails<HubException>(() => hub.Download(RepoType.Model, Repo, "vocab.txt"));
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.9, 10); // its own attempt, its own timeout
        Assert.Equal(2, silent.SettledRequests());
        Assert.Equal($"cannot reach the Hugging Face Hub at {silent.Endpoint} (no answer within 1 s; HF_HUB_ETAG_TIMEOUT sets the limit), and vocab.txt of model '{Repo}' " +
            $"(revision main) is not in the cache ({cache}). Connect to the network, set HF_ENDPOINT to a reachable mirror, or use a local folder (--model/--dataset accept paths).", e.Message);
        Assert.Single(warnings); // said at the first fallback, not again
    }

    /// <summary>The cache holds the model at main but not at the revision asked for, and the Hub does not answer:
    /// the model is not "not found (HTTP 404)", which only the Hub could say.</summary>
    [Fact]
    public void AModelRevisionMissingFromTheCacheOfASilentHubIsNotCalledNotFound()
    {
        var (_, cache) = Sandbox();
        WarmCache(cache);
        using var silent = new SilentServer();
        using var hub = new HubClient(new HubSettings(silent.Endpoint, cache, false, null) { EtagTimeout = TimeSpan.FromSeconds(1) });
        var e = Fails<HubException>(() => Sources.ResolveModel(Repo, hub, "v2"));
        Assert.Equal($"config.json of model '{Repo}' (revision v2) is not in the Hugging Face cache ({cache}), and the Hub at {silent.Endpoint} did not answer within 1 s (HF_HUB_ETAG_TIMEOUT)", e.Message);
    }

    [Fact]
    public void AHubThatAnswersIsAskedForEveryFileAndNothingIsSaid()
    {
        var (_, cache) = Sandbox();
        using var server = new MirrorServer(HfRoot);
        var warnings = new ConcurrentQueue<string>();
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null), warn: warnings.Enqueue);
        hub.Download(RepoType.Model, Repo, "config.json");
        // a 404 is an answer: the Hub still counts as answering, and the cached file is checked with it again
        Assert.Null(hub.Download(RepoType.Model, Repo, "added_tokens.json", optional: true));
        hub.Download(RepoType.Model, Repo, "config.json");
        Assert.Equal(2, server.Requests.Count(r => r == $"HEAD /{Repo}/resolve/main/config.json"));
        Assert.Empty(warnings);
    }

    // --- a complete .incomplete file ---

    [Fact]
    public void ACompleteIncompleteFileIsVerifiedAndMovedIntoPlace()
    {
        var (_, cache) = Sandbox();
        var original = Original("vocab.txt");
        var blobs = Path.Combine(cache, RepoFolderName, "blobs");
        Directory.CreateDirectory(blobs);
        File.WriteAllBytes(Path.Combine(blobs, Sha256(original) + ".incomplete"), original);
        using var server = new MirrorServer(HfRoot);
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        // the old client asked for bytes={length}- and failed on the 416 on every run
        string? got = null;
        Assert.Null(Outcome(() => got = hub.Download(RepoType.Model, Repo, "vocab.txt")));
        Assert.Equal(original, File.ReadAllBytes(got!));
        Assert.DoesNotContain(server.Requests, r => r.StartsWith("GET"));
        Assert.Equal(new[] { Path.Combine(blobs, Sha256(original)) }, Directory.GetFiles(blobs));
    }

    [Fact]
    public void ACompleteIncompleteFileWithOtherBytesIsDownloadedAgain()
    {
        var (_, cache) = Sandbox();
        var original = Original("vocab.txt");
        var blobs = Path.Combine(cache, RepoFolderName, "blobs");
        Directory.CreateDirectory(blobs);
        var damaged = (byte[])original.Clone();
        damaged[12345] ^= 0xff;
        File.WriteAllBytes(Path.Combine(blobs, Sha256(original) + ".incomplete"), damaged);
        using var server = new MirrorServer(HfRoot);
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        string? got = null;
        Assert.Null(Outcome(() => got = hub.Download(RepoType.Model, Repo, "vocab.txt")));
        Assert.Equal(original, File.ReadAllBytes(got!));
        Assert.Contains(server.Requests, r => r == $"GET /{Repo}/resolve/main/vocab.txt"); // from the start, no range
    }

    // --- a cache that cannot be written; offline with an empty cache ---

    [Fact]
    public void ACacheThatCannotBeWrittenGivesAHubException()
    {
        // The tests run as root, for whom chmod does not make a folder read-only; a cache whose
        // parent is a regular file cannot be created by anyone, which exercises the same path
        // (an IOException from the file system while storing).
        var parent = Path.Combine(TempDir(), "a-file");
        File.WriteAllText(parent, "");
        var cache = Path.Combine(parent, "hub");
        using var server = new MirrorServer(HfRoot);
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        var e = Fails<HubException>(() => hub.Download(RepoType.Model, Repo, "config.json"));
        Assert.Contains($"cannot write to the Hugging Face cache {cache}", e.Message);
        Assert.Contains("HF_HUB_CACHE", e.Message);
    }

    [Fact]
    public void AFullDiskIsCalledFullAndThePartialFileIsKeptWithItsSizeSaid()
    {
        // /dev/full fails every write with ENOSPC, as a full disk does: the download's partial file is made a link to it
        var (_, cache) = Sandbox();
        var original = Original("vocab.txt");
        var blobs = Path.Combine(cache, RepoFolderName, "blobs");
        Directory.CreateDirectory(blobs);
        string partial = Path.Combine(blobs, Sha256(original) + ".incomplete");
        File.CreateSymbolicLink(partial, "/dev/full");
        using var server = new MirrorServer(HfRoot);
        using var hub = new HubClient(new HubSettings(server.Endpoint, cache, false, null));
        var e = Fails<HubException>(() => hub.Download(RepoType.Model, Repo, "vocab.txt"));
        Assert.Contains($"the disk of the Hugging Face cache {cache} is full", e.Message);
        Assert.Contains($"The partial download {partial} holds ", e.Message); // (the link's own bytes here: a real one holds what arrived)
        Assert.Contains("delete it to free that space", e.Message);
        Assert.DoesNotContain("make it writable", e.Message);
        Assert.True(File.Exists(partial), "the partial file is kept, to resume");
        Assert.True(HubClient.IsDiskFull(new IOException("No space left on device", 28)));
        Assert.True(HubClient.IsDiskFull(new IOException("Disk quota exceeded", 122))); // EDQUOT: a cluster's quota is a full disk too
        Assert.False(HubClient.IsDiskFull(new IOException("Permission denied", 13)));
    }

    [Fact]
    public void OfflineWithAnEmptyCacheSaysSoForModelsAndDatasets()
    {
        var (_, cache) = Sandbox();
        using var hub = new HubClient(new HubSettings("http://127.0.0.1:9", cache, Offline: true, null));
        var m = Fails<HubException>(() => Sources.ResolveModel("tiny-org/tiny-bert", hub, "v1"));
        Assert.Contains("config.json of model 'tiny-org/tiny-bert' (revision v1) is not in the Hugging Face cache", m.Message);
        Assert.Contains("HF_HUB_OFFLINE", m.Message);
        Assert.DoesNotContain("HTTP 404", m.Message);   // not "404": the cache path holds a random GUID
        var d = Fails<HubException>(() => Sources.ResolveDataset("tiny-org/tiny-data", hub, "v1"));
        Assert.Contains("no train split of tiny-org/tiny-data (revision v1) is in the Hugging Face cache", d.Message);
        Assert.Contains("HF_HUB_OFFLINE", d.Message);
        Assert.Contains("train.parquet", d.Message);
        Assert.DoesNotContain("HTTP 404", d.Message);
    }
}
