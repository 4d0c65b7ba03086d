using System.Diagnostics;
using System.Globalization;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;

namespace MixupBert.Model.Training;

/// <summary>What <see cref="Trainer.Run"/> returns: the outcome of a run, finished or stopped (summary.json records a finished one).</summary>
public sealed record TrainOutcome(int BestEpoch, ClassificationMetrics BestValidation, ClassificationMetrics? Test, double[] EpochSeconds,
    double TrainSamplesPerSecond, bool Completed, string? StopReason)
{
    /// <summary>The stop reason of a run that Ctrl-C stopped (any other is a message saying why it stopped).</summary>
    public const string Interrupted = "interrupted";
}

/// <summary>
/// The fine-tuning loop, HF Trainer's semantics: AdamW with linear warm-up and decay, gradient
/// clipping, evaluation on validation after every epoch, the best epoch kept by a metric, the best
/// model evaluated on test at the end. Mixing is used in training only. Every random choice is a
/// function of (seed, epoch) or (seed, step), so a run resumed from a checkpoint ends exactly as an
/// uninterrupted one (same thread count). A checkpoint is committed at the end of an epoch once
/// <paramref name="checkpointEvery"/> has passed since the last one (zero: after every epoch), and at the
/// step where Ctrl-C stops the run. Skipping the others matters on a GPU: a bert-base checkpoint (weights
/// and Adam moments, 1.3 GB, written with fsync and hashed) takes longer than a whole rotten_tomatoes
/// epoch. The best model is kept in memory and published at the top of the folder by the next checkpoint
/// or at the end of the run.
/// </summary>
public sealed class Trainer(IBertEngine engine, TextClassificationData data, LabeledSplit train, EncodedData encoded,
    TrainOptions options, RunFolder run, string tokenizerFolder, ITrainingObserver observer, TimeSpan checkpointEvery = default)
{
    private readonly Stopwatch sinceCheckpoint = Stopwatch.StartNew();
    // whether bestParameters holds a best model that no committed checkpoint holds (its epoch's checkpoint was skipped)
    private bool bestUncommitted;

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

        public TrainerState ToState(string metric) => new(Epoch, BatchInEpoch, Step, BestEpoch,
            double.IsFinite(BestScore) ? BestScore : null, BestMetrics, EpochSeconds.ToArray(), EpochElapsed,
            LossSum, LossCount, LastNorm, TrainSeconds, TrainSamples, metric);

        public void Restore(TrainerState s)
        {
            Epoch = s.EpochsCompleted; BatchInEpoch = s.BatchesInEpoch; Step = CommittedStep = s.GlobalStep;
            BestEpoch = s.BestEpoch; BestScore = s.BestScore ?? double.NegativeInfinity; BestMetrics = s.BestValidation;
            EpochSeconds.AddRange(s.EpochSeconds); EpochElapsed = s.EpochElapsedSeconds;
            LossSum = s.LossSum; LossCount = s.LossCount; LastNorm = s.LastGradNorm;
            TrainSeconds = s.TrainSeconds; TrainSamples = s.TrainSamples;
        }
    }

    /// <summary>The batches, the mixing and the learning-rate schedule of the whole run; Epochs is
    /// --epochs or more, where --min-steps asks for more steps (<see cref="TrainOptions.EffectiveEpochs"/>).</summary>
    private sealed record Plan(Batcher Batcher, MixSampler Sampler, int Epochs, long TotalSteps, long WarmupSteps);

    public TrainOutcome Run(bool resume, CancellationToken cancel)
    {
        var plan = PlanRun();
        var at = new Progress();
        float[] bestParameters = new float[engine.Layout.Size];
        if (resume) Restore(at, bestParameters, plan);

        string? stopReason = null;
        while (at.Epoch < plan.Epochs && stopReason == null)
        {
            stopReason = TrainEpoch(at, plan, bestParameters, cancel);
            if (stopReason == null) EndEpoch(at, bestParameters);
        }
        return Finish(at, bestParameters, stopReason, plan);
    }

    private Plan PlanRun()
    {
        var config = engine.Config;
        var batcher = new Batcher(encoded.Train, train.Labels, config.NumLabels, encoded.PadId);
        int stepsPerEpoch = batcher.BatchCount(options.BatchSize);
        int epochs = options.EffectiveEpochs(stepsPerEpoch);
        if (epochs != options.Epochs)
            observer.Message($"{epochs} epochs instead of --epochs {options.Epochs}: --min-steps {options.MinSteps} at {stepsPerEpoch} steps per epoch");
        long totalSteps = (long)stepsPerEpoch * epochs;
        long warmupSteps = WarmupSteps(totalSteps, options.WarmupRatio);
        var sampler = new MixSampler(options.Mode, options.Alpha, options.Beta, options.LambdaPerExample, options.MixProbability,
            options.MixLayers ?? MixSampler.DefaultTMixLayers(config.NumHiddenLayers));
        ReserveActivations();
        return new Plan(batcher, sampler, epochs, totalSteps, warmupSteps);
    }

    /// <summary>The activations for the widest batch of the run (a training step's rows or an
    /// evaluation batch, at the longest example of any split), allocated once before the first step.</summary>
    private void ReserveActivations()
    {
        static int Longest(EncodedSplit? split) => split == null || split.Ids.Length == 0 ? 0 : split.Ids.Max(r => r.Length);
        int evalRows = Math.Min(options.EvalBatchSize, Math.Max(encoded.Validation.Ids.Length, encoded.Test?.Ids.Length ?? 0));
        int rows = Math.Max(SpanMix.StepRows(options.Mode, Math.Min(options.BatchSize, encoded.Train.Ids.Length)), evalRows);
        int seqLen = Math.Max(options.PadTo ?? 0, Math.Max(Longest(encoded.Train), Math.Max(Longest(encoded.Validation), Longest(encoded.Test))));
        if (seqLen > 0) engine.Reserve(rows, seqLen);
    }

    /// <summary>A step started on the engine whose result has not been read: its number, where its
    /// batch starts in the epoch's order, its rows and its learning rate.</summary>
    private readonly record struct StartedStep(long Step, int Start, int Rows, float LearningRate);

    /// <summary>
    /// Trains the rest of the current epoch; returns why it stopped before the end (Ctrl-C, a
    /// non-finite loss), or null. Pipelined: step n + 1 is started (on a GPU: enqueued) before step n's
    /// loss is read, so the host builds the next batch while the device computes; everything that
    /// consumes a step's result (<see cref="Complete"/>) runs one step late, in step order. The pending
    /// step is completed before anything else touches the engine: Ctrl-C's checkpoint, ssmix's saliency
    /// pass, the end of the epoch.
    /// </summary>
    private string? TrainEpoch(Progress at, Plan plan, float[] bestParameters, CancellationToken cancel)
    {
        var (batcher, sampler, _, totalSteps, warmupSteps) = plan;
        var order = batcher.Order(options.Seed, at.Epoch, shuffle: true, options.GroupByLength, options.BatchSize);
        var clock = Stopwatch.StartNew();
        if (at.BatchInEpoch == 0) { at.LossSum = 0; at.LossCount = 0; at.LastNorm = 0; at.EpochElapsed = 0; }
        int firstBatch = at.BatchInEpoch;
        StartedStep? pending = null;
        string? Drain()
        {
            if (pending is not StartedStep p) return null;
            pending = null;
            return Complete(at, p, order.Length, firstBatch, totalSteps, clock);
        }
        for (int start = at.BatchInEpoch * options.BatchSize; start < order.Length; start += options.BatchSize)
        {
            if (cancel.IsCancellationRequested)
            {
                if (Drain() is string diverged) return diverged;
                at.EpochElapsed += clock.Elapsed.TotalSeconds;
                at.TrainSeconds += clock.Elapsed.TotalSeconds;
                if (at.Step != at.CommittedStep && at.Step > 0) SaveState(at, newBest: false, bestParameters); // resume continues at this very step
                return TrainOutcome.Interrupted;
            }
            long step = at.Step + (pending == null ? 1 : 2); // the step to start
            var batch = batcher.Make(order.AsSpan(start, Math.Min(options.BatchSize, order.Length - start)), options.PadTo);
            var mix = sampler.Sample(batch.BatchSize, new Random(MixSampler.StableSeed(options.Seed, step - 1, 0x313)));
            float lr = LearningRate(step - 1, warmupSteps, totalSteps);
            var stepBatch = batch;
            // ssmix: the saliency pass (the step's own dropout masks), then the span-mixed batch beside the
            // unmixed one; the saliency pass reads the parameters back, so the pending step goes first
            if (BertSchedule.MixesTokens(mix))
            {
                if (Drain() is string diverged) return diverged;
                (stepBatch, mix) = SpanMix.Apply(engine, batch, mix!, options.SsMixSpan, (ulong)options.Seed, step);
            }
            engine.StartTrainStep(stepBatch, mix, lr, step, (ulong)options.Seed, optimizer);
            FaultInjection.AfterStep(step, cancel);
            if (Drain() is string stopped)
            {
                engine.FinishTrainStep(); // the step after the diverged one: dropped with the in-memory state
                return stopped;
            }
            pending = new StartedStep(step, start, batch.BatchSize, lr);
        }
        if (Drain() is string last) return last;
        at.TrainSeconds += clock.Elapsed.TotalSeconds;
        at.EpochSeconds.Add(at.EpochElapsed + clock.Elapsed.TotalSeconds);
        return null;
    }

    /// <summary>Reads a started step's result (waiting for it) and does what consumes it: the divergence
    /// check, the loss sums, the observer, the logging record. Returns the divergence message, or null.</summary>
    private string? Complete(Progress at, StartedStep s, int epochExamples, int firstBatch, long totalSteps, Stopwatch clock)
    {
        var result = engine.FinishTrainStep();
        at.Step++;
        Debug.Assert(at.Step == s.Step);
        if (!double.IsFinite(result.Loss) || !double.IsFinite(result.GradNorm)) return Diverged(at, result.Loss);
        at.BatchInEpoch++;
        at.LossSum += result.Loss; at.LossCount++; at.LastNorm = result.GradNorm;
        at.TrainSamples += s.Rows;
        double rate = (s.Start + s.Rows - firstBatch * options.BatchSize) / clock.Elapsed.TotalSeconds;
        observer.Step(at.Epoch, at.Step, totalSteps, result.Loss, s.LearningRate, rate);
        // the epoch's share done counts batches, as Trainer's epoch + (step + 1) / steps_in_epoch does
        int epochBatches = (epochExamples + options.BatchSize - 1) / options.BatchSize;
        if (at.Step % options.LoggingSteps == 0) LogTrainLoss(at, s.LearningRate, epochDone: (double)at.BatchInEpoch / epochBatches);
        return null;
    }

    private string Diverged(Progress at, double loss) =>
        $"the loss became {loss} at step {at.Step} (epoch {at.Epoch + 1}); stopped. " + (at.CommittedStep >= 0
            ? $"The last good checkpoint (step {at.CommittedStep}) is kept. Try a lower --lr in a new --output."
            : "No checkpoint had been saved yet: run again with a lower --lr (the same --output starts over).");

    /// <summary>The mean training loss since the previous record, to metrics.jsonl.</summary>
    private void LogTrainLoss(Progress at, float lr, double epochDone)
    {
        run.AppendMetrics(new TrainLossRecord(Math.Round(at.LossSum / at.LossCount, 6), at.LastNorm, lr, Math.Round(at.Epoch + epochDone, 4), at.Step));
        at.LossSum = 0; at.LossCount = 0;
    }

    /// <summary>After a full epoch: evaluate on validation, keep the best parameters, commit a checkpoint when one is due.</summary>
    private void EndEpoch(Progress at, float[] bestParameters)
    {
        var metrics = Evaluate(encoded.Validation, data.Validation.Labels);
        double score = metrics.Get(options.Metric);
        bool best = score > at.BestScore;
        run.AppendMetrics(new EvalRecord(EvalRecord.Validation, metrics, at.Epoch + 1, at.Step));
        observer.Evaluated("validation", at.Epoch + 1, metrics, best);
        if (best)
        {
            at.BestScore = score; at.BestEpoch = at.Epoch + 1; at.BestMetrics = metrics;
            engine.CopyParameters(bestParameters);
            bestUncommitted = true;
        }
        at.Epoch++; at.BatchInEpoch = 0; at.EpochElapsed = 0;
        if (sinceCheckpoint.Elapsed >= checkpointEvery) SaveState(at, newBest: best, bestParameters);
    }

    /// <summary>Says why a run stopped; for a finished one, tests the best model and writes summary.json.</summary>
    private TrainOutcome Finish(Progress at, float[] bestParameters, string? stopReason, Plan plan)
    {
        if (stopReason != null) observer.Message(stopReason == TrainOutcome.Interrupted
            ? (at.Step > 0 ? $"interrupted at step {at.Step}: saved in {run.Path}; continue with --resume" : "interrupted before the first step: nothing to save")
            : stopReason);
        if (at.BestMetrics == null) return new TrainOutcome(0, new ClassificationMetrics(double.NaN, 0, 0, 0, 0, 0, 0), null, at.EpochSeconds.ToArray(), 0, false, stopReason);

        ClassificationMetrics? test = null;
        ReliabilityBins? testReliability = null;
        if (bestUncommitted) // its epoch's checkpoint was skipped (a run Ctrl-C stopped committed it then)
        {
            run.SaveModel(engine.Config, bestParameters, tokenizerFolder);
            bestUncommitted = false;
        }
        if (stopReason == null && data.Test != null) (test, testReliability) = TestBestModel(at, bestParameters);
        else if (data.Test == null) observer.Message("the dataset has no test split: no test evaluation");
        var outcome = new TrainOutcome(at.BestEpoch, at.BestMetrics, test, at.EpochSeconds.ToArray(),
            at.TrainSeconds > 0 ? at.TrainSamples / at.TrainSeconds : 0, stopReason == null, stopReason);
        if (stopReason == null) WriteSummary(outcome, testReliability, plan);
        return outcome;
    }

    private (ClassificationMetrics, ReliabilityBins) TestBestModel(Progress at, float[] bestParameters)
    {
        Debug.Assert(data.Test != null);
        var config = engine.Config;
        engine.LoadState(bestParameters, default, default);
        var testBatcher = new Batcher(encoded.Test!, data.Test.Labels, config.NumLabels, encoded.PadId);
        var test = Evaluation.Run(engine, testBatcher, data.Test.Labels, options.EvalBatchSize, options.PadTo, out var testProbabilities);
        var testReliability = ClassificationMetrics.Reliability(data.Test.Labels, testProbabilities, config.NumLabels);
        run.AppendMetrics(new EvalRecord(EvalRecord.Test, test, at.BestEpoch, at.Step));
        observer.Evaluated("test", at.BestEpoch, test, false);
        return (test, testReliability);
    }

    // host copies of the state for SaveState, allocated once: fresh arrays every epoch cost as much
    // system time (page faults) as the copies themselves
    private float[]? savedParameters, savedM, savedV;

    /// <summary>Commits a checkpoint; with the best model too when no committed checkpoint holds it.</summary>
    private void SaveState(Progress p, bool newBest, float[] bestParameters)
    {
        var config = engine.Config;
        var parameters = savedParameters ??= new float[engine.Layout.Size];
        var m = savedM ??= new float[parameters.Length];
        var v = savedV ??= new float[parameters.Length];
        engine.CopyParameters(parameters);
        engine.CopyOptimizerState(m, v);
        run.SaveState(config, parameters, m, v, newBest, p.ToState(options.Metric), tokenizerFolder, best: bestUncommitted ? bestParameters : null);
        p.CommittedStep = p.Step;
        bestUncommitted = false;
        sinceCheckpoint.Restart();
    }

    /// <summary>Continues from the committed checkpoint: the same step, the same place in the epoch's order.</summary>
    private void Restore(Progress at, float[] bestParameters, Plan plan)
    {
        var saved = run.LoadState(engine.Config);
        if (saved.Trainer.Metric is string metric && metric != options.Metric)
            throw new RunFolderException($"{run.StateFile}: the state was saved for --metric {metric}, not {options.Metric}");
        engine.LoadState(saved.Parameters, saved.M, saved.V);
        saved.Best?.CopyTo(bestParameters, 0);
        at.Restore(saved.Trainer);
        run.RestoreToState(engine.Config, saved, tokenizerFolder);
        observer.Message($"resuming at step {at.Step} of {plan.TotalSteps} (epoch {at.Epoch + 1}, after {at.BatchInEpoch} of its batches)");
        if (at.Epoch >= plan.Epochs) observer.Message("all epochs were already completed");
    }

    /// <summary>TrainingArguments.get_warmup_steps: ceil(total × ratio) in double precision, on the ratio as
    /// written (its shortest decimal form): in float32, 0.15 × 100 gives 16 warm-up steps where Trainer's 15.</summary>
    public static long WarmupSteps(long totalSteps, float ratio) =>
        (long)Math.Ceiling(totalSteps * double.Parse(ratio.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));

    /// <summary>HF's get_linear_schedule_with_warmup at optimizer step <paramref name="step"/> (0-based).</summary>
    public float LearningRate(long step, long warmup, long total)
    {
        double f = step < warmup ? (double)step / Math.Max(1, warmup) : Math.Max(0.0, (double)(total - step) / Math.Max(1, total - warmup));
        return (float)(options.LearningRate * f);
    }

    /// <summary>A plain forward over a split in fixed order; loss averaged over examples.</summary>
    public ClassificationMetrics Evaluate(EncodedSplit split, int[] labels)
    {
        var batcher = new Batcher(split, labels, engine.Config.NumLabels, encoded.PadId);
        return Evaluation.Run(engine, batcher, labels, options.EvalBatchSize, options.PadTo);
    }

    private void WriteSummary(TrainOutcome s, ReliabilityBins? bins, Plan plan) => run.WriteSummary(new RunSummary(
        TrainOptions.ModeName(options.Mode), options.Metric, s.BestEpoch, s.BestValidation, s.Test,
        s.EpochSeconds.Select(x => Math.Round(x, 3)).ToArray(), Math.Round(s.TrainSamplesPerSecond, 2), train.Count,
        engine.Backend, engine.Config.Id2Label.ToArray(), bins) { Epochs = plan.Epochs, Steps = plan.TotalSteps });
}
