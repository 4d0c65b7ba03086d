using System.Collections.Concurrent;
using MixupBert.Model.Bert;
using MixupBert.Model.Experiments;
using MixupBert.Model.Training;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>The fair protocol of compare/report (step budget, lr chosen on validation, Holm) and the grid's
/// sharding and device scheduling, without training (see CompareTests for the grids end to end).</summary>
public class ProtocolTests
{
    [Fact]
    public void HolmAdjustsAsTheTextbookExamples()
    {
        // Wikipedia's "Holm–Bonferroni method" example: p = .01, .04, .03, .005 at α = .05 rejects H1 and H4 only.
        // By hand: sorted .005 .01 .03 .04 times 4 3 2 1 = .02 .03 .06 .04, running maximum .02 .03 .06 .06.
        var p = Statistics.Holm([0.01, 0.04, 0.03, 0.005]);
        Assert.Equal([0.03, 0.06, 0.06, 0.02], p.Select(x => Math.Round(x, 12)));
        Assert.Equal([true, false, false, true], p.Select(x => x < 0.05));
        // six tests: sorted .005 .01 .03 .04 .07 .20 times 6..1 = .03 .05 .12 .12 .14 .20 (already monotone)
        Assert.Equal([0.05, 0.12, 0.2, 0.12, 0.03, 0.14], Statistics.Holm([0.01, 0.04, 0.20, 0.03, 0.005, 0.07]).Select(x => Math.Round(x, 12)));
        // capped at 1; a NaN (no test) stays NaN and does not count in m
        var capped = Statistics.Holm([0.6, double.NaN, 0.5]);
        Assert.Equal(1.0, capped[0]); Assert.True(double.IsNaN(capped[1])); Assert.Equal(1.0, capped[2]);
        Assert.Equal([0.02, 0.02], Statistics.Holm([0.01, 0.02]).Select(x => Math.Round(x, 12)));
    }

    private static ClassificationMetrics Metrics(double accuracy, double loss = 0.5) => new(loss, accuracy, accuracy, accuracy, accuracy, 0.1, 100);

    private static RunResult Run(string mode, int seed, float lr, double validation, double test, float? alpha = null, string size = "8-per-class") =>
        new("/nowhere", $"{size}/seed-{seed}/{mode}{(alpha is float a ? $"-alpha{a}" : "")}-lr{lr}", mode, seed, size, 16, lr, alpha, alpha, 3, 3, "accuracy",
            Metrics(validation), Metrics(test), [1.0], [], [], null);

    [Fact]
    public void TheLearningRateIsChosenOnValidationAloneAndOnlyItsTestIsReported()
    {
        // lr 1e-4 is better on validation (mean .80 against .78), lr 5e-5 would be far better on test
        var runs = new List<RunResult>();
        foreach (int seed in new[] { 1, 2, 3 })
        {
            runs.Add(Run("baseline", seed, 5e-5f, 0.78, 0.95));
            runs.Add(Run("baseline", seed, 1e-4f, 0.80, 0.70 + seed * 0.01));
            runs.Add(Run("mixup", seed, 5e-5f, 0.82 + seed * 0.001, 0.60, alpha: 1));
            runs.Add(Run("mixup", seed, 1e-4f, 0.81, 0.99, alpha: 1));
        }
        var analysis = Protocol.Analyze(runs);
        var cells = analysis.Cells["8-per-class"];
        Assert.Equal(["baseline", "mixup"], cells.Select(c => c.Cell.Mode));
        Assert.Equal(1e-4f, cells[0].Choice.Chosen);
        Assert.Equal(5e-5f, cells[1].Choice.Chosen);
        Assert.All(cells[0].Runs, r => Assert.Equal(1e-4f, r.LearningRate));
        Assert.Equal(0.80, cells[0].Choice.Tuning.Single(t => t.Lr == 1e-4f).Validation.Mean, 12);
        // the comparison uses the chosen runs' test: mixup .60 against baseline .71 .72 .73
        Assert.Equal(0.60 - 0.72, cells[1].VsBaseline!.Value.MeanDifference, 12);
        var rows = Report.Table(cells);
        Assert.Equal("0.0001", rows[0].LearningRate);
        Assert.Equal("0.7200 ± 0.0100", rows[0].TestAccuracy);
        Assert.Equal("0.6000 ± 0.0000", rows[1].TestAccuracy);
        // runs.csv: every run listed, test metrics only on the chosen lr's lines; .95 and .99 appear nowhere
        var csv = Report.Csv(runs, analysis);
        Assert.DoesNotContain("0.95", csv);
        Assert.DoesNotContain("0.99", csv);
        Assert.Equal(13, csv.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal(6, csv.Split('\n').Count(l => l.Contains(",true,", StringComparison.Ordinal)));
        // changing any test number of an unchosen run changes nothing in the analysis
        var perturbed = runs.Select(r => r.LearningRate == 5e-5f && r.Mode == "baseline" ? r with { Test = Metrics(0.01) } : r).ToList();
        Assert.Equal(csv, Report.Csv(perturbed, Protocol.Analyze(perturbed)));
    }

    [Fact]
    public void TiesGoToTheSmallerLearningRateAndLossIsMinimised()
    {
        Assert.Equal(2e-5f, Protocol.ChooseLearningRate([(5e-5f, 0.8), (2e-5f, 0.8)]).Chosen);
        // --metric loss: scores are negated losses, so the larger score (smaller loss) wins
        var runs = new[] { Run("baseline", 1, 2e-5f, 0.8, 0.8) with { Metric = "loss", Validation = Metrics(0.8, loss: 0.3) },
            Run("baseline", 1, 5e-5f, 0.9, 0.8) with { Metric = "loss", Validation = Metrics(0.9, loss: 0.4) } };
        Assert.Equal(2e-5f, Protocol.Analyze(runs).Cells["8-per-class"][0].Choice.Chosen);
    }

    [Fact]
    public void HolmFamilyIsEveryComparisonOfTheReport()
    {
        var runs = new List<RunResult>();
        foreach (var size in new[] { "8-per-class", "all" })
            foreach (int seed in new[] { 1, 2, 3 })
            {
                runs.Add(Run("baseline", seed, 5e-5f, 0.8, 0.80 + seed * 0.001, size: size));
                foreach (var alpha in new[] { 0.2f, 2f })
                    runs.Add(Run("mixup", seed, 5e-5f, 0.8, 0.82 + seed * 0.003 * alpha, alpha, size));
            }
        var analysis = Protocol.Analyze(runs);
        Assert.Equal(4, analysis.Comparisons); // 2 sizes × 2 α
        var compared = analysis.Cells.Values.SelectMany(l => l).Where(c => c.VsBaseline != null).ToList();
        var expected = Statistics.Holm(compared.Select(c => c.VsBaseline!.Value.P).ToList());
        Assert.Equal(expected, compared.Select(c => c.HolmP));
        Assert.Equal(["baseline", "mixup α=0.2", "mixup α=2"], analysis.Cells["all"].Select(c => c.Label));
    }

    [Fact]
    public void AnOlderExperimentReadsAsOneLearningRateAndOneAlpha()
    {
        // a run from before --min-steps, lr and α axes (its summary.json has no epochs), in the old {size}/seed-{s}/{mode} layout
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(root.FullName, "MixupBert.sln"))) root = root.Parent!;
        string fixture = Path.Combine(root.FullName, "tests", "Training", "Fixtures", "run-records", "finished");
        string experiment = TestSupport.TempDir(), folder = Path.Combine(experiment, "12-per-class", "seed-7", "tmix");
        Directory.CreateDirectory(folder);
        foreach (var f in new[] { "args.json", "summary.json", "metrics.jsonl" }) File.Copy(Path.Combine(fixture, f), Path.Combine(folder, f));
        Assert.DoesNotContain("\"epochs\"", File.ReadAllText(Path.Combine(folder, "summary.json")));
        var run = Assert.Single(ExperimentRuns.Read(experiment));
        Assert.Equal(("12-per-class/seed-7/tmix", "tmix", 2, 3e-4f, (float?)1f, (float?)1f), (run.Name, run.Mode, run.Epochs, run.LearningRate, run.Alpha, run.Beta));
        var outcome = Report.Write(experiment);
        Assert.Equal((0, 0), (outcome.Missing.Count, outcome.Planned)); // no plan files: nothing known to be missing
        var row = Assert.Single(outcome.Tables["12-per-class"]);
        Assert.Equal(("tmix", "1", "0.0003", 1), (row.Mode, row.Alpha, row.LearningRate, row.Runs));
        Assert.Contains("\"12-per-class/seed-7/tmix\"", File.ReadAllText(Path.Combine(experiment, "runs.csv")));
    }

    [Fact]
    public void MinStepsGivesSmallTrainSetsMoreEpochs()
    {
        var o = new TrainOptions { Epochs = 3, MinSteps = 100 };
        Assert.Equal(50, o.EffectiveEpochs(2));   // 64 examples, batch 32: ceil(100 / 2)
        Assert.Equal(34, o.EffectiveEpochs(3));   // ceil(100 / 3) = 34, not 33
        Assert.Equal(4, o.EffectiveEpochs(25));   // exactly 100 / 25
        Assert.Equal(3, o.EffectiveEpochs(34));   // ceil(100 / 34) = 3 = --epochs
        Assert.Equal(3, o.EffectiveEpochs(267));  // a large train set keeps --epochs
        Assert.Equal(3, (o with { MinSteps = 0 }).EffectiveEpochs(1));
        Assert.Throws<ArgumentException>(() => (o with { MinSteps = -1 }).Validate());
        var args = new RunArgs(new RunInputs(), "", new Dictionary<string, IReadOnlyList<string>>(), [], o, 10, "cpu").ToJson();
        Assert.Equal(100, args["min_steps"]!.GetValue<int>());
        Assert.Equal(100, RunArgs.FromJson(args, "args.json").Options.MinSteps);
    }

    [Fact]
    public void TheGridKeepsTheOldLayoutWithoutNewAxesAndShardsPartitionIt()
    {
        var template = new TrainOptions { Seed = 7, Beta = 1 };
        var sizes = new[] { TrainSize.Parse("8/class"), TrainSize.Parse("all") };
        var old = ExperimentPlan.Plan("/e", new Grid(sizes, 2, [MixMode.Baseline, MixMode.Mixup]), template);
        Assert.Equal(["8-per-class/seed-7/baseline", "8-per-class/seed-7/mixup", "8-per-class/seed-8/baseline"], old.Take(3).Select(r => r.Name));
        Assert.Equal(Path.Combine("/e", "8-per-class", "seed-7", "mixup"), old[1].Folder);

        var grid = new Grid(sizes, 2, [MixMode.Baseline, MixMode.Mixup, MixMode.TMix], [2e-5f, 1e-4f], [0.2f, 2f]);
        var plan = ExperimentPlan.Plan("/e", grid, template);
        Assert.Equal(2 * 2 * 2 * (1 + 2 * 2), plan.Count); // baseline once per size, seed and lr
        Assert.Equal(plan.Count, plan.Select(r => r.Name).Distinct().Count());
        var mix = plan.Single(r => r.Name == "all/seed-8/mixup-alpha0.2-lr0.0001");
        Assert.Equal((0.2f, 0.2f, 1e-4f, 8), (mix.Options.Alpha, mix.Options.Beta, mix.Options.LearningRate, mix.Options.Seed)); // β follows α
        Assert.Equal(1f, ExperimentPlan.Plan("/e", grid with { FixedBeta = true }, template).Single(r => r.Name == mix.Name).Options.Beta);
        Assert.Contains(plan, r => r.Name == "all/seed-8/baseline-lr2e-05");
        // ssmix draws no λ (its spans set it): like baseline, once per size, seed and lr, not once per α
        var withSsMix = ExperimentPlan.Plan("/e", grid with { Modes = [MixMode.Baseline, MixMode.SsMix] }, template);
        Assert.Equal(2 * 2 * 2 * 2, withSsMix.Count);
        Assert.Contains(withSsMix, r => r.Name == "all/seed-8/ssmix-lr0.0001");

        // shards: disjoint, together the plan, the same from any plan computed independently
        var shards = Enumerable.Range(1, 5).Select(k => ExperimentPlan.Shard(plan, k, 5)).ToList();
        Assert.Equal(plan.Select(r => r.Name).Order(), shards.SelectMany(s => s.Select(r => r.Name)).Order());
        Assert.Equal(shards[2].Select(r => r.Name), ExperimentPlan.Shard(ExperimentPlan.Plan("/elsewhere", grid, template), 3, 5).Select(r => r.Name));
        Assert.All(shards, s => Assert.InRange(s.Count, plan.Count / 5, plan.Count / 5 + 1));
    }

    [Theory]
    [InlineData("3/2", "--shard 3/2: K must be in 1..N")]
    [InlineData("0/2", "--shard 0/2: K must be in 1..N")]
    [InlineData("1/0", "--shard 1/0: K must be in 1..N")]
    [InlineData("2", "--shard '2' is not K/N")]
    [InlineData("a/b", "--shard 'a/b' is not K/N")]
    public void BadShardsAreRefused(string shard, string message) =>
        Assert.StartsWith(message, Assert.Throws<ArgumentException>(() => ExperimentPlan.ParseShard(shard)).Message);

    [Theory]
    [InlineData("--lrs", "2e-5,fast", "--lrs: 'fast' is not a number")]
    [InlineData("--lrs", "1e-4,", "--lrs: '' is not a number")]
    [InlineData("--lrs", "-1e-4", "--lrs: -1e-4 is not positive")]
    [InlineData("--alphas", "0.2,0", "--alphas: 0 is not positive")]
    [InlineData("--alphas", "1,NaN", "--alphas: 'NaN' is not a finite number")]
    [InlineData("--alphas", "1e39", "--alphas: '1e39' is not a finite number")]
    public void BadNumberListsAreRefused(string option, string text, string message) =>
        Assert.StartsWith(message, Assert.Throws<ArgumentException>(() => ExperimentPlan.ParsePositiveNumbers(option, text)).Message);

    [Fact]
    public void EveryRunRunsOnceOnOneDeviceAtATime()
    {
        var runs = Enumerable.Range(0, 23).ToList();
        var busy = new ConcurrentDictionary<int, int>();
        int concurrent = 0, peak = 0;
        var seen = new ConcurrentBag<(int Run, int Device)>();
        var outcome = DeviceScheduler.Run(runs, [0, 1, 2], (run, device) =>
        {
            Assert.Equal(1, busy.AddOrUpdate(device, 1, (_, n) => n + 1)); // never two runs on one device
            int now = Interlocked.Increment(ref concurrent);
            InterlockedMax(ref peak, now);
            Thread.Sleep(5 + run % 4 * 5);
            seen.Add((run, device));
            Interlocked.Decrement(ref concurrent);
            busy[device]--;
            return 0;
        });
        Assert.Equal(runs, seen.Select(s => s.Run).Order());
        Assert.Equal(3, peak);
        Assert.Equal(new[] { 0, 1, 2 }, seen.Select(s => s.Device).Distinct().Order());
        Assert.All(seen, s => Assert.Equal(s.Device, outcome.Devices[s.Run]));
        Assert.All(outcome.Codes, c => Assert.Equal(0, c));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        for (int seen = Volatile.Read(ref target); value > seen; seen = Volatile.Read(ref target))
            if (Interlocked.CompareExchange(ref target, value, seen) == seen) return;
    }

    [Fact]
    public void AFailedRunStopsNewRunsAndTheRunsUnderWayFinish()
    {
        var started = new ConcurrentBag<int>();
        var outcome = DeviceScheduler.Run(Enumerable.Range(0, 50).ToList(), [0, 1], (run, device) =>
        {
            started.Add(run);
            Thread.Sleep(10);
            return run == 3 ? 4 : 0;
        });
        Assert.Equal(4, outcome.Codes[3]);
        Assert.True(outcome.NotStarted >= 44, $"{outcome.NotStarted} not started");
        Assert.All(started, r => Assert.NotNull(outcome.Codes[r])); // whatever started, finished
        Assert.Throws<InvalidOperationException>(() => DeviceScheduler.Run(new[] { 1, 2, 3 }, [0, 1], (run, _) => run == 2 ? throw new InvalidOperationException("bug") : 0));
        var stopped = DeviceScheduler.Run(new[] { 1, 2, 3 }, [0], (_, _) => 0, stop: () => true);
        Assert.Equal(3, stopped.NotStarted);
    }

    /// <summary>A local path spelt otherwise (absolute, a trailing separator) is the same input for a grid.</summary>
    [Fact]
    public void ARelativeLocalPathRecordedEarlierIsTheSameInput()
    {
        string data = TempDir(), folder = TempDir();
        string relative = Path.GetRelativePath(Environment.CurrentDirectory, data);
        var recorded = new RunInputs("org/model", relative);
        new RunFolder(folder).WriteArgs(new RunArgs(recorded, "m", new Dictionary<string, IReadOnlyList<string>>(), ["0", "1"], new TrainOptions(), 10, "cpu"));
        var run = new PlannedRun(new TrainSize(null, null), 42, MixMode.Baseline, "baseline", folder, new TrainOptions());
        Assert.Empty(ExperimentPlan.Differences(run, recorded with { Dataset = data }));
        string other = TempDir();
        Assert.Equal([$"--dataset {relative} (planned: {other})"], ExperimentPlan.Differences(run, recorded with { Dataset = other }));
        Assert.Empty(ExperimentPlan.Differences(run, recorded with { Dataset = data + "/" })); // spelt otherwise
    }
}

