using System.Text.Json.Nodes;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;
using MixupBert.Model.Training;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Training;

/// <summary>The training loop on a tiny model and synthetic tokenized data: resume and divergence.</summary>
[Collection("Serial")] // bit-identical comparisons need the same worker count throughout
public class TrainerTests
{
    private sealed class Observer(Action<long>? onStep = null) : ITrainingObserver
    {
        public readonly List<string> Messages = new();
        public void Step(int epoch, long step, long totalSteps, double loss, float learningRate, double samplesPerSecond) => onStep?.Invoke(step);
        public void Evaluated(string split, int epoch, ClassificationMetrics metrics, bool best) { }
        public void Message(string text) => Messages.Add(text);
    }

    private static (TextClassificationData Data, EncodedData Encoded) Synthetic(int seed)
    {
        var rng = new Random(seed);
        LabeledSplit Split(string name, int n) => new(name, name, Enumerable.Range(0, n).Select(i => $"t{i}").ToArray(), Enumerable.Range(0, n).Select(i => i % 2).ToArray());
        EncodedSplit Ids(LabeledSplit s) => new(s.Labels.Select(l => new[] { 1 }.Concat(Enumerable.Range(0, 2 + rng.Next(8)).Select(_ => 2 + l * 20 + rng.Next(20))).ToArray()).ToArray());
        var data = new TextClassificationData(Split("train", 32), Split("validation", 12), Split("test", 10), new[] { "a", "b" }, false);
        return (data, new EncodedData(Ids(data.Train), Ids(data.Validation), Ids(data.Test!), 0));
    }

    private static readonly TrainOptions Options = new() { Mode = MixMode.Mixup, Epochs = 3, BatchSize = 8, LearningRate = 1e-3f, Seed = 1, LoggingSteps = 2, WarmupRatio = 0.1f };

    private static TrainOutcome Train(string folder, bool resume, Func<IBertEngine, IBertEngine>? wrap = null, Action<long>? onStep = null, CancellationToken cancel = default,
        MixMode mode = MixMode.Mixup)
    {
        var config = TinyConfig(labels: 2, dropout: 0.1f);
        var (data, encoded) = Synthetic(3);
        using var engine = new CpuBertEngine(config, BertCheckpoint.RandomInit(config, 4));
        var e = wrap?.Invoke(engine) ?? engine;
        return new Trainer(e, data, data.Train, encoded, Options with { Mode = mode }, new RunFolder(folder), TempDir(), new Observer(onStep)).Run(resume, cancel);
    }

    /// <summary>Ctrl-C right after step <paramref name="atStep"/> has been started, where FaultInjection.AfterStep
    /// delivers the test hook's SIGINT: the run stops after exactly that step.</summary>
    private sealed class CancelAfterStart(IBertEngine inner, long atStep, CancellationTokenSource cancel) : ForwardingEngine(inner)
    {
        public override void StartTrainStep(Batch batch, Mix? mix, float lr, long step, ulong seed, in OptimizerSettings o)
        {
            base.StartTrainStep(batch, mix, lr, step, seed, o);
            if (step == atStep) cancel.Cancel();
        }
    }

    /// <summary>An engine that passes every call to <paramref name="inner"/>; the test engines change one or two.</summary>
    private abstract class ForwardingEngine(IBertEngine inner) : IBertEngine
    {
        public string Backend => inner.Backend;
        public Model.Weights.BertConfig Config => inner.Config;
        public BertLayout Layout => inner.Layout;
        public virtual void StartTrainStep(Batch batch, Mix? mix, float lr, long step, ulong seed, in OptimizerSettings o)
            => inner.StartTrainStep(batch, mix, lr, step, seed, o);
        public virtual StepResult FinishTrainStep() => inner.FinishTrainStep();
        public void Reserve(int batchSize, int seqLen) => inner.Reserve(batchSize, seqLen);
        public virtual double Evaluate(Batch batch, Span<float> p) => inner.Evaluate(batch, p);
        public double ForwardBackward(Batch batch, Mix? mix, ulong seed, long step) => inner.ForwardBackward(batch, mix, seed, step);
        public void TokenSaliency(Batch batch, ulong seed, long step, Span<float> saliency) => inner.TokenSaliency(batch, seed, step, saliency);
        public void CopyLogits(Span<float> d) => inner.CopyLogits(d);
        public void CopyGradients(Span<float> d) => inner.CopyGradients(d);
        public void CopyParameters(Span<float> d) => inner.CopyParameters(d);
        public void CopyOptimizerState(Span<float> m, Span<float> v) => inner.CopyOptimizerState(m, v);
        public void LoadState(ReadOnlySpan<float> p, ReadOnlySpan<float> m, ReadOnlySpan<float> v) => inner.LoadState(p, m, v);
        public void Dispose() { }
    }

    [Theory]
    [InlineData(7, 1, 3, MixMode.Mixup, false)] // in the middle of epoch 2 of 3 (4 steps an epoch)
    [InlineData(2, 0, 2, MixMode.Mixup, false)] // in epoch 1, before any epoch completed
    [InlineData(8, 2, 0, MixMode.Mixup, false)] // at the end of epoch 2: nothing more to save than the epoch's checkpoint
    [InlineData(7, 1, 3, MixMode.SsMix, false)] // ssmix: its saliency pass and spans are functions of the saved state, seed and step
    // Ctrl-C while step 6's result is being consumed (the observer's call): step 7 is already started
    // (the loop reads each step's loss one step late), so the run stops after step 7
    [InlineData(7, 1, 3, MixMode.Mixup, true)]
    public void AResumedRunEndsExactlyAsAnUninterruptedOne(int stopAfterStep, int epochsCompleted, int batchesInEpoch, MixMode mode, bool viaObserver)
    {
        string a = TempDir(), b = TempDir();
        var full = Train(a, resume: false, mode: mode);
        Assert.True(full.Completed);

        using var cancel = new CancellationTokenSource();
        var stopped = viaObserver
            ? Train(b, resume: false, onStep: s => { if (s == stopAfterStep - 1) cancel.Cancel(); }, cancel: cancel.Token, mode: mode)
            : Train(b, resume: false, wrap: e => new CancelAfterStart(e, stopAfterStep, cancel), cancel: cancel.Token, mode: mode);
        Assert.False(stopped.Completed);
        Assert.Equal("interrupted", stopped.StopReason);
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(b, "state", "trainer_state.json")))!;
        Assert.Equal(epochsCompleted, state["epochs_completed"]!.GetValue<int>());
        Assert.Equal(batchesInEpoch, state["batches_in_epoch"]!.GetValue<int>());
        Assert.Equal(stopAfterStep, state["global_step"]!.GetValue<long>()); // saved at the step where it stopped

        var resumed = Train(b, resume: true, mode: mode);
        Assert.True(resumed.Completed);
        Assert.Equal(full.BestEpoch, resumed.BestEpoch);
        Assert.Equal(full.BestValidation, resumed.BestValidation);
        Assert.Equal(full.Test, resumed.Test);
        Assert.Equal(File.ReadAllBytes(Path.Combine(a, "model.safetensors")), File.ReadAllBytes(Path.Combine(b, "model.safetensors")));
        Assert.Equal(File.ReadAllText(Path.Combine(a, "metrics.jsonl")), File.ReadAllText(Path.Combine(b, "metrics.jsonl")));
    }

    /// <summary>An engine that keeps the token types of every batch it trains on and evaluates.</summary>
    private sealed class TypeRecorder(IBertEngine inner) : ForwardingEngine(inner)
    {
        public readonly List<(Batch Batch, bool Training)> Batches = [];
        public override void StartTrainStep(Batch batch, Mix? mix, float lr, long step, ulong seed, in OptimizerSettings o)
        {
            Batches.Add((batch, true));
            base.StartTrainStep(batch, mix, lr, step, seed, o);
        }
        public override double Evaluate(Batch batch, Span<float> p) { Batches.Add((batch, false)); return base.Evaluate(batch, p); }
    }

    [Theory]
    [InlineData(MixMode.Mixup)]
    [InlineData(MixMode.SsMix)]
    public void SentencePairsReachTheEngineWithTheirTokenTypesInTrainingAndEvaluation(MixMode mode)
    {
        // each synthetic example as a pair: its second segment from position 2 on (token type 1 up to its end)
        var (data, encoded) = Synthetic(3);
        EncodedSplit Pairs(EncodedSplit s) => s with { SecondStarts = s.Ids.Select(r => Math.Min(2, r.Length)).ToArray() };
        encoded = encoded with { Train = Pairs(encoded.Train), Validation = Pairs(encoded.Validation), Test = Pairs(encoded.Test!) };
        var config = TinyConfig(labels: 2, dropout: 0.1f);
        using var engine = new CpuBertEngine(config, BertCheckpoint.RandomInit(config, 4));
        var recorder = new TypeRecorder(engine);
        var outcome = new Trainer(recorder, data, data.Train, encoded, Options with { Mode = mode, Epochs = 1 }, new RunFolder(TempDir()), TempDir(), new Observer(null)).Run(false, default);
        Assert.True(outcome.Completed);
        foreach (bool training in new[] { true, false })
        {
            var batches = recorder.Batches.Where(b => b.Training == training).Select(b => b.Batch).ToList();
            Assert.NotEmpty(batches);
            foreach (var b in batches)
                for (int i = 0; i < b.BatchSize * b.SeqLen; i++)
                {
                    int t = i % b.SeqLen;
                    int expected = b.AttentionMask[i] > 0 && t >= 2 ? 1 : 0;   // every row is longer than 2 (Synthetic: 3 or more tokens)
                    Assert.True(expected == b.TokenTypeIds[i], $"{(training ? "training" : "evaluation")} batch, row {i / b.SeqLen}, position {t}: type {b.TokenTypeIds[i]}");
                }
        }
    }

    /// <summary>An engine whose loss turns NaN at one step, as a diverging run's does.</summary>
    private sealed class DivergingEngine(IBertEngine inner, long atStep) : ForwardingEngine(inner)
    {
        private readonly Queue<long> steps = new(); // of the steps in flight, oldest first
        public override void StartTrainStep(Batch batch, Mix? mix, float lr, long step, ulong seed, in OptimizerSettings o)
        {
            base.StartTrainStep(batch, mix, lr, step, seed, o);
            steps.Enqueue(step);
        }
        public override StepResult FinishTrainStep()
        {
            var r = base.FinishTrainStep();
            return steps.Dequeue() >= atStep ? r with { Loss = double.NaN } : r;
        }
    }

    [Fact]
    public void ANaNLossStopsTheRunAndKeepsTheLastGoodCheckpoint()
    {
        string dir = TempDir();
        var summary = Train(dir, resume: false, wrap: e => new DivergingEngine(e, atStep: 6));
        Assert.False(summary.Completed);
        Assert.Contains("the loss became NaN at step 6", summary.StopReason);
        Assert.Contains("The last good checkpoint (step 4) is kept", summary.StopReason);
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "state", "trainer_state.json")))!;
        Assert.Equal(1, state["epochs_completed"]!.GetValue<int>()); // epoch 1's checkpoint, untouched by the NaN in epoch 2
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
        Assert.False(File.Exists(Path.Combine(dir, "summary.json")));
        var (_, p, _) = BertCheckpoint.Load(Path.Combine(dir, "state", Path.GetDirectoryName(state["parameters"]!.GetValue<string>())!));
        Assert.All(p, v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public void ANaNLossBeforeAnyCheckpointSaysSoAndLeavesNoState()
    {
        string dir = TempDir();
        var summary = Train(dir, resume: false, wrap: e => new DivergingEngine(e, atStep: 2));
        Assert.False(summary.Completed);
        Assert.Contains("the loss became NaN at step 2", summary.StopReason);
        Assert.DoesNotContain("checkpoint (step", summary.StopReason);
        Assert.Contains("No checkpoint had been saved yet", summary.StopReason);
        Assert.False(File.Exists(Path.Combine(dir, "state", "trainer_state.json")));
    }

    [Fact]
    public void LearningRateFollowsHfLinearScheduleWithWarmup()
    {
        var config = TinyConfig(labels: 2);
        var (data, encoded) = Synthetic(1);
        using var engine = new CpuBertEngine(config, BertCheckpoint.RandomInit(config, 1));
        var t = new Trainer(engine, data, data.Train, encoded, Options with { LearningRate = 1f }, new RunFolder(TempDir()), TempDir(), new Observer());
        // 10 steps, 2 of warm-up: 0, .5, then (10 − s) / 8
        Assert.Equal(0f, t.LearningRate(0, 2, 10));
        Assert.Equal(0.5f, t.LearningRate(1, 2, 10));
        Assert.Equal(1f, t.LearningRate(2, 2, 10));
        Assert.Equal(0.5f, t.LearningRate(6, 2, 10));
        Assert.Equal(0.125f, t.LearningRate(9, 2, 10));
        Assert.Equal(1f, t.LearningRate(0, 0, 10)); // no warm-up: full rate at the first step
    }

    [Theory]
    // expected: Python's math.ceil(total * ratio), as TrainingArguments.get_warmup_steps computes it
    [InlineData(100, 0.07f, 8)]
    [InlineData(100, 0.15f, 15)]
    [InlineData(50, 0.3f, 15)]
    [InlineData(1000, 0.06f, 60)]
    [InlineData(10, 0.1f, 1)]
    [InlineData(7, 0f, 0)]
    public void WarmupStepsAreTrainersCount(long total, float ratio, long expected) =>
        Assert.Equal(expected, Trainer.WarmupSteps(total, ratio));

    [Fact]
    public void LoggedEpochCountsBatchesAsTrainerDoes()
    {
        // 32 examples in batches of 12: 12, 12, 8. Trainer logs epoch + (step + 1) / steps_in_epoch: 1/3, 2/3, 1
        // (the share of examples would give 0.375, 0.75, 1)
        var config = TinyConfig(labels: 2);
        var (data, encoded) = Synthetic(3);
        using var engine = new CpuBertEngine(config, BertCheckpoint.RandomInit(config, 4));
        string folder = TempDir();
        var outcome = new Trainer(engine, data, data.Train, encoded, Options with { Epochs = 2, BatchSize = 12, LoggingSteps = 1 }, new RunFolder(folder), TempDir(), new Observer()).Run(false, default);
        Assert.True(outcome.Completed);
        var epochs = File.ReadAllLines(Path.Combine(folder, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Where(x => x["loss"] != null).Select(x => x["epoch"]!.GetValue<double>());
        Assert.Equal([0.3333, 0.6667, 1.0, 1.3333, 1.6667, 2.0], epochs);
    }
}

