namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.AdamW on the device (kernels/adamw.cuh). The clip factor stays on the device, where
/// the update reads it: a training step reads back only the loss and the norm.</summary>
public static class AdamW
{
    public const int NormBlocks = 128;

    /// <summary>stats[1] = ‖grad‖, stats[2] = the clip factor for maxNorm (1 when it is 0).</summary>
    public static void GlobalNormClip(GpuContext g, nint grad, long n, float maxNorm, nint stats)
    {
        nint part = g.Partial(NormBlocks);
        g.Launch("squared_norm_partial", new KernelArgs().Ptr(part).Ptr(grad).Long(n), new Dim3(NormBlocks), new Dim3(GpuContext.Threads));
        g.Launch("global_norm_clip", new KernelArgs().Ptr(stats).Ptr(part).Int(NormBlocks).Float(maxNorm), new Dim3(1), new Dim3(32));
    }

    /// <summary>One AdamW step on one tensor, the gradient scaled by *clip (clip 0: no clipping).</summary>
    public static void Step(GpuContext g, nint param, nint grad, nint m, nint v, long n, in Cpu.AdamW.Hyper h, nint clip)
    {
        double bc1 = 1 - Math.Pow(h.Beta1, h.Step), bc2 = 1 - Math.Pow(h.Beta2, h.Step);
        g.Launch("adamw_update", new KernelArgs().Ptr(param).Ptr(grad).Ptr(m).Ptr(v).Long(n).Float(h.LearningRate).Float(h.Beta1).Float(h.Beta2)
            .Float(h.Epsilon).Float(h.WeightDecay).Float((float)(h.LearningRate / bc1)).Float((float)(1 / Math.Sqrt(bc2))).Ptr(clip),
            new Dim3((uint)Math.Clamp((n + GpuContext.Threads - 1) / GpuContext.Threads, 1, 8192)), new Dim3(GpuContext.Threads));
    }
}
