using System.CommandLine;
using System.Text.Json.Nodes;
using MixupBert.Kernels.Cuda;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;
using MixupBert.Model.Hub;
using MixupBert.Model.Training;
using MixupBert.Model.Weights;

namespace MixupBert.Tool.Commands;

/// <summary>`mixup-bert eval` and `mixup-bert predict`: use a fine-tuned checkpoint.</summary>
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
        var cmd = new Command("eval", "Evaluate a fine-tuned checkpoint on a dataset split") { checkpoint, split, dataset, textColumn, labelColumn, batchSize, maxLength, backend, json };
        cmd.SetAction(parse => Guarded(() =>
        {
            string dir = parse.GetValue(checkpoint)!.FullName;
            var args = File.Exists(Path.Combine(dir, "args.json")) ? JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "args.json")))!.AsObject() : null;
            string ds = parse.GetValue(dataset) ?? args?["dataset"]?.GetValue<string>() ?? "cornell-movie-review-data/rotten_tomatoes";
            string tc = parse.GetValue(textColumn) ?? args?["text_column"]?.GetValue<string>() ?? "text";
            string lc = parse.GetValue(labelColumn) ?? args?["label_column"]?.GetValue<string>() ?? "label";
            int maxLen = parse.GetValue(maxLength) ?? args?["max_length"]?.GetValue<int>() ?? 128;
            string which = parse.GetValue(split)!;
            var (config, parameters, _) = BertCheckpoint.Load(dir);
            using var hub = new HubClient(HubSettings.FromEnvironment());
            var files = Sources.ResolveDataset(ds, hub);
            var data = TextClassificationData.Load(files, tc, lc, seed: args?["seed"]?.GetValue<int>() ?? 42, labelNames: config.Id2Label);
            var part = which switch
            {
                "train" => data.Train, "validation" => data.Validation,
                "test" => data.Test ?? throw new DataFormatException($"dataset '{ds}' has no test split"),
                _ => throw new ArgumentException($"--split must be train, validation or test, not '{which}'"),
            };
            var encoder = TextEncoder.FromModelFolder(dir);
            var ids = part.Texts.Select(t => encoder.Encode(t, Math.Min(maxLen, config.MaxPositionEmbeddings))).ToArray();
            var (engine, why) = Backends.Create(parse.GetValue(backend)!, config, parameters);
            using var _e = engine;
            Console.Error.WriteLine($"backend: {engine.Backend} ({why})");
            var m = Evaluation.Run(engine, new Batcher(ids, part.Labels, config.NumLabels, encoder.PadId), part.Labels, parse.GetValue(batchSize));
            Console.WriteLine($"{which} ({m.Count} examples): loss {m.Loss:F4} accuracy {m.Accuracy:F4} f1 {m.F1:F4} precision {m.Precision:F4} recall {m.Recall:F4} ece {m.Ece:F4}");
            if (parse.GetValue(json) is string path) File.WriteAllText(path, RunFolder.Json(Trainer.MetricsJson(m)));
            return 0;
        }));
        return cmd;
    }

    public static Command BuildPredict()
    {
        var checkpoint = new Option<DirectoryInfo>("--checkpoint") { Description = "A fine-tuned model folder (a train run's output)", Required = true };
        var texts = new Argument<string[]>("text") { Description = "Texts to classify (none: one text per line of standard input)", Arity = ArgumentArity.ZeroOrMore };
        var maxLength = new Option<int>("--max-length") { Description = "Truncation length", DefaultValueFactory = _ => 128 };
        var batchSize = new Option<int>("--batch-size") { Description = "Texts per forward pass", DefaultValueFactory = _ => 64 };
        var backend = new Option<string>("--backend") { Description = "auto, cpu or cuda", DefaultValueFactory = _ => "auto" };
        var cmd = new Command("predict", "Classify texts with a fine-tuned checkpoint; JSON lines out (label and probabilities)") { checkpoint, texts, maxLength, batchSize, backend };
        cmd.SetAction(parse => Guarded(() =>
        {
            string dir = parse.GetValue(checkpoint)!.FullName;
            var (config, parameters, _) = BertCheckpoint.Load(dir);
            var encoder = TextEncoder.FromModelFolder(dir);
            var (engine, _) = Backends.Create(parse.GetValue(backend)!, config, parameters);
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
            return 0;
        }));
        return cmd;
    }

    /// <summary>Runs a command body, turning the errors a user can act on into a message and an exit code.</summary>
    private static int Guarded(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (e is DataFormatException or ModelFormatException or HubException or ArgumentException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return TrainCommand.ExitBadInput;
        }
        catch (CudaUnavailableException e)
        {
            Console.Error.WriteLine($"no CUDA device: {e.Message}");
            return TrainCommand.ExitNoDevice;
        }
    }

    private static IEnumerable<string> ReadLines(TextReader reader)
    {
        while (reader.ReadLine() is string line)
            if (!string.IsNullOrWhiteSpace(line)) yield return line;
    }
}
