namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.FirstToken on the device (kernels/pooling.cuh).</summary>
public static class FirstToken
{
    public static void Forward(GpuContext g, nint hidden, nint first, int batch, int seqLen, int channels)
        => g.Elementwise("first_token_forward", new KernelArgs().Ptr(first).Ptr(hidden).Int(batch).Int(seqLen).Int(channels), (long)batch * channels);

    public static void Backward(GpuContext g, nint dfirst, nint dhidden, int batch, int seqLen, int channels)
        => g.ElementwisePacked("first_token_backward", new KernelArgs().Ptr(dhidden).Ptr(dfirst).Int(batch).Int(seqLen).Int(channels), (long)batch * seqLen * channels);
}
