using MixupBert.Kernels.Cuda;
using MixupBert.Tests.CudaShim;

namespace MixupBert.Tests.Cuda;

/// <summary>A shim GPU with helpers to move test data in and out.</summary>
public sealed class ShimDevice : IDisposable
{
    public ShimGpu Gpu { get; } = new();
    public GpuOps Ops { get; }

    public ShimDevice() => Ops = new GpuOps(Gpu);

    public nint Up(float[] host)
    {
        nint p = Gpu.Alloc(host.Length * 4L);
        Gpu.CopyToDevice<float>(p, host);
        return p;
    }

    public nint Up(int[] host)
    {
        nint p = Gpu.Alloc(host.Length * 4L);
        Gpu.CopyToDevice<int>(p, host);
        return p;
    }

    public nint Zeros(long n)
    {
        nint p = Gpu.Alloc(n * 4);
        Gpu.Fill32(p, 0, n);
        return p;
    }

    /// <summary>Uninitialised (NaN-poisoned) device memory: what a kernel must fully overwrite.</summary>
    public nint Empty(long n) => Gpu.Alloc(n * 4);

    public float[] Down(nint p, long n)
    {
        var a = new float[n];
        Gpu.CopyToHost<float>(a, p);
        return a;
    }

    public void Dispose() { Ops.Dispose(); Gpu.Dispose(); }
}

public static class Compare
{
    /// <summary>Elementwise ops: within 1e-5 relative (plus 1e-6 absolute near zero).</summary>
    public const double ElementwiseRel = 1e-5, ElementwiseAbs = 1e-6;
    /// <summary>Ops that reduce (sums over rows, softmax, norms): within 1e-4 relative (plus 1e-5 absolute).</summary>
    public const double ReductionRel = 1e-4, ReductionAbs = 1e-5;

    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rel, double abs, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0; int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs((double)expected[i] - actual[i]);
            double ratio = float.IsNaN(actual[i]) || float.IsNaN(expected[i]) ? double.PositiveInfinity : err / (abs + rel * Math.Abs(expected[i]));
            if (ratio > worst) { worst = ratio; at = i; }
        }
        Assert.True(worst <= 1.0, $"{what}: element {at}: CPU {(at >= 0 ? expected[at] : 0)}, shim GPU {(at >= 0 ? actual[at] : 0)} ({worst:F2}× the tolerance)");
    }
}
