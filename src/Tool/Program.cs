using System.CommandLine;
using MixupBert.Tool.Commands;

namespace MixupBert.Tool;

public static class Program
{
    /// <summary>Every command takes --verbose: stack traces with error messages.</summary>
    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Show the stack trace with an error message", Recursive = true };

    public static int Main(string[] args)
    {
        var parse = BuildRoot().Parse(args);
        bool verbose = parse.GetValue(Verbose);
        if (parse.Errors.Count > 0)
        {
            // a misspelt option or a value of the wrong type is bad input like any other: exit 2
            foreach (var error in parse.Errors) Console.Error.WriteLine($"error: {error.Message}");
            Console.Error.WriteLine("(mixup-bert --help lists the commands, mixup-bert COMMAND --help their options)");
            return ErrorReport.BadInput;
        }
        try
        {
            // exceptions come to ErrorReport, not to System.CommandLine's handler (a stack trace and exit 1)
            return Stopped(parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }));
        }
        catch (Exception e)
        {
            return Stopped(ErrorReport.Exit(e, verbose, Console.Error));
        }
    }

    /// <summary>A command stopped by a signal exits as the shell reports that signal: 130 for Ctrl-C, 143 for SIGTERM.</summary>
    private static int Stopped(int code) => code == ErrorReport.Interrupted ? ConsoleInterrupt.ExitCode : code;

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("mixup-bert: fine-tune BERT for text classification with embedding mixup, on a from-scratch BERT engine.");
        root.Options.Add(Verbose);
        root.Subcommands.Add(TrainCommand.Build());
        root.Subcommands.Add(CompareCommand.Build());
        root.Subcommands.Add(ReportCommand.Build());
        root.Subcommands.Add(EvalPredictCommands.BuildEval());
        root.Subcommands.Add(EvalPredictCommands.BuildPredict());
        root.Subcommands.Add(EnvCommand.Build());
        root.Subcommands.Add(InspectCommand.Build());
        root.Subcommands.Add(ConvertCommand.Build());
        root.Subcommands.Add(BenchCommand.Build());
        root.Subcommands.Add(SelfTestCommand.Build());
        return root;
    }
}
