using System.Buffers;
using System.Globalization;
using System.Text;

namespace MixupBert.Model.Data;

/// <summary>
/// The added vocabulary of Hugging Face `tokenizers` (added_vocabulary.rs, find_matches): tokens found in
/// a text before WordPiece sees it, each becoming its id. The matches are those of Aho-Corasick's
/// leftmost-longest search: the earliest start, then the longest token, never overlapping. A token marked
/// single_word is kept only where no word character (regex \w) touches it; a match refused so still
/// consumes its span, as the search does. Case-sensitive and ordinal: the caller decides on which
/// text (the raw text for tokens that are not normalized, each normalized piece for those that are).
/// </summary>
internal sealed class AddedTokens
{
    public readonly record struct Entry(string Content, int Id, bool SingleWord);

    private readonly Entry[] entries;

    public AddedTokens(IEnumerable<Entry> tokens)
    {
        // one entry a content (the first given wins); an empty token would match everywhere
        entries = tokens.Where(t => t.Content.Length > 0).DistinctBy(t => t.Content, StringComparer.Ordinal).ToArray();
    }

    public bool IsEmpty => entries.Length == 0;

    /// <summary>Calls <paramref name="plain"/> with each stretch of text between matches (none empty) and
    /// <paramref name="token"/> with each match's id, in order.</summary>
    public void Split(string text, Action<string> plain, Action<int> token)
    {
        if (entries.Length == 0) { if (text.Length > 0) plain(text); return; }
        // each token's next occurrence at or after the search position (-1: none left), found again only
        // once the search has passed it: every token scans the text once, however many matches there are
        Span<int> next = entries.Length <= 64 ? stackalloc int[entries.Length] : new int[entries.Length];
        next.Fill(int.MinValue);
        int at = 0, from = 0;
        while (true)
        {
            int best = -1;
            for (int i = 0; i < entries.Length; i++)
            {
                if (next[i] == -1) continue;
                if (next[i] < from) next[i] = text.IndexOf(entries[i].Content, from, StringComparison.Ordinal);
                if (next[i] < 0) { next[i] = -1; continue; }
                if (best < 0 || next[i] < next[best] || (next[i] == next[best] && entries[i].Content.Length > entries[best].Content.Length)) best = i;
            }
            if (best < 0) break;
            int start = next[best], end = start + entries[best].Content.Length;
            from = end;
            if (entries[best].SingleWord && !StandsAlone(text, start, end)) continue;
            if (start > at) plain(text[at..start]);
            token(entries[best].Id);
            at = end;
        }
        if (at < text.Length) plain(text[at..]);
    }

    /// <summary>single_word: neither the character before nor the one after is a word character.</summary>
    private static bool StandsAlone(string text, int start, int end)
    {
        bool before = start > 0 && Rune.DecodeLastFromUtf16(text.AsSpan(0, start), out var r, out _) == OperationStatus.Done && IsWordCharacter(r);
        bool after = end < text.Length && Rune.DecodeFromUtf16(text.AsSpan(end), out var s, out _) == OperationStatus.Done && IsWordCharacter(s);
        return !before && !after;
    }

    /// <summary>The regex crate's Unicode \w, which added_vocabulary.rs tests with ^\w and \w$: Alphabetic,
    /// marks, decimal digits, connector punctuation and the joiners. .NET has no Alphabetic property; it is
    /// the letters, letter numbers and the Other_Alphabetic symbols (circled and squared Latin letters),
    /// the rest of Other_Alphabetic being marks. Checked against tokenizers 0.23.2 for 25 characters
    /// (TokenizerRulesTests.SingleWordTokensStandAloneByRegexWordCharacters).</summary>
    private static bool IsWordCharacter(Rune r) => r.Value is 0x200C or 0x200D || Rune.GetUnicodeCategory(r) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter
            or UnicodeCategory.OtherLetter or UnicodeCategory.LetterNumber or UnicodeCategory.DecimalDigitNumber
            or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.ConnectorPunctuation => true,
        UnicodeCategory.OtherSymbol => r.Value is >= 0x24B6 and <= 0x24E9 or >= 0x1F130 and <= 0x1F149 or >= 0x1F150 and <= 0x1F169 or >= 0x1F170 and <= 0x1F189,
        _ => false,
    };
}
