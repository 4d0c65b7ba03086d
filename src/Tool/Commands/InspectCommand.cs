using System.CommandLine;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;

namespace MixupBert.Tool.Commands;

/// <summary>`mixup-bert inspect --model DIR`: loads a checkpoint and says what it holds and how it was mapped.</summary>
public static class InspectCommand
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "A model folder with config.json and model.safetensors", Required = true };
        var cmd = new Command("inspect", "Load a BERT checkpoint and report its configuration and tensor mapping") { model };
        cmd.SetAction(parse =>
        {
            var dir = parse.GetValue(model)!;
            try
            {
                var (config, parameters, report) = BertCheckpoint.Load(dir.FullName);
                Console.WriteLine($"{dir.FullName}");
                Console.WriteLine($"  layers {config.NumHiddenLayers}, hidden {config.HiddenSize}, heads {config.NumAttentionHeads}, intermediate {config.IntermediateSize}, vocab {config.VocabSize}, labels {config.NumLabels}");
                Console.WriteLine($"  parameters {parameters.Length:N0}");
                foreach (var (ours, theirs) in report.SourceNames.Take(3)) Console.WriteLine($"  mapped   {theirs} -> {ours}");
                if (report.SourceNames.Count > 3) Console.WriteLine($"  mapped   ... {report.SourceNames.Count} names in all");
                foreach (var n in report.Initialized) Console.WriteLine($"  initialised (not in the checkpoint) {n}");
                foreach (var n in report.Ignored) Console.WriteLine($"  ignored  {n}");
                foreach (var n in report.Unexpected) Console.WriteLine($"  unexpected (not used) {n}");
                return ErrorReport.Ok;
            }
            catch (ModelFormatException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return ErrorReport.BadInput;
            }
        });
        return cmd;
    }
}
