using System.CommandLine;
using MixupBert.Kernels.Cpu;
using MixupBert.Kernels.Cuda;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;
using MixupBert.Model.Hub;
using MixupBert.Model.Training;
using MixupBert.Model.Weights;

namespace MixupBert.Tool.Commands;

/// <summary>`mixup-bert train`: fine-tune a BERT classifier, with or without mixup.</summary>
public static class TrainCommand
{
    public static Command Build()
    {
        var set = new TrainOptionSet();
        var output = new Option<string?>("--output") { Description = "Output folder (default runs/<timestamp>-<mode>)" };
        var resume = new Option<bool>("--resume") { Description = "Continue the interrupted run in --output from its last saved state (the end of an epoch, or the step where Ctrl-C stopped it)" };
        var cmd = new Command("train", "Fine-tune BERT for text classification (baseline or mixup)");
        set.AddTo(cmd);
        cmd.Options.Add(output);
        cmd.Options.Add(resume);
        cmd.SetAction(parse =>
        {
            TrainOptions options;
            TimeSpan checkpointEvery;
            try { options = set.Read(parse); checkpointEvery = set.ReadCheckpointEvery(parse); }
            catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}"); return ErrorReport.BadInput; }
            var inputs = set.ReadInputs(parse);
            string folder = parse.GetValue(output) ?? Path.Combine("runs", $"{DateTime.Now:yyyyMMdd-HHmmss}-{TrainOptions.ModeName(options.Mode)}");
            return Run(inputs, options, folder, parse.GetValue(resume), parse.GetValue(set.Backend)!, parse.GetValue(set.Precision)!, parse.GetValue(set.Threads),
                checkpointEvery, resumeConflicts: recorded => set.ResumeConflicts(parse, recorded));
        });
        return cmd;
    }

    /// <summary>The args.json of the run in <paramref name="folder"/>; null when there is none, or it cannot be read
    /// (Run says why).</summary>
    private static RunArgs? RecordedArgs(string folder)
    {
        try { return new RunFolder(folder).ReadArgs(); }
        catch (Exception e) when (e is RunFolderException or DataFormatException or IOException or UnauthorizedAccessException or System.Text.Json.JsonException) { return null; }
    }

    /// <summary>One run, start to end; returns the exit code. Used by `compare` for each of its runs too:
    /// with --devices, several at once on threads of one process, each on its CUDA <paramref name="device"/>,
    /// its console lines prefixed with <paramref name="consolePrefix"/> and no live progress bar.</summary>
    /// <param name="resumeConflicts">With --resume: the inputs and options given otherwise than the run's (train's command
    /// line; a resumed run continues as it started, so they would be silently ignored).</param>
    public static int Run(RunInputs inputs, TrainOptions options, string folder, bool resume, string backend, string precision, int? threads,
        TimeSpan checkpointEvery, ConsoleObserver? sharedObserver = null, int device = 0, string? consolePrefix = null,
        Func<RunArgs, IReadOnlyList<string>>? resumeConflicts = null)
    {
        var run = new RunFolder(folder);
        // a folder of someone else's files (a model, even the --model folder itself) is not a run folder:
        // training would overwrite them (checked before the lock, which would add .lock to it)
        if (run.FilesARunWouldOverwrite() is { Count: > 0 } foreign)
        {
            Console.Error.WriteLine($"error: {run.Path} holds {string.Join(", ", foreign)} but no run of mixup-bert (no args.json): " +
                "a run would overwrite them; choose another --output");
            return ErrorReport.BadInput;
        }
        IDisposable folderLock;
        try { folderLock = run.Lock(); } // before anything is read or written: a second process on this folder stops here
        catch (RunFolderException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return ErrorReport.BadInput;
        }
        using var heldLock = folderLock;
        if (resume && resumeConflicts != null && RecordedArgs(folder) is RunArgs started && resumeConflicts(started) is { Count: > 0 } conflicts)
        {
            Console.Error.WriteLine($"error: --resume continues the run in {folder} with the inputs and options it started with (its args.json), " +
                $"but these were given otherwise: {string.Join(", ", conflicts)}. Leave them out, or start a new run in another --output");
            return ErrorReport.BadInput;
        }
        // a finished run under --checkpoint-every may have no state left to show for it: summary.json marks it
        if ((run.HasState || run.Finished) && !resume)
        {
            Console.Error.WriteLine(run.Finished
                ? $"error: {run.Path} already holds a finished run; choose another --output"
                : $"error: {run.Path} already holds a run: continue it with --resume, or choose another --output");
            return ErrorReport.BadInput;
        }
        if (resume && run.Finished && !run.HasState)
        {
            Console.WriteLine($"{run.Path} holds a finished run (summary.json): nothing to resume");
            return ErrorReport.Ok;
        }
        if (resume && !run.HoldsRun)
        {
            Console.Error.WriteLine($"error: {run.Path} holds no run to resume (no args.json)");
            return ErrorReport.BadInput;
        }
        var observer = sharedObserver ?? new ConsoleObserver(Path.Combine(run.Path, "train.log"), consolePrefix);
        var cancel = ConsoleInterrupt.Token;
        try
        {
            if (threads is int t && t > 0) WorkerPool.ConfigureShared(t);
            // a Hub that does not answer is said on the console and in train.log, once
            using var hub = new HubClient(HubSettings.FromEnvironment(), observer.Download, warn: w => observer.Line($"warning: {w}"));
            IReadOnlyList<string>? labels = null;
            RunArgs? recorded = null;
            if (resume)
            {
                // a resumed run continues with the inputs and options it started with
                recorded = run.ReadArgs()!;
                (inputs, options) = (recorded.Inputs, recorded.Options);
                inputs = inputs with { Model = Sources.Recorded(inputs.Model, recorded.ModelPath), Dataset = Sources.Recorded(inputs.Dataset, recorded.DatasetPath) };
                labels = recorded.Labels.Length > 0 ? recorded.Labels : null;
            }
            // a run that committed no checkpoint (stopped in its first epoch before any) starts over
            bool continuing = run.HasState;
            if (!continuing && run.HoldsRun)
                observer.Line($"{run.Path} holds a run with no saved checkpoint: starting it over{(resume ? " with its recorded options" : "")}");
            var prepared = FineTuning.Prepare(inputs, options, hub, observer.Line, labels, cancel);
            // the same inputs read now (another version of the tool, another copy of the dataset) must give the
            // same train set, or the saved step, schedule and best epoch would belong to other data
            if (continuing && recorded is { TrainExamples: > 0 } && recorded.TrainExamples != prepared.Train.Count)
                throw new RunFolderException($"{run.ArgsFile}: the run trained on {recorded.TrainExamples} examples, but its dataset '{inputs.Dataset}' now gives {prepared.Train.Count} " +
                    "(the files changed, or this version of mixup-bert reads them differently): it cannot be resumed; start a new run");
            var (engine, why) = Backends.Create(backend, prepared.Config, prepared.Parameters, precision, device);
            using var _ = engine;
            observer.Line($"backend: {engine.Backend} ({why})");
            if (engine.Backend.StartsWith("cpu", StringComparison.Ordinal))
                // the widest batch: a training step's rows, or an evaluation batch (the activations are shared)
                ModelSize.RequireTrainingFits(prepared.Config, Math.Max(SpanMix.StepRows(options.Mode, options.BatchSize), options.EvalBatchSize), Math.Min(options.PadTo ?? options.MaxLength, prepared.Config.MaxPositionEmbeddings),
                    Path.Combine(prepared.ModelFolder, "config.json"));
            if (!continuing)
            {
                if (run.HoldsRun) run.ClearForRestart(); // only now: bad input above must not lose what is there
                run.WriteArgs(FineTuning.Args(inputs, options, prepared, engine.Backend));
            }
            var trainer = new Trainer(engine, prepared.Data, prepared.Train, prepared.Encoded, options, run, prepared.ModelFolder, observer, checkpointEvery);
            int stepsPerEpoch = (prepared.Train.Count + options.BatchSize - 1) / options.BatchSize;
            long totalSteps = (long)stepsPerEpoch * options.EffectiveEpochs(stepsPerEpoch);
            var outcome = observer.WithProgress(totalSteps, () => trainer.Run(continuing, cancel));
            if (outcome.Completed)
            {
                observer.Line($"best epoch {outcome.BestEpoch}: validation accuracy {outcome.BestValidation.Accuracy:F4}" +
                    (outcome.Test != null ? $", test accuracy {outcome.Test.Accuracy:F4} f1 {outcome.Test.F1:F4} ece {outcome.Test.Ece:F4}" : ""));
                observer.Line($"wrote {run.Path}");
                return ErrorReport.Ok;
            }
            return outcome.StopReason == TrainOutcome.Interrupted ? ErrorReport.Interrupted : ErrorReport.Diverged;
        }
        catch (Exception e) when (e is DataFormatException or ModelFormatException or HubException or ArgumentException or RunFolderException)
        {
            observer.Error(e.Message);
            return ErrorReport.BadInput;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a full disk, a read-only folder: the committed checkpoint is untouched, so the run can go on later
            TryRemoveTemporaries(run);
            observer.Error($"{e.Message} (run folder {run.Path}{(run.HasState ? "; its last saved state is intact: continue with --resume once the problem is fixed" : "")})");
            return ErrorReport.BadInput;
        }
        catch (GpuOutOfMemoryException e)
        {
            // the run's log says why it stopped; any checkpoint already saved is intact (saving copies to the host first)
            observer.Error(ErrorReport.OutOfGpuMemory(e));
            return ErrorReport.BadInput;
        }
        catch (CudaUnavailableException e)
        {
            observer.Error($"no CUDA device: {e.Message} (use --backend cpu or auto)");
            return ErrorReport.NoDevice;
        }
        catch (OperationCanceledException)
        {
            observer.Error("interrupted before training started; nothing to resume");
            return ErrorReport.Interrupted;
        }
        finally
        {
            if (sharedObserver == null) observer.Dispose();
        }
    }

    private static void TryRemoveTemporaries(RunFolder run)
    {
        try { run.RemoveTemporaries(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // the error being reported matters more
    }
}
