using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace MixupBert.Tests.Training;

/// <summary>
/// A loopback HTTP server over folders laid out like the Hub's download URLs (../shared/hf and the
/// tests' own), started and stopped by the tests: HEAD and GET with byte ranges, an ETag (the file's
/// SHA-256, as the Hub's X-Linked-Etag for LFS files), no X-Repo-Commit (as the shared mirror), and
/// /redirect/... answering 302 to the same path without the prefix. A range that starts at or past
/// the end gets 416, as the Hub's storage answers. For fault injection it can also misbehave: send
/// a chosen X-Repo-Commit, answer every path with the same bytes, or stall (before the headers of a
/// HEAD or GET, or in the middle of a GET body) until it is disposed.
/// </summary>
public sealed class MirrorServer : IDisposable
{
    private readonly HttpListener listener = new();
    private readonly string[] roots;
    private readonly Task loop;

    public string Endpoint { get; }
    public ConcurrentQueue<string> Requests { get; } = new();
    public ConcurrentQueue<string?> Authorizations { get; } = new();
    /// <summary>When set, GET bodies stop after this many bytes (a connection that breaks off).</summary>
    public long? TruncateBodiesAt { get; set; }
    /// <summary>When set, sent as X-Repo-Commit with every file (the real Hub sends the commit there).</summary>
    public string? RepoCommit { get; set; }
    /// <summary>When set, served for any path that has no file (a server that answers everything).</summary>
    public byte[]? AnyPath { get; set; }
    /// <summary>Whether GET /api/{datasets|models}/{repo}/tree/{revision} answers with the repository folder's
    /// files, as the Hub's tree API does (on by default; off, the server is a plain static mirror).</summary>
    public bool TreeApi { get; set; } = true;
    /// <summary>When set, the tree API answers in pages of this many entries, linked by a Link header.</summary>
    public int? TreePageSize { get; set; }

    /// <summary>"HEAD" or "GET": requests of that method get no answer at all until the server is disposed.</summary>
    public string? StallBeforeHeadersOn { get; set; }
    /// <summary>When set, GET bodies send this many bytes and then nothing until the server is disposed.</summary>
    public long? StallBodyAfter { get; set; }

    private readonly ManualResetEventSlim released = new();

    /// <summary>Set once an answer has begun to stall (for tests that act at that moment, not after a guessed delay).</summary>
    public ManualResetEventSlim Stalled { get; } = new();

    /// <summary>A stalled answer waits here: until Dispose, and never more than a minute.</summary>
    private void Stall()
    {
        Stalled.Set();
        released.Wait(TimeSpan.FromMinutes(1));
    }

    public MirrorServer(params string[] roots)
    {
        this.roots = roots;
        int port = FreePort();
        Endpoint = $"http://127.0.0.1:{port}";
        listener.Prefixes.Add(Endpoint + "/");
        listener.Start();
        loop = Task.Run(Serve);
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private async Task Serve()
    {
        while (listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await listener.GetContextAsync(); }
            catch (Exception) { return; }
            _ = Task.Run(() => Handle(ctx));
        }
    }

    private void Handle(HttpListenerContext ctx)
    {
        var req = ctx.Request; var res = ctx.Response;
        string path = Uri.UnescapeDataString(req.Url!.AbsolutePath);
        Requests.Enqueue($"{req.HttpMethod} {path}{(req.Headers["Range"] is string r ? " " + r : "")}");
        Authorizations.Enqueue(req.Headers["Authorization"]);
        try
        {
            if (path.StartsWith("/redirect/", StringComparison.Ordinal))
            {
                res.StatusCode = 302;
                res.RedirectLocation = path["/redirect".Length..];
                return;
            }
            if (StallBeforeHeadersOn == req.HttpMethod) { Stall(); return; }
            if (path.StartsWith("/api/", StringComparison.Ordinal)) { Tree(req, res, path); return; }
            string? file = roots.Select(r => Path.Combine(r, path.TrimStart('/'))).FirstOrDefault(File.Exists);
            if (file == null && AnyPath == null) { res.StatusCode = 404; return; }
            var bytes = file != null ? File.ReadAllBytes(file) : AnyPath!;
            res.Headers["ETag"] = "\"" + Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant() + "\"";
            res.Headers["Accept-Ranges"] = "bytes";
            if (RepoCommit != null) res.Headers["X-Repo-Commit"] = RepoCommit;
            long start = 0;
            if (req.Headers["Range"] is string range && range.StartsWith("bytes=", StringComparison.Ordinal))
            {
                start = long.Parse(range["bytes=".Length..].Split('-')[0]);
                if (start >= bytes.Length)
                {
                    res.StatusCode = 416;
                    res.Headers["Content-Range"] = $"bytes */{bytes.Length}";
                    return;
                }
                res.StatusCode = 206;
                res.Headers["Content-Range"] = $"bytes {start}-{bytes.Length - 1}/{bytes.Length}";
            }
            res.ContentLength64 = bytes.Length - start;
            if (req.HttpMethod == "HEAD") return;
            long count = bytes.Length - start;
            if (TruncateBodiesAt is long cut && cut < count) count = cut;
            if (StallBodyAfter is long stall && stall < count)
            {
                res.OutputStream.Write(bytes, (int)start, (int)stall);
                res.OutputStream.Flush();
                Stall();
                res.Abort();
                return;
            }
            res.OutputStream.Write(bytes, (int)start, (int)count);
            if (count < bytes.Length - start) { res.Abort(); return; }
        }
        catch (Exception) { /* client went away */ }
        finally { try { res.Close(); } catch (Exception) { } }
    }

    /// <summary>The tree API: /api/datasets/org/name/tree/revision (or /api/models/…) lists, recursively, the
    /// files under {root}/[datasets/]org/name/resolve/revision as the Hub does ([{"type": "file", "path": …}]),
    /// in pages when TreePageSize is set (?cursor=N, and a Link header to the next page).</summary>
    private void Tree(HttpListenerRequest req, HttpListenerResponse res, string path)
    {
        var m = System.Text.RegularExpressions.Regex.Match(path, "^/api/(datasets|models)/([^/]+/[^/]+)/tree/(.+)$");
        if (!TreeApi || !m.Success) { res.StatusCode = 404; return; }
        string relative = (m.Groups[1].Value == "datasets" ? "datasets/" : "") + m.Groups[2].Value + "/resolve/" + m.Groups[3].Value;
        string? folder = roots.Select(r => Path.Combine(r, relative)).FirstOrDefault(Directory.Exists);
        if (folder == null) { res.StatusCode = 404; return; }
        var entries = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/')).Order(StringComparer.Ordinal)
            .Select(f => new Dictionary<string, object> { ["type"] = "file", ["oid"] = "0", ["size"] = new FileInfo(Path.Combine(folder, f)).Length, ["path"] = f })
            .Prepend(new Dictionary<string, object> { ["type"] = "directory", ["oid"] = "0", ["size"] = 0, ["path"] = "data" })
            .ToList();
        int start = int.TryParse(req.QueryString["cursor"], out int c) ? c : 0;
        int count = TreePageSize ?? entries.Count;
        if (start + count < entries.Count)
            res.Headers["Link"] = $"<{Endpoint}{req.Url!.AbsolutePath}?recursive=true&cursor={start + count}>; rel=\"next\"";
        var bytes = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(entries.Skip(start).Take(count));
        res.ContentType = "application/json";
        res.ContentLength64 = bytes.Length;
        res.OutputStream.Write(bytes);
    }

    public void Dispose()
    {
        released.Set();
        listener.Stop();
        listener.Close();
        try { loop.Wait(2000); } catch (Exception) { }
    }
}
