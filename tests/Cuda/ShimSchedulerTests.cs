using System.Diagnostics;
using MixupBert.Tests.CudaShim;

namespace MixupBert.Tests.Cuda;

/// <summary>
/// The shim's scheduler has teeth: kernels that break CUDA's warp and barrier rules on purpose
/// (tests/CudaShim/scheduler_cases.cpp) stop the launch, or show stale data, as they could on a GPU;
/// the well-formed one runs. Each case runs in its own process, since the shim aborts.
/// </summary>
public class ShimSchedulerTests
{
    private static readonly Lazy<string> Program = new(() => Build("scheduler_cases"));

    /// <summary>Compiles tests/CudaShim/NAME.cpp with the shim's runtime into a program of its own (the
    /// scheduler cases here, the dropout threshold check in <see cref="DropoutThresholdTests"/>).</summary>
    internal static string Build(string name)
    {
        string shim = Path.Combine(ShimLibrary.RepoRoot, "tests", "CudaShim");
        string dir = Path.Combine(Path.GetTempPath(), "mixup-bert-shim", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        string exe = Path.Combine(dir, name);
        var (code, _, err) = Run(Environment.GetEnvironmentVariable("CXX") ?? "g++",
            $"-std=c++20 -O1 -pthread -I \"{shim}\" -include cuda_shim.h -o \"{exe}\" \"{Path.Combine(shim, name + ".cpp")}\" \"{Path.Combine(shim, "shim_runtime.cpp")}\"");
        Assert.True(code == 0, $"compiling {name}.cpp failed:\n" + err);
        return exe;
    }

    internal static (int Code, string Out, string Err) Run(string file, string args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }

    [Theory]
    [InlineData("divergent_masks", "wait at different warp collectives")]      // xor 1 on half the warp, xor 2 on the other
    [InlineData("shuffle_against_mma", "wait at different warp collectives")]  // a shuffle against mma.sync
    [InlineData("one_lane_short", "while the others are at __syncthreads() or done")]
    public void AWarpSplitAcrossCollectivesStopsTheLaunch(string name, string message)
    {
        var (code, _, err) = Run(Program.Value, name);
        Assert.NotEqual(0, code);
        Assert.Contains(message, err);
    }

    [Fact]
    public void AWellFormedKernelRuns() => Assert.Equal("ok", Run(Program.Value, "well_formed").Out.Trim());

    /// <summary>Warp 0 writes shared memory that the others read with no barrier between: on the shim as on a
    /// GPU some block must read stale data. Before odd blocks ran their warps last to first, warp 0 always ran
    /// first and this passed.</summary>
    [Fact]
    public void AMissingBarrierAfterWarpZerosWritesShowsStaleData() => Assert.Equal("stale", Run(Program.Value, "missing_barrier").Out.Trim());
}
