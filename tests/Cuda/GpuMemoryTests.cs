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

    /// <summary>Out of memory where the partial sums' scratch grows (the first backward of a larger batch):
    /// the scratch's old buffer is freed before the allocation fails, and must not be freed again, by
    /// Dispose or a later growth (the shim's Free fails on a pointer that is not live, as cuMemFree does).</summary>
    [Fact]
    public void AFailedGrowthOfThePartialsScratchLeavesNoFreedPointerBehind()
    {
        var config = TinyConfig(labels: 2);
        using var shim = new ShimGpu();
        var engine = new GpuBertEngine(shim, config, BertCheckpoint.RandomInit(config, 1), DType.F32);
        engine.Reserve(32, 16);
        var small = RandomBatch(config, 2, 8, 3);
        double before = engine.ForwardBackward(small, null, 5, 1);
        shim.MemoryLimit = shim.LiveBytes; // the activations are reserved: only the growing scratch allocates now
        // (the failure is in GpuContext.Partial, as a stack trace in a first run shows; not asserted: once
        // the JIT inlines Partial, the trace no longer names it)
        Assert.Throws<GpuOutOfMemoryException>(() => engine.TrainStep(RandomBatch(config, 32, 16, 4), null, 1e-3f, 2, 7, new OptimizerSettings()));
        shim.MemoryLimit = long.MaxValue;
        Assert.Equal(before, engine.ForwardBackward(small, null, 5, 1));
        engine.Dispose();
        Assert.Equal((0L, 0), (shim.LiveBytes, shim.LiveHostAllocations));
    }

    /// <summary>Out of memory where the embedding backward's buckets grow: the next batch that fits must
    /// find no capacity claimed for buffers that were never allocated.</summary>
    [Fact]
    public void AFailedGrowthOfTheEmbeddingBucketsLeavesTheEngineUsable()
    {
        var config = TinyConfig(labels: 2);
        using var shim = new ShimGpu();
        using var engine = new GpuBertEngine(shim, config, BertCheckpoint.RandomInit(config, 1), DType.F32);
        engine.Reserve(32, 16);
        var small = RandomBatch(config, 2, 8, 3);
        double before = engine.ForwardBackward(small, null, 5, 1);
        var big = RandomBatch(config, 32, 16, 4);
        engine.TokenSaliency(big, 5, 1, new float[32 * 16]); // grows the partials' scratch, not the buckets
        shim.MemoryLimit = shim.LiveBytes;
        Assert.Throws<GpuOutOfMemoryException>(() => engine.ForwardBackward(big, null, 5, 1)); // in Embedding.Buckets.Grow (as above)
        shim.MemoryLimit = long.MaxValue;
        Assert.Equal(before, engine.ForwardBackward(small, null, 5, 1)); // its buckets grow anew: before the fix, uploaded to address 0
    }

    /// <summary>A kernel fault kills the context: every later call fails. Disposing the engine must still
    /// release the device it owns (its primary context, and with it the device memory), and report the fault.</summary>
    [Fact]
    public void AnEngineOnADeadContextStillReleasesItsDevice()
    {
        var config = TinyConfig(labels: 2);
        var shim = new ShimGpu();
        var engine = new GpuBertEngine(shim, config, BertCheckpoint.RandomInit(config, 1), DType.F32, ownsGpu: true);
        engine.StartTrainStep(RandomBatch(config, 4, 8, 3), null, 1e-3f, 1, 7, new OptimizerSettings());
        shim.Fault();
        var e = Assert.Throws<CudaException>(engine.Dispose);
        Assert.Contains("CUDA_ERROR_ILLEGAL_ADDRESS", e.Message);
        Assert.True(shim.Disposed);
    }

    /// <summary>Steps, an evaluation and a larger batch, then Dispose: every device and page-locked allocation is freed.</summary>
    [Fact]
    public void DisposeFreesEverything()
    {
        var config = TinyConfig(labels: 2);
        using var shim = new ShimGpu();
        var engine = new GpuBertEngine(shim, config, BertCheckpoint.RandomInit(config, 1), DType.BF16);
        for (int step = 1; step <= 3; step++) engine.TrainStep(RandomBatch(config, 2 * step, 4 * step, step), null, 1e-3f, step, 7, new OptimizerSettings());
        engine.Evaluate(RandomBatch(config, 5, 6, 9), new float[5 * 2]);
        engine.StartTrainStep(RandomBatch(config, 3, 5, 4), null, 1e-3f, 4, 7, new OptimizerSettings()); // in flight at Dispose
        engine.Dispose();
        Assert.Equal((0L, 0), (shim.LiveBytes, shim.LiveHostAllocations));
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
