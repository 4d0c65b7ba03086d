using System.Globalization;
using System.Text;
using System.Text.Json;
using CsvHelper;
using CsvHelper.Configuration;
using Parquet;

namespace MixupBert.Model.Data;

/// <summary>One split as read from a file: a text and a raw label (string form) per row.</summary>
public sealed record RawSplit(string Source, string[] Texts, string?[] Labels, bool IntegerLabels, IReadOnlyList<string>? LabelNames);

/// <summary>
/// Reads the text and label columns of a parquet, CSV/TSV or JSONL file. Text files must be UTF-8
/// (a BOM is allowed); anything else is reported with the file's name, never half-read.
/// </summary>
public static class TextTable
{
    public static readonly string[] Extensions = { ".parquet", ".csv", ".tsv", ".jsonl", ".json" };

    public static RawSplit Read(string path, string textColumn, string labelColumn)
    {
        if (!File.Exists(path)) throw new DataFormatException($"{path}: file not found");
        string ext = Path.GetExtension(path).ToLowerInvariant();
        return ext switch
        {
            ".parquet" => ReadParquet(path, textColumn, labelColumn),
            ".csv" => ReadDelimited(path, ",", textColumn, labelColumn),
            ".tsv" => ReadDelimited(path, "\t", textColumn, labelColumn),
            ".jsonl" or ".json" => ReadJsonLines(path, textColumn, labelColumn),
            _ => throw new DataFormatException($"{path}: unsupported file type '{ext}' (parquet, csv, tsv or jsonl)"),
        };
    }

    private static RawSplit ReadParquet(string path, string textColumn, string labelColumn)
    {
        try
        {
            return ReadParquetAsync(path, textColumn, labelColumn).GetAwaiter().GetResult();
        }
        catch (DataFormatException) { throw; }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or InvalidOperationException or Parquet.ParquetException)
        {
            throw new DataFormatException($"{path}: not a readable parquet file: {e.Message}", e);
        }
    }

    private static async Task<RawSplit> ReadParquetAsync(string path, string textColumn, string labelColumn)
    {
        await using var reader = await ParquetReader.CreateAsync(path);
        var fields = reader.Schema.GetDataFields();
        string names = string.Join(", ", fields.Select(f => f.Name));
        var textField = fields.FirstOrDefault(f => f.Name == textColumn)
            ?? throw new DataFormatException($"{path}: no text column '{textColumn}' (columns: {names}; choose one with --text-column)");
        var labelField = fields.FirstOrDefault(f => f.Name == labelColumn)
            ?? throw new DataFormatException($"{path}: no label column '{labelColumn}' (columns: {names}; choose one with --label-column)");
        var texts = new List<string>();
        var labels = new List<string?>();
        Type lt = labelField.ClrType;
        bool integer = lt == typeof(long) || lt == typeof(int) || lt == typeof(short) || lt == typeof(sbyte) || lt == typeof(byte);
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroupReader(g);
            int n = (int)rg.RowCount;
            var t = new string?[n];
            await rg.ReadAsync(textField, t.AsMemory());
            for (int i = 0; i < n; i++) texts.Add(t[i] ?? throw new DataFormatException($"{path}: column '{textColumn}', row {texts.Count}: missing text (null)"));
            if (lt == typeof(long)) { var v = new long?[n]; await rg.ReadAsync<long>(labelField, v.AsMemory()); labels.AddRange(v.Select(x => x?.ToString(CultureInfo.InvariantCulture))); }
            else if (lt == typeof(int)) { var v = new int?[n]; await rg.ReadAsync<int>(labelField, v.AsMemory()); labels.AddRange(v.Select(x => x?.ToString(CultureInfo.InvariantCulture))); }
            else if (lt == typeof(string) || lt == typeof(ReadOnlyMemory<char>)) { var v = new string?[n]; await rg.ReadAsync(labelField, v.AsMemory()); labels.AddRange(v); }
            else throw new DataFormatException($"{path}: label column '{labelColumn}' has type {lt.Name}; expected integers or strings");
        }
        return new RawSplit(path, texts.ToArray(), labels.ToArray(), integer, HuggingFaceLabelNames(reader.CustomMetadata, labelColumn));
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
        var bytes = File.ReadAllBytes(path);
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

    private static RawSplit ReadDelimited(string path, string delimiter, string textColumn, string labelColumn)
    {
        string content = ReadUtf8(path);
        var config = new CsvConfiguration(CultureInfo.InvariantCulture) { Delimiter = delimiter, DetectDelimiter = false, BadDataFound = null };
        using var csv = new CsvReader(new StringReader(content), config);
        if (!csv.Read() || !csv.ReadHeader() || csv.HeaderRecord is null) throw new DataFormatException($"{path}: empty file (expected a header row)");
        var header = csv.HeaderRecord;
        string names = string.Join(", ", header);
        int ti = Array.IndexOf(header, textColumn), li = Array.IndexOf(header, labelColumn);
        if (ti < 0) throw new DataFormatException($"{path}: no text column '{textColumn}' (columns: {names}; choose one with --text-column)");
        if (li < 0) throw new DataFormatException($"{path}: no label column '{labelColumn}' (columns: {names}; choose one with --label-column)");
        var texts = new List<string>(); var labels = new List<string?>();
        try
        {
            while (csv.Read())
            {
                texts.Add(csv.GetField(ti) ?? "");
                string? l = csv.GetField(li);
                labels.Add(string.IsNullOrWhiteSpace(l) ? null : l.Trim());
            }
        }
        catch (CsvHelperException e) { throw new DataFormatException($"{path}: malformed {(delimiter == "\t" ? "TSV" : "CSV")} near row {texts.Count + 1}: {e.Message}", e); }
        bool integer = labels.All(l => l == null || long.TryParse(l, NumberStyles.Integer, CultureInfo.InvariantCulture, out _));
        return new RawSplit(path, texts.ToArray(), labels.ToArray(), integer, null);
    }

    private static RawSplit ReadJsonLines(string path, string textColumn, string labelColumn)
    {
        string content = ReadUtf8(path);
        var texts = new List<string>(); var labels = new List<string?>();
        bool integer = true;
        int lineNo = 0;
        foreach (var line in content.Split('\n'))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement row;
            try { row = JsonDocument.Parse(line).RootElement; }
            catch (JsonException e) { throw new DataFormatException($"{path}: line {lineNo} is not valid JSON: {e.Message}", e); }
            if (row.ValueKind != JsonValueKind.Object) throw new DataFormatException($"{path}: line {lineNo} is not a JSON object");
            if (!row.TryGetProperty(textColumn, out var t))
                throw new DataFormatException($"{path}: line {lineNo} has no text column '{textColumn}' (keys: {string.Join(", ", row.EnumerateObject().Select(p => p.Name))}; choose one with --text-column)");
            if (!row.TryGetProperty(labelColumn, out var l))
                throw new DataFormatException($"{path}: line {lineNo} has no label column '{labelColumn}' (keys: {string.Join(", ", row.EnumerateObject().Select(p => p.Name))}; choose one with --label-column)");
            texts.Add(t.ValueKind == JsonValueKind.String ? t.GetString()! : t.GetRawText());
            switch (l.ValueKind)
            {
                case JsonValueKind.Number:
                    if (!l.TryGetInt64(out long v)) throw new DataFormatException($"{path}: line {lineNo}: label {l.GetRawText()} is not an integer");
                    labels.Add(v.ToString(CultureInfo.InvariantCulture)); break;
                case JsonValueKind.String: integer = false; labels.Add(l.GetString()); break;
                case JsonValueKind.Null: labels.Add(null); break;
                default: throw new DataFormatException($"{path}: line {lineNo}: label {l.GetRawText()} is neither an integer nor a string");
            }
        }
        return new RawSplit(path, texts.ToArray(), labels.ToArray(), integer, null);
    }
}
