using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MixupBert.Tests.Hub;

/// <summary>
/// A loopback server that accepts TCP connections and never answers on them (a hung mirror, a proxy that
/// swallows requests): the Hub as the user met it when every file waited out HF_HUB_ETAG_TIMEOUT in turn.
/// It counts the connections and the requests that arrive (each request's header block, ended by an empty
/// line), so a test can tell how often the client asked.
/// </summary>
public sealed class SilentServer : IDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly List<TcpClient> held = [];
    private readonly Thread loop;
    private int connections, requests;

    public string Endpoint { get; }
    public int Connections => Volatile.Read(ref connections);
    public int Requests => Volatile.Read(ref requests);

    public SilentServer()
    {
        listener.Start();
        Endpoint = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
        // threads of its own, not the thread pool: the client blocks pool threads in its synchronous Send, and a
        // request read late is lost when the client gives up on it (its socket is reset, unread bytes dropped)
        loop = new Thread(Accept) { IsBackground = true };
        loop.Start();
    }

    /// <summary>The request count once the requests already sent have been read: a client that gave up on its
    /// request after its timeout has written it long before, so a short quiet time settles it.</summary>
    public int SettledRequests()
    {
        int seen = -1;
        for (var clock = System.Diagnostics.Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(5) && seen != Requests;)
        {
            seen = Requests;
            Thread.Sleep(300);
        }
        return Requests;
    }

    private void Accept()
    {
        while (true)
        {
            TcpClient client;
            try { client = listener.AcceptTcpClient(); }
            catch (Exception) { return; } // stopped
            Interlocked.Increment(ref connections);
            lock (held) held.Add(client);
            new Thread(() => Read(client)) { IsBackground = true }.Start();
        }
    }

    /// <summary>Reads what the client sends, counting the header blocks, and answers nothing.</summary>
    private void Read(TcpClient client)
    {
        var buffer = new byte[4096];
        var text = new StringBuilder();
        try
        {
            var stream = client.GetStream();
            for (int n; (n = stream.Read(buffer)) > 0;)
            {
                text.Append(Encoding.ASCII.GetString(buffer, 0, n));
                for (int end; (end = text.ToString().IndexOf("\r\n\r\n", StringComparison.Ordinal)) >= 0;)
                {
                    Interlocked.Increment(ref requests);
                    text.Remove(0, end + 4);
                }
            }
        }
        catch (Exception) { } // the client gave up and closed the connection, or the server was disposed
    }

    public void Dispose()
    {
        listener.Stop();
        lock (held) foreach (var c in held) c.Dispose();
        loop.Join(2000);
    }
}
