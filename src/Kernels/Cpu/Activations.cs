using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MixupBert.Kernels.Cpu;

/// <summary>Exact (erf) GELU and tanh, forward and backward side by side (the bias of a linear layer is
/// added by the GEMM as it stores C).</summary>
public static unsafe class Activations
{
    // erf on [-4, 4] as an odd rational polynomial (the float approximation of Eigen and XLA,
    // a few ulp from the true erf); beyond ±4 erf is ±1 in float32.
    private const float A0 = -2.72614225801306e-10f, A1 = 2.77068142495902e-08f, A2 = -2.10102402082508e-06f,
        A3 = -5.69250639462346e-05f, A4 = -7.34990630326855e-04f, A5 = -2.95459980854025e-03f, A6 = -1.60960333262415e-02f;
    private const float B0 = -1.45660718464996e-05f, B1 = -2.13374055278905e-04f, B2 = -1.68282697438203e-03f,
        B3 = -7.37332916720468e-03f, B4 = -1.42647390514189e-02f;
    private const float InvSqrt2 = 0.70710678118654752f, InvSqrt2Pi = 0.39894228040143268f;

    /// <summary>a·b + c fused, as the vector paths and the CUDA kernels compute it, where the CPU has
    /// FMA; a multiply and an add where it has not (x86 before Haswell, or DOTNET_EnableAVX2=0), since
    /// .NET emulates a fused multiply-add in software there, at hundreds of times the cost.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Fma(float a, float b, float c) =>
        System.Runtime.Intrinsics.X86.Fma.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? MathF.FusedMultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Erf(float x)
    {
        x = Math.Clamp(x, -4f, 4f);
        float x2 = x * x;
        float p = Fma(x2, A0, A1);
        p = Fma(x2, p, A2); p = Fma(x2, p, A3);
        p = Fma(x2, p, A4); p = Fma(x2, p, A5);
        p = Fma(x2, p, A6);
        float q = Fma(x2, B0, B1);
        q = Fma(x2, q, B2); q = Fma(x2, q, B3);
        q = Fma(x2, q, B4);
        return x * p / q;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Erf(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(-4f)), Vector512.Create(4f));
        var x2 = x * x;
        var p = Vector512.FusedMultiplyAdd(x2, Vector512.Create(A0), Vector512.Create(A1));
        p = Vector512.FusedMultiplyAdd(x2, p, Vector512.Create(A2)); p = Vector512.FusedMultiplyAdd(x2, p, Vector512.Create(A3));
        p = Vector512.FusedMultiplyAdd(x2, p, Vector512.Create(A4)); p = Vector512.FusedMultiplyAdd(x2, p, Vector512.Create(A5));
        p = Vector512.FusedMultiplyAdd(x2, p, Vector512.Create(A6));
        var q = Vector512.FusedMultiplyAdd(x2, Vector512.Create(B0), Vector512.Create(B1));
        q = Vector512.FusedMultiplyAdd(x2, q, Vector512.Create(B2)); q = Vector512.FusedMultiplyAdd(x2, q, Vector512.Create(B3));
        q = Vector512.FusedMultiplyAdd(x2, q, Vector512.Create(B4));
        return x * p / q;
    }

    /// <summary>The same rational erf on eight lanes (AVX2 + FMA): the same float operations as the
    /// scalar <see cref="Erf(float)"/> with FMA, so each lane equals it bit for bit.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Erf(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(-4f)), Vector256.Create(4f));
        var x2 = x * x;
        var p = Vector256.FusedMultiplyAdd(x2, Vector256.Create(A0), Vector256.Create(A1));
        p = Vector256.FusedMultiplyAdd(x2, p, Vector256.Create(A2)); p = Vector256.FusedMultiplyAdd(x2, p, Vector256.Create(A3));
        p = Vector256.FusedMultiplyAdd(x2, p, Vector256.Create(A4)); p = Vector256.FusedMultiplyAdd(x2, p, Vector256.Create(A5));
        p = Vector256.FusedMultiplyAdd(x2, p, Vector256.Create(A6));
        var q = Vector256.FusedMultiplyAdd(x2, Vector256.Create(B0), Vector256.Create(B1));
        q = Vector256.FusedMultiplyAdd(x2, q, Vector256.Create(B2)); q = Vector256.FusedMultiplyAdd(x2, q, Vector256.Create(B3));
        q = Vector256.FusedMultiplyAdd(x2, q, Vector256.Create(B4));
        return x * p / q;
    }

    /// <summary>Whether the eight-lane path runs: AVX2 with hardware FMA, and no AVX-512 (which takes
    /// sixteen at a time). Without FMA, .NET would emulate the fused operations in software.</summary>
    private static bool Use256 => !Vector512.IsHardwareAccelerated && Vector256.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Fma.IsSupported;

    /// <summary>gelu(x) = x · Φ(x) = ½ x (1 + erf(x/√2)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Gelu(float x) => 0.5f * x * (1f + Erf(x * InvSqrt2));

    /// <summary>gelu'(x) = Φ(x) + x · φ(x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float GeluGrad(float x) => 0.5f * (1f + Erf(x * InvSqrt2)) + x * InvSqrt2Pi * MathF.Exp(-0.5f * x * x);

    private struct GeluForwardBody : ParallelFor.IRangeBody
    {
        public float* X, Y;
        public void Run(int begin, int end) => Gelu(X + begin, Y + begin, end - begin);
    }

    /// <summary>y[i] = gelu(x[i]) for n elements, sixteen (AVX-512) or eight (AVX2) at a time with a
    /// scalar tail (the vector and scalar paths do the same float operations, so an element's value
    /// does not depend on which).</summary>
    public static void Gelu(float* x, float* y, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16)
            {
                var v = Vector512.Load(x + i);
                (Vector512.Create(0.5f) * v * (Vector512<float>.One + Erf(v * Vector512.Create(InvSqrt2)))).Store(y + i);
            }
        else if (Use256)
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(x + i);
                (Vector256.Create(0.5f) * v * (Vector256<float>.One + Erf(v * Vector256.Create(InvSqrt2)))).Store(y + i);
            }
        for (; i < n; i++) y[i] = Gelu(x[i]);
    }

    private struct GeluBackwardBody : ParallelFor.IRangeBody
    {
        public float* X, DY, DX;
        public void Run(int begin, int end)
        {
            int i = begin;
            if (Vector512.IsHardwareAccelerated)
                for (; i + 16 <= end; i += 16)
                {
                    var x = Vector512.Load(X + i);
                    var cdf = Vector512.Create(0.5f) * (Vector512<float>.One + Erf(x * Vector512.Create(InvSqrt2)));
                    var pdf = Vector512.Create(InvSqrt2Pi) * Vector512.Exp(Vector512.Create(-0.5f) * x * x);
                    (Vector512.Load(DY + i) * (cdf + x * pdf)).Store(DX + i);
                }
            else if (Use256)
                for (; i + 8 <= end; i += 8)
                {
                    // Vector256.Exp, like the AVX-512 path's Vector512.Exp, may differ from MathF.Exp
                    // in the last bit (GeluVectorPathsMatchScalar bounds it)
                    var x = Vector256.Load(X + i);
                    var cdf = Vector256.Create(0.5f) * (Vector256<float>.One + Erf(x * Vector256.Create(InvSqrt2)));
                    var pdf = Vector256.Create(InvSqrt2Pi) * Vector256.Exp(Vector256.Create(-0.5f) * x * x);
                    (Vector256.Load(DY + i) * (cdf + x * pdf)).Store(DX + i);
                }
            for (; i < end; i++) DX[i] = DY[i] * GeluGrad(X[i]);
        }
    }

    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("gelu: output shorter than input");
        fixed (float* px = x, py = y)
            ParallelFor.Run(x.Length, new GeluForwardBody { X = px, Y = py }, 16, 1024);
    }

    /// <summary>dx = dy · gelu'(x). dx may alias dy.</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        if (dy.Length < x.Length || dx.Length < x.Length) throw new ArgumentException("gelu backward: buffers shorter than input");
        fixed (float* px = x, pdy = dy, pdx = dx)
            ParallelFor.Run(x.Length, new GeluBackwardBody { X = px, DY = pdy, DX = pdx }, 24, 1024);
    }

    public static void TanhForward(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Tanh(x, y);

    /// <summary>dx = dy · (1 − y²), from the forward's output y.</summary>
    public static void TanhBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < y.Length; i++) dx[i] = dy[i] * (1f - y[i] * y[i]);
    }
}
