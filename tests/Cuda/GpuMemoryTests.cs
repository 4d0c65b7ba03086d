using MixupBert.Kernels.Cuda;
using MixupBert.Model.Bert;
using MixupBert.Tests.CudaShim;
using MixupBert.Tool;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Cuda;

/// <summary>Running out of GPU memory is the user's to fix (a smaller batch), not a bug: a
/// <see cref="GpuOutOfMemoryException"/> naming the device and the sizes, and the tool's exit 2 with the
/// options that help. CudaGpu.Alloc throws it on CUDA_ERROR_OUT_OF_MEMORY; the shim, past its
/// MemoryLimit.</summary>
public class GpuMemoryTests
{
    [Fact]
    public void ABatchTooLargeForTheDeviceIsAnOutOfMemoryErrorNamingTheSizes()
    {
        var config = TinyConfig(labels: 2);
        using var shim = new ShimGpu();
        var init = BertCheckpoint.RandomInit(config, 1);
        using var engine = new GpuBertEngine(shim, config, init, DType.BF16);
        var small = RandomBatch(config, 2, 8, 3);
        double before = engine.ForwardBackward(small, null, 5, 1);
        shim.MemoryLimit = shim.LiveBytes + 64 * 1024;   // room for a little more, not for 256 × 16 tokens' activations
        var e = Assert.Throws<GpuOutOfMemoryException>(() => engine.TrainStep(RandomBatch(config, 256, 16, 4), null, 1e-3f, 2, 7, new OptimizerSettings()));
        Assert.Contains("CUDA shim on the CPU: out of GPU memory allocating", e.Message);
        Assert.Contains("MiB free", e.Message);
        Assert.True(e.Bytes > shim.MemoryLimit - shim.LiveBytes, $"the allocation that failed ({e.Bytes} bytes) would have fitted");
        // the engine is still usable for a batch that fits: no buffer freed before the failure is used again
        Assert.Equal(before, engine.ForwardBackward(small, null, 5, 1));
    }

    [Fact]
    public void TheToolExitsWith2AndSaysWhatNeedsLess()
    {
        var error = new StringWriter();
        int code = ErrorReport.Exit(GpuOutOfMemoryException.Allocating("NVIDIA H200", 3L << 30, 1L << 30, 140L << 30), verbose: false, error);
        Assert.Equal(ErrorReport.BadInput, code);
        string text = error.ToString();
        Assert.Contains("NVIDIA H200: out of GPU memory allocating 3072.0 MiB (1024.0 MiB of 143360.0 MiB free)", text);
        Assert.Contains("--batch-size", text);
        Assert.Contains("--eval-batch-size", text);   // training reserves for evaluation batches too (64 by default against 32)
        Assert.DoesNotContain("bug", text);
    }
}
