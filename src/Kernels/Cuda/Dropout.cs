namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.Dropout on the device (kernels/dropout.cuh): the same mask for the same key, bit for bit.</summary>
public static class Dropout
{
    /// <summary>y = x · keep / (1 − p); p must be positive (skip the call for p = 0).</summary>
    public static void Forward(GpuContext g, nint x, nint y, long n, float p, uint key)
        => g.ElementwisePacked("dropout_forward", new KernelArgs().Ptr(y).Ptr(x).Long(n).Float(p).UInt(key), n);

    /// <summary>dx (+)= dy · keep / (1 − p), the forward's mask.</summary>
    public static void Backward(GpuContext g, nint dy, nint dx, long n, float p, uint key, bool accumulate)
        => g.ElementwisePacked("dropout_backward", new KernelArgs().Ptr(dx).Ptr(dy).Long(n).Float(p).UInt(key).Int(accumulate ? 1 : 0), n);
}
