using MixupBert.Model.Diagnostics;
using MixupBert.Tests.CudaShim;

namespace MixupBert.Tests.Cuda;

/// <summary>
/// The GPU self-test (every kernel of kernels.cu and the whole CUDA backend against the CPU
/// backend) run in CI on the CUDA shim: the real kernel code, executed on the CPU.
/// </summary>
public class SelfTestOnShimTests(Xunit.Abstractions.ITestOutputHelper output)
{
    public static TheoryData<string> Checks => new(GpuSelfTest.Checks.Select(c => c.Name));

    [Theory]
    [MemberData(nameof(Checks))]
    public void AgreesWithTheCpuBackend(string check)
    {
        using var gpu = new ShimGpu();
        var result = GpuSelfTest.Run(GpuSelfTest.Checks.Single(c => c.Name == check), gpu);
        output.WriteLine($"{check}: {(result.Passed ? "pass" : "FAIL")}, {result.Detail}");
        Assert.True(result.Passed, $"{check}: {result.Detail}");
    }

    [Fact]
    public void OnlyTakesTheChecksNamingOneOfItsWordsIgnoringCase()
    {
        Assert.Equal(GpuSelfTest.Checks, GpuSelfTest.Named(GpuSelfTest.Checks, []));
        var picked = GpuSelfTest.Named(GpuSelfTest.Checks, ["BF16 Layernorm", "embedding mixed"]).Select(c => c.Name).ToList();
        var expected = GpuSelfTest.Checks.Select(c => c.Name)
            .Where(n => n.StartsWith("bf16 layernorm", StringComparison.Ordinal) || n.Contains("embedding mixed", StringComparison.Ordinal)).ToList();
        Assert.Equal(expected, picked);
        Assert.Contains("bf16 layernorm 70x384 residual dropout", picked);
        Assert.Contains("embedding mixed 8x64x48 long buckets", picked);
        Assert.Contains("bf16 embedding mixed 8x64x48 long buckets", picked);
        Assert.DoesNotContain(picked, n => n.StartsWith("layernorm", StringComparison.Ordinal));
        Assert.Empty(GpuSelfTest.Named(GpuSelfTest.Checks, ["no such check"]));
    }

    [Fact]
    public void EveryKernelInKernelsCuIsExercised()
    {
        // a kernel added to kernels.cu without a check would run nowhere before it meets a GPU: in
        // either module (float32 and bf16 activations)
        var used = new HashSet<(string, Kernels.Cuda.DType)>();
        using var gpu = new RecordingGpu(new ShimGpu(), used);
        foreach (var check in GpuSelfTest.Checks) GpuSelfTest.Run(check, gpu);
        foreach (var type in new[] { Kernels.Cuda.DType.F32, Kernels.Cuda.DType.BF16 })
        {
            var declared = ShimLibrary.ParseKernels(ShimLibrary.KernelSource(type)).Select(k => k.Name).ToList();
            Assert.Empty(declared.Where(k => !used.Contains((k, type))).Select(k => $"{k} ({type})"));
        }
    }

    /// <summary>A shim GPU that records the names of the kernels asked for.</summary>
    private sealed unsafe class RecordingGpu(ShimGpu inner, HashSet<(string, Kernels.Cuda.DType)> used) : Kernels.Cuda.IGpu
    {
        private readonly ShimGpu current = inner;
        public string Name => current.Name;
        public Kernels.Cuda.IGpuBlas Blas => current.Blas;
        public nint Alloc(long bytes) => current.Alloc(bytes);
        public void Free(nint pointer) => current.Free(pointer);
        public void CopyToDevice<T>(nint destination, ReadOnlySpan<T> source) where T : unmanaged => current.CopyToDevice(destination, source);
        public void CopyToHost<T>(Span<T> destination, nint source) where T : unmanaged => current.CopyToHost(destination, source);
        public void Fill32(nint destination, uint value, long count) => current.Fill32(destination, value, count);
        public nint AllocHost(long bytes) => current.AllocHost(bytes);
        public void FreeHost(nint pointer) => current.FreeHost(pointer);
        public void CopyToDeviceAsync(nint destination, nint hostSource, long bytes) => current.CopyToDeviceAsync(destination, hostSource, bytes);
        public void CopyToHostAsync(nint hostDestination, nint source, long bytes) => current.CopyToHostAsync(hostDestination, source, bytes);
        public nint CreateEvent() => current.CreateEvent();
        public void RecordEvent(nint gpuEvent) => current.RecordEvent(gpuEvent);
        public void WaitEvent(nint gpuEvent) => current.WaitEvent(gpuEvent);
        public void DestroyEvent(nint gpuEvent) => current.DestroyEvent(gpuEvent);
        public nint Kernel(string name, Kernels.Cuda.DType activations) { used.Add((name, activations)); return current.Kernel(name, activations); }
        public void PreferSharedMemory(nint kernel) => current.PreferSharedMemory(kernel);
        public void Launch(nint kernel, Kernels.Cuda.Dim3 grid, Kernels.Cuda.Dim3 block, void** args) => current.Launch(kernel, grid, block, args);
        public void Dispose() => current.Dispose();
    }
}
