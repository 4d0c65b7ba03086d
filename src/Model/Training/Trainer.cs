using System.Diagnostics;
using System.Text.Json.Nodes;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;

namespace MixupBert.Model.Training;

/// <summary>What the trainer tells whoever shows progress (the CLI's live display or log lines).</summary>
public interface ITrainingObserver
{
    void Step(int epoch, long step, long totalSteps, double loss, float learningRate, double samplesPerSecond);
    void Evaluated(string split, int epoch, ClassificationMetrics metrics, bool best);
    void Message(string text);
}

/// <summary>The outcome of a run, as summary.json records it.</summary>
public sealed record TrainSummary(int BestEpoch, ClassificationMetrics BestValidation, ClassificationMetrics? Test, double[] EpochSeconds,
    double TrainSamplesPerSecond, bool Completed, string? StopReason);

/// <summary>
/// The fine-tuning loop, HF Trainer's semantics: AdamW with linear warm-up and decay, gradient
/// clipping, evaluation on validation after every epoch, the best epoch kept by a metric, the best
/// model evaluated on test at the end. Mixing is used in training only. Every random choice is a
/// function of (seed, epoch) or (seed, step), so a run resumed from a checkpoint (saved after every
/// epoch, and at the step where Ctrl-C stopped it) ends exactly as an uninterrupted one (same thread count).
/// </summary>
public sealed class Trainer(IBertEngine engine, TextClassificationData data, LabeledSplit train, EncodedData encoded,
    TrainOptions options, RunFolder run, string tokenizerFolder, ITrainingObserver observer)
{
    private readonly OptimizerSettings optimizer = new(WeightDecay: options.WeightDecay, MaxGradNorm: options.MaxGradNorm);

    /// <summary>Where the loop stands; what a checkpoint records besides the tensors.</summary>
    private sealed class Progress
    {
        public int Epoch;                 // the epoch being trained (0-based)
        public int BatchInEpoch;          // batches of it already trained
        public long Step;
        public int BestEpoch = -1;
        public double BestScore = double.NegativeInfinity;
        public ClassificationMetrics? BestMetrics;
        public readonly List<double> EpochSeconds = new();
        public double EpochElapsed;       // seconds spent in the current epoch before an interruption
        public double LossSum; public int LossCount; public double LastNorm; // since the last logging record
        public double TrainSeconds; public long TrainSamples;
        public long CommittedStep = -1;
    }

    public TrainSummary Run(bool resume, CancellationToken cancel)
    {
        var config = engine.Config;
        var batcher = new Batcher(encoded.Train, train.Labels, config.NumLabels, encoded.PadId);
        int stepsPerEpoch = batcher.BatchCount(options.BatchSize);
        long totalSteps = (long)stepsPerEpoch * options.Epochs;
        long warmupSteps = (long)Math.Ceiling(options.WarmupRatio * totalSteps);
        var sampler = new MixSampler(options.Mode, options.Alpha, options.Beta, options.LambdaPerExample, options.MixProbability,
            options.MixLayers ?? MixSampler.DefaultTMixLayers(config.NumHiddenLayers));

        var at = new Progress();
        float[] bestParameters = new float[engine.Layout.Size];
        if (resume) Restore(at, bestParameters, totalSteps);

        string? stopReason = null;
        while (at.Epoch < options.Epochs && stopReason == null)
        {
            var order = batcher.Order(options.Seed, at.Epoch, shuffle: true, options.GroupByLength, options.BatchSize);
            var clock = Stopwatch.StartNew();
            if (at.BatchInEpoch == 0) { at.LossSum = 0; at.LossCount = 0; at.LastNorm = 0; at.EpochElapsed = 0; }
            int firstBatch = at.BatchInEpoch;
            for (int start = at.BatchInEpoch * options.BatchSize; start < order.Length; start += options.BatchSize)
            {
                if (cancel.IsCancellationRequested)
                {
                    stopReason = "interrupted";
                    at.EpochElapsed += clock.Elapsed.TotalSeconds;
                    at.TrainSeconds += clock.Elapsed.TotalSeconds;
                    if (at.Step != at.CommittedStep && at.Step > 0) SaveState(at, newBest: false); // resume continues at this very step
                    break;
                }
                var batch = batcher.Make(order.AsSpan(start, Math.Min(options.BatchSize, order.Length - start)), options.PadTo);
                var mix = sampler.Sample(batch.BatchSize, new Random(MixSampler.StableSeed(options.Seed, at.Step, 0x313)));
                float lr = LearningRate(at.Step, warmupSteps, totalSteps);
                var result = engine.TrainStep(batch, mix, lr, at.Step + 1, (ulong)options.Seed, optimizer);
                at.Step++;
                if (!double.IsFinite(result.Loss) || !double.IsFinite(result.GradNorm))
                {
                    stopReason = $"the loss became {result.Loss} at step {at.Step} (epoch {at.Epoch + 1}); stopped. " + (at.CommittedStep >= 0
                        ? $"The last good checkpoint (step {at.CommittedStep}) is kept. Try a lower --lr in a new --output."
                        : "No checkpoint had been saved yet: run again with a lower --lr (the same --output starts over).");
                    break;
                }
                at.BatchInEpoch++;
                at.LossSum += result.Loss; at.LossCount++; at.LastNorm = result.GradNorm;
                at.TrainSamples += batch.BatchSize;
                double rate = (start + batch.BatchSize - firstBatch * options.BatchSize) / clock.Elapsed.TotalSeconds;
                observer.Step(at.Epoch, at.Step, totalSteps, result.Loss, lr, rate);
                if (at.Step % options.LoggingSteps == 0)
                {
                    run.AppendMetrics(new JsonObject
                    {
                        ["loss"] = Math.Round(at.LossSum / at.LossCount, 6), ["grad_norm"] = at.LastNorm, ["learning_rate"] = lr,
                        ["epoch"] = Math.Round(at.Epoch + (double)(start + batch.BatchSize) / order.Length, 4), ["step"] = at.Step,
                    });
                    at.LossSum = 0; at.LossCount = 0;
                }
                FaultInjection.AfterStep(at.Step, cancel);
            }
            if (stopReason != null) break;
            at.TrainSeconds += clock.Elapsed.TotalSeconds;
            at.EpochSeconds.Add(at.EpochElapsed + clock.Elapsed.TotalSeconds);

            var metrics = Evaluate(encoded.Validation, data.Validation.Labels);
            double score = metrics.Get(options.Metric);
            bool best = score > at.BestScore;
            run.AppendMetrics(EvalRecord("eval", metrics, at.Epoch + 1, at.Step));
            observer.Evaluated("validation", at.Epoch + 1, metrics, best);
            if (best)
            {
                at.BestScore = score; at.BestEpoch = at.Epoch + 1; at.BestMetrics = metrics;
                engine.CopyParameters(bestParameters);
            }
            at.Epoch++; at.BatchInEpoch = 0; at.EpochElapsed = 0;
            SaveState(at, newBest: best);
        }

        if (stopReason != null) observer.Message(stopReason == "interrupted"
            ? (at.Step > 0 ? $"interrupted at step {at.Step}: saved in {run.Path}; continue with --resume" : "interrupted before the first step: nothing to save")
            : stopReason);
        if (at.BestMetrics == null) return new TrainSummary(0, new ClassificationMetrics(double.NaN, 0, 0, 0, 0, 0, 0), null, at.EpochSeconds.ToArray(), 0, false, stopReason);

        ClassificationMetrics? test = null;
        (int[] Count, double[] Accuracy, double[] Confidence)? testReliability = null;
        if (stopReason == null && data.Test != null)
        {
            engine.LoadState(bestParameters, default, default);
            var testBatcher = new Batcher(encoded.Test!, data.Test.Labels, config.NumLabels, encoded.PadId);
            test = Evaluation.Run(engine, testBatcher, data.Test.Labels, options.EvalBatchSize, options.PadTo, out var testProbabilities);
            testReliability = ClassificationMetrics.ReliabilityBins(data.Test.Labels, testProbabilities, config.NumLabels);
            run.AppendMetrics(EvalRecord("test", test, at.BestEpoch, at.Step));
            observer.Evaluated("test", at.BestEpoch, test, false);
        }
        else if (data.Test == null) observer.Message("the dataset has no test split: no test evaluation");
        var summary = new TrainSummary(at.BestEpoch, at.BestMetrics, test, at.EpochSeconds.ToArray(),
            at.TrainSeconds > 0 ? at.TrainSamples / at.TrainSeconds : 0, stopReason == null, stopReason);
        if (stopReason == null) WriteSummary(summary, testReliability);
        return summary;

        void SaveState(Progress p, bool newBest)
        {
            var parameters = new float[engine.Layout.Size];
            engine.CopyParameters(parameters);
            var m = new float[parameters.Length]; var v = new float[parameters.Length];
            engine.CopyOptimizerState(m, v);
            run.SaveState(config, parameters, m, v, newBest, StateJson(p), tokenizerFolder);
            p.CommittedStep = p.Step;
        }
    }

    /// <summary>Continues from the committed checkpoint: the same step, the same place in the epoch's order.</summary>
    private void Restore(Progress at, float[] bestParameters, long totalSteps)
    {
        var saved = run.LoadState(engine.Config);
        var s = saved.Trainer;
        if (s["metric"]?.GetValue<string>() is string metric && metric != options.Metric)
            throw new RunFolderException($"{run.StateFile}: the state was saved for --metric {metric}, not {options.Metric}");
        engine.LoadState(saved.Parameters, saved.M, saved.V);
        saved.Best?.CopyTo(bestParameters, 0);
        at.Epoch = s["epochs_completed"]!.GetValue<int>();
        at.BatchInEpoch = s["batches_in_epoch"]!.GetValue<int>();
        at.Step = at.CommittedStep = s["global_step"]!.GetValue<long>();
        at.BestEpoch = s["best_epoch"]!.GetValue<int>();
        at.BestScore = s["best_score"]?.GetValue<double>() ?? double.NegativeInfinity;
        at.BestMetrics = s["best_validation"] is JsonObject b ? MetricsFrom(b) : null;
        at.EpochSeconds.AddRange(s["epoch_seconds"]!.AsArray().Select(x => x!.GetValue<double>()));
        at.EpochElapsed = s["epoch_elapsed_seconds"]!.GetValue<double>();
        at.LossSum = s["loss_sum"]!.GetValue<double>(); at.LossCount = s["loss_count"]!.GetValue<int>(); at.LastNorm = s["last_grad_norm"]!.GetValue<double>();
        at.TrainSeconds = s["train_seconds"]!.GetValue<double>(); at.TrainSamples = s["train_samples"]!.GetValue<long>();
        run.RestoreToState(engine.Config, saved, tokenizerFolder);
        observer.Message($"resuming at step {at.Step} of {totalSteps} (epoch {at.Epoch + 1}, after {at.BatchInEpoch} of its batches)");
        if (at.Epoch >= options.Epochs) observer.Message("all epochs were already completed");
    }

    private JsonObject StateJson(Progress p) => new()
    {
        ["epochs_completed"] = p.Epoch, ["batches_in_epoch"] = p.BatchInEpoch, ["global_step"] = p.Step,
        ["best_epoch"] = p.BestEpoch, ["best_score"] = double.IsFinite(p.BestScore) ? (JsonNode)p.BestScore : null, // JSON has no infinities
        ["best_validation"] = p.BestMetrics != null ? MetricsJson(p.BestMetrics) : null,
        ["epoch_seconds"] = new JsonArray(p.EpochSeconds.Select(s => (JsonNode)s).ToArray()), ["epoch_elapsed_seconds"] = p.EpochElapsed,
        ["loss_sum"] = p.LossSum, ["loss_count"] = p.LossCount, ["last_grad_norm"] = p.LastNorm,
        ["train_seconds"] = p.TrainSeconds, ["train_samples"] = p.TrainSamples, ["metric"] = options.Metric,
    };

    /// <summary>HF's get_linear_schedule_with_warmup at optimizer step <paramref name="step"/> (0-based).</summary>
    public float LearningRate(long step, long warmup, long total)
    {
        double f = step < warmup ? (double)step / Math.Max(1, warmup) : Math.Max(0.0, (double)(total - step) / Math.Max(1, total - warmup));
        return (float)(options.LearningRate * f);
    }

    /// <summary>A plain forward over a split in fixed order; loss averaged over examples.</summary>
    public ClassificationMetrics Evaluate(int[][] ids, int[] labels)
    {
        var batcher = new Batcher(ids, labels, engine.Config.NumLabels, encoded.PadId);
        return Evaluation.Run(engine, batcher, labels, options.EvalBatchSize, options.PadTo);
    }

    private void WriteSummary(TrainSummary s, (int[] Count, double[] Accuracy, double[] Confidence)? bins)
    {
        var o = new JsonObject
        {
            ["mode"] = options.Mode.ToString().ToLowerInvariant(), ["metric"] = options.Metric, ["best_epoch"] = s.BestEpoch,
            ["validation"] = MetricsJson(s.BestValidation), ["test"] = s.Test != null ? MetricsJson(s.Test) : null,
            ["epoch_seconds"] = new JsonArray(s.EpochSeconds.Select(x => (JsonNode)Math.Round(x, 3)).ToArray()),
            ["train_samples_per_second"] = Math.Round(s.TrainSamplesPerSecond, 2), ["train_examples"] = train.Count,
            ["backend"] = engine.Backend, ["labels"] = new JsonArray(engine.Config.Id2Label.Select(l => (JsonNode)l).ToArray()),
        };
        if (bins is var (count, accuracy, confidence))
            o["test_reliability"] = new JsonObject
            {
                ["count"] = new JsonArray(count.Select(c => (JsonNode)c).ToArray()),
                ["accuracy"] = new JsonArray(accuracy.Select(a => (JsonNode)a).ToArray()),
                ["confidence"] = new JsonArray(confidence.Select(c => (JsonNode)c).ToArray()),
            };
        run.WriteSummary(o);
    }

    public static JsonObject MetricsJson(ClassificationMetrics m) => new()
    {
        ["loss"] = m.Loss, ["accuracy"] = m.Accuracy, ["f1"] = m.F1, ["precision"] = m.Precision, ["recall"] = m.Recall, ["ece"] = m.Ece, ["count"] = m.Count,
    };

    private static ClassificationMetrics MetricsFrom(JsonObject o) => new(o["loss"]!.GetValue<double>(), o["accuracy"]!.GetValue<double>(),
        o["f1"]!.GetValue<double>(), o["precision"]!.GetValue<double>(), o["recall"]!.GetValue<double>(), o["ece"]!.GetValue<double>(), o["count"]!.GetValue<int>());

    private static JsonObject EvalRecord(string prefix, ClassificationMetrics m, int epoch, long step)
    {
        var o = new JsonObject();
        foreach (var (k, v) in MetricsJson(m)) o[$"{prefix}_{k}"] = v?.DeepClone();
        o["epoch"] = epoch; o["step"] = step;
        return o;
    }
}

/// <summary>Tokenized splits.</summary>
public sealed record EncodedData(int[][] Train, int[][] Validation, int[][]? Test, int PadId)
{
    public static EncodedData From(TextEncoder encoder, LabeledSplit train, TextClassificationData data, int maxLength) => new(
        train.Texts.Select(t => encoder.Encode(t, maxLength)).ToArray(),
        data.Validation.Texts.Select(t => encoder.Encode(t, maxLength)).ToArray(),
        data.Test?.Texts.Select(t => encoder.Encode(t, maxLength)).ToArray(),
        encoder.PadId);
}

/// <summary>Evaluation of any engine on any tokenized split: probabilities in, metrics out.</summary>
public static class Evaluation
{
    public static ClassificationMetrics Run(IBertEngine engine, Batcher batcher, int[] labels, int batchSize, int? padTo = null)
        => Run(engine, batcher, labels, batchSize, padTo, out _);

    public static ClassificationMetrics Run(IBertEngine engine, Batcher batcher, int[] labels, int batchSize, int? padTo, out float[] probabilities)
    {
        int L = engine.Config.NumLabels;
        probabilities = new float[labels.Length * L];
        var order = batcher.Order(0, 0, shuffle: false, groupByLength: false, batchSize);
        double lossSum = 0;
        for (int start = 0; start < order.Length; start += batchSize)
        {
            var batch = batcher.Make(order.AsSpan(start, Math.Min(batchSize, order.Length - start)), padTo);
            lossSum += engine.Evaluate(batch, probabilities.AsSpan(start * L, batch.BatchSize * L)) * batch.BatchSize;
        }
        return ClassificationMetrics.Compute(labels, probabilities, L, lossSum / labels.Length);
    }
}
