using System.Text.Json.Nodes;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;

namespace MixupBert.Model.Training;

/// <summary>
/// One option of <see cref="TrainOptions"/>, described once: its command-line name, its key in
/// args.json, its help text, and how to read it from and set it on a TrainOptions (whose initial
/// values are the defaults). The command line (src/Tool) and args.json are both built from
/// <see cref="TrainOptions.All"/>.
/// </summary>
public abstract class TrainOption(string name, string key, string description)
{
    /// <summary>The command-line name, e.g. "--epochs".</summary>
    public string Name { get; } = name;
    /// <summary>The key in args.json, e.g. "epochs".</summary>
    public string Key { get; } = key;
    public string Description { get; } = description;

    public abstract JsonNode? ToJson(TrainOptions options);

    /// <summary>The option set to its args.json value; a value of the wrong type names the file and key.</summary>
    public abstract TrainOptions FromJson(TrainOptions options, JsonNode? value, string file);
}

public sealed class TrainOption<T>(string name, string key, string description, Func<TrainOptions, T> get, Func<TrainOptions, T, TrainOptions> with)
    : TrainOption(name, key, description)
{
    public T Get(TrainOptions options) => get(options);
    public TrainOptions With(TrainOptions options, T value) => with(options, value);
    public T Default => get(new TrainOptions());

    public override JsonNode? ToJson(TrainOptions options) => get(options) switch
    {
        null => null,
        MixMode mode => TrainOptions.ModeName(mode),
        int[] layers => new JsonArray(layers.Select(k => (JsonNode)k).ToArray()),
        int i => i,
        float f => f,
        bool b => b,
        string s => s,
        var other => throw new NotSupportedException($"no args.json form for {other.GetType().Name}"),
    };

    public override TrainOptions FromJson(TrainOptions options, JsonNode? value, string file) => with(options, Parse(value, file));

    private T Parse(JsonNode? node, string file)
    {
        var type = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        object? parsed = (node, type) switch
        {
            (null, _) when Nullable.GetUnderlyingType(typeof(T)) != null || type == typeof(int[]) => null, // an option that may be unset
            (JsonValue v, _) when type == typeof(int) && v.TryGetValue(out int i) => i,
            (JsonValue v, _) when type == typeof(float) && v.TryGetValue(out float f) => f,
            (JsonValue v, _) when type == typeof(bool) && v.TryGetValue(out bool b) => b,
            (JsonValue v, _) when type == typeof(string) && v.TryGetValue(out string? s) => s,
            (JsonValue v, _) when type == typeof(MixMode) && v.TryGetValue(out string? s) && Enum.TryParse(s, ignoreCase: true, out MixMode m) => m,
            (JsonArray a, _) when type == typeof(int[]) && a.All(x => x is JsonValue v && v.TryGetValue(out int _)) => a.Select(x => x!.GetValue<int>()).ToArray(),
            _ => throw new DataFormatException($"{file}: '{Key}' should be {Kind(type)}, not {node?.ToJsonString() ?? "null"}"),
        };
        return (T)parsed!;
    }

    private static string Kind(Type type) =>
        type == typeof(int) ? "an integer" : type == typeof(float) ? "a number" : type == typeof(bool) ? "true or false"
        : type == typeof(MixMode) ? "a mode (baseline, mixup, tmix, senmix or ssmix)" : type == typeof(int[]) ? "a list of integers" : "a string";
}
