using System.Text;
using System.Text.Json;

namespace MixupBert.Model.Data;

/// <summary>
/// BERT's tokenizer as transformers' BertTokenizerFast runs it (BertNormalizer, BertPreTokenizer,
/// WordPiece; see those classes for the reference code they follow), configured from a model folder's
/// vocab.txt and tokenizer_config.json the way transformers reads them: do_lower_case, strip_accents
/// (defaulting to do_lower_case), tokenize_chinese_chars, and the special tokens' names. Sequences
/// are [CLS] tokens [SEP], truncated to max_length. Special tokens written in the text itself (a
/// literal "[SEP]") become their ids, as the added vocabulary of `tokenizers` matches them: on the raw
/// text, case-sensitive, leftmost and then longest, before the pieces between them are normalized.
/// </summary>
public sealed class TextEncoder
{
    private readonly WordPiece wordPiece;
    private readonly bool stripAccents, spaceOutCjk;
    /// <summary>The special tokens matched in the text (those the vocabulary has), with their ids.</summary>
    private readonly (string Text, int Id)[] specialTokens;

    public int ClsId { get; }
    public int SepId { get; }
    public int PadId { get; }
    public int VocabSize { get; }
    public bool LowerCase { get; }

    private TextEncoder(BertVocab vocab, TokenizerSettings settings)
    {
        wordPiece = new WordPiece(vocab.Ids, vocab.Id(settings.UnkToken));
        ClsId = vocab.Id(settings.ClsToken); SepId = vocab.Id(settings.SepToken); PadId = vocab.Id(settings.PadToken);
        VocabSize = vocab.Size; LowerCase = settings.LowerCase;
        stripAccents = settings.StripAccents; spaceOutCjk = settings.SpaceOutCjk;
        specialTokens = settings.SpecialTokens
            .Where(t => t.Length > 0 && vocab.Ids.ContainsKey(t)).Distinct(StringComparer.Ordinal)
            .Select(t => (t, vocab.Ids[t])).ToArray();
    }

    public static TextEncoder FromModelFolder(string folder)
    {
        string vocabPath = Path.Combine(folder, "vocab.txt");
        if (!File.Exists(vocabPath)) throw new DataFormatException($"{folder}: no vocab.txt, so the text cannot be tokenized (a BERT model folder needs vocab.txt beside config.json)");
        var settings = TokenizerSettings.Read(Path.Combine(folder, "tokenizer_config.json"), Path.Combine(folder, "special_tokens_map.json"));
        return new TextEncoder(BertVocab.Load(vocabPath), settings);
    }

    /// <summary>The text's word pieces, without [CLS] and [SEP] and not truncated.</summary>
    public List<int> Tokenize(string text)
    {
        var ids = new List<int>();
        int at = 0;
        while (NextSpecialToken(text, at) is (int start, int length, int id))
        {
            TokenizePlain(text[at..start], ids);
            ids.Add(id);
            at = start + length;
        }
        TokenizePlain(text[at..], ids);
        return ids;
    }

    private void TokenizePlain(string text, List<int> ids)
    {
        foreach (var word in BertPreTokenizer.Split(BertNormalizer.Normalize(text, LowerCase, stripAccents, spaceOutCjk)))
            wordPiece.Tokenize(word, ids);
    }

    /// <summary>The first special token in text at or after <paramref name="from"/>: the earliest start,
    /// then the longest (the AddedVocabulary's leftmost-longest match); null when there is none.</summary>
    private (int Start, int Length, int Id)? NextSpecialToken(string text, int from)
    {
        (int Start, int Length, int Id)? best = null;
        foreach (var (token, id) in specialTokens)
        {
            int i = text.IndexOf(token, from, StringComparison.Ordinal);
            if (i < 0) continue;
            if (best is not { } b || i < b.Start || (i == b.Start && token.Length > b.Length)) best = (i, token.Length, id);
        }
        return best;
    }

    /// <summary>[CLS] + the text's word pieces (truncated) + [SEP]; at most <paramref name="maxLength"/> ids.</summary>
    public int[] Encode(string text, int maxLength)
    {
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), "max length must leave room for [CLS] and [SEP]");
        var pieces = Tokenize(text);
        int n = Math.Min(pieces.Count, maxLength - 2);
        var ids = new int[n + 2];
        ids[0] = ClsId;
        pieces.CopyTo(0, ids, 1, n);
        ids[n + 1] = SepId;
        return ids;
    }
}

/// <summary>The tokenizer_config.json keys BERT's tokenizer uses, with transformers' defaults when the
/// file or a key is absent. SpecialTokens: every token transformers adds to the tokenizer as special, so
/// that the text matches it: the named ones (mask_token too), additional_special_tokens, the entries of
/// added_tokens_decoder that are not normalized (a BERT checkpoint's are not; one that is would be matched
/// after normalization, which is not done here, so it stays text), and the tokens special_tokens_map.json
/// names, which transformers reads as well (for [CLS] and [SEP] around the text, tokenizer_config.json's
/// names are used).</summary>
internal sealed record TokenizerSettings(bool LowerCase, bool StripAccents, bool SpaceOutCjk,
    string UnkToken, string ClsToken, string SepToken, string PadToken, IReadOnlyList<string> SpecialTokens)
{
    private static readonly string[] DefaultNames = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"];

    private static readonly string[] NameKeys = ["unk_token", "cls_token", "sep_token", "pad_token", "mask_token"];

    /// <summary>The settings of tokenizer_config.json at <paramref name="path"/>, with the special tokens of
    /// <paramref name="specialTokensMapPath"/> (special_tokens_map.json) added when that file exists.</summary>
    public static TokenizerSettings Read(string path, string? specialTokensMapPath = null)
    {
        var settings = ReadConfig(path);
        if (specialTokensMapPath == null || !File.Exists(specialTokensMapPath)) return settings;
        using var map = ParseObject(specialTokensMapPath, "special tokens");
        var special = new List<string>(settings.SpecialTokens);
        foreach (var key in NameKeys)
            if (TokenName(specialTokensMapPath, map.RootElement, key) is string name) special.Add(name);
        special.AddRange(AdditionalSpecialTokens(specialTokensMapPath, map.RootElement));
        return settings with { SpecialTokens = special };
    }

    private static JsonDocument ParseObject(string path, string what)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new DataFormatException($"{path}: not valid JSON: {e.Message}", e); }
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            var kind = doc.RootElement.ValueKind;
            doc.Dispose();
            throw new DataFormatException($"{path}: expected a JSON object of {what}, found {Describe(kind)}");
        }
        return doc;
    }

    private static TokenizerSettings ReadConfig(string path)
    {
        if (!File.Exists(path)) return new(true, true, true, "[UNK]", "[CLS]", "[SEP]", "[PAD]", DefaultNames);
        using (var doc = ParseObject(path, "tokenizer settings"))
        {
            var root = doc.RootElement;
            bool lower = Flag(path, root, "do_lower_case") ?? true;
            string unk = TokenName(path, root, "unk_token") ?? "[UNK]", cls = TokenName(path, root, "cls_token") ?? "[CLS]";
            string sep = TokenName(path, root, "sep_token") ?? "[SEP]", pad = TokenName(path, root, "pad_token") ?? "[PAD]";
            var special = new List<string> { unk, cls, sep, pad, TokenName(path, root, "mask_token") ?? "[MASK]" };
            special.AddRange(AdditionalSpecialTokens(path, root));
            special.AddRange(UnnormalizedAddedTokens(path, root));
            return new(lower,
                Flag(path, root, "strip_accents") ?? lower, // transformers: strip_accents None follows do_lower_case
                Flag(path, root, "tokenize_chinese_chars") ?? true,
                unk, cls, sep, pad, special);
        }
    }

    /// <summary>additional_special_tokens: an array of token strings or AddedToken objects.</summary>
    private static IEnumerable<string> AdditionalSpecialTokens(string path, JsonElement root)
    {
        const string key = "additional_special_tokens";
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind != JsonValueKind.Array) throw new DataFormatException($"{path}: \"{key}\" must be an array of tokens, not {Describe(v.ValueKind)}");
        return v.EnumerateArray().Select(e => Content(path, key, e)).ToList();
    }

    /// <summary>added_tokens_decoder (transformers ≥ 4.34): id → AddedToken; those with "normalized": false.</summary>
    private static IEnumerable<string> UnnormalizedAddedTokens(string path, JsonElement root)
    {
        const string key = "added_tokens_decoder";
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return [];
        if (v.ValueKind != JsonValueKind.Object) throw new DataFormatException($"{path}: \"{key}\" must be an object of id: token, not {Describe(v.ValueKind)}");
        var tokens = new List<string>();
        foreach (var entry in v.EnumerateObject())
        {
            string content = Content(path, $"{key}.{entry.Name}", entry.Value);
            bool normalized = entry.Value.ValueKind == JsonValueKind.Object && entry.Value.TryGetProperty("normalized", out var n)
                && n.ValueKind == JsonValueKind.True;
            if (!normalized) tokens.Add(content);
        }
        return tokens;
    }

    private static string Content(string path, string key, JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.String) return e.GetString()!;
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) return c.GetString()!;
        throw new DataFormatException($"{path}: \"{key}\" must be a token string or an object with \"content\", not {Describe(e.ValueKind)}");
    }

    private static bool? Flag(string path, JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind is JsonValueKind.True or JsonValueKind.False) return v.GetBoolean();
        throw new DataFormatException($"{path}: \"{key}\" must be true, false or null, not {Describe(v.ValueKind)}");
    }

    /// <summary>A special token is a string or, as transformers saves AddedToken, an object with "content".</summary>
    private static string? TokenName(string path, JsonElement root, string key)
    {
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return Content(path, key, v);
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "an array", JsonValueKind.Object => "an object", JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number", _ => kind.ToString().ToLowerInvariant(),
    };
}

/// <summary>vocab.txt: one token a line, its id the line number. Read as transformers' load_vocab does
/// (tokenization_bert.py: text mode, so \n, \r\n and \r all end a line; a repeated token keeps its last
/// line, as the dict assignment there and WordPiece::read_file in tokenizers do).</summary>
internal sealed class BertVocab
{
    private readonly string path;
    public Dictionary<string, int> Ids { get; }
    public int Size { get; }

    private BertVocab(string path, Dictionary<string, int> ids, int size) { this.path = path; Ids = ids; Size = size; }

    public static BertVocab Load(string path)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path, new UTF8Encoding(false, throwOnInvalidBytes: true)); }
        catch (DecoderFallbackException e) { throw new DataFormatException($"{path}: not UTF-8 text: {e.Message}", e); }
        catch (IOException e) { throw new DataFormatException($"{path}: cannot be read: {e.Message}", e); }
        if (lines.Length == 0) throw new DataFormatException($"{path}: the vocabulary is empty");
        var ids = new Dictionary<string, int>(lines.Length, StringComparer.Ordinal);
        for (int i = 0; i < lines.Length; i++) ids[lines[i]] = i;
        return new BertVocab(path, ids, lines.Length);
    }

    public int Id(string token) => Ids.TryGetValue(token, out int id) ? id
        : throw new DataFormatException($"{path}: the vocabulary has no {token} token (line by itself), which BERT's tokenizer needs");
}
