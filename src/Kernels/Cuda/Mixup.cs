namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.Mixup on the device (kernels/mixup.cuh).</summary>
public static class Mixup
{
    public static void Forward(GpuContext g, nint x, nint partner, nint lambda, nint y, int batch, int rows, int channels)
        => g.Elementwise("mixup_forward", new KernelArgs().Ptr(y).Ptr(x).Ptr(partner).Ptr(lambda).Int(batch).Int(rows).Int(channels), (long)batch * rows * channels);

    /// <summary>Overwrites dx; dx must not alias dy.</summary>
    public static void Backward(GpuContext g, nint dy, nint partner, nint lambda, nint dx, int batch, int rows, int channels)
        => g.Elementwise("mixup_backward", new KernelArgs().Ptr(dx).Ptr(dy).Ptr(partner).Ptr(lambda).Int(batch).Int(rows).Int(channels), (long)batch * rows * channels);

    public static void UnionMask(GpuContext g, nint mask, nint partner, nint lambda, nint union, int batch, int seqLen)
        => g.Elementwise("mixup_union_mask", new KernelArgs().Ptr(union).Ptr(mask).Ptr(partner).Ptr(lambda).Int(batch).Int(seqLen), (long)batch * seqLen);
}
