using System.Text.Json.Nodes;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Weights;

public class CheckpointTests
{
    [Fact]
    public void LoadSaveLoadGivesIdenticalTensorsAndTransformersNames()
    {
        var (config, parameters, _) = BertCheckpoint.Load(MiniLmDir, labels: new[] { "neg", "pos" });
        var dir = TempDir();
        BertCheckpoint.Save(dir, config, parameters);
        var (config2, parameters2, report) = BertCheckpoint.Load(dir);
        Assert.Equal(parameters, parameters2);
        Assert.Empty(report.Initialized);
        Assert.Empty(report.Unexpected);
        Assert.Empty(report.SourceNames); // saved under the canonical names

        using var reader = new SafeTensorsReader(Path.Combine(dir, "model.safetensors"));
        var names = reader.Tensors.Select(t => t.Name).ToHashSet();
        Assert.Contains("bert.embeddings.word_embeddings.weight", names);
        Assert.Contains("bert.encoder.layer.5.output.LayerNorm.bias", names);
        Assert.Contains("bert.pooler.dense.weight", names);
        Assert.Contains("classifier.weight", names);
        Assert.Contains("classifier.bias", names);
        Assert.All(names, n => Assert.True(n.StartsWith("bert.") || n.StartsWith("classifier."), n));
        Assert.Equal("pt", reader.Metadata["format"]);
        Assert.Equal(new long[] { 2, 384 }, reader.Info("classifier.weight").Shape);

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        Assert.Equal("BertForSequenceClassification", json["architectures"]![0]!.GetValue<string>());
        Assert.Equal(2, json["num_labels"]!.GetValue<int>());
        Assert.Equal("pos", json["id2label"]!["1"]!.GetValue<string>());
        Assert.Equal(1, json["label2id"]!["pos"]!.GetValue<int>());
        Assert.Equal(config.NumHiddenLayers, config2.NumHiddenLayers);
        Assert.Equal(new[] { "neg", "pos" }, config2.Id2Label);
    }

    [Fact]
    public void HeaderIsPaddedToEightBytes()
    {
        var dir = TempDir();
        var path = Path.Combine(dir, "t.safetensors");
        SafeTensorsWriter.Write(path, new[] { ("a", new long[] { 3 }, (ReadOnlyMemory<float>)new float[] { 1, 2, 3 }) });
        var bytes = File.ReadAllBytes(path);
        ulong n = BitConverter.ToUInt64(bytes, 0);
        Assert.Equal(0UL, n % 8);
        Assert.Equal(8 + (long)n + 12, bytes.Length);
        Assert.False(File.Exists(path + ".tmp"));
    }

    /// <summary>Writes a checkpoint of the tiny config under other names, as other heads and versions do.</summary>
    private static string WriteVariant(Func<string, string?> rename, IEnumerable<(string, long[], float[])>? extra = null, BertConfig? config = null)
    {
        config ??= TinyConfig(labels: 2);
        var layout = new BertLayout(config);
        var p = BertCheckpoint.RandomInit(config, 1);
        var tensors = new List<(string, long[], ReadOnlyMemory<float>)>();
        foreach (var t in layout.Tensors)
            if (rename(t.Name) is string name) tensors.Add((name, t.Shape, p.AsMemory(t.Offset, t.Length)));
        foreach (var (n, s, d) in extra ?? []) tensors.Add((n, s, d));
        var dir = TempDir();
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        var json = config.ToJson();
        json["architectures"] = new JsonArray("BertForPreTraining");
        File.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString());
        return dir;
    }

    [Fact]
    public void LoadsLegacyGammaBetaWithBertPrefixAndIgnoresPretrainingHeads()
    {
        // bert-base-cased's layout: bert. prefix, LayerNorm.gamma/beta, cls.* heads, no classifier
        string? Legacy(string n) => n.StartsWith("classifier.") ? null : n.Replace("LayerNorm.weight", "LayerNorm.gamma").Replace("LayerNorm.bias", "LayerNorm.beta");
        var dir = WriteVariant(Legacy, new[] { ("cls.predictions.bias", new long[] { 50 }, new float[50]), ("cls.seq_relationship.weight", new long[] { 2, 32 }, new float[64]) });
        var (_, _, report) = BertCheckpoint.Load(dir);
        Assert.Equal(new[] { "classifier.weight", "classifier.bias" }, report.Initialized);
        Assert.Equal(new[] { "cls.predictions.bias", "cls.seq_relationship.weight" }, report.Ignored);
        Assert.Empty(report.Unexpected);
        Assert.Equal("bert.embeddings.LayerNorm.gamma", report.SourceNames["bert.embeddings.LayerNorm.weight"]);
    }

    [Fact]
    public void LoadsBertModelNamesWithoutPrefixAndInitialisesMissingPooler()
    {
        string? NoPrefix(string n) => n.StartsWith("classifier.") || n.StartsWith("bert.pooler.") ? null : n["bert.".Length..];
        var dir = WriteVariant(NoPrefix);
        var (config, p, report) = BertCheckpoint.Load(dir);
        Assert.Equal(new[] { "bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias" }, report.Initialized);
        var layout = new BertLayout(config);
        var w = p.AsSpan(layout.PoolerWeight, config.HiddenSize * config.HiddenSize).ToArray();
        double std = Math.Sqrt(w.Select(v => (double)v * v).Average());
        Assert.InRange(std, 0.8 * config.InitializerRange, 1.2 * config.InitializerRange); // normal(0, initializer_range)
        Assert.All(p.AsSpan(layout.PoolerBias, config.HiddenSize).ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void IgnoresInt64PositionIdsBuffer()
    {
        var dir = WriteVariant(n => n, extra: null);
        // rewrite with an int64 tensor appended by hand: the writer only writes F32
        var path = Path.Combine(dir, "model.safetensors");
        SafeTensorsBuilder.AppendRawTensor(path, "bert.embeddings.position_ids", "I64", new long[] { 1, 16 }, new byte[16 * 8]);
        var (_, _, report) = BertCheckpoint.Load(dir);
        Assert.Contains("bert.embeddings.position_ids", report.Ignored);
    }

    [Fact]
    public void NewLabelCountReinitialisesTheClassifier()
    {
        var dir = WriteVariant(n => n); // 2 labels
        var (config, _, report) = BertCheckpoint.Load(dir, labels: new[] { "a", "b", "c" });
        Assert.Equal(3, config.NumLabels);
        Assert.Equal(new[] { "classifier.weight", "classifier.bias" }, report.Initialized);
        Assert.Contains("classifier.weight", report.Ignored);
    }

    [Fact]
    public void ReadsF16AndBF16AsFloat32()
    {
        var dir = TempDir();
        var path = Path.Combine(dir, "h.safetensors");
        float[] values = { 1.5f, -2.25f, 0.099975586f };
        var f16 = values.SelectMany(v => BitConverter.GetBytes((Half)v)).ToArray();
        var bf16 = values.SelectMany(v => BitConverter.GetBytes((ushort)(BitConverter.SingleToInt32Bits(v) >> 16))).ToArray();
        SafeTensorsBuilder.WriteRaw(path, new[] { ("h", "F16", new long[] { 3 }, f16), ("b", "BF16", new long[] { 3 }, bf16) });
        using var r = new SafeTensorsReader(path);
        var h = new float[3]; var b = new float[3];
        r.ReadFloat32("h", h); r.ReadFloat32("b", b);
        Assert.Equal(values.Select(v => (float)(Half)v), h);
        Assert.Equal(values.Select(v => BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(v) & unchecked((int)0xFFFF0000))), b);
    }
}

/// <summary>Writes safetensors files byte by byte, including broken ones, for the tests.</summary>
public static class SafeTensorsBuilder
{
    public static void WriteRaw(string path, IEnumerable<(string Name, string DType, long[] Shape, byte[] Data)> tensors)
    {
        var header = new JsonObject();
        long offset = 0;
        var blobs = new List<byte[]>();
        foreach (var (name, dtype, shape, data) in tensors)
        {
            header[name] = new JsonObject { ["dtype"] = dtype, ["shape"] = new JsonArray(shape.Select(s => (JsonNode)s).ToArray()), ["data_offsets"] = new JsonArray(offset, offset + data.Length) };
            offset += data.Length;
            blobs.Add(data);
        }
        WriteWithHeader(path, header.ToJsonString(), blobs.SelectMany(b => b).ToArray());
    }

    public static void WriteWithHeader(string path, string headerJson, byte[] data, ulong? declaredLength = null)
    {
        var h = System.Text.Encoding.UTF8.GetBytes(headerJson);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes(declaredLength ?? (ulong)h.Length));
        fs.Write(h);
        fs.Write(data);
    }

    /// <summary>Re-writes a file with one more raw tensor at the end of its data.</summary>
    public static void AppendRawTensor(string path, string name, string dtype, long[] shape, byte[] data)
    {
        var bytes = File.ReadAllBytes(path);
        int n = (int)BitConverter.ToUInt64(bytes, 0);
        var header = JsonNode.Parse(System.Text.Encoding.UTF8.GetString(bytes, 8, n).TrimEnd())!.AsObject();
        var body = bytes.AsSpan(8 + n).ToArray();
        header[name] = new JsonObject { ["dtype"] = dtype, ["shape"] = new JsonArray(shape.Select(s => (JsonNode)s).ToArray()), ["data_offsets"] = new JsonArray(body.Length, body.Length + data.Length) };
        WriteWithHeader(path, header.ToJsonString(), body.Concat(data).ToArray());
    }
}

public class HalfPrecisionCheckpointTests
{
    [Theory]
    [InlineData("F16")]
    [InlineData("BF16")]
    public void SavingAtHalfPrecisionRoundsEachValueToNearest(string dtype)
    {
        var config = TinyConfig(labels: 2);
        var p = BertCheckpoint.RandomInit(config, 3);
        var dir = TempDir();
        BertCheckpoint.Save(dir, config, p, dtype);
        using (var reader = new SafeTensorsReader(Path.Combine(dir, "model.safetensors")))
            Assert.All(reader.Tensors, t => Assert.Equal(dtype, t.DType));
        var (_, back, _) = BertCheckpoint.Load(dir);
        for (int i = 0; i < p.Length; i++)
        {
            float expected = dtype == "F16" ? (float)(Half)p[i] : BitConverter.Int32BitsToSingle((int)((BitConverter.SingleToUInt32Bits(p[i]) + 0x7FFF + ((BitConverter.SingleToUInt32Bits(p[i]) >> 16) & 1)) & 0xFFFF0000));
            Assert.Equal(expected, back[i]);
        }
    }
}
