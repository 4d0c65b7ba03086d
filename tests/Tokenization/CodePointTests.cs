using System.IO.Compression;
using System.Text;
using System.Text.Json;
using MixupBert.Model.Data;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Tokenization;

/// <summary>
/// Every Unicode code point through BertNormalizer and BertPreTokenizer, against what Hugging Face's
/// `tokenizers` (npm tokenizers@0.23.2) makes of it, recorded in codepoints-expected.txt.gz by
/// generate_expected.mjs. The only differences allowed are the ones listed, with their reasons, in
/// unicode-version-differences.txt: code points whose Unicode properties changed or were added after the
/// old tables of the Rust crates (unicode_categories 0.1, unicode-normalization-alignments 0.1); .NET
/// uses the current ones, as Python's unicodedata does for transformers' slow tokenizer.
/// </summary>
public class CodePointTests
{
    private static readonly string Here = Path.Combine(RepositoryRoot(), "tests", "Tokenization");

    // (strip accents, lower case) of each column: cased, uncased, lower-cased without stripping accents
    private static readonly (bool Strip, bool Lower)[] Modes = { (false, false), (true, true), (false, true) };

    [Fact]
    public void EveryCodePointIsNormalizedAndSplitAsTheReferenceDoes()
    {
        var allowed = AllowedDifferences();
        var unexpected = new List<string>();
        var differing = new SortedSet<int>();
        int checkedCount = 0;
        foreach (var (first, last, expected) in ExpectedRuns())
            for (int cp = first; cp <= last; cp++)
            {
                checkedCount++;
                for (int m = 0; m < Modes.Length; m++)
                {
                    string ours = Classify(cp, Modes[m].Strip, Modes[m].Lower);
                    if (ours == expected[m]) continue;
                    differing.Add(cp);
                    if (!allowed.Contains(cp)) unexpected.Add($"U+{cp:X4} mode {m}: reference {expected[m]}, ours {ours}");
                }
            }
        Assert.Equal(0x110000 - 0x800, checkedCount);
        Assert.True(unexpected.Count == 0, $"{unexpected.Count} unexpected differences:\n" + string.Join('\n', unexpected.Take(60)));
        var stale = allowed.Where(cp => !differing.Contains(cp)).ToList();
        Assert.True(stale.Count == 0, $"listed as differing but now the same: {string.Join(' ', stale.Take(60).Select(cp => $"U+{cp:X4}"))}");
    }

    /// <summary>The class generate_expected.mjs gives the words of "x" + c + "y".</summary>
    private static string Classify(int cp, bool strip, bool lower)
    {
        string c = char.ConvertFromUtf32(cp);
        string joined = string.Join(' ', BertPreTokenizer.Split(BertNormalizer.Normalize("x" + c + "y", lower, strip, spaceOutCjk: true)));
        if (joined == "x" + c + "y") return "=";
        if (joined == "xy") return "R";
        if (joined == "x y") return "W";
        if (joined == "x " + c + " y") return "S";
        return JsonSerializer.Serialize(joined);
    }

    private static IEnumerable<(int First, int Last, string[] Classes)> ExpectedRuns()
    {
        using var gz = new GZipStream(File.OpenRead(Path.Combine(Here, "codepoints-expected.txt.gz")), CompressionMode.Decompress);
        using var reader = new StreamReader(gz, Encoding.UTF8);
        for (string? line; (line = reader.ReadLine()) != null;)
        {
            if (line.Length == 0) continue;
            var f = line.Split('\t');
            // literal classes are JSON; re-serialize them the way Classify does, so escaping matches
            var classes = f[2..].Select(s => s.StartsWith('"') ? JsonSerializer.Serialize(JsonSerializer.Deserialize<string>(s)) : s).ToArray();
            yield return (Convert.ToInt32(f[0], 16), Convert.ToInt32(f[1], 16), classes);
        }
    }

    /// <summary>unicode-version-differences.txt: "FIRST LAST  reason" per line (hex), # comments.</summary>
    private static HashSet<int> AllowedDifferences()
    {
        var set = new HashSet<int>();
        foreach (var raw in File.ReadLines(Path.Combine(Here, "unicode-version-differences.txt")))
        {
            var line = raw.Split('#')[0].Trim();
            if (line.Length == 0) continue;
            var f = line.Split((char[]?)null, 3, StringSplitOptions.RemoveEmptyEntries);
            for (int cp = Convert.ToInt32(f[0], 16); cp <= Convert.ToInt32(f[1], 16); cp++) set.Add(cp);
        }
        return set;
    }
}
