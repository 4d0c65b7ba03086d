using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MixupBert.Kernels.Cpu;

/// <summary>The GEMM's packing: blocks of A and B copied into the micro-kernel's panel order
/// (the half of <see cref="Gemm"/> that moves data rather than multiplies it).</summary>
public static unsafe partial class Gemm
{
    /// <summary>Packs op(A)[i0..i0+mc, p0..p0+kc] into MR-high panels: panel[p*MR + r], zero-padded.</summary>
    private static void PackA(bool transA, float* a, int lda, int i0, int mc, int p0, int kc, float* dst, int mr)
    {
        for (int ir = 0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            float* panel = dst + (long)ir * kc;
            if (!transA)
            {
                float* src = a + (long)(i0 + ir) * lda + p0;
                int p = 0;
                if (Avx.IsSupported && rows == 8 && mr == 8)
                    for (; p + 8 <= kc; p += 8) Transpose8x8(src + p, lda, panel + p * 8, 8);
                else if (Avx.IsSupported && rows == 6 && mr == 6)
                    // p + 8 < kc: each step's last store runs 2 floats past its 8 columns, into the
                    // next column's slots, which the next step or the scalar tail then writes
                    for (; p + 8 < kc; p += 8) Transpose6x8(src + p, lda, panel + p * 6);
                for (int r = 0; r < rows; r++)
                    for (int q = p; q < kc; q++) panel[q * mr + r] = src[(long)r * lda + q];
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(p0 + p) * lda + i0 + ir;
                    float* d = panel + p * mr;
                    if (rows == 8 && mr == 8) Vector256.Store(Vector256.Load(src), d);
                    else if (rows == 6 && mr == 6) { Vector128.Store(Vector128.Load(src), d); *(long*)(d + 4) = *(long*)(src + 4); }
                    else for (int r = 0; r < rows; r++) d[r] = src[r];
                }
            }
            if (rows < mr)
                for (int p = 0; p < kc; p++)
                    for (int r = rows; r < mr; r++) panel[p * mr + r] = 0f;
        }
    }

    /// <summary>Packs op(B)[p0..p0+kc, j0..j0+nc] into NR-wide panels: panel[p*NR + j], zero-padded.</summary>
    private static void PackB(bool transB, float* b, int ldb, int p0, int kc, int j0, int nc, float* dst, int nr)
    {
        for (int jr = 0; jr < nc; jr += nr)
        {
            int cols = Math.Min(nr, nc - jr);
            float* panel = dst + (long)jr * kc;
            if (!transB)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = b + (long)(p0 + p) * ldb + j0 + jr;
                    float* d = panel + p * nr;
                    if (cols == nr) new ReadOnlySpan<float>(src, nr).CopyTo(new Span<float>(d, nr));
                    else
                    {
                        for (int j = 0; j < cols; j++) d[j] = src[j];
                        for (int j = cols; j < nr; j++) d[j] = 0f;
                    }
                }
            }
            else
            {
                int p = 0;
                if (Avx.IsSupported && cols == nr && nr % 8 == 0)
                    for (; p + 8 <= kc; p += 8)
                        for (int j = 0; j < nr; j += 8)
                            Transpose8x8(b + (long)(j0 + jr + j) * ldb + p0 + p, ldb, panel + p * nr + j, nr);
                for (int j = 0; j < cols; j++)
                {
                    float* src = b + (long)(j0 + jr + j) * ldb + p0;
                    for (int q = p; q < kc; q++) panel[q * nr + j] = src[q];
                }
                if (cols < nr)
                    for (int q = 0; q < kc; q++)
                        for (int j = cols; j < nr; j++) panel[q * nr + j] = 0f;
            }
        }
    }

    /// <summary>dst[c, r] = src[r, c] for an 8×8 block (rows ld apart in both): the packing's inner step,
    /// 24 shuffles instead of 64 scalar moves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(float* src, int ldSrc, float* dst, int ldDst)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + ldSrc);
        var r2 = Avx.LoadVector256(src + 2L * ldSrc); var r3 = Avx.LoadVector256(src + 3L * ldSrc);
        var r4 = Avx.LoadVector256(src + 4L * ldSrc); var r5 = Avx.LoadVector256(src + 5L * ldSrc);
        var r6 = Avx.LoadVector256(src + 6L * ldSrc); var r7 = Avx.LoadVector256(src + 7L * ldSrc);
        // interleave pairs of rows, then pairs of pairs, then swap the 128-bit halves
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldDst, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2L * ldDst, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3L * ldDst, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4L * ldDst, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5L * ldDst, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6L * ldDst, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7L * ldDst, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>The AVX2 panel's packing step: 6 rows × 8 columns of A (rows ld apart) to 8 columns of 6
    /// at dst, dst + 6, … Each column is stored as 8 floats, the last two of them (zeros) landing on the
    /// next column's first two slots, so the caller stores the columns in order and leaves at least
    /// one column after the last step for the next step or its scalar tail to write.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose6x8(float* src, int ldSrc, float* dst)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + ldSrc);
        var r2 = Avx.LoadVector256(src + 2L * ldSrc); var r3 = Avx.LoadVector256(src + 3L * ldSrc);
        var r4 = Avx.LoadVector256(src + 4L * ldSrc); var r5 = Avx.LoadVector256(src + 5L * ldSrc);
        var zero = Vector256<float>.Zero; // rows 6 and 7, which the panel does not have
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, zero, 0x44); var u5 = Avx.Shuffle(t4, zero, 0xEE);
        var u6 = Avx.Shuffle(t5, zero, 0x44); var u7 = Avx.Shuffle(t5, zero, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + 6, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 12, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 18, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 24, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 30, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 36, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 42, Avx.Permute2x128(u3, u7, 0x31));
    }
}
