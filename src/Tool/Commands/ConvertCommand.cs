using System.CommandLine;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;

namespace MixupBert.Tool.Commands;

/// <summary>
/// `mixup-bert convert --model DIR --output DIR [--labels a,b]`: rewrites any BERT checkpoint layout
/// (BertModel names, legacy gamma/beta, pre-training heads) as a BertForSequenceClassification
/// checkpoint that Python transformers loads without warnings.
/// </summary>
public static class ConvertCommand
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "A model folder with config.json (and model.safetensors unless --random-init)", Required = true };
        var output = new Option<DirectoryInfo>("--output") { Description = "Where to write config.json and model.safetensors", Required = true };
        var labels = new Option<string?>("--labels") { Description = "Comma-separated label names (their number sets num_labels)" };
        var randomInit = new Option<bool>("--random-init") { Description = "Ignore any weights: initialise every tensor from the config" };
        var seed = new Option<int>("--seed") { Description = "Seed of the initialisation of missing tensors", DefaultValueFactory = _ => 0 };
        var dtype = new Option<string>("--dtype") { Description = "Stored precision: f32, f16 or bf16 (half the size; loaded back as float32)", DefaultValueFactory = _ => "f32" };
        var cmd = new Command("convert", "Write a checkpoint as BertForSequenceClassification (HF names, safetensors)") { model, output, labels, randomInit, seed, dtype };
        cmd.SetAction(parse =>
        {
            var src = parse.GetValue(model)!.FullName;
            var dst = parse.GetValue(output)!.FullName;
            var names = parse.GetValue(labels)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            try
            {
                if (File.Exists(dst)) throw new ArgumentException($"--output {dst} is a file; convert writes a model folder there");
                BertConfig config;
                float[] parameters;
                if (parse.GetValue(randomInit))
                {
                    config = BertConfig.Load(Path.Combine(src, BertCheckpoint.ConfigFile));
                    if (names != null) config = config with { Id2Label = names };
                    parameters = BertCheckpoint.RandomInit(config, parse.GetValue(seed));
                    Console.WriteLine($"initialised all {new BertLayout(config).Tensors.Count} tensors from {src}/config.json");
                }
                else
                {
                    LoadReport report;
                    (config, parameters, report) = BertCheckpoint.Load(src, names, parse.GetValue(seed));
                    foreach (var n in report.Initialized) Console.WriteLine($"initialised (not in the checkpoint) {n}");
                    foreach (var n in report.Ignored) Console.WriteLine($"dropped (unused by classification) {n}");
                    foreach (var n in report.Unexpected) Console.WriteLine($"dropped (unknown) {n}");
                }
                BertCheckpoint.Save(dst, config, parameters, parse.GetValue(dtype)!.ToUpperInvariant());
                foreach (var f in Model.Data.TextEncoder.Files)
                    if (File.Exists(Path.Combine(src, f)) && Path.GetFullPath(src) != Path.GetFullPath(dst)) File.Copy(Path.Combine(src, f), Path.Combine(dst, f), overwrite: true);
                Console.WriteLine($"wrote {dst}/{BertCheckpoint.ConfigFile} and {dst}/{BertCheckpoint.WeightsFile} ({config.NumLabels} labels)");
                return ErrorReport.Ok;
            }
            catch (Exception e) when (e is ModelFormatException or ArgumentException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return ErrorReport.BadInput;
            }
        });
        return cmd;
    }
}
