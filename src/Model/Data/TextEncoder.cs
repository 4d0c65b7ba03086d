using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MixupBert.Model.Data;

/// <summary>
/// BERT's tokenizer as transformers' BertTokenizerFast runs it (BertNormalizer, BertPreTokenizer,
/// WordPiece; see those classes for the reference code they follow), configured from a model folder's
/// vocab.txt and tokenizer files the way transformers reads them: do_lower_case, strip_accents
/// (defaulting to do_lower_case), tokenize_chinese_chars, the special tokens, and tokens added to the
/// vocabulary. Sequences are [CLS] tokens [SEP], truncated to max_length. Added and special tokens
/// written in the text itself (a literal "[SEP]") become their ids, as `tokenizers`' added vocabulary
/// matches them (<see cref="AddedTokens"/>): those not normalized (special tokens, by default) on the raw
/// text, the others in each piece of the normalized text between them.
/// </summary>
public sealed class TextEncoder
{
    /// <summary>The files of a model folder the tokenizer reads (and a checkpoint carries along).</summary>
    public static readonly string[] Files = ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", TokenizerJson.FileName];

    private readonly WordPiece wordPiece;
    private readonly bool stripAccents, spaceOutCjk;
    private readonly AddedTokens rawTokens, normalizedTokens;

    public int ClsId { get; }
    public int SepId { get; }
    public int PadId { get; }
    /// <summary>One past the largest id the tokenizer can produce: vocab.txt's size, or more with added tokens.</summary>
    public int VocabSize { get; }
    public bool LowerCase { get; }

    private TextEncoder(BertVocab vocab, TokenizerSettings settings)
    {
        LowerCase = settings.LowerCase; stripAccents = settings.StripAccents; spaceOutCjk = settings.SpaceOutCjk;
        var added = AssignIds(settings.AddedTokens, vocab);
        int Id(string name) => added.FirstOrDefault(a => a.Token.Content == name) is { Token: not null } a ? a.Id : vocab.Id(name);
        wordPiece = new WordPiece(vocab.Ids, Id(settings.UnkToken));
        ClsId = Id(settings.ClsToken); SepId = Id(settings.SepToken); PadId = Id(settings.PadToken);
        VocabSize = Math.Max(vocab.Size, added.Length == 0 ? 0 : added.Max(a => a.Id) + 1);
        rawTokens = new AddedTokens(added.Where(a => !a.Token.Normalized).Select(a => new AddedTokens.Entry(a.Token.Content, a.Id, a.Token.SingleWord)));
        // a normalized token is looked for in normalized text, so its own text is normalized first
        normalizedTokens = new AddedTokens(added.Where(a => a.Token.Normalized).Select(a => new AddedTokens.Entry(Normalize(a.Token.Content), a.Id, a.Token.SingleWord)));
    }

    /// <summary>The tokenizer of a model folder: tokenizer.json's vocabulary where it has one, as transformers' fast
    /// tokenizer loads that file first (a folder's vocab.txt is its copy, unless edited apart), else vocab.txt's;
    /// tokenizer.json's added tokens first, as transformers' fast tokenizer loads it first
    /// (<see cref="WithTokenizerJson"/>), then those of the other files (<see cref="TokenizerSettings"/>).</summary>
    public static TextEncoder FromModelFolder(string folder)
    {
        string vocabPath = Path.Combine(folder, "vocab.txt"), jsonPath = Path.Combine(folder, TokenizerJson.FileName);
        var json = File.Exists(jsonPath) ? TokenizerJson.Read(jsonPath) : null;
        BertVocab vocab;
        if (json?.Vocab != null) vocab = BertVocab.FromMap(jsonPath, json.Vocab);
        else if (File.Exists(vocabPath)) vocab = BertVocab.Load(vocabPath);
        else throw new DataFormatException($"{folder}: no vocab.txt (nor a tokenizer.json with a WordPiece vocabulary), so the text cannot be tokenized (a BERT model folder has one beside config.json)");
        var settings = TokenizerSettings.Read(Path.Combine(folder, "tokenizer_config.json"), Path.Combine(folder, "special_tokens_map.json"),
            Path.Combine(folder, "added_tokens.json"));
        if (json != null) settings = settings with { AddedTokens = WithTokenizerJson(json.AddedTokens, settings.AddedTokens) };
        return new TextEncoder(vocab, settings);
    }

    /// <summary>The fast tokenizer starts from tokenizer.json's added tokens (their ids fixed); transformers
    /// then adds added_tokens_decoder's, whose descriptions replace those of the same token, and the
    /// special tokens it does not have yet.</summary>
    private static List<AddedTokenSpec> WithTokenizerJson(IReadOnlyList<AddedTokenSpec> json, IReadOnlyList<AddedTokenSpec> files)
    {
        var redescribed = files.Where(t => t.Source == AddedTokenSource.AddedTokensDecoder).ToDictionary(t => t.Content, StringComparer.Ordinal);
        var inJson = json.Select(t => t.Content).ToHashSet(StringComparer.Ordinal);
        return [.. json.Select(t => redescribed.TryGetValue(t.Content, out var d) ? d with { Id = t.Id } : t), .. files.Where(t => !inJson.Contains(t.Content))];
    }

    /// <summary>Each added token's id as `tokenizers` gives it: tokenizer.json's, else the vocabulary's, else,
    /// for a token added to the vocabulary (added_tokens_decoder, added_tokens.json), the next free one in the
    /// order added. A special token that is in neither stays text (transformers would append it past the
    /// model's embeddings, which the first text holding it would then overrun).</summary>
    private static (AddedTokenSpec Token, int Id)[] AssignIds(IReadOnlyList<AddedTokenSpec> tokens, BertVocab vocab)
    {
        int next = Math.Max(vocab.Size, tokens.Select(t => t.Id ?? -1).DefaultIfEmpty(-1).Max() + 1);
        var ids = new List<(AddedTokenSpec, int)>();
        foreach (var t in tokens)
        {
            if (t.Id is int fixedId) ids.Add((t, fixedId));
            else if (vocab.Ids.TryGetValue(t.Content, out int v)) ids.Add((t, v));
            else if (t.Source is AddedTokenSource.AddedTokensDecoder or AddedTokenSource.AddedTokensJson) ids.Add((t, next++));
        }
        return [.. ids];
    }

    private string Normalize(string text) => BertNormalizer.Normalize(text, LowerCase, stripAccents, spaceOutCjk);

    /// <summary>The text's word pieces, without [CLS] and [SEP]. With a <paramref name="limit"/>, the words after
    /// the one that brings the count to the limit are left out, as `tokenizers` (0.23 on) stops tokenizing a
    /// sequence once truncation's max_length is reached: whole words, so the count may pass the limit; an added
    /// token does not stop it. A pair's truncation compares these counts, not the texts' whole lengths.</summary>
    public List<int> Tokenize(string text, int limit = int.MaxValue)
    {
        var ids = new List<int>();
        bool full = false;
        void Words(string normalized)
        {
            foreach (var word in BertPreTokenizer.Split(normalized))
            {
                if (full) return;
                wordPiece.Tokenize(word, ids);
                full = ids.Count >= limit;
            }
        }
        void Token(int id) { if (!full) ids.Add(id); }
        void Piece(string raw) { if (!full) normalizedTokens.Split(Normalize(raw), Words, Token); }
        rawTokens.Split(text, Piece, Token);
        return ids;
    }

    /// <summary>[CLS] + the text's word pieces (truncated) + [SEP]; at most <paramref name="maxLength"/> ids.</summary>
    public int[] Encode(string text, int maxLength)
    {
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), "max length must leave room for [CLS] and [SEP]");
        var pieces = Tokenize(text, maxLength);
        int n = Math.Min(pieces.Count, maxLength - 2);
        var ids = new int[n + 2];
        ids[0] = ClsId;
        pieces.CopyTo(0, ids, 1, n);
        ids[n + 1] = SepId;
        return ids;
    }

    /// <summary>A sentence pair as BERT takes it: [CLS] text [SEP] pair [SEP], at most <paramref name="maxLength"/>
    /// ids, and where the second segment (token_type_id 1: pair and its [SEP]) starts. Truncated as
    /// transformers' fast tokenizer does with truncation=True: `tokenizers`' longest_first (<see cref="LongestFirst"/>)
    /// on each text's pieces counted up to max_length (<see cref="Tokenize"/>), as tokenizers 0.23 does. Where
    /// both texts reach max_length, tokenizers 0.22 and older, which compared whole lengths, can give the
    /// longer text the odd token instead; the slow tokenizer's token-by-token rule differs more often.</summary>
    public (int[] Ids, int SecondStart) EncodePair(string text, string pair, int maxLength)
    {
        if (maxLength < 3) throw new ArgumentOutOfRangeException(nameof(maxLength), "max length must leave room for [CLS] and two [SEP]");
        var first = Tokenize(text, maxLength);
        var second = Tokenize(pair, maxLength);
        var (n1, n2) = LongestFirst(first.Count, second.Count, maxLength - 3);
        var ids = new int[n1 + n2 + 3];
        ids[0] = ClsId;
        first.CopyTo(0, ids, 1, n1);
        ids[n1 + 1] = SepId;
        second.CopyTo(0, ids, n1 + 2, n2);
        ids[^1] = SepId;
        return (ids, n1 + 2);
    }

    /// <summary>
    /// How many tokens of each text a pair keeps within <paramref name="budget"/> (max length less the three
    /// special tokens), as `tokenizers`' truncate_encodings does for TruncationStrategy::LongestFirst: nothing
    /// is cut when both fit; else the shorter text is kept whole and the longer one cut to the rest of the
    /// budget, unless the shorter one alone takes more than half of it, in which case both are cut to half
    /// (the odd token going to the longer one; to the second text when they are as long).
    /// </summary>
    public static (int First, int Second) LongestFirst(int first, int second, int budget)
    {
        if (first + second <= budget) return (first, second);
        bool swap = first > second;
        int shorter = swap ? second : first, longer;
        longer = shorter > budget ? shorter : Math.Max(shorter, budget - shorter);
        if (shorter + longer > budget) { shorter = budget / 2; longer = shorter + budget % 2; }
        return swap ? (longer, shorter) : (shorter, longer);
    }
}

/// <summary>Where an added token was described: the order of this enum is the order transformers adds them in.</summary>
internal enum AddedTokenSource { TokenizerJson, AddedTokensDecoder, AddedTokensJson, Special }

/// <summary>An added or special token as transformers' AddedToken describes it: <paramref name="Id"/> where
/// tokenizer.json fixes it (elsewhere the vocabulary's, or the next free one); <paramref name="Normalized"/>:
/// matched in the normalized text rather than the raw one; <paramref name="SingleWord"/>: only where no word
/// character touches it.</summary>
internal sealed record AddedTokenSpec(string Content, int? Id, bool Normalized, bool SingleWord, AddedTokenSource Source);

/// <summary>
/// The tokenizer_config.json keys BERT's tokenizer uses, with transformers' defaults when the file or a
/// key is absent, and the tokens transformers adds to the tokenizer, so that the text matches them, in
/// the order it adds them (transformers 4.57 and 5.x, tokenization_utils_base.py _from_pretrained and the
/// fast tokenizer's __init__):
/// <list type="bullet">
/// <item>added_tokens_decoder (id → AddedToken), in id order. Its fields default as `tokenizers`' do
/// (special false, normalized = not special, single_word false), except that an entry naming a special
/// token is special. Its ids are not kept: `tokenizers` gives a token the vocabulary lacks the next free id;</item>
/// <item>only when there is no added_tokens_decoder, the legacy files: special_tokens_map.json, whose names
/// replace the config's and whose lists join them, and added_tokens.json (token → id, in id order; a
/// token that is not special is normalized);</item>
/// <item>the special tokens not added yet: the five names (unk, cls, sep, pad, mask) and
/// additional_special_tokens / extra_special_tokens, not normalized unless the file says so.</item>
/// </list>
/// A token given twice keeps its first description. lstrip and rstrip are not read: they move whitespace,
/// which BERT's pre-tokenizer drops anyway.
/// </summary>
internal sealed record TokenizerSettings(bool LowerCase, bool StripAccents, bool SpaceOutCjk,
    string UnkToken, string ClsToken, string SepToken, string PadToken, IReadOnlyList<AddedTokenSpec> AddedTokens)
{
    private static readonly string[] NameKeys = ["unk_token", "cls_token", "sep_token", "pad_token", "mask_token"];
    private static readonly string[] DefaultNames = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"];

    private readonly record struct DecoderEntry(int Id, string Content, bool? Special, bool? Normalized, bool SingleWord);

    public static TokenizerSettings Read(string path, string? specialTokensMapPath = null, string? addedTokensPath = null)
    {
        bool lower = true, strip = true, cjk = true;
        var names = DefaultNames.Select(n => new AddedTokenSpec(n, null, false, false, AddedTokenSource.Special)).ToArray();
        var lists = new List<AddedTokenSpec>();   // additional_special_tokens, extra_special_tokens
        List<DecoderEntry>? decoder = null;
        if (File.Exists(path))
        {
            using var doc = ParseObject(path, "tokenizer settings");
            var root = doc.RootElement;
            lower = Flag(path, root, "do_lower_case") ?? true;
            strip = Flag(path, root, "strip_accents") ?? lower; // transformers: strip_accents None follows do_lower_case
            cjk = Flag(path, root, "tokenize_chinese_chars") ?? true;
            for (int i = 0; i < NameKeys.Length; i++)
                if (Token(path, NameKeys[i], root) is AddedTokenSpec t) names[i] = t;
            lists.AddRange(SpecialTokenLists(path, root));
            decoder = AddedTokensDecoder(path, root);
        }
        var legacy = new List<string>();
        if (decoder == null)
        {
            if (specialTokensMapPath != null && File.Exists(specialTokensMapPath))
            {
                using var map = ParseObject(specialTokensMapPath, "special tokens");
                for (int i = 0; i < NameKeys.Length; i++)
                    if (Token(specialTokensMapPath, NameKeys[i], map.RootElement) is AddedTokenSpec t) names[i] = t;
                lists.AddRange(SpecialTokenLists(specialTokensMapPath, map.RootElement));
            }
            if (addedTokensPath != null && File.Exists(addedTokensPath)) legacy = LegacyAddedTokens(addedTokensPath);
        }
        var special = new HashSet<string>(names.Concat(lists).Select(t => t.Content), StringComparer.Ordinal);
        var added = new List<AddedTokenSpec>();
        foreach (var d in (decoder ?? []).OrderBy(d => d.Id))
        {
            bool isSpecial = (d.Special ?? false) || special.Contains(d.Content);
            added.Add(new AddedTokenSpec(d.Content, null, d.Normalized ?? !isSpecial, d.SingleWord, AddedTokenSource.AddedTokensDecoder));
        }
        added.AddRange(legacy.Select(t => new AddedTokenSpec(t, null, !special.Contains(t), false, AddedTokenSource.AddedTokensJson)));
        added.AddRange(names);
        added.AddRange(lists);
        var distinct = added.DistinctBy(t => t.Content, StringComparer.Ordinal).ToList();
        return new(lower, strip, cjk, names[0].Content, names[1].Content, names[2].Content, names[3].Content, distinct);
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

    /// <summary>A named special token: a string or, as transformers saves AddedToken, an object with "content".</summary>
    private static AddedTokenSpec? Token(string path, string key, JsonElement root)
    {
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return Special(path, key, v);
    }

    /// <summary>additional_special_tokens (an array) and extra_special_tokens (an array, or an object of
    /// name → token, as transformers 5 saves it).</summary>
    private static IEnumerable<AddedTokenSpec> SpecialTokenLists(string path, JsonElement root)
    {
        var tokens = new List<AddedTokenSpec>();
        foreach (var key in new[] { "additional_special_tokens", "extra_special_tokens" })
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) continue;
            if (v.ValueKind == JsonValueKind.Array) tokens.AddRange(v.EnumerateArray().Select(e => Special(path, key, e)));
            else if (v.ValueKind == JsonValueKind.Object && key == "extra_special_tokens")
                tokens.AddRange(v.EnumerateObject().Select(e => Special(path, $"{key}.{e.Name}", e.Value)));
            else throw new DataFormatException($"{path}: \"{key}\" must be an array of tokens, not {Describe(v.ValueKind)}");
        }
        return tokens;
    }

    /// <summary>A special token: a string, or an AddedToken object ("normalized" defaults to false).</summary>
    private static AddedTokenSpec Special(string path, string key, JsonElement e)
    {
        var (content, _, normalized, singleWord) = AddedTokenFields(path, key, e);
        return new AddedTokenSpec(content, null, normalized ?? false, singleWord, AddedTokenSource.Special);
    }

    /// <summary>added_tokens_decoder (transformers ≥ 4.34): id → AddedToken; null when absent.</summary>
    private static List<DecoderEntry>? AddedTokensDecoder(string path, JsonElement root)
    {
        const string key = "added_tokens_decoder";
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Object) throw new DataFormatException($"{path}: \"{key}\" must be an object of id: token, not {Describe(v.ValueKind)}");
        var entries = new List<DecoderEntry>();
        foreach (var entry in v.EnumerateObject())
        {
            if (!int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out int id))
                throw new DataFormatException($"{path}: \"{key}\" has the key \"{entry.Name}\", which is not a token id");
            var (content, special, normalized, singleWord) = AddedTokenFields(path, $"{key}.{entry.Name}", entry.Value);
            entries.Add(new DecoderEntry(id, content, special, normalized, singleWord));
        }
        return entries;
    }

    /// <summary>added_tokens.json: token → id; the tokens in id order.</summary>
    private static List<string> LegacyAddedTokens(string path)
    {
        using var doc = ParseObject(path, "added tokens (token: id)");
        var tokens = new List<(string, int)>();
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                throw new DataFormatException($"{path}: the token \"{entry.Name}\" must map to a token id, not {entry.Value.GetRawText()}");
            tokens.Add((entry.Name, id));
        }
        return tokens.OrderBy(t => t.Item2).Select(t => t.Item1).ToList();
    }

    /// <summary>A token string, or an AddedToken object: "content" required, "special", "normalized" and
    /// "single_word" optional (null where absent, single_word false).</summary>
    private static (string Content, bool? Special, bool? Normalized, bool SingleWord) AddedTokenFields(string path, string key, JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.String) return (e.GetString()!, null, null, false);
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String)
            return (c.GetString()!, Flag(path, e, "special", key), Flag(path, e, "normalized", key), Flag(path, e, "single_word", key) ?? false);
        throw new DataFormatException($"{path}: \"{key}\" must be a token string or an object with \"content\", not {Describe(e.ValueKind)}");
    }

    /// <summary>A true/false/null key of <paramref name="root"/>; <paramref name="within"/> names the object it is in.</summary>
    private static bool? Flag(string path, JsonElement root, string key, string? within = null)
    {
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind is JsonValueKind.True or JsonValueKind.False) return v.GetBoolean();
        string name = within == null ? key : $"{within}.{key}";
        throw new DataFormatException($"{path}: \"{name}\" must be true, false or null, not {Describe(v.ValueKind)}");
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

    /// <summary>A vocabulary given as token → id (tokenizer.json's model.vocab); its size is one past the largest id.</summary>
    public static BertVocab FromMap(string path, Dictionary<string, int> ids)
    {
        if (ids.Count == 0) throw new DataFormatException($"{path}: the vocabulary is empty");
        return new BertVocab(path, ids, ids.Values.Max() + 1);
    }

    public int Id(string token) => Ids.TryGetValue(token, out int id) ? id
        : throw new DataFormatException($"{path}: the vocabulary has no {token} token, which BERT's tokenizer needs" +
            " (tokenizer_config.json's unk_token, sep_token, cls_token, pad_token, mask_token name them where they are not BERT's)");
}
