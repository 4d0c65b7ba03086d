namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.Activations on the device (kernels/activations.cuh); GELU's forward is in Linear.ForwardGelu.</summary>
public static class Activations
{
    /// <summary>dx = dy · gelu'(x + bias) over [rows, cols], x the pre-activation as <see cref="Linear.ForwardGelu"/>
    /// stored it (without its bias; bias 0: none); dx may be dy.</summary>
    public static void GeluBackward(GpuContext g, nint x, nint bias, nint dy, nint dx, int rows, int cols)
        => g.ElementwisePacked("gelu_backward", new KernelArgs().Ptr(dx).Ptr(x).Ptr(bias).Ptr(dy).Int(rows).Int(cols), (long)rows * cols);

    public static void TanhForward(GpuContext g, nint x, nint y, long n)
        => g.Elementwise("tanh_forward", new KernelArgs().Ptr(y).Ptr(x).Long(n), n);

    /// <summary>dx = dy · (1 − y²), from the forward's output y.</summary>
    public static void TanhBackward(GpuContext g, nint y, nint dy, nint dx, long n)
        => g.Elementwise("tanh_backward", new KernelArgs().Ptr(dx).Ptr(y).Ptr(dy).Long(n), n);
}
