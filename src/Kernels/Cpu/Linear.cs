namespace MixupBert.Kernels.Cpu;

/// <summary>
/// A fully connected layer in PyTorch's layout: y[n, out] = x[n, in] · W[out, in]ᵀ + b[out].
/// </summary>
public static class Linear
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y,
        int rows, int inFeatures, int outFeatures)
    {
        Gemm.Multiply(false, true, rows, outFeatures, inFeatures, x, inFeatures, w, inFeatures, y, outFeatures, columnBias: b);
    }

    /// <summary>y = x · Wᵀ + b and gelu(y) in one pass (BERT's intermediate layer): the GEMM applies
    /// the GELU to each tile as it stores it. y, the pre-activation, is kept for the backward.</summary>
    public static void ForwardGelu(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y, Span<float> gelu,
        int rows, int inFeatures, int outFeatures)
    {
        Gemm.Multiply(false, true, rows, outFeatures, inFeatures, x, inFeatures, w, inFeatures, y, outFeatures, columnBias: b, geluOut: gelu);
    }

    /// <summary>
    /// dx (+)= dy · W; dW = dyᵀ · x; db += Σ_rows dy; dx is skipped when empty. dW is overwritten, not
    /// added to: a weight has one such GEMM per backward, and C's read and the clearing of dW before it
    /// are traffic the GPU's step no longer spends (AdamW.Tensor.GradientOverwritten). The bias
    /// gradient accumulates: in BERT some come from the LayerNorm and GELU backwards' sums.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        Span<float> dx, Span<float> dw, Span<float> db, int rows, int inFeatures, int outFeatures, bool accumulateDx = false)
    {
        if (!dx.IsEmpty)
            Gemm.Multiply(false, false, rows, inFeatures, outFeatures, dy, outFeatures, w, inFeatures, dx, inFeatures, accumulateDx);
        Gemm.Multiply(true, false, outFeatures, inFeatures, rows, dy, outFeatures, x, inFeatures, dw, inFeatures, accumulate: false);
        if (!db.IsEmpty) Reduce.AddColumnSums(dy, rows, outFeatures, db);
    }
}
