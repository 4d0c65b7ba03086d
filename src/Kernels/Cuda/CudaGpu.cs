using System.Runtime.InteropServices;

namespace MixupBert.Kernels.Cuda;

/// <summary>
/// A real GPU through the CUDA driver API: the primary context of one device, one stream for all
/// work, the kernels of kernels.cu loaded from the fatbin embedded in this assembly, and cuBLAS.
/// </summary>
public sealed unsafe class CudaGpu : IGpu
{
    private readonly int device;
    private readonly nint context, stream, module, moduleBf16, blasHandle;
    private readonly Dictionary<(string, DType), nint> kernels = new();
    private bool disposed;

    /// <summary>The device ordinal it was opened with (CUDA_VISIBLE_DEVICES numbering).</summary>
    public int Ordinal { get; }
    public string Name { get; }
    public int ComputeCapability { get; }
    public long TotalMemory { get; }
    public IGpuBlas Blas { get; }
    public bool Tf32 { get; }

    private CudaGpu(int ordinal, int device, nint context, nint stream, nint module, nint moduleBf16, nint blasHandle, string name, int cc, long memory, bool tf32)
    {
        Ordinal = ordinal;
        this.device = device; this.context = context; this.stream = stream; this.module = module; this.moduleBf16 = moduleBf16; this.blasHandle = blasHandle;
        Name = name; ComputeCapability = cc; TotalMemory = memory; Tf32 = tf32;
        Blas = new CuBlasGemm(blasHandle, tf32);
    }

    /// <summary>
    /// Device memory in use as the driver counts it (cuMemGetInfo: total − free), what nvidia-smi shows:
    /// every allocation of every process on the device, contexts included, not this process's host
    /// working set. Compared with PyTorch's torch.cuda.mem_get_info, the same figure.
    /// </summary>
    public long DriverMemoryUsed()
    {
        CudaDriver.Check(CudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        CudaDriver.Check(CudaDriver.cuMemGetInfo(out nuint free, out nuint total), "cuMemGetInfo");
        return (long)(total - free);
    }

    /// <summary>Whether the device computes in bfloat16 on tensor cores (compute capability 8.0, Ampere, and newer).</summary>
    public bool SupportsBf16 => ComputeCapability >= 80;

    /// <summary>The embedded fatbin of kernels.cu (float32 activations, or bfloat16 ones when
    /// <paramref name="activations"/> is BF16), or null when the build had no nvcc.</summary>
    public static byte[]? EmbeddedKernels(DType activations = DType.F32)
    {
        using var s = typeof(CudaGpu).Assembly.GetManifestResourceStream(activations == DType.BF16 ? "kernels_bf16.fatbin" : "kernels.fatbin");
        if (s == null) return null;
        var bytes = new byte[s.Length];
        s.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Environment variables naming a file to load instead of the embedded float32 or bf16
    /// kernels: a cubin or fatbin of kernels.cu (bf16: compiled with -DMIXUP_BF16) that holds every kernel.
    /// For kernel development: a variant is measured on a GPU machine by carrying its cubin, without a
    /// new build of the tool (bench/gpu/variants.sh).</summary>
    public const string KernelsVariable = "MIXUP_BERT_KERNELS", KernelsBf16Variable = "MIXUP_BERT_KERNELS_BF16";

    /// <summary>The kernel image that <see cref="Open"/> loads: the file that <see cref="KernelsVariable"/>
    /// (or <see cref="KernelsBf16Variable"/>) names when set, else the embedded one (null: none).</summary>
    public static byte[]? KernelImage(DType activations = DType.F32, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        string variable = activations == DType.BF16 ? KernelsBf16Variable : KernelsVariable;
        if (environment(variable) is not { Length: > 0 } path) return EmbeddedKernels(activations);
        if (!File.Exists(path)) throw new CudaUnavailableException($"{variable} names {path}, which does not exist");
        return File.ReadAllBytes(path);
    }

    /// <summary>
    /// Opens device <paramref name="ordinal"/>. Throws <see cref="CudaUnavailableException"/> with the
    /// reason when there is no driver, no device, no cuBLAS or no kernels in this build.
    /// </summary>
    /// <param name="tf32">TF32 tensor-op GEMMs; null = on for compute capability 8.0 (Ampere) and newer.</param>
    public static CudaGpu Open(int ordinal = 0, bool? tf32 = null)
    {
        var image = KernelImage() ?? throw new CudaUnavailableException("this build of mixup-bert has no CUDA kernels (it was built without nvcc)");
        var imageBf16 = KernelImage(DType.BF16);   // read before the device is touched: a missing file fails here, nothing to release
        int status;
        try { status = CudaDriver.cuInit(0); }
        catch (DllNotFoundException e) { throw new CudaUnavailableException("no CUDA driver (libcuda.so.1 not found)", e); }
        if (status != 0) throw new CudaUnavailableException($"the CUDA driver did not initialise (cuInit returned {status}): no usable GPU");
        CudaDriver.Check(CudaDriver.cuDeviceGetCount(out int count), "cuDeviceGetCount");
        if (count == 0) throw new CudaUnavailableException("the CUDA driver reports no device");
        if (ordinal < 0 || ordinal >= count) throw new CudaUnavailableException($"device {ordinal} asked for, {count} present");
        CudaDriver.Check(CudaDriver.cuDeviceGet(out int dev, ordinal), "cuDeviceGet");
        byte* nameBuf = stackalloc byte[256];
        CudaDriver.Check(CudaDriver.cuDeviceGetName(nameBuf, 256, dev), "cuDeviceGetName");
        string name = Marshal.PtrToStringUTF8((nint)nameBuf) ?? "GPU";
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int major, CudaDriver.AttributeComputeCapabilityMajor, dev), "cuDeviceGetAttribute");
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int minor, CudaDriver.AttributeComputeCapabilityMinor, dev), "cuDeviceGetAttribute");
        CudaDriver.Check(CudaDriver.cuDeviceTotalMem(out nuint total, dev), "cuDeviceTotalMem");
        // out of memory while setting the device up (another process holds it all): no usable GPU, so
        // that --backend auto goes on with the CPU
        void SetUp(int status, string call)
        {
            if (status == CudaDriver.ErrorOutOfMemory) throw new CudaUnavailableException($"{name} (device {ordinal}) has no memory free for {call}: another process may hold it");
            CudaDriver.Check(status, call);
        }
        SetUp(CudaDriver.cuDevicePrimaryCtxRetain(out nint ctx, dev), "cuDevicePrimaryCtxRetain");
        nint stream = 0, module = 0, moduleBf16 = 0, blas = 0;
        try
        {
            CudaDriver.Check(CudaDriver.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
            SetUp(CudaDriver.cuStreamCreate(out stream, 0), "cuStreamCreate");
            fixed (byte* p = image) SetUp(CudaDriver.cuModuleLoadData(out module, p), "cuModuleLoadData(kernels.fatbin)");
            if (imageBf16 != null && major >= 8)
                fixed (byte* p = imageBf16) SetUp(CudaDriver.cuModuleLoadData(out moduleBf16, p), "cuModuleLoadData(kernels_bf16.fatbin)");
            try
            {
                int created = CuBlas.cublasCreate(out nint handle);
                if (created == 0) blas = handle; // CUBLAS_STATUS_SUCCESS: a handle to destroy should a later step fail
                if (created == CuBlas.StatusAllocFailed) throw new CudaUnavailableException($"{name} (device {ordinal}) has no memory free for cuBLAS: another process may hold it");
                CuBlas.Check(created, "cublasCreate");
            }
            catch (DllNotFoundException e) { throw new CudaUnavailableException("cuBLAS not found (looked for libcublas.so.13, .12, .11; set CUDA_HOME or LD_LIBRARY_PATH)", e); }
            CuBlas.Check(CuBlas.cublasSetStream(blas, stream), "cublasSetStream");
            bool useTf32 = tf32 ?? major >= 8;
            CuBlas.Check(CuBlas.cublasSetMathMode(blas, useTf32 ? CuBlas.Tf32TensorOpMath : CuBlas.DefaultMath), "cublasSetMathMode");
            return new CudaGpu(ordinal, dev, ctx, stream, module, moduleBf16, blas, name, major * 10 + minor, (long)total, useTf32);
        }
        catch
        {
            // --backend auto goes on with the CPU after a CudaUnavailableException: release what was made,
            // and the primary context (with it, its device memory), as Dispose does
            if (blas != 0) CuBlas.cublasDestroy(blas);
            if (moduleBf16 != 0) CudaDriver.cuModuleUnload(moduleBf16);
            if (module != 0) CudaDriver.cuModuleUnload(module);
            if (stream != 0) CudaDriver.cuStreamDestroy(stream);
            CudaDriver.cuDevicePrimaryCtxRelease(dev);
            throw;
        }
    }

    public nint Alloc(long bytes)
    {
        int status = CudaDriver.cuMemAlloc(out nint p, (nuint)Math.Max(bytes, 4));
        if (status == CudaDriver.ErrorOutOfMemory)
        {
            long free = CudaDriver.cuMemGetInfo(out nuint f, out nuint t) == 0 ? (long)f : -1;
            throw GpuOutOfMemoryException.Allocating(Name, bytes, free, TotalMemory);
        }
        CudaDriver.Check(status, $"cuMemAlloc({bytes} bytes)");
        return p;
    }

    public void Free(nint pointer)
    {
        if (pointer == 0) return;
        // cuMemFree "may" synchronize; queued work may still read this memory: wait for it explicitly
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize");
        CudaDriver.Check(CudaDriver.cuMemFree(pointer), "cuMemFree");
    }

    public void CopyToDevice<T>(nint destination, ReadOnlySpan<T> source) where T : unmanaged
    {
        if (source.IsEmpty) return;
        // the source is pageable host memory, which the driver may still be reading when the call returns:
        // wait while it is pinned (the GC may move it after), so the caller may also reuse it at once
        fixed (T* p = source)
        {
            CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync(destination, p, (nuint)(source.Length * sizeof(T)), stream), "cuMemcpyHtoDAsync");
            CudaDriver.Check(CudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize");
        }
    }

    public void CopyToHost<T>(Span<T> destination, nint source) where T : unmanaged
    {
        if (destination.IsEmpty) return;
        fixed (T* p = destination)
        {
            CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync(p, source, (nuint)(destination.Length * sizeof(T)), stream), "cuMemcpyDtoHAsync");
            CudaDriver.Check(CudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize");
        }
    }

    public nint AllocHost(long bytes)
    {
        CudaDriver.Check(CudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        int status = CudaDriver.cuMemAllocHost(out nint p, (nuint)Math.Max(bytes, 4));
        if (status == CudaDriver.ErrorOutOfMemory)
            throw new GpuOutOfMemoryException($"{Name}: out of page-locked host memory allocating {GpuOutOfMemoryException.Mib(bytes)} (the staging of uploads)", bytes);
        CudaDriver.Check(status, $"cuMemAllocHost({bytes} bytes)");
        return p;
    }

    public void FreeHost(nint pointer)
    {
        if (pointer == 0) return;
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize"); // as in Free
        CudaDriver.Check(CudaDriver.cuMemFreeHost(pointer), "cuMemFreeHost");
    }

    public void CopyToDeviceAsync(nint destination, nint hostSource, long bytes)
    {
        if (bytes > 0) CudaDriver.Check(CudaDriver.cuMemcpyHtoDAsync(destination, (void*)hostSource, (nuint)bytes, stream), "cuMemcpyHtoDAsync");
    }

    public void CopyToHostAsync(nint hostDestination, nint source, long bytes)
    {
        if (bytes > 0) CudaDriver.Check(CudaDriver.cuMemcpyDtoHAsync((void*)hostDestination, source, (nuint)bytes, stream), "cuMemcpyDtoHAsync");
    }

    public nint CreateEvent()
    {
        CudaDriver.Check(CudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        CudaDriver.Check(CudaDriver.cuEventCreate(out nint e, CudaDriver.EventDisableTiming), "cuEventCreate");
        return e;
    }

    public void RecordEvent(nint gpuEvent) => CudaDriver.Check(CudaDriver.cuEventRecord(gpuEvent, stream), "cuEventRecord");

    public void WaitEvent(nint gpuEvent) => CudaDriver.Check(CudaDriver.cuEventSynchronize(gpuEvent), "cuEventSynchronize");

    public void DestroyEvent(nint gpuEvent)
    {
        if (gpuEvent != 0) CudaDriver.Check(CudaDriver.cuEventDestroy(gpuEvent), "cuEventDestroy");
    }

    public void Fill32(nint destination, uint value, long count)
    {
        if (count > 0) CudaDriver.Check(CudaDriver.cuMemsetD32Async(destination, value, (nuint)count, stream), "cuMemsetD32Async");
    }

    public nint Kernel(string name, DType activations)
    {
        if (kernels.TryGetValue((name, activations), out nint f)) return f;
        nint m = activations == DType.BF16 ? moduleBf16 : module;
        if (m == 0) throw new CudaUnavailableException($"bf16 needs compute capability 8.0 or newer and kernels_bf16.fatbin in this build; {Name} has {ComputeCapability / 10}.{ComputeCapability % 10}");
        CudaDriver.Check(CudaDriver.cuModuleGetFunction(out f, m, name), $"cuModuleGetFunction({name}, {activations})");
        kernels[(name, activations)] = f;
        return f;
    }

    // cuFuncSetAttribute's status is not checked: the carveout is a preference, and a driver that refuses it runs the kernel all the same
    public void PreferSharedMemory(nint kernel) => CudaDriver.cuFuncSetAttribute(kernel, CudaDriver.FuncAttributePreferredSharedMemoryCarveout, 100);

    public void Launch(nint kernel, Dim3 grid, Dim3 block, void** args)
    {
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0) return;
        CudaDriver.Check(CudaDriver.cuLaunchKernel(kernel, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, 0, stream, args, null), "cuLaunchKernel");
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        CuBlas.cublasDestroy(blasHandle);
        CudaDriver.cuModuleUnload(module);
        if (moduleBf16 != 0) CudaDriver.cuModuleUnload(moduleBf16);
        CudaDriver.cuStreamDestroy(stream);
        CudaDriver.cuDevicePrimaryCtxRelease(device);
    }
}
