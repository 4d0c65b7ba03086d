namespace MixupBert.Kernels.Cuda;

/// <summary>
/// What every CUDA launcher needs besides its arguments: the device, the kernels of kernels.cu by
/// name, and a scratch of per-chunk partial sums (deterministic reductions sum fixed row chunks in
/// order; the scratch grows on demand, rarely: it is sized for the largest op seen). The launchers
/// themselves live in one static class per op family, named as the CPU's (Cuda.LayerNorm.Backward
/// mirrors Cpu.LayerNorm.Backward, with device pointers for spans).
/// </summary>
public sealed class GpuContext : IDisposable
{
    public const int Threads = 256, RowThreads = 128;
    /// <summary>Rows per chunk of the deterministic column reductions (Cpu.Reduce.RowsPerChunk).</summary>
    internal const int RowsPerChunk = 64;

    private readonly Dictionary<string, nint> kernels = new(StringComparer.Ordinal);
    private nint partial;
    private long partialFloats;

    /// <param name="activations">The type of activations and their gradients: the kernels come from
    /// the module built for it, and GEMMs over activations take it as their operand type.</param>
    public GpuContext(IGpu gpu, DType activations = DType.F32)
    {
        Gpu = gpu;
        Activations = activations;
        ActivationGemm = new GemmTypes(activations, activations);
        WeightGradientGemm = new GemmTypes(activations, DType.F32);
    }

    public IGpu Gpu { get; }
    public DType Activations { get; }
    /// <summary>A GEMM from activations (and the weights' activation-typed copy) to activations.</summary>
    public GemmTypes ActivationGemm { get; }
    /// <summary>A GEMM from activations to a float32 weight gradient.</summary>
    public GemmTypes WeightGradientGemm { get; }
    /// <summary>Which tensor-core kernels the bf16 fused attention runs (Attention.FusedKernels).</summary>
    public TensorCoreKernels AttentionTensorCores { get; set; } = TensorCoreKernels.MmaSync;

    internal static nint At(nint p, long floats) => p + (nint)(floats * 4);

    /// <summary>Whether every pointer is 16-byte aligned (0, no tensor, counts as aligned): what a kernel's
    /// 128-bit packs need (aligned16 in kernels/common.cuh).</summary>
    internal static bool Aligned16(params ReadOnlySpan<nint> pointers)
    {
        foreach (var p in pointers) if (p % 16 != 0) return false;
        return true;
    }

    internal static int Chunks(int rows) => (rows + RowsPerChunk - 1) / RowsPerChunk;

    /// <summary>Launches kernel <paramref name="name"/> of kernels.cu.</summary>
    internal void Launch(string name, KernelArgs args, Dim3 grid, Dim3 block)
    {
        if (!kernels.TryGetValue(name, out nint f)) kernels[name] = f = Gpu.Kernel(name, Activations);
        args.Launch(Gpu, f, grid, block);
    }

    /// <summary><see cref="IGpu.PreferSharedMemory"/> for the kernel of this name, once.</summary>
    internal void PreferSharedMemory(string name)
    {
        if (!sharedMemoryPreferred.Add(name)) return;
        if (!kernels.TryGetValue(name, out nint f)) kernels[name] = f = Gpu.Kernel(name, Activations);
        Gpu.PreferSharedMemory(f);
    }

    private readonly HashSet<string> sharedMemoryPreferred = [];

    /// <summary>Launches a grid-stride kernel over n elements.</summary>
    internal void Elementwise(string name, KernelArgs args, long n)
        => Launch(name, args, new Dim3((uint)Math.Clamp((n + Threads - 1) / Threads, 1, 8192)), new Dim3(Threads));

    /// <summary>Activations per 128-bit pack (XPACK in kernels/common.cuh): 8 bf16 or 4 float32.</summary>
    internal int Pack => 16 / Activations.Size();

    /// <summary>Launches a grid-stride kernel over n elements that it reads in packs of <see cref="Pack"/>.</summary>
    internal void ElementwisePacked(string name, KernelArgs args, long n) => Elementwise(name, args, (n + Pack - 1) / Pack);

    /// <summary>The partials scratch, at least <paramref name="floats"/> long.</summary>
    internal nint Partial(long floats)
    {
        if (floats > partialFloats)
        {
            long grown = Math.Max(floats, 2 * partialFloats);
            Gpu.Free(partial);
            partial = 0; partialFloats = 0; // a failed allocation below leaves no freed pointer behind (Dispose would free it again)
            partial = Gpu.Alloc(grown * 4);
            partialFloats = grown;
        }
        return partial;
    }

    /// <summary>output[c] += Σ_chunk part[chunk·stride + c], in a fixed order (deterministic); with output1 (and
    /// output2), in the same launch, output1[c] += the same sums of part + cols (output2: part + 2·cols).</summary>
    internal void AddChunkPartials(nint output, nint part, int chunks, int cols, int stride, nint output1 = 0, nint output2 = 0)
    {
        uint sums = output2 != 0 ? 3u : output1 != 0 ? 2u : 1u;
        if (output2 != 0 && output1 == 0) throw new ArgumentException("add_chunk_partials: a third sum needs a second");
        Launch("add_chunk_partials", new KernelArgs().Ptr(output).Ptr(output1).Ptr(output2).Ptr(part).Int(chunks).Int(cols).Int(stride),
            new Dim3((uint)((cols + 31) / 32), sums), new Dim3(32, 8));   // 32 columns × 8 chunk strides per block
    }

    public void Dispose()
    {
        if (partial != 0) Gpu.Free(partial);
        partial = 0;
    }
}
