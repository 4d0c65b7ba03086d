using System.Diagnostics;
using MixupBert.Model.Experiments;
using SkiaSharp;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

public class CompareTests
{
    [Fact]
    public void PairedTTestMatchesHandComputedValues()
    {
        // d = (.02, .01, .05): mean .026667, sd .020817, se .012019, t = 2.21880 with 2 degrees of freedom.
        // For df = 2 the t CDF is 1/2 + t / (2·√(2 + t²)), so p = 2·(1 − F(2.218801)) = 0.156726;
        // t(0.975, 2) = 4.3026527 and se = .0120185, so the interval is .0266667 ± .0517114.
        var t = Statistics.PairedTTest(new[] { 0.80, 0.82, 0.85 }, new[] { 0.78, 0.81, 0.80 });
        Assert.Equal(0.0266667, t.MeanDifference, 6);
        Assert.Equal(0.156726, t.P, 5);
        Assert.Equal(-0.0250448, t.Low, 6);
        Assert.Equal(0.0783781, t.High, 6);
        var d = Statistics.Describe(new[] { 1.0, 2.0, 4.0 });
        Assert.Equal(7.0 / 3, d.Mean, 12);
        Assert.Equal(Math.Sqrt((16.0 / 9 + 1.0 / 9 + 25.0 / 9) / 2), d.Sd, 12);
        Assert.True(double.IsNaN(Statistics.PairedTTest(new[] { 0.9 }, new[] { 0.8 }).P)); // one pair: no test
    }

    [Fact]
    public void AGridRunsResumesAfterAnInterruptAndReports()
    {
        var model = Cli.TinyModelRepo(TempDir());
        string dataset = Path.Combine(SharedDir, "hf", "datasets", "cornell-movie-review-data", "rotten_tomatoes", "resolve", "main");
        string[] Args(string output) => ["compare", "--model", model, "--dataset", dataset, "--modes", "baseline,mixup", "--seeds", "2",
            "--train-sizes", "8/class,48", "--epochs", "2", "--min-steps", "6", "--batch-size", "8", "--max-length", "24", "--logging-steps", "1",
            "--lr", "1e-3", "--threads", "2", "--backend", "cpu", "--output", output];
        var env = new Dictionary<string, string?> { ["HF_HUB_OFFLINE"] = "1", ["HF_HUB_CACHE"] = TempDir() };

        string whole = Path.Combine(TempDir(), "exp");
        var full = Cli.Run(env, Args(whole));
        Assert.True(full.ExitCode == 0, full.All);

        // the same grid, interrupted with Ctrl-C (SIGINT) once its first run has finished (so the signal lands
        // in a later run, mid-epoch or between epochs or runs, depending on timing), then run again
        string split = Path.Combine(TempDir(), "exp");
        var interrupted = Cli.RunInterrupted(env, () => Directory.Exists(split) && Directory.EnumerateFiles(split, "summary.json", SearchOption.AllDirectories).Any(), Args(split));
        Assert.True(interrupted.ExitCode == 130, interrupted.All);
        Assert.Contains("run the same command", interrupted.Stderr);
        var resumed = Cli.Run(env, Args(split));
        Assert.True(resumed.ExitCode == 0, resumed.All);
        Assert.Contains("finished, skipped", resumed.Stdout);

        // every run's metrics are those of the uninterrupted grid: runs.csv has no timing and relative folders
        Assert.Equal(File.ReadAllText(Path.Combine(whole, "runs.csv")), File.ReadAllText(Path.Combine(split, "runs.csv")));
        var lines = File.ReadAllLines(Path.Combine(split, "runs.csv"));
        Assert.Equal(9, lines.Length); // header + 2 modes × 2 seeds × 2 sizes
        Assert.StartsWith("size,train_examples,mode,alpha,beta,lr,seed,epochs,", lines[0]);
        // --min-steps 6: 16 examples in batches of 8 are 2 steps per epoch, so 3 epochs; 48 are 6 steps, so --epochs 2
        Assert.All(lines.Skip(1), l => Assert.Equal(l.StartsWith("8-per-class,", StringComparison.Ordinal) ? "3" : "2", l.Split(',')[7]));
        Assert.Contains("\"epochs\": 3", File.ReadAllText(Path.Combine(split, "8-per-class", "seed-42", "mixup", "summary.json")));
        Assert.Contains("\"steps\": 6", File.ReadAllText(Path.Combine(split, "8-per-class", "seed-42", "mixup", "summary.json")));
        Assert.Contains("\"min_steps\": 6", File.ReadAllText(Path.Combine(split, "48", "seed-43", "baseline", "args.json")));

        var report = File.ReadAllText(Path.Combine(split, "report.md"));
        Assert.Contains("## Train size: 8-per-class (16 examples)", report);
        Assert.Contains("## Train size: 48 (48 examples)", report);
        Assert.Contains("| mixup | 1 | 0.001 | 2 |", report);
        Assert.Contains("All 8 planned runs are here.", report);
        foreach (var png in new[] { "loss-48.png", "validation-accuracy-48.png", "validation-loss-8-per-class.png", "reliability-48-mixup.png", "few-shot.png" })
        {
            using var bitmap = SKBitmap.Decode(Path.Combine(split, "figures", png));
            Assert.NotNull(bitmap);
            Assert.True(bitmap.Width >= 600 && bitmap.Height >= 500, $"{png}: {bitmap.Width}x{bitmap.Height}");
            var colours = new HashSet<SKColor>();
            for (int y = 0; y < bitmap.Height; y += 7) for (int x = 0; x < bitmap.Width; x += 7) colours.Add(bitmap.GetPixel(x, y));
            Assert.True(colours.Count > 5, $"{png} is blank");
        }
    }

    private static string[] TinyGrid(string model, string output, params string[] more) =>
        ["compare", "--model", model, "--dataset", Path.Combine(SharedDir, "hf", "datasets", "cornell-movie-review-data", "rotten_tomatoes", "resolve", "main"),
         "--modes", "baseline,mixup", "--seeds", "2", "--train-sizes", "8/class", "--epochs", "1", "--batch-size", "8", "--max-length", "24",
         "--lrs", "1e-3,3e-3", "--alphas", "0.5,2", "--threads", "2", "--backend", "cpu", "--output", output, .. more];

    [Fact]
    public void ShardsOfAGridGiveTheRunsCsvOfTheWholeGrid()
    {
        var model = Cli.TinyModelRepo(TempDir());
        var env = new Dictionary<string, string?> { ["HF_HUB_OFFLINE"] = "1", ["HF_HUB_CACHE"] = TempDir() };
        string whole = Path.Combine(TempDir(), "exp");
        var full = Cli.Run(env, TinyGrid(model, whole));
        Assert.True(full.ExitCode == 0, full.All);
        Assert.Contains("12 runs", full.Stdout); // 2 seeds × 2 lrs × (baseline + mixup at 2 α)

        string sharded = Path.Combine(TempDir(), "exp");
        var first = Cli.Run(env, TinyGrid(model, sharded, "--shard", "1/3"));
        Assert.True(first.ExitCode == 0, first.All);
        Assert.Contains("shard 1/3: 4 of them", first.Stdout);
        Assert.False(File.Exists(Path.Combine(sharded, "report.md")), "a shard wrote a report without --report");
        var partial = Cli.Run(env, "report", sharded);
        Assert.True(partial.ExitCode == 0, partial.All);
        Assert.Contains("8 of 12 planned runs are missing", partial.Stdout);
        Assert.Contains("## Missing runs", File.ReadAllText(Path.Combine(sharded, "report.md")));
        foreach (var k in new[] { "3/3", "2/3" })
        {
            string[] extra = k == "2/3" ? ["--shard", k, "--report"] : ["--shard", k];
            var shard = Cli.Run(env, TinyGrid(model, sharded, extra));
            Assert.True(shard.ExitCode == 0, shard.All);
        }
        Assert.Contains("All 12 planned runs are here.", File.ReadAllText(Path.Combine(sharded, "report.md"))); // the last shard was told to report
        Assert.Equal(["all.json"], Directory.GetFiles(Path.Combine(whole, "plan")).Select(Path.GetFileName));
        Assert.Equal(3, Directory.GetFiles(Path.Combine(sharded, "plan")).Length);
        var merged = Cli.Run(env, "report", sharded);
        Assert.True(merged.ExitCode == 0, merged.All);
        Assert.DoesNotContain("missing", merged.Stdout);

        byte[] csv = File.ReadAllBytes(Path.Combine(whole, "runs.csv"));
        Assert.Equal(csv, File.ReadAllBytes(Path.Combine(sharded, "runs.csv")));
        var lines = File.ReadAllLines(Path.Combine(whole, "runs.csv"));
        Assert.Equal(13, lines.Length);
        Assert.Equal(6, lines.Count(l => l.Contains(",true,", StringComparison.Ordinal))); // 3 cells × 2 seeds at their chosen lr
        Assert.Contains(lines, l => l.StartsWith("8-per-class,16,mixup,0.5,0.5,0.003,42,1,", StringComparison.Ordinal)); // β follows α
        var report = File.ReadAllText(Path.Combine(sharded, "report.md"));
        Assert.Contains("Learning rate, chosen on validation", report);
        Assert.Contains("| mixup | 2 | ", report);
        Assert.Contains("p (Holm)", report);
        Assert.True(File.Exists(Path.Combine(sharded, "figures", "reliability-8-per-class-mixup-alpha0.5.png")));
    }

    [Fact]
    public void AFinishedRunMadeWithOtherSettingsIsNotReusedByAnotherGrid()
    {
        var model = Cli.TinyModelRepo(TempDir());
        var env = new Dictionary<string, string?> { ["HF_HUB_OFFLINE"] = "1", ["HF_HUB_CACHE"] = TempDir() };
        string output = Path.Combine(TempDir(), "exp");
        string[] Grid(string sizes, string epochs, params string[] more) => ["compare", "--model", model, "--dataset", Path.Combine(SharedDir, "hf", "datasets", "cornell-movie-review-data", "rotten_tomatoes", "resolve", "main"),
            "--modes", "baseline", "--seeds", "1", "--train-sizes", sizes, "--epochs", epochs, "--batch-size", "8", "--max-length", "24",
            "--threads", "2", "--backend", "cpu", "--no-report", "--output", output, .. more];
        var first = Cli.Run(env, Grid("8/class", "1"));
        Assert.True(first.ExitCode == 0, first.All);
        string summary = Path.Combine(output, "8-per-class", "seed-42", "baseline", "summary.json");
        byte[] before = File.ReadAllBytes(summary), plan = File.ReadAllBytes(Path.Combine(output, "plan", "all.json"));

        // the conflicting run comes second in the plan: nothing of the grid may run before the refusal
        var other = Cli.Run(env, Grid("4/class,8/class", "2"));
        Assert.True(other.ExitCode == 2, other.All);
        Assert.Contains(Path.Combine(output, "8-per-class", "seed-42", "baseline") + ": --epochs 1 (planned: 2)", other.Stderr);
        Assert.False(Directory.Exists(Path.Combine(output, "4-per-class")), "a run of the refused grid ran");
        Assert.Equal(before, File.ReadAllBytes(summary)); // nothing lost
        Assert.Equal(plan, File.ReadAllBytes(Path.Combine(output, "plan", "all.json")));

        // options that cannot change a baseline run (λ's Beta, SSMix's span) do not make it differ
        var same = Cli.Run(env, Grid("8/class", "1", "--alpha", "2", "--ssmix-span", "0.3"));
        Assert.True(same.ExitCode == 0, same.All);
        Assert.Contains("seed-42/baseline: finished, skipped", same.Stdout);

        // a second grid into the same folder adds its runs to the plan: report knows both grids' runs
        var more = Cli.Run(env, Grid("4/class", "1"));
        Assert.True(more.ExitCode == 0, more.All);
        var report = Cli.Run(env, "report", output);
        Assert.True(report.ExitCode == 0, report.All);
        Assert.Contains("All 2 planned runs are here.", File.ReadAllText(Path.Combine(output, "report.md")));
    }

    [Theory]
    [InlineData("--shard 3/2", "--shard 3/2: K must be in 1..N")]
    [InlineData("--lrs 1e-4,abc", "--lrs: 'abc' is not a number")]
    [InlineData("--alphas 0", "--alphas: 0 is not positive")]
    [InlineData("--lrs 1e-4 --lr 2e-5", "--lr and --lrs exclude each other")]
    [InlineData("--alphas 1,2 --alpha 2", "--alpha and --alphas exclude each other")]
    [InlineData("--devices 0,x --backend cuda", "--devices: 'x' is not a device number")]
    [InlineData("--devices 0 --backend cpu", "--devices runs on CUDA devices")]
    [InlineData("--min-steps -3", "--min-steps must be in 0..10000000")]
    [InlineData("--shard 1/2 --report --no-report", "--report and --no-report exclude each other")]
    public void BadGridOptionsAreRefusedWithTheOptionNamed(string options, string message)
    {
        var result = Cli.Run(new Dictionary<string, string?>(), ["compare", "--output", Path.Combine(TempDir(), "exp"), .. options.Split(' ')]);
        Assert.True(result.ExitCode == 2, result.All);
        Assert.Contains("error: " + message, result.Stderr);
    }

    /// <summary>
    /// --devices on a machine without a usable GPU: two workers prepare their runs at once (threads of one
    /// process), each fails at its device with exit 3 and its console lines prefixed, and no further run
    /// starts. (The runs themselves on real GPUs are not exercised here.)
    /// </summary>
    [Fact]
    public void DevicesWithoutAGpuStopAfterTheRunsUnderWay()
    {
        try { using var gpu = MixupBert.Kernels.Cuda.CudaGpu.Open(); return; } // a GPU here: this test is about its absence
        catch (MixupBert.Kernels.Cuda.CudaUnavailableException) { }
        var model = Cli.TinyModelRepo(TempDir());
        var env = new Dictionary<string, string?> { ["HF_HUB_OFFLINE"] = "1", ["HF_HUB_CACHE"] = TempDir() };
        string output = Path.Combine(TempDir(), "exp");
        var result = Cli.Run(env, TinyGrid(model, output, "--devices", "0,1").Select(a => a == "cpu" ? "cuda" : a).ToArray());
        Assert.True(result.ExitCode == 3, result.All);
        Assert.Matches(@"\[gpu [01]\] 8-per-class/seed-42/baseline-lr0.001: error: no CUDA device", result.Stderr);
        Assert.Matches(@"(10|11) of 12 runs were not started", result.Stderr);
        Assert.Empty(Directory.EnumerateFiles(output, "summary.json", SearchOption.AllDirectories));
    }

    [Fact]
    public void AShardNeedsAnOutputFolder()
    {
        var result = Cli.Run(new Dictionary<string, string?>(), "compare", "--shard", "1/2");
        Assert.True(result.ExitCode == 2, result.All);
        Assert.Contains("error: --shard needs --output", result.Stderr);
    }
}
