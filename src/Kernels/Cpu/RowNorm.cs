using System.Numerics.Tensors;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// The Euclidean norm of each row of a [rows, cols] matrix: y[r] = √(Σ_c x[r, c]²). SSMix's token
/// saliency is this op on the loss gradient at the embeddings (one row per token). It is read, not
/// differentiated, so it has no backward. CUDA: kernels/rownorm.cuh.
/// </summary>
public static class RowNorm
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int rows, int cols)
    {
        if (rows < 0 || cols < 1 || x.Length < (long)rows * cols || y.Length < rows)
            throw new ArgumentException($"row norm: buffers too small for {rows}×{cols}");
        for (int r = 0; r < rows; r++) y[r] = MathF.Sqrt(TensorPrimitives.SumOfSquares(x.Slice(r * cols, cols)));
    }
}
