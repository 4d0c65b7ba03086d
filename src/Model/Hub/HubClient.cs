using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace MixupBert.Model.Hub;

public enum RepoType { Model, Dataset }

/// <summary>A download's progress, reported about twice a second and once at the end.</summary>
public readonly record struct DownloadProgress(string File, long Received, long? Total, double BytesPerSecond, bool Done);

/// <summary>A Hub problem the user can act on; the message says what to do.</summary>
public sealed class HubException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Where the Hub is and where its cache lives, read from the same environment variables as Python's
/// huggingface_hub: HF_ENDPOINT, HF_HUB_CACHE, HF_HOME, HF_HUB_OFFLINE, HF_TOKEN (or $HF_HOME/token).
/// </summary>
public sealed record HubSettings(string Endpoint, string CacheDir, bool Offline, string? Token)
{
    public static HubSettings FromEnvironment()
    {
        string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
        string home = Env("HF_HOME") ?? Path.Combine(Env("XDG_CACHE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");
        string cache = Env("HF_HUB_CACHE") ?? Env("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(home, "hub");
        bool offline = Env("HF_HUB_OFFLINE") is string o && o.ToLowerInvariant() is "1" or "true" or "yes" or "on";
        string? token = Env("HF_TOKEN");
        if (token == null && File.Exists(Path.Combine(home, "token"))) token = File.ReadAllText(Path.Combine(home, "token")).Trim();
        return new HubSettings((Env("HF_ENDPOINT") ?? "https://huggingface.co").TrimEnd('/'), cache, offline, token);
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
/// </summary>
public sealed partial class HubClient : IDisposable
{
    private readonly HttpClient http;
    private readonly Action<DownloadProgress>? progress;

    public HubSettings Settings { get; }

    public HubClient(HubSettings settings, Action<DownloadProgress>? progress = null, HttpMessageHandler? handler = null)
    {
        Settings = settings;
        this.progress = progress;
        http = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = true, MaxAutomaticRedirections = 10, ConnectTimeout = TimeSpan.FromSeconds(10) })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("mixup-bert/0.1");
        if (settings.Token != null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", settings.Token);
    }

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitHash();

    public string RepoFolder(RepoType type, string repoId) =>
        Path.Combine(Settings.CacheDir, (type == RepoType.Model ? "models--" : "datasets--") + repoId.Replace("/", "--"));

    public string Url(RepoType type, string repoId, string file, string revision) =>
        $"{Settings.Endpoint}/{(type == RepoType.Dataset ? "datasets/" : "")}{repoId}/resolve/{Uri.EscapeDataString(revision)}/{file}";

    /// <summary>The cached copy of a file, if the cache has it for this revision.</summary>
    public string? FromCache(RepoType type, string repoId, string file, string revision = "main")
    {
        string repo = RepoFolder(type, repoId);
        string commit = revision;
        if (!CommitHash().IsMatch(revision))
        {
            string refPath = Path.Combine(repo, "refs", revision);
            if (!File.Exists(refPath)) return null;
            commit = File.ReadAllText(refPath).Trim();
        }
        string path = Path.Combine(repo, "snapshots", commit, file);
        return File.Exists(path) ? path : null;
    }

    /// <summary>The local path of <paramref name="file"/>, downloading it if needed; null when the
    /// Hub says the file does not exist (404) and <paramref name="optional"/> is set.</summary>
    public string? Download(RepoType type, string repoId, string file, string revision = "main", bool optional = false, CancellationToken cancel = default)
    {
        string what = $"{file} of {(type == RepoType.Dataset ? "dataset" : "model")} '{repoId}' (revision {revision})";
        if (Settings.Offline)
        {
            var cached = FromCache(type, repoId, file, revision);
            if (cached != null || optional) return cached;
            throw new HubException($"{what} is not in the Hugging Face cache ({Settings.CacheDir}) and HF_HUB_OFFLINE is set: download it once online (unset HF_HUB_OFFLINE), or point HF_HUB_CACHE at a cache that has it");
        }

        string url = Url(type, repoId, file, revision);
        HttpResponseMessage head;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Head, url);
            request.Headers.AcceptEncoding.ParseAdd("identity");
            head = http.Send(request, HttpCompletionOption.ResponseHeadersRead, cancel);
        }
        catch (HttpRequestException e)
        {
            // like huggingface_hub: no connection, but the cache has it → use the cache
            var cached = FromCache(type, repoId, file, revision);
            if (cached != null) return cached;
            // an optional file of a repository we already have: carry on without it
            if (optional && Directory.Exists(Path.Combine(RepoFolder(type, repoId), "snapshots"))) return null;
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
            string? etag = Header(head, "X-Linked-Etag") ?? head.Headers.ETag?.Tag;
            if (etag != null) etag = etag.Replace("W/", "").Trim('"');
            long? size = long.TryParse(Header(head, "X-Linked-Size"), out long s) ? s : head.Content.Headers.ContentLength;

            string repo = RepoFolder(type, repoId);
            string blobs = Path.Combine(repo, "blobs");
            Directory.CreateDirectory(blobs);
            string? blob = etag != null ? Path.Combine(blobs, SafeName(etag)) : null;
            if (blob == null || !File.Exists(blob) || (size != null && new FileInfo(blob).Length != size))
                blob = Fetch(url, blobs, etag, size, what, cancel);

            string snapshot = Path.Combine(repo, "snapshots", commit, file);
            Directory.CreateDirectory(Path.GetDirectoryName(snapshot)!);
            Link(snapshot, blob);
            if (!CommitHash().IsMatch(revision))
            {
                Directory.CreateDirectory(Path.Combine(repo, "refs"));
                File.WriteAllText(Path.Combine(repo, "refs", revision), commit);
            }
            return snapshot;
        }
    }

    private static string? Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault() : null;

    private static string SafeName(string etag) => string.Concat(etag.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));

    /// <summary>Downloads into blobs/{etag}.incomplete (resuming it), checks the size, renames into place.</summary>
    private string Fetch(string url, string blobs, string? etag, long? size, string what, CancellationToken cancel)
    {
        string partial = Path.Combine(blobs, (etag != null ? SafeName(etag) : "download-" + Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(url)))[..16]) + ".incomplete");
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        if (size != null && have > size) { File.Delete(partial); have = 0; }
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.AcceptEncoding.ParseAdd("identity");
        if (have > 0) request.Headers.Range = new RangeHeaderValue(have, null);
        HttpResponseMessage response;
        try { response = http.Send(request, HttpCompletionOption.ResponseHeadersRead, cancel); }
        catch (HttpRequestException e) { throw new HubException($"{what}: download from {url} failed ({e.Message}); run again to resume", e); }
        using (response)
        {
            if (!response.IsSuccessStatusCode) throw new HubException($"{what}: download from {url} failed with HTTP {(int)response.StatusCode}");
            bool append = have > 0 && response.StatusCode == HttpStatusCode.PartialContent;
            if (!append) have = 0; // the server ignored the range: start over
            string name = Path.GetFileName(url);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            double lastReport = 0;
            long start = have;
            try
            {
                using var body = response.Content.ReadAsStream(cancel);
                using (var output = new FileStream(partial, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                {
                    var buffer = new byte[1 << 16];
                    int n;
                    while ((n = body.Read(buffer)) > 0)
                    {
                        cancel.ThrowIfCancellationRequested();
                        output.Write(buffer, 0, n);
                        have += n;
                        double t = sw.Elapsed.TotalSeconds;
                        if (t - lastReport >= 0.5) { lastReport = t; progress?.Invoke(new DownloadProgress(name, have, size, (have - start) / Math.Max(t, 1e-3), false)); }
                    }
                }
            }
            catch (IOException e) { throw new HubException($"{what}: the download from {url} broke off at {have} bytes ({e.Message}); run again to resume", e); }
            progress?.Invoke(new DownloadProgress(name, have, size, (have - start) / Math.Max(sw.Elapsed.TotalSeconds, 1e-3), true));
            if (size != null && have != size)
                throw new HubException($"{what}: received {have} bytes of {size} from {url}; the partial file is kept, run again to resume");
        }
        string final = etag != null ? Path.Combine(blobs, SafeName(etag)) : Path.Combine(blobs, Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(partial))).ToLowerInvariant());
        File.Move(partial, final, overwrite: true);
        return final;
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
