namespace MixupBert.Tests.Training;

/// <summary>
/// Every failure a user can cause ends in exit 2 with a message naming the option, file or folder,
/// no stack trace unless --verbose, and nothing written. Each case was an unhandled exception
/// (exit 1 and a stack trace), a crash, or a misleading message before (issue 10).
/// </summary>
public class ErrorPathTests
{
    private static readonly Dictionary<string, string?> NoHub = new() { ["HF_HUB_OFFLINE"] = "1" };

    private static void AssertBadInput(Cli.Result r, string mustName)
    {
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}, expected 2:\n{r.All}");
        Assert.Contains(mustName, r.Stderr);
        Assert.DoesNotContain("   at ", r.All); // no stack trace without --verbose
    }

    [Theory]
    [InlineData("--alpha", "1e39")]          // float.Parse reads it as ∞, which once failed when written to JSON
    [InlineData("--weight-decay", "NaN")]
    [InlineData("--lr", "Infinity")]
    [InlineData("--max-grad-norm", "-1")]
    [InlineData("--batch-size", "2147483647")] // lr became 0, then SIGSEGV
    [InlineData("--epochs", "0")]
    [InlineData("--max-length", "1")]
    [InlineData("--ssmix-span", "0")]
    [InlineData("--ssmix-span", "1.5")]
    [InlineData("--ssmix-span", "NaN")]
    public void TrainOptionOutOfRangeIsRefusedBeforeAnythingIsWritten(string option, string value)
    {
        var output = Path.Combine(TestSupport.TempDir(), "run");
        var r = Cli.Run(NoHub, "train", "--output", output, option, value);
        AssertBadInput(r, option);
        Assert.False(Directory.Exists(output), "the run folder was created for a refused option");
    }

    [Fact]
    public void SelfTestOnlyNamingNoCheckIsRefusedBeforeLookingForADevice()
        => AssertBadInput(Cli.Run(NoHub, "selftest", "--only", "bf16 atention,layernrom"), "no selftest check's name contains 'bf16 atention' or 'layernrom'");

    [Fact]
    public void UnknownOptionIsBadInput() => AssertBadInput(Cli.Run(NoHub, "train", "--epoch", "3"), "--epoch");

    [Fact]
    public void BenchWithZeroStepsIsRefused()
    {
        var config = Path.Combine(TestSupport.SharedDir, "hf", "google-bert", "bert-base-cased", "resolve", "main", "config.json");
        AssertBadInput(Cli.Run(NoHub, "bench", "--model", config, "--steps", "0"), "--steps");
    }

    [Fact]
    public void ReportOfAMissingFolderNamesIt()
    {
        var missing = Path.Combine(TestSupport.TempDir(), "no-such-experiment");
        AssertBadInput(Cli.Run(NoHub, "report", missing), "no-such-experiment");
    }

    [Fact]
    public void ConvertOntoAFileNamesIt()
    {
        var file = Path.Combine(TestSupport.TempDir(), "model.bin");
        File.WriteAllText(file, "keep me");
        AssertBadInput(Cli.Run(NoHub, "convert", "--model", TestSupport.MiniLmDir, "--output", file), "model.bin");
        Assert.Equal("keep me", File.ReadAllText(file));
    }

    [Fact]
    public void PredictWithAMissingCheckpointNamesIt()
    {
        var missing = Path.Combine(TestSupport.TempDir(), "no-checkpoint");
        AssertBadInput(Cli.Run(NoHub, "predict", "--checkpoint", missing, "good"), "no-checkpoint");
    }

    [Fact]
    public void EvalWithACorruptArgsJsonNamesTheFile()
    {
        var dir = TestSupport.TempDir();
        foreach (var f in Directory.GetFiles(TestSupport.MiniLmDir)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        File.WriteAllText(Path.Combine(dir, "args.json"), "{\"dataset\": 17}");
        AssertBadInput(Cli.Run(NoHub, "eval", "--checkpoint", dir), "args.json");
        File.WriteAllText(Path.Combine(dir, "args.json"), "{not json");
        AssertBadInput(Cli.Run(NoHub, "eval", "--checkpoint", dir), "args.json");
    }

    [Fact]
    public void EvalOfACheckpointWithoutArgsJsonSaysWhichDatasetItReads()
    {
        var r = Cli.Run(NoHub, "eval", "--checkpoint", TestSupport.MiniLmDir, "--backend", "cpu");
        Assert.Contains($"warning: {TestSupport.MiniLmDir} has no args.json (it was not trained by mixup-bert): evaluating on the default dataset, cornell-movie-review-data/rotten_tomatoes; --dataset names another", r.Stderr);
    }

    [Fact]
    public void EvalJsonIntoAMissingFolderIsRefusedBeforeEvaluating()
    {
        var dir = TestSupport.TempDir();
        var json = Path.Combine(dir, "no-such-folder", "metrics.json");
        AssertBadInput(Cli.Run(NoHub, "eval", "--checkpoint", TestSupport.MiniLmDir, "--json", json), "no-such-folder");
    }

    [Fact]
    public void VerboseShowsTheStackTrace()
    {
        var missing = Path.Combine(TestSupport.TempDir(), "no-checkpoint");
        var r = Cli.Run(NoHub, "predict", "--checkpoint", missing, "--verbose", "good");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("   at ", r.Stderr);
    }
}
