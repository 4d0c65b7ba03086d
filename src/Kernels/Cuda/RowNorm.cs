namespace MixupBert.Kernels.Cuda;

/// <summary>Cpu.RowNorm on the device (kernels/rownorm.cuh): one block per row.</summary>
public static class RowNorm
{
    public static void Forward(GpuContext g, nint x, nint y, int rows, int cols)
    {
        if (rows < 1) return;
        g.Launch("row_norm_forward", new KernelArgs().Ptr(y).Ptr(x).Int(rows).Int(cols), new Dim3((uint)rows), new Dim3(GpuContext.RowThreads));
    }
}
