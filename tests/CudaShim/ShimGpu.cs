using System.Runtime.InteropServices;
using MixupBert.Kernels.Cpu;
using MixupBert.Kernels.Cuda;

namespace MixupBert.Tests.CudaShim;

/// <summary>
/// <see cref="IGpu"/> on the CPU: "device" memory is host memory, kernels are kernels.cu compiled
/// against the shim, GEMMs are the CPU backend's (cuBLAS is the one part a GPU alone can check).
/// </summary>
public sealed unsafe class ShimGpu : IGpu
{
    private readonly HashSet<nint> live = new();

    public string Name => "CUDA shim on the CPU";
    public IGpuBlas Blas { get; } = new CpuBlas();

    public nint Alloc(long bytes)
    {
        nint p = (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 4), 64);
        // poison: a kernel that reads memory nobody wrote sees NaN, not a lucky zero
        new Span<float>((void*)p, (int)(Math.Max(bytes, 4) / 4)).Fill(float.NaN);
        live.Add(p);
        return p;
    }

    public void Free(nint pointer)
    {
        if (live.Remove(pointer)) NativeMemory.AlignedFree((void*)pointer);
    }

    public void CopyToDevice<T>(nint destination, ReadOnlySpan<T> source) where T : unmanaged
        => source.CopyTo(new Span<T>((void*)destination, source.Length));

    public void CopyToHost<T>(Span<T> destination, nint source) where T : unmanaged
        => new ReadOnlySpan<T>((void*)source, destination.Length).CopyTo(destination);

    public void Fill32(nint destination, uint value, long count) => new Span<uint>((void*)destination, (int)count).Fill(value);

    public nint Kernel(string name) => NativeLibrary.GetExport(ShimLibrary.Handle, "shim_launch_" + name);

    public void Launch(nint kernel, Dim3 grid, Dim3 block, void** args)
    {
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0) return;
        ((delegate* unmanaged<uint, uint, uint, uint, uint, uint, void**, void>)kernel)(grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, args);
    }

    public void Dispose()
    {
        foreach (var p in live) NativeMemory.AlignedFree((void*)p);
        live.Clear();
    }

    /// <summary>Row-major GEMMs with the CPU kernel, on raw pointers.</summary>
    private sealed class CpuBlas : IGpuBlas
    {
        public void Gemm(bool transA, bool transB, int m, int n, int k, nint a, int lda, nint b, int ldb, nint c, int ldc, bool accumulate)
            => Kernels.Cpu.Gemm.MultiplySerial(transA, transB, m, n, k, (float*)a, lda, (float*)b, ldb, (float*)c, ldc, accumulate);

        public void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, nint a, int lda, long strideA,
            nint b, int ldb, long strideB, nint c, int ldc, long strideC, int batch, bool accumulate)
        {
            for (int i = 0; i < batch; i++)
                Kernels.Cpu.Gemm.MultiplySerial(transA, transB, m, n, k, (float*)a + i * strideA, lda, (float*)b + i * strideB, ldb,
                    (float*)c + i * strideC, ldc, accumulate);
        }
    }
}
