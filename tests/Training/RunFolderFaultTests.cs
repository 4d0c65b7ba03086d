using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>
/// Fault injection on the real `train` command: it is killed (SIGKILL, as by kill -9) at every write
/// point of its checkpoints, or killed or interrupted (SIGINT, as by Ctrl-C) after a given training
/// step, or given a full disk, through the test-only MIXUP_BERT_TEST_* hooks of FaultInjection; then it
/// is resumed (or rerun) in the same folder and must end with exactly the metrics.jsonl, summary
/// metrics and model.safetensors bytes of an uninterrupted run. Also: the folder lock, and an
/// --output that is a file. A tiny model on 40 examples (5 steps an epoch, 2 epochs) keeps each run short.
/// </summary>
public class RunFolderFaultTests
{
    private const string KillAtWrite = "MIXUP_BERT_TEST_KILL_AT_WRITE", FailAtWrite = "MIXUP_BERT_TEST_FAIL_AT_WRITE", WriteLog = "MIXUP_BERT_TEST_WRITE_LOG",
        KillAtStep = "MIXUP_BERT_TEST_KILL_AT_STEP", InterruptAtStep = "MIXUP_BERT_TEST_INTERRUPT_AT_STEP";
    private const int ExitKilled = 128 + 9;

    private sealed record Setup(string Model, string Dataset);

    private static readonly Lazy<Setup> inputs = new(() =>
    {
        string dataset = TempDir();
        string Rows(int n, int offset) => "text,label\n" + string.Concat(Enumerable.Range(offset, n).Select(i =>
            $"\"a {(i % 2 == 0 ? "good" : "bad")} {(i % 3 == 0 ? "film" : "story")}, number {i}\",{(i % 2 == 0 ? "pos" : "neg")}\n"));
        File.WriteAllText(Path.Combine(dataset, "train.csv"), Rows(40, 0));
        File.WriteAllText(Path.Combine(dataset, "validation.csv"), Rows(16, 100));
        File.WriteAllText(Path.Combine(dataset, "test.csv"), Rows(16, 200));
        return new Setup(Cli.TinyModelRepo(TempDir()), dataset);
    });

    /// <param name="everyEpoch">--checkpoint-every 0: a checkpoint after every epoch (the protocol under test); false:
    /// the default interval, under which these short runs commit one only where Ctrl-C stops them.</param>
    private static string[] TrainArgs(string output, int epochs = 2, string mode = "mixup", bool everyEpoch = true) => ["train", "--model", inputs.Value.Model, "--dataset", inputs.Value.Dataset,
        "--output", output, "--mode", mode, "--epochs", epochs.ToString(), "--batch-size", "8", "--max-length", "24", "--lr", "3e-3",
        "--metric", "loss", "--logging-steps", "1", "--threads", "1", "--backend", "cpu", // by loss, epoch 2 is the best: both checkpoints publish a model
        .. (everyEpoch ? new[] { "--checkpoint-every", "0" } : [])];

    private static Dictionary<string, string?> Env(params (string Name, string? Value)[] hooks)
    {
        var env = new Dictionary<string, string?> { ["HF_HUB_OFFLINE"] = "1" };
        foreach (var (k, v) in hooks) env[k] = v;
        return env;
    }

    /// <summary>What must come out identical: every metrics record, the summary's metrics, the best model's
    /// bytes and the final weights and Adam moments (their SHA-256 in the last checkpoint's manifest).</summary>
    private sealed record Outcome(string Metrics, string Summary, string ModelSha256, string FinalState);

    private static Outcome OutcomeOf(string folder, bool finalState = true)
    {
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "summary.json")))!.AsObject();
        var metrics = new JsonObject();
        foreach (var key in new[] { "best_epoch", "validation", "test", "test_reliability", "train_examples" }) metrics[key] = summary[key]?.DeepClone();
        return new Outcome(File.ReadAllText(Path.Combine(folder, "metrics.jsonl")), metrics.ToJsonString(),
            Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(Path.Combine(folder, "model.safetensors")))), finalState ? FinalState(folder) : "");
    }

    private static string FinalState(string folder)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "state", "trainer_state.json")))!;
        var sums = manifest["sha256"]!;
        return $"{sums[manifest["parameters"]!.GetValue<string>()]} {sums[manifest["optimizer"]!.GetValue<string>()]}";
    }

    /// <summary>The uninterrupted run, and the names of the write points it passed.</summary>
    private static readonly Lazy<(Outcome Outcome, string[] WritePoints)> reference = new(() =>
    {
        string folder = Path.Combine(TempDir(), "run"), log = Path.Combine(TempDir(), "writes.txt");
        var r = Cli.Run(Env((WriteLog, log)), TrainArgs(folder));
        Assert.True(r.ExitCode == 0, r.All);
        return (OutcomeOf(folder), File.ReadAllLines(log));
    });

    /// <summary>Continues a stopped run as a user would: --resume when it recorded its arguments, else the same command again.</summary>
    private static void Continue(string folder, string context, bool everyEpoch = true)
    {
        bool started = File.Exists(Path.Combine(folder, "args.json"));
        var r = Cli.Run(Env(), started ? [.. TrainArgs(folder, everyEpoch: everyEpoch), "--resume"] : TrainArgs(folder, everyEpoch: everyEpoch));
        Assert.True(r.ExitCode == 0, $"{context}: continuing exited {r.ExitCode}; {r.All}");
        AssertLikeReference(folder, context, finalState: everyEpoch);
    }

    [Fact]
    public void UnderTheDefaultIntervalAShortRunCommitsNoCheckpointAndEndsAsWithOneEveryEpoch()
    {
        string folder = Path.Combine(TempDir(), "run");
        var r = Cli.Run(Env(), TrainArgs(folder, everyEpoch: false));
        Assert.True(r.ExitCode == 0, r.All);
        Assert.False(File.Exists(Path.Combine(folder, "state", "trainer_state.json")), "a checkpoint was committed");
        AssertLikeReference(folder, "no checkpoint", finalState: false); // the best model published at the end, the same bytes
    }

    /// <summary>A run resumed on a dataset that now gives another train set (files changed, or read differently by
    /// a newer version) is refused before anything is written: its saved step and schedule belong to the old data.</summary>
    [Fact]
    public void ResumingOnADatasetThatNowGivesOtherTrainExamplesIsRefused()
    {
        string dataset = TempDir();
        foreach (var f in new[] { "train.csv", "validation.csv", "test.csv" }) File.Copy(Path.Combine(inputs.Value.Dataset, f), Path.Combine(dataset, f));
        string folder = Path.Combine(TempDir(), "run");
        string[] args = [.. TrainArgs(folder).Select(a => a == inputs.Value.Dataset ? dataset : a)];
        var stopped = Cli.Run(Env((InterruptAtStep, "7")), args);
        Assert.True(stopped.ExitCode == 130, stopped.All);
        File.AppendAllText(Path.Combine(dataset, "train.csv"), "\"one more good film\",pos\n");
        string state = File.ReadAllText(Path.Combine(folder, "state", "trainer_state.json"));
        var resumed = Cli.Run(Env(), [.. args, "--resume"]);
        Assert.True(resumed.ExitCode == 2, resumed.All);
        Assert.Contains("the run trained on 40 examples, but its dataset", resumed.Stderr);
        Assert.Contains("now gives 41", resumed.Stderr);
        Assert.Equal(state, File.ReadAllText(Path.Combine(folder, "state", "trainer_state.json")));
    }

    /// <summary>A finished run with no checkpoint left (the default interval) is still a finished run: training
    /// into its folder again is refused, and --resume has nothing to do; neither touches its files.</summary>
    [Fact]
    public void AFinishedRunWithoutStateIsNeitherOverwrittenNorRetrained()
    {
        string folder = Path.Combine(TempDir(), "run");
        var r = Cli.Run(Env(), TrainArgs(folder, everyEpoch: false));
        Assert.True(r.ExitCode == 0, r.All);
        string before = OutcomeOf(folder, finalState: false).ToString() + File.GetLastWriteTimeUtc(Path.Combine(folder, "model.safetensors")).Ticks;
        var again = Cli.Run(Env(), TrainArgs(folder, everyEpoch: false));
        Assert.True(again.ExitCode == 2, again.All);
        Assert.Contains("already holds a finished run", again.Stderr);
        var resumed = Cli.Run(Env(), [.. TrainArgs(folder, everyEpoch: false), "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.All);
        Assert.Contains("holds a finished run (summary.json): nothing to resume", resumed.Stdout);
        Assert.Equal(before, OutcomeOf(folder, finalState: false).ToString() + File.GetLastWriteTimeUtc(Path.Combine(folder, "model.safetensors")).Ticks);
    }

    /// <summary>Epoch 1 is the best so far when Ctrl-C stops epoch 2, and its checkpoint was skipped: the checkpoint
    /// Ctrl-C commits must hold that best model too, beside the current weights, and publish it.</summary>
    [Fact]
    public void CtrlCAfterASkippedCheckpointCommitsTheBestModelBesideItAndTheRunResumes()
    {
        string folder = Path.Combine(TempDir(), "run");
        var stopped = Cli.Run(Env((InterruptAtStep, "7")), TrainArgs(folder, everyEpoch: false));
        Assert.True(stopped.ExitCode == 130, stopped.All);
        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "state", "trainer_state.json")))!;
        Assert.Equal("step-000000007/best.safetensors", manifest["best"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(folder, "model.safetensors")), "the best model was not published");
        Continue(folder, "Ctrl-C in epoch 2 after epoch 1's skipped checkpoint", everyEpoch: false);
    }

    [Fact]
    public void KilledAtEveryWritePointOfThatCheckpointTheRunStillEndsAsUninterrupted()
    {
        string log = Path.Combine(TempDir(), "writes.txt");
        var logged = Cli.Run(Env((InterruptAtStep, "7"), (WriteLog, log)), TrainArgs(Path.Combine(TempDir(), "run"), everyEpoch: false));
        Assert.True(logged.ExitCode == 130, logged.All);
        var points = File.ReadAllLines(log);
        Assert.Contains(points, p => p.EndsWith("state best written"));
        for (int k = 1; k <= points.Length; k++)
        {
            string folder = Path.Combine(TempDir(), "run");
            var killed = Cli.Run(Env((InterruptAtStep, "7"), (KillAtWrite, k.ToString())), TrainArgs(folder, everyEpoch: false));
            Assert.True(killed.ExitCode == ExitKilled, $"kill at {points[k - 1]}: exit {killed.ExitCode}; {killed.All}");
            Continue(folder, $"Ctrl-C at step 7, killed at write point {points[k - 1]}", everyEpoch: false);
        }
    }

    /// <param name="finalState">false: a run whose last epochs committed no checkpoint has no final state to compare.</param>
    private static void AssertLikeReference(string folder, string context, bool finalState = true)
    {
        var expected = reference.Value.Outcome;
        var got = OutcomeOf(folder, finalState);
        Assert.True(expected.Metrics == got.Metrics, $"{context}: metrics.jsonl differs\nexpected:\n{expected.Metrics}\ngot:\n{got.Metrics}");
        Assert.True(expected.Summary == got.Summary, $"{context}: summary differs\nexpected: {expected.Summary}\ngot: {got.Summary}");
        Assert.True(expected.ModelSha256 == got.ModelSha256, $"{context}: model.safetensors differs");
        if (finalState) Assert.True(expected.FinalState == got.FinalState, $"{context}: the final weights or Adam moments differ");
        Assert.Empty(Directory.EnumerateFiles(folder, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public void KilledAtEveryWritePointOfItsCheckpointsARunResumesToTheUninterruptedResult()
    {
        var points = reference.Value.WritePoints;
        // two epoch checkpoints (weights, Adam moments, manifest before and after its rename, the best
        // model published, old state removed), args.json and summary.json
        Assert.True(points.Length >= 12, string.Join('\n', points));
        for (int k = 1; k <= points.Length; k++)
        {
            string folder = Path.Combine(TempDir(), "run");
            var killed = Cli.Run(Env((KillAtWrite, k.ToString())), TrainArgs(folder));
            Assert.True(killed.ExitCode == ExitKilled, $"kill at {points[k - 1]}: exit {killed.ExitCode}; {killed.All}");
            Continue(folder, $"killed at write point {points[k - 1]}");
        }
    }

    public static TheoryData<string, string, bool> Stops => new()
    {
        // how it is stopped, then continued with --resume (or, when false, by the same command again)
        { "interrupt@2", "Ctrl-C in epoch 1, before any checkpoint", true },
        { "interrupt@7", "Ctrl-C in the middle of epoch 2", true },
        { "interrupt@2,interrupt@4", "Ctrl-C in epoch 1, resumed, Ctrl-C again in epoch 1", true },
        { "kill@3", "kill -9 in epoch 1: nothing committed, --resume starts over", true },
        { "kill@3", "kill -9 in epoch 1: nothing committed, the same command starts over", false },
        { "kill@8", "kill -9 in epoch 2: back to the end of epoch 1", true },
        { "interrupt@7,kill@9", "Ctrl-C in epoch 2, resumed, then kill -9", true },
    };

    [Theory]
    [MemberData(nameof(Stops))]
    public void StoppedAtAStepARunContinuesToTheUninterruptedResult(string stops, string what, bool resume)
    {
        string folder = Path.Combine(TempDir(), "run");
        foreach (var stop in stops.Split(','))
        {
            var (kind, step) = (stop[..stop.IndexOf('@')], stop[(stop.IndexOf('@') + 1)..]);
            bool started = File.Exists(Path.Combine(folder, "args.json"));
            var r = Cli.Run(Env((kind == "kill" ? KillAtStep : InterruptAtStep, step)), started ? [.. TrainArgs(folder), "--resume"] : TrainArgs(folder));
            Assert.True(r.ExitCode == (kind == "kill" ? ExitKilled : 130), $"{what}, {stop}: exit {r.ExitCode}; {r.All}");
            if (kind == "interrupt") Assert.Contains($"interrupted at step {step}", r.Stdout);
        }
        if (resume) Continue(folder, what);
        else
        {
            var again = Cli.Run(Env(), TrainArgs(folder));
            Assert.True(again.ExitCode == 0, $"{what}: {again.All}");
            Assert.Contains("no saved checkpoint: starting it over", again.Stdout);
            AssertLikeReference(folder, what);
        }
    }

    [Fact]
    public void AFullDiskStopsWithExit2AndAMessageAndTheRunResumes()
    {
        var points = reference.Value.WritePoints;
        // the second checkpoint's Adam moments: the first checkpoint is committed, the second is half written
        int firstCommit = Array.FindIndex(points, p => p.EndsWith("state committed"));
        int k = Array.FindIndex(points, firstCommit + 1, p => p.EndsWith("state optimizer written")) + 1;
        Assert.True(k > 0, string.Join('\n', points));
        string folder = Path.Combine(TempDir(), "run");
        var full = Cli.Run(Env((FailAtWrite, k.ToString())), TrainArgs(folder));
        Assert.True(full.ExitCode == 2, full.All);
        Assert.Contains("No space left on device", full.Stderr);
        Assert.Contains(folder, full.Stderr);
        Assert.Contains("continue with --resume", full.Stderr);
        Assert.DoesNotContain("   at ", full.Stderr); // a message, not a stack trace
        Assert.Empty(Directory.EnumerateFiles(folder, "*.tmp", SearchOption.AllDirectories));
        Continue(folder, "full disk at the second checkpoint");
    }

    [Fact]
    public void ASecondProcessOnTheSameFolderIsRefusedWhileTheFirstHoldsIt()
    {
        string folder = Path.Combine(TempDir(), "run");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "mixup-bert.dll"));
        foreach (var a in TrainArgs(folder, epochs: 200)) psi.ArgumentList.Add(a); // long enough to still be running
        psi.Environment["HF_HUB_OFFLINE"] = "1";
        using var first = Process.Start(psi)!;
        try
        {
            first.StandardInput.Close();
            _ = first.StandardOutput.ReadToEndAsync(); // drained so that it never blocks on a full pipe
            _ = first.StandardError.ReadToEndAsync();
            var clock = Stopwatch.StartNew();
            string log = Path.Combine(folder, "train.log");
            while (!(File.Exists(log) && new FileInfo(log).Length > 0) && !first.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(20);
            Assert.False(first.HasExited, $"the first process ended early (exit {(first.HasExited ? first.ExitCode : 0)})");
            string logBefore = File.ReadAllText(log);

            var second = Cli.Run(Env(), TrainArgs(folder));
            Assert.False(first.HasExited, "the first process ended before the second was checked; make it longer");
            Assert.True(second.ExitCode == 2, second.All);
            Assert.Contains($"{folder} is in use by another mixup-bert process", second.Stderr);
            var resumed = Cli.Run(Env(), [.. TrainArgs(folder), "--resume"]);
            Assert.True(resumed.ExitCode == 2, resumed.All);
            Assert.Contains("in use by another mixup-bert process", resumed.Stderr);
            Assert.StartsWith(logBefore, File.ReadAllText(log)); // the refused ones wrote nothing into it
            Assert.DoesNotContain("in use", File.ReadAllText(log));
        }
        finally
        {
            if (!first.HasExited) first.Kill(entireProcessTree: true);
            first.WaitForExit();
        }
    }

    [Fact]
    public void MixLayersOutsideTheModelAreRefusedBeforeAnythingIsWritten()
    {
        string folder = Path.Combine(TempDir(), "run");
        var r = Cli.Run(Env(), [.. TrainArgs(folder, mode: "tmix"), "--mix-layers", "1,5"]);
        Assert.True(r.ExitCode == 2, r.All);
        Assert.Contains("--mix-layers 5: the model has 2 layers", r.Stderr);
        Assert.Equal(new[] { ".lock", "train.log" }, Directory.GetFiles(folder).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void AnOutputThatIsAFileIsRefusedWithExit2AndItsName()
    {
        string file = Path.Combine(TempDir(), "not-a-folder");
        File.WriteAllText(file, "keep me");
        var r = Cli.Run(Env(), TrainArgs(file));
        Assert.True(r.ExitCode == 2, r.All);
        Assert.Contains($"--output {file} is a file, not a folder", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.Equal("keep me", File.ReadAllText(file));

        var under = Cli.Run(Env(), TrainArgs(Path.Combine(file, "run")));
        Assert.True(under.ExitCode == 2, under.All);
        Assert.Contains($"cannot write the run folder {Path.Combine(file, "run")}", under.Stderr);
    }
}
