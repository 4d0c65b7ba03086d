using System.CommandLine;
using System.Text.Json.Nodes;
using MixupBert.Kernels.Cuda;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;
using MixupBert.Model.Hub;
using MixupBert.Model.Training;
using MixupBert.Model.Weights;

namespace MixupBert.Tool.Commands;

/// <summary>`mixup-bert eval` and `mixup-bert predict`: use a fine-tuned checkpoint. Errors go to <see cref="ErrorReport"/>.</summary>
public static class EvalPredictCommands
{
    public static Command BuildEval()
    {
        var checkpoint = new Option<DirectoryInfo>("--checkpoint") { Description = "A fine-tuned model folder (a train run's output)", Required = true };
        var split = new Option<string>("--split") { Description = "train, validation or test", DefaultValueFactory = _ => "test" };
        var dataset = new Option<string?>("--dataset") { Description = "Hub id or local path (default: the one the checkpoint was trained on)" };
        var textColumn = new Option<string?>("--text-column") { Description = "Text column (default: the training run's)" };
        var labelColumn = new Option<string?>("--label-column") { Description = "Label column (default: the training run's)" };
        var batchSize = new Option<int>("--batch-size") { Description = "Evaluation batch size", DefaultValueFactory = _ => 64 };
        var maxLength = new Option<int?>("--max-length") { Description = "Truncation length (default: the training run's, else 128)" };
        var backend = new Option<string>("--backend") { Description = "auto, cpu or cuda", DefaultValueFactory = _ => "auto" };
        var json = new Option<string?>("--json") { Description = "Also write the metrics to this JSON file" };
        var threads = ThreadsOption();
        var precision = PrecisionOption();
        var cmd = new Command("eval", "Evaluate a fine-tuned checkpoint on a dataset split") { checkpoint, split, dataset, textColumn, labelColumn, batchSize, maxLength, backend, precision, json, threads };
        cmd.SetAction(parse =>
        {
            string dir = parse.GetValue(checkpoint)!.FullName;
            CheckCommon(dir, parse.GetValue(batchSize), parse.GetValue(maxLength) ?? 128, parse.GetValue(threads));
            // the metrics file's folder must exist before minutes of evaluation, not after
            if (parse.GetValue(json) is string jsonPath && Path.GetDirectoryName(Path.GetFullPath(jsonPath)) is string jsonDir && !Directory.Exists(jsonDir))
                throw new ArgumentException($"--json {jsonPath}: the folder {jsonDir} does not exist");
            // defaults: the training run's (its args.json), else train's
            var recorded = new RunFolder(dir).ReadArgs();
            var (inputs, options) = (recorded?.Inputs ?? new RunInputs(), recorded?.Options ?? new TrainOptions());
            string ds = parse.GetValue(dataset) ?? inputs.Dataset;
            string tc = parse.GetValue(textColumn) ?? inputs.TextColumn;
            string lc = parse.GetValue(labelColumn) ?? inputs.LabelColumn;
            int maxLen = parse.GetValue(maxLength) ?? options.MaxLength;
            string which = parse.GetValue(split)!;
            var (config, parameters, _) = BertCheckpoint.Load(dir);
            using var hub = new HubClient(HubSettings.FromEnvironment());
            var files = Sources.ResolveDataset(ds, hub, ds == inputs.Dataset ? inputs.Revision : "main");   // the run's revision for the run's dataset
            var data = TextClassificationData.Load(files, tc, lc, seed: options.Seed, labelNames: config.Id2Label);
            foreach (var warning in data.Warnings) Console.Error.WriteLine($"warning: {warning}");
            var part = which switch
            {
                "train" => data.Train, "validation" => data.Validation,
                "test" => data.Test ?? throw new DataFormatException($"dataset '{ds}' has no labelled test split"),
                _ => throw new ArgumentException($"--split must be train, validation or test, not '{which}'"),
            };
            var encoder = TextEncoder.FromModelFolder(dir);
            var ids = part.Texts.Select(t => encoder.Encode(t, Math.Min(maxLen, config.MaxPositionEmbeddings))).ToArray();
            var (engine, why) = Backends.Create(parse.GetValue(backend)!, config, parameters, parse.GetValue(precision)!);
            using var _e = engine;
            Console.Error.WriteLine($"backend: {engine.Backend} ({why})");
            var m = Evaluation.Run(engine, new Batcher(ids, part.Labels, config.NumLabels, encoder.PadId), part.Labels, parse.GetValue(batchSize));
            Console.WriteLine($"{which} ({m.Count} examples): loss {m.Loss:F4} accuracy {m.Accuracy:F4} f1 {m.F1:F4} precision {m.Precision:F4} recall {m.Recall:F4} ece {m.Ece:F4}");
            if (parse.GetValue(json) is string path) RunFolder.WriteAtomic(path, RunJson.Write(m));
            return ErrorReport.Ok;
        });
        return cmd;
    }

    public static Command BuildPredict()
    {
        var checkpoint = new Option<DirectoryInfo>("--checkpoint") { Description = "A fine-tuned model folder (a train run's output)", Required = true };
        var texts = new Argument<string[]>("text") { Description = "Texts to classify (none: one text per line of standard input)", Arity = ArgumentArity.ZeroOrMore };
        var maxLength = new Option<int>("--max-length") { Description = "Truncation length", DefaultValueFactory = _ => 128 };
        var batchSize = new Option<int>("--batch-size") { Description = "Texts per forward pass", DefaultValueFactory = _ => 64 };
        var backend = new Option<string>("--backend") { Description = "auto, cpu or cuda", DefaultValueFactory = _ => "auto" };
        var threads = ThreadsOption();
        var precision = PrecisionOption();
        var cmd = new Command("predict", "Classify texts with a fine-tuned checkpoint; JSON lines out (label and probabilities)") { checkpoint, texts, maxLength, batchSize, backend, precision, threads };
        cmd.SetAction(parse =>
        {
            string dir = parse.GetValue(checkpoint)!.FullName;
            CheckCommon(dir, parse.GetValue(batchSize), parse.GetValue(maxLength), parse.GetValue(threads));
            var (config, parameters, _) = BertCheckpoint.Load(dir);
            var encoder = TextEncoder.FromModelFolder(dir);
            var (engine, _) = Backends.Create(parse.GetValue(backend)!, config, parameters, parse.GetValue(precision)!);
            using var _e = engine;
            var given = parse.GetValue(texts) ?? [];
            IEnumerable<string> input = given.Length > 0 ? given : ReadLines(Console.In);
            int L = config.NumLabels, size = parse.GetValue(batchSize), maxLen = Math.Min(parse.GetValue(maxLength), config.MaxPositionEmbeddings);
            foreach (var chunk in input.Chunk(size))
            {
                var ids = chunk.Select(t => encoder.Encode(t, maxLen)).ToArray();
                var batcher = new Batcher(ids, new int[ids.Length], L, encoder.PadId);
                var batch = batcher.Make(Enumerable.Range(0, ids.Length).ToArray());
                var probs = new float[ids.Length * L];
                engine.Evaluate(batch, probs);
                for (int i = 0; i < chunk.Length; i++)
                {
                    var p = probs.AsSpan(i * L, L);
                    int best = 0;
                    for (int c = 1; c < L; c++) if (p[c] > p[best]) best = c;
                    var dist = new JsonObject();
                    for (int c = 0; c < L; c++) dist[config.Id2Label[c]] = Math.Round(p[c], 6);
                    Console.WriteLine(new JsonObject { ["text"] = chunk[i], ["label"] = config.Id2Label[best], ["probabilities"] = dist }.ToJsonString());
                }
            }
            return ErrorReport.Ok;
        });
        return cmd;
    }

    private static Option<int?> ThreadsOption() => new("--threads") { Description = "CPU worker threads (default: all cores); results are reproducible for a given count" };

    private static Option<string> PrecisionOption()
    {
        var o = new Option<string>("--precision") { Description = Backends.PrecisionHelp, DefaultValueFactory = _ => "auto" };
        o.AcceptOnlyFromAmong("auto", "fp32", "tf32", "bf16");
        return o;
    }

    /// <summary>The options eval and predict share, checked before anything is loaded; --threads applied.</summary>
    private static void CheckCommon(string checkpointDir, int batchSize, int maxLength, int? threads)
    {
        if (!Directory.Exists(checkpointDir)) throw new ArgumentException($"--checkpoint {checkpointDir}: no such folder");
        if (batchSize is < 1 or > 1 << 16) throw new ArgumentException($"--batch-size must be in 1..65536, not {batchSize}");
        if (maxLength is < 2 or > 1 << 16) throw new ArgumentException($"--max-length must be in 2..65536 ([CLS] and [SEP] included), not {maxLength}");
        if (threads is int t)
        {
            if (t is < 1 or > 1024) throw new ArgumentException($"--threads must be in 1..1024, not {t}");
            Kernels.Cpu.WorkerPool.ConfigureShared(t);
        }
    }

    private static IEnumerable<string> ReadLines(TextReader reader)
    {
        while (reader.ReadLine() is string line)
            if (!string.IsNullOrWhiteSpace(line)) yield return line;
    }
}
