using System.Text.Json.Nodes;
using MixupBert.Model.Data;

namespace MixupBert.Model.Training;

/// <summary>Where a run's inputs come from; the defaults are the command line's. <paramref name="TextPairColumn"/>:
/// the column of each example's second text, for sentence-pair classification (null: single texts).
/// <paramref name="Revision"/> is the model's, and the dataset's unless <paramref name="DatasetRevision"/> is given
/// (a dataset's refs/convert/parquet is no branch of a model).</summary>
public sealed record RunInputs(string Model = "google-bert/bert-base-cased", string Dataset = "cornell-movie-review-data/rotten_tomatoes",
    string Revision = "main", string TextColumn = "text", string LabelColumn = "label", string? TextPairColumn = null, string? DatasetRevision = null)
{
    /// <summary>The revision the dataset is read at.</summary>
    public string DatasetRevisionOrDefault => DatasetRevision ?? Revision;
}

/// <summary>
/// args.json: the inputs as given and as resolved, the labels, every option of <see cref="TrainOptions.All"/>
/// and the backend; enough to rerun, what --resume continues with and where eval takes its defaults.
/// Python reads it too, so its keys and their order stay as they are.
/// </summary>
public sealed record RunArgs(RunInputs Inputs, string ModelFolder, IReadOnlyDictionary<string, IReadOnlyList<string>> DatasetFiles, string[] Labels,
    TrainOptions Options, int TrainExamples, string Backend)
{
    /// <summary>A local --model (--dataset) as an absolute path, where the run was given a local one (null for a Hub id):
    /// the inputs are recorded as given, relative to where the run started, and this finds them from anywhere.</summary>
    public string? ModelPath { get; init; }
    public string? DatasetPath { get; init; }

    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["model"] = Inputs.Model, ["model_folder"] = ModelFolder, ["dataset"] = Inputs.Dataset, ["revision"] = Inputs.Revision,
            // a split's file as a string (as args.json has always had it), several files (shards) as a list
            ["dataset_files"] = new JsonObject(DatasetFiles.Select(kv => KeyValuePair.Create(kv.Key,
                kv.Value.Count == 1 ? (JsonNode?)kv.Value[0] : new JsonArray(kv.Value.Select(f => (JsonNode?)f).ToArray())))),
            ["text_column"] = Inputs.TextColumn, ["label_column"] = Inputs.LabelColumn,
        };
        // only a run that has them, so that another run's args.json stays as it has always been
        if (Inputs.TextPairColumn != null) o["text_pair_column"] = Inputs.TextPairColumn;
        if (Inputs.DatasetRevision != null) o["dataset_revision"] = Inputs.DatasetRevision;
        o["labels"] = new JsonArray(Labels.Select(l => (JsonNode)l).ToArray());
        foreach (var option in TrainOptions.All)
        {
            if (option == TrainOptions.LoggingStepsOption) o["train_examples"] = TrainExamples; // where args.json has always had it
            o[option.Key] = option.ToJson(Options);
        }
        o["backend"] = Backend;
        if (ModelPath != null) o["model_path"] = ModelPath;
        if (DatasetPath != null) o["dataset_path"] = DatasetPath;
        return o;
    }

    /// <summary>
    /// The record in <paramref name="args"/> (read from <paramref name="file"/>). A key that is absent or
    /// null takes its default, as in an args.json from before the option existed; a value of the wrong
    /// type names the file and the key.
    /// </summary>
    public static RunArgs FromJson(JsonObject args, string file)
    {
        JsonNode? Given(string key) => args[key];
        DataFormatException Wrong(string key, string kind) => new($"{file}: '{key}' should be {kind}, not {args[key]!.ToJsonString()}");
        string Text(JsonNode? node, string key) => node is JsonValue v && v.TryGetValue(out string? s) ? s : throw Wrong(key, "a string");
        string TextOr(string key, string fallback) => Given(key) is JsonNode n ? Text(n, key) : fallback;

        var d = new RunInputs();
        var inputs = new RunInputs(TextOr("model", d.Model), TextOr("dataset", d.Dataset), TextOr("revision", d.Revision),
            TextOr("text_column", d.TextColumn), TextOr("label_column", d.LabelColumn), Given("text_pair_column") is JsonNode pair ? Text(pair, "text_pair_column") : null,
            Given("dataset_revision") is JsonNode datasetRevision ? Text(datasetRevision, "dataset_revision") : null);
        var files = Given("dataset_files") switch
        {
            null => new Dictionary<string, IReadOnlyList<string>>(),
            JsonObject f => f.ToDictionary(kv => kv.Key, kv => kv.Value is JsonArray list
                ? (IReadOnlyList<string>)list.Select(n => Text(n, "dataset_files")).ToArray() : [Text(kv.Value, "dataset_files")]),
            _ => throw Wrong("dataset_files", "an object"),
        };
        var labels = Given("labels") switch
        {
            null => [],
            JsonArray a => a.Select(l => Text(l, "labels")).ToArray(),
            _ => throw Wrong("labels", "a list of strings"),
        };
        var options = new TrainOptions();
        foreach (var option in TrainOptions.All)
            if (Given(option.Key) is JsonNode value) options = option.FromJson(options, value, file);
        int trainExamples = Given("train_examples") switch
        {
            null => 0,
            JsonValue v when v.TryGetValue(out int n) => n,
            _ => throw Wrong("train_examples", "an integer"),
        };
        return new RunArgs(inputs, TextOr("model_folder", ""), files, labels, options, trainExamples, TextOr("backend", ""))
        {
            ModelPath = Given("model_path") is JsonNode modelPath ? Text(modelPath, "model_path") : null,
            DatasetPath = Given("dataset_path") is JsonNode datasetPath ? Text(datasetPath, "dataset_path") : null,
        };
    }
}
