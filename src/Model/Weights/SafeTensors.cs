using System.IO.MemoryMappedFiles;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace MixupBert.Model.Weights;

/// <summary>A problem with a weights or config file; the message names the file and, where there is one, the tensor.</summary>
public sealed class ModelFormatException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record TensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// Reads a .safetensors file (8-byte little-endian header length, a JSON header, raw data) through a
/// memory map, validating the header against the file before any tensor is touched. F32, F16 and
/// BF16 tensors read as float32; other known dtypes are recognised (so unused tensors such as
/// int64 position_ids can be skipped) but cannot be read as floats.
/// </summary>
public sealed class SafeTensorsReader : IDisposable
{
    private static readonly Dictionary<string, int> DTypeSizes = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1,
        ["U8"] = 1, ["U16"] = 2, ["U32"] = 4, ["U64"] = 8, ["BOOL"] = 1, ["F8_E4M3"] = 1, ["F8_E5M2"] = 1,
    };

    private readonly MemoryMappedFile? map;
    private readonly MemoryMappedViewAccessor? view;
    private readonly long dataStart;
    private readonly Dictionary<string, TensorInfo> tensors = new(StringComparer.Ordinal);

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();
    public IReadOnlyCollection<TensorInfo> Tensors => tensors.Values;

    /// <summary>The Python library's bound on the header; a larger declared length is a corrupt file.</summary>
    private const ulong MaxHeaderLength = 100_000_000;

    public SafeTensorsReader(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new ModelFormatException($"{path}: file not found");
        try
        {
            long fileLength;
            byte[] header;
            using (var fs = File.OpenRead(path)) // follows symlinks (the Hub cache's snapshots are links)
            {
                fileLength = fs.Length;
                header = ReadHeaderBytes(fs, fileLength);
            }
            dataStart = 8 + header.Length;
            long dataLength = fileLength - dataStart;
            ParseHeader(header, dataLength);
            if (dataLength > 0)
            {
                map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
                view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Dispose();
            throw new ModelFormatException($"{path}: cannot read the file: {e.Message}", e);
        }
    }

    private byte[] ReadHeaderBytes(FileStream fs, long fileLength)
    {
        if (fileLength < 8) throw new ModelFormatException($"{Path}: truncated safetensors file ({fileLength} bytes, the 8-byte header length alone needs 8)");
        Span<byte> lenBytes = stackalloc byte[8];
        fs.ReadExactly(lenBytes);
        ulong headerLength = BitConverter.ToUInt64(lenBytes);
        if (headerLength > (ulong)(fileLength - 8))
            throw new ModelFormatException($"{Path}: header length {headerLength} runs past the end of the file ({fileLength} bytes): the file is truncated or not safetensors");
        if (headerLength > MaxHeaderLength)
            throw new ModelFormatException($"{Path}: header length {headerLength} is implausibly large (at most {MaxHeaderLength})");
        var header = new byte[headerLength];
        fs.ReadExactly(header);
        return header;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    private void ParseHeader(byte[] header, long dataLength)
    {
        try { StrictUtf8.GetCharCount(header); } // JsonDocument checks UTF-8 only lazily, inside strings
        catch (DecoderFallbackException e) { throw new ModelFormatException($"{Path}: the safetensors header is not valid UTF-8 (invalid byte at offset {8 + e.Index})", e); }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw new ModelFormatException($"{Path}: the safetensors header is not valid JSON: {e.Message}", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{Path}: the safetensors header is not a JSON object");
            bool sawMetadata = false;
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (sawMetadata) throw new ModelFormatException($"{Path}: the safetensors header has __metadata__ twice");
                    sawMetadata = true;
                    ReadMetadata(prop.Value);
                    continue;
                }
                var info = ParseEntry(prop.Name, prop.Value, dataLength);
                if (!tensors.TryAdd(prop.Name, info)) throw new ModelFormatException($"{Path}: tensor '{prop.Name}' appears twice in the header");
            }
        }
        CheckOffsetsTileTheData(dataLength);
    }

    /// <summary>__metadata__ is a map of strings to strings, as the Python library requires.</summary>
    private void ReadMetadata(JsonElement m)
    {
        if (m.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{Path}: __metadata__ must be an object of strings, got {m.ValueKind}");
        foreach (var entry in m.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new ModelFormatException($"{Path}: __metadata__ entry '{entry.Name}' must be a string, got {entry.Value.ValueKind}");
            ((Dictionary<string, string>)Metadata)[entry.Name] = entry.Value.GetString()!;
        }
    }

    /// <summary>As the Python library checks: sorted by offset, the tensors cover the data section
    /// exactly, with no overlap, gap or trailing bytes.</summary>
    private void CheckOffsetsTileTheData(long dataLength)
    {
        var sorted = tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End).ToList();
        long expectedBegin = 0;
        TensorInfo? previous = null;
        foreach (var t in sorted)
        {
            if (t.Begin < expectedBegin)
                throw new ModelFormatException($"{Path}: tensor '{t.Name}' (bytes {t.Begin}..{t.End}) overlaps tensor '{previous!.Name}' (bytes {previous.Begin}..{previous.End})");
            if (t.Begin > expectedBegin)
                throw new ModelFormatException($"{Path}: tensor '{t.Name}' starts at byte {t.Begin} but the previous tensor ends at {expectedBegin}: {t.Begin - expectedBegin} bytes of the data belong to no tensor");
            expectedBegin = t.End;
            previous = t;
        }
        if (expectedBegin != dataLength)
            throw new ModelFormatException($"{Path}: the tensors cover {expectedBegin} bytes but the data section has {dataLength}: the header does not describe the whole file");
    }

    private TensorInfo ParseEntry(string name, JsonElement e, long dataLength)
    {
        string Where() => $"{Path}: tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{Where()}: header entry is not an object");
        JsonElement? dt = null, sh = null, off = null;
        foreach (var field in e.EnumerateObject())
        {
            ref JsonElement? slot = ref dt;
            if (field.Name == "dtype") slot = ref dt;
            else if (field.Name == "shape") slot = ref sh;
            else if (field.Name == "data_offsets") slot = ref off;
            else continue; // unknown fields are ignored, as the Python library does
            if (slot != null) throw new ModelFormatException($"{Where()}: '{field.Name}' appears twice");
            slot = field.Value;
        }
        if (dt is not { ValueKind: JsonValueKind.String } dtElement) throw new ModelFormatException($"{Where()}: no dtype (a string)");
        string dtype = dtElement.GetString()!;
        if (!DTypeSizes.TryGetValue(dtype, out int size)) throw new ModelFormatException($"{Where()}: unknown dtype '{dtype}'");
        if (sh is not { ValueKind: JsonValueKind.Array } shElement) throw new ModelFormatException($"{Where()}: no shape (an array of sizes)");
        var shape = new List<long>();
        long elements = 1;
        foreach (var d in shElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw new ModelFormatException($"{Where()}: invalid shape {Shorten(shElement.GetRawText())}: sizes are integers, 0 or more");
            shape.Add(v);
            // the product must not wrap around: a wrapped count could match a short byte range
            if (elements != 0 && v > long.MaxValue / Math.Max(elements, 1) / size)
                throw new ModelFormatException($"{Where()}: shape {Shorten(shElement.GetRawText())} is too large");
            elements *= v;
        }
        if (off is not { ValueKind: JsonValueKind.Array } offElement || offElement.GetArrayLength() != 2)
            throw new ModelFormatException($"{Where()}: data_offsets must be [begin, end]");
        if (offElement[0].ValueKind != JsonValueKind.Number || offElement[1].ValueKind != JsonValueKind.Number
            || !offElement[0].TryGetInt64(out long begin) || !offElement[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new ModelFormatException($"{Where()}: invalid data_offsets {Shorten(offElement.GetRawText())}: two integers, 0 <= begin <= end");
        if (end > dataLength)
            throw new ModelFormatException($"{Where()}: data_offsets [{begin}, {end}] lie outside the data section ({dataLength} bytes): the file is truncated or corrupt");
        var info = new TensorInfo(name, dtype, shape.ToArray(), begin, end);
        long expected = elements * size;
        if (expected != end - begin)
            throw new ModelFormatException($"{Where()}: shape {info.ShapeText} × {dtype} ({size} bytes) is {expected} bytes but data_offsets span {end - begin}");
        return info;
    }

    private static string Shorten(string json) => json.Length <= 60 ? json : json[..60] + "...";

    public bool Contains(string name) => tensors.ContainsKey(name);

    public TensorInfo Info(string name) =>
        tensors.TryGetValue(name, out var t) ? t : throw new ModelFormatException($"{Path}: missing tensor '{name}'");

    /// <summary>Reads a floating-point tensor into <paramref name="destination"/> as float32.</summary>
    public unsafe void ReadFloat32(string name, Span<float> destination)
    {
        var t = Info(name);
        if (destination.Length != t.ElementCount)
            throw new ModelFormatException($"{Path}: tensor '{name}' has {t.ElementCount} elements {t.ShapeText}, expected {destination.Length}");
        if (t.ElementCount == 0) return;
        byte* basePtr = null;
        view!.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
        try
        {
            byte* src = basePtr + view.PointerOffset + dataStart + t.Begin;
            long n = t.ElementCount;
            switch (t.DType)
            {
                case "F32":
                    new ReadOnlySpan<float>(src, (int)n).CopyTo(destination);
                    break;
                case "F16":
                    {
                        var h = new ReadOnlySpan<Half>(src, (int)n);
                        for (int i = 0; i < n; i++) destination[i] = (float)h[i];
                        break;
                    }
                case "BF16":
                    {
                        var h = new ReadOnlySpan<ushort>(src, (int)n);
                        for (int i = 0; i < n; i++) destination[i] = BitConverter.Int32BitsToSingle(h[i] << 16);
                        break;
                    }
                case "F64":
                    {
                        var h = new ReadOnlySpan<double>(src, (int)n);
                        for (int i = 0; i < n; i++) destination[i] = (float)h[i];
                        break;
                    }
                default:
                    throw new ModelFormatException($"{Path}: tensor '{name}' has dtype {t.DType}, which cannot be read as floating point");
            }
        }
        finally { view.SafeMemoryMappedViewHandle.ReleasePointer(); }
        RequireFinite(name, t, destination);
    }

    /// <summary>A NaN or infinite weight makes every output NaN; refuse it here, naming the tensor,
    /// rather than let training stop at step one or evaluation report a NaN loss.</summary>
    private void RequireFinite(string name, TensorInfo t, ReadOnlySpan<float> values)
    {
        if (TensorPrimitives.IsFiniteAll(values)) return;
        int i = 0;
        while (float.IsFinite(values[i])) i++;
        string what = float.IsNaN(values[i]) ? "NaN" : values[i] > 0 ? "+Infinity" : "-Infinity";
        if (t.DType == "F64" && !float.IsNaN(values[i])) what += " (as float32)";
        throw new ModelFormatException($"{Path}: tensor '{name}' {t.ShapeText} holds {what} at element {i}: a checkpoint's weights must be finite");
    }

    public void Dispose()
    {
        view?.Dispose();
        map?.Dispose();
    }
}

/// <summary>
/// Writes float32 tensors as a .safetensors file the way the Python library does: header padded
/// with spaces to a multiple of 8, "__metadata__": {"format": "pt"}, data in header order. The file
/// is written to a temporary name and renamed, so a crash never leaves a torn file behind.
/// </summary>
public static class SafeTensorsWriter
{
    /// <param name="dtype">F32, or F16 / BF16 to store the float32 data at half the size (rounded to nearest).</param>
    public static void Write(string path, IReadOnlyList<(string Name, long[] Shape, ReadOnlyMemory<float> Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null, string dtype = "F32")
    {
        int size = dtype switch { "F32" => 4, "F16" or "BF16" => 2, _ => throw new ArgumentException($"cannot write dtype '{dtype}' (F32, F16, BF16)") };
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            w.WriteString("format", "pt");
            if (metadata != null) foreach (var kv in metadata) if (kv.Key != "format") w.WriteString(kv.Key, kv.Value);
            w.WriteEndObject();
            long offset = 0;
            foreach (var (name, shape, data) in tensors)
            {
                long count = shape.Aggregate(1L, (a, b) => a * b);
                if (count != data.Length) throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", shape)}] has {count} elements but {data.Length} were given");
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype);
                w.WriteStartArray("shape");
                foreach (long d in shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + count * size);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += count * size;
            }
            w.WriteEndObject();
        }
        byte[] json = buffer.WrittenSpan.ToArray();
        int padded = (json.Length + 7) / 8 * 8;
        var headerBytes = new byte[padded];
        json.CopyTo(headerBytes, 0);
        for (int i = json.Length; i < padded; i++) headerBytes[i] = (byte)' ';

        string tmp = path + ".tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                fs.Write(BitConverter.GetBytes((ulong)padded));
                fs.Write(headerBytes);
                foreach (var (name, _, data) in tensors)
                {
                    if (size == 4) { fs.Write(MemoryMarshal.AsBytes(data.Span)); continue; }
                    var half = new ushort[data.Length];
                    var src = data.Span;
                    for (int i = 0; i < half.Length; i++)
                        half[i] = dtype == "F16" ? ToFloat16(src[i], name, i) : ToBFloat16(src[i]);
                    fs.Write(MemoryMarshal.AsBytes(half.AsSpan()));
                }
                fs.Flush(flushToDisk: true);
            }
        }
        catch
        {
            File.Delete(tmp); // a refused value leaves no half-written file behind
            throw;
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>float32 → float16; a finite value beyond float16's range (65504) would become infinite, so it is refused.</summary>
    private static ushort ToFloat16(float v, string tensor, int index)
    {
        var h = (Half)v;
        if (Half.IsInfinity(h) && float.IsFinite(v))
            throw new ArgumentException($"tensor '{tensor}': element {index} ({v}) is outside float16's range; store it as bf16 or f32");
        return BitConverter.HalfToUInt16Bits(h);
    }

    /// <summary>float32 → bfloat16, rounding to nearest even (NaN stays NaN).</summary>
    private static ushort ToBFloat16(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        if (float.IsNaN(v)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }
}
