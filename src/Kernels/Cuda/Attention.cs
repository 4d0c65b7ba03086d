namespace MixupBert.Kernels.Cuda;

/// <summary>
/// Cpu.Attention on the device: heads split by kernels/attention.cuh so that cuBLAS runs one
/// strided-batched GEMM over all B·H heads, the softmax with scale and key mask a kernel of its own.
/// </summary>
public static class Attention
{
    /// <summary>Device scratch that attention needs besides its inputs and outputs: Q, K, V and the
    /// context with heads split ([B, H, T, d] each), and a [B, H, T, T] buffer for dropped
    /// probabilities, plus their gradients for the backward.</summary>
    public readonly record struct Scratch(nint Q, nint K, nint V, nint CtxHeads, nint ProbsDropped, nint Scores,
        nint DQ, nint DK, nint DV, nint DCtxHeads)
    {
        /// <summary>Allocates it for B·T tokens of C channels and B·H·T·T probabilities.</summary>
        public static Scratch Allocate(Func<long, nint> alloc, long tokensTimesChannels, long probabilities)
        {
            long nc = tokensTimesChannels;
            return new Scratch(alloc(nc), alloc(nc), alloc(nc), alloc(nc), alloc(probabilities), alloc(probabilities), alloc(nc), alloc(nc), alloc(nc), alloc(nc));
        }
    }

    /// <summary>ctx = softmax(QKᵀ/√d + mask) · V, probs kept for the backward.</summary>
    public static void Forward(GpuContext g, nint qkv, nint keyMask, nint probs, nint ctx, int batch, int seqLen, int channels, int heads,
        float dropout, uint key, in Scratch s)
    {
        int T = seqLen, d = channels / heads, BH = batch * heads;
        long nc = (long)batch * T * channels, td = (long)T * d, tt = (long)T * T;
        var blas = g.Gpu.Blas;
        g.Elementwise("attention_split_heads", new KernelArgs().Ptr(s.Q).Ptr(s.K).Ptr(s.V).Ptr(qkv).Int(batch).Int(T).Int(channels).Int(heads), nc);
        blas.GemmStridedBatched(false, true, T, T, d, s.Q, d, td, s.K, d, td, s.Scores, T, tt, BH, false, g.ActivationGemm);
        g.Launch("attention_softmax_forward", new KernelArgs().Ptr(probs).Ptr(s.Scores).Ptr(keyMask).Int(batch).Int(heads).Int(T).Float(1f / MathF.Sqrt(d)),
            new Dim3((uint)((BH * T + 3) / 4)), new Dim3(GpuContext.RowThreads));
        nint pv = probs;
        if (dropout > 0f) { Dropout.Forward(g, probs, s.ProbsDropped, BH * tt, dropout, key); pv = s.ProbsDropped; }
        blas.GemmStridedBatched(false, false, T, d, T, pv, T, tt, s.V, d, td, s.CtxHeads, d, td, BH, false, g.ActivationGemm);
        g.Elementwise("attention_merge_heads", new KernelArgs().Ptr(ctx).Ptr(s.CtxHeads).Int(batch).Int(T).Int(channels).Int(heads).Int(1), nc);
    }

    /// <summary>dqkv from dctx, the forward's probs and its dropout key.</summary>
    public static void Backward(GpuContext g, nint dctx, nint qkv, nint probs, nint dqkv, int batch, int seqLen, int channels, int heads,
        float dropout, uint key, in Scratch s)
    {
        int T = seqLen, d = channels / heads, BH = batch * heads;
        long nc = (long)batch * T * channels, td = (long)T * d, tt = (long)T * T;
        var blas = g.Gpu.Blas;
        g.Elementwise("attention_merge_heads", new KernelArgs().Ptr(dctx).Ptr(s.DCtxHeads).Int(batch).Int(T).Int(channels).Int(heads).Int(0), nc);
        g.Elementwise("attention_split_heads", new KernelArgs().Ptr(s.Q).Ptr(s.K).Ptr(s.V).Ptr(qkv).Int(batch).Int(T).Int(channels).Int(heads), nc);
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
