using System.CommandLine;
using MixupBert.Model.Bert;
using MixupBert.Model.Experiments;
using MixupBert.Model.Training;

namespace MixupBert.Tool.Commands;

/// <summary>
/// `mixup-bert compare`: the grid mode × seed × train size with identical settings per seed, one run
/// folder each, finished runs skipped and interrupted ones resumed, then `report`.
/// </summary>
public static class CompareCommand
{
    public static Command Build()
    {
        var set = new TrainOptionSet();
        var modes = new Option<string>("--modes") { Description = "Comma-separated modes: baseline, mixup, tmix, senmix", DefaultValueFactory = _ => "baseline,mixup" };
        var seeds = new Option<int>("--seeds") { Description = "Seeds per cell: --seed, --seed + 1, ...", DefaultValueFactory = _ => 5 };
        var sizes = new Option<string>("--train-sizes") { Description = "Comma-separated train sizes: all, N (stratified examples) or N/class", DefaultValueFactory = _ => "all" };
        var output = new Option<string?>("--output") { Description = "Experiment folder (default experiments/<timestamp>); run the same command again to continue an interrupted grid" };
        var noReport = new Option<bool>("--no-report") { Description = "Only run the grid (write the report later with `mixup-bert report`)" };
        var cmd = new Command("compare", "Run baseline and mixup modes over seeds and train sizes, then write the report");
        set.AddTo(cmd);
        cmd.Options.Add(modes); cmd.Options.Add(seeds); cmd.Options.Add(sizes); cmd.Options.Add(output); cmd.Options.Add(noReport);
        cmd.SetAction(parse =>
        {
            TrainOptions template;
            List<MixMode> modeList;
            List<TrainSize> sizeList;
            try
            {
                template = set.Read(parse);
                modeList = parse.GetValue(modes)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(TrainOptionSet.ParseMode).Distinct().ToList();
                sizeList = parse.GetValue(sizes)!.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(TrainSize.Parse).ToList();
                if (parse.GetValue(seeds) < 1) throw new ArgumentException("--seeds must be at least 1");
            }
            catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}"); return ErrorReport.BadInput; }
            string dir = Path.GetFullPath(parse.GetValue(output) ?? Path.Combine("experiments", DateTime.Now.ToString("yyyyMMdd-HHmmss")));
            var inputs = set.ReadInputs(parse);
            var plan = ExperimentPlan.Plan(dir, modeList, parse.GetValue(seeds), sizeList, template);
            Console.WriteLine($"experiment {dir}: {plan.Count} runs ({modeList.Count} modes × {parse.GetValue(seeds)} seeds × {sizeList.Count} train sizes)");
            for (int i = 0; i < plan.Count; i++)
            {
                var run = plan[i];
                var status = ExperimentPlan.Status(run);
                if (status == RunStatus.Finished) { Console.WriteLine($"[{i + 1}/{plan.Count}] {run.Size} seed {run.Seed} {TrainOptions.ModeName(run.Mode)}: finished, skipped"); continue; }
                if (status == RunStatus.New && Directory.Exists(run.Folder)) Directory.Delete(run.Folder, recursive: true); // an interrupted first epoch: start over
                Console.WriteLine($"[{i + 1}/{plan.Count}] {run.Size} seed {run.Seed} {TrainOptions.ModeName(run.Mode)}{(status == RunStatus.Started ? ": resuming" : "")}");
                int code = TrainCommand.Run(inputs, run.Options, run.Folder, resume: status == RunStatus.Started, parse.GetValue(set.Backend)!, parse.GetValue(set.Tf32)!, parse.GetValue(set.Threads));
                if (code == ErrorReport.Interrupted || (code == ErrorReport.Ok && ConsoleInterrupt.Token.IsCancellationRequested))
                {
                    Console.Error.WriteLine($"interrupted: run the same command with --output {dir} to continue");
                    return ErrorReport.Interrupted;
                }
                if (code != ErrorReport.Ok) return code;
            }
            if (parse.GetValue(noReport)) { Console.WriteLine($"grid finished; write the report with: mixup-bert report {dir}"); return ErrorReport.Ok; }
            return ReportCommand.WriteAndShow(dir, "mixup-bert " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)));
        });
        return cmd;
    }
}
