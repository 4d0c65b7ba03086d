using System.CommandLine;
using MixupBert.Kernels.Cpu;
using MixupBert.Model.Bert;
using MixupBert.Model.Experiments;
using MixupBert.Model.Hub;
using MixupBert.Model.Training;

namespace MixupBert.Tool.Commands;

/// <summary>
/// `mixup-bert compare`: the grid train size × seed × lr × mode × α with identical settings per seed, one
/// run folder each, finished runs skipped and interrupted ones resumed, then `report`. --shard K/N runs a
/// deterministic share of it (for a cluster's job array into one shared folder); --devices runs one run per
/// GPU at once.
/// </summary>
public static class CompareCommand
{
    public static Command Build()
    {
        var set = new TrainOptionSet();
        var modeNames = string.Join(", ", Enum.GetValues<MixMode>().Select(TrainOptions.ModeName));
        var modes = new Option<string>("--modes") { Description = $"Comma-separated modes: {modeNames}", DefaultValueFactory = _ => "baseline,mixup" };
        var seeds = new Option<int>("--seeds") { Description = "Seeds per cell: --seed, --seed + 1, ...", DefaultValueFactory = _ => 5 };
        var sizes = new Option<string>("--train-sizes") { Description = "Comma-separated train sizes: all, N (stratified examples) or N/class", DefaultValueFactory = _ => "all" };
        var lrs = new Option<string?>("--lrs") { Description = "Comma-separated learning rates, a grid axis (instead of --lr); `report` picks one per train size, mode and α on validation" };
        var alphas = new Option<string?>("--alphas") { Description = "Comma-separated α values, a grid axis of the mixing modes (instead of --alpha); β = α unless --beta is given" };
        var shard = new Option<string?>("--shard") { Description = "K/N: run only shard K of N of the grid (every shard given the same options and --output); no report unless --report" };
        var devices = new Option<string?>("--devices") { Description = "Comma-separated CUDA devices, e.g. 0,1,2,3: one run per device at once (CUDA backend)" };
        var output = new Option<string?>("--output") { Description = "Experiment folder (default experiments/<timestamp>); run the same command again to continue an interrupted grid" };
        var noReport = new Option<bool>("--no-report") { Description = "Only run the grid (write the report later with `mixup-bert report`)" };
        var report = new Option<bool>("--report") { Description = "With --shard: write the report of whatever is finished once this shard is done" };
        var cmd = new Command("compare", "Run baseline and mixup modes over seeds, train sizes, learning rates and α, then write the report");
        set.AddTo(cmd);
        foreach (var o in new Option[] { modes, seeds, sizes, lrs, alphas, shard, devices, output, noReport, report }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            TrainOptions template;
            Grid grid;
            (int, int)? share = null;
            List<int>? deviceList = null;
            string backend = parse.GetValue(set.Backend)!;
            try
            {
                template = set.Read(parse);
                _ = set.ReadCheckpointEvery(parse); // refused here, before any run starts
                var modeList = parse.GetValue(modes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(TrainOptionSet.ParseMode).Distinct().ToList();
                var sizeList = parse.GetValue(sizes)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(TrainSize.Parse).ToList();
                if (parse.GetValue(seeds) < 1) throw new ArgumentException("--seeds must be at least 1");
                List<float>? lrList = null, alphaList = null;
                if (parse.GetValue(lrs) is string l)
                {
                    if (set.Given(parse, "--lr")) throw new ArgumentException("--lr and --lrs exclude each other (--lrs 5e-5 is a grid of one)");
                    lrList = ExperimentPlan.ParsePositiveNumbers("--lrs", l);
                }
                if (parse.GetValue(alphas) is string a)
                {
                    if (set.Given(parse, "--alpha")) throw new ArgumentException("--alpha and --alphas exclude each other (--alphas 1 is a grid of one)");
                    alphaList = ExperimentPlan.ParsePositiveNumbers("--alphas", a);
                }
                grid = new Grid(sizeList, parse.GetValue(seeds), modeList, lrList, alphaList, FixedBeta: set.Given(parse, "--beta"));
                if (parse.GetValue(shard) is string s)
                {
                    share = ExperimentPlan.ParseShard(s);
                    if (parse.GetValue(output) == null) throw new ArgumentException("--shard needs --output: every shard must write into the same experiment folder");
                }
                if (parse.GetValue(report) && parse.GetValue(noReport)) throw new ArgumentException("--report and --no-report exclude each other");
                if (parse.GetValue(devices) is string d)
                {
                    if (backend == "cpu") throw new ArgumentException("--devices runs on CUDA devices; it does not go with --backend cpu");
                    backend = "cuda"; // never auto's CPU fallback: N concurrent CPU runs would share the cores
                    deviceList = ExperimentPlan.ParseDevices(d);
                }
            }
            catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}"); return ErrorReport.BadInput; }
            string dir = Path.GetFullPath(parse.GetValue(output) ?? Path.Combine("experiments", DateTime.Now.ToString("yyyyMMdd-HHmmss")));
            string command = "mixup-bert " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));
            var inputs = set.ReadInputs(parse);
            var plan = ExperimentPlan.Plan(dir, grid, template);
            var mine = share is var (k, n) ? ExperimentPlan.Shard(plan, k, n) : plan;
            Console.WriteLine($"experiment {dir}: {plan.Count} runs ({grid.Modes.Count} modes × {grid.Seeds} seeds × {grid.Sizes.Count} train sizes" +
                (grid.LearningRates != null ? $" × {grid.LearningRates.Count} lrs" : "") + (grid.Alphas != null ? $"; {grid.Alphas.Count} α for the mixing modes" : "") + ")" +
                (share is var (k2, n2) ? $"; shard {k2}/{n2}: {mine.Count} of them" : ""));
            // a folder of the grid holding a run made otherwise is refused before anything runs or the
            // plan is written: the whole grid is checked, so every shard refuses alike
            try
            {
                var conflicts = ExperimentPlan.Conflicts(plan, inputs);
                if (conflicts.Count > 0)
                {
                    Console.Error.WriteLine($"error: {conflicts.Count} run folder(s) of this grid hold runs made with other settings than the grid's " +
                        "(their results would be mixed with the grid's): give another --output, or remove those folders to rerun them:");
                    foreach (var conflict in conflicts) Console.Error.WriteLine($"  {conflict}");
                    return ErrorReport.BadInput;
                }
            }
            catch (Model.Data.DataFormatException e) { Console.Error.WriteLine($"error: {e.Message}"); return ErrorReport.BadInput; }
            try { ExperimentPlan.WritePlan(ExperimentPlan.PlanFile(dir, share), plan, command); } // the whole grid: report lists what no shard has finished
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Console.Error.WriteLine($"error: {dir}: {e.Message}"); return ErrorReport.BadInput; }
            catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}"); return ErrorReport.BadInput; }

            int code = deviceList == null ? RunInOrder(mine, inputs, set, parse, backend) : RunOnDevices(mine, deviceList, inputs, set, parse, backend);
            if (code == ErrorReport.Interrupted) Console.Error.WriteLine($"interrupted: run the same command with --output {dir} to continue");
            if (code != ErrorReport.Ok) return code;
            if (share != null && !parse.GetValue(report)) { Console.WriteLine($"shard finished; once every shard is, write the report with: mixup-bert report {dir}"); return ErrorReport.Ok; }
            if (parse.GetValue(noReport)) { Console.WriteLine($"grid finished; write the report with: mixup-bert report {dir}"); return ErrorReport.Ok; }
            return ReportCommand.WriteAndShow(dir, command);
        });
        return cmd;
    }

    /// <summary>One run of the grid: skipped when finished, resumed when started, started over when it saved nothing.</summary>
    private static int RunOne(PlannedRun run, string progress, RunInputs inputs, TrainOptionSet set, ParseResult parse, string backend, int device = 0, string? prefix = null)
    {
        var status = ExperimentPlan.Status(run);
        if (status != RunStatus.New && ExperimentPlan.Differences(run, inputs) is { Count: > 0 } differences)
        {
            Console.Error.WriteLine($"error: {run.Folder} holds a run made with other settings than this grid's: {string.Join(", ", differences)}. " +
                "Its results would be mixed with the grid's: give another --output, or remove that folder to rerun it");
            return ErrorReport.BadInput;
        }
        if (status == RunStatus.Finished) { Console.WriteLine($"{progress} {run.Name}: finished, skipped"); return ErrorReport.Ok; }
        if (status == RunStatus.New && Directory.Exists(run.Folder)) Directory.Delete(run.Folder, recursive: true); // an interrupted first epoch: start over
        Console.WriteLine($"{progress} {run.Name}{(status == RunStatus.Started ? ": resuming" : "")}{(prefix != null ? $" on device {device}" : "")}");
        int code = TrainCommand.Run(inputs, run.Options, run.Folder, resume: status == RunStatus.Started, backend, parse.GetValue(set.Precision)!, parse.GetValue(set.Threads),
            set.ReadCheckpointEvery(parse), device: device, consolePrefix: prefix);
        return code == ErrorReport.Ok && ConsoleInterrupt.Token.IsCancellationRequested ? ErrorReport.Interrupted : code;
    }

    private static int RunInOrder(List<PlannedRun> runs, RunInputs inputs, TrainOptionSet set, ParseResult parse, string backend)
    {
        for (int i = 0; i < runs.Count; i++)
        {
            int code = RunOne(runs[i], $"[{i + 1}/{runs.Count}]", inputs, set, parse, backend);
            if (code != ErrorReport.Ok) return code;
        }
        return ErrorReport.Ok;
    }

    /// <summary>
    /// The runs on several CUDA devices at once, one worker thread per device (<see cref="DeviceScheduler"/>),
    /// each run's console lines prefixed with its device and folder. The model and dataset are resolved once
    /// first, so that no two runs download the same file into the Hub cache at once.
    /// </summary>
    private static int RunOnDevices(List<PlannedRun> runs, List<int> devices, RunInputs inputs, TrainOptionSet set, ParseResult parse, string backend)
    {
        try
        {
            using var observer = new ConsoleObserver(null);
            // each run then makes its own client: a Hub still silent costs each run one timeout, said in its train.log
            using var hub = new HubClient(HubSettings.FromEnvironment(), observer.Download, warn: w => observer.Line($"warning: {w}"));
            Sources.ResolveModel(inputs.Model, hub, inputs.Revision, ConsoleInterrupt.Token);
            Sources.ResolveDataset(inputs.Dataset, hub, inputs.DatasetRevisionOrDefault, ConsoleInterrupt.Token);
        }
        catch (HubException e) { Console.Error.WriteLine($"error: {e.Message}"); return ErrorReport.BadInput; }
        catch (OperationCanceledException) { return ErrorReport.Interrupted; }
        if (parse.GetValue(set.Threads) is int t && t > 0) WorkerPool.ConfigureShared(t); // once, before the workers start
        _ = WorkerPool.Shared;
        int started = 0;
        var outcome = DeviceScheduler.Run(runs, devices,
            (run, device) => RunOne(run, $"[{Interlocked.Increment(ref started)}/{runs.Count}]", inputs, set, parse, backend, device, $"[gpu {device}] {run.Name}: "),
            stop: () => ConsoleInterrupt.Token.IsCancellationRequested);
        var codes = outcome.Codes.Where(c => c is not null and not ErrorReport.Ok).Select(c => c!.Value).ToList();
        if (outcome.NotStarted > 0) Console.Error.WriteLine($"{outcome.NotStarted} of {runs.Count} runs were not started");
        return codes.Contains(ErrorReport.Interrupted) || (outcome.NotStarted > 0 && codes.Count == 0) ? ErrorReport.Interrupted : codes.DefaultIfEmpty(ErrorReport.Ok).First();
    }
}
