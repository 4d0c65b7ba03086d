using System.CommandLine;
using MixupBert.Tool.Commands;

namespace MixupBert.Tool;

public static class Program
{
    public static int Main(string[] args) => BuildRoot().Parse(args).Invoke();

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("mixup-bert: fine-tune BERT for text classification with embedding mixup, on a from-scratch BERT engine.");
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
