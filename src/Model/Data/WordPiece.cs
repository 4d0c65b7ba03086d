namespace MixupBert.Model.Data;

// Why not Microsoft.ML.Tokenizers' WordPieceTokenizer (2.0.1, tried in place of this class, fed one
// pre-tokenized word at a time with MaxInputCharsPerWord = 100 and no pre-tokenization/normalization):
// it passed the reference corpora and every code point, but not WordPieceEdgeCaseTests, because
//  - it counts a word's length in UTF-16 units (text.Length > MaxInputCharsPerWord): a word of 60 emoji
//    (60 code points, 120 units) becomes one [UNK], where HF's Rust WordPiece (chars().count() <= 100)
//    gives 60 pieces;
//  - its vocab loader adds each line with Dictionary.Add: a vocab.txt with a repeated token ("a" on two
//    lines) throws ArgumentException "An item with the same key has already been added", where HF's
//    read_file keeps the last line's id.
// (CRLF line ends and empty lines it reads as HF does, and it does not split a word again.)

/// <summary>
/// WordPiece, greedy longest-match-first, as Hugging Face `tokenizers` implements it
/// (tokenizers/src/models/wordpiece/mod.rs, WordPiece::tokenize; the same as transformers'
/// WordpieceTokenizer.tokenize in tokenization_bert.py): a word of more than 100 code points, or one
/// that cannot be covered by vocabulary pieces ("##" before every piece but the first), is one [UNK].
/// Lengths and cut points are in code points, not UTF-16 units, as in Rust and Python; written here
/// line for line after mod.rs so it can be read against the reference.
/// </summary>
public sealed class WordPiece(IReadOnlyDictionary<string, int> vocab, int unkId)
{
    public const int MaxInputCharsPerWord = 100;
    private const string ContinuingSubwordPrefix = "##";

    public void Tokenize(string word, List<int> ids)
    {
        var cuts = CodePointBoundaries(word);
        int codePoints = cuts.Count - 1;
        if (codePoints > MaxInputCharsPerWord) { ids.Add(unkId); return; }
        int first = ids.Count;
        int start = 0; // index into cuts
        while (start < codePoints)
        {
            int end = codePoints, id = -1;
            for (; end > start; end--)
            {
                string piece = word[cuts[start]..cuts[end]];
                if (start > 0) piece = ContinuingSubwordPrefix + piece;
                if (vocab.TryGetValue(piece, out id)) break;
            }
            if (end == start) { ids.RemoveRange(first, ids.Count - first); ids.Add(unkId); return; }
            ids.Add(id);
            start = end;
        }
    }

    /// <summary>UTF-16 offsets of each code point's start, plus the word's length.</summary>
    private static List<int> CodePointBoundaries(string word)
    {
        var cuts = new List<int>(word.Length + 1);
        for (int i = 0; i < word.Length; i += char.IsSurrogatePair(word, i) ? 2 : 1) cuts.Add(i);
        cuts.Add(word.Length);
        return cuts;
    }
}
