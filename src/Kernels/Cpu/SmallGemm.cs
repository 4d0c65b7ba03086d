using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// C[m,n] = A[m,k] · B[k,n] for the small products of one attention head (64×64×32 and the like),
/// on the calling thread, read straight from the operands: packing them, as <see cref="Gemm"/>
/// does, would cost as much as the product. A is given by two strides, so that A or Aᵀ of a
/// row-major matrix need no copy: A(i, p) = a[i·rowStride + p·colStride]. B is row-major with
/// leading dimension ldb. Every element is summed over p in order, one FMA per term.
/// </summary>
public static unsafe class SmallGemm
{
    private const int Rows = 8; // a tile is 8 rows × 32 (or 16) columns: 16 (or 8) vector accumulators

    /// <summary>C = A·B, overwriting C. One of A's strides must be 1.</summary>
    public static void Multiply(int m, int n, int k, float* a, int rowStride, int colStride, float* b, int ldb, float* c, int ldc)
    {
        if (rowStride != 1 && colStride != 1) throw new ArgumentException("small GEMM: A needs a unit stride along its rows or columns");
        if (!Vector512.IsHardwareAccelerated)
        {
            // without AVX-512 the packed kernel (AVX2 6×16) is the faster one
            if (colStride == 1) Gemm.MultiplySerial(false, false, m, n, k, a, rowStride, b, ldb, c, ldc, false);
            else Gemm.MultiplySerial(true, false, m, n, k, a, colStride, b, ldb, c, ldc, false);
            return;
        }
        int vectorCols = n / 16 * 16;
        for (int i = 0; i < m; i += Rows)
        {
            int rows = Math.Min(Rows, m - i);
            float* ai = a + (long)i * rowStride;
            float* ci = c + (long)i * ldc;
            int j = 0;
            for (; j + 32 <= vectorCols; j += 32) Tile8x32(ai, rowStride, colStride, rows, b + j, ldb, k, ci + j, ldc);
            if (j < vectorCols) { Tile8x16(ai, rowStride, colStride, rows, b + j, ldb, k, ci + j, ldc); j += 16; }
            for (; j < n; j++) ColumnTail(ai, rowStride, colStride, rows, b + j, ldb, k, ci + j, ldc);
        }
    }

    /// <summary>Pointers to the tile's rows of A; the rows past the end repeat row 0 (computed, never stored).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* Row(float* a, int rowStride, int r, int rows) => r < rows ? a + (long)r * rowStride : a;

    private static void Tile8x32(float* a, int rowStride, int colStride, int rows, float* b, int ldb, int k, float* c, int ldc)
    {
        float* a0 = Row(a, rowStride, 0, rows), a1 = Row(a, rowStride, 1, rows), a2 = Row(a, rowStride, 2, rows), a3 = Row(a, rowStride, 3, rows),
            a4 = Row(a, rowStride, 4, rows), a5 = Row(a, rowStride, 5, rows), a6 = Row(a, rowStride, 6, rows), a7 = Row(a, rowStride, 7, rows);
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default,
            c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        long off = 0;
        for (int p = 0; p < k; p++, off += colStride, b += ldb)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            Vector512<float> x;
            x = Vector512.Create(a0[off]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(a1[off]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(a2[off]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(a3[off]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(a4[off]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(a5[off]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(a6[off]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(a7[off]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
        }
        Store(c, ldc, 0, rows, c00, c01); Store(c, ldc, 1, rows, c10, c11); Store(c, ldc, 2, rows, c20, c21); Store(c, ldc, 3, rows, c30, c31);
        Store(c, ldc, 4, rows, c40, c41); Store(c, ldc, 5, rows, c50, c51); Store(c, ldc, 6, rows, c60, c61); Store(c, ldc, 7, rows, c70, c71);
    }

    private static void Tile8x16(float* a, int rowStride, int colStride, int rows, float* b, int ldb, int k, float* c, int ldc)
    {
        float* a0 = Row(a, rowStride, 0, rows), a1 = Row(a, rowStride, 1, rows), a2 = Row(a, rowStride, 2, rows), a3 = Row(a, rowStride, 3, rows),
            a4 = Row(a, rowStride, 4, rows), a5 = Row(a, rowStride, 5, rows), a6 = Row(a, rowStride, 6, rows), a7 = Row(a, rowStride, 7, rows);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        long off = 0;
        for (int p = 0; p < k; p++, off += colStride, b += ldb)
        {
            var b0 = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[off]), b0, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[off]), b0, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[off]), b0, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[off]), b0, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(a4[off]), b0, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(a5[off]), b0, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(a6[off]), b0, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(a7[off]), b0, c7);
        }
        if (rows > 0) c0.Store(c);
        if (rows > 1) c1.Store(c + ldc);
        if (rows > 2) c2.Store(c + 2L * ldc);
        if (rows > 3) c3.Store(c + 3L * ldc);
        if (rows > 4) c4.Store(c + 4L * ldc);
        if (rows > 5) c5.Store(c + 5L * ldc);
        if (rows > 6) c6.Store(c + 6L * ldc);
        if (rows > 7) c7.Store(c + 7L * ldc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, int ldc, int r, int rows, Vector512<float> v0, Vector512<float> v1)
    {
        if (r >= rows) return;
        float* row = c + (long)r * ldc;
        v0.Store(row);
        v1.Store(row + 16);
    }

    /// <summary>One column of the tile, scalar: the n mod 16 columns a vector does not cover.</summary>
    private static void ColumnTail(float* a, int rowStride, int colStride, int rows, float* b, int ldb, int k, float* c, int ldc)
    {
        for (int r = 0; r < rows; r++)
        {
            float* ar = a + (long)r * rowStride;
            float sum = 0f;
            for (int p = 0; p < k; p++) sum = MathF.FusedMultiplyAdd(ar[(long)p * colStride], b[(long)p * ldb], sum);
            c[(long)r * ldc] = sum;
        }
    }
}
