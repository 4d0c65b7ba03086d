using System.Text.Json;
using System.Text.RegularExpressions;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using MixupBert.Model.Data;

namespace MixupBert.Model.Training;

/// <summary>Per-bin counts, accuracy and mean confidence of a reliability diagram.</summary>
public sealed record ReliabilityBins(int[] Count, double[] Accuracy, double[] Confidence);

/// <summary>summary.json: the outcome of a finished run, written once at its end.</summary>
public sealed record RunSummary(string Mode, string Metric, int BestEpoch, ClassificationMetrics Validation, ClassificationMetrics? Test,
    double[] EpochSeconds, double TrainSamplesPerSecond, int TrainExamples, string Backend, string[] Labels,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ReliabilityBins? TestReliability = null)
{
    /// <summary>The epochs trained: --epochs, or more where --min-steps asked for more steps; null in summaries from before it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Epochs { get; init; }
    /// <summary>The optimizer steps of the run (epochs × batches per epoch); null in summaries from before --min-steps.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? Steps { get; init; }
}

/// <summary>
/// state/trainer_state.json, the manifest of the committed checkpoint: the trainer's counters (what the
/// trainer saves), then the files of the checkpoint and their SHA-256 (what <see cref="RunFolder"/> adds
/// when it commits them).
/// </summary>
public sealed record TrainerState(int EpochsCompleted, int BatchesInEpoch, long GlobalStep, int BestEpoch,
    double? BestScore, // null before the first evaluation (JSON has no infinities)
    ClassificationMetrics? BestValidation, double[] EpochSeconds, double EpochElapsedSeconds, double LossSum, int LossCount,
    double LastGradNorm, double TrainSeconds, long TrainSamples,
    string? Metric) // absent in states from before --metric was recorded
{
    public string? Parameters { get; init; }
    public string? Optimizer { get; init; }
    /// <summary>The best model's weights (relative to state/); null before the first epoch ended.</summary>
    public string? Best { get; init; }
    /// <summary>The length of metrics.jsonl at the commit; a resume cuts it back to this.</summary>
    public long MetricsBytes { get; init; }
    /// <summary>Every file the checkpoint names, in the order written; null in states of older versions.</summary>
    [JsonPropertyName("sha256")]
    public Dictionary<string, string>? Sha256 { get; init; }
}

/// <summary>A line of metrics.jsonl: the mean training loss since the previous such line.</summary>
public sealed record TrainLossRecord(double Loss, double GradNorm, float LearningRate, double Epoch, long Step);

/// <summary>A line of metrics.jsonl: an evaluation, its metrics' keys prefixed with the split ("eval_loss", "test_f1").</summary>
public sealed record EvalRecord(string Prefix, ClassificationMetrics Metrics, int Epoch, long Step)
{
    public const string Validation = "eval", Test = "test";
}

/// <summary>The lines of metrics.jsonl, by kind.</summary>
public sealed record MetricsLog(List<TrainLossRecord> TrainLoss, List<EvalRecord> Evaluations);

/// <summary>
/// How the run records are written as JSON: snake_case keys in the records' declaration order, the
/// files indented, metrics.jsonl one compact object a line (Python's json.loads reads them all).
/// </summary>
public static partial class RunJson
{
    public static string Write(RunSummary summary) => JsonSerializer.Serialize(summary, RunJsonContext.Default.RunSummary);
    public static string Write(TrainerState state) => JsonSerializer.Serialize(state, RunJsonContext.Default.TrainerState);
    public static string Write(ClassificationMetrics metrics) => JsonSerializer.Serialize(metrics, RunJsonContext.Default.ClassificationMetrics);

    public static RunSummary ReadSummary(string json, string file = "summary.json") => Read(json, file, RunJsonContext.Default.RunSummary);
    public static TrainerState ReadTrainerState(string json, string file = "trainer_state.json") => Read(json, file, RunJsonContext.Default.TrainerState);

    private static T Read<T>(string json, string file, JsonTypeInfo<T> type)
    {
        try { return JsonSerializer.Deserialize(json, type) ?? throw new DataFormatException($"{file}: expected a JSON object, not null"); }
        catch (JsonException e) { throw Wrong(e, json, file, typeof(T)); }
    }

    /// <summary>
    /// A record file that does not read as <paramref name="root"/>, in the user's words: the file, the key and what it
    /// should hold ("a number (float32)", "an integer"), where System.Text.Json's message names .NET types
    /// ('System.Single', or the record that holds the key).
    /// </summary>
    private static DataFormatException Wrong(JsonException e, string json, string file, Type root, Func<string, string>? keyInFile = null)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(json); }
        catch (JsonException syntax) { return new DataFormatException($"{file}: not valid JSON ({syntax.Message})", e); }
        // e.Path: "$.validation.accuracy", "$.epoch_seconds[1]", "$.sha256['step-3/model.safetensors']" (a key with
        // '.', '/', spaces or quotes in brackets, its quotes escaped)
        Type? type = root;
        var keys = new List<string>();
        foreach (Match step in PathStep().Matches(e.Path ?? "$"))
        {
            if (step.Groups["index"].Success)
            {
                node = node is JsonArray a && int.TryParse(step.Groups["index"].Value, out int i) && i < a.Count ? a[i] : null;
                type = type?.IsArray == true ? type.GetElementType() : null;
                if (keys.Count > 0) keys[^1] += $"[{step.Groups["index"].Value}]";
                continue;
            }
            string name = step.Groups["name"].Success ? step.Groups["name"].Value : step.Groups["quoted"].Value.Replace("\\'", "'");
            keys.Add(name);
            node = node is JsonObject o ? o[name] : null;
            type = type == null ? null : Member(type, name);
        }
        string key = keys.Count == 0 ? "" : (keyInFile ?? (k => k))(string.Join(".", keys));
        string value = node?.ToJsonString() ?? "null";
        if (value.Length > 40) value = value[..40] + "…";
        return new DataFormatException(keys.Count == 0 ? $"{file}: should be a JSON object, not {value}"
            : $"{file}: '{key}' should be {Kind(type)}, not {value}", e);
    }

    /// <summary>One step of a System.Text.Json error path: .name, ['quoted name'] or [index].</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"\.(?<name>[^.\[]+)|\['(?<quoted>(?:[^'\\]|\\.)*)'\]|\[(?<index>\d+)\]")]
    private static partial System.Text.RegularExpressions.Regex PathStep();

    /// <summary>The type of the member with JSON name <paramref name="name"/>; a dictionary's values for any name.</summary>
    private static Type? Member(Type type, string name)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        var info = RunJsonContext.Default.GetTypeInfo(type);
        if (info?.Kind == JsonTypeInfoKind.Dictionary) return type.GetGenericArguments()[1];
        return info?.Properties.FirstOrDefault(p => p.Name == name)?.PropertyType;
    }

    private static string Kind(Type? type)
    {
        type = type == null ? null : Nullable.GetUnderlyingType(type) ?? type;
        return type == typeof(float) ? "a number (float32)" : type == typeof(double) ? "a number" : type == typeof(int) || type == typeof(long) ? "an integer"
            : type == typeof(string) ? "a string" : type == typeof(bool) ? "true or false" : type?.IsArray == true ? "a list" : type != null ? "an object"
            : "a value of another type";
    }

    public static string Line(TrainLossRecord r) => JsonSerializer.SerializeToNode(r, RunJsonContext.Default.TrainLossRecord)!.ToJsonString();

    public static string Line(EvalRecord r)
    {
        var line = new JsonObject();
        foreach (var (key, value) in JsonSerializer.SerializeToNode(r.Metrics, RunJsonContext.Default.ClassificationMetrics)!.AsObject())
            line[$"{r.Prefix}_{key}"] = value?.DeepClone();
        line["epoch"] = r.Epoch;
        line["step"] = r.Step;
        return line.ToJsonString();
    }

    /// <summary>One line of metrics.jsonl: a training-loss record (it has "loss") or an evaluation.</summary>
    public static object ParseLine(string line, string file = "metrics.jsonl")
    {
        var o = JsonNode.Parse(line)!.AsObject();
        if (o.ContainsKey("loss"))
        {
            try { return JsonSerializer.Deserialize(o, RunJsonContext.Default.TrainLossRecord)!; }
            catch (JsonException e) { throw Wrong(e, line, file, typeof(TrainLossRecord)); }
        }
        string prefix = o.First(kv => kv.Key.EndsWith("_loss", StringComparison.Ordinal)).Key[..^"_loss".Length];
        var metrics = new JsonObject();
        foreach (var (key, value) in o)
            if (key.StartsWith(prefix + "_", StringComparison.Ordinal)) metrics[key[(prefix.Length + 1)..]] = value?.DeepClone();
        ClassificationMetrics m;
        try { m = JsonSerializer.Deserialize(metrics, RunJsonContext.Default.ClassificationMetrics)!; }
        catch (JsonException e) { throw Wrong(e, metrics.ToJsonString(), file, typeof(ClassificationMetrics), k => $"{prefix}_{k}"); }
        T Count<T>(string key) => o[key] is JsonValue v && v.TryGetValue(out T? n) ? n
            : throw new DataFormatException($"{file}: '{key}' should be an integer, not {o[key]?.ToJsonString() ?? "null"}");
        return new EvalRecord(prefix, m, Count<int>("epoch"), Count<long>("step"));
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(RunSummary))]
[JsonSerializable(typeof(TrainerState))]
[JsonSerializable(typeof(TrainLossRecord))]
[JsonSerializable(typeof(ClassificationMetrics))]
internal sealed partial class RunJsonContext : JsonSerializerContext;
