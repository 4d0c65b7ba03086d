using System.Globalization;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;
using MixupBert.Model.Hub;
using MixupBert.Model.Weights;

namespace MixupBert.Model.Training;

/// <summary>A run with every input resolved, read, checked and tokenized, before anything is written.</summary>
public sealed record PreparedRun(string ModelFolder, IReadOnlyDictionary<string, IReadOnlyList<string>> DatasetFiles, TextClassificationData Data,
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
        var files = Sources.ResolveDataset(inputs.Dataset, hub, inputs.DatasetRevisionOrDefault, out var classLabels, cancel);
        say($"model: {modelFolder}");
        say($"dataset: {string.Join(", ", files.Select(kv => $"{kv.Key} {kv.Value[0]}{(kv.Value.Count > 1 ? $" and {kv.Value.Count - 1} more" : "")}"))}");
        if (inputs.TextPairColumn != null && options.MaxLength < 3)
            throw new ArgumentException($"--max-length {options.MaxLength} leaves no room for a sentence pair's [CLS] and two [SEP] (3 at least)");
        var data = TextClassificationData.Load(files, inputs.TextColumn, inputs.LabelColumn, options.Seed, labelNames: fixedLabels, pairColumn: inputs.TextPairColumn,
            classLabels: classLabels);
        var train = data.TrainSubset(options.TrainSize, options.PerClass, options.Seed);
        say($"labels: {string.Join(", ", data.LabelNames)}; train {train.Count}{(train.Count != data.Train.Count ? $" of {data.Train.Count}" : "")}, " +
            $"validation {data.Validation.Count}{(data.ValidationFromTrain ? " (split off train)" : "")}, test {data.Test?.Count.ToString(CultureInfo.InvariantCulture) ?? "none"}");
        if (inputs.TextPairColumn != null) say($"sentence pairs: [CLS] {inputs.TextColumn} [SEP] {inputs.TextPairColumn} [SEP]");
        foreach (var warning in data.Warnings) say($"warning: {warning}");
        // an id far above the others (a typo, a stray -1 fixed by hand) makes classes that nothing trains or tests
        var seen = new bool[data.LabelNames.Length];
        foreach (int label in train.Labels) seen[label] = true; // the examples trained on (--train-size, --per-class)
        if (Enumerable.Range(0, seen.Length).Where(c => !seen[c]).ToArray() is { Length: > 0 } empty)
            say($"warning: {empty.Length} of the {seen.Length} classes have no train example ({string.Join(", ", empty.Take(10).Select(c => data.LabelNames[c]))}" +
                $"{(empty.Length > 10 ? ", ..." : "")}): the model still gets an output for each, and macro F1 averages over them");
        var (config, parameters, report) = BertCheckpoint.Load(modelFolder, data.LabelNames, options.Seed);
        if (inputs.TextPairColumn != null) RequireSegments(config, modelFolder);
        foreach (var n in report.Initialized) say($"initialised (not in the checkpoint): {n}");
        if (options.MixLayers?.Where(k => k < 1 || k > config.NumHiddenLayers).ToArray() is { Length: > 0 } outside)
            throw new ArgumentException($"--mix-layers {string.Join(',', outside)}: the model has {config.NumHiddenLayers} layers (mix after layer 1..{config.NumHiddenLayers})");
        if (options.PadTo is int pad && pad > config.MaxPositionEmbeddings)
            throw new ArgumentException($"padding length {pad} exceeds the model's max_position_embeddings {config.MaxPositionEmbeddings}");
        var encoder = TextEncoder.FromModelFolder(modelFolder);
        if (encoder.VocabSize > config.VocabSize)
            throw new ModelFormatException($"{modelFolder}: the tokenizer's ids go up to {encoder.VocabSize - 1} (vocab.txt and its added tokens) but config.json's vocab_size is {config.VocabSize}");
        if (options.MaxLength > config.MaxPositionEmbeddings)
            say($"warning: --max-length {options.MaxLength} is more than the model's max_position_embeddings: sequences are truncated at {config.MaxPositionEmbeddings}");
        var encoded = EncodedData.From(encoder, train, data, Math.Min(options.MaxLength, config.MaxPositionEmbeddings));
        return new PreparedRun(modelFolder, files, data, train, encoded, config, parameters, report, encoder);
    }

    /// <summary>Sentence pairs need a second segment embedding (token_type_id 1); a model with type_vocab_size 1 has none.</summary>
    public static void RequireSegments(BertConfig config, string modelFolder)
    {
        if (config.TypeVocabSize < 2)
            throw new ModelFormatException($"{Path.Combine(modelFolder, "config.json")}: type_vocab_size {config.TypeVocabSize} gives no embedding to a second text (token_type_id 1), so this model cannot read sentence pairs (--text-pair-column)");
    }

    /// <summary>args.json: the options and the resolved inputs, enough to rerun.</summary>
    public static RunArgs Args(RunInputs inputs, TrainOptions options, PreparedRun p, string backend) =>
        new(inputs, p.ModelFolder, p.DatasetFiles, p.Data.LabelNames, options, p.Train.Count, backend)
        {
            ModelPath = Sources.LocalPath(inputs.Model), DatasetPath = Sources.LocalPath(inputs.Dataset),
        };
}
