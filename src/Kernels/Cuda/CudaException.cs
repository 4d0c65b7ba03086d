namespace MixupBert.Kernels.Cuda;

/// <summary>A failed CUDA driver or cuBLAS call; the message names the call and the status.</summary>
public sealed class CudaException(string message) : Exception(message);

/// <summary>No usable CUDA device or library on this machine (a normal condition, not a bug).</summary>
public sealed class CudaUnavailableException(string message, Exception? inner = null) : Exception(message, inner);
