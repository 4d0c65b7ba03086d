using BenchmarkDotNet.Attributes;
using MixupBert.Kernels.Cpu;

namespace MixupBert.Bench;

/// <summary>
/// The GEMM at every shape a BERT training step runs through the GEMM (the attention heads' small
/// products are timed by KernelBenchmarks), for bert-base (C 768, I 3072) and all-MiniLM-L6-v2
/// (C 384, I 1536) at batch 32 × 64 and 32 × 128 tokens (N = 2048 or 4096 rows). Shapes are
/// "MxNxK:op": NT = a forward projection x·Wᵀ (QKV, attention output, intermediate, output),
/// NN = its input gradient dy·W, TN = its weight gradient dyᵀ·x.
/// </summary>
[SimpleJob(warmupCount: 2, iterationCount: 8)]
public class GemmBenchmarks : IWork
{
    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "";

    public static IEnumerable<string> Shapes()
    {
        foreach (var (c, i) in new[] { (768, 3072), (384, 1536) })
            foreach (int rows in new[] { 32 * 128, 32 * 64 })
            {
                // the four linear layers of an encoder layer: (in, out)
                var layers = new[] { (c, 3 * c), (c, c), (c, i), (i, c) };
                foreach (var (fin, fout) in layers) yield return $"{rows}x{fout}x{fin}:NT";
                foreach (var (fin, fout) in layers) yield return $"{rows}x{fin}x{fout}:NN";
                foreach (var (fin, fout) in layers) yield return $"{fout}x{fin}x{rows}:TN";
            }
    }

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
        IsaPath.Print();
        (m, n, k, ta, tb) = Parse(Shape);
        var rng = new Random(1);
        a = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble()).ToArray();
        b = Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble()).ToArray();
        c = new float[m * n];
    }

    [Benchmark]
    public void Sgemm() => Gemm.Multiply(ta, tb, m, n, k, a, ta ? m : k, b, tb ? k : n, c, n);
}
