using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using MixupBert.Kernels.Cpu;

namespace MixupBert.Bench;

/// <summary>
/// The machine's own yardsticks: float32 FMA throughput (independent FMA chains that no
/// dependency latency can slow) on one core and on every core, and memory bandwidth (a large copy).
/// </summary>
[SimpleJob(warmupCount: 3, iterationCount: 10)]
public class PeakBenchmarks : IWork
{
    private const int Iterations = 20_000_000;
    private const int Chains = 12;
    private readonly float[] src = new float[64 << 20], dst = new float[64 << 20];
    private readonly FmaJob job = new();

    public static (double, string) Work(string method, string parameter) => method switch
    {
        nameof(FmaOneThread) => (2.0 * Iterations * Chains * Lanes, "GFLOP/s"),
        nameof(FmaAllThreads) => (2.0 * Iterations * Chains * Lanes * WorkerPool.Shared.WorkerCount, "GFLOP/s"),
        _ => (2.0 * 4 * (64 << 20), "GB/s"), // read + write
    };

    private static int Lanes => Vector512.IsHardwareAccelerated ? 16 : 8;

    [Benchmark] public float FmaOneThread() => Fma(Iterations);

    [Benchmark]
    public float FmaAllThreads()
    {
        WorkerPool.Shared.Run(job);
        return job.Result;
    }

    [Benchmark] public void MemoryCopy() => src.AsSpan().CopyTo(dst);

    private sealed class FmaJob : IParallelJob
    {
        public float Result;
        public void Execute(int worker, int workerCount) => Result += Fma(Iterations);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Fma(int n)
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
