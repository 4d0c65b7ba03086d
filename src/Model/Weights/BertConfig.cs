using System.Text.Json;
using System.Text.Json.Nodes;

namespace MixupBert.Model.Weights;

/// <summary>
/// The fields of a Hugging Face BERT config.json that this engine uses. Unknown keys are ignored;
/// values the engine cannot honour (another activation, relative positions) are rejected.
/// </summary>
public sealed record BertConfig
{
    public int VocabSize { get; init; } = 30522;
    public int HiddenSize { get; init; } = 768;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 12;
    public int IntermediateSize { get; init; } = 3072;
    public string HiddenAct { get; init; } = "gelu";
    public float LayerNormEps { get; init; } = 1e-12f;
    public int MaxPositionEmbeddings { get; init; } = 512;
    public int TypeVocabSize { get; init; } = 2;
    public float HiddenDropoutProb { get; init; } = 0.1f;
    public float AttentionProbsDropoutProb { get; init; } = 0.1f;
    /// <summary>HF's classifier_dropout; null means hidden_dropout_prob, as in transformers.</summary>
    public float? ClassifierDropout { get; init; }
    public float InitializerRange { get; init; } = 0.02f;
    public int PadTokenId { get; init; }
    public int NumLabels => Id2Label.Count;
    /// <summary>Label names by class id; its length is num_labels.</summary>
    public IReadOnlyList<string> Id2Label { get; init; } = ["LABEL_0", "LABEL_1"];

    public float ClassifierDropoutProb => ClassifierDropout ?? HiddenDropoutProb;

    /// <summary>The same config with every dropout probability set to 0.</summary>
    public BertConfig WithoutDropout() => this with { HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0, ClassifierDropout = 0 };

    /// <summary>Labels a config may declare; more is a corrupt or mistaken config, not a classifier.</summary>
    public const int MaxLabels = 10_000;
    /// <summary>Encoder layers a config may declare (the deepest BERTs have a few dozen).</summary>
    public const int MaxLayers = 1_000;
    /// <summary>config.json files are a few kilobytes; anything this large is not one.</summary>
    private const long MaxConfigBytes = 16 << 20;

    private static readonly JsonDocumentOptions StrictJson = new() { AllowDuplicateProperties = false };

    public static BertConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ModelFormatException($"{path}: file not found");
        JsonNode? root;
        try
        {
            if (new FileInfo(path).Length > MaxConfigBytes) throw new ModelFormatException($"{path}: {new FileInfo(path).Length} bytes is too large for a config.json");
            root = JsonNode.Parse(File.ReadAllText(path), documentOptions: StrictJson); // ReadAllText drops a BOM
        }
        catch (JsonException e) { throw new ModelFormatException($"{path}: not valid JSON: {e.Message}", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ModelFormatException($"{path}: cannot read the file: {e.Message}", e); }
        if (root is not JsonObject obj) throw new ModelFormatException($"{path}: expected a JSON object");
        return FromJson(obj, path);
    }

    /// <summary>Reads the fields with their JSON types checked: a string, float or array where an
    /// integer belongs is an error naming the key, never a default or a crash.</summary>
    public static BertConfig FromJson(JsonObject o, string source)
    {
        var f = new ConfigFields(o, source);
        string? modelType = f.Str("model_type", null);
        if (modelType != null && modelType != "bert")
            throw new ModelFormatException($"{source}: model_type '{modelType}' is not supported (only 'bert')");
        string act = f.Str("hidden_act", "gelu")!;
        if (act != "gelu")
            throw new ModelFormatException($"{source}: hidden_act '{act}' is not supported: this engine implements BERT's exact erf GELU ('gelu') only");
        string pos = f.Str("position_embedding_type", "absolute")!;
        if (pos != "absolute")
            throw new ModelFormatException($"{source}: position_embedding_type '{pos}' is not supported (only 'absolute')");

        int vocab = f.Int("vocab_size", 30522, 1, int.MaxValue);
        var c = new BertConfig
        {
            VocabSize = vocab,
            HiddenSize = f.Int("hidden_size", 768, 1, int.MaxValue),
            NumHiddenLayers = f.Int("num_hidden_layers", 12, 1, MaxLayers),
            NumAttentionHeads = f.Int("num_attention_heads", 12, 1, int.MaxValue),
            IntermediateSize = f.Int("intermediate_size", 3072, 1, int.MaxValue),
            HiddenAct = act,
            LayerNormEps = f.Float("layer_norm_eps", 1e-12f),
            MaxPositionEmbeddings = f.Int("max_position_embeddings", 512, 1, int.MaxValue),
            TypeVocabSize = f.Int("type_vocab_size", 2, 1, int.MaxValue),
            HiddenDropoutProb = f.Float("hidden_dropout_prob", 0.1f),
            AttentionProbsDropoutProb = f.Float("attention_probs_dropout_prob", 0.1f),
            ClassifierDropout = f.NullableFloat("classifier_dropout"),
            InitializerRange = f.Float("initializer_range", 0.02f),
            // null is what transformers writes for "no padding token"; BERT pads with 0 then
            PadTokenId = f.IsNull("pad_token_id") ? 0 : f.Int("pad_token_id", 0, 0, vocab - 1),
            Id2Label = ReadLabels(o, f, source),
        };
        c.Validate(source);
        return c;
    }

    /// <summary>id2label when it is there (transformers lets it override num_labels), else num_labels generic names.</summary>
    private static string[] ReadLabels(JsonObject o, ConfigFields f, string source)
    {
        int declared = f.Int("num_labels", 2, 1, MaxLabels);
        if (!o.TryGetPropertyValue("id2label", out var node) || node is null) return GenericLabels(declared);
        if (node is not JsonObject map) throw new ModelFormatException($"{source}: 'id2label' must be an object mapping ids to names, got {Shorten(node.ToJsonString())}");
        if (map.Count == 0) return GenericLabels(declared);
        if (map.Count > MaxLabels) throw new ModelFormatException($"{source}: 'id2label' has {map.Count} labels, more than {MaxLabels}");
        var labels = new string[map.Count];
        foreach (var (key, value) in map)
        {
            if (!int.TryParse(key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id) || id >= map.Count)
                throw new ModelFormatException($"{source}: id2label key '{key}' is not an id in 0..{map.Count - 1}");
            if (labels[id] != null) throw new ModelFormatException($"{source}: id2label names id {id} twice");
            labels[id] = value is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>()
                : throw new ModelFormatException($"{source}: id2label['{key}'] must be a string (a label name), got {Shorten(value?.ToJsonString() ?? "null")}");
        }
        return labels;
    }

    private static string[] GenericLabels(int n) => Enumerable.Range(0, n).Select(i => $"LABEL_{i}").ToArray();

    internal static string Shorten(string json) => json.Length <= 40 ? json : json[..40] + "...";

    public void Validate(string source)
    {
        void Positive(int v, string key) { if (v <= 0) throw new ModelFormatException($"{source}: {key} must be positive, got {v}"); }
        Positive(VocabSize, "vocab_size"); Positive(HiddenSize, "hidden_size"); Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads"); Positive(IntermediateSize, "intermediate_size");
        Positive(MaxPositionEmbeddings, "max_position_embeddings"); Positive(TypeVocabSize, "type_vocab_size");
        if (NumHiddenLayers > MaxLayers) throw new ModelFormatException($"{source}: num_hidden_layers {NumHiddenLayers} is more than {MaxLayers}");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new ModelFormatException($"{source}: hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        foreach (var (p, key) in new[] { (HiddenDropoutProb, "hidden_dropout_prob"), (AttentionProbsDropoutProb, "attention_probs_dropout_prob"), (ClassifierDropoutProb, "classifier_dropout") })
            if (!(p >= 0f && p < 1f)) throw new ModelFormatException($"{source}: {key} must be in [0, 1), got {p}");
        if (!(LayerNormEps > 0f && LayerNormEps < 1f)) throw new ModelFormatException($"{source}: layer_norm_eps must be in (0, 1), got {LayerNormEps}");
        if (!(InitializerRange >= 0f && float.IsFinite(InitializerRange))) throw new ModelFormatException($"{source}: initializer_range must be a finite number, 0 or more, got {InitializerRange}");
        if (PadTokenId < 0 || PadTokenId >= VocabSize) throw new ModelFormatException($"{source}: pad_token_id {PadTokenId} is not a token id (0..{VocabSize - 1})");
        if (Id2Label.Count < 1) throw new ModelFormatException($"{source}: num_labels must be at least 1");
        if (Id2Label.Count > MaxLabels) throw new ModelFormatException($"{source}: {Id2Label.Count} labels, more than {MaxLabels}");
        ModelSize.RequireFits(this, source);
    }

    /// <summary>The config.json that Python transformers loads as BertForSequenceClassification.</summary>
    public JsonObject ToJson()
    {
        var id2label = new JsonObject();
        var label2id = new JsonObject();
        for (int i = 0; i < Id2Label.Count; i++) { id2label[i.ToString()] = Id2Label[i]; label2id[Id2Label[i]] = i; }
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray("BertForSequenceClassification"),
            ["model_type"] = "bert",
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["intermediate_size"] = IntermediateSize,
            ["hidden_act"] = HiddenAct,
            ["hidden_dropout_prob"] = HiddenDropoutProb,
            ["attention_probs_dropout_prob"] = AttentionProbsDropoutProb,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["type_vocab_size"] = TypeVocabSize,
            ["initializer_range"] = InitializerRange,
            ["layer_norm_eps"] = LayerNormEps,
            ["pad_token_id"] = PadTokenId,
            ["position_embedding_type"] = "absolute",
            ["classifier_dropout"] = ClassifierDropout is float f ? f : null,
            ["num_labels"] = NumLabels,
            ["id2label"] = id2label,
            ["label2id"] = label2id,
            ["problem_type"] = "single_label_classification",
        };
        return o;
    }

    public void Save(string path)
    {
        string tmp = path + ".tmp";
        File.WriteAllText(tmp, ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, path, overwrite: true);
    }
}

/// <summary>Typed reads of config.json keys; every wrong type or range is a <see cref="ModelFormatException"/> naming the key.</summary>
internal sealed class ConfigFields(JsonObject o, string source)
{
    public bool IsNull(string key) => o.TryGetPropertyValue(key, out var n) && n is null;

    public int Int(string key, int fallback, int min, int max)
    {
        if (!o.TryGetPropertyValue(key, out var n)) return fallback;
        if (!TryInteger(n, out long v)) throw Wrong(key, "an integer", n);
        if (v < min || v > max)
            throw new ModelFormatException($"{source}: '{key}' must be in {min}..{max}, got {v}");
        return (int)v;
    }

    public float Float(string key, float fallback) =>
        o.TryGetPropertyValue(key, out var n) ? ToFloat(key, n) : fallback;

    /// <summary>A number or null (transformers' "not set").</summary>
    public float? NullableFloat(string key) =>
        o.TryGetPropertyValue(key, out var n) && n is not null ? ToFloat(key, n) : null;

    public string? Str(string key, string? fallback)
    {
        if (!o.TryGetPropertyValue(key, out var n)) return fallback;
        if (n is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        throw Wrong(key, "a string", n);
    }

    private float ToFloat(string key, JsonNode? n)
    {
        if (n is not JsonValue v || v.GetValueKind() != JsonValueKind.Number) throw Wrong(key, "a number", n);
        double d = v.TryGetValue(out double x) ? x : v.TryGetValue(out float fl) ? fl : v.TryGetValue(out int i) ? i : double.NaN;
        if (!double.IsFinite(d) || Math.Abs(d) > float.MaxValue) throw Wrong(key, "a finite number", n);
        return (float)d;
    }

    /// <summary>An integer literal (1e9 and 12.0 are floats in JSON, as Python reads them).</summary>
    private static bool TryInteger(JsonNode? n, out long value)
    {
        value = 0;
        if (n is not JsonValue v || v.GetValueKind() != JsonValueKind.Number) return false;
        if (v.TryGetValue(out JsonElement e)) return e.TryGetInt64(out value) && !e.GetRawText().AsSpan().ContainsAny('.', 'e', 'E');
        if (v.TryGetValue(out long l)) { value = l; return true; }
        if (v.TryGetValue(out int i)) { value = i; return true; }
        return false;
    }

    private ModelFormatException Wrong(string key, string expected, JsonNode? got) =>
        new($"{source}: '{key}' must be {expected}, got {BertConfig.Shorten(got?.ToJsonString() ?? "null")}");
}
