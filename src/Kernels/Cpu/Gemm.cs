using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// Single-precision matrix multiply, row-major: C[m,n] = op(A)[m,k] · op(B)[k,n] (+ C when
/// accumulating), with op = transpose or not. The classic GotoBLAS/BLIS structure: B is packed in
/// kc×nc blocks into NR-wide column panels, A in mc×kc blocks into MR-high row panels, and a
/// register-blocked micro-kernel computes each MR×NR tile of C with vector FMAs. Every element of
/// C is summed in the same order whatever the thread count or the tile it falls in (edge tiles use
/// the same micro-kernel on zero-padded panels), so results are bit-identical across thread counts.
/// </summary>
public static unsafe partial class Gemm
{
    // Micro-tile: MR rows × NR columns. AVX-512: 8 × 32 (16 zmm accumulators); AVX2: 6 × 16;
    // otherwise a portable 4 × 8 on Vector128 (ARM NEON).
    public static readonly int MR = Vector512.IsHardwareAccelerated ? 8 : Vector256.IsHardwareAccelerated ? 6 : 4;
    public static readonly int NR = Vector512.IsHardwareAccelerated ? 32 : Vector256.IsHardwareAccelerated ? 16 : 8;
    private const int MaxTile = 8 * 32; // the largest MR × NR: an edge tile's stack buffer

    /// <summary>Which micro-kernel (and so which ISA path) this process's products run on.</summary>
    public static string MicroKernel => Vector512.IsHardwareAccelerated ? "AVX-512 8×32"
        : Vector256.IsHardwareAccelerated ? (Fma.IsSupported ? "AVX2+FMA 6×16" : "AVX 6×16 (no FMA)")
        : System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "NEON Vector128 4×8" : "Vector128 4×8";

    // Block sizes from this machine's cache sizes (GemmBlocking.For: the rule and why). A deep block
    // matters: every block of depth kc ends in a load + store of the C tile, so K up to kc is one
    // block, deeper K is cut into equal blocks.
    public static readonly GemmBlocking Blocking = GemmBlocking.For(MR, NR, CacheSizes.OfThisMachine);
    private static int KCMax => Blocking.KC;
    private static int PackedBFloats => Blocking.PackedBFloats;
    // Rows of A per block: whole MR-high panels, so a block never pads a panel except at the matrix's
    // last rows, and the packed block (rows padded up to MR) always fits MC × KCMax. (With MC 64 and
    // MR 6 the padding to 66 rows once overflowed it.)
    internal static int MC => Blocking.MC;

    // The pack buffers' sizes follow from the tile and the blocking, never from one ISA's constants:
    // packed A is at most RoundUp(mc, MR) ≤ MC rows × kc ≤ KCMax;
    // packed B is at most RoundUp(nc, NR) × kc, where nc ≤ max(NR, PackedBFloats / kc rounded to NR).
    internal static int PackedAFloatsMax => MC * KCMax;
    internal static int PackedBFloatsMax => PackedBFloats + KCMax * NR;

    [ThreadStatic] private static Job? job_;
    [ThreadStatic] private static GuardedBuffer? packA;
    [ThreadStatic] private static GuardedBuffer? packB;

    /// <summary>
    /// C = op(A)·op(B) (+C if <paramref name="accumulate"/>) (+ columnBias[j] on every row), and, when
    /// <paramref name="geluOut"/> is given, geluOut = gelu(C) too (same ldc; it must not overlap C).
    /// The bias and the GELU are applied to each tile as it is stored, while it is in L1: a linear
    /// layer then costs no pass over its output beyond the GEMM's. Split across the pool's workers.
    /// </summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc,
        bool accumulate = false, WorkerPool? pool = null, ReadOnlySpan<float> columnBias = default, Span<float> geluOut = default)
    {
        CheckShapes(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (!columnBias.IsEmpty && columnBias.Length < n) throw new ArgumentException($"GEMM bias has {columnBias.Length} entries for {n} columns");
        if (!geluOut.IsEmpty && m > 0 && (long)(m - 1) * ldc + n > geluOut.Length)
            throw new ArgumentException($"GEMM GELU output ({m}×{n}, ldc {ldc}) does not fit its buffer of {geluOut.Length}");
        if (m == 0 || n == 0) return;
        pool ??= WorkerPool.Shared;
        fixed (float* pa = a, pb = b, pc = c, pbias = columnBias, pgelu = geluOut)
        {
            var job = job_ ??= new Job();
            job.Set(transA, transB, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate, new Epilogue(pbias, pgelu));
            long flops = 2L * m * n * k;
            if (pool.WorkerCount == 1 || flops < 2_000_000) job.Execute(0, 1);
            else pool.Run(job);
        }
    }

    /// <summary>The same product on the calling thread only (for callers that parallelise outside).</summary>
    public static void MultiplySerial(bool transA, bool transB, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        if (m == 0 || n == 0) return;
        Block(transA, transB, 0, m, 0, n, k, a, lda, b, ldb, c, ldc, accumulate, default);
    }

    /// <summary>What is done to a tile of C once its last block is summed: + bias, and gelu into a second matrix.</summary>
    private readonly struct Epilogue(float* bias, float* gelu)
    {
        public readonly float* Bias = bias, Gelu = gelu;
    }

    private static void CheckShapes(bool transA, bool transB, int m, int n, int k, int aLen, int lda, int bLen, int ldb, int cLen, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"negative GEMM size m={m} n={n} k={k}");
        int aRows = transA ? k : m, aCols = transA ? m : k;
        int bRows = transB ? n : k, bCols = transB ? k : n;
        if (aRows > 0 && (lda < aCols || (long)(aRows - 1) * lda + aCols > aLen))
            throw new ArgumentException($"GEMM operand A ({aRows}×{aCols}, lda {lda}) does not fit its buffer of {aLen}");
        if (bRows > 0 && (ldb < bCols || (long)(bRows - 1) * ldb + bCols > bLen))
            throw new ArgumentException($"GEMM operand B ({bRows}×{bCols}, ldb {ldb}) does not fit its buffer of {bLen}");
        if (m > 0 && (ldc < n || (long)(m - 1) * ldc + n > cLen))
            throw new ArgumentException($"GEMM output C ({m}×{n}, ldc {ldc}) does not fit its buffer of {cLen}");
    }

    private sealed class Job : IParallelJob
    {
        private bool transA, transB, accumulate;
        private int m, n, k, lda, ldb, ldc;
        private float* a, b, c;
        private Epilogue epilogue;

        public void Set(bool tA, bool tB, int m_, int n_, int k_, float* a_, int lda_, float* b_, int ldb_, float* c_, int ldc_, bool acc, Epilogue e)
        {
            transA = tA; transB = tB; m = m_; n = n_; k = k_; a = a_; lda = lda_; b = b_; ldb = ldb_; c = c_; ldc = ldc_; accumulate = acc; epilogue = e;
        }

        public void Execute(int worker, int workerCount)
        {
            // Split the larger of the two output dimensions; each worker packs what it reads.
            if (m >= n || n < NR * workerCount)
            {
                var (r0, r1) = WorkerPool.Share(m, worker, workerCount, MR);
                if (r1 > r0) Block(transA, transB, r0, r1, 0, n, k, a, lda, b, ldb, c, ldc, accumulate, epilogue);
            }
            else
            {
                var (c0, c1) = WorkerPool.Share(n, worker, workerCount, NR);
                if (c1 > c0) Block(transA, transB, 0, m, c0, c1, k, a, lda, b, ldb, c, ldc, accumulate, epilogue);
            }
        }
    }

    /// <summary>Computes rows [r0,r1) × columns [c0,c1) of C.</summary>
    private static void Block(bool transA, bool transB, int r0, int r1, int c0, int c1, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, Epilogue epilogue)
    {
        int mr = MR, nr = NR;
        var bufA = packA = Fitting(packA, PackedAFloatsMax);
        var bufB = packB = Fitting(packB, PackedBFloatsMax);
        if (k == 0)
        {
            for (int i = r0; i < r1; i++)
            {
                var row = new Span<float>(c + (long)i * ldc + c0, c1 - c0);
                if (!accumulate) row.Clear();
                if (epilogue.Bias != null) System.Numerics.Tensors.TensorPrimitives.Add(row, new ReadOnlySpan<float>(epilogue.Bias + c0, c1 - c0), row);
                if (epilogue.Gelu != null) Activations.Gelu(c + (long)i * ldc + c0, epilogue.Gelu + (long)i * ldc + c0, c1 - c0);
            }
            return;
        }
        {
            float* packedA = bufA.Start, packedB = bufB.Start;
            int kBlocks = (k + KCMax - 1) / KCMax;
            int kcFull = (k + kBlocks - 1) / kBlocks;
            int ncMax = Math.Max(nr, PackedBFloats / kcFull / nr * nr);
            for (int jc = c0; jc < c1; jc += ncMax)
            {
                int nc = Math.Min(ncMax, c1 - jc);
                for (int pc = 0; pc < k; pc += kcFull)
                {
                    int kc = Math.Min(kcFull, k - pc);
                    bool add = accumulate || pc > 0;
                    bool last = pc + kc == k; // the epilogue runs on the last block only
                    bufB.CheckFits((long)RoundUp(nc, nr) * kc, "packed B");
                    PackB(transB, b, ldb, pc, kc, jc, nc, packedB, nr);
                    for (int ic = r0; ic < r1; ic += MC)
                    {
                        int mc = Math.Min(MC, r1 - ic);
                        bufA.CheckFits((long)RoundUp(mc, mr) * kc, "packed A");
                        PackA(transA, a, lda, ic, mc, pc, kc, packedA, mr);
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            int cols = Math.Min(nr, nc - jr);
                            float* panelB = packedB + (long)jr * kc;
                            for (int ir = 0; ir < mc; ir += mr)
                            {
                                int rows = Math.Min(mr, mc - ir);
                                float* tile = c + (long)(ic + ir) * ldc + jc + jr;
                                float* bias = last && epilogue.Bias != null ? epilogue.Bias + jc + jr : null;
                                MicroTile(packedA + (long)ir * kc, panelB, kc, tile, ldc, rows, cols, add, bias);
                                if (last && epilogue.Gelu != null)
                                {
                                    float* gelu = epilogue.Gelu + (tile - c);
                                    for (int r = 0; r < rows; r++) Activations.Gelu(tile + (long)r * ldc, gelu + (long)r * ldc, cols);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>The thread's pack buffer, or a new one where it is missing or smaller than the blocking needs.</summary>
    private static GuardedBuffer Fitting(GuardedBuffer? buffer, int floats) =>
        buffer != null && buffer.Capacity >= floats ? buffer : new GuardedBuffer(floats);

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;

    /// <summary>One MR×NR tile: full tiles go straight to C, edge tiles through a stack buffer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MicroTile(float* pa, float* pb, int kc, float* tile, int ldc, int rows, int cols, bool add, float* bias)
    {
        if (rows == MR && cols == NR)
        {
            Kernel(pa, pb, kc, tile, ldc, add, bias);
            return;
        }
        // the same sums in the same order as a full tile: (product + C) + bias
        float* tmp = stackalloc float[MaxTile];
        Kernel(pa, pb, kc, tmp, NR, false, null);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
            {
                float v = add ? tmp[r * NR + j] + tile[(long)r * ldc + j] : tmp[r * NR + j];
                tile[(long)r * ldc + j] = bias != null ? v + bias[j] : v;
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel(float* pa, float* pb, int kc, float* c, int ldc, bool add, float* bias)
    {
        if (Vector512.IsHardwareAccelerated) Kernel8x32(pa, pb, kc, c, ldc, add, bias);
        else if (Vector256.IsHardwareAccelerated) Kernel6x16(pa, pb, kc, c, ldc, add, bias);
        else Kernel4x8(pa, pb, kc, c, ldc, add, bias);
    }

    private static void Kernel8x32(float* pa, float* pb, int kc, float* c, int ldc, bool add, float* bias)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default,
            c20 = default, c21 = default, c30 = default, c31 = default,
            c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(pb);
            var b1 = Vector512.Load(pb + 16);
            Vector512<float> x;
            x = Vector512.Create(pa[0]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            x = Vector512.Create(pa[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11);
            x = Vector512.Create(pa[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21);
            x = Vector512.Create(pa[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31);
            x = Vector512.Create(pa[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41);
            x = Vector512.Create(pa[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51);
            x = Vector512.Create(pa[6]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61);
            x = Vector512.Create(pa[7]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71);
            pa += 8; pb += 32;
        }
        Store512(c, add, bias, c00, c01); c += ldc;
        Store512(c, add, bias, c10, c11); c += ldc;
        Store512(c, add, bias, c20, c21); c += ldc;
        Store512(c, add, bias, c30, c31); c += ldc;
        Store512(c, add, bias, c40, c41); c += ldc;
        Store512(c, add, bias, c50, c51); c += ldc;
        Store512(c, add, bias, c60, c61); c += ldc;
        Store512(c, add, bias, c70, c71);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, bool add, float* bias, Vector512<float> v0, Vector512<float> v1)
    {
        if (add) { v0 += Vector512.Load(c); v1 += Vector512.Load(c + 16); }
        if (bias != null) { v0 += Vector512.Load(bias); v1 += Vector512.Load(bias + 16); }
        v0.Store(c); v1.Store(c + 16);
    }

    private static void Kernel6x16(float* pa, float* pb, int kc, float* c, int ldc, bool add, float* bias)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(pb);
            var b1 = Vector256.Load(pb + 8);
            Vector256<float> x;
            x = Vector256.Create(pa[0]); c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(pa[1]); c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(pa[2]); c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(pa[3]); c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(pa[4]); c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(pa[5]); c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
            pa += 6; pb += 16;
        }
        Store256(c, add, bias, c00, c01); c += ldc;
        Store256(c, add, bias, c10, c11); c += ldc;
        Store256(c, add, bias, c20, c21); c += ldc;
        Store256(c, add, bias, c30, c31); c += ldc;
        Store256(c, add, bias, c40, c41); c += ldc;
        Store256(c, add, bias, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store256(float* c, bool add, float* bias, Vector256<float> v0, Vector256<float> v1)
    {
        if (add) { v0 += Vector256.Load(c); v1 += Vector256.Load(c + 8); }
        if (bias != null) { v0 += Vector256.Load(bias); v1 += Vector256.Load(bias + 8); }
        v0.Store(c); v1.Store(c + 8);
    }

    /// <summary>Fused where the CPU has FMA (ARM NEON, x86 with FMA); else a multiply and an add, which on
    /// x86 without FMA is ~100× faster than .NET's software-emulated fused multiply-add.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> MulAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) =>
        Fma.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? Vector128.FusedMultiplyAdd(a, b, c) : a * b + c;

    private static void Kernel4x8(float* pa, float* pb, int kc, float* c, int ldc, bool add, float* bias)
    {
        Vector128<float> c00 = default, c01 = default, c10 = default, c11 = default,
            c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector128.Load(pb);
            var b1 = Vector128.Load(pb + 4);
            Vector128<float> x;
            x = Vector128.Create(pa[0]); c00 = MulAdd(x, b0, c00); c01 = MulAdd(x, b1, c01);
            x = Vector128.Create(pa[1]); c10 = MulAdd(x, b0, c10); c11 = MulAdd(x, b1, c11);
            x = Vector128.Create(pa[2]); c20 = MulAdd(x, b0, c20); c21 = MulAdd(x, b1, c21);
            x = Vector128.Create(pa[3]); c30 = MulAdd(x, b0, c30); c31 = MulAdd(x, b1, c31);
            pa += 4; pb += 8;
        }
        for (int r = 0; r < 4; r++)
        {
            var (v0, v1) = r switch { 0 => (c00, c01), 1 => (c10, c11), 2 => (c20, c21), _ => (c30, c31) };
            float* row = c + (long)r * ldc;
            if (add) { v0 += Vector128.Load(row); v1 += Vector128.Load(row + 4); }
            if (bias != null) { v0 += Vector128.Load(bias); v1 += Vector128.Load(bias + 4); }
            v0.Store(row); v1.Store(row + 4);
        }
    }
}
