using MixupBert.Kernels.Cuda;

namespace MixupBert.Model.Diagnostics;

/// <summary>
/// The CUDA backend checked against the CPU backend on one device: every op of kernels.cu on fresh
/// random inputs of awkward sizes (not multiples of 32, a batch of 1, sequences of length 1 and
/// 512) (<see cref="OpChecks"/>), one whole training step of a small BERT in each mixup mode (loss,
/// logits, every gradient tensor), ssmix's token saliency and three AdamW steps with clipping
/// (<see cref="EngineChecks"/>).
/// `mixup-bert selftest --backend cuda` runs it on a GPU; the tests run it on the CUDA shim, so CI
/// executes the same checks on the CPU. Tolerances: 1e-5 relative for elementwise ops, 1e-4 for
/// anything that reduces.
/// </summary>
public static class GpuSelfTest
{
    public const double ElementwiseRel = 1e-5, ElementwiseAbs = 1e-6;
    public const double ReductionRel = 1e-4, ReductionAbs = 1e-5;

    public sealed record Result(string Check, bool Passed, string Detail, double Seconds);

    /// <summary>One named check: runs the same work on both backends and compares.</summary>
    public sealed record Check(string Name, Action<Checker, SelfTestDevice> Run)
    {
        public override string ToString() => Name;
    }

    /// <summary>The checks, in the order they run.</summary>
    public static readonly IReadOnlyList<Check> Checks =
    [
        new("embedding 3x7x37", (c, d) => OpChecks.Embedding(c, d, 3, 7, 37, mixed: false)),
        new("embedding 1x1x33", (c, d) => OpChecks.Embedding(c, d, 1, 1, 33, mixed: false)),
        new("embedding 2x512x20", (c, d) => OpChecks.Embedding(c, d, 2, 512, 20, mixed: false)),
        new("embedding mixed 3x9x45", (c, d) => OpChecks.Embedding(c, d, 3, 9, 45, mixed: true)),
        new("layernorm 37x45", (c, d) => OpChecks.LayerNorm(c, d, 37, 45, p: 0f, residual: false)),
        new("layernorm 1x33 residual", (c, d) => OpChecks.LayerNorm(c, d, 1, 33, p: 0f, residual: true)),
        new("layernorm 130x70 residual dropout", (c, d) => OpChecks.LayerNorm(c, d, 130, 70, p: 0.2f, residual: true)),
        new("linear 37x45x53", (c, d) => OpChecks.Linear(c, d, 37, 45, 53)),
        new("linear 1x1x1", (c, d) => OpChecks.Linear(c, d, 1, 1, 1)),
        new("linear 130x33x97", (c, d) => OpChecks.Linear(c, d, 130, 33, 97)),
        new("elementwise 1", (c, d) => OpChecks.Elementwise(c, d, 1)),
        new("elementwise 1007", (c, d) => OpChecks.Elementwise(c, d, 1007)),
        new("attention 2x7 C24 H3", (c, d) => OpChecks.Attention(c, d, 2, 7, 24, 3, dropout: 0f)),
        new("attention 1x1 C16 H2", (c, d) => OpChecks.Attention(c, d, 1, 1, 16, 2, dropout: 0f)),
        new("attention 1x512 C16 H2 dropout", (c, d) => OpChecks.Attention(c, d, 1, 512, 16, 2, dropout: 0.1f)),
        new("attention 3x33 C40 H5 dropout", (c, d) => OpChecks.Attention(c, d, 3, 33, 40, 5, dropout: 0.2f)),
        new("cross-entropy mixed", OpChecks.MixedCrossEntropy),
        new("mixup 1x1", (c, d) => OpChecks.Mixup(c, d, 1, 1)),
        new("mixup 3x7", (c, d) => OpChecks.Mixup(c, d, 3, 7)),
        new("mixup 4x1", (c, d) => OpChecks.Mixup(c, d, 4, 1)),
        new("first token 3x7", (c, d) => OpChecks.FirstToken(c, d, 3, 7)),
        new("row norm 1x1", (c, d) => OpChecks.RowNorm(c, d, 1, 1)),
        new("row norm 37x300", (c, d) => OpChecks.RowNorm(c, d, 37, 300)),
        new("clip and adamw", OpChecks.ClipAndAdamW),
        new("adamw over tensors", OpChecks.AdamWOverTensors),
        new("train step baseline", (c, d) => EngineChecks.TrainStep(c, d, "baseline")),
        new("train step dropout", (c, d) => EngineChecks.TrainStep(c, d, "dropout")),
        new("train step mixup", (c, d) => EngineChecks.TrainStep(c, d, "mixup")),
        new("train step tmix", (c, d) => EngineChecks.TrainStep(c, d, "tmix")),
        new("train step tmix-last", (c, d) => EngineChecks.TrainStep(c, d, "tmix-last")),
        new("train step senmix", (c, d) => EngineChecks.TrainStep(c, d, "senmix")),
        new("train step ssmix", (c, d) => EngineChecks.TrainStep(c, d, "ssmix")),
        new("token saliency", EngineChecks.TokenSaliency),
        new("three adamw steps", EngineChecks.ThreeAdamWSteps),
    ];

    /// <summary>Runs one check on <paramref name="gpu"/> (everything it allocates is freed again).</summary>
    public static Result Run(Check check, IGpu gpu)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var c = new Checker();
        try
        {
            using var d = new SelfTestDevice(gpu);
            check.Run(c, d);
        }
        catch (Exception e)
        {
            c.Fail($"{e.GetType().Name}: {e.Message}");
        }
        return new Result(check.Name, c.Failure == null, c.Failure ?? c.Summary, sw.Elapsed.TotalSeconds);
    }
}

/// <summary>Collects the first disagreement and the worst agreement seen.</summary>
public sealed class Checker
{
    public string? Failure { get; private set; }
    private double worst;
    private string worstWhat = "";
    public string Summary => $"worst {worst:F3}× the tolerance ({worstWhat})";

    public void Fail(string message) => Failure ??= message;

    /// <summary>|expected − actual| ≤ abs + rel·|expected| elementwise; NaN on either side fails.</summary>
    public void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rel, double abs, string what)
    {
        if (expected.Length != actual.Length) { Fail($"{what}: {expected.Length} vs {actual.Length} elements"); return; }
        double w = 0; int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs((double)expected[i] - actual[i]);
            double ratio = float.IsNaN(actual[i]) || float.IsNaN(expected[i]) ? double.PositiveInfinity : err / (abs + rel * Math.Abs(expected[i]));
            if (ratio > w) { w = ratio; at = i; }
        }
        if (w > worst) { worst = w; worstWhat = what; }
        if (w > 1.0) Fail($"{what}: element {at}: CPU {expected[at]}, GPU {actual[at]} ({w:F2}× the tolerance)");
    }

    public void Exact(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what) => Close(expected, actual, 0, 0, what);

    public void True(bool condition, string what) { if (!condition) Fail(what); }
}

/// <summary>A device with helpers to move check data in and out; frees everything on dispose.</summary>
public sealed class SelfTestDevice : IDisposable
{
    private readonly List<nint> owned = new();
    public IGpu Gpu { get; }
    public GpuContext Context { get; }

    public SelfTestDevice(IGpu gpu) { Gpu = gpu; Context = new GpuContext(gpu); }

    public nint Alloc(long n) { nint p = Gpu.Alloc(Math.Max(n, 1) * 4); owned.Add(p); return p; }
    public nint Up(float[] host) { nint p = Alloc(host.Length); Gpu.CopyToDevice<float>(p, host); return p; }
    public nint Up(int[] host) { nint p = Alloc(host.Length); Gpu.CopyToDevice<int>(p, host); return p; }
    public nint Zeros(long n) { nint p = Alloc(n); Gpu.Fill32(p, 0, n); return p; }
    /// <summary>Memory a kernel must overwrite entirely: filled with NaN first.</summary>
    public nint Empty(long n) { nint p = Alloc(n); Gpu.Fill32(p, 0x7FC00000u, n); return p; }
    public float[] Down(nint p, long n) { var a = new float[n]; Gpu.CopyToHost<float>(a, p); return a; }

    public void Dispose()
    {
        Context.Dispose();
        foreach (var p in owned) Gpu.Free(p);
    }
}
