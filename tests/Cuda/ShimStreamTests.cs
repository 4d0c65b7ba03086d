using MixupBert.Tests.CudaShim;

namespace MixupBert.Tests.Cuda;

/// <summary>
/// The shim's model of a CUDA stream has teeth: what a GPU does asynchronously happens on the shim
/// only when the host waits, so a host that rewrites a staging buffer too early, or reads a result
/// before waiting for it, sees the wrong numbers here as it would on a GPU.
/// </summary>
public unsafe class ShimStreamTests
{
    [Fact]
    public void AnAsyncUploadReadsTheHostBufferWhenTheStreamRunsIt()
    {
        using var gpu = new ShimGpu();
        nint host = gpu.AllocHost(4 * sizeof(float)), device = gpu.Alloc(4 * sizeof(float));
        var staging = new Span<float>((void*)host, 4);
        staging.Fill(1f);
        gpu.CopyToDeviceAsync(device, host, 4 * sizeof(float));
        staging.Fill(2f); // too early: the stream has not copied it yet
        var back = new float[4];
        gpu.CopyToHost<float>(back, device);
        Assert.Equal([2f, 2f, 2f, 2f], back); // the rewritten data went up, as on a GPU
        gpu.FreeHost(host);
    }

    [Fact]
    public void APinnedResultIsStaleUntilItsEventAndLaterWorkStaysQueued()
    {
        using var gpu = new ShimGpu();
        nint device = gpu.Alloc(sizeof(float)), host = gpu.AllocHost(sizeof(float)), done = gpu.CreateEvent();
        gpu.Fill32(device, BitConverter.SingleToUInt32Bits(5f), 1);
        gpu.CopyToHostAsync(host, device, sizeof(float));
        gpu.RecordEvent(done);
        gpu.Fill32(device, BitConverter.SingleToUInt32Bits(9f), 1);
        Assert.True(float.IsNaN(*(float*)host)); // read before the event: the poison of fresh host memory
        Assert.Equal(3, gpu.Pending);
        gpu.WaitEvent(done);
        Assert.Equal(5f, *(float*)host);
        Assert.Equal(1, gpu.Pending); // the fill after the event has not run
        var back = new float[1];
        gpu.CopyToHost<float>(back, device); // a synchronous copy waits for everything
        Assert.Equal(9f, back[0]);
        gpu.DestroyEvent(done);
        gpu.FreeHost(host);
    }

    [Fact]
    public void KernelsAndGemmsRunWhenTheHostWaitsWithTheArgumentsOfTheirLaunch()
    {
        using var gpu = new ShimGpu();
        var g = new Kernels.Cuda.GpuContext(gpu);
        nint a = gpu.Alloc(4 * 4), b = gpu.Alloc(4 * 4), c = gpu.Alloc(4 * 4);
        gpu.CopyToDevice<float>(a, [1f, 2f, 3f, 4f]);
        gpu.CopyToDevice<float>(b, [1f, 0f, 0f, 1f]);
        gpu.Blas.Gemm(false, false, 2, 2, 2, a, 2, b, 2, c, 2, false, Kernels.Cuda.GemmTypes.F32); // c = a · I
        Kernels.Cuda.Activations.TanhForward(g, c, a, 4); // a = tanh(c): its arguments' stack is gone when it runs
        Assert.Equal(2, gpu.Pending);
        var back = new float[4];
        gpu.CopyToHost<float>(back, a);
        for (int i = 0; i < 4; i++) Assert.Equal(MathF.Tanh(i + 1), back[i], 1e-6f);
        Assert.Equal(0, gpu.Pending);
    }
}
