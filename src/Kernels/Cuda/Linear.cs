namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.Linear on the device: cuBLAS GEMMs plus kernels/linear.cuh (bias, bias gradient) and
/// kernels/activations.cuh (the bias and GELU after the intermediate layer's GEMM). x, y, dy, dx and w
/// are in the activations' type (w the bf16 copy of the weights under bf16); b and dw, db float32.</summary>
public static class Linear
{
    /// <summary>y = x·Wᵀ + b (b 0: no bias).</summary>
    public static void Forward(GpuContext g, nint x, nint w, nint b, nint y, int rows, int inFeatures, int outFeatures)
    {
        g.Gpu.Blas.Gemm(false, true, rows, outFeatures, inFeatures, x, inFeatures, w, inFeatures, y, outFeatures, false, g.ActivationGemm);
        if (b != 0) g.ElementwisePacked("add_bias", new KernelArgs().Ptr(y).Ptr(b).Int(rows).Int(outFeatures), (long)rows * outFeatures);
    }

    /// <summary>y = x·Wᵀ, kept for the backward (without b: <see cref="Activations.GeluBackward"/> adds it
    /// again as it reads y), and gelu = GELU(y + b).</summary>
    public static void ForwardGelu(GpuContext g, nint x, nint w, nint b, nint y, nint gelu, int rows, int inFeatures, int outFeatures)
    {
        g.Gpu.Blas.Gemm(false, true, rows, outFeatures, inFeatures, x, inFeatures, w, inFeatures, y, outFeatures, false, g.ActivationGemm);
        g.Launch("bias_gelu_forward", new KernelArgs().Ptr(gelu).Ptr(y).Ptr(b).Int(rows).Int(outFeatures), Activations.GeluGrid(g, rows, outFeatures, Activations.GeluForwardRowsPerChunk), new Dim3(128));
    }

    /// <summary>dx (+)= dy·W (skipped when dx is 0); dW = dyᵀ·x (beta 0: overwritten, as Cpu.Linear.Backward
    /// says why); db += Σ_rows dy.</summary>
    public static void Backward(GpuContext g, nint dy, nint x, nint w, nint dx, nint dw, nint db, int rows, int inFeatures, int outFeatures, bool accumulateDx = false)
    {
        if (dx != 0) g.Gpu.Blas.Gemm(false, false, rows, inFeatures, outFeatures, dy, outFeatures, w, inFeatures, dx, inFeatures, accumulateDx, g.ActivationGemm);
        g.Gpu.Blas.Gemm(true, false, outFeatures, inFeatures, rows, dy, outFeatures, x, inFeatures, dw, inFeatures, false, g.WeightGradientGemm);
        if (db != 0) AddColumnSums(g, dy, rows, outFeatures, db);
    }

    /// <summary>Cpu.Reduce.AddColumnSums: sum[c] += Σ_r x[r, c], in fixed row chunks.</summary>
    public static void AddColumnSums(GpuContext g, nint x, int rows, int cols, nint sum)
    {
        int chunks = GpuContext.Chunks(rows);
        nint part = g.Partial((long)chunks * cols);
        // 128 threads: the kernel's __launch_bounds__(128, 4) refuses more
        g.Launch("column_sum_partial", new KernelArgs().Ptr(part).Ptr(x).Int(rows).Int(cols), new Dim3((uint)chunks, (uint)((cols + 128 * g.Pack - 1) / (128 * g.Pack))), new Dim3(128));
        g.AddChunkPartials(sum, part, chunks, cols, cols);
    }
}
