using System.Numerics.Tensors;
using MixupBert.Kernels.Cuda;
using static MixupBert.Model.Diagnostics.GpuSelfTest;

namespace MixupBert.Model.Diagnostics;

/// <summary>
/// The CUDA backend checked against the CPU backend on one device: every op of kernels.cu on fresh
/// random inputs of awkward sizes (not multiples of 32, a batch of 1, sequences of length 1 and
/// 512) (<see cref="OpChecks"/>), one whole training step of a small BERT in each mixup mode (loss,
/// logits, every gradient tensor), ssmix's token saliency and three AdamW steps with clipping
/// (<see cref="EngineChecks"/>).
/// `mixup-bert selftest --backend cuda` runs it on a GPU; the tests run it on the CUDA shim, so CI
/// executes the same checks on the CPU. Float32 tolerances: 1e-5 relative for elementwise ops, 1e-4
/// for anything that reduces. The bf16 checks (the same ops and engine on bfloat16 activations, against
/// the float32 CPU backend on the same bf16-exact inputs) allow what bf16 rounding explains: with
/// u = 2⁻⁸, the largest relative error of one rounding to bfloat16, 2u for an op that rounds its
/// output once, 4u (plus 4u of the output's RMS, for sums that cancel) for an op that also rounds an
/// intermediate it stores, and 8u of the tensor's norm for a whole training step (see
/// <see cref="SelfTestDevice"/>).
/// </summary>
public static class GpuSelfTest
{
    public const double ElementwiseRel = 1e-5, ElementwiseAbs = 1e-6;
    public const double ReductionRel = 1e-4, ReductionAbs = 1e-5;
    public static readonly Tolerance Float32Elementwise = new(ElementwiseRel, ElementwiseAbs), Float32Reduction = new(ReductionRel, ReductionAbs);
    /// <summary>bfloat16's unit roundoff: round-to-nearest moves a value by at most 2⁻⁸ of itself.</summary>
    public const double Bf16U = 1.0 / 256;

    public sealed record Result(string Check, bool Passed, string Detail, double Seconds);

    /// <summary>One named check: runs the same work on both backends and compares, with activations
    /// of type <paramref name="Activations"/> on the GPU side.</summary>
    public sealed record Check(string Name, Action<Checker, SelfTestDevice> Run, Kernels.Cuda.DType Activations = Kernels.Cuda.DType.F32,
        TensorCoreKernels Attention = TensorCoreKernels.MmaSync)
    {
        public override string ToString() => Name;
    }

    /// <summary>The checks, in the order they run: float32, then the same again on bf16 activations, then
    /// those that run the fused attention again on its second tensor-core kernel set (WMMA).</summary>
    public static readonly IReadOnlyList<Check> Checks = Float32Checks()
        .Concat(Float32Checks().Select(c => c with { Name = "bf16 " + c.Name, Activations = Kernels.Cuda.DType.BF16 }))
        .Concat(Float32Checks().Where(RunsFusedAttention).Select(c => c with
        {
            Name = "bf16 wmma " + c.Name, Activations = Kernels.Cuda.DType.BF16, Attention = TensorCoreKernels.Wmma,
        })).ToList();

    /// <summary>Whether a check runs the bf16 tensor-core attention: the attention checks whose heads the
    /// tensor-core kernels take (named "… C{channels} H{heads} …"; smaller heads run the FMA kernels on both
    /// sets), and the whole-model checks.</summary>
    private static bool RunsFusedAttention(Check c)
    {
        if (c.Name.StartsWith("train step ", StringComparison.Ordinal) || c.Name == "three adamw steps") return true;
        var shape = System.Text.RegularExpressions.Regex.Match(c.Name, @"^attention \d+x\d+ C(\d+) H(\d+)");
        return shape.Success && Kernels.Cuda.Attention.TensorCores(int.Parse(shape.Groups[1].Value), int.Parse(shape.Groups[2].Value),
            Kernels.Cuda.DType.BF16);
    }

    private static IEnumerable<Check> Float32Checks() =>
    [
        new("embedding 3x7x37", (c, d) => OpChecks.Embedding(c, d, 3, 7, 37, mixed: false)),
        new("embedding 1x1x33", (c, d) => OpChecks.Embedding(c, d, 1, 1, 33, mixed: false)),
        new("embedding 2x512x20", (c, d) => OpChecks.Embedding(c, d, 2, 512, 20, mixed: false)),
        new("embedding mixed 3x9x45", (c, d) => OpChecks.Embedding(c, d, 3, 9, 45, mixed: true)),
        new("embedding mixed 3x9x64", (c, d) => OpChecks.Embedding(c, d, 3, 9, 64, mixed: true)),
        new("embedding mixed 8x64x48 long buckets", (c, d) => OpChecks.Embedding(c, d, 8, 64, 48, mixed: true)),
        new("layernorm 37x45", (c, d) => OpChecks.LayerNorm(c, d, 37, 45, p: 0f, residual: false)),
        new("layernorm 1x33 residual", (c, d) => OpChecks.LayerNorm(c, d, 1, 33, p: 0f, residual: true)),
        new("layernorm 130x70 residual dropout", (c, d) => OpChecks.LayerNorm(c, d, 130, 70, p: 0.2f, residual: true)),
        new("layernorm 20x300 residual", (c, d) => OpChecks.LayerNorm(c, d, 20, 300, p: 0f, residual: true)),
        new("layernorm 17x1100", (c, d) => OpChecks.LayerNorm(c, d, 17, 1100, p: 0f, residual: false)),
        new("layernorm 40x768 residual dropout", (c, d) => OpChecks.LayerNorm(c, d, 40, 768, p: 0.1f, residual: true)),
        new("layernorm 33x64", (c, d) => OpChecks.LayerNorm(c, d, 33, 64, p: 0f, residual: false)),
        new("layernorm 70x384 residual dropout", (c, d) => OpChecks.LayerNorm(c, d, 70, 384, p: 0.1f, residual: true)),
        new("layernorm 21x1024 residual", (c, d) => OpChecks.LayerNorm(c, d, 21, 1024, p: 0f, residual: true)),
        new("linear 37x45x53", (c, d) => OpChecks.Linear(c, d, 37, 45, 53)),
        new("linear 1x1x1", (c, d) => OpChecks.Linear(c, d, 1, 1, 1)),
        new("linear 130x33x97", (c, d) => OpChecks.Linear(c, d, 130, 33, 97)),
        new("linear 70x24x1040", (c, d) => OpChecks.Linear(c, d, 70, 24, 1040)),
        new("elementwise 1", (c, d) => OpChecks.Elementwise(c, d, 1)),
        new("elementwise 1007", (c, d) => OpChecks.Elementwise(c, d, 1007)),
        new("elementwise 1007 unaligned", (c, d) => OpChecks.Elementwise(c, d, 1007, unaligned: true)),
        new("attention 2x7 C24 H3", (c, d) => OpChecks.Attention(c, d, 2, 7, 24, 3, dropout: 0f)),
        new("attention 1x1 C16 H2 no bias", (c, d) => OpChecks.Attention(c, d, 1, 1, 16, 2, dropout: 0f, bias: false)),
        new("attention 1x512 C16 H2 dropout", (c, d) => OpChecks.Attention(c, d, 1, 512, 16, 2, dropout: 0.1f)),
        new("attention 3x33 C40 H5 dropout", (c, d) => OpChecks.Attention(c, d, 3, 33, 40, 5, dropout: 0.2f)),
        new("attention 2x40 C128 H2 dropout", (c, d) => OpChecks.Attention(c, d, 2, 40, 128, 2, dropout: 0.1f)),
        new("attention 2x70 C64 H2 dropout", (c, d) => OpChecks.Attention(c, d, 2, 70, 64, 2, dropout: 0.1f)),
        new("attention 2x33 C96 H2 no bias", (c, d) => OpChecks.Attention(c, d, 2, 33, 96, 2, dropout: 0f, bias: false)),
        new("attention 3x17 C32 H2 dropout", (c, d) => OpChecks.Attention(c, d, 3, 17, 32, 2, dropout: 0.2f)),
        new("attention 1x512 C64 H1 dropout", (c, d) => OpChecks.Attention(c, d, 1, 512, 64, 1, dropout: 0.1f)),
        new("attention 2x100 C64 H2 dropout", (c, d) => OpChecks.Attention(c, d, 2, 100, 64, 2, dropout: 0.1f)),
        new("attention 3x130 C64 H2 dropout masked rows and tiles", (c, d) => OpChecks.Attention(c, d, 3, 130, 64, 2, dropout: 0.1f, gaps: true)),
        new("attention unfused 2x9 C130 H2 dropout", (c, d) => OpChecks.Attention(c, d, 2, 9, 130, 2, dropout: 0.1f)),
        new("attention unfused 1x1 C130 H2 no bias", (c, d) => OpChecks.Attention(c, d, 1, 1, 130, 2, dropout: 0f, bias: false)),
        new("cross-entropy mixed", OpChecks.MixedCrossEntropy),
        new("mixup 1x1", (c, d) => OpChecks.Mixup(c, d, 1, 1)),
        new("mixup 3x7", (c, d) => OpChecks.Mixup(c, d, 3, 7)),
        new("mixup 4x1", (c, d) => OpChecks.Mixup(c, d, 4, 1)),
        new("first token 3x7x19", (c, d) => OpChecks.FirstToken(c, d, 3, 7, 19)),
        new("first token 3x7x24", (c, d) => OpChecks.FirstToken(c, d, 3, 7, 24)),
        new("row norm 1x1", (c, d) => OpChecks.RowNorm(c, d, 1, 1)),
        new("row norm 37x300", (c, d) => OpChecks.RowNorm(c, d, 37, 300)),
        new("global norm 41 partials", (c, d) => OpChecks.GlobalNorm(c, d, 163_843)),
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

    /// <summary>The checks a device can run: the bf16 ones need bf16 tensor cores (compute capability 8.0+).</summary>
    public static IEnumerable<Check> ChecksFor(bool bf16) => Checks.Where(c => bf16 || c.Activations == Kernels.Cuda.DType.F32);

    /// <summary>The checks whose name contains one of <paramref name="only"/> (ignoring case), every check when it
    /// is empty: a slow tool such as compute-sanitizer's racecheck can take the kernels that use shared memory alone.</summary>
    public static IEnumerable<Check> Named(IEnumerable<Check> checks, IReadOnlyCollection<string> only)
        => checks.Where(c => only.Count == 0 || only.Any(o => c.Name.Contains(o, StringComparison.OrdinalIgnoreCase)));

    /// <summary>Runs one check on <paramref name="gpu"/> (everything it allocates is freed again).</summary>
    public static Result Run(Check check, IGpu gpu)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var c = new Checker();
        try
        {
            using var d = new SelfTestDevice(gpu, check.Activations, check.Attention);
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

    /// <summary>|expected − actual| ≤ t.Abs + t.RmsAbs·rms(expected) + t.Rel·|expected| elementwise.</summary>
    public void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, Tolerance t, string what)
    {
        double rms = t.RmsAbs > 0 && expected.Length > 0 ? Math.Sqrt(TensorPrimitives.SumOfSquares(expected) / expected.Length) : 0;
        Close(expected, actual, t.Rel, t.Abs + t.RmsAbs * rms, what);
    }

    /// <summary>‖expected − actual‖₂ ≤ rel·‖expected‖₂ + abs (a whole tensor's error, for results that
    /// went through many bf16 roundings); NaN on either side fails.</summary>
    public void CloseNorm(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rel, double abs, string what)
    {
        if (expected.Length != actual.Length) { Fail($"{what}: {expected.Length} vs {actual.Length} elements"); return; }
        double err = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++) { double e = (double)expected[i] - actual[i]; err += e * e; norm += (double)expected[i] * expected[i]; }
        err = Math.Sqrt(err); norm = Math.Sqrt(norm);
        double ratio = double.IsNaN(err) ? double.PositiveInfinity : err / (rel * norm + abs);
        if (ratio > worst) { worst = ratio; worstWhat = what; }
        if (!(ratio <= 1.0)) Fail($"{what}: ‖GPU − CPU‖ = {err:G3}, ‖CPU‖ = {norm:G3} ({ratio:F2}× the tolerance)");
    }

    /// <summary>|expected − actual| ≤ abs + rel·|expected| elementwise; NaN on either side fails.</summary>
    public void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rel, double abs, string what)
    {
        if (expected.Length != actual.Length) { Fail($"{what}: {expected.Length} vs {actual.Length} elements"); return; }
        double w = 0; int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs((double)expected[i] - actual[i]);
            // equal values (zeros under an exact comparison, infinities) agree; an infinity against anything
            // else disagrees (its ratio would be NaN, which no comparison catches)
            double ratio = float.IsNaN(actual[i]) || float.IsNaN(expected[i]) ? double.PositiveInfinity
                : expected[i] == actual[i] ? 0
                : float.IsInfinity(expected[i]) || float.IsInfinity(actual[i]) ? double.PositiveInfinity
                : err / (abs + rel * Math.Abs(expected[i]));
            if (ratio > w) { w = ratio; at = i; }
        }
        if (w > worst) { worst = w; worstWhat = what; }
        if (w > 1.0) Fail($"{what}: element {at}: CPU {expected[at]}, GPU {actual[at]} ({w:F2}× the tolerance)");
    }

    public void Exact(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what) => Close(expected, actual, 0, 0, what);

    public void True(bool condition, string what) { if (!condition) Fail(what); }
}

/// <summary>A tolerance: |e − a| ≤ Abs + RmsAbs·rms(expected) + Rel·|e|.</summary>
public readonly record struct Tolerance(double Rel, double Abs, double RmsAbs = 0);

/// <summary>A device with helpers to move check data in and out; frees everything on dispose. Up, Down,
/// Empty and Zeros move float32 buffers (parameters, gradients, statistics); UpX, DownX and EmptyX
/// move activations, in <see cref="Activations"/>' type. Under bf16 every random input is rounded to
/// bf16 first (<see cref="Exact"/>), so that both backends start from the same values.</summary>
public sealed class SelfTestDevice : IDisposable
{
    private readonly List<nint> owned = new();
    public IGpu Gpu { get; }
    public GpuContext Context { get; }
    public DType Activations { get; }
    private bool Bf16 => Activations == DType.BF16;

    public SelfTestDevice(IGpu gpu, DType activations = DType.F32, TensorCoreKernels attention = TensorCoreKernels.MmaSync)
    {
        Gpu = gpu;
        Activations = activations;
        Context = new GpuContext(gpu, activations) { AttentionTensorCores = attention };
    }

    /// <summary>An op that rounds its output once (bf16: 2u).</summary>
    public Tolerance Elementwise => Bf16 ? new(2 * Bf16U, ElementwiseAbs) : new(ElementwiseRel, ElementwiseAbs);
    /// <summary>An op that reduces, or stores an intermediate it reads again (bf16: 4u, and 4u of the RMS).</summary>
    public Tolerance Reduction => Bf16 ? new(4 * Bf16U, ReductionAbs, 4 * Bf16U) : new(ReductionRel, ReductionAbs);

    /// <summary>a, rounded in place to the activations' type (unchanged under float32); returns a.</summary>
    public float[] Exact(float[] a)
    {
        if (Bf16) for (int i = 0; i < a.Length; i++) a[i] = BFloat16.Round(a[i]);
        return a;
    }

    public nint AllocX(long n) { nint p = Gpu.Alloc(Math.Max(n, 1) * Activations.Size()); owned.Add(p); return p; }

    /// <summary>Activations up: the values must already be exact in that type (see <see cref="Exact"/>).</summary>
    public nint UpX(float[] host)
    {
        if (!Bf16) return Up(host);
        var bits = new ushort[host.Length];
        BFloat16.FromFloat(host, bits);
        for (int i = 0; i < host.Length; i++)
            if (BFloat16.ToFloat(bits[i]) != host[i] && !float.IsNaN(host[i])) throw new ArgumentException($"UpX: element {i} ({host[i]}) is not exact in bf16");
        nint p = AllocX(host.Length);
        Gpu.CopyToDevice<ushort>(p, bits);
        return p;
    }

    /// <summary>Activations a kernel must overwrite entirely: NaN first.</summary>
    public nint EmptyX(long n)
    {
        if (!Bf16) return Empty(n);
        nint p = AllocX(n + 1);
        Gpu.Fill32(p, 0x7FC07FC0u, (n + 1) / 2);
        return p;
    }

    public float[] DownX(nint p, long n)
    {
        if (!Bf16) return Down(p, n);
        var bits = new ushort[n]; var a = new float[n];
        Gpu.CopyToHost<ushort>(bits, p);
        BFloat16.ToFloat(bits, a);
        return a;
    }

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
