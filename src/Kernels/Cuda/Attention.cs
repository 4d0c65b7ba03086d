namespace MixupBert.Kernels.Cuda;

/// <summary>
/// Cpu.Attention on the device. Heads of up to 64 channels (BERT's) take the fused kernels of
/// kernels/attention.cuh: no T × T tensor in memory, the forward saves one log-sum-exp per query and
/// the backward recomputes the probabilities from it. Wider heads take the unfused path: heads split
/// so that cuBLAS runs one strided-batched GEMM over all B·H heads, the softmax a kernel of its own,
/// the [B, H, T, T] probabilities saved. On bf16 activations, heads of 16, 32, 48 or 64 channels run the
/// fused kernels' products on tensor cores, the same arguments and results, through one of two kernel
/// sets (<see cref="TensorCoreKernels"/>).
/// </summary>
public static class Attention
{
    /// <summary>The widest head the fused kernels take (ATT_MAX_D in kernels/attention.cuh).</summary>
    public const int FusedMaxHeadSize = 64;

    public static bool Fused(int channels, int heads) => channels / heads <= FusedMaxHeadSize;

    /// <summary>Whether the fused kernels run on tensor cores: WMMA takes bf16 operands in whole 16 × 16
    /// tiles (float32 ones only with TF32's rounding, which the float32 engine must not have). The mma.sync
    /// kernels have one instance for each head size this admits (16, 32, 48, 64) and none for others.</summary>
    public static bool TensorCores(int channels, int heads, DType activations) =>
        activations == DType.BF16 && Fused(channels, heads) && channels / heads > 0 && channels / heads % 16 == 0;

    /// <summary>The kernel names' suffix of the fused path that <paramref name="g"/> runs: "fused" (FMA units),
    /// "mma" (WMMA, kernels/attention_mma.cuh) or "flash" (mma.sync, kernels/attention_flash.cuh).</summary>
    public static string FusedKernels(GpuContext g, int channels, int heads) =>
        !TensorCores(channels, heads, g.Activations) ? "fused" : g.AttentionTensorCores == TensorCoreKernels.MmaSync ? "flash" : "mma";

    /// <summary>What the forward saves for the backward (its probs argument): when fused, float32s: B·H·T
    /// log-sum-exps, then (from an even count) the attention dropout's keep bits that the mma.sync kernels
    /// save, 64 bits a query and 64-key tile (flash_keep_bits in kernels/attention_flash.cuh; the other fused
    /// kernels leave them unused); else the B·H·T·T probabilities, in the activations' type.</summary>
    public static long SavedElements(int batch, int seqLen, int channels, int heads)
    {
        long rows = LogSumExps(batch, seqLen, heads);
        if (!Fused(channels, heads)) return rows * seqLen;
        return (rows + 1) / 2 * 2 + 2 * rows * ((seqLen + KeepBitsTile - 1) / KeepBitsTile);   // 64 bits = 2 floats a row and tile
    }

    /// <summary>Keys a word of keep bits covers: the mma.sync kernels' key tile (FLASH_TILE in kernels/attention_flash.cuh).</summary>
    private const int KeepBitsTile = 64;

    /// <summary>The log-sum-exps at the start of the fused forward's saved buffer: one a query row.</summary>
    public static long LogSumExps(int batch, int seqLen, int heads) => (long)batch * heads * seqLen;

    /// <summary>Device scratch that attention needs besides its inputs and outputs. Unfused: Q, K, V and
    /// the context with heads split ([B, H, T, d] each), and [B, H, T, T] buffers for dropped
    /// probabilities and scores, plus their gradients for the backward. Fused: Dot, one float per
    /// query for the backward.</summary>
    public readonly record struct Scratch(nint Q, nint K, nint V, nint CtxHeads, nint ProbsDropped, nint Scores,
        nint DQ, nint DK, nint DV, nint DCtxHeads, nint Dot)
    {
        /// <summary>Allocates it for batch × seqLen tokens; <paramref name="alloc"/> allocates
        /// activations, <paramref name="allocFloat"/> float32 buffers.</summary>
        public static Scratch Allocate(Func<long, nint> alloc, Func<long, nint> allocFloat, int batch, int seqLen, int channels, int heads)
        {
            long nc = (long)batch * seqLen * channels, rows = (long)batch * heads * seqLen, probabilities = rows * seqLen;
            if (Fused(channels, heads)) return new Scratch(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, allocFloat(rows));
            return new Scratch(alloc(nc), alloc(nc), alloc(nc), alloc(nc), alloc(probabilities), alloc(probabilities), alloc(nc), alloc(nc), alloc(nc), alloc(nc), 0);
        }
    }

    // B·H on x: gridDim.y is at most 65535, which 12 heads pass at a batch of 5462
    // The flash kernels' blocks own 64 rows, the others' 32.
    private static Dim3 FusedGrid(string kernels, int batch, int seqLen, int heads)
    {
        int rows = kernels == "flash" ? 64 : 32;
        return new((uint)(batch * heads), (uint)((seqLen + rows - 1) / rows));
    }
    private static readonly Dim3 FusedBlock = new(128);

    /// <summary>ctx = softmax(QKᵀ/√d + mask) · V, Q, K and V from qkv plus the projection's bias
    /// <paramref name="qkvBias"/> [3C] (0: none; the kernels add it as they read Q, K and V, so the projection
    /// needs no bias pass of its own); probs receives what the backward needs (<see cref="SavedElements"/>).</summary>
    public static void Forward(GpuContext g, nint qkv, nint qkvBias, nint keyMask, nint probs, nint ctx, int batch, int seqLen, int channels, int heads,
        float dropout, uint key, in Scratch s)
    {
        if (Fused(channels, heads))
        {
            string kernels = FusedKernels(g, channels, heads);
            g.Launch("attention_forward_" + kernels, new KernelArgs().Ptr(ctx).Ptr(probs).Ptr(qkv).Ptr(qkvBias).Ptr(keyMask).Int(batch).Int(seqLen).Int(channels).Int(heads)
                .Float(1f / MathF.Sqrt(channels / heads)).Float(dropout).UInt(key), FusedGrid(kernels, batch, seqLen, heads), FusedBlock);
            return;
        }
        int T = seqLen, d = channels / heads, BH = batch * heads;
        long nc = (long)batch * T * channels, td = (long)T * d, tt = (long)T * T;
        var blas = g.Gpu.Blas;
        g.Elementwise("attention_split_heads", new KernelArgs().Ptr(s.Q).Ptr(s.K).Ptr(s.V).Ptr(qkv).Ptr(qkvBias).Int(batch).Int(T).Int(channels).Int(heads), nc);
        blas.GemmStridedBatched(false, true, T, T, d, s.Q, d, td, s.K, d, td, s.Scores, T, tt, BH, false, g.ActivationGemm);
        g.Launch("attention_softmax_forward", new KernelArgs().Ptr(probs).Ptr(s.Scores).Ptr(keyMask).Int(batch).Int(heads).Int(T).Float(1f / MathF.Sqrt(d)),
            new Dim3((uint)((BH * T + 3) / 4)), new Dim3(GpuContext.RowThreads));
        nint pv = probs;
        if (dropout > 0f) { Dropout.Forward(g, probs, s.ProbsDropped, BH * tt, dropout, key); pv = s.ProbsDropped; }
        blas.GemmStridedBatched(false, false, T, d, T, pv, T, tt, s.V, d, td, s.CtxHeads, d, td, BH, false, g.ActivationGemm);
        g.Elementwise("attention_merge_heads", new KernelArgs().Ptr(ctx).Ptr(s.CtxHeads).Int(batch).Int(T).Int(channels).Int(heads).Int(1), nc);
    }

    /// <summary>dqkv from dctx and the forward's inputs (qkv and its bias, the key mask), saved probs (or
    /// log-sum-exps), output ctx and dropout key; the unfused path reads neither the mask nor ctx.</summary>
    public static void Backward(GpuContext g, nint dctx, nint qkv, nint qkvBias, nint keyMask, nint probs, nint ctx, nint dqkv, int batch, int seqLen, int channels, int heads,
        float dropout, uint key, in Scratch s)
    {
        if (Fused(channels, heads))
        {
            long rows = (long)batch * heads * seqLen;
            // a row's head in 128-bit packs over a power of two of lanes, several rows a warp; else a warp a row
            int headSize = channels / heads;
            bool packed = channels % g.Pack == 0 && headSize % g.Pack == 0 && GpuContext.Aligned16(dctx, ctx);
            int lanesPerRow = packed ? (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(headSize / g.Pack)) : 32;
            long rowsPerBlock = FusedBlock.X / 32 * (32 / lanesPerRow);
            g.Launch("attention_backward_dot", new KernelArgs().Ptr(s.Dot).Ptr(dctx).Ptr(ctx).Int(batch).Int(seqLen).Int(channels).Int(heads)
                .Int(lanesPerRow).Int(packed ? 1 : 0), new Dim3((uint)((rows + rowsPerBlock - 1) / rowsPerBlock)), FusedBlock);
            var args = new KernelArgs().Ptr(dqkv).Ptr(qkv).Ptr(qkvBias).Ptr(dctx).Ptr(probs).Ptr(s.Dot).Ptr(keyMask).Int(batch).Int(seqLen).Int(channels).Int(heads)
                .Float(1f / MathF.Sqrt(channels / heads)).Float(dropout).UInt(key);
            string kernels = FusedKernels(g, channels, heads);
            g.Launch("attention_backward_dq_" + kernels, args, FusedGrid(kernels, batch, seqLen, heads), FusedBlock);
            g.Launch("attention_backward_dkv_" + kernels, args, FusedGrid(kernels, batch, seqLen, heads), FusedBlock);
            return;
        }
        int T = seqLen, d = channels / heads, BH = batch * heads;
        long nc = (long)batch * T * channels, td = (long)T * d, tt = (long)T * T;
        var blas = g.Gpu.Blas;
        g.Elementwise("attention_merge_heads", new KernelArgs().Ptr(dctx).Ptr(s.DCtxHeads).Int(batch).Int(T).Int(channels).Int(heads).Int(0), nc);
        g.Elementwise("attention_split_heads", new KernelArgs().Ptr(s.Q).Ptr(s.K).Ptr(s.V).Ptr(qkv).Ptr(qkvBias).Int(batch).Int(T).Int(channels).Int(heads), nc);
        nint pv = probs;
        if (dropout > 0f) { Dropout.Forward(g, probs, s.ProbsDropped, BH * tt, dropout, key); pv = s.ProbsDropped; }
        // ctx = P̃ V: dP̃ = dctx Vᵀ, dV = P̃ᵀ dctx
        blas.GemmStridedBatched(false, true, T, T, d, s.DCtxHeads, d, td, s.V, d, td, s.Scores, T, tt, BH, false, g.ActivationGemm);
        blas.GemmStridedBatched(true, false, T, d, T, pv, T, tt, s.DCtxHeads, d, td, s.DV, d, td, BH, false, g.ActivationGemm);
        if (dropout > 0f) Dropout.Backward(g, s.Scores, s.Scores, BH * tt, dropout, key, false);
        g.Launch("attention_softmax_backward", new KernelArgs().Ptr(s.Scores).Ptr(probs).Ptr(s.Scores).Int(batch).Int(heads).Int(T).Float(1f / MathF.Sqrt(d)),
            new Dim3((uint)((BH * T + 3) / 4)), new Dim3(GpuContext.RowThreads));
        // S = Q Kᵀ: dQ = dS K, dK = dSᵀ Q
        blas.GemmStridedBatched(false, false, T, d, T, s.Scores, T, tt, s.K, d, td, s.DQ, d, td, BH, false, g.ActivationGemm);
        blas.GemmStridedBatched(true, false, T, d, T, s.Scores, T, tt, s.Q, d, td, s.DK, d, td, BH, false, g.ActivationGemm);
        g.Elementwise("attention_split_heads_backward", new KernelArgs().Ptr(dqkv).Ptr(s.DQ).Ptr(s.DK).Ptr(s.DV).Int(batch).Int(T).Int(channels).Int(heads), nc);
    }
}

/// <summary>The two tensor-core kernel sets of the bf16 fused attention. <see cref="MmaSync"/>
/// (kernels/attention_flash.cuh, FlashAttention-2's structure, scores and outputs in registers) is the
/// default: on an H200 a bf16 training step ran 1.18× faster with it than with <see cref="Wmma"/>
/// (kernels/attention_mma.cuh), kept for comparison (`bench --attention-kernels wmma`; docs/perf.md).</summary>
public enum TensorCoreKernels { Wmma, MmaSync }
