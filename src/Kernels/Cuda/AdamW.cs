namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.AdamW on the device (kernels/adamw.cuh). The clip factor stays on the device, where
/// the update reads it: a training step reads back only the loss and the norm.</summary>
public static class AdamW
{
    /// <summary>The most blocks of the norm's first pass: about 8 per SM of a 132-SM H100/H200, enough
    /// threads in flight to read at the memory's full bandwidth.</summary>
    public const int MaxNormBlocks = 1024;

    /// <summary>Blocks for a norm over n floats: 16 floats per thread at least (a small model needs few),
    /// at most <see cref="MaxNormBlocks"/>. A function of n alone: the summation order is fixed.</summary>
    public static int NormBlocks(long n) => (int)Math.Clamp((n + GpuContext.Threads * 16L - 1) / (GpuContext.Threads * 16L), 1, MaxNormBlocks);

    /// <summary>stats[1] = ‖grad‖, stats[2] = the clip factor for maxNorm (1 when it is 0).</summary>
    public static void GlobalNormClip(GpuContext g, nint grad, long n, float maxNorm, nint stats)
    {
        int blocks = NormBlocks(n);
        nint part = g.Partial(blocks);
        g.Launch("squared_norm_partial", new KernelArgs().Ptr(part).Ptr(grad).Long(n), new Dim3((uint)blocks), new Dim3(GpuContext.Threads));
        g.Launch("global_norm_clip", new KernelArgs().Ptr(stats).Ptr(part).Int(blocks).Float(maxNorm), new Dim3(1), new Dim3(32));   // one whole warp: its shuffles take all 32 lanes
    }

    /// <summary>Elements per block of <see cref="StepTensors"/>: 16 per thread.</summary>
    public const int ElementsPerBlock = GpuContext.Threads * 16;

    /// <summary>
    /// The block table of <see cref="StepTensors"/>, made once per model: each tensor cut into blocks
    /// of at most <see cref="ElementsPerBlock"/> elements, so that one launch covers every tensor and
    /// no block spans two (their weight decay differs). The tensors whose gradients are cleared come
    /// first (<see cref="ClearingBlocks"/> blocks), those the backward overwrites after them.
    /// </summary>
    public sealed class TensorBlocks : IDisposable
    {
        private readonly IGpu gpu;
        public nint Ranges { get; }
        public nint Decays { get; }
        public int Count { get; }
        /// <summary>Blocks 0 … ClearingBlocks − 1 hold the tensors without <see cref="Cpu.AdamW.Tensor.GradientOverwritten"/>.</summary>
        public int ClearingBlocks { get; }

        public TensorBlocks(IGpu gpu, ReadOnlySpan<Cpu.AdamW.Tensor> tensors)
        {
            this.gpu = gpu;
            var ranges = new List<long>(); var decays = new List<float>();
            foreach (bool overwritten in (ReadOnlySpan<bool>)[false, true])
            {
                foreach (var t in tensors)
                {
                    if (t.GradientOverwritten != overwritten) continue;
                    for (long begin = t.Offset; begin < t.Offset + t.Length; begin += ElementsPerBlock)
                    {
                        ranges.Add(begin); ranges.Add(Math.Min(begin + ElementsPerBlock, t.Offset + t.Length));
                        decays.Add(t.Decay ? 1f : 0f);
                    }
                }
                if (!overwritten) ClearingBlocks = decays.Count;
            }
            Count = decays.Count;
            Ranges = gpu.Alloc(Math.Max(ranges.Count, 1) * 8L);
            try
            {
                Decays = gpu.Alloc(Math.Max(decays.Count, 1) * 4L);
                gpu.CopyToDevice<long>(Ranges, ranges.ToArray());
                gpu.CopyToDevice<float>(Decays, decays.ToArray());
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public void Dispose() { gpu.Free(Ranges); gpu.Free(Decays); }
    }

    /// <summary>Cpu.AdamW.StepTensors in one launch: every tensor of <paramref name="blocks"/>, the gradient
    /// scaled by *clip (clip 0: none) and, when <paramref name="clearGradients"/>, zeroed after use where the
    /// backward adds into it (the first <see cref="TensorBlocks.ClearingBlocks"/> blocks).
    /// <paramref name="paramX"/>, when not 0, receives the new parameters in the activations' type (the
    /// bf16 copy the GEMMs read).</summary>
    public static void StepTensors(GpuContext g, TensorBlocks blocks, nint param, nint grad, nint m, nint v, in Cpu.AdamW.Hyper h, nint clip, bool clearGradients,
        nint paramX = 0)
    {
        if (blocks.Count == 0) return;
        double bc1 = 1 - Math.Pow(h.Beta1, h.Step), bc2 = 1 - Math.Pow(h.Beta2, h.Step);
        g.Launch("adamw_update_tensors", new KernelArgs().Ptr(param).Ptr(paramX).Ptr(grad).Ptr(m).Ptr(v).Ptr(blocks.Ranges).Ptr(blocks.Decays)
            .Float(h.LearningRate).Float(h.Beta1).Float(h.Beta2).Float(h.Epsilon).Float(h.WeightDecay).Float((float)(h.LearningRate / bc1))
            .Float((float)(1 / Math.Sqrt(bc2))).Ptr(clip).Int(clearGradients ? blocks.ClearingBlocks : 0),
            new Dim3((uint)blocks.Count), new Dim3(GpuContext.Threads));
    }

    /// <summary>paramX = param in the activations' type: the GEMMs' copy of the weights, made when the
    /// parameters are loaded (afterwards <see cref="StepTensors"/> keeps it current).</summary>
    public static void CopyToActivations(GpuContext g, nint param, nint paramX, long n)
        => g.Elementwise("copy_to_floatx", new KernelArgs().Ptr(paramX).Ptr(param).Long(n), n);
}
