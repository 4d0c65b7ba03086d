using BenchmarkDotNet.Attributes;
using MixupBert.Kernels.Cpu;

namespace MixupBert.Bench;

/// <summary>
/// The machine's own yardsticks: float32 FMA throughput (<see cref="MachinePeak"/>'s independent FMA
/// chains, which no dependency latency can slow) on one core and on every core, and memory
/// bandwidth (a large copy).
/// </summary>
[SimpleJob(warmupCount: 3, iterationCount: 10)]
public class PeakBenchmarks : IWork
{
    private const int Iterations = 20_000_000;
    private readonly float[] src = new float[64 << 20], dst = new float[64 << 20];
    private readonly FmaJob job = new();

    public static (double, string) Work(string method, string parameter) => method switch
    {
        nameof(FmaOneThread) => (MachinePeak.FlopsOf(Iterations), "GFLOP/s"),
        nameof(FmaAllThreads) => (MachinePeak.FlopsOf(Iterations) * WorkerPool.Shared.WorkerCount, "GFLOP/s"),
        _ => (2.0 * 4 * (64 << 20), "GB/s"), // read + write
    };

    [GlobalSetup]
    public void Setup() => IsaPath.Print();

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

    private static float Fma(int n) => MachinePeak.Fma(n);
}
