using System.Globalization;
using System.Text;
using System.Text.Json;
using CsvHelper;
using CsvHelper.Configuration;
using Parquet;

namespace MixupBert.Model.Data;

/// <summary>One split as read from a file: a text and a raw label (string form) per row.</summary>
public sealed record RawSplit(string Source, string[] Texts, string?[] Labels, bool IntegerLabels, IReadOnlyList<string>? LabelNames)
{
    /// <summary>Each row's second text, for sentence-pair classification; null when the rows are single texts.</summary>
    public string[]? Pairs { get; init; }

    /// <summary>Things worth telling the user that are not errors (e.g. rows spanning several lines), each naming the file.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// Reads the text and label columns (and, for sentence pairs, the second text's) of a parquet, CSV/TSV or JSONL file. Text files must be UTF-8
/// (a BOM is allowed); anything else is reported with the file's name, never half-read.
/// </summary>
public static class TextTable
{
    public static readonly string[] Extensions = { ".parquet", ".csv", ".tsv", ".jsonl", ".json" };

    /// <summary>A data file's format as its name says, through a gzip layer as `datasets` reads one (train.jsonl.gz:
    /// ".jsonl"); the extension itself for anything else.</summary>
    public static string FormatOf(string path)
    {
        string name = Path.GetFileName(path).ToLowerInvariant();
        return Path.GetExtension(name.EndsWith(".gz", StringComparison.Ordinal) ? name[..^3] : name);
    }

    /// <summary>A data file's name without its format's extension, nor gzip's (train.jsonl.gz: "train").</summary>
    public static string StemOf(string path)
    {
        string name = Path.GetFileName(path);
        if (name.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) name = name[..^3];
        return Path.GetFileNameWithoutExtension(name);
    }

    private static bool Gzipped(string path) => path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase);

    /// <summary>A bound on a parquet row group's declared size, so a corrupt count cannot ask for gigabytes up front.</summary>
    private const long MaxRowsPerGroup = 50_000_000;

    /// <param name="pairColumn">the column of each row's second text, for sentence-pair classification; null for single texts.</param>
    public static RawSplit Read(string path, string textColumn, string labelColumn, string? pairColumn = null)
    {
        if (!File.Exists(path)) throw new DataFormatException($"{path}: file not found");
        string ext = FormatOf(path);
        if (ext == ".parquet" && Gzipped(path)) throw new DataFormatException($"{path}: a gzipped parquet file; parquet compresses its own pages: give the .parquet file itself");
        return ext switch
        {
            ".parquet" => ReadParquet(path, textColumn, labelColumn, pairColumn),
            ".csv" => ReadDelimited(path, ",", textColumn, labelColumn, pairColumn),
            ".tsv" => ReadDelimited(path, "\t", textColumn, labelColumn, pairColumn),
            ".jsonl" or ".json" => ReadJsonLines(path, textColumn, labelColumn, pairColumn),
            _ => throw new DataFormatException($"{path}: unsupported file type '{ext}' (parquet, csv, tsv, jsonl or json)"),
        };
    }

    private static RawSplit ReadParquet(string path, string textColumn, string labelColumn, string? pairColumn)
    {
        try
        {
            ParquetFooter.Check(path); // Parquet.Net hangs on some corrupt footers; refuse those first
            return ReadParquetAsync(path, textColumn, labelColumn, pairColumn).GetAwaiter().GetResult();
        }
        catch (DataFormatException) { throw; }
        // Parquet.Net reports a corrupt file through many exception types (index, overflow, argument, end of stream...);
        // whichever it is, the file is what is wrong
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new DataFormatException($"{path}: not a readable parquet file: {e.Message}", e);
        }
    }

    private static async Task<RawSplit> ReadParquetAsync(string path, string textColumn, string labelColumn, string? pairColumn)
    {
        await using var reader = OpenParquet(path);
        var fields = reader.Schema.GetDataFields();
        string names = string.Join(", ", fields.Select(f => f.Name));
        var textField = fields.FirstOrDefault(f => f.Name == textColumn)
            ?? throw MissingTextColumn(path, textColumn, fields.Select(f => f.Name));
        var pairField = pairColumn == null ? null : fields.FirstOrDefault(f => f.Name == pairColumn)
            ?? throw MissingPairColumn(path, pairColumn, names);
        var labelField = fields.FirstOrDefault(f => f.Name == labelColumn)
            ?? throw new DataFormatException($"{path}: no label column '{labelColumn}' (columns: {names}; choose one with --label-column)") { MissingLabelColumn = labelColumn };
        foreach (var (field, option) in new[] { (textField, "--text-column"), (pairField, "--text-pair-column") })
            if (field != null && field.ClrType != typeof(string) && field.ClrType != typeof(ReadOnlyMemory<char>))
                throw new DataFormatException($"{path}: column '{field.Name}' holds {field.ClrType.Name} values, not text (columns: {names}; choose the text with {option})");
        var texts = new List<string>();
        var pairs = pairField == null ? null : new List<string>();
        var labels = new List<string?>();
        Type lt = labelField.ClrType;
        bool integer = lt == typeof(long) || lt == typeof(int) || lt == typeof(short) || lt == typeof(sbyte) || lt == typeof(byte);
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroupReader(g);
            if (rg.RowCount < 0 || rg.RowCount > MaxRowsPerGroup)
                throw new DataFormatException($"{path}: row group {g} claims {rg.RowCount} rows (at most {MaxRowsPerGroup} are read): the file is corrupt");
            int n = (int)rg.RowCount;
            var t = new string?[n];
            await rg.ReadAsync(textField, t.AsMemory());
            for (int i = 0; i < n; i++) texts.Add(t[i] ?? throw new DataFormatException($"{path}: column '{textColumn}', row {texts.Count}: missing text (null)"));
            if (pairs != null)
            {
                await rg.ReadAsync(pairField!, t.AsMemory());
                for (int i = 0; i < n; i++) pairs.Add(t[i] ?? throw new DataFormatException($"{path}: column '{pairColumn}', row {pairs.Count}: missing text (null)"));
            }
            if (lt == typeof(long)) { var v = new long?[n]; await rg.ReadAsync<long>(labelField, v.AsMemory()); labels.AddRange(v.Select(x => x?.ToString(CultureInfo.InvariantCulture))); }
            else if (lt == typeof(int)) { var v = new int?[n]; await rg.ReadAsync<int>(labelField, v.AsMemory()); labels.AddRange(v.Select(x => x?.ToString(CultureInfo.InvariantCulture))); }
            else if (lt == typeof(short)) { var v = new short?[n]; await rg.ReadAsync<short>(labelField, v.AsMemory()); labels.AddRange(v.Select(x => x?.ToString(CultureInfo.InvariantCulture))); }
            else if (lt == typeof(sbyte)) { var v = new sbyte?[n]; await rg.ReadAsync<sbyte>(labelField, v.AsMemory()); labels.AddRange(v.Select(x => x?.ToString(CultureInfo.InvariantCulture))); }
            else if (lt == typeof(byte)) { var v = new byte?[n]; await rg.ReadAsync<byte>(labelField, v.AsMemory()); labels.AddRange(v.Select(x => x?.ToString(CultureInfo.InvariantCulture))); }
            else if (lt == typeof(string) || lt == typeof(ReadOnlyMemory<char>)) { var v = new string?[n]; await rg.ReadAsync(labelField, v.AsMemory()); labels.AddRange(v); }
            else throw new DataFormatException($"{path}: label column '{labelColumn}' has type {lt.Name}; expected integers or strings");
        }
        return new RawSplit(path, texts.ToArray(), labels.ToArray(), integer, HuggingFaceLabelNames(reader.CustomMetadata, labelColumn))
        {
            Pairs = pairs?.ToArray(),
            Warnings = pairColumn == null ? PairWarnings(path, textColumn, fields.Select(f => f.Name)) : [],
        };
    }

    /// <summary>How long reading a parquet footer may take; real footers take milliseconds.</summary>
    private static readonly TimeSpan FooterReadLimit = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Parquet.Net 6.1.0 loops forever on some corrupt footers (it reads past their end as 0xFF bytes;
    /// ParquetFooter.Check catches the plain cases, not those where its own parse goes astray), and
    /// nothing outside it can stop that loop. So the footer is read on a background thread with a time
    /// limit, past which the file is refused; the stuck thread then ends with the process.
    /// </summary>
    private static ParquetReader OpenParquet(string path)
    {
        ParquetReader? reader = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try { reader = ParquetReader.CreateAsync(path).GetAwaiter().GetResult(); }
            catch (Exception e) { error = e; }
        }) { IsBackground = true, Name = "parquet footer" };
        thread.Start();
        if (!thread.Join(FooterReadLimit))
            throw new DataFormatException($"{path}: reading the parquet footer did not finish in {FooterReadLimit.TotalSeconds:0} s: the file is corrupt");
        if (error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return reader!;
    }

    /// <summary>Class names from the "huggingface" metadata that datasets writes into parquet files (ClassLabel features).</summary>
    private static IReadOnlyList<string>? HuggingFaceLabelNames(IReadOnlyDictionary<string, string> metadata, string labelColumn)
    {
        if (!metadata.TryGetValue("huggingface", out var json)) return null;
        try
        {
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            if (root.TryGetProperty("info", out var info)) root = info;
            if (root.TryGetProperty("features", out var features) && features.TryGetProperty(labelColumn, out var f) && f.TryGetProperty("names", out var names))
                return names.EnumerateArray().Select(n => n.GetString() ?? "").ToArray();
        }
        catch (JsonException) { }
        return null;
    }

    private static string ReadUtf8(string path)
    {
        byte[] bytes;
        try { bytes = Gzipped(path) ? Gunzip(path) : File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException($"{path}: cannot read the file: {e.Message}", e);
        }
        try
        {
            int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, start, bytes.Length - start);
        }
        catch (DecoderFallbackException e)
        {
            throw new DataFormatException($"{path}: not valid UTF-8 (invalid byte at offset {e.Index}); re-save the file as UTF-8", e);
        }
    }

    /// <summary>
    /// CSV is read as RFC 4180 says (fields may be quoted, quotes inside doubled, line breaks inside
    /// quotes); TSV as GLUE and the IANA definition read it: no quoting at all, one row per line, so a
    /// `"` in a text is just a character. A stray quote in a CSV is an error, not a guess.
    /// </summary>
    private static RawSplit ReadDelimited(string path, string delimiter, string textColumn, string labelColumn, string? pairColumn)
    {
        bool tsv = delimiter == "\t";
        string format = tsv ? "TSV" : "CSV";
        string content = ReadUtf8(path);
        var config = new CsvConfiguration(CultureInfo.InvariantCulture)
        {
            Delimiter = delimiter,
            DetectDelimiter = false,
            Mode = tsv ? CsvMode.NoEscape : CsvMode.RFC4180,
            BadDataFound = args => throw new DataFormatException(
                $"{path}: malformed CSV at line {args.Context.Parser?.RawRow}: a quote inside the unquoted or badly closed field {Excerpt(args.Field)} " +
                "(RFC 4180: a field containing quotes must be quoted as a whole, with its quotes doubled)"),
        };
        using var csv = new CsvReader(new StringReader(content), config);
        string[]? header;
        try { header = csv.Read() && csv.ReadHeader() ? csv.HeaderRecord : null; }
        catch (CsvHelperException e) { throw new DataFormatException($"{path}: malformed {format} header: {e.Message}", e); }
        if (header is null) throw new DataFormatException($"{path}: empty file (expected a header row)");
        string names = string.Join(", ", header);
        int ti = Array.IndexOf(header, textColumn), li = Array.IndexOf(header, labelColumn), pi = pairColumn == null ? -1 : Array.IndexOf(header, pairColumn);
        if (ti < 0) throw MissingTextColumn(path, textColumn, header);
        if (pairColumn != null && pi < 0) throw MissingPairColumn(path, pairColumn, names);
        if (li < 0) throw new DataFormatException($"{path}: no label column '{labelColumn}' (columns: {names}; choose one with --label-column)") { MissingLabelColumn = labelColumn };
        var texts = new List<string>(); var labels = new List<string?>();
        var pairs = pairColumn == null ? null : new List<string>();
        int multiLineRows = 0;
        try
        {
            int rowStart = csv.Parser.RawRow + 1; // where the next record begins (blank lines aside)
            while (csv.Read())
            {
                var parser = csv.Parser;
                // a row with another number of fields is a shifted or merged row: never read it as data
                bool severalLines = ReadsSeveralLines(parser.RawRecord);
                if (parser.Count != header.Length)
                    throw new DataFormatException(severalLines
                        ? $"{path}: the row starting at line {rowStart} runs to line {rowStart + LineBreaksWithin(parser.RawRecord)} and has {parser.Count} fields, " +
                          $"but the header has {header.Length} ({names}): is a closing quote missing?"
                        : $"{path}: line {parser.RawRow} has {parser.Count} fields but the header has {header.Length} ({names})" +
                          (tsv ? "; TSV has no quoting, so a text may not contain a tab" : "; quote fields that contain commas"));
                if (severalLines) multiLineRows++;
                rowStart = parser.RawRow + 1;
                texts.Add(csv.GetField(ti) ?? "");
                pairs?.Add(csv.GetField(pi) ?? "");
                string? l = csv.GetField(li);
                labels.Add(string.IsNullOrWhiteSpace(l) ? null : l);
            }
        }
        catch (CsvHelperException e) { throw new DataFormatException($"{path}: malformed {format} near row {texts.Count + 1}: {e.Message}", e); }
        var warnings = new List<string>();
        int lines = CountNonBlankLines(content) - 1;
        if (tsv && lines != texts.Count)
            throw new DataFormatException($"{path}: read {texts.Count} rows from {lines} non-blank lines after the header; a TSV has one row per line");
        if (multiLineRows > 0)
            warnings.Add($"{path}: {multiLineRows} of {texts.Count} rows span several lines (quoted line breaks), so {lines} lines after the header gave {texts.Count} rows; check the file's quoting if that is unexpected");
        bool integer = labels.All(l => l == null || IsInteger(l));
        if (!integer) RefuseRealNumbers(path, labelColumn, labels);
        if (pairColumn == null) warnings.AddRange(PairWarnings(path, textColumn, header));
        return new RawSplit(path, texts.ToArray(), labels.ToArray(), integer, null) { Pairs = pairs?.ToArray(), Warnings = warnings };
    }

    /// <summary>A label column of numbers not all written as integers is refused, naming the first such row (counted
    /// from 0, as elsewhere): `datasets` reads it as floats, a regression target (STS-B's 3.8) that transformers
    /// trains with MSE, and read as text here it would become one class per spelling, ordered as text ("10.0"
    /// before "2.0"). Parquet and JSONL refuse float labels too.</summary>
    private static void RefuseRealNumbers(string path, string labelColumn, List<string?> labels)
    {
        int first = -1;
        bool whole = true;
        for (int i = 0; i < labels.Count; i++)
        {
            if (labels[i] is not string l) continue;
            if (!double.TryParse(l, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v)) return; // names
            if (IsInteger(l)) continue;
            if (first < 0) first = i;
            whole &= v == Math.Floor(v);
        }
        if (first < 0) return;
        throw new DataFormatException(whole
            ? $"{path}: column '{labelColumn}' holds class ids written as real numbers ('{labels[first]}' in row {first}); write them as integers " +
              "(datasets reads such a column as floats, a regression target)"
            : $"{path}: column '{labelColumn}' holds real numbers ('{labels[first]}' in row {first}), a regression target; mixup-bert trains " +
              "classifiers: give each row a class, an integer id or a name");
    }

    /// <summary>A gzip file's content, refused past what one string can hold (a decompression bomb, or a file too large to
    /// read whole as the text formats are).</summary>
    private static byte[] Gunzip(string path)
    {
        const long Limit = 1L << 30;
        try
        {
            using var gzip = new System.IO.Compression.GZipStream(File.OpenRead(path), System.IO.Compression.CompressionMode.Decompress);
            using var content = new MemoryStream();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = gzip.Read(buffer)) > 0)
            {
                if (content.Length + n > Limit) throw new DataFormatException($"{path}: decompresses to more than {Limit >> 30} GiB; decompress it and give the file itself, or parquet");
                content.Write(buffer, 0, n);
            }
            // GZipStream ends quietly where a cut file ends: the trailer's length (ISIZE, mod 2^32) tells (Python's gzip
            // raises EOFError there). A file of several gzip members joined fails this too: decompressed, it reads.
            using var file = File.OpenRead(path);
            Span<byte> trailer = stackalloc byte[4];
            file.Seek(-Math.Min(4, file.Length), SeekOrigin.End);
            if (file.Length < 4 || file.Read(trailer) != 4 || BitConverter.ToUInt32(trailer) != (uint)content.Length)
                throw new DataFormatException($"{path}: the gzip file ends early ({content.Length} bytes decompressed, which its trailer does not confirm): " +
                    "a cut download or copy? (a file of several gzip members joined: decompress it and give the file itself)");
            return content.ToArray();
        }
        catch (InvalidDataException e) { throw new DataFormatException($"{path}: not a readable gzip file ({e.Message})", e); }
    }

    private static bool IsInteger(string label) => long.TryParse(label, NumberStyles.Integer, CultureInfo.InvariantCulture, out _);

    private static bool ReadsSeveralLines(string? rawRecord) => LineBreaksWithin(rawRecord) > 0;

    /// <summary>Line breaks (\n, \r\n or \r) inside a record, not counting the one that ends it.</summary>
    private static int LineBreaksWithin(string? rawRecord)
    {
        var text = (rawRecord ?? "").AsSpan().TrimEnd("\r\n");
        int breaks = 0;
        for (int i = 0; i < text.Length; i++)
            if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == text.Length || text[i + 1] != '\n'))) breaks++;
        return breaks;
    }

    /// <summary>Lines holding something, ended by \n, \r\n or \r as the CSV parser ends them (it skips empty lines).</summary>
    private static int CountNonBlankLines(string content)
    {
        int count = 0;
        bool any = false;
        for (int i = 0; i < content.Length; i++)
        {
            char ch = content[i];
            if (ch is '\n' or '\r')
            {
                if (any) count++;
                any = false;
                if (ch == '\r' && i + 1 < content.Length && content[i + 1] == '\n') i++;
            }
            else any = true;
        }
        return any ? count + 1 : count;
    }

    private static string Excerpt(string field) => field.Length <= 60 ? $"'{field}'" : $"'{field[..60]}...'";

    private static RawSplit ReadJsonLines(string path, string textColumn, string labelColumn, string? pairColumn)
    {
        string content = ReadUtf8(path);
        var texts = new List<string>(); var labels = new List<string?>();
        var pairs = pairColumn == null ? null : new List<string>();
        string? firstNumber = null, firstString = null; // where each label type first appears
        IReadOnlyList<string> warnings = [];
        foreach (var (row, where) in JsonRows(path, content))
        {
            var (text, pair, label, kind) = ReadJsonRow(path, row, where, textColumn, labelColumn, pairColumn);
            if (texts.Count == 0 && pairColumn == null) warnings = PairWarnings(path, textColumn, KeysOf(row));
            texts.Add(text);
            pairs?.Add(pair!);
            labels.Add(label);
            if (kind == JsonValueKind.Number) firstNumber ??= where;
            if (kind == JsonValueKind.String) firstString ??= where;
        }
        if (firstNumber is string n && firstString is string s)
            throw new DataFormatException($"{path}: column '{labelColumn}' mixes numbers (first on {n}) and strings (first on {s}); " +
                "labels must be all class ids or all class names");
        return new RawSplit(path, texts.ToArray(), labels.ToArray(), firstString == null, null) { Pairs = pairs?.ToArray(), Warnings = warnings };
    }

    /// <summary>The rows of a JSON file as `datasets`' json builder reads them: JSON Lines (an object a line, "line N"
    /// in messages), or one array of objects ("row N", counted from 0).</summary>
    private static IEnumerable<(string Row, string Where)> JsonRows(string path, string content)
    {
        if (content.AsSpan().TrimStart().StartsWith("["))
        {
            JsonDocument doc;
            try { doc = JsonDocument.Parse(content, StrictJson); }
            catch (JsonException e) { throw new DataFormatException($"{path}: a JSON array that is not valid JSON: {e.Message}", e); }
            using (doc)
            {
                int i = 0;
                foreach (var element in doc.RootElement.EnumerateArray()) yield return (element.GetRawText(), $"row {i++}");
            }
            yield break;
        }
        int lineNo = 0;
        foreach (var line in content.Split('\n'))
        {
            lineNo++;
            if (!string.IsNullOrWhiteSpace(line)) yield return (line, $"line {lineNo}");
        }
    }

    private static List<string> KeysOf(string jsonObjectLine)
    {
        using var doc = JsonDocument.Parse(jsonObjectLine, StrictJson);
        return doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
    }

    /// <summary>The second halves of the sentence pairs that benchmarks keep in two columns (GLUE's
    /// sentence1/sentence2, question1/question2, premise/hypothesis, question/sentence; BoolQ's
    /// question/passage), keyed by the first.</summary>
    private static readonly (string First, string Second)[] PairColumns =
        [("sentence1", "sentence2"), ("question1", "question2"), ("premise", "hypothesis"), ("hypothesis", "premise"),
         ("question", "sentence"), ("sentence", "question"), ("question", "passage"), ("passage", "question"), ("text1", "text2"), ("text_a", "text_b")];

    /// <summary>A warning when single texts are read from one half of a sentence pair whose other half the file
    /// also has: the model would be trained on half of each example.</summary>
    private static IReadOnlyList<string> PairWarnings(string path, string textColumn, IEnumerable<string> columns)
    {
        var names = columns.ToHashSet(StringComparer.Ordinal);
        return PairColumns.Where(p => p.First == textColumn && names.Contains(p.Second))
            .Select(p => $"{path}: the file also has column '{p.Second}', the other half of a '{p.First}'/'{p.Second}' sentence pair, " +
                $"but only '{textColumn}' is read (half of each example); classify the pairs with --text-pair-column {p.Second}").ToList();
    }

    /// <summary>No such text column; where the file holds a known sentence pair, the options that read it.</summary>
    private static DataFormatException MissingTextColumn(string path, string textColumn, IEnumerable<string> columns)
    {
        var names = columns.ToList();
        return new DataFormatException($"{path}: no text column '{textColumn}' (columns: {string.Join(", ", names)}; choose one with --text-column{PairHint(names)})");
    }

    /// <summary>"; for its sentence pairs: --text-column A --text-pair-column B" where the columns hold a known pair.</summary>
    private static string PairHint(IReadOnlyCollection<string> columns)
    {
        var pair = PairColumns.FirstOrDefault(p => columns.Contains(p.First) && columns.Contains(p.Second));
        return pair.First == null ? "" : $"; for its sentence pairs: --text-column {pair.First} --text-pair-column {pair.Second}";
    }

    private static DataFormatException MissingPairColumn(string path, string pairColumn, string names) =>
        new($"{path}: no text pair column '{pairColumn}' (columns: {names}; choose the second text's column with --text-pair-column)");

    private static readonly JsonDocumentOptions StrictJson = new() { AllowDuplicateProperties = false };

    /// <summary>One JSONL row: its text, its second text (null when <paramref name="pairColumn"/> is), its label as a
    /// string (null when missing) and the label's JSON kind.</summary>
    private static (string Text, string? Pair, string? Label, JsonValueKind Kind) ReadJsonRow(string path, string line, string where,
        string textColumn, string labelColumn, string? pairColumn)
    {
        try
        {
            using var doc = JsonDocument.Parse(line, StrictJson);
            var row = doc.RootElement;
            if (row.ValueKind != JsonValueKind.Object) throw new DataFormatException($"{path}: {where} is not a JSON object");
            if (!row.TryGetProperty(textColumn, out var t))
            {
                var keys = row.EnumerateObject().Select(p => p.Name).ToList();
                throw new DataFormatException($"{path}: {where} has no text column '{textColumn}' (keys: {string.Join(", ", keys)}; choose one with --text-column{PairHint(keys)})");
            }
            JsonElement second = default;
            if (pairColumn != null && !row.TryGetProperty(pairColumn, out second))
                throw new DataFormatException($"{path}: {where} has no text pair column '{pairColumn}' (keys: {string.Join(", ", row.EnumerateObject().Select(p => p.Name))}; choose one with --text-pair-column)");
            if (!row.TryGetProperty(labelColumn, out var l))
                throw new DataFormatException($"{path}: {where} has no label column '{labelColumn}' (keys: {string.Join(", ", row.EnumerateObject().Select(p => p.Name))}; choose one with --label-column)") { MissingLabelColumn = labelColumn };
            string TextOf(JsonElement e, string column) => e.ValueKind switch
            {
                JsonValueKind.String => e.GetString()!,
                JsonValueKind.Null => throw new DataFormatException($"{path}: {where}: column '{column}': missing text (null)"),
                _ => e.GetRawText(),
            };
            string text = TextOf(t, textColumn);
            string? pair = pairColumn == null ? null : TextOf(second, pairColumn);
            string? label = l.ValueKind switch
            {
                JsonValueKind.Number => l.TryGetInt64(out long v) ? v.ToString(CultureInfo.InvariantCulture)
                    : throw new DataFormatException($"{path}: {where}: column '{labelColumn}': label {l.GetRawText()} is not an integer"),
                JsonValueKind.String => l.GetString(),
                JsonValueKind.Null => null,
                _ => throw new DataFormatException($"{path}: {where}: column '{labelColumn}': label {l.GetRawText()} is neither an integer nor a string"),
            };
            return (text, pair, label, l.ValueKind);
        }
        catch (JsonException e) { throw new DataFormatException($"{path}: {where} is not valid JSON: {e.Message}", e); }
        catch (InvalidOperationException e) { throw new DataFormatException($"{path}: {where}: unreadable value: {e.Message}", e); }
    }
}
