using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>--precision: a GPU precision asked of the CPU is an error that says why (exit 2, no stack
/// trace), never a silent float32 run; fp32 and auto run on the CPU.</summary>
public class PrecisionCliTests
{
    private static readonly Dictionary<string, string?> NoGpu = new() { ["CUDA_VISIBLE_DEVICES"] = "" };

    [Theory]
    [InlineData("cpu", "bf16")]
    [InlineData("cpu", "tf32")]
    [InlineData("auto", "bf16")]
    public void AGpuPrecisionOnTheCpuIsRefusedWithTheReason(string backend, string precision)
    {
        var dir = Cli.TinyModelRepo(TempDir());
        var r = Cli.Run(NoGpu, "predict", "--checkpoint", dir, "--backend", backend, "--precision", precision, "a fine film");
        Assert.True(r.ExitCode == 2, r.All);
        Assert.Contains($"--precision {precision} needs a CUDA GPU", r.Stderr);
        Assert.Contains("the CPU computes in fp32 only", r.Stderr);
        Assert.DoesNotContain("   at ", r.All);
        Assert.Equal("", r.Stdout.Trim());
    }

    [Fact]
    public void AnUnknownPrecisionIsRefusedByTheParser()
    {
        var dir = Cli.TinyModelRepo(TempDir());
        var r = Cli.Run(NoGpu, "predict", "--checkpoint", dir, "--backend", "cpu", "--precision", "fp16", "a fine film");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("fp16", r.Stderr);
    }

    [Theory]
    [InlineData("fp32")]
    [InlineData("auto")]
    public void Fp32AndAutoRunOnTheCpu(string precision)
    {
        var dir = Cli.TinyModelRepo(TempDir());
        var r = Cli.Run(NoGpu, "predict", "--checkpoint", dir, "--backend", "cpu", "--precision", precision, "a fine film");
        Assert.True(r.ExitCode == 0, r.All);
        Assert.Contains("\"label\"", r.Stdout);
    }
}
