using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace MixupBert.Model.Hub;

public enum RepoType { Model, Dataset }

/// <summary>A download's progress, reported about twice a second and once at the end.</summary>
public readonly record struct DownloadProgress(string File, long Received, long? Total, double BytesPerSecond, bool Done)
{
    /// <summary>"612 B", "48.2 KB", "438.0 MB", "1.34 GB": decimal units, as the Hub lists file sizes.</summary>
    public static string Size(double bytes)
    {
        var (unit, name, format) = UnitOf(bytes);
        return $"{(bytes / unit).ToString(format, CultureInfo.InvariantCulture)} {name}";
    }

    /// <summary>"12.0/438.0 MB", "300/612 B": both in the unit of the total (a small file in MB read 0.0/0.0);
    /// only what was received where the size is unknown.</summary>
    public string Sizes()
    {
        if (Total is not long total) return Size(Received);
        var (unit, name, format) = UnitOf(total);
        return $"{(Received / unit).ToString(format, CultureInfo.InvariantCulture)}/{(total / unit).ToString(format, CultureInfo.InvariantCulture)} {name}";
    }

    /// <summary>The unit a size is shown in: the largest below which it still rounds (999 999 bytes is 1.0 MB, not 1000.0 KB).</summary>
    private static (double Unit, string Name, string Format) UnitOf(double bytes) =>
        bytes < 999.5 ? (1, "B", "F0") : bytes < 999.95e3 ? (1e3, "KB", "F1") : bytes < 999.95e6 ? (1e6, "MB", "F1") : (1e9, "GB", "F2");
}

/// <summary>A Hub problem the user can act on; the message says what to do.</summary>
public sealed class HubException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Where the Hub is and where its cache lives, read from the same environment variables as Python's
/// huggingface_hub: HF_ENDPOINT, HF_HUB_CACHE, HF_HOME, HF_HUB_OFFLINE, HF_TOKEN (or $HF_HOME/token),
/// HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT (seconds).
/// </summary>
public sealed record HubSettings(string Endpoint, string CacheDir, bool Offline, string? Token)
{
    /// <summary>huggingface_hub's DEFAULT_ETAG_TIMEOUT and DEFAULT_DOWNLOAD_TIMEOUT (constants.py): 10 s.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long the metadata request (HEAD) may wait for an answer; past it the Hub counts as
    /// unreachable and the cache is used, as in huggingface_hub.</summary>
    public TimeSpan EtagTimeout { get; init; } = DefaultTimeout;

    /// <summary>How long a download may wait for its headers or for the next bytes of its body.</summary>
    public TimeSpan DownloadTimeout { get; init; } = DefaultTimeout;

    public static HubSettings FromEnvironment()
    {
        string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
        string home = Env("HF_HOME") ?? Path.Combine(Env("XDG_CACHE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");
        string cache = Env("HF_HUB_CACHE") ?? Env("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(home, "hub");
        bool offline = Env("HF_HUB_OFFLINE") is string o && o.ToLowerInvariant() is "1" or "true" or "yes" or "on";
        string? token = Env("HF_TOKEN");
        if (token == null && File.Exists(Path.Combine(home, "token"))) token = File.ReadAllText(Path.Combine(home, "token")).Trim();
        return new HubSettings((Env("HF_ENDPOINT") ?? "https://huggingface.co").TrimEnd('/'), cache, offline, token)
        {
            EtagTimeout = Seconds("HF_HUB_ETAG_TIMEOUT", Env("HF_HUB_ETAG_TIMEOUT")),
            DownloadTimeout = Seconds("HF_HUB_DOWNLOAD_TIMEOUT", Env("HF_HUB_DOWNLOAD_TIMEOUT")),
        };
    }

    /// <summary>A timeout in seconds; unset or 0 means the default, as huggingface_hub's `_as_int(...) or DEFAULT`.</summary>
    private static TimeSpan Seconds(string variable, string? value)
    {
        if (value == null) return DefaultTimeout;
        if (!double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double s) || s < 0 || s > int.MaxValue)
            throw new HubException($"{variable}={value} is not a number of seconds");
        return s == 0 ? DefaultTimeout : TimeSpan.FromSeconds(s);
    }
}

/// <summary>
/// Downloads files from the Hugging Face Hub the way huggingface_hub does, into the same cache
/// layout, so files fetched by Python are reused here and the other way round:
/// {cache}/{models|datasets}--{org}--{name}/blobs/{etag}, snapshots/{commit}/{file} (a relative
/// symlink to the blob) and refs/{revision} (the commit). Downloads go to blobs/{etag}.incomplete,
/// resume from it with a Range request, are checked against the announced size and renamed into
/// place only when complete. A server that sends no X-Repo-Commit is cached under the revision's
/// name; one that sends no ETag, under the file's SHA-256.
/// Every name that becomes a path (repository id, revision, file, the server's commit and ETag, a
/// ref file's contents) is validated and the path checked to stay inside the cache. Every wait on
/// the network is bounded (<see cref="HubSettings.EtagTimeout"/>, <see cref="HubSettings.DownloadTimeout"/>)
/// and ends at once when the caller's token is cancelled (Ctrl-C), with an OperationCanceledException.
/// Once the Hub has not answered (a timeout, or no connection), the client does not ask it again for
/// what the cache can answer: one client serves one command run, and each file waiting out its own
/// timeout made a silent Hub cost HF_HUB_ETAG_TIMEOUT per file.
/// </summary>
public sealed class HubClient : IDisposable
{
    private readonly HttpClient http;
    private readonly Action<DownloadProgress>? progress;
    private readonly Action<string>? warn;
    /// <summary>Why the Hub counts as not answering (a request timed out or could not connect), or null while
    /// it answers. Set once (Interlocked) and kept: files the cache can answer are then not asked for again; a
    /// thread that reads it late asks once more, no harm.</summary>
    private string? notAnswering;
    private int toldCacheUsed;

    /// <summary>Why the Hub counts as not answering in this run ("did not answer within 10 s ..."), or null.</summary>
    public string? NotAnsweringReason => Volatile.Read(ref notAnswering);

    public HubSettings Settings { get; }

    /// <param name="warn">Told, once, that the Hub did not answer and the cache is used instead (a line for the
    /// console and the run's log).</param>
    public HubClient(HubSettings settings, Action<DownloadProgress>? progress = null, HttpMessageHandler? handler = null, Action<string>? warn = null)
    {
        Settings = settings;
        this.progress = progress;
        this.warn = warn;
        // no client-wide timeout: each request gets its own (Send), and body reads theirs (ReadChunk)
        http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = true, MaxAutomaticRedirections = 10 })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("mixup-bert/0.1");
        if (settings.Token != null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", settings.Token);
    }

    public string RepoFolder(RepoType type, string repoId)
    {
        HubNames.CheckRepoId(repoId);
        return Path.Combine(Settings.CacheDir, (type == RepoType.Model ? "models--" : "datasets--") + repoId.Replace("/", "--"));
    }

    public string Url(RepoType type, string repoId, string file, string revision) =>
        $"{Settings.Endpoint}/{(type == RepoType.Dataset ? "datasets/" : "")}{repoId}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}";

    /// <summary>The cached copy of a file, if the cache has it for this revision.</summary>
    public string? FromCache(RepoType type, string repoId, string file, string revision = "main")
    {
        CheckNames(repoId, file, revision);
        if (CachedCommit(type, repoId, revision) is not string commit) return null;
        string repo = RepoFolder(type, repoId);
        string path = HubNames.Inside(repo, Path.Combine(repo, "snapshots", commit, file), $"{file} (revision {revision})");
        return File.Exists(path) ? path : null;
    }

    /// <summary>The commit the cache holds for a revision (its refs/ file, or the revision itself when it is
    /// a commit), or null when the cache has none.</summary>
    private string? CachedCommit(RepoType type, string repoId, string revision)
    {
        if (HubNames.IsCommit(revision)) return revision;
        string repo = RepoFolder(type, repoId);
        string refPath = HubNames.Inside(repo, Path.Combine(repo, "refs", revision), $"revision '{revision}'");
        if (!File.Exists(refPath)) return null;
        string commit = File.ReadAllText(refPath).Trim();
        // a commit, or the revision itself where the server named no commit (see Download)
        if (!HubNames.IsCommit(commit) && commit != revision)
            throw new HubException($"the cache's ref file {refPath} holds '{commit}', which is not a commit hash (40 lowercase hex digits): delete it and run again online");
        return commit;
    }

    /// <summary>The local path of <paramref name="file"/>, downloading it if needed; null when the
    /// Hub says the file does not exist (404) and <paramref name="optional"/> is set.</summary>
    public string? Download(RepoType type, string repoId, string file, string revision = "main", bool optional = false, CancellationToken cancel = default)
    {
        CheckNames(repoId, file, revision);
        string what = $"{file} of {(type == RepoType.Dataset ? "dataset" : "model")} '{repoId}' (revision {revision})";
        if (Settings.Offline)
        {
            var cached = FromCache(type, repoId, file, revision);
            if (cached != null || optional) return cached;
            throw new HubException($"{what} is not in the Hugging Face cache ({Settings.CacheDir}) and HF_HUB_OFFLINE is set: download it once online (unset HF_HUB_OFFLINE), or point HF_HUB_CACHE at a cache that has it");
        }

        // the Hub did not answer earlier in this run: what the cache has is used without waiting on it again
        if (notAnswering != null && CacheAnswers(type, repoId, file, revision, optional, out string? known)) return known;

        string url = Url(type, repoId, file, revision);
        HttpResponseMessage head;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Head, url);
            request.Headers.AcceptEncoding.ParseAdd("identity");
            head = Send(request, Settings.EtagTimeout, "HF_HUB_ETAG_TIMEOUT", cancel);
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutException)
        {
            NotAnswering(e);
            // like huggingface_hub: no connection (or no answer in time), but the cache has it → use the cache
            if (CacheAnswers(type, repoId, file, revision, optional, out string? cached)) return cached;
            throw new HubException($"cannot reach the Hugging Face Hub at {Settings.Endpoint} ({e.Message}), and {what} is not in the cache ({Settings.CacheDir}). Connect to the network, set HF_ENDPOINT to a reachable mirror, or use a local folder (--model/--dataset accept paths).", e);
        }
        using (head)
        {
            if (head.StatusCode == HttpStatusCode.NotFound)
            {
                if (optional) return null;
                throw new HubException($"{what} was not found at {url} (HTTP 404): check the id, the file name and the revision");
            }
            if (head.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                throw new HubException($"{what}: access denied at {url} (HTTP {(int)head.StatusCode}): for a gated or private repository set HF_TOKEN to a token that can read it");
            if (!head.IsSuccessStatusCode)
                throw new HubException($"{what}: the Hub answered HTTP {(int)head.StatusCode} for {url}");

            string commit = Header(head, "X-Repo-Commit") ?? revision;
            if (!HubNames.IsCommit(commit) && commit != revision)
                throw new HubException($"{what}: the server at {Settings.Endpoint} sent X-Repo-Commit '{commit}', which is not a commit hash (40 lowercase hex digits); nothing was written");
            string? etag = Header(head, "X-Linked-Etag") ?? head.Headers.ETag?.Tag;
            if (etag != null) etag = etag.Replace("W/", "").Trim('"');
            long? size = long.TryParse(Header(head, "X-Linked-Size"), out long s) ? s : head.Content.Headers.ContentLength;
            try { return Store(type, repoId, file, revision, commit, etag, size, url, what, cancel); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new HubException(IsDiskFull(e)
                    ? $"{what}: the disk of the Hugging Face cache {Settings.CacheDir} is full ({e.Message}): free space there, or set HF_HUB_CACHE to a folder on a disk with room"
                    : $"{what}: cannot write to the Hugging Face cache {Settings.CacheDir} ({e.Message}): make it writable, or set HF_HUB_CACHE to a folder that is", e);
            }
        }
    }

    /// <summary>The most bytes one page of a file listing may have (the Hub's pages are far smaller).</summary>
    private const int MaxListingBytes = 64 << 20;

    /// <summary>
    /// The repository's files (paths inside it, '/'-separated) at <paramref name="revision"/>, from the
    /// Hub's tree API as huggingface_hub's list_repo_tree reads it (GET /api/{datasets|models}/{repo}/tree/
    /// {revision}?recursive=true, following the Link header's next pages). Offline, or when the Hub cannot
    /// be reached, the files of the cached snapshot of that revision. Null where there is no listing: the
    /// server has no such API (a plain static mirror answers 404) and the cache has no snapshot.
    /// </summary>
    public IReadOnlyList<string>? ListFiles(RepoType type, string repoId, string revision = "main", CancellationToken cancel = default)
    {
        CheckNames(repoId, "x", revision);
        if (Settings.Offline) return CachedFiles(type, repoId, revision);
        // as Download: the Hub did not answer earlier in this run, and the cache has a snapshot to list
        if (notAnswering != null && CachedFiles(type, repoId, revision) is { } known) { TellCacheUsed(); return known; }
        string? url = $"{Settings.Endpoint}/api/{(type == RepoType.Dataset ? "datasets" : "models")}/{repoId}/tree/{Uri.EscapeDataString(revision)}?recursive=true";
        var files = new List<string>();
        string what = $"the file list of {(type == RepoType.Dataset ? "dataset" : "model")} '{repoId}' (revision {revision})";
        try
        {
            for (int page = 0; url != null; page++)
            {
                if (page >= 1000) throw new HubException($"{what}: more than 1000 pages");
                using var request = new HttpRequestMessage(HttpMethod.Get, url);
                using var response = Send(request, Settings.EtagTimeout, "HF_HUB_ETAG_TIMEOUT", cancel);
                if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                    throw new HubException($"{what}: access denied at {url} (HTTP {(int)response.StatusCode}): for a gated or private repository set HF_TOKEN to a token that can read it");
                if (!response.IsSuccessStatusCode) return page == 0 ? CachedFiles(type, repoId, revision) : throw new HubException($"{what}: the Hub answered HTTP {(int)response.StatusCode} for {url}");
                using var body = response.Content.ReadAsStream(cancel);
                using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                var bytes = new MemoryStream();
                var buffer = new byte[81920];
                // as a download's body: a server that stalls or breaks off mid-page is an error naming it, not a hang
                for (int n; (n = ReadChunk(body, buffer, timer, cancel, url, bytes.Length, what)) > 0;)
                {
                    bytes.Write(buffer, 0, n);
                    if (bytes.Length > MaxListingBytes) throw new HubException($"{what}: a page of more than {MaxListingBytes >> 20} MB from {url}");
                }
                files.AddRange(TreeFiles(bytes.ToArray(), what));
                string? next = NextPage(response);
                Uri? nextUrl = null;
                if (next != null && !Uri.TryCreate(new Uri(url), next, out nextUrl))
                    throw new HubException($"{what}: the Hub's next page '{next}' is not an address");
                url = nextUrl?.ToString();   // absolute or relative
            }
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutException)
        {
            NotAnswering(e);
            // as Download: no connection, the cache then answers
            var cached = CachedFiles(type, repoId, revision);
            if (cached != null) TellCacheUsed();
            return cached;
        }
        return files;
    }

    /// <summary>What the cache answers in place of the Hub: the cached file, or, for an optional file of a repository
    /// the cache has, none (null, to carry on without it). False where it has no answer.</summary>
    private bool CacheAnswers(RepoType type, string repoId, string file, string revision, bool optional, out string? path)
    {
        path = FromCache(type, repoId, file, revision);
        if (path == null && !(optional && Directory.Exists(Path.Combine(RepoFolder(type, repoId), "snapshots")))) return false;
        TellCacheUsed();
        return true;
    }

    /// <summary>Marks the Hub as not answering for the rest of this client's life; the first reason is kept.</summary>
    private void NotAnswering(Exception e) =>
        Interlocked.CompareExchange(ref notAnswering, e is TimeoutException
            ? $"did not answer within {Settings.EtagTimeout.TotalSeconds:0.#} s (HF_HUB_ETAG_TIMEOUT)"
            : $"could not be reached ({e.Message})", null);

    /// <summary>Says, the first time only, that the cache stands in for a Hub that does not answer: the user learns
    /// why the run waited and that its files were not checked against the Hub.</summary>
    private void TellCacheUsed()
    {
        if (Interlocked.Exchange(ref toldCacheUsed, 1) == 0)
            warn?.Invoke($"the Hugging Face Hub at {Settings.Endpoint} {notAnswering}: using the cached files ({Settings.CacheDir}), without asking it again in this run (HF_HUB_OFFLINE=1 does not ask at all)");
    }

    /// <summary>The "path" of each entry of type "file" in a tree API page (a JSON array).</summary>
    private static IEnumerable<string> TreeFiles(byte[] json, string what)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Array) throw new HubException($"{what}: the Hub's answer is not a list of files");
            return doc.RootElement.EnumerateArray()
                .Where(e => e.ValueKind == System.Text.Json.JsonValueKind.Object && e.TryGetProperty("type", out var t) && t.ValueEquals("file")
                    && e.TryGetProperty("path", out var p) && p.ValueKind == System.Text.Json.JsonValueKind.String)
                .Select(e => e.GetProperty("path").GetString()!).ToList();
        }
        catch (System.Text.Json.JsonException e) { throw new HubException($"{what}: the Hub's answer is not JSON ({e.Message})", e); }
    }

    /// <summary>The Link header's rel="next" address (the tree API's pagination), or null.</summary>
    private static string? NextPage(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Link", out var links)) return null;
        foreach (var link in links.SelectMany(l => l.Split(',')))
        {
            var m = System.Text.RegularExpressions.Regex.Match(link, "<([^>]+)>\\s*;\\s*rel=\"?next\"?");
            if (m.Success) return m.Groups[1].Value;
        }
        return null;
    }

    /// <summary>The files of the cached snapshot of a revision (paths inside the repository), or null.</summary>
    private IReadOnlyList<string>? CachedFiles(RepoType type, string repoId, string revision)
    {
        if (CachedCommit(type, repoId, revision) is not string commit) return null;
        string repo = RepoFolder(type, repoId);
        string snapshot = HubNames.Inside(repo, Path.Combine(repo, "snapshots", commit), $"revision {revision}");
        if (!Directory.Exists(snapshot)) return null;
        return Directory.EnumerateFiles(snapshot, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(snapshot, f).Replace(Path.DirectorySeparatorChar, '/')).Order(StringComparer.Ordinal).ToList();
    }

    private static void CheckNames(string repoId, string file, string revision)
    {
        HubNames.CheckRepoId(repoId);
        HubNames.CheckRevision(revision);
        HubNames.CheckFileName(file);
    }

    /// <summary>The blob (downloaded unless the cache has it), the snapshot link to it and the ref.</summary>
    private string Store(RepoType type, string repoId, string file, string revision, string commit, string? etag, long? size, string url, string what, CancellationToken cancel)
    {
        string repo = RepoFolder(type, repoId);
        // all three checked before anything is created, so a bad name leaves the cache as it was
        string snapshot = HubNames.Inside(repo, Path.Combine(repo, "snapshots", commit, file), $"{what} (commit {commit})");
        string refPath = HubNames.Inside(repo, Path.Combine(repo, "refs", revision), $"revision '{revision}'");
        string blobs = Path.Combine(repo, "blobs");
        string? blob = etag != null ? HubNames.Inside(blobs, Path.Combine(blobs, BlobName(etag, what)), $"{what} (ETag {etag})") : null;

        Directory.CreateDirectory(blobs);
        if (blob == null || !File.Exists(blob) || (size != null && new FileInfo(blob).Length != size))
            blob = Fetch(url, blobs, etag, size, file, what, cancel);

        Directory.CreateDirectory(Path.GetDirectoryName(snapshot)!);
        Link(snapshot, blob);
        if (!HubNames.IsCommit(revision))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(refPath)!);
            File.WriteAllText(refPath, commit);
        }
        return snapshot;
    }

    private static string? Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault() : null;

    /// <summary>The ETag as a file name: other characters become '_'; one that would be empty or
    /// hidden ('.', '..') is refused.</summary>
    private static string BlobName(string etag, string what)
    {
        string name = string.Concat(etag.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
        if (name.Length == 0 || name[0] == '.')
            throw new HubException($"{what}: the server sent the ETag '{etag}', which cannot name a file in the cache");
        return name;
    }

    /// <summary>Sends a request and waits for its headers, at most <paramref name="timeout"/>
    /// (then a TimeoutException naming <paramref name="variable"/>) and no longer than the caller's
    /// token allows (then an OperationCanceledException).</summary>
    private HttpResponseMessage Send(HttpRequestMessage request, TimeSpan timeout, string variable, CancellationToken cancel)
    {
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        timer.CancelAfter(timeout);
        try { return http.Send(request, HttpCompletionOption.ResponseHeadersRead, timer.Token); }
        catch (OperationCanceledException e) when (!cancel.IsCancellationRequested)
        {
            throw new TimeoutException($"no answer within {timeout.TotalSeconds:0.#} s; {variable} sets the limit", e);
        }
    }

    /// <summary>The next bytes of a download's body: the synchronous Read of a response stream
    /// cannot be cancelled, so this waits on ReadAsync, whose cancellation aborts the connection.</summary>
    private int ReadChunk(Stream body, byte[] buffer, CancellationTokenSource timer, CancellationToken cancel, string url, long have, string what)
    {
        timer.CancelAfter(Settings.DownloadTimeout); // restarts the clock: the limit is on silence, not on the whole file
        try { return body.ReadAsync(buffer, timer.Token).AsTask().GetAwaiter().GetResult(); }
        catch (OperationCanceledException e) when (!cancel.IsCancellationRequested)
        {
            throw new HubException($"{what}: the download from {url} stalled at {have} bytes (nothing for {Settings.DownloadTimeout.TotalSeconds:0.#} s; HF_HUB_DOWNLOAD_TIMEOUT sets the limit); the partial file is kept, run again to resume", e);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw new HubException($"{what}: the download from {url} broke off at {have} bytes ({e.Message}); run again to resume", e);
        }
    }

    /// <summary>Downloads into blobs/{etag}.incomplete (resuming it), checks the size, renames into place.</summary>
    private string Fetch(string url, string blobs, string? etag, long? size, string file, string what, CancellationToken cancel)
    {
        string partial = Path.Combine(blobs, (etag != null ? BlobName(etag, what) : "download-" + Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(url)))[..16]) + ".incomplete");
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        // a partial file only resumes when its end is known: too long, or no size to compare with, starts over
        if (have > 0 && (size == null || have > size)) { File.Delete(partial); have = 0; }
        if (have > 0 && have == size)
        {
            // all bytes arrived but the rename did not happen: asking for more would get HTTP 416
            if (MatchesEtag(partial, etag)) return MoveIntoPlace(partial, blobs, etag, what);
            File.Delete(partial); have = 0;
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.AcceptEncoding.ParseAdd("identity");
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        HttpResponseMessage response;
        try { response = Send(request, Settings.DownloadTimeout, "HF_HUB_DOWNLOAD_TIMEOUT", cancel); }
        catch (Exception e) when (e is HttpRequestException or TimeoutException) { throw new HubException($"{what}: download from {url} failed ({e.Message}); run again to resume", e); }
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
            {
                // the partial file does not fit what the server has now: start over once
                File.Delete(partial);
                return Fetch(url, blobs, etag, size, file, what, cancel);
            }
            if (!response.IsSuccessStatusCode) throw new HubException($"{what}: download from {url} failed with HTTP {(int)response.StatusCode}");
            bool append = have > 0 && response.StatusCode == HttpStatusCode.PartialContent;
            if (append && response.Content.Headers.ContentRange?.From != have)
                throw new HubException($"{what}: {url} answered a range other than the one asked for (from byte {have}); run again");
            if (!append) have = 0; // the server ignored the range: start over
            try { have = Receive(response, partial, append, have, size, url, Path.GetFileName(file), what, cancel); }
            catch (IOException e) when (IsDiskFull(e))
            {
                // kept, as huggingface_hub keeps it, so that the download resumes; but it may be what filled the disk
                long kept = File.Exists(partial) ? new FileInfo(partial).Length : 0;
                throw new HubException($"{what}: the disk of the Hugging Face cache {Settings.CacheDir} is full ({e.Message}). The partial download " +
                    $"{partial} holds {DownloadProgress.Size(kept)}: it is kept so that a run resumes it once there is space; delete it to free that space now, " +
                    "or set HF_HUB_CACHE to a folder on a disk with room", e);
            }
            if (size != null && have != size)
                throw new HubException($"{what}: received {have} bytes of {size} from {url}; the partial file is kept, run again to resume");
        }
        return MoveIntoPlace(partial, blobs, etag, what);
    }

    /// <summary>A full disk: ENOSPC on Linux and macOS (the IOException's HResult is the errno), a quota exceeded
    /// (EDQUOT: 122 on Linux, 69 on macOS; common on clusters' home and scratch), ERROR_DISK_FULL or
    /// ERROR_HANDLE_DISK_FULL on Windows.</summary>
    public static bool IsDiskFull(Exception e) => e is IOException && e.HResult is 28 or 122 or 69 or unchecked((int)0x80070070) or unchecked((int)0x80070027);

    /// <summary>Writes the body to the partial file, reporting progress; returns its length.</summary>
    private long Receive(HttpResponseMessage response, string partial, bool append, long have, long? size, string url, string name, string what, CancellationToken cancel)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        double lastReport = 0;
        long start = have;
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        using var body = response.Content.ReadAsStream(cancel);
        using (var output = new FileStream(partial, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            var buffer = new byte[1 << 16];
            int n;
            while ((n = ReadChunk(body, buffer, timer, cancel, url, have, what)) > 0)
            {
                output.Write(buffer, 0, n);
                have += n;
                double t = sw.Elapsed.TotalSeconds;
                if (t - lastReport >= 0.5) { lastReport = t; progress?.Invoke(new DownloadProgress(name, have, size, (have - start) / Math.Max(t, 1e-3), false)); }
            }
        }
        progress?.Invoke(new DownloadProgress(name, have, size, (have - start) / Math.Max(sw.Elapsed.TotalSeconds, 1e-3), true));
        return have;
    }

    private static string MoveIntoPlace(string partial, string blobs, string? etag, string what)
    {
        string final = Path.Combine(blobs, etag != null ? BlobName(etag, what) : Sha256Hex(partial));
        File.Move(partial, final, overwrite: true);
        return final;
    }

    private static string Sha256Hex(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    /// <summary>Whether a file's bytes are what the ETag names. The Hub's ETag is the SHA-256 of an LFS
    /// file and the git blob SHA-1 of any other (huggingface_hub's hf_hub_url docs); another form of
    /// ETag cannot be checked, and the size (already equal) is all there is.</summary>
    private static bool MatchesEtag(string path, string? etag)
    {
        if (etag == null) return true;
        if (etag.Length == 64 && etag.All(char.IsAsciiHexDigitLower)) return Sha256Hex(path) == etag;
        if (etag.Length == 40 && etag.All(char.IsAsciiHexDigitLower)) return GitBlobSha1(path) == etag;
        return true;
    }

    /// <summary>git's object id of a file: SHA-1 of "blob {length}\0" followed by the bytes.</summary>
    private static string GitBlobSha1(string path)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        using var f = File.OpenRead(path);
        sha.AppendData(System.Text.Encoding.ASCII.GetBytes($"blob {f.Length}\0"));
        var buffer = new byte[1 << 16];
        int n;
        while ((n = f.Read(buffer)) > 0) sha.AppendData(buffer, 0, n);
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>snapshots/.../file → a relative symlink to the blob, as huggingface_hub makes; a copy where links are not allowed.</summary>
    private static void Link(string snapshot, string blob)
    {
        if (File.Exists(snapshot) || new FileInfo(snapshot).LinkTarget != null) File.Delete(snapshot);
        string relative = Path.GetRelativePath(Path.GetDirectoryName(snapshot)!, blob);
        try { File.CreateSymbolicLink(snapshot, relative); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException) { File.Copy(blob, snapshot, overwrite: true); }
    }

    public void Dispose() => http.Dispose();
}
