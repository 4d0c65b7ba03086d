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
/// function of (seed, epoch) or (seed, step), so a run resumed from its last epoch ends exactly as an
/// uninterrupted one (same thread count).
/// </summary>
public sealed class Trainer(IBertEngine engine, TextClassificationData data, LabeledSplit train, EncodedData encoded,
    TrainOptions options, RunFolder run, string tokenizerFolder, ITrainingObserver observer)
{
    private readonly OptimizerSettings optimizer = new(WeightDecay: options.WeightDecay, MaxGradNorm: options.MaxGradNorm);

    public TrainSummary Run(bool resume, CancellationToken cancel)
    {
        var config = engine.Config;
        var batcher = new Batcher(encoded.Train, train.Labels, config.NumLabels, encoded.PadId);
        int stepsPerEpoch = batcher.BatchCount(options.BatchSize);
        long totalSteps = (long)stepsPerEpoch * options.Epochs;
        long warmupSteps = (long)Math.Ceiling(options.WarmupRatio * totalSteps);
        var sampler = new MixSampler(options.Mode, options.Alpha, options.Beta, options.LambdaPerExample, options.MixProbability,
            options.MixLayers ?? MixSampler.DefaultTMixLayers(config.NumHiddenLayers));

        // where to start: from scratch, or after the last completed epoch of an interrupted run
        int firstEpoch = 0, bestEpoch = -1;
        long step = 0;
        double bestScore = double.NegativeInfinity;
        ClassificationMetrics? bestMetrics = null;
        float[] bestParameters = new float[engine.Layout.Size];
        var epochSeconds = new List<double>();
        if (resume)
        {
            var (p, m, v, state) = run.LoadState(config);
            engine.LoadState(p, m, v);
            firstEpoch = state["epochs_completed"]!.GetValue<int>();
            step = state["global_step"]!.GetValue<long>();
            bestEpoch = state["best_epoch"]!.GetValue<int>();
            bestScore = state["best_score"]!.GetValue<double>();
            bestMetrics = MetricsFrom(state["best_validation"]!.AsObject());
            epochSeconds.AddRange(state["epoch_seconds"]!.AsArray().Select(x => x!.GetValue<double>()));
            var (_, best, _) = BertCheckpoint.Load(run.Path, config.Id2Label);
            best.CopyTo(bestParameters, 0);
            run.TruncateMetrics(step);
            observer.Message($"resuming after epoch {firstEpoch} (step {step} of {totalSteps})");
            if (firstEpoch >= options.Epochs) observer.Message("all epochs were already completed");
        }

        string? stopReason = null;
        double trainSeconds = 0; long trainSamples = 0;
        for (int epoch = firstEpoch; epoch < options.Epochs && stopReason == null; epoch++)
        {
            var order = batcher.Order(options.Seed, epoch, shuffle: true, options.GroupByLength, options.BatchSize);
            var clock = Stopwatch.StartNew();
            double lossSum = 0; int lossCount = 0; double lastNorm = 0;
            for (int start = 0; start < order.Length; start += options.BatchSize)
            {
                if (cancel.IsCancellationRequested) { stopReason = "interrupted"; break; }
                var batch = batcher.Make(order.AsSpan(start, Math.Min(options.BatchSize, order.Length - start)), options.PadTo);
                var mix = sampler.Sample(batch.BatchSize, new Random(MixSampler.StableSeed(options.Seed, step, 0x313)));
                float lr = LearningRate(step, warmupSteps, totalSteps);
                var result = engine.TrainStep(batch, mix, lr, step + 1, (ulong)options.Seed, optimizer);
                step++;
                if (!double.IsFinite(result.Loss) || !double.IsFinite(result.GradNorm))
                {
                    stopReason = $"the loss became {result.Loss} at step {step} (epoch {epoch + 1}); stopped, the last good checkpoint is kept. Try a lower --lr.";
                    break;
                }
                lossSum += result.Loss; lossCount++; lastNorm = result.GradNorm;
                trainSamples += batch.BatchSize;
                double rate = (start + batch.BatchSize) / clock.Elapsed.TotalSeconds;
                observer.Step(epoch, step, totalSteps, result.Loss, lr, rate);
                if (step % options.LoggingSteps == 0)
                {
                    run.AppendMetrics(new JsonObject
                    {
                        ["loss"] = Math.Round(lossSum / lossCount, 6), ["grad_norm"] = lastNorm, ["learning_rate"] = lr,
                        ["epoch"] = Math.Round(epoch + (double)(start + batch.BatchSize) / order.Length, 4), ["step"] = step,
                    });
                    lossSum = 0; lossCount = 0;
                }
            }
            if (stopReason != null) break;
            trainSeconds += clock.Elapsed.TotalSeconds;
            epochSeconds.Add(clock.Elapsed.TotalSeconds);

            var metrics = Evaluate(encoded.Validation, data.Validation.Labels);
            double score = metrics.Get(options.Metric);
            bool best = score > bestScore;
            run.AppendMetrics(EvalRecord("eval", metrics, epoch + 1, step));
            observer.Evaluated("validation", epoch + 1, metrics, best);
            var parameters = new float[engine.Layout.Size];
            engine.CopyParameters(parameters);
            if (best)
            {
                bestScore = score; bestEpoch = epoch + 1; bestMetrics = metrics;
                parameters.CopyTo(bestParameters, 0);
                run.SaveModel(config, parameters, tokenizerFolder);
            }
            var m = new float[parameters.Length]; var v = new float[parameters.Length];
            engine.CopyOptimizerState(m, v);
            run.SaveState(config, parameters, m, v, new JsonObject
            {
                ["epochs_completed"] = epoch + 1, ["global_step"] = step, ["best_epoch"] = bestEpoch, ["best_score"] = bestScore,
                ["best_validation"] = MetricsJson(bestMetrics!), ["epoch_seconds"] = new JsonArray(epochSeconds.Select(s => (JsonNode)s).ToArray()),
                ["metric"] = options.Metric,
            });
        }

        if (stopReason != null) observer.Message(stopReason == "interrupted"
            ? $"interrupted at step {step}: the last completed epoch is saved in {run.Path}; continue with --resume"
            : stopReason);
        if (bestMetrics == null) return new TrainSummary(0, new ClassificationMetrics(double.NaN, 0, 0, 0, 0, 0, 0), null, epochSeconds.ToArray(), 0, false, stopReason);

        ClassificationMetrics? test = null;
        (int[] Count, double[] Accuracy, double[] Confidence)? testReliability = null;
        if (stopReason == null && data.Test != null)
        {
            engine.LoadState(bestParameters, default, default);
            var testBatcher = new Batcher(encoded.Test!, data.Test.Labels, config.NumLabels, encoded.PadId);
            test = Evaluation.Run(engine, testBatcher, data.Test.Labels, options.EvalBatchSize, options.PadTo, out var testProbabilities);
            testReliability = ClassificationMetrics.ReliabilityBins(data.Test.Labels, testProbabilities, config.NumLabels);
            run.AppendMetrics(EvalRecord("test", test, bestEpoch, step));
            observer.Evaluated("test", bestEpoch, test, false);
        }
        else if (data.Test == null) observer.Message("the dataset has no test split: no test evaluation");
        var summary = new TrainSummary(bestEpoch, bestMetrics, test, epochSeconds.ToArray(),
            trainSeconds > 0 ? trainSamples / trainSeconds : 0, stopReason == null, stopReason);
        if (stopReason == null) WriteSummary(summary, testReliability);
        return summary;
    }

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
        RunFolder.WriteAtomic(run.SummaryFile, RunFolder.Json(o));
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
