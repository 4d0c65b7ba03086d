using MixupBert.Kernels.Cuda;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;
using MixupBert.Tests.CudaShim;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Cuda;

/// <summary>
/// IBertEngine.StartTrainStep / FinishTrainStep: a pipelined sequence (step n + 1 started before step n
/// is finished) gives bit for bit the losses, norms, parameters and Adam moments of the same steps run
/// one at a time. On the shim a step's uploads run only when the host waits, after the next step has
/// filled its own staging: a staging buffer shared by two steps in flight shows up here as other numbers.
/// </summary>
public class PipelinedStepTests
{
    private static readonly BertConfig Config = TinyConfig(labels: 3, dropout: 0.1f);

    /// <summary>The shapes change every step; step 5 is the widest so far, so buffers grow mid-run.</summary>
    private static readonly (int Batch, int SeqLen)[] Shapes = [(6, 12), (4, 9), (5, 12), (3, 7), (8, 14), (2, 5), (6, 10), (7, 13)];

    private static Batch StepBatch(int step) => RandomBatch(Config, Shapes[step - 1].Batch, Shapes[step - 1].SeqLen, 100 + step);

    /// <summary>Mixing that uploads partners and λ, in turn at each site; every third step unmixed.</summary>
    private static Mix? StepMix(int step)
    {
        int b = Shapes[step - 1].Batch;
        if (step % 3 == 0) return null;
        var partner = Enumerable.Range(0, b).Select(i => (i + step) % b).ToArray();
        var lambda = Enumerable.Range(0, b).Select(i => 0.1f + 0.8f * ((i * 7 + step) % 10) / 10f).ToArray();
        return (step % 4) switch
        {
            0 => new Mix(MixSite.Hidden, partner, lambda, Layer: 1),
            1 => new Mix(MixSite.WordEmbeddings, partner, lambda),
            _ => new Mix(MixSite.Pooled, partner, lambda),
        };
    }

    private static float LearningRate(int step) => 1e-2f / step;
    private static readonly OptimizerSettings Settings = new(MaxGradNorm: 1f);

    private sealed record Outcome(StepResult[] Results, float[] Parameters, float[] M, float[] V);

    private static Outcome End(IBertEngine engine, StepResult[] results)
    {
        int n = engine.Layout.Size;
        var p = new float[n]; var m = new float[n]; var v = new float[n];
        engine.CopyParameters(p);
        engine.CopyOptimizerState(m, v);
        return new Outcome(results, p, m, v);
    }

    private static Outcome OneAtATime(IBertEngine engine)
    {
        var results = new StepResult[Shapes.Length];
        for (int s = 1; s <= Shapes.Length; s++)
            results[s - 1] = engine.TrainStep(StepBatch(s), StepMix(s), LearningRate(s), s, 9, Settings);
        return End(engine, results);
    }

    /// <summary>Start(1), Start(2), Finish(1), Start(3), Finish(2), …, Finish(last); each mix's arrays
    /// are scribbled over as soon as its step has started (the engine must have copied them).</summary>
    private static Outcome Pipelined(IBertEngine engine)
    {
        var results = new StepResult[Shapes.Length];
        int finished = 0;
        for (int s = 1; s <= Shapes.Length; s++)
        {
            var mix = StepMix(s);
            engine.StartTrainStep(StepBatch(s), mix, LearningRate(s), s, 9, Settings);
            if (mix != null) { Array.Reverse(mix.Partner); Array.Fill(mix.Lambda, 0.5f); }
            if (s >= 2) results[finished++] = engine.FinishTrainStep(); // the step before this one
        }
        results[finished++] = engine.FinishTrainStep();
        Assert.Equal(Shapes.Length, finished);
        return End(engine, results);
    }

    private static void AssertIdentical(Outcome expected, Outcome actual)
    {
        for (int i = 0; i < expected.Results.Length; i++)
        {
            Assert.True(double.IsFinite(expected.Results[i].Loss), $"step {i + 1}: loss {expected.Results[i].Loss}");
            Assert.True(expected.Results[i] == actual.Results[i], $"step {i + 1}: one at a time {expected.Results[i]}, pipelined {actual.Results[i]}");
        }
        Assert.Equal(expected.Parameters, actual.Parameters);
        Assert.Equal(expected.M, actual.M);
        Assert.Equal(expected.V, actual.V);
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    public void PipelinedStepsOnTheShimAreBitIdenticalToStepsOneAtATime(DType activations)
    {
        var init = BertCheckpoint.RandomInit(Config, 7);
        using var shimA = new ShimGpu();
        using var shimB = new ShimGpu();
        using var one = new GpuBertEngine(shimA, Config, (float[])init.Clone(), activations);
        using var piped = new GpuBertEngine(shimB, Config, (float[])init.Clone(), activations);
        AssertIdentical(OneAtATime(one), Pipelined(piped));
    }

    [Fact]
    public void PipelinedStepsOnTheCpuAreBitIdenticalToStepsOneAtATime()
    {
        var init = BertCheckpoint.RandomInit(Config, 7);
        using var one = new CpuBertEngine(Config, (float[])init.Clone());
        using var piped = new CpuBertEngine(Config, (float[])init.Clone());
        AssertIdentical(OneAtATime(one), Pipelined(piped));
    }

    public static TheoryData<string> Engines => new() { "cpu", "shim" };

    [Theory]
    [MemberData(nameof(Engines))]
    public void TheContractIsEnforced(string backend)
    {
        var init = BertCheckpoint.RandomInit(Config, 7);
        using var shim = new ShimGpu();
        using IBertEngine engine = backend == "cpu" ? new CpuBertEngine(Config, init) : new GpuBertEngine(shim, Config, init);
        Assert.Throws<InvalidOperationException>(() => engine.FinishTrainStep()); // none in flight
        engine.StartTrainStep(StepBatch(1), null, 1e-3f, 1, 9, Settings);
        var probabilities = new float[Shapes[0].Batch * Config.NumLabels];
        Assert.Contains("in flight", Assert.Throws<InvalidOperationException>(() => engine.Evaluate(StepBatch(1), probabilities)).Message);
        Assert.Throws<InvalidOperationException>(() => engine.CopyParameters(new float[engine.Layout.Size]));
        Assert.Throws<InvalidOperationException>(() => engine.TokenSaliency(StepBatch(1), 9, 1, new float[72]));
        Assert.Throws<InvalidOperationException>(() => engine.TrainStep(StepBatch(2), null, 1e-3f, 2, 9, Settings));
        engine.StartTrainStep(StepBatch(2), null, 1e-3f, 2, 9, Settings);
        Assert.Throws<InvalidOperationException>(() => engine.StartTrainStep(StepBatch(3), null, 1e-3f, 3, 9, Settings)); // a third
        Assert.True(double.IsFinite(engine.FinishTrainStep().Loss));
        Assert.True(double.IsFinite(engine.FinishTrainStep().Loss));
        Assert.True(double.IsFinite(engine.Evaluate(StepBatch(1), probabilities))); // nothing in flight again
        engine.StartTrainStep(StepBatch(3), null, 1e-3f, 3, 9, Settings); // left in flight: Dispose waits for it
    }
}
