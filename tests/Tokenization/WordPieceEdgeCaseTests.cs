using MixupBert.Model.Data;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Tokenization;

/// <summary>
/// WordPiece's edge cases that all-MiniLM-L6-v2's vocabulary and the reference corpora do not reach
/// (its vocab.txt has no astral-plane tokens, no repeated and no empty lines). Expected ids are worked
/// out from Hugging Face tokenizers' models/wordpiece/mod.rs: WordPiece::tokenize (lengths and cuts in
/// chars, i.e. code points) and WordPiece::read_file (the id is the line number; a repeated token is
/// inserted again, so its last line wins). These are the cases that decided against
/// Microsoft.ML.Tokenizers' WordPieceTokenizer (see WordPiece.cs).
/// </summary>
public class WordPieceEdgeCaseTests
{
    private const string Emoji = "\U0001F600"; // 😀: one code point, two UTF-16 units

    private static readonly string[] Specials = { "[PAD]", "[UNK]", "[CLS]", "[SEP]" };

    /// <summary>A model folder whose vocab.txt is exactly <paramref name="vocabText"/>.</summary>
    private static TextEncoder WithVocabText(string vocabText)
    {
        var dir = TempDir();
        File.WriteAllText(Path.Combine(dir, "vocab.txt"), vocabText);
        return TextEncoder.FromModelFolder(dir);
    }

    private static TextEncoder WithVocab(params string[] tokens) =>
        WithVocabText(string.Join("\r\n", Specials.Concat(tokens)) + "\r\n"); // CRLF, as MiniLM's vocab.txt

    /// <summary>The word pieces between [CLS] and [SEP].</summary>
    private static int[] Pieces(TextEncoder t, string text) => t.Encode(text, int.MaxValue)[1..^1];

    [Fact]
    public void AWordsLengthLimitIsCountedInCodePointsNotUtf16Units()
    {
        var t = WithVocab(Emoji, "##" + Emoji); // ids 4, 5
        // 60 emoji are 60 chars in Rust (sequence.chars().count() = 60 <= 100) though 120 UTF-16 units
        Assert.Equal(new[] { 4 }.Concat(Enumerable.Repeat(5, 59)), Pieces(t, string.Concat(Enumerable.Repeat(Emoji, 60))));
        Assert.Equal(100, Pieces(t, string.Concat(Enumerable.Repeat(Emoji, 100))).Length);
        Assert.Equal(new[] { 1 }, Pieces(t, string.Concat(Enumerable.Repeat(Emoji, 101))));
    }

    [Fact]
    public void APreTokenizedWordIsNotSplitAgainBeforeWordPiece()
    {
        // "²" (No) and "😀" (So) are neither whitespace nor punctuation to BertPreTokenizer, so "a²" is one
        // word: "a" then "##²". A second split of the word at word/non-word boundaries (\w+|[^\w\s]+)
        // would give "a" then "²" instead.
        var t = WithVocab("a", "²", "##²", Emoji, "##" + Emoji); // ids 4-8
        Assert.Equal(new[] { 4, 6 }, Pieces(t, "a²"));
        Assert.Equal(new[] { 4, 8 }, Pieces(t, "a" + Emoji));
    }

    [Fact]
    public void CrlfLineEndsAreNotPartOfTheTokens()
    {
        var t = WithVocabText("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nun\r\n##able\r\n");
        Assert.Equal(new[] { 4, 5 }, Pieces(t, "unable"));
        Assert.Equal(new[] { 2, 4, 5, 3 }, t.Encode("unable", 8));
    }

    [Fact]
    public void ARepeatedTokenTakesTheIdOfItsLastLine()
    {
        // read_file: vocab.insert(line, index) for every line, so the later line overwrites the earlier
        var t = WithVocab("a", "b", "a"); // "a" on lines 4 and 6
        Assert.Equal(new[] { 6, 5 }, Pieces(t, "a b"));
    }

    [Fact]
    public void EmptyLinesInTheVocabularyStillCountAsIds()
    {
        // read_file enumerates every line, so tokens after an empty line keep their line numbers
        var t = WithVocab("", "a", "", "##b"); // "a" is id 5, "##b" id 7
        Assert.Equal(new[] { 5, 7 }, Pieces(t, "ab"));
    }
}
