using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace MixupBert.Tests.Training;

/// <summary>
/// A loopback HTTP server over folders laid out like the Hub's download URLs (../shared/hf and the
/// tests' own), started and stopped by the tests: HEAD and GET with byte ranges, an ETag (the file's
/// SHA-256, as the Hub's X-Linked-Etag for LFS files), no X-Repo-Commit (as the shared mirror), and
/// /redirect/... answering 302 to the same path without the prefix.
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
            string? file = roots.Select(r => Path.Combine(r, path.TrimStart('/'))).FirstOrDefault(File.Exists);
            if (file == null) { res.StatusCode = 404; return; }
            var bytes = File.ReadAllBytes(file);
            res.Headers["ETag"] = "\"" + Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant() + "\"";
            res.Headers["Accept-Ranges"] = "bytes";
            long start = 0;
            if (req.Headers["Range"] is string range && range.StartsWith("bytes=", StringComparison.Ordinal))
            {
                start = long.Parse(range["bytes=".Length..].Split('-')[0]);
                res.StatusCode = 206;
                res.Headers["Content-Range"] = $"bytes {start}-{bytes.Length - 1}/{bytes.Length}";
            }
            res.ContentLength64 = bytes.Length - start;
            if (req.HttpMethod == "HEAD") return;
            long count = bytes.Length - start;
            if (TruncateBodiesAt is long cut && cut < count) count = cut;
            res.OutputStream.Write(bytes, (int)start, (int)count);
            if (count < bytes.Length - start) { res.Abort(); return; }
        }
        catch (Exception) { /* client went away */ }
        finally { try { res.Close(); } catch (Exception) { } }
    }

    public void Dispose()
    {
        listener.Stop();
        listener.Close();
        try { loop.Wait(2000); } catch (Exception) { }
    }
}
