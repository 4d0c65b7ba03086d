using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// The machine's float32 multiply-add throughput, measured rather than read from a data sheet, on
/// the widest vectors the GEMM's micro-kernel uses (so "% of peak" compares like with like on every
/// ISA): AVX-512 where present, AVX2 (Vector256) FMA on AVX2 machines, Vector128 otherwise.
/// Twelve independent chains per thread: a chain waits on its own result, so the FMA units are
/// kept full only with latency × ports chains in flight, 4 × 2 = 8 on Haswell … Ice Lake and Zen 1 … 5
/// (5 × 2 = 10 on the slowest, Zen 1's 5-cycle FMA); twelve more than covers it, and with the two
/// constants fits AVX2's sixteen vector registers. The yardstick that GEMM and training-step FLOP/s
/// are compared against.
/// </summary>
public static class MachinePeak
{
    /// <summary>Independent FMA chains per thread (see the class comment).</summary>
    public const int Chains = 12;

    /// <summary>Lanes of the vector the FMA loop uses.</summary>
    public static int Lanes => Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 4;

    /// <summary>Which loop <see cref="Fma"/> runs, e.g. "AVX2 FMA, 8 lanes × 12 chains".</summary>
    public static string Describe()
    {
        string isa = Vector512.IsHardwareAccelerated ? "AVX-512 FMA" : Vector256.IsHardwareAccelerated ? "AVX2 FMA"
            : System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? "NEON FMA" : System.Runtime.Intrinsics.X86.Fma.IsSupported ? "SSE FMA" : "SSE multiply + add";
        return $"{isa}, {Lanes} lanes × {Chains} chains";
    }

    /// <summary>FLOPs (2 per lane per FMA) of <see cref="Fma"/> with n iterations.</summary>
    public static double FlopsOf(long iterations) => 2.0 * iterations * Chains * Lanes;

    /// <summary>
    /// GFLOP/s of the FMA loop on every worker of the pool at once: the best of seven runs of ~0.1 s.
    /// The best, not the median: the peak is an upper bound, and on a shared machine other processes
    /// only ever slow a run down (a median taken in a busy stretch once put the peak below what
    /// ONNX Runtime sustained on the same machine).
    /// </summary>
    public static double FmaGflops(WorkerPool pool)
    {
        var job = new FmaJob { Iterations = 2_000_000 };
        pool.Run(job); // warm-up: JIT and clocks
        double best = 0;
        for (int i = 0; i < 7; i++)
        {
            var sw = Stopwatch.StartNew();
            pool.Run(job);
            best = Math.Max(best, FlopsOf(job.Iterations) * pool.WorkerCount / sw.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }

    private sealed class FmaJob : IParallelJob
    {
        public int Iterations;
        public float Sink;
        public void Execute(int worker, int workerCount) => Sink += Fma(Iterations);
    }

    /// <summary>n iterations of twelve independent FMA chains; the result only keeps the loop alive.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static float Fma(int n)
    {
        if (!Vector512.IsHardwareAccelerated) return Vector256.IsHardwareAccelerated ? Fma256(n) : Fma128(n);
        var m = Vector512.Create(0.9999999f); var a = Vector512.Create(1e-7f);
        Vector512<float> c0 = m, c1 = m, c2 = m, c3 = m, c4 = m, c5 = m, c6 = m, c7 = m, c8 = m, c9 = m, c10 = m, c11 = m;
        for (int i = 0; i < n; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a); c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a); c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a); c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a); c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a); c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a); c11 = Vector512.FusedMultiplyAdd(c11, m, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Fma256(int n)
    {
        var m = Vector256.Create(0.9999999f); var a = Vector256.Create(1e-7f);
        Vector256<float> c0 = m, c1 = m, c2 = m, c3 = m, c4 = m, c5 = m, c6 = m, c7 = m, c8 = m, c9 = m, c10 = m, c11 = m;
        for (int i = 0; i < n; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, m, a); c1 = Vector256.FusedMultiplyAdd(c1, m, a);
            c2 = Vector256.FusedMultiplyAdd(c2, m, a); c3 = Vector256.FusedMultiplyAdd(c3, m, a);
            c4 = Vector256.FusedMultiplyAdd(c4, m, a); c5 = Vector256.FusedMultiplyAdd(c5, m, a);
            c6 = Vector256.FusedMultiplyAdd(c6, m, a); c7 = Vector256.FusedMultiplyAdd(c7, m, a);
            c8 = Vector256.FusedMultiplyAdd(c8, m, a); c9 = Vector256.FusedMultiplyAdd(c9, m, a);
            c10 = Vector256.FusedMultiplyAdd(c10, m, a); c11 = Vector256.FusedMultiplyAdd(c11, m, a);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    /// <summary>Multiply-add as the 4 × 8 micro-kernel computes it: fused where the CPU has FMA, else a
    /// multiply and an add (.NET emulates a fused one in software, which would measure nothing useful).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> MulAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) =>
        System.Runtime.Intrinsics.X86.Fma.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? Vector128.FusedMultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Fma128(int n)
    {
        var m = Vector128.Create(0.9999999f); var a = Vector128.Create(1e-7f);
        Vector128<float> c0 = m, c1 = m, c2 = m, c3 = m, c4 = m, c5 = m, c6 = m, c7 = m, c8 = m, c9 = m, c10 = m, c11 = m;
        for (int i = 0; i < n; i++)
        {
            c0 = MulAdd(c0, m, a); c1 = MulAdd(c1, m, a); c2 = MulAdd(c2, m, a); c3 = MulAdd(c3, m, a);
            c4 = MulAdd(c4, m, a); c5 = MulAdd(c5, m, a); c6 = MulAdd(c6, m, a); c7 = MulAdd(c7, m, a);
            c8 = MulAdd(c8, m, a); c9 = MulAdd(c9, m, a); c10 = MulAdd(c10, m, a); c11 = MulAdd(c11, m, a);
        }
        return Vector128.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }
}
