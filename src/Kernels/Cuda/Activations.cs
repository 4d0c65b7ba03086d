namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.Activations on the device (kernels/activations.cuh); GELU's forward is in Linear.ForwardGelu.</summary>
public static class Activations
{
    /// <summary>Rows a gelu_backward thread takes, the chunk of its bias-gradient partial sums (GELU_ROWS in
    /// kernels/activations.cuh).</summary>
    public const int GeluRowsPerChunk = 16;

    /// <summary>Rows a bias_gelu_forward thread takes (GELU_FORWARD_ROWS): one batch of loads, the most warps.</summary>
    public const int GeluForwardRowsPerChunk = 4;

    /// <summary>The grid of bias_gelu_forward and gelu_backward (blocks of 128 threads): chunks of
    /// <paramref name="chunkRows"/> rows on x, columns (a pack of <see cref="GpuContext.Pack"/> a thread) on y.</summary>
    internal static Dim3 GeluGrid(GpuContext g, int rows, int cols, int chunkRows)
        => new((uint)((rows + chunkRows - 1) / chunkRows), (uint)((cols + 128 * g.Pack - 1) / (128 * g.Pack)));

    /// <summary>dx = dy · gelu'(x + bias) over [rows, cols], x the pre-activation as <see cref="Linear.ForwardGelu"/>
    /// stored it (without its bias; bias 0: none); dx may be dy. When <paramref name="dbias"/> is not 0, also
    /// dbias += Σ_rows dx, the bias gradient of the layer before GELU (Cpu.Linear.Backward's db), in the same pass.</summary>
    public static void GeluBackward(GpuContext g, nint x, nint bias, nint dy, nint dx, int rows, int cols, nint dbias = 0)
    {
        var grid = GeluGrid(g, rows, cols, GeluRowsPerChunk);
        int chunks = (int)grid.X;
        nint part = dbias != 0 ? g.Partial((long)chunks * cols) : 0;
        g.Launch("gelu_backward", new KernelArgs().Ptr(dx).Ptr(part).Ptr(x).Ptr(bias).Ptr(dy).Int(rows).Int(cols), grid, new Dim3(128));
        if (dbias != 0) g.AddChunkPartials(dbias, part, chunks, cols, cols);
    }

    public static void TanhForward(GpuContext g, nint x, nint y, long n)
        => g.Elementwise("tanh_forward", new KernelArgs().Ptr(y).Ptr(x).Long(n), n);

    /// <summary>dx = dy · (1 − y²), from the forward's output y.</summary>
    public static void TanhBackward(GpuContext g, nint y, nint dy, nint dx, long n)
        => g.Elementwise("tanh_backward", new KernelArgs().Ptr(dx).Ptr(y).Ptr(dy).Long(n), n);
}
