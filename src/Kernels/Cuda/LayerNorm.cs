namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.LayerNorm on the device (kernels/layernorm.cuh).</summary>
public static class LayerNorm
{
    public static void Forward(GpuContext g, nint x, nint gamma, nint beta, nint y, nint mean, nint rstd, int rows, int cols, float eps)
        => Launch(g, x, 0, 0, gamma, beta, 0, y, mean, rstd, rows, cols, eps, 0f, 0);

    /// <summary>sum = residual + dropout(x + bias), y = LayerNorm(sum); p 0: no dropout. bias (0: none) is the
    /// bias of the linear layer that made x, left out of its GEMM (Linear.Forward with no bias) and added
    /// here: one pass over the activations less than the CPU's op order, the same sums.</summary>
    public static void DropoutResidualForward(GpuContext g, nint x, nint bias, nint residual, nint gamma, nint beta, nint sum, nint y, nint mean, nint rstd,
        int rows, int cols, float eps, float p, uint key)
        => Launch(g, x, bias, residual, gamma, beta, sum, y, mean, rstd, rows, cols, eps, p, key);

    /// <summary>The widest row the warp-per-row kernels take: 32 values a lane (LN_WARP_COLS in kernels/layernorm.cuh).</summary>
    public const int MaxWarpRowColumns = 32 * 32;

    /// <summary>Whether a row fits the warp-per-row kernels: in registers, in 128-bit packs.</summary>
    private static bool WarpRows(GpuContext g, int cols, params ReadOnlySpan<nint> activations)
        => cols % g.Pack == 0 && cols <= MaxWarpRowColumns && GpuContext.Aligned16(activations);

    private static void Launch(GpuContext g, nint x, nint bias, nint residual, nint gamma, nint beta, nint sum, nint y, nint mean, nint rstd,
        int rows, int cols, float eps, float p, uint key)
    {
        var args = new KernelArgs().Ptr(y).Ptr(sum).Ptr(mean).Ptr(rstd).Ptr(x).Ptr(bias).Ptr(residual).Ptr(gamma).Ptr(beta)
            .Int(rows).Int(cols).Float(eps).Float(p).UInt(key);
        const int rowsPerBlock = GpuContext.RowThreads / 32;
        if (WarpRows(g, cols, x, residual, sum, y))
            g.Launch("layernorm_forward_warp", args, new Dim3((uint)((rows + rowsPerBlock - 1) / rowsPerBlock)), new Dim3(GpuContext.RowThreads));
        else
            g.Launch("layernorm_forward", args, new Dim3((uint)rows), new Dim3(GpuContext.RowThreads));
    }

    /// <summary>Rows per chunk of the backward's dγ/dβ partial sums (LN_ROWS in kernels/layernorm.cuh), a block
    /// each: 512 blocks at 32 × 128 tokens, all resident at once on a 132-SM H100/H200 (four an SM), two rows a
    /// warp. (Kernel images built for 16-row chunks still run under it: their blocks past the rows write zero
    /// partials.)</summary>
    public const int BackwardRowsPerChunk = 8;

    /// <summary>Warps of layernorm_backward_warp's block (LN_WARPS), each a row at a time.</summary>
    private const int BackwardWarps = 4;

    /// <summary>The widest row the backward takes: 8 columns per thread, 1024 threads (LN_COLS_PER_THREAD).</summary>
    public const int MaxBackwardColumns = 8 * 1024;

    /// <summary>dx (+)= ∂L/∂x; dγ += Σ dy·x̂; dβ += Σ dy, in fixed row chunks; one pass over dy and x.</summary>
    public static void Backward(GpuContext g, nint dy, nint x, nint mean, nint rstd, nint gamma, nint dx, nint dgamma, nint dbeta,
        int rows, int cols, bool accumulateDx = false)
        => Launch(g, dy, x, mean, rstd, gamma, dx, 0, dgamma, dbeta, rows, cols, accumulateDx, 0f, 0, dropoutOnDy: false);

    /// <summary><see cref="Backward"/>, then the backward of the dropout that <see cref="DropoutResidualForward"/>
    /// applied to the residual branch (Cpu.Dropout.Backward): dxDropped = dx · keep / (1 − p), the branch's
    /// gradient (p = 0: dx itself, and dxDropped is not written), and dBranchBias += its column sums: the
    /// gradient of the bias that DropoutResidualForward added (Cpu.Linear.Backward's), all in the same pass.</summary>
    public static void BackwardAndDropout(GpuContext g, nint dy, nint x, nint mean, nint rstd, nint gamma, nint dx, nint dxDropped,
        nint dgamma, nint dbeta, nint dBranchBias, int rows, int cols, float p, uint key)
        => Launch(g, dy, x, mean, rstd, gamma, dx, dxDropped, dgamma, dbeta, rows, cols, false, p, key, dropoutOnDy: false, dBranchBias);

    /// <summary>The backward of a dropout that followed the LayerNorm (the embeddings'; Cpu.Dropout.Backward on
    /// dy), then <see cref="Backward"/>: dy is masked as it is read.</summary>
    public static void DropoutAndBackward(GpuContext g, nint dy, nint x, nint mean, nint rstd, nint gamma, nint dx, nint dgamma, nint dbeta,
        int rows, int cols, float p, uint key)
        => Launch(g, dy, x, mean, rstd, gamma, dx, 0, dgamma, dbeta, rows, cols, false, p, key, dropoutOnDy: true);

    private static void Launch(GpuContext g, nint dy, nint x, nint mean, nint rstd, nint gamma, nint dx, nint dxDropped, nint dgamma, nint dbeta,
        int rows, int cols, bool accumulateDx, float p, uint key, bool dropoutOnDy, nint dBranchBias = 0)
    {
        if (cols > MaxBackwardColumns) throw new ArgumentException($"LayerNorm backward on the GPU: {cols} columns, at most {MaxBackwardColumns}");
        int chunks = (rows + BackwardRowsPerChunk - 1) / BackwardRowsPerChunk, sections = dBranchBias != 0 ? 3 : 2;
        nint part = g.Partial((long)chunks * sections * cols);
        var args = new KernelArgs().Ptr(dx).Ptr(dxDropped).Ptr(part).Ptr(dy).Ptr(x).Ptr(mean).Ptr(rstd).Ptr(gamma)
            .Int(rows).Int(cols).Int(accumulateDx ? 1 : 0).Float(p).UInt(key).Int(dropoutOnDy ? 1 : 0).Int(dBranchBias != 0 ? 1 : 0);
        if (WarpRows(g, cols, dx, dxDropped, dy, x))
        {
            // its 48 KB a block make four blocks an SM only in a carveout of 196 KB or more, which the driver need not pick
            g.PreferSharedMemory("layernorm_backward_warp");
            g.Launch("layernorm_backward_warp", args, new Dim3((uint)chunks), new Dim3(BackwardWarps * 32));
        }
        else
            g.Launch("layernorm_backward", args, new Dim3((uint)chunks),
                new Dim3((uint)Math.Max(GpuContext.RowThreads, (cols + 8 * 32 - 1) / (8 * 32) * 32)));
        g.AddChunkPartials(dgamma, part, chunks, cols, sections * cols, output1: dbeta, output2: dBranchBias);   // one launch
    }
}
