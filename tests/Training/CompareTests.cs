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
            "--train-sizes", "8/class,48", "--epochs", "2", "--batch-size", "8", "--max-length", "24", "--logging-steps", "1",
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

        // every run's metrics are those of the uninterrupted grid
        string Strip(string csv) => string.Join('\n', csv.Split('\n').Select(l => string.Join(',', l.Split(',').Take(11))));
        Assert.Equal(Strip(File.ReadAllText(Path.Combine(whole, "runs.csv"))), Strip(File.ReadAllText(Path.Combine(split, "runs.csv"))));
        Assert.Equal(9, File.ReadAllLines(Path.Combine(split, "runs.csv")).Length); // header + 2 modes × 2 seeds × 2 sizes

        var report = File.ReadAllText(Path.Combine(split, "report.md"));
        Assert.Contains("## Train size: 8-per-class (16 examples)", report);
        Assert.Contains("## Train size: 48 (48 examples)", report);
        Assert.Contains("| mixup | 2 |", report);
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
}
