using System.Diagnostics;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;

namespace MixupBert.Tests.Training;

/// <summary>Runs the real mixup-bert executable (a child process with its own environment).</summary>
public static class Cli
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string All => Stdout + "\n" + Stderr;
    }

    public static Result Run(IReadOnlyDictionary<string, string?> env, params string[] args) => RunIn(null, env, args);

    /// <summary><see cref="Run"/> in the working directory <paramref name="workingDirectory"/> (null: this process's).</summary>
    public static Result RunIn(string? workingDirectory, IReadOnlyDictionary<string, string?> env, params string[] args) =>
        RunWithInput(workingDirectory, env, "", args);

    /// <summary><see cref="RunIn"/> with <paramref name="input"/> on its standard input.</summary>
    public static Result RunWithInput(string? workingDirectory, IReadOnlyDictionary<string, string?> env, string input, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            WorkingDirectory = workingDirectory ?? "" };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mixup-bert.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var name in new[] { "HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "HF_HUB_OFFLINE", "HF_TOKEN" }) psi.Environment.Remove(name);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.Write(input);
        p.StandardInput.Close();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); throw new TimeoutException("mixup-bert did not finish in 5 minutes: " + string.Join(' ', args)); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs mixup-bert and sends it SIGINT (Ctrl-C) once <paramref name="when"/> holds.</summary>
    public static Result RunInterrupted(IReadOnlyDictionary<string, string?> env, Func<bool> when, params string[] args) =>
        RunSignalled(null, env, when, Sigint, args);

    public const int Sigint = 2, Sigterm = 15;

    /// <summary>Runs mixup-bert and sends it <paramref name="signal"/> once <paramref name="when"/> holds.</summary>
    public static Result RunSignalled(string? workingDirectory, IReadOnlyDictionary<string, string?> env, Func<bool> when, int signal, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            WorkingDirectory = workingDirectory ?? "" };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mixup-bert.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!when() && !p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(20);
        if (!p.HasExited) Send(p.Id, signal);
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(true); throw new TimeoutException($"mixup-bert did not stop after signal {signal}"); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    /// <summary>A signal (SIGINT: what Ctrl-C sends), without depending on a kill executable.</summary>
    private static void Send(int pid, int signal)
    {
        if (Kill(pid, signal) != 0) throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
    }

    /// <summary>A tiny random BERT as a Hub repository folder (org/name/resolve/main/...), with
    /// all-MiniLM-L6-v2's uncased vocabulary so that real text tokenizes.</summary>
    public static string TinyModelRepo(string root, string repo = "tiny-org/tiny-bert")
    {
        var dir = Path.Combine(root, repo, "resolve", "main");
        var config = TestSupport.TinyConfig(labels: 2) with { VocabSize = 30522, MaxPositionEmbeddings = 64, InitializerRange = 0.02f };
        BertCheckpoint.Save(dir, config, BertCheckpoint.RandomInit(config, 7));
        foreach (var f in new[] { "vocab.txt", "tokenizer_config.json" })
            File.Copy(Path.Combine(TestSupport.MiniLmDir, f), Path.Combine(dir, f), overwrite: true);
        return dir;
    }
}
