using BenchmarkDotNet.Attributes;
using MixupBert.Kernels.Cpu;

namespace MixupBert.Bench;

/// <summary>
/// The GEMM at the shapes a bert-base training step runs (batch 32 × 128 tokens = 4096 rows):
/// "MxNxK:op" with op NT = forward (x·Wᵀ), NN = input gradient (dy·W), TN = weight gradient (dyᵀ·x).
/// </summary>
[SimpleJob(warmupCount: 2, iterationCount: 8)]
public class GemmBenchmarks : IWork
{
    [Params("4096x768x768:NT", "4096x3072x768:NT", "4096x768x3072:NT", "4096x768x768:NN", "768x768x4096:TN", "3072x768x4096:TN", "2048x384x384:NT", "2048x1536x384:NT")]
    public string Shape { get; set; } = "";

    private int m, n, k;
    private bool ta, tb;
    private float[] a = [], b = [], c = [];

    public static (double, string) Work(string method, string parameter)
    {
        var (m, n, k, _, _) = Parse(parameter);
        return (2.0 * m * n * k, "GFLOP/s");
    }

    private static (int, int, int, bool, bool) Parse(string s)
    {
        var parts = s.Split(':');
        var dims = parts[0].Split('x').Select(int.Parse).ToArray();
        return (dims[0], dims[1], dims[2], parts[1][0] == 'T', parts[1][1] == 'T');
    }

    [GlobalSetup]
    public void Setup()
    {
        (m, n, k, ta, tb) = Parse(Shape);
        var rng = new Random(1);
        a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble()).ToArray();
        b = Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble()).ToArray();
        c = new float[m * n];
    }

    [Benchmark]
    public void Sgemm() => Gemm.Multiply(ta, tb, m, n, k, a, ta ? m : k, b, tb ? k : n, c, n);
}
