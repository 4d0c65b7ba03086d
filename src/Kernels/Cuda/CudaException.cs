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
public sealed class GpuOutOfMemoryException(string device, long bytes, long free, long total)
    : Exception($"{device}: out of GPU memory allocating {Mib(bytes)} "
        + (free >= 0 ? $"({Mib(free)} of {Mib(total)} free)" : $"(of {Mib(total)})"))
{
    public long Bytes { get; } = bytes;

    private static string Mib(long bytes) => $"{bytes / (1024.0 * 1024.0):F1} MiB";
}
