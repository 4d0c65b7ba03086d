using System.Globalization;
using System.Text;

namespace MixupBert.Model.Data;

/// <summary>
/// BERT's pre-tokenization as Hugging Face `tokenizers` implements it (tokenizers/src/pre_tokenizers/bert.rs,
/// BertPreTokenizer::pre_tokenize): split on whitespace, dropping it, then make every punctuation
/// character a word of its own (is_bert_punc: ASCII punctuation, i.e. every ASCII non-alphanumeric
/// printable such as $ + &lt; = &gt; ^ ` | ~ _, or any Unicode P* category). This is transformers'
/// whitespace_tokenize + _run_split_on_punc in tokenization_bert.py.
/// </summary>
public static class BertPreTokenizer
{
    public static List<string> Split(string normalized)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        foreach (var rune in normalized.EnumerateRunes())
        {
            if (BertNormalizer.IsWhitespace(rune.Value)) { Flush(word, words); continue; }
            if (IsPunctuation(rune)) { Flush(word, words); words.Add(rune.ToString()); continue; }
            word.Append(rune.ToString());
        }
        Flush(word, words);
        return words;
    }

    private static void Flush(StringBuilder word, List<string> words)
    {
        if (word.Length == 0) return;
        words.Add(word.ToString());
        word.Clear();
    }

    /// <summary>is_bert_punc: char::is_ascii_punctuation (33-47, 58-64, 91-96, 123-126) or a P* category.</summary>
    public static bool IsPunctuation(Rune rune)
    {
        int c = rune.Value;
        if (c is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }
}
