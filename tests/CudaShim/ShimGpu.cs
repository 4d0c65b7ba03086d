using System.Runtime.InteropServices;
using MixupBert.Kernels.Cpu;
using MixupBert.Kernels.Cuda;

namespace MixupBert.Tests.CudaShim;

/// <summary>
/// <see cref="IGpu"/> on the CPU: "device" memory is host memory, kernels are kernels.cu compiled
/// against the shim, GEMMs are the CPU backend's (cuBLAS is the one part a GPU alone can check); a GEMM
/// over bfloat16 reads its operands exactly, multiplies in float32 and rounds its output once, as cuBLAS
/// with CUBLAS_COMPUTE_32F does (the order of the float32 sums differs).
/// <para>
/// The stream is modelled as <see cref="CudaGpu"/> drives it: what is asynchronous on a GPU (launches,
/// GEMMs, Fill32, the *Async copies) is queued and runs, in order, only when the host waits: a
/// synchronous copy, a free or the end of the stream (everything), or <see cref="WaitEvent"/> (up to
/// the event). So a host that rewrites a staging buffer before the stream has copied it, or reads a
/// result before waiting for it, gets the wrong numbers here as it would on a GPU.
/// </para>
/// </summary>
public sealed unsafe class ShimGpu : IGpu
{
    private readonly Dictionary<nint, long> live = new(); // an allocation → its size
    private long liveBytes;
    private readonly HashSet<nint> liveHost = new(); // AllocHost's allocations not freed
    private string? fault; // set by Fault: every later wait fails with it, as a dead context's calls do

    /// <summary>"Device" memory, as cuMemAlloc sees it: past it Alloc throws what CudaGpu.Alloc throws on
    /// CUDA_ERROR_OUT_OF_MEMORY. Unlimited unless a test sets it.</summary>
    public long MemoryLimit { get; set; } = long.MaxValue;
    /// <summary>Bytes allocated by Alloc and not freed.</summary>
    public long LiveBytes => liveBytes;
    /// <summary>Page-locked host allocations (AllocHost) not freed.</summary>
    public int LiveHostAllocations => liveHost.Count;
    /// <summary>Whether Dispose has run (a device's owner released it).</summary>
    public bool Disposed { get; private set; }

    /// <summary>A kernel fault such as CUDA_ERROR_ILLEGAL_ADDRESS: the context is dead, and from now on
    /// every call that waits for the stream (a synchronisation, an event wait, a free, a synchronous
    /// copy) fails with it, as CudaGpu's calls then do.</summary>
    public void Fault() => fault = "CUDA_ERROR_ILLEGAL_ADDRESS (700): an illegal memory access was encountered";
    private readonly Queue<Action> stream = new();
    private long enqueued, executed; // operations put on the stream / run so far
    private readonly Dictionary<nint, long> events = new(); // an event → how many operations precede its last recording
    private nint lastEvent;
    private readonly Dictionary<nint, int> parameterCounts = new(); // a kernel → its parameter count

    public ShimGpu() => Blas = new CpuBlas(this);

    public string Name => "CUDA shim on the CPU";
    public IGpuBlas Blas { get; }

    /// <summary>Operations enqueued that have not run yet (for tests of the model itself).</summary>
    public int Pending => stream.Count;

    private void Enqueue(Action operation)
    {
        stream.Enqueue(operation);
        enqueued++;
    }

    /// <summary>Runs the stream's operations in order until <paramref name="count"/> of them have run.</summary>
    private void RunUntil(long count)
    {
        if (fault != null) throw new CudaException($"cuStreamSynchronize failed: {fault}");
        while (executed < count)
        {
            var operation = stream.Dequeue();
            executed++;
            operation();
        }
    }

    /// <summary>cuStreamSynchronize: everything enqueued runs.</summary>
    public void Synchronize() => RunUntil(enqueued);

    private static void Poison(nint p, long bytes)
    {
        // a kernel (or a host) that reads memory nobody wrote sees NaN, not a lucky zero, as a float32 and
        // as either bfloat16 of the word (0x7FC0 is a bf16 NaN; float32's NaN 0x7FC00000 has a bf16 +0 half)
        new Span<uint>((void*)p, (int)(Math.Max(bytes, 4) / 4)).Fill(0x7FC07FC0u);
    }

    public nint Alloc(long bytes)
    {
        if (bytes > MemoryLimit - liveBytes) throw GpuOutOfMemoryException.Allocating(Name, bytes, MemoryLimit - liveBytes, MemoryLimit);
        nint p = (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 4), 64);
        Poison(p, bytes);
        live.Add(p, bytes);
        liveBytes += bytes;
        return p;
    }

    public void Free(nint pointer)
    {
        if (pointer == 0) return; // as CudaGpu.Free
        Synchronize(); // as CudaGpu.Free: queued work may still use it
        // cuMemFree of a pointer that is not a live allocation (a double free) fails
        if (!live.Remove(pointer, out long bytes)) throw new CudaException($"cuMemFree failed: CUDA_ERROR_INVALID_VALUE (1): 0x{pointer:X} is not a live allocation");
        NativeMemory.AlignedFree((void*)pointer);
        liveBytes -= bytes;
    }

    // CudaGpu's synchronous copies enqueue the copy, then wait for the stream: the same as running
    // everything queued, then copying
    public void CopyToDevice<T>(nint destination, ReadOnlySpan<T> source) where T : unmanaged
    {
        if (source.IsEmpty) return; // as CudaGpu's
        RequireLive(destination, (long)source.Length * sizeof(T), "cuMemcpyHtoDAsync");
        Synchronize();
        source.CopyTo(new Span<T>((void*)destination, source.Length));
    }

    public void CopyToHost<T>(Span<T> destination, nint source) where T : unmanaged
    {
        if (destination.IsEmpty) return; // as CudaGpu's
        RequireLive(source, (long)destination.Length * sizeof(T), "cuMemcpyDtoHAsync");
        Synchronize();
        new ReadOnlySpan<T>((void*)source, destination.Length).CopyTo(destination);
    }

    public nint AllocHost(long bytes)
    {
        nint p = (nint)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 4), 64);
        Poison(p, bytes); // a result read before its copy has run is NaN
        liveHost.Add(p);
        return p;
    }

    public void FreeHost(nint pointer)
    {
        if (pointer == 0) return; // as CudaGpu.FreeHost
        Synchronize();
        if (!liveHost.Remove(pointer)) throw new CudaException($"cuMemFreeHost failed: CUDA_ERROR_INVALID_VALUE (1): 0x{pointer:X} is not a live page-locked allocation");
        NativeMemory.AlignedFree((void*)pointer);
    }

    /// <summary>A copy or fill of device memory outside every live allocation fails when it is enqueued,
    /// as the driver refuses an invalid address (CUDA_ERROR_INVALID_VALUE), instead of crashing the test host.</summary>
    private void RequireLive(nint pointer, long bytes, string call)
    {
        foreach (var (start, size) in live)
            if (pointer >= start && pointer + bytes <= start + size) return;
        throw new CudaException($"{call} failed: CUDA_ERROR_INVALID_VALUE (1): 0x{pointer:X} (+{bytes} bytes) is not inside a live allocation");
    }

    // the copies read and write host memory when they run, not when they are enqueued
    public void CopyToDeviceAsync(nint destination, nint hostSource, long bytes)
    {
        RequireLive(destination, bytes, "cuMemcpyHtoDAsync");
        Enqueue(() => Buffer.MemoryCopy((void*)hostSource, (void*)destination, bytes, bytes));
    }

    public void CopyToHostAsync(nint hostDestination, nint source, long bytes)
    {
        RequireLive(source, bytes, "cuMemcpyDtoHAsync");
        Enqueue(() => Buffer.MemoryCopy((void*)source, (void*)hostDestination, bytes, bytes));
    }

    public void Fill32(nint destination, uint value, long count)
    {
        RequireLive(destination, count * 4, "cuMemsetD32Async");
        Enqueue(() => new Span<uint>((void*)destination, (int)count).Fill(value));
    }

    public nint CreateEvent()
    {
        events[++lastEvent] = 0; // never recorded: complete, as CUDA's
        return lastEvent;
    }

    public void RecordEvent(nint gpuEvent) => events[gpuEvent] = enqueued;

    public void WaitEvent(nint gpuEvent) => RunUntil(events[gpuEvent]);

    public void DestroyEvent(nint gpuEvent) => events.Remove(gpuEvent);

    public nint Kernel(string name, DType activations)
    {
        nint kernel = NativeLibrary.GetExport(ShimLibrary.Handle(activations), "shim_launch_" + name);
        parameterCounts[kernel] = ShimLibrary.ParameterCount(name, activations);
        return kernel;
    }

    public void PreferSharedMemory(nint kernel) { }   // the shim's shared memory is host memory: no carveout to choose

    public void Launch(nint kernel, Dim3 grid, Dim3 block, void** args)
    {
        // CUDA's launch limits, which the shim would not otherwise feel: a launch past them fails on a GPU
        if (grid.X > int.MaxValue || grid.Y > 65535 || grid.Z > 65535 || (long)block.X * block.Y * block.Z > 1024 || block.Z > 64)
            throw new InvalidOperationException($"launch ({grid.X}, {grid.Y}, {grid.Z}) × ({block.X}, {block.Y}, {block.Z}) exceeds CUDA's limits");
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0) return;
        // args points into the caller's stack: copy the values now, as cuLaunchKernel does (every
        // argument sits in an 8-byte slot of KernelArgs)
        var values = new ulong[parameterCounts[kernel]];
        for (int i = 0; i < values.Length; i++) values[i] = *(ulong*)args[i];
        Enqueue(() => Run(kernel, grid, block, values));
    }

    private static void Run(nint kernel, Dim3 grid, Dim3 block, ulong[] values)
    {
        void** args = stackalloc void*[values.Length];
        fixed (ulong* v = values)
        {
            for (int i = 0; i < values.Length; i++) args[i] = v + i;
            ((delegate* unmanaged<uint, uint, uint, uint, uint, uint, void**, void>)kernel)(grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, args);
        }
    }

    public void Dispose()
    {
        if (Disposed) return;
        Disposed = true;
        stream.Clear(); // work never waited for is dropped with the memory, as cuStreamDestroy may
        foreach (var p in live.Keys) NativeMemory.AlignedFree((void*)p);
        live.Clear(); liveBytes = 0;
    }

    /// <summary>Row-major GEMMs with the CPU kernel, on raw pointers, enqueued on the shim's stream as
    /// cuBLAS enqueues them on the device's.</summary>
    private sealed class CpuBlas(ShimGpu gpu) : IGpuBlas
    {
        public void Gemm(bool transA, bool transB, int m, int n, int k, nint a, int lda, nint b, int ldb, nint c, int ldc, bool accumulate, GemmTypes types)
            => gpu.Enqueue(() => GemmNow(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, types));

        private static void GemmNow(bool transA, bool transB, int m, int n, int k, nint a, int lda, nint b, int ldb, nint c, int ldc, bool accumulate, GemmTypes types)
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
