using System.Globalization;
using System.Text.Json.Nodes;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;
using MixupBert.Model.Hub;
using MixupBert.Model.Weights;

namespace MixupBert.Model.Training;

/// <summary>Where a run's inputs come from.</summary>
public sealed record RunInputs(string Model, string Dataset, string Revision = "main", string TextColumn = "text", string LabelColumn = "label");

/// <summary>A run with every input resolved, read, checked and tokenized, before anything is written.</summary>
public sealed record PreparedRun(string ModelFolder, IReadOnlyDictionary<string, string> DatasetFiles, TextClassificationData Data,
    LabeledSplit Train, EncodedData Encoded, BertConfig Config, float[] Parameters, LoadReport LoadReport, TextEncoder Encoder);

/// <summary>
/// The steps of `train` between the command line and the loop: resolve the model and dataset
/// (local or Hub), read and check the data, load the checkpoint with the task's labels, tokenize.
/// Nothing is written to the output folder until all of it has succeeded.
/// </summary>
public static class FineTuning
{
    public static PreparedRun Prepare(RunInputs inputs, TrainOptions options, HubClient hub, Action<string> say, IReadOnlyList<string>? fixedLabels = null, CancellationToken cancel = default)
    {
        string modelFolder = Sources.ResolveModel(inputs.Model, hub, inputs.Revision, cancel);
        var files = Sources.ResolveDataset(inputs.Dataset, hub, inputs.Revision, cancel);
        say($"model: {modelFolder}");
        say($"dataset: {string.Join(", ", files.Select(kv => $"{kv.Key} {kv.Value}"))}");
        var data = TextClassificationData.Load(files, inputs.TextColumn, inputs.LabelColumn, options.Seed, labelNames: fixedLabels);
        var train = data.TrainSubset(options.TrainSize, options.PerClass, options.Seed);
        say($"labels: {string.Join(", ", data.LabelNames)}; train {train.Count}{(train.Count != data.Train.Count ? $" of {data.Train.Count}" : "")}, " +
            $"validation {data.Validation.Count}{(data.ValidationFromTrain ? " (split off train)" : "")}, test {data.Test?.Count.ToString(CultureInfo.InvariantCulture) ?? "none"}");
        foreach (var warning in data.Warnings) say($"warning: {warning}");
        var (config, parameters, report) = BertCheckpoint.Load(modelFolder, data.LabelNames, options.Seed);
        foreach (var n in report.Initialized) say($"initialised (not in the checkpoint): {n}");
        if (options.MixLayers?.Where(k => k < 1 || k > config.NumHiddenLayers).ToArray() is { Length: > 0 } outside)
            throw new ArgumentException($"--mix-layers {string.Join(',', outside)}: the model has {config.NumHiddenLayers} layers (mix after layer 1..{config.NumHiddenLayers})");
        if (options.PadTo is int pad && pad > config.MaxPositionEmbeddings)
            throw new ArgumentException($"padding length {pad} exceeds the model's max_position_embeddings {config.MaxPositionEmbeddings}");
        var encoder = TextEncoder.FromModelFolder(modelFolder);
        if (encoder.VocabSize > config.VocabSize)
            throw new ModelFormatException($"{modelFolder}: vocab.txt has {encoder.VocabSize} tokens but config.json's vocab_size is {config.VocabSize}");
        var encoded = EncodedData.From(encoder, train, data, Math.Min(options.MaxLength, config.MaxPositionEmbeddings));
        return new PreparedRun(modelFolder, files, data, train, encoded, config, parameters, report, encoder);
    }

    /// <summary>args.json: the options and the resolved inputs, enough to rerun.</summary>
    public static JsonObject Args(RunInputs inputs, TrainOptions o, PreparedRun p, string backend) => new()
    {
        ["model"] = inputs.Model, ["model_folder"] = p.ModelFolder, ["dataset"] = inputs.Dataset, ["revision"] = inputs.Revision,
        ["dataset_files"] = new JsonObject(p.DatasetFiles.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        ["text_column"] = inputs.TextColumn, ["label_column"] = inputs.LabelColumn,
        ["labels"] = new JsonArray(p.Data.LabelNames.Select(l => (JsonNode)l).ToArray()),
        ["mode"] = o.Mode.ToString().ToLowerInvariant(), ["epochs"] = o.Epochs, ["batch_size"] = o.BatchSize, ["eval_batch_size"] = o.EvalBatchSize,
        ["learning_rate"] = o.LearningRate, ["warmup_ratio"] = o.WarmupRatio, ["weight_decay"] = o.WeightDecay, ["max_grad_norm"] = o.MaxGradNorm,
        ["max_length"] = o.MaxLength, ["pad_to"] = o.PadTo, ["group_by_length"] = o.GroupByLength, ["seed"] = o.Seed, ["metric"] = o.Metric,
        ["alpha"] = o.Alpha, ["beta"] = o.Beta, ["lambda_per_example"] = o.LambdaPerExample, ["mix_prob"] = o.MixProbability,
        ["mix_layers"] = o.MixLayers != null ? new JsonArray(o.MixLayers.Select(k => (JsonNode)k).ToArray()) : null,
        ["train_size"] = o.TrainSize, ["per_class"] = o.PerClass, ["train_examples"] = p.Train.Count, ["logging_steps"] = o.LoggingSteps,
        ["backend"] = backend,
    };

    /// <summary>The inputs and options recorded in args.json (what --resume continues with).</summary>
    public static (RunInputs Inputs, TrainOptions Options, string[] Labels) FromArgs(JsonObject a)
    {
        T V<T>(string key) => a[key]!.GetValue<T>();
        T? N<T>(string key) where T : struct => a[key] is JsonNode n ? n.GetValue<T>() : null;
        var inputs = new RunInputs(V<string>("model"), V<string>("dataset"), V<string>("revision"), V<string>("text_column"), V<string>("label_column"));
        var options = new TrainOptions
        {
            Mode = Enum.Parse<MixMode>(V<string>("mode"), ignoreCase: true), Epochs = V<int>("epochs"), BatchSize = V<int>("batch_size"),
            EvalBatchSize = V<int>("eval_batch_size"), LearningRate = V<float>("learning_rate"), WarmupRatio = V<float>("warmup_ratio"),
            WeightDecay = V<float>("weight_decay"), MaxGradNorm = V<float>("max_grad_norm"), MaxLength = V<int>("max_length"), PadTo = N<int>("pad_to"),
            GroupByLength = V<bool>("group_by_length"), Seed = V<int>("seed"), Metric = V<string>("metric"), Alpha = V<float>("alpha"), Beta = V<float>("beta"),
            LambdaPerExample = V<bool>("lambda_per_example"), MixProbability = V<float>("mix_prob"),
            MixLayers = a["mix_layers"] is JsonArray layers ? layers.Select(x => x!.GetValue<int>()).ToArray() : null,
            TrainSize = N<int>("train_size"), PerClass = N<int>("per_class"), LoggingSteps = V<int>("logging_steps"),
        };
        return (inputs, options, a["labels"]!.AsArray().Select(l => l!.GetValue<string>()).ToArray());
    }
}
