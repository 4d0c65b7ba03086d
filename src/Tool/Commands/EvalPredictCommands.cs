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
        var datasetRevision = new Option<string?>("--dataset-revision") { Description = "Hub revision of the dataset (default: the run's for the run's dataset, else main)" };
        var textColumn = new Option<string?>("--text-column") { Description = "Text column (default: the training run's)" };
        var pairColumn = new Option<string?>("--text-pair-column") { Description = "Second text's column, for a model trained on sentence pairs (default: the training run's)" };
        var labelColumn = new Option<string?>("--label-column") { Description = "Label column (default: the training run's)" };
        var batchSize = new Option<int>("--batch-size") { Description = "Evaluation batch size", DefaultValueFactory = _ => 64 };
        var maxLength = new Option<int?>("--max-length") { Description = "Truncation length (default: the training run's, else 128)" };
        var backend = new Option<string>("--backend") { Description = "auto, cpu or cuda", DefaultValueFactory = _ => "auto" };
        var json = new Option<string?>("--json") { Description = "Also write the metrics to this JSON file" };
        var threads = ThreadsOption();
        var precision = PrecisionOption();
        var cmd = new Command("eval", "Evaluate a fine-tuned checkpoint on a dataset split") { checkpoint, split, dataset, datasetRevision, textColumn, pairColumn, labelColumn, batchSize, maxLength, backend, precision, json, threads };
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
            string ds = parse.GetValue(dataset) ?? Sources.Recorded(inputs.Dataset, recorded?.DatasetPath);
            if (recorded == null && parse.GetValue(dataset) == null)
                Console.Error.WriteLine($"warning: {dir} has no args.json (it was not trained by mixup-bert): evaluating on the default dataset, {ds}; --dataset names another");
            string tc = parse.GetValue(textColumn) ?? inputs.TextColumn;
            string lc = parse.GetValue(labelColumn) ?? inputs.LabelColumn;
            string? pc = parse.GetValue(pairColumn) ?? inputs.TextPairColumn;
            int maxLen = parse.GetValue(maxLength) ?? options.MaxLength;
            if (pc != null && maxLen < 3) throw new ArgumentException($"--max-length {maxLen} leaves no room for a sentence pair's [CLS] and two [SEP] (3 at least)");
            string which = parse.GetValue(split)!;
            var (config, parameters, _) = BertCheckpoint.Load(dir);
            if (pc != null) FineTuning.RequireSegments(config, dir);
            using var hub = new HubClient(HubSettings.FromEnvironment(), warn: w => Console.Error.WriteLine($"warning: {w}"));
            // the run's revision for the run's dataset
            var files = Sources.ResolveDataset(ds, hub, parse.GetValue(datasetRevision) ?? (ds == inputs.Dataset ? inputs.DatasetRevisionOrDefault : "main"));
            var data = TextClassificationData.Load(files, tc, lc, seed: options.Seed, labelNames: config.Id2Label, pairColumn: pc);
            foreach (var warning in data.Warnings) Console.Error.WriteLine($"warning: {warning}");
            var part = which switch
            {
                "train" => data.Train, "validation" => data.Validation,
                "test" => data.Test ?? throw new DataFormatException($"dataset '{ds}' has no labelled test split"),
                _ => throw new ArgumentException($"--split must be train, validation or test, not '{which}'"),
            };
            var encoder = TextEncoder.FromModelFolder(dir);
            var encoded = EncodedSplit.Of(encoder, part, Math.Min(maxLen, config.MaxPositionEmbeddings));
            var (engine, why) = Backends.Create(parse.GetValue(backend)!, config, parameters, parse.GetValue(precision)!);
            using var _e = engine;
            Console.Error.WriteLine($"backend: {engine.Backend} ({why})");
            var m = Evaluation.Run(engine, new Batcher(encoded, part.Labels, config.NumLabels, encoder.PadId), part.Labels, parse.GetValue(batchSize));
            Console.WriteLine($"{which} ({m.Count} examples): loss {m.Loss:F4} accuracy {m.Accuracy:F4} f1 {m.F1:F4} precision {m.Precision:F4} recall {m.Recall:F4} ece {m.Ece:F4}");
            if (parse.GetValue(json) is string path) RunFolder.WriteAtomic(path, RunJson.Write(m));
            return ErrorReport.Ok;
        });
        return cmd;
    }

    public static Command BuildPredict()
    {
        var checkpoint = new Option<DirectoryInfo>("--checkpoint") { Description = "A fine-tuned model folder (a train run's output)", Required = true };
        var texts = new Argument<string[]>("text") { Description = "Texts to classify (none: one text per line of standard input); a sentence pair is its two texts with a tab between", Arity = ArgumentArity.ZeroOrMore };
        var pairs = new Option<bool?>("--pairs") { Description = "Each text is a sentence pair, its halves separated by a tab (default: whether the checkpoint's training run read a --text-pair-column)" };
        var maxLength = new Option<int?>("--max-length") { Description = "Truncation length (default: the training run's, else 128)" };
        var batchSize = new Option<int>("--batch-size") { Description = "Texts per forward pass", DefaultValueFactory = _ => 64 };
        var backend = new Option<string>("--backend") { Description = "auto, cpu or cuda", DefaultValueFactory = _ => "auto" };
        var threads = ThreadsOption();
        var precision = PrecisionOption();
        var cmd = new Command("predict", "Classify texts with a fine-tuned checkpoint; JSON lines out (label and probabilities)") { checkpoint, texts, pairs, maxLength, batchSize, backend, precision, threads };
        cmd.SetAction(parse =>
        {
            string dir = parse.GetValue(checkpoint)!.FullName;
            CheckCommon(dir, parse.GetValue(batchSize), parse.GetValue(maxLength) ?? 128, parse.GetValue(threads));
            // defaults: the training run's, as eval's (a checkpoint from Python has no args.json: single texts, 128)
            var recorded = RecordedRun(dir);
            bool pairsGiven = parse.GetValue(pairs) ?? recorded?.Inputs.TextPairColumn != null;
            int truncation = parse.GetValue(maxLength) ?? recorded?.Options.MaxLength ?? 128;
            if (pairsGiven && truncation < 3) throw new ArgumentException("--max-length must be 3 or more for sentence pairs ([CLS] and two [SEP])");
            var (config, parameters, _) = BertCheckpoint.Load(dir);
            if (pairsGiven) FineTuning.RequireSegments(config, dir);
            var encoder = TextEncoder.FromModelFolder(dir);
            var (engine, _) = Backends.Create(parse.GetValue(backend)!, config, parameters, parse.GetValue(precision)!);
            using var _e = engine;
            var given = parse.GetValue(texts) ?? [];
            IEnumerable<(string Text, string Where)> input = given.Length > 0 ? given.Select((t, i) => (t, $"text argument {i + 1}")) : ReadLines(Console.In);
            int L = config.NumLabels, size = parse.GetValue(batchSize), maxLen = Math.Min(truncation, config.MaxPositionEmbeddings);
            foreach (var chunk in input.Chunk(size))
            {
                // a blank line is the empty pair, as it is the empty text: every input line gets its output line
                var split = new LabeledSplit("predict", "input", chunk.Select(c => !pairsGiven ? c.Text : string.IsNullOrWhiteSpace(c.Text) ? "" : FirstHalf(c.Text, c.Where)).ToArray(), new int[chunk.Length])
                {
                    Pairs = pairsGiven ? chunk.Select(c => string.IsNullOrWhiteSpace(c.Text) ? "" : c.Text[(c.Text.IndexOf('\t') + 1)..]).ToArray() : null,
                };
                var encoded = EncodedSplit.Of(encoder, split, maxLen);
                var batch = new Batcher(encoded, split.Labels, L, encoder.PadId).Make(Enumerable.Range(0, chunk.Length).ToArray());
                var probs = new float[chunk.Length * L];
                engine.Evaluate(batch, probs);
                for (int i = 0; i < chunk.Length; i++)
                {
                    var p = probs.AsSpan(i * L, L);
                    int best = 0;
                    for (int c = 1; c < L; c++) if (p[c] > p[best]) best = c;
                    var dist = new JsonObject();
                    for (int c = 0; c < L; c++) dist[config.Id2Label[c]] = Math.Round(p[c], 6);
                    var line = new JsonObject { ["text"] = split.Texts[i] };
                    if (split.Pairs != null) line["text_pair"] = split.Pairs[i];
                    line["label"] = config.Id2Label[best];
                    line["probabilities"] = dist;
                    Console.WriteLine(line.ToJsonString());
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

    /// <summary>The lines of <paramref name="reader"/>, each with its line number for messages. A blank line is a text
    /// too (as an empty argument is): each input line gets its output line, so the two stay aligned.</summary>
    private static IEnumerable<(string Text, string Where)> ReadLines(TextReader reader)
    {
        int number = 0;
        while (reader.ReadLine() is string line)
        {
            number++;
            yield return (line, $"line {number} of standard input");
        }
    }

    /// <summary>The checkpoint's training run (args.json), for predict's defaults; null for a checkpoint without one
    /// (one from Python). An args.json that cannot be read is said, not fatal: predict needs nothing else from it.</summary>
    private static RunArgs? RecordedRun(string dir)
    {
        try { return new RunFolder(dir).ReadArgs(); }
        catch (DataFormatException e)
        {
            Console.Error.WriteLine($"warning: {e.Message}; the defaults are used: single texts (--pairs true reads sentence pairs), --max-length 128");
            return null;
        }
    }

    /// <summary>A sentence pair's first text: what comes before its first tab, which must be there.</summary>
    private static string FirstHalf(string pair, string where)
    {
        int tab = pair.IndexOf('\t');
        if (tab < 0) throw new DataFormatException($"{where}: a sentence pair needs its two texts separated by a tab (the model was trained on pairs; --pairs false reads single texts)");
        return pair[..tab];
    }
}
