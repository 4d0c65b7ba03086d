using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace MixupBert.Model.Data;

/// <summary>
/// BERT's WordPiece tokenizer (Microsoft.ML.Tokenizers' BertTokenizer) configured from a model
/// folder's vocab.txt and tokenizer_config.json the way transformers reads them: do_lower_case,
/// strip_accents (defaulting to do_lower_case), tokenize_chinese_chars. Sequences are
/// [CLS] tokens [SEP], truncated to max_length.
/// </summary>
public sealed class TextEncoder
{
    private readonly BertTokenizer tokenizer;

    public int ClsId { get; }
    public int SepId { get; }
    public int PadId { get; }
    public int VocabSize { get; }
    public bool LowerCase { get; }

    private readonly bool stripAccents;

    private TextEncoder(BertTokenizer tokenizer, int vocabSize, bool lowerCase, bool stripAccents)
    {
        this.tokenizer = tokenizer;
        this.stripAccents = stripAccents;
        ClsId = tokenizer.ClassificationTokenId; SepId = tokenizer.SeparatorTokenId; PadId = tokenizer.PaddingTokenId;
        VocabSize = vocabSize; LowerCase = lowerCase;
    }

    public static TextEncoder FromModelFolder(string folder)
    {
        string vocab = Path.Combine(folder, "vocab.txt");
        if (!File.Exists(vocab)) throw new DataFormatException($"{folder}: no vocab.txt, so the text cannot be tokenized (a BERT model folder needs vocab.txt beside config.json)");
        bool lower = true, chinese = true;
        bool? strip = null;
        string cfgPath = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(cfgPath))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(cfgPath));
                var r = doc.RootElement;
                if (r.TryGetProperty("do_lower_case", out var l) && l.ValueKind is JsonValueKind.True or JsonValueKind.False) lower = l.GetBoolean();
                if (r.TryGetProperty("strip_accents", out var s) && s.ValueKind is JsonValueKind.True or JsonValueKind.False) strip = s.GetBoolean();
                if (r.TryGetProperty("tokenize_chinese_chars", out var c) && c.ValueKind is JsonValueKind.True or JsonValueKind.False) chinese = c.GetBoolean();
            }
            catch (JsonException e) { throw new DataFormatException($"{cfgPath}: not valid JSON: {e.Message}", e); }
        }
        var options = new BertOptions
        {
            LowerCaseBeforeTokenization = lower,
            RemoveNonSpacingMarks = strip ?? lower, // transformers: strip_accents=None follows do_lower_case
            IndividuallyTokenizeCjk = chinese,
            ApplyBasicTokenization = true,
        };
        var tok = BertTokenizer.Create(vocab, options);
        int vocabSize = File.ReadLines(vocab).Count();
        return new TextEncoder(tok, vocabSize, lower, options.RemoveNonSpacingMarks);
    }

    /// <summary>[CLS] + the text's word pieces (truncated) + [SEP]; at most <paramref name="maxLength"/> ids.</summary>
    public int[] Encode(string text, int maxLength)
    {
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), "max length must leave room for [CLS] and [SEP]");
        // the tokenizer drops control characters instead of splitting on them: "a\nb" would become "ab"
        text = text.Replace('\n', ' ').Replace('\t', ' ').Replace('\r', ' ');
        // transformers strips accents after NFD decomposition (é → e + combining mark); the tokenizer
        // removes combining marks but does not decompose, so a precomposed é would become [UNK]
        if (stripAccents) text = AccentFolding.Strip(text);
        var pieces = tokenizer.EncodeToIds(text, addSpecialTokens: false);
        int n = Math.Min(pieces.Count, maxLength - 2);
        var ids = new int[n + 2];
        ids[0] = ClsId;
        for (int i = 0; i < n; i++) ids[i + 1] = pieces[i];
        ids[n + 1] = SepId;
        return ids;
    }
}
