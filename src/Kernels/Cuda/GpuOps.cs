namespace MixupBert.Kernels.Cuda;

/// <summary>
/// The GPU ops, one method per CPU op of src/Kernels/Cpu with the same arguments (device pointers
/// for spans): each launches the kernels of kernels.cu (and cuBLAS GEMMs) that compute it. Knows
/// nothing of BERT. Deterministic reductions use a device scratch of chunk partials that grows on
/// demand (rarely: it is sized for the largest op seen).
/// </summary>
public sealed unsafe class GpuOps : IDisposable
{
    public const int Threads = 256, RowThreads = 128;
    private const int RowsPerChunk = 64;

    private readonly IGpu gpu;
    private readonly Dictionary<string, nint> kernels = new(StringComparer.Ordinal);
    private nint partial;
    private long partialFloats;

    public GpuOps(IGpu gpu) => this.gpu = gpu;

    public IGpu Gpu => gpu;

    private nint K(string name)
    {
        if (!kernels.TryGetValue(name, out nint f)) kernels[name] = f = gpu.Kernel(name);
        return f;
    }

    private static nint At(nint p, long floats) => p + (nint)(floats * 4);

    private static Dim3 Grid(long n, int threads = Threads) => new((uint)Math.Clamp((n + threads - 1) / threads, 1, 8192));

    private void Elementwise(string kernel, KernelArgs args, long n) => args.Launch(gpu, K(kernel), Grid(n), new Dim3(Threads));

    private nint Partial(long floats)
    {
        if (floats > partialFloats)
        {
            if (partial != 0) gpu.Free(partial);
            partialFloats = Math.Max(floats, 2 * partialFloats);
            partial = gpu.Alloc(partialFloats * 4);
        }
        return partial;
    }

    // --- embeddings ---------------------------------------------------------------------------

    /// <summary>Embedding.Forward (+ AttentionMask.Union into maskOut when partner is given).</summary>
    public void EmbeddingForward(nint output, nint maskOut, nint word, nint position, nint type, nint ids, nint typeIds, nint mask,
        nint partner, nint lambda, bool mixWords, int batch, int seqLen, int channels)
        => new KernelArgs().Ptr(output).Ptr(maskOut).Ptr(word).Ptr(position).Ptr(type).Ptr(ids).Ptr(typeIds).Ptr(mask)
            .Ptr(partner).Ptr(lambda).Int(mixWords ? 1 : 0).Int(batch).Int(seqLen).Int(channels)
            .Launch(gpu, K("embedding_forward"), new Dim3((uint)(batch * seqLen)), new Dim3(RowThreads));

    /// <summary>Embedding.Backward.</summary>
    public void EmbeddingBackward(nint dOutput, nint dWord, nint dPosition, nint dType, nint ids, nint typeIds,
        nint partner, nint lambda, bool mixWords, int batch, int seqLen, int channels)
        => new KernelArgs().Ptr(dWord).Ptr(dPosition).Ptr(dType).Ptr(dOutput).Ptr(ids).Ptr(typeIds).Ptr(partner).Ptr(lambda)
            .Int(mixWords ? 1 : 0).Int(batch).Int(seqLen).Int(channels)
            .Launch(gpu, K("embedding_backward"), new Dim3((uint)((channels + 127) / 128)), new Dim3(128));

    // --- LayerNorm ------------------------------------------------------------------------------

    /// <summary>sum = residual + dropout(x); y = LayerNorm(sum). residual 0: no add; p 0: no dropout;
    /// sumOut 0: sum is x and is not stored.</summary>
    public void ResidualLayerNormForward(nint y, nint sumOut, nint mean, nint rstd, nint x, nint residual, nint gamma, nint beta,
        int rows, int cols, float eps, float p = 0f, uint key = 0)
        => new KernelArgs().Ptr(y).Ptr(sumOut).Ptr(mean).Ptr(rstd).Ptr(x).Ptr(residual).Ptr(gamma).Ptr(beta)
            .Int(rows).Int(cols).Float(eps).Float(p).UInt(key)
            .Launch(gpu, K("residual_layernorm_forward"), new Dim3((uint)rows), new Dim3(RowThreads));

    /// <summary>LayerNorm.Backward: dx (+)= ∂L/∂x; dγ += Σ dy·x̂; dβ += Σ dy, in fixed row chunks.</summary>
    public void LayerNormBackward(nint dy, nint x, nint mean, nint rstd, nint gamma, nint dx, nint dgamma, nint dbeta,
        int rows, int cols, bool accumulateDx = false)
    {
        int chunks = (rows + RowsPerChunk - 1) / RowsPerChunk;
        nint part = Partial((long)chunks * 2 * cols);
        new KernelArgs().Ptr(dx).Ptr(dy).Ptr(x).Ptr(mean).Ptr(rstd).Ptr(gamma).Int(rows).Int(cols).Int(accumulateDx ? 1 : 0)
            .Launch(gpu, K("layernorm_backward_input"), new Dim3((uint)rows), new Dim3(RowThreads));
        new KernelArgs().Ptr(part).Ptr(dy).Ptr(x).Ptr(mean).Ptr(rstd).Int(rows).Int(cols)
            .Launch(gpu, K("layernorm_backward_params_partial"), new Dim3((uint)((cols + 127) / 128), (uint)chunks), new Dim3(128));
        AddChunkPartials(dgamma, part, chunks, cols, 2 * cols);
        AddChunkPartials(dbeta, At(part, cols), chunks, cols, 2 * cols);
    }

    private void AddChunkPartials(nint output, nint part, int chunks, int cols, int stride)
        => new KernelArgs().Ptr(output).Ptr(part).Int(chunks).Int(cols).Int(stride)
            .Launch(gpu, K("add_chunk_partials"), new Dim3((uint)((cols + 127) / 128)), new Dim3(128));

    // --- linear layers --------------------------------------------------------------------------

    /// <summary>Linear.Forward: y = x·Wᵀ + b.</summary>
    public void LinearForward(nint x, nint w, nint b, nint y, int rows, int inFeatures, int outFeatures)
    {
        gpu.Blas.Gemm(false, true, rows, outFeatures, inFeatures, x, inFeatures, w, inFeatures, y, outFeatures, false);
        if (b != 0) AddBias(y, rows, outFeatures, b);
    }

    /// <summary>Linear.Backward: dx (+)= dy·W (skipped when dx is 0); dW += dyᵀ·x; db += Σ_rows dy.</summary>
    public void LinearBackward(nint dy, nint x, nint w, nint dx, nint dw, nint db, int rows, int inFeatures, int outFeatures, bool accumulateDx = false)
    {
        if (dx != 0) gpu.Blas.Gemm(false, false, rows, inFeatures, outFeatures, dy, outFeatures, w, inFeatures, dx, inFeatures, accumulateDx);
        gpu.Blas.Gemm(true, false, outFeatures, inFeatures, rows, dy, outFeatures, x, inFeatures, dw, inFeatures, true);
        if (db != 0) AddColumnSums(dy, rows, outFeatures, db);
    }

    /// <summary>y[r, :] += bias (on the CPU, Gemm adds it as it stores each tile).</summary>
    public void AddBias(nint y, int rows, int cols, nint bias)
        => Elementwise("add_bias", new KernelArgs().Ptr(y).Ptr(bias).Int(rows).Int(cols), (long)rows * cols);

    /// <summary>Reduce.AddColumnSums: sum[c] += Σ_r x[r, c], in fixed row chunks.</summary>
    public void AddColumnSums(nint x, int rows, int cols, nint sum)
    {
        int chunks = (rows + RowsPerChunk - 1) / RowsPerChunk;
        nint part = Partial((long)chunks * cols);
        new KernelArgs().Ptr(part).Ptr(x).Int(rows).Int(cols)
            .Launch(gpu, K("column_sum_partial"), new Dim3((uint)((cols + 127) / 128), (uint)chunks), new Dim3(128));
        AddChunkPartials(sum, part, chunks, cols, cols);
    }

    // --- elementwise ----------------------------------------------------------------------------

    public void GeluForward(nint x, nint y, long n) => Elementwise("gelu_forward", new KernelArgs().Ptr(y).Ptr(x).Long(n), n);
    public void GeluBackward(nint x, nint dy, nint dx, long n) => Elementwise("gelu_backward", new KernelArgs().Ptr(dx).Ptr(x).Ptr(dy).Long(n), n);
    public void TanhForward(nint x, nint y, long n) => Elementwise("tanh_forward", new KernelArgs().Ptr(y).Ptr(x).Long(n), n);
    public void TanhBackward(nint y, nint dy, nint dx, long n) => Elementwise("tanh_backward", new KernelArgs().Ptr(dx).Ptr(y).Ptr(dy).Long(n), n);

    /// <summary>Dropout.Forward (p must be positive; skip the call for p = 0).</summary>
    public void DropoutForward(nint x, nint y, long n, float p, uint key)
        => Elementwise("dropout_forward", new KernelArgs().Ptr(y).Ptr(x).Long(n).Float(p).UInt(key), n);

    /// <summary>Dropout.Backward.</summary>
    public void DropoutBackward(nint dy, nint dx, long n, float p, uint key, bool accumulate)
        => Elementwise("dropout_backward", new KernelArgs().Ptr(dx).Ptr(dy).Long(n).Float(p).UInt(key).Int(accumulate ? 1 : 0), n);

    // --- attention ------------------------------------------------------------------------------

    /// <summary>Device scratch that attention needs besides its inputs and outputs: Q, K, V and the
    /// context with heads split ([B, H, T, d] each), and a [B, H, T, T] buffer for dropped
    /// probabilities, plus their gradients for the backward.</summary>
    public readonly record struct AttentionScratch(nint Q, nint K, nint V, nint CtxHeads, nint ProbsDropped, nint Scores,
        nint DQ, nint DK, nint DV, nint DCtxHeads);

    /// <summary>Attention.Forward: ctx = softmax(QKᵀ/√d + mask) · V, via split heads, two strided-batched
    /// GEMMs over all B·H heads and the softmax kernel.</summary>
    public void AttentionForward(nint qkv, nint keyMask, nint probs, nint ctx, int batch, int seqLen, int channels, int heads,
        float dropout, uint key, in AttentionScratch s)
    {
        int T = seqLen, d = channels / heads, BH = batch * heads;
        long nc = (long)batch * T * channels, td = (long)T * d, tt = (long)T * T;
        Elementwise("attention_split_heads", new KernelArgs().Ptr(s.Q).Ptr(s.K).Ptr(s.V).Ptr(qkv).Int(batch).Int(T).Int(channels).Int(heads), nc);
        gpu.Blas.GemmStridedBatched(false, true, T, T, d, s.Q, d, td, s.K, d, td, s.Scores, T, tt, BH, false);
        new KernelArgs().Ptr(probs).Ptr(s.Scores).Ptr(keyMask).Int(batch).Int(heads).Int(T).Float(1f / MathF.Sqrt(d))
            .Launch(gpu, K("attention_softmax_forward"), new Dim3((uint)((BH * T + 3) / 4)), new Dim3(RowThreads));
        nint pv = probs;
        if (dropout > 0f) { DropoutForward(probs, s.ProbsDropped, BH * tt, dropout, key); pv = s.ProbsDropped; }
        gpu.Blas.GemmStridedBatched(false, false, T, d, T, pv, T, tt, s.V, d, td, s.CtxHeads, d, td, BH, false);
        Elementwise("attention_merge_heads", new KernelArgs().Ptr(ctx).Ptr(s.CtxHeads).Int(batch).Int(T).Int(channels).Int(heads).Int(1), nc);
    }

    /// <summary>Attention.Backward: dqkv from dctx, the forward's probs and its dropout key.</summary>
    public void AttentionBackward(nint dctx, nint qkv, nint probs, nint dqkv, int batch, int seqLen, int channels, int heads,
        float dropout, uint key, in AttentionScratch s)
    {
        int T = seqLen, d = channels / heads, BH = batch * heads;
        long nc = (long)batch * T * channels, td = (long)T * d, tt = (long)T * T;
        Elementwise("attention_merge_heads", new KernelArgs().Ptr(dctx).Ptr(s.DCtxHeads).Int(batch).Int(T).Int(channels).Int(heads).Int(0), nc);
        Elementwise("attention_split_heads", new KernelArgs().Ptr(s.Q).Ptr(s.K).Ptr(s.V).Ptr(qkv).Int(batch).Int(T).Int(channels).Int(heads), nc);
        nint pv = probs;
        if (dropout > 0f) { DropoutForward(probs, s.ProbsDropped, BH * tt, dropout, key); pv = s.ProbsDropped; }
        // ctx = P̃ V: dP̃ = dctx Vᵀ, dV = P̃ᵀ dctx
        gpu.Blas.GemmStridedBatched(false, true, T, T, d, s.DCtxHeads, d, td, s.V, d, td, s.Scores, T, tt, BH, false);
        gpu.Blas.GemmStridedBatched(true, false, T, d, T, pv, T, tt, s.DCtxHeads, d, td, s.DV, d, td, BH, false);
        if (dropout > 0f) DropoutBackward(s.Scores, s.Scores, BH * tt, dropout, key, false);
        new KernelArgs().Ptr(s.Scores).Ptr(probs).Ptr(s.Scores).Int(batch).Int(heads).Int(T).Float(1f / MathF.Sqrt(d))
            .Launch(gpu, K("attention_softmax_backward"), new Dim3((uint)((BH * T + 3) / 4)), new Dim3(RowThreads));
        // S = Q Kᵀ: dQ = dS K, dK = dSᵀ Q
        gpu.Blas.GemmStridedBatched(false, false, T, d, T, s.Scores, T, tt, s.K, d, td, s.DQ, d, td, BH, false);
        gpu.Blas.GemmStridedBatched(true, false, T, d, T, s.Scores, T, tt, s.Q, d, td, s.DK, d, td, BH, false);
        Elementwise("attention_split_heads_backward", new KernelArgs().Ptr(dqkv).Ptr(s.DQ).Ptr(s.DK).Ptr(s.DV).Int(batch).Int(T).Int(channels).Int(heads), nc);
    }

    // --- pooling and mixing ---------------------------------------------------------------------

    /// <summary>cls[b] = hidden[b, 0].</summary>
    public void GatherFirstToken(nint hidden, nint cls, int batch, int seqLen, int channels)
        => Elementwise("gather_cls", new KernelArgs().Ptr(cls).Ptr(hidden).Int(batch).Int(seqLen).Int(channels), (long)batch * channels);

    /// <summary>dhidden = 0 but dhidden[b, 0] = dcls[b].</summary>
    public void GatherFirstTokenBackward(nint dcls, nint dhidden, int batch, int seqLen, int channels)
        => Elementwise("gather_cls_backward", new KernelArgs().Ptr(dhidden).Ptr(dcls).Int(batch).Int(seqLen).Int(channels), (long)batch * seqLen * channels);

    /// <summary>dst[b] = λ_b·src[b] + (1 − λ_b)·src[partner_b], rows × channels per example.</summary>
    public void MixRows(nint src, nint dst, nint partner, nint lambda, int batch, int rows, int channels)
        => Elementwise("mix_rows", new KernelArgs().Ptr(dst).Ptr(src).Ptr(partner).Ptr(lambda).Int(batch).Int(rows).Int(channels), (long)batch * rows * channels);

    /// <summary>The backward of <see cref="MixRows"/> (overwrites dsrc).</summary>
    public void MixRowsBackward(nint g, nint dsrc, nint partner, nint lambda, int batch, int rows, int channels)
        => Elementwise("mix_rows_backward", new KernelArgs().Ptr(dsrc).Ptr(g).Ptr(partner).Ptr(lambda).Int(batch).Int(rows).Int(channels), (long)batch * rows * channels);

    // --- loss and optimizer ---------------------------------------------------------------------

    /// <summary>CrossEntropy against λ·onehot(y) + (1−λ)·onehot(y_partner) (partner 0: one-hot): per-example
    /// losses, probabilities and, when dlogits is not 0, dlogits = (p − t)/B.</summary>
    public void MixedCrossEntropy(nint logits, nint labels, nint partner, nint lambda, nint losses, nint probs, nint dlogits, int batch, int classes)
        => new KernelArgs().Ptr(losses).Ptr(probs).Ptr(dlogits).Ptr(logits).Ptr(labels).Ptr(partner).Ptr(lambda).Int(batch).Int(classes)
            .Launch(gpu, K("mixed_cross_entropy"), new Dim3((uint)((batch + 31) / 32)), new Dim3(32));

    public const int NormBlocks = 128;

    /// <summary>stats[0] = mean of losses[B]; with gradients: stats[1] = ‖g‖, stats[2] = the clip factor
    /// (normPartial holds NormBlocks floats of scratch).</summary>
    public void StepStats(nint stats, nint losses, int batch, nint gradients, long n, nint normPartial, float maxNorm)
    {
        if (gradients != 0)
            new KernelArgs().Ptr(normPartial).Ptr(gradients).Long(n).Launch(gpu, K("squared_norm_partial"), new Dim3(NormBlocks), new Dim3(Threads));
        new KernelArgs().Ptr(stats).Ptr(losses).Int(batch).Ptr(gradients != 0 ? normPartial : 0).Int(NormBlocks).Float(maxNorm)
            .Launch(gpu, K("finalize_step_stats"), new Dim3(1), new Dim3(32));
    }

    /// <summary>AdamW.Step on one tensor, the gradient scaled by the clip factor stats[2] (stats 0: no clipping).</summary>
    public void AdamWStep(nint param, nint grad, nint m, nint v, long n, in Cpu.AdamW.Hyper h, nint stats)
    {
        double bc1 = 1 - Math.Pow(h.Beta1, h.Step), bc2 = 1 - Math.Pow(h.Beta2, h.Step);
        new KernelArgs().Ptr(param).Ptr(grad).Ptr(m).Ptr(v).Long(n).Float(h.LearningRate).Float(h.Beta1).Float(h.Beta2).Float(h.Epsilon)
            .Float(h.WeightDecay).Float((float)(h.LearningRate / bc1)).Float((float)(1 / Math.Sqrt(bc2))).Ptr(stats)
            .Launch(gpu, K("adamw_update"), Grid(n), new Dim3(Threads));
    }

    public void Dispose()
    {
        if (partial != 0) gpu.Free(partial);
        partial = 0;
    }
}
