namespace MixupBert.Kernels.Cuda;

/// <summary>A failed CUDA driver or cuBLAS call; the message names the call and the status.</summary>
public sealed class CudaException(string message) : Exception(message);

/// <summary>No usable CUDA device or library on this machine (a normal condition, not a bug).</summary>
public sealed class CudaUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The device has no room for an allocation: what the user changes (a smaller batch or sequence, less
/// precise storage), not a fault of the program (the tool's exit 2, as for host memory). The message
/// names the device, the allocation and the memory free.
/// </summary>
public sealed class GpuOutOfMemoryException(string message, long bytes = 0) : Exception(message)
{
    /// <summary>The allocation that failed, in bytes (0 where the library that failed does not say).</summary>
    public long Bytes { get; } = bytes;

    /// <summary>cuMemAlloc's failure: <paramref name="free"/> −1 where the driver could not say.</summary>
    public static GpuOutOfMemoryException Allocating(string device, long bytes, long free, long total)
        => new($"{device}: out of GPU memory allocating {Mib(bytes)} " + (free >= 0 ? $"({Mib(free)} of {Mib(total)} free)" : $"(of {Mib(total)})"), bytes);

    public static string Mib(long bytes) => $"{bytes / (1024.0 * 1024.0):F1} MiB";
}
