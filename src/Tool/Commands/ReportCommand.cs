using System.CommandLine;
using MixupBert.Model.Experiments;
using Spectre.Console;

namespace MixupBert.Tool.Commands;

/// <summary>`mixup-bert report EXPERIMENT_DIR`: report.md, runs.csv, timings.csv and figures from the finished runs
/// (whatever is there: a whole grid, some of its shards, an older compare), lr chosen on validation per cell.</summary>
public static class ReportCommand
{
    public static Command Build()
    {
        var dir = new Argument<DirectoryInfo>("experiment") { Description = "An experiment folder written by compare" };
        var cmd = new Command("report", "Write report.md, runs.csv, timings.csv and figures for an experiment folder (lr chosen per cell on validation)") { dir };
        cmd.SetAction(parse => WriteAndShow(parse.GetValue(dir)!.FullName, null));
        return cmd;
    }

    /// <summary>The console width the tables are laid out in when output goes to a file or pipe: wide enough for every row on one line.</summary>
    public const int RedirectedWidth = 1000;

    public static int WriteAndShow(string dir, string? command)
    {
        ReportOutcome outcome;
        if (!Directory.Exists(dir)) { Console.Error.WriteLine($"error: {dir}: no such experiment folder"); return ErrorReport.BadInput; }
        try { outcome = Report.Write(dir, command); }
        catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}"); return ErrorReport.BadInput; }
        // a pipe or a file has no width: at Spectre's fallback of 80 columns the cells would break numbers across lines
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = RedirectedWidth;
        foreach (var (size, rows) in outcome.Tables)
        {
            var table = new Table().Title($"train size {size}");
            foreach (var h in new[] { "mode", "α", "lr", "runs", "test acc", "test F1", "test ECE", "best val acc", "Δ acc", "95% CI", "p", "p Holm" }) table.AddColumn(h);
            foreach (var r in rows)
                table.AddRow(Markup.Escape(r.Mode), Markup.Escape(r.Alpha), r.LearningRate, r.Runs.ToString(), r.TestAccuracy, r.TestF1, r.TestEce, r.BestValidationAccuracy,
                    r.DeltaAccuracy, Markup.Escape(r.DeltaCi), r.PValue, r.HolmP);
            AnsiConsole.Write(table);
        }
        if (outcome.Missing.Count > 0)
            Console.WriteLine($"{outcome.Missing.Count} of {outcome.Planned} planned runs are missing (not finished); report.md lists them");
        Console.WriteLine($"wrote {Path.Combine(dir, "report.md")}, runs.csv, timings.csv and figures/");
        return ErrorReport.Ok;
    }
}
