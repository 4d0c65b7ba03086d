namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.CrossEntropy on the device (kernels/cross_entropy.cuh). The CPU returns the mean loss;
/// here it stays on the device until <see cref="Mean"/> puts it in stats[0].</summary>
public static class CrossEntropy
{
    /// <summary>probs, per-example losses and (dlogits not 0) dlogits = (probs − targets) / B.</summary>
    public static void Forward(GpuContext g, nint logits, nint labels, nint partner, nint lambda, nint probs, nint losses, nint dlogits, int batch, int classes)
        => g.Launch("cross_entropy_forward", new KernelArgs().Ptr(losses).Ptr(probs).Ptr(dlogits).Ptr(logits).Ptr(labels).Ptr(partner).Ptr(lambda)
            .Int(batch).Int(classes), new Dim3((uint)((batch + 31) / 32)), new Dim3(32));

    /// <summary>stats[0] = the mean of losses[B].</summary>
    public static void Mean(GpuContext g, nint losses, int batch, nint stats)
        => g.Launch("cross_entropy_mean", new KernelArgs().Ptr(stats).Ptr(losses).Int(batch), new Dim3(1), new Dim3(32));
}
