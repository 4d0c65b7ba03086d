using BenchmarkDotNet.Attributes;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;

namespace MixupBert.Bench;

/// <summary>
/// One training step (forward + backward, dropout on) and one inference forward of
/// all-MiniLM-L6-v2's shape at batch 32 × 64 tokens, with random weights (the speed does not
/// depend on their values). FLOPs as <see cref="BertFlops"/> counts them.
/// </summary>
[SimpleJob(warmupCount: 2, iterationCount: 8)]
public class StepBenchmarks : IWork
{
    [Params("minilm:32x64", "minilm:32x128")]
    public string Case { get; set; } = "";

    private CpuBertEngine model = null!;
    private Batch batch = null!;
    private long step;

    public static BertConfig ConfigOf(string name) => name switch
    {
        "minilm" => new BertConfig { VocabSize = 30522, HiddenSize = 384, NumHiddenLayers = 6, NumAttentionHeads = 12, IntermediateSize = 1536 },
        "bert-base" => new BertConfig { VocabSize = 28996 },
        _ => throw new ArgumentException(name),
    };

    private static (BertConfig, int, int) Parse(string s)
    {
        var parts = s.Split(':');
        var bt = parts[1].Split('x').Select(int.Parse).ToArray();
        return (ConfigOf(parts[0]), bt[0], bt[1]);
    }

    public static (double, string) Work(string method, string parameter)
    {
        var (c, b, t) = Parse(parameter);
        return (method == nameof(TrainStep) ? BertFlops.TrainingStep(c, b, t) : BertFlops.Forward(c, b, t), "GFLOP/s");
    }

    [GlobalSetup]
    public void Setup()
    {
        IsaPath.Print();
        var (config, b, t) = Parse(Case);
        model = new CpuBertEngine(config, BertCheckpoint.RandomInit(config, 1));
        var rng = new Random(2);
        var ids = Enumerable.Range(0, b * t).Select(_ => rng.Next(config.VocabSize)).ToArray();
        batch = new Batch(t, config.NumLabels, ids, Enumerable.Repeat(1f, b * t).ToArray(), Enumerable.Range(0, b).Select(i => i % 2).ToArray());
    }

    [Benchmark]
    public double TrainStep()
    {
        model.ZeroGradients();
        double loss = model.Forward(batch, training: true, seed: 1, step: ++step);
        model.Backward();
        return loss;
    }

    [Benchmark]
    public double Inference() => model.Forward(batch, training: false);
}
