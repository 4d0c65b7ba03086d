namespace MixupBert.Kernels.Cuda;

/// <summary>Launch dimensions, as CUDA's dim3.</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1);

/// <summary>
/// What the CUDA backend needs from a device: memory, copies, kernel launches by name and GEMMs.
/// <see cref="CudaGpu"/> implements it on a real GPU through the driver API and cuBLAS; the tests
/// implement it on the CPU over kernels.cu compiled against a CUDA shim, so the same backend code
/// runs in CI. Pointers are device addresses (host addresses on the shim).
/// <para>All work goes to one stream, in order. Launches, GEMMs, <see cref="Fill32"/> and the *Async
/// copies are enqueued and return at once; <see cref="CopyToDevice{T}"/>, <see cref="CopyToHost{T}"/>,
/// <see cref="WaitEvent"/> and the frees wait for the stream (the events: up to where they were recorded).</para>
/// </summary>
public interface IGpu : IDisposable
{
    string Name { get; }
    nint Alloc(long bytes);
    /// <summary>Waits for the stream first: work already enqueued may still use the memory.</summary>
    void Free(nint pointer);
    /// <summary>Waits for the stream, then copies: the caller may reuse the source at once.</summary>
    void CopyToDevice<T>(nint destination, ReadOnlySpan<T> source) where T : unmanaged;
    /// <summary>Waits for the stream, then copies.</summary>
    void CopyToHost<T>(Span<T> destination, nint source) where T : unmanaged;
    /// <summary>Page-locked host memory (cuMemAllocHost), which the *Async copies read and write.</summary>
    nint AllocHost(long bytes);
    /// <summary>Waits for the stream first, as <see cref="Free"/>.</summary>
    void FreeHost(nint pointer);
    /// <summary>Enqueues a copy from page-locked host memory and returns at once: the host must not
    /// rewrite the source before it has waited for the stream past this copy (an event recorded
    /// after it, or any call that waits for the whole stream).</summary>
    void CopyToDeviceAsync(nint destination, nint hostSource, long bytes);
    /// <summary>Enqueues a copy into page-locked host memory and returns at once: the destination
    /// holds the data only once the host has waited for the stream past this copy.</summary>
    void CopyToHostAsync(nint hostDestination, nint source, long bytes);
    /// <summary>An event (cuEventCreate): a mark in the stream that the host can wait for.</summary>
    nint CreateEvent();
    /// <summary>Enqueues the event: it completes when everything enqueued before it has run.</summary>
    void RecordEvent(nint gpuEvent);
    /// <summary>Waits until the event's last recording has completed (cuEventSynchronize); work
    /// enqueued after it may still be pending.</summary>
    void WaitEvent(nint gpuEvent);
    void DestroyEvent(nint gpuEvent);
    /// <summary>Enqueues setting count 32-bit words to value (0 for zeroing floats).</summary>
    void Fill32(nint destination, uint value, long count);
    /// <summary>A handle of the kernel with this name in kernels.cu, from the module built for
    /// activations of type <paramref name="activations"/> (float32, or bfloat16: -DMIXUP_BF16).</summary>
    nint Kernel(string name, DType activations);
    /// <summary>Asks that the SMs running this kernel give their shared memory the most of the memory it shares
    /// with the L1 cache (the carveout), for a kernel whose occupancy needs more shared memory than the driver
    /// might choose. A hint: where it cannot be followed, nothing changes.</summary>
    void PreferSharedMemory(nint kernel);
    /// <summary>Enqueues a kernel; args points to one pointer per kernel parameter, as cuLaunchKernel
    /// (the values are read before it returns: args may point into the caller's stack).</summary>
    unsafe void Launch(nint kernel, Dim3 grid, Dim3 block, void** args);
    IGpuBlas Blas { get; }
}

/// <summary>Row-major GEMMs on device memory, enqueued on the device's stream: C = op(A)·op(B) (+ C when accumulating), operands and
/// output of the given types, always accumulated in float32.</summary>
public interface IGpuBlas
{
    void Gemm(bool transA, bool transB, int m, int n, int k, nint a, int lda, nint b, int ldb, nint c, int ldc, bool accumulate, GemmTypes types);

    void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, nint a, int lda, long strideA,
        nint b, int ldb, long strideB, nint c, int ldc, long strideC, int batch, bool accumulate, GemmTypes types);
}

/// <summary>
/// Kernel arguments collected on the stack: each value in an 8-byte slot (ints and floats in the
/// low bytes, little-endian, as cuLaunchKernel reads them). No allocation per launch.
/// </summary>
public unsafe struct KernelArgs
{
    public const int Max = 20;
    private fixed ulong values[Max];
    private int count;

    public int Count => count;

    private void Put(ulong bits)
    {
        if (count == Max) throw new InvalidOperationException($"more than {Max} kernel arguments");
        values[count++] = bits;
    }

    public KernelArgs Ptr(nint p) { Put((ulong)p); return this; }
    public KernelArgs Int(int v) { Put((uint)v); return this; }
    public KernelArgs UInt(uint v) { Put(v); return this; }
    public KernelArgs Long(long v) { Put((ulong)v); return this; }
    public KernelArgs Float(float v) { Put(BitConverter.SingleToUInt32Bits(v)); return this; }

    /// <summary>Launches with these arguments on <paramref name="gpu"/>.</summary>
    public void Launch(IGpu gpu, nint kernel, Dim3 grid, Dim3 block)
    {
        void** pointers = stackalloc void*[Max];
        fixed (ulong* v = values)
        {
            for (int i = 0; i < count; i++) pointers[i] = v + i;
            gpu.Launch(kernel, grid, block, pointers);
        }
    }
}
