using System.Runtime.InteropServices;
using MixupBert.Kernels.Cpu;
using MixupBert.Kernels.Cuda;

namespace MixupBert.Tests.CudaShim;

/// <summary>
/// <see cref="IGpu"/> on the CPU: "device" memory is host memory, kernels are kernels.cu compiled
/// against the shim, GEMMs are the CPU backend's (cuBLAS is the one part a GPU alone can check); a GEMM
/// over bfloat16 reads its operands exactly, multiplies in float32 and rounds its output once, as cuBLAS
/// with CUBLAS_COMPUTE_32F does (the order of the float32 sums differs).
/// </summary>
public sealed unsafe class ShimGpu : IGpu
{
    private readonly HashSet<nint> live = new();

    public string Name => "CUDA shim on the CPU";
    public IGpuBlas Blas { get; } = new CpuBlas();

    public nint Alloc(long bytes)
    {
        nint p = (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 4), 64);
        // poison: a kernel that reads memory nobody wrote sees NaN, not a lucky zero, as a float32 and
        // as either bfloat16 of the word (0x7FC0 is a bf16 NaN; float32's NaN 0x7FC00000 has a bf16 +0 half)
        new Span<uint>((void*)p, (int)(Math.Max(bytes, 4) / 4)).Fill(0x7FC07FC0u);
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

    public nint AllocHost(long bytes) => (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 4), 64);

    public void FreeHost(nint pointer) => NativeMemory.AlignedFree((void*)pointer);

    public void CopyToDeviceAsync(nint destination, nint hostSource, long bytes) => Buffer.MemoryCopy((void*)hostSource, (void*)destination, bytes, bytes);

    public void Fill32(nint destination, uint value, long count) => new Span<uint>((void*)destination, (int)count).Fill(value);

    public nint Kernel(string name, DType activations) => NativeLibrary.GetExport(ShimLibrary.Handle(activations), "shim_launch_" + name);

    public void Launch(nint kernel, Dim3 grid, Dim3 block, void** args)
    {
        // CUDA's launch limits, which the shim would not otherwise feel: a launch past them fails on a GPU
        if (grid.X > int.MaxValue || grid.Y > 65535 || grid.Z > 65535 || (long)block.X * block.Y * block.Z > 1024 || block.Z > 64)
            throw new InvalidOperationException($"launch ({grid.X}, {grid.Y}, {grid.Z}) × ({block.X}, {block.Y}, {block.Z}) exceeds CUDA's limits");
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
        public void Gemm(bool transA, bool transB, int m, int n, int k, nint a, int lda, nint b, int ldb, nint c, int ldc, bool accumulate, GemmTypes types)
        {
            if (types == GemmTypes.F32)
                Kernels.Cpu.Gemm.MultiplySerial(transA, transB, m, n, k, (float*)a, lda, (float*)b, ldb, (float*)c, ldc, accumulate);
            else
                MixedGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, types);
        }

        public void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, nint a, int lda, long strideA,
            nint b, int ldb, long strideB, nint c, int ldc, long strideC, int batch, bool accumulate, GemmTypes types)
        {
            int ab = types.Operands.Size(), cb = types.Output.Size();
            for (int i = 0; i < batch; i++)
                Gemm(transA, transB, m, n, k, a + (nint)(i * strideA * ab), lda, b + (nint)(i * strideB * ab), ldb,
                    c + (nint)(i * strideC * cb), ldc, accumulate, types);
        }

        /// <summary>Operands widened to float32, the product in float32 (plus C when accumulating), then
        /// rounded once into C's type.</summary>
        private static void MixedGemm(bool transA, bool transB, int m, int n, int k, nint a, int lda, nint b, int ldb, nint c, int ldc,
            bool accumulate, GemmTypes types)
        {
            var fa = Widen(a, transA ? k : m, transA ? m : k, lda, types.Operands);
            var fb = Widen(b, transB ? n : k, transB ? k : n, ldb, types.Operands);
            var fc = accumulate ? Widen(c, m, n, ldc, types.Output) : new float[m * n];
            fixed (float* pa = fa, pb = fb, pc = fc)
                Kernels.Cpu.Gemm.MultiplySerial(transA, transB, m, n, k, pa, transA ? m : k, pb, transB ? k : n, pc, n, accumulate);
            for (int r = 0; r < m; r++)
                for (int j = 0; j < n; j++)
                    if (types.Output == DType.BF16) ((ushort*)c)[(long)r * ldc + j] = BFloat16.FromFloat(fc[r * n + j]);
                    else ((float*)c)[(long)r * ldc + j] = fc[r * n + j];
        }

        /// <summary>A rows × cols row-major matrix with leading dimension ld, as a dense float32 array.</summary>
        private static float[] Widen(nint p, int rows, int cols, int ld, DType type)
        {
            var dense = new float[rows * cols];
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++)
                    dense[r * cols + j] = type == DType.BF16 ? BFloat16.ToFloat(((ushort*)p)[(long)r * ld + j]) : ((float*)p)[(long)r * ld + j];
            return dense;
        }
    }
}
