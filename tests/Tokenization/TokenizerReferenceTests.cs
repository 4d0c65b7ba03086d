using System.IO.Compression;
using System.Text;
using System.Text.Json;
using MixupBert.Model.Data;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Tokenization;

/// <summary>
/// TextEncoder against Hugging Face's own tokenizer, id by id. The expected ids were computed by the
/// `tokenizers` library (npm tokenizers@0.23.2, the Rust code behind transformers' BertTokenizerFast)
/// set up as ../shared/tools/hf_tokenize.js does, with all-MiniLM-L6-v2's vocab.txt, uncased and cased;
/// generate_expected.mjs beside this file is the command that wrote them.
/// </summary>
public class TokenizerReferenceTests
{
    private static readonly string Here = Path.Combine(RepositoryRoot(), "tests", "Tokenization");

    /// <summary>MiniLM's vocab.txt with a tokenizer_config.json that sets do_lower_case.</summary>
    internal static string ModelFolder(bool lowerCase)
    {
        var dir = TempDir();
        File.Copy(Path.Combine(MiniLmDir, "vocab.txt"), Path.Combine(dir, "vocab.txt"));
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), $"{{\"do_lower_case\": {(lowerCase ? "true" : "false")}}}");
        return dir;
    }

    private sealed record CorpusCase(string Why, string Text, int[] Uncased, int[] Cased, string[] UncasedTokens, string[] CasedTokens);

    private static List<CorpusCase> Corpus()
    {
        var options = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        return File.ReadLines(Path.Combine(Here, "corpus-expected.jsonl")).Where(l => l.Length > 0)
            .Select(l => JsonSerializer.Deserialize<CorpusCase>(l, options)!).ToList();
    }

    private sealed record AddedCase(string Text, int[] Ids, string[] Tokens);

    [Fact]
    public void AddedTokensMatchTheReferenceIdById()
    {
        // added-tokens-config.json's added_tokens_decoder, read by us; the same tokens added to tokenizers
        // 0.23.2 by generate_expected.mjs: normalized and raw, single_word, ids past vocab.txt
        var dir = ModelFolder(lowerCase: true);
        File.Copy(Path.Combine(Here, "added-tokens-config.json"), Path.Combine(dir, "tokenizer_config.json"), overwrite: true);
        var encoder = TextEncoder.FromModelFolder(dir);
        Assert.Equal(30525, encoder.VocabSize);   // vocab.txt's 30522 and the three tokens appended after it
        var options = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        var cases = File.ReadLines(Path.Combine(Here, "added-tokens-expected.jsonl")).Where(l => l.Length > 0)
            .Select(l => JsonSerializer.Deserialize<AddedCase>(l, options)!).ToList();
        Assert.Equal(File.ReadLines(Path.Combine(Here, "added-tokens.jsonl")).Count(l => l.Length > 0), cases.Count);
        var failures = cases.Where(c => !c.Ids.SequenceEqual(encoder.Encode(c.Text, int.MaxValue)))
            .Select(c => $"{JsonSerializer.Serialize(c.Text)}\n  reference {string.Join(' ', c.Ids)} ({string.Join(' ', c.Tokens)})\n  ours      {string.Join(' ', encoder.Encode(c.Text, int.MaxValue))}").ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} texts differ:\n" + string.Join('\n', failures));
    }

    /// <summary>A model folder with tokenizers' own tokenizer.json (uncased, with added-tokens-config.json's
    /// tokens) and no vocab.txt.</summary>
    private static string TokenizerJsonFolder()
    {
        var dir = TempDir();
        using (var gz = new System.IO.Compression.GZipStream(File.OpenRead(Path.Combine(Here, "tokenizer-uncased-added.json.gz")), System.IO.Compression.CompressionMode.Decompress))
        using (var file = File.Create(Path.Combine(dir, "tokenizer.json")))
            gz.CopyTo(file);
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), """{"do_lower_case": true}""");
        return dir;
    }

    [Fact]
    public void WithoutVocabTxtTokenizerJsonGivesTheReferenceIds()
    {
        var encoder = TextEncoder.FromModelFolder(TokenizerJsonFolder());
        Assert.Equal(30525, encoder.VocabSize);
        var options = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        var expected = Corpus().Select(c => (c.Text, c.Uncased))
            .Concat(File.ReadLines(Path.Combine(Here, "added-tokens-expected.jsonl")).Where(l => l.Length > 0)
                .Select(l => JsonSerializer.Deserialize<AddedCase>(l, options)!).Select(c => (c.Text, c.Ids))).ToList();
        var failures = expected.Where(c => !c.Item2.SequenceEqual(encoder.Encode(c.Text, int.MaxValue)))
            .Select(c => $"{JsonSerializer.Serialize(c.Text)}: reference {string.Join(' ', c.Item2)}, ours {string.Join(' ', encoder.Encode(c.Text, int.MaxValue))}").ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} of {expected.Count} texts differ:\n" + string.Join('\n', failures));
    }

    private const string BertProcessing = "\"post_processor\":{\"type\":\"BertProcessing\",\"sep\":[\"[SEP]\",102],\"cls\":[\"[CLS]\",101]}";

    /// <summary>A TemplateProcessing post-processor as transformers saves BERT's, with <paramref name="single"/> as its single template.</summary>
    private static string Template(string single) =>
        "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[" + single + "],\"pair\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}}," +
        "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}," +
        "{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":1}}],\"special_tokens\":{}}";

    /// <summary>BERT's template written as TemplateProcessing (what transformers saves) is BertProcessing's.</summary>
    [Fact]
    public void BertsTemplateAsTemplateProcessingIsAccepted()
    {
        string dir = TokenizerJsonFolder(), path = Path.Combine(dir, "tokenizer.json");
        string compact = JsonSerializer.Serialize(JsonDocument.Parse(File.ReadAllText(path)).RootElement);
        File.WriteAllText(path, compact.Replace(BertProcessing, Template("{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}}")));
        Assert.Equal([101, 7592, 102], TextEncoder.FromModelFolder(dir).Encode("hello", 16));
    }

    /// <summary>A folder with both files: tokenizer.json's vocabulary, as the fast tokenizer loads it first.</summary>
    [Fact]
    public void TokenizerJsonsVocabularyComesBeforeVocabTxt()
    {
        string dir = TokenizerJsonFolder();
        File.WriteAllLines(Path.Combine(dir, "vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello"]);
        Assert.Equal([101, 7592, 102], TextEncoder.FromModelFolder(dir).Encode("hello", 16));
    }

    [Fact]
    public void ATokenizerJsonThatIsNotBertsIsRefusedNamingTheFileAndField()
    {
        string good = File.ReadAllText(Path.Combine(TokenizerJsonFolder(), "tokenizer.json"));
        foreach (var (from, to, field) in new[] {
                     ("\"type\":\"WordPiece\"", "\"type\":\"BPE\"", "\"model\""),
                     ("\"type\":\"BertPreTokenizer\"", "\"type\":\"Whitespace\"", "\"pre_tokenizer\""),
                     ("\"continuing_subword_prefix\":\"##\"", "\"continuing_subword_prefix\":\"@@\"", "\"model.continuing_subword_prefix\""),
                     ("\"max_input_chars_per_word\":100", "\"max_input_chars_per_word\":200", "\"model.max_input_chars_per_word\""),
                     ("\"content\":\"[unused0]\"", "\"contents\":\"[unused0]\"", "added_tokens["),
                     // what this tool does not implement and would otherwise ignore, giving other ids
                     ("\"clean_text\":true", "\"clean_text\":false", "\"normalizer.clean_text\" is false"),
                     (BertProcessing, "\"post_processor\":null", "\"post_processor\" is null"),
                     (BertProcessing, Template("{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"[SEP]\",\"type_id\":0}}"), "\"post_processor\" adds \"$A:0 [SEP]:0\"") })
        {
            string compact = JsonSerializer.Serialize(JsonDocument.Parse(good).RootElement);
            Assert.Contains(from, compact);
            var dir = TempDir();
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), compact.Replace(from, to));
            var e = Assert.Throws<DataFormatException>(() => TextEncoder.FromModelFolder(dir));
            Assert.Contains(Path.Combine(dir, "tokenizer.json"), e.Message);
            Assert.Contains(field, e.Message);
        }
    }

    private sealed record PairCase(string Text, string Pair, int MaxLength, int[] Ids, int[] TypeIds);

    [Fact]
    public void SentencePairsMatchTheReferenceIdsTypesAndTruncation()
    {
        // tokenizers' encode(text, pair) with longest_first truncation at a cycle of max lengths (3..128),
        // uncased: made-up pairs that reach every branch of the truncation rule, then rotten_tomatoes texts
        var encoder = TextEncoder.FromModelFolder(ModelFolder(lowerCase: true));
        var options = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        var cases = File.ReadLines(Path.Combine(Here, "pairs-expected.jsonl")).Where(l => l.Length > 0)
            .Select(l => JsonSerializer.Deserialize<PairCase>(l, options)!).ToList();
        Assert.True(cases.Count >= 200, $"{cases.Count} pairs");
        Assert.Contains(cases, c => c.Ids.Length == c.MaxLength);   // truncated ones are among them
        var failures = new List<string>();
        foreach (var c in cases)
        {
            var (ids, second) = encoder.EncodePair(c.Text, c.Pair, c.MaxLength);
            var types = Enumerable.Range(0, ids.Length).Select(i => i < second ? 0 : 1);
            if (!c.Ids.SequenceEqual(ids) || !c.TypeIds.SequenceEqual(types))
                failures.Add($"{JsonSerializer.Serialize(c.Text)} + {JsonSerializer.Serialize(c.Pair)}, max {c.MaxLength}\n" +
                    $"  reference {string.Join(' ', c.Ids)} types {string.Join("", c.TypeIds)}\n  ours      {string.Join(' ', ids)} types {string.Join("", types)}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} pairs differ:\n" + string.Join('\n', failures.Take(10)));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TrickyCorpusMatchesTheReferenceIdById(bool lowerCase)
    {
        var encoder = TextEncoder.FromModelFolder(ModelFolder(lowerCase));
        var corpus = Corpus();
        Assert.Equal(File.ReadLines(Path.Combine(Here, "corpus.jsonl")).Count(l => l.Length > 0), corpus.Count);
        var failures = new List<string>();
        foreach (var c in corpus)
        {
            var expected = lowerCase ? c.Uncased : c.Cased;
            var actual = encoder.Encode(c.Text, int.MaxValue);
            if (!expected.SequenceEqual(actual))
                failures.Add($"{c.Why}: {JsonSerializer.Serialize(c.Text)}\n  reference {string.Join(' ', expected)} ({string.Join(' ', lowerCase ? c.UncasedTokens : c.CasedTokens)})\n  ours      {string.Join(' ', actual)}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {corpus.Count} texts differ:\n" + string.Join('\n', failures));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AllRottenTomatoesTextsMatchTheReferenceIdById(bool lowerCase)
    {
        var dir = Path.Combine(SharedDir, "hf", "datasets", "cornell-movie-review-data", "rotten_tomatoes", "resolve", "main");
        var texts = new[] { "train", "validation", "test" }
            .SelectMany(s => TextTable.Read(Path.Combine(dir, s + ".parquet"), "text", "label").Texts).ToArray();
        var expected = ExpectedRottenIds(lowerCase);
        Assert.Equal(10662, texts.Length);
        Assert.Equal(texts.Length, expected.Count);
        var encoder = TextEncoder.FromModelFolder(ModelFolder(lowerCase));
        var failures = new List<string>();
        for (int row = 0; row < texts.Length; row++)
        {
            var actual = string.Join(' ', encoder.Encode(texts[row], int.MaxValue)[1..^1]);
            if (actual != expected[row]) failures.Add($"row {row}: {texts[row]}\n  reference {expected[row]}\n  ours      {actual}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {texts.Length} texts differ:\n" + string.Join('\n', failures.Take(30)));
    }

    /// <summary>Uncased ids per row; cased ones are the uncased ones except where the differences file says otherwise.</summary>
    private static List<string> ExpectedRottenIds(bool lowerCase)
    {
        using var gz = new GZipStream(File.OpenRead(Path.Combine(Here, "rotten-expected.uncased.txt.gz")), CompressionMode.Decompress);
        using var reader = new StreamReader(gz, Encoding.UTF8);
        var lines = new List<string>();
        for (string? line; (line = reader.ReadLine()) != null;) lines.Add(line);
        if (lowerCase) return lines;
        int changed = 0;
        foreach (var line in File.ReadLines(Path.Combine(Here, "rotten-expected.cased-differences.txt")).Where(l => l.Length > 0))
        {
            int tab = line.IndexOf('\t');
            lines[int.Parse(line[..tab])] = line[(tab + 1)..];
            changed++;
        }
        Assert.True(changed > 100, "the cased differences file lists the accented texts");
        return lines;
    }

    [Fact]
    public void ADollarSignReachesTheModel()
    {
        // issue #10: 'worth every $ and more' and 'worth every and more' were the same input to the model,
        // so predict gave them identical probabilities
        var encoder = TextEncoder.FromModelFolder(MiniLmDir);
        Assert.NotEqual(encoder.Encode("worth every and more", 64), encoder.Encode("worth every $ and more", 64));
    }
}
