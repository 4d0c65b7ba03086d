using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// The machine's float32 FMA throughput, measured rather than read from a data sheet: twelve
/// independent vector FMA chains per thread (more than the FMA latency × throughput, so no chain
/// waits on its own result), on every worker of a pool. The yardstick that GEMM and training-step
/// FLOP/s are compared against.
/// </summary>
public static class MachinePeak
{
    private const int Chains = 12;

    /// <summary>Lanes of the widest vector the FMA loop uses.</summary>
    public static int Lanes => Vector512.IsHardwareAccelerated ? 16 : 8;

    /// <summary>FLOPs (2 per lane per FMA) of <see cref="Fma"/> with n iterations.</summary>
    public static double FlopsOf(long iterations) => 2.0 * iterations * Chains * Lanes;

    /// <summary>GFLOP/s of the FMA loop on every worker of the pool at once (median of five runs of ~0.1 s).</summary>
    public static double FmaGflops(WorkerPool pool)
    {
        var job = new FmaJob { Iterations = 2_000_000 };
        pool.Run(job); // warm-up: JIT and clocks
        var rates = new double[5];
        for (int i = 0; i < rates.Length; i++)
        {
            var sw = Stopwatch.StartNew();
            pool.Run(job);
            rates[i] = FlopsOf(job.Iterations) * pool.WorkerCount / sw.Elapsed.TotalSeconds / 1e9;
        }
        Array.Sort(rates);
        return rates[rates.Length / 2];
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
        if (!Vector512.IsHardwareAccelerated) return Fma256(n);
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
}
