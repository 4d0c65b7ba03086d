using System.CommandLine;
using MixupBert.Model.Experiments;
using Spectre.Console;

namespace MixupBert.Tool.Commands;

/// <summary>`mixup-bert report EXPERIMENT_DIR`: report.md, runs.csv and figures from the finished runs.</summary>
public static class ReportCommand
{
    public static Command Build()
    {
        var dir = new Argument<DirectoryInfo>("experiment") { Description = "An experiment folder written by compare" };
        var cmd = new Command("report", "Write report.md, runs.csv and figures for an experiment folder") { dir };
        cmd.SetAction(parse => WriteAndShow(parse.GetValue(dir)!.FullName, null));
        return cmd;
    }

    public static int WriteAndShow(string dir, string? command)
    {
        Dictionary<string, List<ReportRow>> tables;
        if (!Directory.Exists(dir)) { Console.Error.WriteLine($"error: {dir}: no such experiment folder"); return ErrorReport.BadInput; }
        try { tables = Report.Write(dir, command); }
        catch (ArgumentException e) { Console.Error.WriteLine($"error: {e.Message}"); return ErrorReport.BadInput; }
        foreach (var (size, rows) in tables)
        {
            var table = new Table().Title($"train size {size}");
            foreach (var h in new[] { "mode", "runs", "test acc", "test F1", "test ECE", "best val acc", "Δ acc", "95% CI", "p" }) table.AddColumn(h);
            foreach (var r in rows) table.AddRow(Markup.Escape(r.Mode), r.Runs.ToString(), r.TestAccuracy, r.TestF1, r.TestEce, r.BestValidationAccuracy, r.DeltaAccuracy, Markup.Escape(r.DeltaCi), r.PValue);
            AnsiConsole.Write(table);
        }
        Console.WriteLine($"wrote {Path.Combine(dir, "report.md")}, runs.csv and figures/");
        return ErrorReport.Ok;
    }
}
