namespace MixupBert.Kernels.Cuda;

/// <summary>
/// How the CUDA backend computes. Fp32: float32 everywhere, GEMMs on the FMA units. Tf32: float32
/// storage, GEMMs on TF32 tensor cores (10-bit mantissa operands, float32 accumulation). Bf16: mixed
/// precision as torch.autocast does it: activations and GEMM operands in bfloat16 (kernels.cu's second
/// module), float32 master weights, gradients, Adam moments and statistics, float32 accumulation in
/// every GEMM and kernel. The CPU backend is float32 only.
/// </summary>
public enum Precision { Fp32, Tf32, Bf16 }

/// <summary>The element type of a device buffer: activations are one or the other; parameters,
/// their gradients, Adam's moments and statistics are always <see cref="F32"/>.</summary>
public enum DType { F32, BF16 }

/// <summary>The element types of one GEMM: both operands, and the output.</summary>
public readonly record struct GemmTypes(DType Operands, DType Output)
{
    public static readonly GemmTypes F32 = new(DType.F32, DType.F32);
}

public static class DTypes
{
    public static int Size(this DType t) => t == DType.BF16 ? 2 : 4;

    /// <summary>The activation type of a precision.</summary>
    public static DType Activations(this Precision p) => p == Precision.Bf16 ? DType.BF16 : DType.F32;

    public static string Name(this Precision p) => p switch { Precision.Fp32 => "fp32", Precision.Tf32 => "tf32", _ => "bf16" };

    public static Precision Parse(string text) => text switch
    {
        "fp32" => Precision.Fp32,
        "tf32" => Precision.Tf32,
        "bf16" => Precision.Bf16,
        _ => throw new ArgumentException($"unknown precision '{text}' (fp32, tf32 or bf16)"),
    };
}

/// <summary>bfloat16 on the host: the upper 16 bits of a float32, rounded to nearest even as CUDA's
/// __float2bfloat16 (and tests/CudaShim/cuda_bf16.h) rounds.</summary>
public static class BFloat16
{
    public static ushort FromFloat(float f)
    {
        uint b = BitConverter.SingleToUInt32Bits(f);
        if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FFF; // NaN stays NaN
        b += 0x7FFFu + ((b >> 16) & 1u);
        return (ushort)(b >> 16);
    }

    public static float ToFloat(ushort h) => BitConverter.UInt32BitsToSingle((uint)h << 16);

    /// <summary>f rounded to the nearest bfloat16, as a float.</summary>
    public static float Round(float f) => ToFloat(FromFloat(f));

    public static void FromFloat(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        for (int i = 0; i < source.Length; i++) destination[i] = FromFloat(source[i]);
    }

    public static void ToFloat(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        for (int i = 0; i < source.Length; i++) destination[i] = ToFloat(source[i]);
    }
}
