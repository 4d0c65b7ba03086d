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

    public int HeadSize => HiddenSize / NumAttentionHeads;
    public float ClassifierDropoutProb => ClassifierDropout ?? HiddenDropoutProb;

    /// <summary>The same config with every dropout probability set to 0.</summary>
    public BertConfig WithoutDropout() => this with { HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0, ClassifierDropout = 0 };

    public static BertConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ModelFormatException($"{path}: file not found");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new ModelFormatException($"{path}: not valid JSON: {e.Message}", e); }
        if (root is not JsonObject obj) throw new ModelFormatException($"{path}: expected a JSON object");
        return FromJson(obj, path);
    }

    public static BertConfig FromJson(JsonObject o, string source)
    {
        int Int(string key, int fallback)
        {
            if (o[key] is not JsonNode n) return fallback;
            try { return n.GetValue<int>(); }
            catch (Exception e) when (e is FormatException or InvalidOperationException) { throw new ModelFormatException($"{source}: '{key}' must be an integer, got {n.ToJsonString()}"); }
        }
        float Float(string key, float fallback)
        {
            if (o[key] is not JsonNode n) return fallback;
            try { return (float)n.GetValue<double>(); }
            catch (Exception e) when (e is FormatException or InvalidOperationException) { throw new ModelFormatException($"{source}: '{key}' must be a number, got {n.ToJsonString()}"); }
        }
        string Str(string key, string fallback) => o[key] is JsonValue v && v.TryGetValue(out string? s) ? s : fallback;

        if (o["model_type"] is JsonValue mt && mt.TryGetValue(out string? modelType) && modelType != "bert")
            throw new ModelFormatException($"{source}: model_type '{modelType}' is not supported (only 'bert')");
        string act = Str("hidden_act", "gelu");
        if (act != "gelu")
            throw new ModelFormatException($"{source}: hidden_act '{act}' is not supported: this engine implements BERT's exact erf GELU ('gelu') only");
        string pos = Str("position_embedding_type", "absolute");
        if (pos != "absolute")
            throw new ModelFormatException($"{source}: position_embedding_type '{pos}' is not supported (only 'absolute')");

        float? classifierDropout = o["classifier_dropout"] is JsonNode cd && cd.GetValueKind() == JsonValueKind.Number ? (float)cd.GetValue<double>() : null;
        var labels = ReadLabels(o, source);
        var c = new BertConfig
        {
            VocabSize = Int("vocab_size", 30522),
            HiddenSize = Int("hidden_size", 768),
            NumHiddenLayers = Int("num_hidden_layers", 12),
            NumAttentionHeads = Int("num_attention_heads", 12),
            IntermediateSize = Int("intermediate_size", 3072),
            HiddenAct = act,
            LayerNormEps = Float("layer_norm_eps", 1e-12f),
            MaxPositionEmbeddings = Int("max_position_embeddings", 512),
            TypeVocabSize = Int("type_vocab_size", 2),
            HiddenDropoutProb = Float("hidden_dropout_prob", 0.1f),
            AttentionProbsDropoutProb = Float("attention_probs_dropout_prob", 0.1f),
            ClassifierDropout = classifierDropout,
            InitializerRange = Float("initializer_range", 0.02f),
            PadTokenId = Int("pad_token_id", 0),
            Id2Label = labels,
        };
        c.Validate(source);
        return c;
    }

    private static string[] ReadLabels(JsonObject o, string source)
    {
        if (o["id2label"] is JsonObject map && map.Count > 0)
        {
            var labels = new string[map.Count];
            foreach (var (key, value) in map)
            {
                if (!int.TryParse(key, out int id) || id < 0 || id >= map.Count)
                    throw new ModelFormatException($"{source}: id2label key '{key}' is not an id in 0..{map.Count - 1}");
                labels[id] = value?.GetValue<string>() ?? $"LABEL_{id}";
            }
            return labels;
        }
        int n = 2;
        if (o["num_labels"] is JsonNode nl) n = nl.GetValue<int>();
        if (n < 1) throw new ModelFormatException($"{source}: num_labels must be at least 1");
        return Enumerable.Range(0, n).Select(i => $"LABEL_{i}").ToArray();
    }

    public void Validate(string source)
    {
        void Positive(int v, string key) { if (v <= 0) throw new ModelFormatException($"{source}: {key} must be positive, got {v}"); }
        Positive(VocabSize, "vocab_size"); Positive(HiddenSize, "hidden_size"); Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads"); Positive(IntermediateSize, "intermediate_size");
        Positive(MaxPositionEmbeddings, "max_position_embeddings"); Positive(TypeVocabSize, "type_vocab_size");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new ModelFormatException($"{source}: hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        foreach (var (p, key) in new[] { (HiddenDropoutProb, "hidden_dropout_prob"), (AttentionProbsDropoutProb, "attention_probs_dropout_prob"), (ClassifierDropoutProb, "classifier_dropout") })
            if (!(p >= 0f && p < 1f)) throw new ModelFormatException($"{source}: {key} must be in [0, 1), got {p}");
        if (!(LayerNormEps > 0f)) throw new ModelFormatException($"{source}: layer_norm_eps must be positive");
        if (Id2Label.Count < 1) throw new ModelFormatException($"{source}: num_labels must be at least 1");
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
