using System.Globalization;
using System.Reflection;
using System.Text.Json.Nodes;
using MixupBert.Model.Data;
using MixupBert.Model.Bert;
using MixupBert.Model.Training;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>
/// The run folder's typed records against files written by mixup-bert before they were typed
/// (Fixtures/run-records: a finished tmix run with every optional option set, runs interrupted in
/// their first and second epochs, and eval --json): each file is read into its record and written
/// back byte for byte, so that existing run folders still resume, evaluate and report, and Python
/// reads the same keys.
/// </summary>
public class RunRecordsTests
{
    private static string Fixtures
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "MixupBert.sln"))) return Path.Combine(dir.FullName, "tests", "Training", "Fixtures", "run-records");
            throw new DirectoryNotFoundException("repository root not found above " + AppContext.BaseDirectory);
        }
    }

    public static TheoryData<string> Runs => new() { "finished", "first-epoch", "second-epoch" };

    [Theory, MemberData(nameof(Runs))]
    public void ArgsJsonRoundTripsByteForByte(string name)
    {
        var fixture = new RunFolder(Path.Combine(Fixtures, name));
        var copy = new RunFolder(TempDir());
        copy.WriteArgs(fixture.ReadArgs()!);
        string original = File.ReadAllText(fixture.ArgsFile), written = File.ReadAllText(copy.ArgsFile);
        // an option added after the fixture was written (--min-steps) reads as its default and is written as its
        // own line with that default; without those lines the file is the fixture byte for byte
        foreach (var option in TrainOptions.All.Where(o => !original.Contains($"\"{o.Key}\":", StringComparison.Ordinal)))
        {
            string line = $"  \"{option.Key}\": {option.ToJson(new TrainOptions())?.ToJsonString() ?? "null"},\n";
            Assert.Contains(line, written);
            written = written.Replace(line, "");
        }
        Assert.Equal(original, written);
    }

    [Theory, MemberData(nameof(Runs))]
    public void TrainerStateRoundTripsByteForByte(string name)
    {
        string text = File.ReadAllText(new RunFolder(Path.Combine(Fixtures, name)).StateFile);
        Assert.Equal(text, RunJson.Write(RunJson.ReadTrainerState(text)));
    }

    [Theory]
    [InlineData("finished")]
    [InlineData("second-epoch")]
    public void MetricsLinesRoundTripByteForByte(string name)
    {
        foreach (var line in File.ReadAllLines(new RunFolder(Path.Combine(Fixtures, name)).MetricsFile))
            Assert.Equal(line, RunJson.ParseLine(line) switch
            {
                TrainLossRecord loss => RunJson.Line(loss),
                EvalRecord eval => RunJson.Line(eval),
                var other => throw new InvalidOperationException($"unexpected record {other}"),
            });
    }

    [Fact]
    public void SummaryAndEvalJsonRoundTripByteForByte()
    {
        var fixture = new RunFolder(Path.Combine(Fixtures, "finished"));
        var copy = new RunFolder(TempDir());
        copy.WriteSummary(fixture.ReadSummary());
        Assert.Equal(File.ReadAllText(fixture.SummaryFile), File.ReadAllText(copy.SummaryFile));

        string eval = File.ReadAllText(Path.Combine(Fixtures, "eval.json"));
        Assert.Equal(eval, RunJson.Write(RunJson.ReadSummary(File.ReadAllText(fixture.SummaryFile)).Validation));
    }

    [Fact]
    public void TheRecordsReadWhatTheFilesSay()
    {
        var run = new RunFolder(Path.Combine(Fixtures, "finished"));
        var args = run.ReadArgs()!;
        Assert.Equal(new RunInputs(args.Inputs.Model, args.Inputs.Dataset), args.Inputs); // revision and columns at their defaults
        Assert.Equal(["train", "validation", "test"], args.DatasetFiles.Keys);
        Assert.Equal(["0", "1"], args.Labels);
        var o = args.Options;
        Assert.Equal((MixMode.TMix, 2, 8, 3e-4f, 0.1f, 32, 40, true, 7), (o.Mode, o.Epochs, o.BatchSize, o.LearningRate, o.WarmupRatio, o.MaxLength, o.PadTo, o.GroupByLength, o.Seed));
        Assert.Equal([2, 4], o.MixLayers!);
        Assert.Equal((true, (int?)null, (int?)12, 1), (o.LambdaPerExample, o.TrainSize, o.PerClass, o.LoggingSteps));
        Assert.Equal((24, "cpu (2 threads)"), (args.TrainExamples, args.Backend));

        var summary = run.ReadSummary();
        Assert.Equal(("tmix", 1, 1066), (summary.Mode, summary.BestEpoch, summary.Test!.Count));
        Assert.Equal(1059, summary.TestReliability!.Count[7]);

        var log = run.ReadMetrics();
        Assert.Equal([1L, 2, 3, 4, 5, 6], log.TrainLoss.Select(r => r.Step));
        Assert.Equal([("eval", 1), ("eval", 2), ("test", 1)], log.Evaluations.Select(e => (e.Prefix, e.Epoch)));

        var fresh = RunJson.ReadTrainerState(File.ReadAllText(new RunFolder(Path.Combine(Fixtures, "first-epoch")).StateFile));
        Assert.Equal((0, 2, 2L, (double?)null, (string?)null), (fresh.EpochsCompleted, fresh.BatchesInEpoch, fresh.GlobalStep, fresh.BestScore, fresh.Best));
        Assert.Equal(3, fresh.Sha256!.Count);
    }

    /// <summary>The learning rate is recorded as the float the step used (shortest float form), as before.</summary>
    [Fact]
    public void ATrainLossLineKeepsTheLearningRateAsAFloat() =>
        Assert.Equal("{\"loss\":0.5,\"grad_norm\":1.25,\"learning_rate\":0.00024000001,\"epoch\":1.3333,\"step\":3}",
            RunJson.Line(new TrainLossRecord(0.5, 1.25, 0.00024000001f, 1.3333, 3)));

    [Fact]
    public void AWrongTypeInArgsJsonNamesTheFileAndKey()
    {
        var dir = TempDir();
        File.WriteAllText(Path.Combine(dir, "args.json"), "{\"epochs\": \"three\"}");
        var e = Assert.Throws<DataFormatException>(() => new RunFolder(dir).ReadArgs());
        Assert.Contains("args.json: 'epochs' should be an integer, not \"three\"", e.Message);
    }

    /// <summary>Every option of TrainOptions is in the table that the command line and args.json are built from.</summary>
    [Fact]
    public void TheOptionTableCoversEveryOption()
    {
        var properties = typeof(TrainOptions).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).ToList();
        Assert.Equal(properties.Count, TrainOptions.All.Count);
        Assert.Equal(TrainOptions.All.Count, TrainOptions.All.Select(o => o.Key).Distinct().Count());
        // each entry reads and sets its own property: setting every option to a changed value changes each once
        var changed = new TrainOptions();
        foreach (var option in TrainOptions.All)
        {
            var before = changed;
            changed = option.FromJson(changed, JsonNode.Parse(Changed(option, option.ToJson(changed))), "test");
            Assert.NotEqual(option.ToJson(before)?.ToJsonString(), option.ToJson(changed)?.ToJsonString());
        }
        Assert.All(properties, p => Assert.NotEqual(Show(p.GetValue(new TrainOptions())), Show(p.GetValue(changed))));
    }

    /// <summary>Another valid value, as args.json text.</summary>
    private static string Changed(TrainOption option, JsonNode? value) => value switch
    {
        null or JsonArray => option is TrainOption<int[]?> ? "[5]" : "3",
        JsonValue v when v.TryGetValue(out bool b) => (!b).ToString().ToLowerInvariant(),
        JsonValue v when v.TryGetValue(out string? s) => s == "mixup" ? "\"tmix\"" : "\"loss\"",
        _ => (double.Parse(value.ToJsonString(), CultureInfo.InvariantCulture) + 1).ToString(CultureInfo.InvariantCulture),
    };

    private static string Show(object? value) => value is int[] a ? string.Join(",", a) : value?.ToString() ?? "null";
    /// <summary>A record file edited or damaged by hand: the file, the key and, in words, what it should hold; no .NET type
    /// ('System.Single', 'MixupBert.Model.Training.ClassificationMetrics', 'System.Int32').</summary>
    [Theory]
    [InlineData("summary.json", "\"train_examples\": 24,", "\"train_examples\": 24.5,", "'train_examples' should be an integer, not 24.5")]
    [InlineData("summary.json", "\"accuracy\": 0.5046904315196998,", "\"accuracy\": \"high\",", "'validation.accuracy' should be a number, not \"high\"")]
    [InlineData("summary.json", "\"epoch_seconds\": [\n    ", "\"epoch_seconds\": [\n    \"fast\", ", "'epoch_seconds[0]' should be a number, not \"fast\"")]
    [InlineData("metrics.jsonl", "\"learning_rate\":0.0003,", "\"learning_rate\":\"fast\",", "line 2: 'learning_rate' should be a number (float32), not \"fast\"")]
    [InlineData("metrics.jsonl", "\"eval_count\":1066,", "\"eval_count\":\"all\",", "line 4: 'eval_count' should be an integer, not \"all\"")]
    [InlineData("metrics.jsonl", "1066,\"epoch\":1,\"step\":3}", "1066,\"epoch\":1.5,\"step\":3}", "line 4: 'epoch' should be an integer, not 1.5")]
    public void ARecordOfTheWrongTypeSaysWhatItShouldHoldInWords(string file, string original, string damaged, string message)
    {
        var run = new RunFolder(TempDir());
        foreach (var f in new[] { "args.json", "summary.json", "metrics.jsonl" }) File.Copy(Path.Combine(Fixtures, "finished", f), Path.Combine(run.Path, f));
        string path = Path.Combine(run.Path, file), text = File.ReadAllText(path);
        int at = text.IndexOf(original, StringComparison.Ordinal);
        Assert.True(at >= 0, $"{original} is not in the fixture's {file}");
        File.WriteAllText(path, text[..at] + damaged + text[(at + original.Length)..]);
        var e = Assert.Throws<DataFormatException>(() => { run.ReadSummary(); run.ReadMetrics(); });
        Assert.Contains($"{path}", e.Message);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain("System.", e.Message);
        Assert.DoesNotContain("MixupBert.", e.Message);
    }

    /// <summary>A key System.Text.Json's error path writes in brackets ('sha256['step-3/model.safetensors']'): named whole.</summary>
    [Fact]
    public void AKeyWithSlashesOrDotsIsNamedWhole()
    {
        var e = Assert.Throws<DataFormatException>(() => RunJson.ReadTrainerState("{\"sha256\": {\"step-3/model.safetensors\": 5}}"));
        Assert.Equal("trainer_state.json: 'sha256.step-3/model.safetensors' should be a string, not 5", e.Message);
    }

    [Fact]
    public void APlanFileOfTheWrongTypeSaysWhatItShouldHold()
    {
        string file = Path.Combine(TempDir(), "all.json");
        File.WriteAllText(file, "{\"runs\": [1, 2]}");
        var e = Assert.Throws<ArgumentException>(() => MixupBert.Model.Experiments.ExperimentPlan.WritePlan(file, [], "compare"));
        Assert.Contains($"{file}: not a plan file ('runs' and 'commands' should be lists of strings", e.Message);
        Assert.DoesNotContain("System.", e.Message);
    }
}
