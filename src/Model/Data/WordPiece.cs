using System.Text;

namespace MixupBert.Model.Data;

/// <summary>
/// WordPiece, greedy longest-match-first, as Hugging Face `tokenizers` implements it
/// (tokenizers/src/models/wordpiece/mod.rs, WordPiece::tokenize; the same as transformers'
/// WordpieceTokenizer.tokenize in tokenization_bert.py): a word of more than 100 code points, or one
/// that cannot be covered by vocabulary pieces ("##" before every piece but the first), is one [UNK].
/// Lengths and cut points are in code points, not UTF-16 units, as in Rust and Python. Written here,
/// line for line after mod.rs, rather than taken from Microsoft.ML.Tokenizers: that package's BERT
/// pipeline is what deviated, and its WordPiece alone could not be shown to count and cut by code
/// points the same way; these 30 lines can be read against the reference.
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
