using System.Reflection;
using System.Runtime.InteropServices;

namespace MixupBert.Kernels.Cuda;

/// <summary>
/// The few CUDA driver API entry points the backend uses (libcuda.so.1), bound with LibraryImport.
/// Every call goes through <see cref="Check"/>, which turns a non-zero CUresult into an exception
/// naming the call.
/// </summary>
internal static unsafe partial class CudaDriver
{
    public const string Library = "cuda";

    static CudaDriver() => NativeLibraries.Register();

    [LibraryImport(Library)] public static partial int cuInit(uint flags);
    [LibraryImport(Library)] public static partial int cuDeviceGetCount(out int count);
    [LibraryImport(Library)] public static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Library)] public static partial int cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Library)] public static partial int cuDeviceGetAttribute(out int value, int attribute, int device);
    [LibraryImport(Library, EntryPoint = "cuDeviceTotalMem_v2")] public static partial int cuDeviceTotalMem(out nuint bytes, int device);
    [LibraryImport(Library)] public static partial int cuDevicePrimaryCtxRetain(out nint context, int device);
    [LibraryImport(Library, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] public static partial int cuDevicePrimaryCtxRelease(int device);
    [LibraryImport(Library)] public static partial int cuCtxSetCurrent(nint context);
    [LibraryImport(Library)] public static partial int cuModuleLoadData(out nint module, void* image);
    [LibraryImport(Library)] public static partial int cuModuleUnload(nint module);
    [LibraryImport(Library)] public static partial int cuModuleGetFunction(out nint function, nint module, [MarshalAs(UnmanagedType.LPUTF8Str)] string name);
    [LibraryImport(Library)] public static partial int cuFuncSetAttribute(nint function, int attribute, int value);
    public const int FuncAttributePreferredSharedMemoryCarveout = 9;   // CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: a percentage
    [LibraryImport(Library)] public static partial int cuLaunchKernel(nint function, uint gx, uint gy, uint gz, uint bx, uint by, uint bz, uint sharedBytes, nint stream, void** args, void** extra);
    [LibraryImport(Library, EntryPoint = "cuMemAlloc_v2")] public static partial int cuMemAlloc(out nint pointer, nuint bytes);
    [LibraryImport(Library, EntryPoint = "cuMemGetInfo_v2")] public static partial int cuMemGetInfo(out nuint free, out nuint total);
    [LibraryImport(Library, EntryPoint = "cuMemFree_v2")] public static partial int cuMemFree(nint pointer);
    [LibraryImport(Library, EntryPoint = "cuMemAllocHost_v2")] public static partial int cuMemAllocHost(out nint pointer, nuint bytes);
    [LibraryImport(Library)] public static partial int cuMemFreeHost(nint pointer);
    [LibraryImport(Library, EntryPoint = "cuMemcpyHtoDAsync_v2")] public static partial int cuMemcpyHtoDAsync(nint destination, void* source, nuint bytes, nint stream);
    [LibraryImport(Library, EntryPoint = "cuMemcpyDtoHAsync_v2")] public static partial int cuMemcpyDtoHAsync(void* destination, nint source, nuint bytes, nint stream);
    [LibraryImport(Library)] public static partial int cuMemsetD32Async(nint destination, uint value, nuint count, nint stream);
    [LibraryImport(Library)] public static partial int cuStreamCreate(out nint stream, uint flags);
    [LibraryImport(Library, EntryPoint = "cuStreamDestroy_v2")] public static partial int cuStreamDestroy(nint stream);
    [LibraryImport(Library)] public static partial int cuStreamSynchronize(nint stream);
    [LibraryImport(Library)] public static partial int cuEventCreate(out nint gpuEvent, uint flags);
    [LibraryImport(Library)] public static partial int cuEventRecord(nint gpuEvent, nint stream);
    [LibraryImport(Library)] public static partial int cuEventSynchronize(nint gpuEvent);
    [LibraryImport(Library, EntryPoint = "cuEventDestroy_v2")] public static partial int cuEventDestroy(nint gpuEvent);
    [LibraryImport(Library)] public static partial int cuGetErrorName(int status, out nint name);

    public const int AttributeComputeCapabilityMajor = 75, AttributeComputeCapabilityMinor = 76;
    /// <summary>CUDA_ERROR_OUT_OF_MEMORY: an allocation the device has no room for.</summary>
    public const int ErrorOutOfMemory = 2;

    /// <summary>CU_EVENT_DISABLE_TIMING: an event only waited for, never timed (the cheapest kind).</summary>
    public const uint EventDisableTiming = 0x2;

    public static void Check(int status, string call)
    {
        if (status == 0) return;
        string name = "CUDA_ERROR_" + status;
        try { if (cuGetErrorName(status, out nint p) == 0 && p != 0) name = Marshal.PtrToStringUTF8(p) ?? name; }
        catch (Exception) { /* the name is a nicety */ }
        throw new CudaException($"{call} failed: {name} ({status})");
    }
}

/// <summary>
/// Resolves "cuda" and "cublas" to the libraries on this machine: libcuda.so.1 from the driver;
/// libcublas.so.13, .12 or .11 from the system, $CUDA_HOME/lib64, /usr/local/cuda/lib64 or a
/// pip-installed nvidia-cublas (as PyTorch brings).
/// </summary>
internal static class NativeLibraries
{
    private static int registered;

    public static void Register()
    {
        if (Interlocked.Exchange(ref registered, 1) == 1) return;
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        IEnumerable<string> candidates = name switch
        {
            CudaDriver.Library => new[] { "libcuda.so.1", "libcuda.so", "nvcuda.dll" },
            CuBlas.Library => CublasCandidates(),
            _ => Array.Empty<string>(),
        };
        foreach (var c in candidates)
            if (NativeLibrary.TryLoad(c, out nint handle)) return handle;
        return 0;
    }

    private static IEnumerable<string> CublasCandidates()
    {
        string[] versions = { "13", "12", "11" };
        var dirs = new List<string>();
        if (Environment.GetEnvironmentVariable("CUDA_HOME") is { Length: > 0 } home) dirs.Add(Path.Combine(home, "lib64"));
        dirs.Add("/usr/local/cuda/lib64");
        foreach (var v in versions)
        {
            yield return $"libcublas.so.{v}";
            foreach (var d in dirs) yield return Path.Combine(d, $"libcublas.so.{v}");
        }
        foreach (var sitePackages in PythonSitePackages())
            foreach (var v in versions)
                yield return Path.Combine(sitePackages, "nvidia", v == "13" ? "cu13" : "cublas", "lib", $"libcublas.so.{v}");
        yield return "cublas64_12.dll";
    }

    private static IEnumerable<string> PythonSitePackages()
    {
        foreach (var root in new[] { "/usr/local/lib", "/usr/lib", "/opt/conda/lib" })
        {
            if (!Directory.Exists(root)) continue;
            foreach (var py in Directory.EnumerateDirectories(root, "python3*"))
                foreach (var sp in new[] { "site-packages", "dist-packages" })
                    if (Directory.Exists(Path.Combine(py, sp))) yield return Path.Combine(py, sp);
        }
    }
}
