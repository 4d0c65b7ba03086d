using System.Diagnostics;
using System.Runtime.InteropServices;
using MixupBert.Tests.Training;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Hub;

/// <summary>
/// `mixup-bert train` against a misbehaving Hub, as a user meets it: the timeouts read from the
/// environment, Ctrl-C during a stalled download, a cache that cannot be written. Each run has a
/// short time limit, after which it is killed and the test fails (the old client hung here).
/// </summary>
public class HubCliFaultTests
{
    private const string Repo = "sentence-transformers/all-MiniLM-L6-v2";
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    private static string[] Train(string output) =>
        ["train", "--model", Repo, "--dataset", "rotten_tomatoes", "--output", output, "--backend", "cpu", "--threads", "1"];

    private sealed record Result(int ExitCode, string Stderr, TimeSpan Elapsed);

    /// <summary>Runs mixup-bert; when <paramref name="interruptWhen"/> holds, sends it SIGINT (Ctrl-C).</summary>
    private static Result Run(Dictionary<string, string?> env, string[] args, Func<bool>? interruptWhen = null)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mixup-bert.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var name in new[] { "HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "HF_TOKEN", "HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT" }) psi.Environment.Remove(name);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (interruptWhen != null)
        {
            while (!interruptWhen() && !p.HasExited && clock.Elapsed < Limit) Thread.Sleep(20);
            if (p.HasExited) Assert.Fail("mixup-bert ended before the moment to interrupt it: " + stderr.Result); // (reading Result waits for the end)
            Assert.True(Kill(p.Id, 2) == 0, $"kill(SIGINT) failed: errno {Marshal.GetLastPInvokeError()}"); // what Ctrl-C sends
            clock.Restart();
        }
        if (!p.WaitForExit(Limit))
        {
            p.Kill(true);
            Assert.Fail($"mixup-bert was still running after {Limit.TotalSeconds} s{(interruptWhen != null ? " after Ctrl-C" : "")}");
        }
        return new Result(p.ExitCode, stdout.Result + stderr.Result, clock.Elapsed);
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [Fact]
    public void AHubThatDoesNotAnswerEndsInExit2WithinHF_HUB_ETAG_TIMEOUT()
    {
        using var server = new MirrorServer(Path.Combine(SharedDir, "hf")) { StallBeforeHeadersOn = "HEAD" };
        var env = new Dictionary<string, string?> { ["HF_ENDPOINT"] = server.Endpoint, ["HF_HUB_CACHE"] = TempDir(), ["HF_HUB_ETAG_TIMEOUT"] = "1" };
        var r = Run(env, Train(Path.Combine(TempDir(), "run")));
        Assert.True(r.ExitCode == 2, r.Stderr);
        Assert.Contains("HF_HUB_ETAG_TIMEOUT", r.Stderr);
        Assert.Contains("cannot reach the Hugging Face Hub", r.Stderr);
    }

    [Fact]
    public void AHubThatDoesNotAnswerIsAskedOnceWithAWarmCacheAndTheConsoleAndTrainLogSaySo()
    {
        var cache = TempDir();
        using (var mirror = new MirrorServer(Path.Combine(SharedDir, "hf")))
        using (var warm = new MixupBert.Model.Hub.HubClient(new MixupBert.Model.Hub.HubSettings(mirror.Endpoint, cache, false, null)))
        {
            MixupBert.Model.Hub.Sources.ResolveModel(Repo, warm);
            MixupBert.Model.Hub.Sources.ResolveDataset("rotten_tomatoes", warm);
        }
        using var silent = new SilentServer();
        var env = new Dictionary<string, string?> { ["HF_ENDPOINT"] = silent.Endpoint, ["HF_HUB_CACHE"] = cache, ["HF_HUB_ETAG_TIMEOUT"] = "1" };
        var output = Path.Combine(TempDir(), "run");
        // a layer the model does not have: the run stops with exit 2 once the model and dataset are resolved, before training
        var r = Run(env, [.. Train(output), "--mix-layers", "99"]);
        Assert.True(r.ExitCode == 2, r.Stderr);
        Assert.True(r.Stderr.Contains("--mix-layers 99"), r.Stderr);
        Assert.Equal(1, silent.SettledRequests()); // 10 before, each waiting out HF_HUB_ETAG_TIMEOUT
        string said = $"warning: the Hugging Face Hub at {silent.Endpoint} did not answer within 1 s (HF_HUB_ETAG_TIMEOUT): using the cached files";
        Assert.True(r.Stderr.Split('\n').Count(l => l.StartsWith(said, StringComparison.Ordinal)) == 1, r.Stderr);
        Assert.Single(File.ReadAllLines(Path.Combine(output, "train.log")), l => l.Contains(said, StringComparison.Ordinal));
    }

    [Fact]
    public void AStalledDownloadEndsInExit2WithinHF_HUB_DOWNLOAD_TIMEOUT()
    {
        using var server = new MirrorServer(Path.Combine(SharedDir, "hf")) { StallBodyAfter = 100_000 };
        // 5 s, not 1: on a loaded machine the in-process server's headers and first 100 kB can take over
        // a second, and the client then rightly reports "no answer within 1 s" instead of the stall
        var env = new Dictionary<string, string?> { ["HF_ENDPOINT"] = server.Endpoint, ["HF_HUB_CACHE"] = TempDir(), ["HF_HUB_DOWNLOAD_TIMEOUT"] = "5" };
        var r = Run(env, Train(Path.Combine(TempDir(), "run")));
        Assert.True(r.ExitCode == 2, r.Stderr);
        // the whole of stderr on failure (Assert.Contains shows only its start)
        Assert.True(r.Stderr.Contains("model.safetensors of model 'sentence-transformers/all-MiniLM-L6-v2' (revision main)"), r.Stderr);
        Assert.True(r.Stderr.Contains("stalled at 100000 bytes"), r.Stderr);
    }

    [Fact]
    public void CtrlCDuringAStalledDownloadEndsInExit130()
    {
        using var server = new MirrorServer(Path.Combine(SharedDir, "hf")) { StallBodyAfter = 100_000 };
        var cache = TempDir();
        var blobs = Path.Combine(cache, "models--sentence-transformers--all-MiniLM-L6-v2", "blobs");
        var env = new Dictionary<string, string?> { ["HF_ENDPOINT"] = server.Endpoint, ["HF_HUB_CACHE"] = cache, ["HF_HUB_DOWNLOAD_TIMEOUT"] = "300" };
        // model.safetensors (config.json is 550 bytes, below the stall at 100 kB) is being written: a second after
        // its .incomplete file appears, the client is waiting for the rest of its body
        var seen = Stopwatch.StartNew();
        bool writing = false;
        bool Stalled()
        {
            if (!writing && server.Requests.Any(r => r.StartsWith("GET ") && r.EndsWith("model.safetensors")) && Directory.Exists(blobs) && Directory.GetFiles(blobs, "*.incomplete").Length > 0)
            {
                writing = true;
                seen.Restart();
            }
            return writing && seen.Elapsed > TimeSpan.FromSeconds(1);
        }
        var r = Run(env, Train(Path.Combine(TempDir(), "run")), Stalled);
        Assert.True(r.ExitCode == 130, r.Stderr);
        Assert.InRange(r.Elapsed.TotalSeconds, 0, 30);
        Assert.Single(Directory.GetFiles(blobs, "*.incomplete")); // kept for the next run to resume
    }

    [Fact]
    public void ACacheThatCannotBeWrittenEndsInExit2WithAMessage()
    {
        // As root, chmod cannot make a folder read-only; a cache below a regular file cannot be created by anyone.
        var parent = Path.Combine(TempDir(), "a-file");
        File.WriteAllText(parent, "");
        using var server = new MirrorServer(Path.Combine(SharedDir, "hf"));
        var env = new Dictionary<string, string?> { ["HF_ENDPOINT"] = server.Endpoint, ["HF_HUB_CACHE"] = Path.Combine(parent, "hub") };
        var r = Run(env, Train(Path.Combine(TempDir(), "run")));
        Assert.True(r.ExitCode == 2, r.Stderr);
        Assert.Contains("cannot write to the Hugging Face cache", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr); // no stack trace
    }

    [Fact]
    public void ABadTimeoutVariableEndsInExit2NamingIt()
    {
        var env = new Dictionary<string, string?> { ["HF_HUB_CACHE"] = TempDir(), ["HF_HUB_OFFLINE"] = "1", ["HF_HUB_DOWNLOAD_TIMEOUT"] = "soon" };
        var r = Run(env, Train(Path.Combine(TempDir(), "run")));
        Assert.True(r.ExitCode == 2, r.Stderr);
        Assert.Contains("HF_HUB_DOWNLOAD_TIMEOUT=soon", r.Stderr);
    }
}
