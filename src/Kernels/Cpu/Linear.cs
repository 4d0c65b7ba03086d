namespace MixupBert.Kernels.Cpu;

/// <summary>
/// A fully connected layer in PyTorch's layout: y[n, out] = x[n, in] · W[out, in]ᵀ + b[out].
/// </summary>
public static class Linear
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y,
        int rows, int inFeatures, int outFeatures)
    {
        Gemm.Multiply(false, true, rows, outFeatures, inFeatures, x, inFeatures, w, inFeatures, y, outFeatures);
        if (!b.IsEmpty) Activations.AddBias(y, rows, outFeatures, b);
    }

    /// <summary>
    /// dx (+)= dy · W; dW += dyᵀ · x; db += Σ_rows dy. Weight and bias gradients always accumulate
    /// (they are zeroed once per optimizer step); dx is skipped when empty.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w,
        Span<float> dx, Span<float> dw, Span<float> db, int rows, int inFeatures, int outFeatures, bool accumulateDx = false)
    {
        if (!dx.IsEmpty)
            Gemm.Multiply(false, false, rows, inFeatures, outFeatures, dy, outFeatures, w, inFeatures, dx, inFeatures, accumulateDx);
        Gemm.Multiply(true, false, outFeatures, inFeatures, rows, dy, outFeatures, x, inFeatures, dw, inFeatures, accumulate: true);
        if (!db.IsEmpty) Reduce.AddColumnSums(dy, rows, outFeatures, db);
    }
}
