using BenchmarkDotNet.Attributes;
using MixupBert.Kernels.Cpu;

namespace MixupBert.Bench;

/// <summary>
/// Each CPU kernel of a training step at bert-base's shape, batch 32 × 128 (N = 4096 token rows,
/// C = 768, I = 3072, 12 heads), reported in GB/s (memory-bound ops: bytes read + written once) or
/// GFLOP/s (attention), to set against PeakBenchmarks' copy bandwidth and FMA peak.
/// </summary>
[SimpleJob(warmupCount: 2, iterationCount: 8)]
public class KernelBenchmarks : IWork
{
    private const int B = 32, T = 128, N = B * T, C = 768, I = 3072, H = 12, Vocab = 28996, Params = 22_713_856;
    private float[] x = [], y = [], dy = [], dx = [], g = [], beta = [], dg = [], db = [], mean = [], rstd = [];
    private float[] inter = [], interOut = [], qkv = [], probs = [], ctx = [], dqkv = [], mask = [];
    private float[] word = [], pos = [], type = [], dword = [], dpos = [], dtype = [];
    private int[] ids = [], types = [];
    private float[] p = [], grad = [], m = [], v = [];
    private float[] logits = [], ce = [], dce = [], losses = [];
    private int[] labels = [];

    public static (double, string) Work(string method, string parameter) => method switch
    {
        nameof(LayerNormForward) => (2.0 * N * C * 4, "GB/s"),
        nameof(LayerNormBackward) => (4.0 * N * C * 4, "GB/s"),
        nameof(GeluForward) => (2.0 * N * I * 4, "GB/s"),
        nameof(GeluBackward) => (3.0 * N * I * 4, "GB/s"),
        nameof(AttentionForward) => (4.0 * B * H * T * T * (C / H), "GFLOP/s"),
        nameof(AttentionBackward) => (8.0 * B * H * T * T * (C / H), "GFLOP/s"),
        nameof(EmbeddingForward) => (4.0 * N * C * 4, "GB/s"),
        nameof(EmbeddingBackward) => (7.0 * N * C * 4, "GB/s"),
        nameof(CrossEntropyForwardBackward) => (4.0 * B * 2 * 4, "GB/s"),
        nameof(AdamWStep) => (7.0 * Params * 4, "GB/s"),
        _ => (double.NaN, "?"),
    };

    [GlobalSetup]
    public void Setup()
    {
        IsaPath.Print();
        var rng = new Random(1);
        float[] R(int n) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() - 0.5); return a; }
        x = R(N * C); y = new float[N * C]; dy = R(N * C); dx = new float[N * C]; g = R(C); beta = R(C); dg = new float[C]; db = new float[C];
        mean = new float[N]; rstd = new float[N];
        LayerNorm.Forward(x, g, beta, y, mean, rstd, N, C, 1e-12f);
        inter = R(N * I); interOut = new float[N * I];
        qkv = R(N * 3 * C); probs = new float[B * H * T * T]; ctx = new float[N * C]; dqkv = new float[N * 3 * C];
        mask = Enumerable.Repeat(1f, N).ToArray();
        word = R(Vocab * C); pos = R(512 * C); type = R(2 * C); dword = new float[Vocab * C]; dpos = new float[512 * C]; dtype = new float[2 * C];
        ids = Enumerable.Range(0, N).Select(_ => rng.Next(Vocab)).ToArray(); types = new int[N];
        p = R(Params); grad = R(Params); m = new float[Params]; v = new float[Params];
        logits = R(B * 2); labels = Enumerable.Range(0, B).Select(i => i % 2).ToArray(); ce = new float[B * 2]; dce = new float[B * 2]; losses = new float[B];
        Attention.Forward(qkv, mask, probs, ctx, B, T, C, H, 0.1f, 7);
    }

    [Benchmark] public void LayerNormForward() => LayerNorm.Forward(x, g, beta, y, mean, rstd, N, C, 1e-12f);
    [Benchmark] public void LayerNormBackward() => LayerNorm.Backward(dy, x, mean, rstd, g, dx, dg, db, N, C);
    [Benchmark] public void GeluForward() => Activations.GeluForward(inter, interOut);
    [Benchmark] public void GeluBackward() => Activations.GeluBackward(inter, interOut, interOut);
    [Benchmark] public void AttentionForward() => Attention.Forward(qkv, mask, probs, ctx, B, T, C, H, 0.1f, 7);
    [Benchmark] public void AttentionBackward() => Attention.Backward(ctx, qkv, probs, dqkv, B, T, C, H, 0.1f, 7);
    [Benchmark] public void EmbeddingForward() => Embedding.Forward(ids, types, word, pos, type, y, B, T, C);
    [Benchmark] public void EmbeddingBackward() => Embedding.Backward(dy, ids, types, dword, dpos, dtype, B, T, C);

    [Benchmark]
    public double CrossEntropyForwardBackward()
    {
        return CrossEntropy.Forward(logits, labels, default, default, ce, losses, dce, B, 2);
    }

    private long step;
    [Benchmark] public void AdamWStep() => AdamW.Step(p, grad, m, v, new AdamW.Hyper(1e-5f, 0.9f, 0.999f, 1e-8f, 0.01f, ++step));
}
