namespace MixupBert.Tests.Cuda;

/// <summary>
/// The flash attention kernels keep an element when hash >> 8 >= dropout_threshold(p), in integers;
/// every other kernel and the CPU keep it when dropout_uniform(...) >= p, in floats. The two rules
/// disagree, if at all, at one hash value in 2^24 (a threshold off by one), which no comparison of outputs
/// would find, so tests/CudaShim/dropout_threshold_check.cpp compares them directly at the edges of the
/// thresholds of twenty thousand p and through the hash itself, compiled from kernels/common.cuh with the
/// shim. A ceiling taken as a floor or a rounding, or one added, made 13 000 to 80 000 of its cases fail.
/// </summary>
public class DropoutThresholdTests
{
    [Fact]
    public void TheIntegerThresholdKeepsExactlyWhatTheUniformDoes()
    {
        var (code, output, err) = ShimSchedulerTests.Run(ShimSchedulerTests.Build("dropout_threshold_check"), "");
        Assert.True(code == 0, output + err);
        Assert.StartsWith("ok ", output.Trim());
    }
}
