using System.Text;
using MixupBert.Model.Bert;
using MixupBert.Model.Data;
using MixupBert.Tests.Training;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Tokenization;

/// <summary>
/// The tokenizer's rules on a tiny vocabulary, with the expected ids worked out by hand from the
/// reference code cited at each case (Hugging Face tokenizers: normalizers/bert.rs,
/// pre_tokenizers/bert.rs, models/wordpiece/mod.rs), and its handling of bad tokenizer files.
/// </summary>
public class TokenizerRulesTests
{
    private static readonly string[] TinyVocab =
    {
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "$", "_", "a", // 0-9
        "##a", "b", "##b", "i", "##\u0307", "σ", "##α", "##σ", "##ς", "x", // 10-19
        "[MASK]", // the old Microsoft.ML.Tokenizers pipeline refused a vocabulary without it
    };

    private static TextEncoder Tiny(string? config = null, string[]? vocab = null, string? specialTokensMap = null)
    {
        var dir = TempDir();
        File.WriteAllText(Path.Combine(dir, "vocab.txt"), string.Join("\r\n", vocab ?? TinyVocab) + "\r\n"); // CRLF, as MiniLM's
        if (config != null) File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config);
        if (specialTokensMap != null) File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), specialTokensMap);
        return TextEncoder.FromModelFolder(dir);
    }

    /// <summary>The word pieces between [CLS] and [SEP].</summary>
    private static int[] Pieces(TextEncoder t, string text) => t.Encode(text, int.MaxValue)[1..^1];

    [Fact]
    public void WordPieceIsGreedyLongestMatchFirstAndAnUncoverableWordIsOneUnk()
    {
        var t = Tiny();
        Assert.Equal(new[] { 4, 5, 6 }, Pieces(t, "unaffable")); // mod.rs tokenize: longest prefix in vocab, then "##" pieces
        Assert.Equal(new[] { 1 }, Pieces(t, "unaffablex")); // is_bad: no piece covers "x" after "##" → the whole word is [UNK]
        Assert.Equal(new[] { 2, 4, 5, 6, 1, 3 }, t.Encode("unaffable unaffablex", 64));
    }

    [Fact]
    public void AWordOfMoreThanAHundredCodePointsIsUnk()
    {
        var t = Tiny();
        // mod.rs tokenize: char_len = sequence.chars().count(); > max_input_chars_per_word (100) → [UNK]
        Assert.Equal(new[] { 9 }.Concat(Enumerable.Repeat(10, 99)), Pieces(t, new string('a', 100)));
        Assert.Equal(new[] { 1 }, Pieces(t, new string('a', 101)));
    }

    [Fact]
    public void AsciiPunctuationIncludingUnderscoreAndDollarIsAWordOfItsOwn()
    {
        // pre_tokenizers/bert.rs is_bert_punc: char::is_ascii_punctuation covers $ and _
        Assert.Equal(new[] { 9, 7, 11, 8, 9 }, Pieces(Tiny(), "a$b_a"));
    }

    [Fact]
    public void ZeroWidthCharactersSoftHyphensAndLoneSurrogatesAreRemovedNotSplit()
    {
        var t = Tiny();
        // normalizers/bert.rs do_clean_text: is_control (Cf) and U+FFFD are filtered out, joining "a" and "b"
        Assert.Equal(new[] { 9, 12 }, Pieces(t, "a\u200bb"));
        Assert.Equal(new[] { 9, 12 }, Pieces(t, "a\u00adb"));
        Assert.Equal(new[] { 9, 12 }, Pieces(t, "a\ud800b")); // a lone surrogate reads as U+FFFD
    }

    [Fact]
    public void LowerCasingIsFullCaseMappingCodePointByCodePoint()
    {
        // do_lower_case without strip_accents: NormalizedString::lowercase uses char::to_lowercase, whose
        // full mapping of İ is "i" + U+0307; with strip_accents (the uncased default) NFD runs first and drops U+0307
        Assert.Equal(new[] { 13, 14 }, Pieces(Tiny("{\"do_lower_case\": true, \"strip_accents\": false}"), "İ"));
        Assert.Equal(new[] { 13 }, Pieces(Tiny("{\"do_lower_case\": true}"), "İ"));
        // per code point: a final Σ becomes σ, not ς (Python's str.lower() would give ς)
        Assert.Equal(new[] { 15, 16, 17 }, Pieces(Tiny(), "ΣΑΣ"));
        Assert.Equal(new[] { 1 }, Pieces(Tiny("{\"do_lower_case\": false}"), "ΣΑΣ"));
    }

    [Fact]
    public void SpecialTokenNamesComeFromTheConfig()
    {
        var vocab = new[] { "<pad>", "<unk>", "<s>", "</s>", "a" };
        var t = Tiny("{\"unk_token\": {\"content\": \"<unk>\", \"special\": true}, \"cls_token\": \"<s>\", \"sep_token\": \"</s>\", \"pad_token\": \"<pad>\"}", vocab);
        Assert.Equal(new[] { 2, 4, 1, 3 }, t.Encode("a b", 16));
        Assert.Equal(0, t.PadId);
    }

    [Theory]
    [InlineData("[\"do_lower_case\", true]", "expected a JSON object")]
    [InlineData("\"uncased\"", "expected a JSON object")]
    [InlineData("{\"do_lower_case\": \"yes\"}", "\"do_lower_case\" must be true, false or null")]
    [InlineData("{\"unk_token\": 5}", "\"unk_token\" must be a token string")]
    [InlineData("{\"do_lower_case\": tru", "not valid JSON")]
    public void ABadTokenizerConfigIsADataErrorNamingTheFile(string config, string message)
    {
        var e = Assert.Throws<DataFormatException>(() => Tiny(config));
        Assert.Contains("tokenizer_config.json", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void VocabularyErrorsNameTheFile()
    {
        var noUnk = Assert.Throws<DataFormatException>(() => Tiny(vocab: new[] { "[PAD]", "[CLS]", "[SEP]", "a" }));
        Assert.Contains("vocab.txt", noUnk.Message);
        Assert.Contains("[UNK]", noUnk.Message);

        var dir = TempDir();
        File.WriteAllBytes(Path.Combine(dir, "vocab.txt"), [.. Encoding.ASCII.GetBytes("[PAD]\n[UNK]\n[CLS]\n[SEP]\n"), 0xC3, 0x28, (byte)'\n']);
        var notUtf8 = Assert.Throws<DataFormatException>(() => TextEncoder.FromModelFolder(dir));
        Assert.Contains(Path.Combine(dir, "vocab.txt"), notUtf8.Message);
        Assert.Contains("UTF-8", notUtf8.Message);

        var empty = TempDir();
        File.WriteAllText(Path.Combine(empty, "vocab.txt"), "");
        Assert.Contains("vocab.txt", Assert.Throws<DataFormatException>(() => TextEncoder.FromModelFolder(empty)).Message);
    }

    [Fact]
    public void SpecialTokensInTheTextAreMatchedOnTheRawTextLeftmostThenLongest()
    {
        // tokenizers' AddedVocabulary (added_vocabulary.rs split_with_indices): special tokens are matched
        // before normalization (normalized: false), with MatchKind::LeftmostLongest; the text between them
        // goes through the normalizer and pre-tokenizer as usual. Ids 21-23 are the config's tokens.
        string[] vocab = [.. TinyVocab, "<e>", "<e>x", "<n>"];
        const string config = """
            {"mask_token": "[MASK]", "additional_special_tokens": ["<e>", {"content": "<e>x", "lstrip": false}],
             "added_tokens_decoder": {"23": {"content": "<n>", "normalized": true, "special": false}}}
            """;
        var t = Tiny(config, vocab);
        Assert.Equal(new[] { 9, 22, 11 }, Pieces(t, "a<e>xb"));   // "<e>" and "<e>x" both start at 1: the longer wins
        Assert.Equal(new[] { 9, 21, 11 }, Pieces(t, "a<e>b"));
        Assert.Equal(new[] { 3, 9, 20, 3 }, Pieces(t, "[SEP]A[MASK][SEP]"));   // no spaces needed; "A" lower-cased, the tokens not
        Assert.Equal(new[] { 23, 23 }, Pieces(t, "<n><N>"));   // a normalized added token is matched in the normalized (lower-cased) text
        Assert.Equal(new[] { 1, 1, 1 }, Pieces(t, "[sep]"));   // case-sensitive, on the raw text
        // a special token the vocabulary lacks is text (transformers would append it past the embeddings)
        var noMask = Tiny("""{"mask_token": "[MSK]"}""", vocab);
        Assert.Equal(new[] { 1, 1, 1 }, Pieces(noMask, "[MSK]"));
    }

    [Fact]
    public void SpecialTokenListsOfTheWrongTypeAreRefusedNamingTheFileAndKey()
    {
        foreach (var (config, key) in new[] { ("""{"additional_special_tokens": "<e>"}""", "additional_special_tokens"),
                     ("""{"additional_special_tokens": [3]}""", "additional_special_tokens"),
                     ("""{"added_tokens_decoder": ["<e>"]}""", "added_tokens_decoder"),
                     ("""{"added_tokens_decoder": {"5": {"normalized": false}}}""", "added_tokens_decoder.5") })
        {
            var e = Assert.Throws<DataFormatException>(() => Tiny(config));
            Assert.Contains("tokenizer_config.json", e.Message);
            Assert.Contains($"\"{key}\"", e.Message);
        }
    }

    [Fact]
    public void SpecialTokensMapJsonAddsItsTokensAndABadOneIsRefusedNamingIt()
    {
        // transformers reads special_tokens_map.json beside tokenizer_config.json: its tokens are special too
        string[] vocab = [.. TinyVocab, "<e>", "<f>"];
        var t = Tiny("""{"do_lower_case": true}""", vocab, """{"additional_special_tokens": [{"content": "<e>"}], "mask_token": "<f>"}""");
        Assert.Equal(new[] { 9, 21, 11, 22 }, Pieces(t, "a<e>b<f>"));
        Assert.Equal(new[] { 9, 1, 1, 1 }, Pieces(t, "a[MASK]"));   // the map's mask_token replaced the default [MASK], now text
        var e = Assert.Throws<DataFormatException>(() => Tiny(null, vocab, """["<e>"]"""));
        Assert.Contains("special_tokens_map.json", e.Message);
    }

    [Fact]
    public void TheLegacyFilesCountOnlyWithoutAddedTokensDecoderAndTheMapsNamesReplaceTheConfigs()
    {
        // transformers' _from_pretrained reads special_tokens_map.json and added_tokens.json only when
        // tokenizer_config.json has no added_tokens_decoder; then the map's sep_token frames the text
        string[] vocab = [.. TinyVocab, "</s>", "<e>"];   // ids 21, 22
        var dir = TempDir();
        File.WriteAllText(Path.Combine(dir, "vocab.txt"), string.Join("\n", vocab) + "\n");
        File.WriteAllText(Path.Combine(dir, "special_tokens_map.json"), """{"sep_token": "</s>"}""");
        File.WriteAllText(Path.Combine(dir, "added_tokens.json"), """{"<e>": 22}""");
        var legacy = TextEncoder.FromModelFolder(dir);
        Assert.Equal(new[] { 2, 9, 1, 1, 1, 22, 21 }, legacy.Encode("a[SEP]<e>", 64));   // [SEP] is text now, </s> ends the text
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"added_tokens_decoder": {"0": {"content": "[PAD]", "special": true}}}""");
        var modern = TextEncoder.FromModelFolder(dir);
        Assert.Equal(new[] { 2, 9, 3, 1, 1, 1, 3 }, modern.Encode("a[SEP]<e>", 64));   // both legacy files ignored
    }

    [Fact]
    public void AddedTokensDecoderEntriesTakeTheNextFreeIdAndANamedSpecialOneIsNotNormalized()
    {
        // tokenizers gives a token the vocabulary lacks the next free id (the key is not kept); an entry naming
        // a special token is special (transformers forces it), so not normalized unless it says so
        const string config = """{"added_tokens_decoder": {"40": {"content": "<z>"}, "3": {"content": "[SEP]"}, "50": {"content": "<y>", "special": true}}}""";
        var t = Tiny(config);
        Assert.Equal(new[] { 21, 22 }, Pieces(t, "<Z><y>"));   // <z> normalized (matched lower-cased), <y> special and raw
        Assert.Equal(new[] { 1, 1, 1, 3 }, Pieces(t, "[sep][SEP]"));
        Assert.Equal(23, t.VocabSize);
    }

    [Fact]
    public void SingleWordTokensStandAloneByRegexWordCharacters()
    {
        // added_vocabulary.rs tests ^\w and \w$ (the regex crate's Unicode \w). Which of these characters
        // count, as tokenizers 0.23.2 decided them (a single_word special token with each character before it
        // and after it; the same both ways): letters, letter numbers, marks, digits, connector punctuation,
        // the joiners and the circled or squared Latin letters do; other numbers, hyphens and the soft hyphen do not
        string[] vocab = [.. TinyVocab, "<e>"];
        var t = Tiny("""{"do_lower_case": false, "additional_special_tokens": [{"content": "<e>", "single_word": true}]}""", vocab);
        int[] word = [0x24D0, 0x24B6, 0x301, 0x200D, 0x200C, 0xFF3F, 0x203F, 0x216B, 0x663, 'a', '_', 0x903, 0x1F170, 0x1F130, 0x1F150, 0x20DD, 0xAA, 0x2B0, 0x3007, 0x3005, 0x345];
        int[] notWord = [0xBD, '-', 0xAD, 0xB2];
        foreach (int c in word.Concat(notWord))
        {
            string ch = char.ConvertFromUtf32(c);
            bool expected = notWord.Contains(c);
            Assert.True(Pieces(t, ch + "<e>").Contains(21) == expected, $"U+{c:X4} before a single-word token: {(expected ? "not " : "")}a word character");
            Assert.True(Pieces(t, "<e>" + ch).Contains(21) == expected, $"U+{c:X4} after a single-word token: {(expected ? "not " : "")}a word character");
        }
    }

    [Fact]
    public void PredictWithATokenizerConfigThatIsAnArrayExitsWith2NamingTheFile()
    {
        // issue #10: this was an unhandled InvalidOperationException from JsonElement.TryGetProperty
        var config = TinyConfig(labels: 2);
        var dir = TempDir();
        var parameters = BertLayout.Allocate(new BertLayout(config).Size);
        BertCheckpoint.Save(dir, config, parameters);
        File.WriteAllLines(Path.Combine(dir, "vocab.txt"), new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]" }.Concat(Enumerable.Range(0, config.VocabSize - 4).Select(i => $"w{i}")));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), "[{\"do_lower_case\": true}]");
        var r = Cli.Run(new Dictionary<string, string?>(), "predict", "--checkpoint", dir, "--backend", "cpu", "w1 w2");
        Assert.True(r.ExitCode == 2, r.All);
        Assert.Contains(Path.Combine(dir, "tokenizer_config.json"), r.Stderr);
        Assert.DoesNotContain("Unhandled", r.All);
    }
}
