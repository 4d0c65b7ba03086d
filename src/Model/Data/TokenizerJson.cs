using System.Text.Json;

namespace MixupBert.Model.Data;

/// <summary>
/// tokenizer.json, the file `tokenizers` saves (and transformers' fast tokenizer loads first): for a BERT
/// tokenizer, its WordPiece vocabulary (used where the folder has no vocab.txt) and its added tokens with
/// their ids and flags. The normalizer's flags are not taken from it: transformers' BertTokenizerFast
/// rebuilds the normalizer from tokenizer_config.json's do_lower_case, strip_accents and
/// tokenize_chinese_chars. A tokenizer that is not BERT's (another model type, normalizer or
/// pre-tokenizer, another subword prefix or word length) is refused, naming the file and the field.
/// </summary>
internal static class TokenizerJson
{
    public const string FileName = "tokenizer.json";

    public sealed record Contents(Dictionary<string, int>? Vocab, IReadOnlyList<AddedTokenSpec> AddedTokens);

    public static Contents Read(string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new DataFormatException($"{path}: not valid JSON: {e.Message}", e); }
        catch (IOException e) { throw new DataFormatException($"{path}: cannot be read: {e.Message}", e); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new DataFormatException($"{path}: expected a JSON object (a tokenizer), found {root.ValueKind}");
            Require(path, root, "normalizer", "BertNormalizer");
            // clean_text false keeps control characters inside words (transformers 4.x keeps the file's flag): not implemented
            if (root.GetProperty("normalizer").TryGetProperty("clean_text", out var clean) && clean.ValueKind == JsonValueKind.False)
                throw new DataFormatException($"{path}: \"normalizer.clean_text\" is false; this tool's BertNormalizer always cleans the text (drops control characters, maps whitespace to spaces), as BERT's tokenizers do by default");
            RequireBertTemplate(path, root);
            Require(path, root, "pre_tokenizer", "BertPreTokenizer");
            Require(path, root, "model", "WordPiece");
            var model = root.GetProperty("model");
            Dictionary<string, int>? vocab = null;
            if (Str(model, "continuing_subword_prefix") is string prefix && prefix != "##")
                throw new DataFormatException($"{path}: \"model.continuing_subword_prefix\" is \"{prefix}\"; BERT's WordPiece (all this tool implements) uses \"##\"");
            if (model.TryGetProperty("max_input_chars_per_word", out var max) && !(max.ValueKind == JsonValueKind.Number && max.TryGetInt32(out int m) && m == WordPiece.MaxInputCharsPerWord))
                throw new DataFormatException($"{path}: \"model.max_input_chars_per_word\" is {max.GetRawText()}; this tool's WordPiece takes words of up to {WordPiece.MaxInputCharsPerWord}");
            if (model.TryGetProperty("vocab", out var v))
            {
                if (v.ValueKind != JsonValueKind.Object) throw new DataFormatException($"{path}: \"model.vocab\" must be an object of token: id");
                vocab = new Dictionary<string, int>(StringComparer.Ordinal);
                foreach (var entry in v.EnumerateObject())
                {
                    if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                        throw new DataFormatException($"{path}: \"model.vocab\": the token \"{entry.Name}\" must map to a token id, not {entry.Value.GetRawText()}");
                    vocab[entry.Name] = id;
                }
            }
            return new Contents(vocab, AddedTokens(path, root));
        }
    }

    /// <summary>"added_tokens": [{id, content, single_word, lstrip, rstrip, normalized, special}], as saved.</summary>
    private static List<AddedTokenSpec> AddedTokens(string path, JsonElement root)
    {
        var tokens = new List<AddedTokenSpec>();
        if (!root.TryGetProperty("added_tokens", out var list) || list.ValueKind == JsonValueKind.Null) return tokens;
        if (list.ValueKind != JsonValueKind.Array) throw new DataFormatException($"{path}: \"added_tokens\" must be an array");
        int i = 0;
        foreach (var t in list.EnumerateArray())
        {
            string where = $"added_tokens[{i++}]";
            if (t.ValueKind != JsonValueKind.Object || Str(t, "content") is not string content
                || !t.TryGetProperty("id", out var idElement) || !idElement.TryGetInt32(out int id) || id < 0)
                throw new DataFormatException($"{path}: \"{where}\" must be an object with \"id\" and \"content\"");
            bool special = Bool(t, "special") ?? false;
            tokens.Add(new AddedTokenSpec(content, id, Bool(t, "normalized") ?? !special, Bool(t, "single_word") ?? false, AddedTokenSource.TokenizerJson));
        }
        return tokens;
    }

    /// <summary>The post-processor must add what this tool adds: [CLS] A [SEP] with type 0, and for a pair B [SEP] with
    /// type 1 (BertProcessing, or TemplateProcessing of that shape); another template, or none, would give other ids.</summary>
    private static void RequireBertTemplate(string path, JsonElement root)
    {
        root.TryGetProperty("post_processor", out var post);
        string? type = post.ValueKind == JsonValueKind.Object ? Str(post, "type") : null;
        if (type == "BertProcessing") return;
        static string Piece(JsonElement p) =>
            p.TryGetProperty("SpecialToken", out var s) ? $"{Str(s, "id")}:{s.GetProperty("type_id")}"
            : p.TryGetProperty("Sequence", out var q) ? $"${Str(q, "id")}:{q.GetProperty("type_id")}" : p.GetRawText();
        string Template(string key) => post.TryGetProperty(key, out var t) && t.ValueKind == JsonValueKind.Array ? string.Join(" ", t.EnumerateArray().Select(Piece)) : "(none)";
        if (type == "TemplateProcessing")
        {
            string single = Template("single"), pair = Template("pair");
            if (single == "[CLS]:0 $A:0 [SEP]:0" && pair == "[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1") return;
            throw new DataFormatException($"{path}: \"post_processor\" adds \"{single}\" (pair: \"{pair}\"); this tool adds BERT's [CLS] $A [SEP] ([CLS] $A [SEP] $B:1 [SEP]:1) and no other template");
        }
        throw new DataFormatException($"{path}: \"post_processor\" is {(type != null ? $"\"{type}\"" : post.ValueKind == JsonValueKind.Undefined ? "missing" : post.GetRawText())}, " +
            "not BERT's [CLS] $A [SEP] (BertProcessing or TemplateProcessing), which this tool adds");
    }

    /// <summary>root[key].type must be <paramref name="type"/>.</summary>
    private static void Require(string path, JsonElement root, string key, string type)
    {
        root.TryGetProperty(key, out var part);
        string? actual = part.ValueKind == JsonValueKind.Object ? Str(part, "type") : null;
        if (actual != type)
            throw new DataFormatException($"{path}: \"{key}\" is {(actual != null ? $"\"{actual}\"" : part.ValueKind == JsonValueKind.Undefined ? "missing" : part.GetRawText())}, not BERT's \"{type}\" (all this tool implements)");
    }

    private static string? Str(JsonElement e, string key) => e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    private static bool? Bool(JsonElement e, string key) => e.TryGetProperty(key, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;
}
