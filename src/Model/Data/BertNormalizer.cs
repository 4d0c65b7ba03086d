using System.Globalization;
using System.Text;

namespace MixupBert.Model.Data;

/// <summary>
/// BERT's text normalization as Hugging Face `tokenizers` implements it for BertTokenizerFast
/// (tokenizers/src/normalizers/bert.rs, BertNormalizer::normalize), in its order: clean text, space out
/// CJK ideographs, strip accents, lower-case. Every step maps one code point at a time, so this runs
/// them per code point in one pass.
///
/// Where transformers' slow BasicTokenizer (models/bert/tokenization_bert.py, BasicTokenizer.tokenize)
/// differs, this follows the Rust one, which is what AutoTokenizer loads (BertTokenizerFast) and what the
/// tests' reference runs:
/// - the slow tokenizer applies NFC before splitting (so a cased "e" + U+0301 becomes "é"); Rust does not;
/// - the slow tokenizer lower-cases before stripping accents, Rust after (İ gives "i" either way);
/// - the slow _is_control also drops unassigned code points (Cn); Rust's is_other (unicode_categories)
///   is Cc, Cf and Co only, so unassigned code points stay (and become [UNK]);
/// - Python's str.lower() turns a word-final Σ into ς; Rust lower-cases code point by code point (σ).
/// Character categories and case mappings come from .NET's Unicode tables, where the Rust code uses other
/// versions (older crate tables for categories and NFD, a newer std for lower case); tests/Tokenization/unicode-version-differences.txt lists the 647 code points (all
/// added or changed in recent Unicode versions) where that makes a difference, and the tests check
/// that every other code point is treated as Rust treats it.
/// </summary>
public static class BertNormalizer
{
    public static string Normalize(string text, bool lowerCase, bool stripAccents, bool spaceOutCjk)
    {
        var sb = new StringBuilder(text.Length + 8);
        var decomposed = new StringBuilder(8);
        foreach (var rune in text.EnumerateRunes()) // a lone surrogate comes as U+FFFD, which is removed
        {
            int c = rune.Value;
            if (IsRemoved(rune)) continue;
            if (IsWhitespace(c)) { sb.Append(' '); continue; }
            bool spaced = spaceOutCjk && IsCjkIdeograph(c); // do_handle_chinese_chars, before the steps below
            if (spaced) sb.Append(' ');
            AppendStrippedAndLowered(sb, rune, lowerCase, stripAccents, decomposed);
            if (spaced) sb.Append(' ');
        }
        return sb.ToString();
    }

    /// <summary>do_strip_accents (NFD, drop nonspacing marks), then do_lowercase.</summary>
    private static void AppendStrippedAndLowered(StringBuilder sb, Rune rune, bool lowerCase, bool stripAccents, StringBuilder decomposed)
    {
        if (!stripAccents && !lowerCase) { sb.Append(rune.ToString()); return; }
        decomposed.Clear();
        if (stripAccents) AccentFolding.AppendDecomposition(decomposed, rune.Value); else decomposed.Append(rune.ToString());
        foreach (var part in decomposed.ToString().EnumerateRunes())
        {
            if (stripAccents && Rune.GetUnicodeCategory(part) == UnicodeCategory.NonSpacingMark) continue;
            if (lowerCase) AppendLower(sb, part); else sb.Append(part.ToString());
        }
    }

    /// <summary>do_clean_text's filter: NUL, U+FFFD and control characters (is_control: Cc, Cf, Co,
    /// except \t \n \r, which are whitespace).</summary>
    private static bool IsRemoved(Rune rune)
    {
        int c = rune.Value;
        if (c == 0 || c == 0xFFFD) return true;
        if (c is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.PrivateUse;
    }

    /// <summary>bert.rs is_whitespace: \t \n \r or Rust's char::is_whitespace, the Unicode White_Space
    /// property. Its controls (\v, \f, U+0085) are removed before this test is reached.</summary>
    public static bool IsWhitespace(int c) => c switch
    {
        >= 0x09 and <= 0x0D or 0x20 or 0x85 or 0xA0 or 0x1680 or >= 0x2000 and <= 0x200A
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        _ => false,
    };

    /// <summary>bert.rs is_chinese_char (the same ranges as tokenization_bert.py _is_chinese_char).</summary>
    private static bool IsCjkIdeograph(int c) =>
        c is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF
            or >= 0x2A700 and <= 0x2B73F or >= 0x2B740 and <= 0x2B81F or >= 0x2B920 and <= 0x2CEAF
            or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;

    /// <summary>NormalizedString::lowercase: Rust's char::to_lowercase, the full case mapping. The only
    /// code point whose full lower case is longer than its simple one is İ (SpecialCasing.txt); .NET's
    /// invariant ToLower is the simple mapping.</summary>
    private static void AppendLower(StringBuilder sb, Rune rune)
    {
        if (rune.Value == 0x130) sb.Append("i\u0307");
        else sb.Append(Rune.ToLowerInvariant(rune).ToString());
    }
}
