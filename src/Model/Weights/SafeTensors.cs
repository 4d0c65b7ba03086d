using System.IO.MemoryMappedFiles;
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

    public SafeTensorsReader(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new ModelFormatException($"{path}: file not found");
        long fileLength;
        using (var probe = File.OpenRead(path)) fileLength = probe.Length; // follows symlinks (the Hub cache's snapshots are links)
        if (fileLength < 8) throw new ModelFormatException($"{path}: truncated safetensors file ({fileLength} bytes, the 8-byte header length alone needs 8)");

        byte[] header;
        using (var fs = File.OpenRead(path))
        {
            Span<byte> lenBytes = stackalloc byte[8];
            fs.ReadExactly(lenBytes);
            ulong headerLength = BitConverter.ToUInt64(lenBytes);
            if (headerLength > (ulong)(fileLength - 8))
                throw new ModelFormatException($"{path}: header length {headerLength} runs past the end of the file ({fileLength} bytes): the file is truncated or not safetensors");
            if (headerLength > 100_000_000)
                throw new ModelFormatException($"{path}: header length {headerLength} is implausibly large");
            header = new byte[headerLength];
            fs.ReadExactly(header);
        }
        dataStart = 8 + header.Length;
        long dataLength = fileLength - dataStart;
        ParseHeader(header, dataLength);

        if (fileLength > 0 && dataLength > 0)
        {
            map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        }
    }

    private void ParseHeader(byte[] header, long dataLength)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw new ModelFormatException($"{Path}: the safetensors header is not valid JSON: {e.Message}", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{Path}: the safetensors header is not a JSON object");
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind == JsonValueKind.Object)
                        foreach (var m in prop.Value.EnumerateObject())
                            ((Dictionary<string, string>)Metadata)[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                tensors[prop.Name] = ParseEntry(prop.Name, prop.Value, dataLength);
            }
        }
        // offsets must not overlap: sort by start and compare neighbours
        var sorted = tensors.Values.Where(t => t.End > t.Begin).OrderBy(t => t.Begin).ToList();
        for (int i = 1; i < sorted.Count; i++)
            if (sorted[i].Begin < sorted[i - 1].End)
                throw new ModelFormatException($"{Path}: tensor '{sorted[i].Name}' (bytes {sorted[i].Begin}..{sorted[i].End}) overlaps tensor '{sorted[i - 1].Name}' (bytes {sorted[i - 1].Begin}..{sorted[i - 1].End})");
    }

    private TensorInfo ParseEntry(string name, JsonElement e, long dataLength)
    {
        string Where() => $"{Path}: tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{Where()}: header entry is not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw new ModelFormatException($"{Where()}: no dtype");
        string dtype = dt.GetString()!;
        if (!DTypeSizes.TryGetValue(dtype, out int size)) throw new ModelFormatException($"{Where()}: unknown dtype '{dtype}'");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw new ModelFormatException($"{Where()}: no shape");
        var shape = new List<long>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0) throw new ModelFormatException($"{Where()}: invalid shape {sh.GetRawText()}");
            shape.Add(v);
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new ModelFormatException($"{Where()}: data_offsets must be [begin, end]");
        if (!off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new ModelFormatException($"{Where()}: invalid data_offsets {off.GetRawText()}");
        if (end > dataLength)
            throw new ModelFormatException($"{Where()}: data_offsets [{begin}, {end}] lie outside the data section ({dataLength} bytes): the file is truncated or corrupt");
        var info = new TensorInfo(name, dtype, shape.ToArray(), begin, end);
        long expected;
        try { expected = checked(info.ElementCount * size); }
        catch (OverflowException) { throw new ModelFormatException($"{Where()}: shape {info.ShapeText} is too large"); }
        if (expected != end - begin)
            throw new ModelFormatException($"{Where()}: shape {info.ShapeText} × {dtype} ({size} bytes) is {expected} bytes but data_offsets span {end - begin}");
        return info;
    }

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
                    new ReadOnlySpan<byte>(src, (int)(n * 4)).CopyTo(MemoryMarshal.AsBytes(destination));
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
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            fs.Write(BitConverter.GetBytes((ulong)padded));
            fs.Write(headerBytes);
            foreach (var (_, _, data) in tensors)
            {
                if (size == 4) { fs.Write(MemoryMarshal.AsBytes(data.Span)); continue; }
                var half = new ushort[data.Length];
                var src = data.Span;
                for (int i = 0; i < half.Length; i++)
                    half[i] = dtype == "F16" ? BitConverter.HalfToUInt16Bits((Half)src[i]) : ToBFloat16(src[i]);
                fs.Write(MemoryMarshal.AsBytes(half.AsSpan()));
            }
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>float32 → bfloat16, rounding to nearest even (NaN stays NaN).</summary>
    private static ushort ToBFloat16(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        if (float.IsNaN(v)) return (ushort)((bits >> 16) | 0x40);
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }
}
