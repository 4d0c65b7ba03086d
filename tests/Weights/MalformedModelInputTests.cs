using System.Text.Json.Nodes;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Weights;

/// <summary>Malformed safetensors headers, config.json files and weights: each refused with a
/// ModelFormatException naming the file and the tensor or key, never another exception.</summary>
public class MalformedModelInputTests
{
    private static ModelFormatException OpenFails(string header, int dataBytes)
    {
        var path = Path.Combine(TempDir(), "model.safetensors");
        SafeTensorsBuilder.WriteWithHeader(path, header, new byte[dataBytes]);
        var e = Assert.Throws<ModelFormatException>(() => new SafeTensorsReader(path).Dispose());
        Assert.Contains(path, e.Message);
        return e;
    }

    [Theory]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}}""", 8, "tensor 'w': invalid data_offsets")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0.0, 8]}}""", 8, "tensor 'w': invalid data_offsets")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}""", 8, "tensor 'w': invalid data_offsets")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}""", 8, "tensor 'w': invalid data_offsets")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 99999999999999999999]}}""", 8, "tensor 'w': invalid data_offsets")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 16]}}""", 8, "tensor 'w': data_offsets must be [begin, end]")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2], "data_offsets": {"begin": 0}}}""", 8, "tensor 'w': data_offsets must be [begin, end]")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2]}}""", 8, "tensor 'w': data_offsets must be [begin, end]")]
    [InlineData("""{"w": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}}""", 8, "tensor 'w': invalid shape")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}""", 8, "tensor 'w': invalid shape")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}}""", 8, "tensor 'w': invalid shape")]
    [InlineData("""{"w": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}""", 8, "tensor 'w': no shape")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}}""", 0, "tensor 'w': shape [4294967296, 4294967296] is too large")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [1048576, 1048576, 1048576, 0], "data_offsets": [0, 0]}}""", 0, null)] // zero elements: fine
    [InlineData("""{"w": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}}""", 8, "tensor 'w': no dtype")]
    [InlineData("""{"w": {"dtype": "F32", "dtype": "F16", "shape": [2], "data_offsets": [0, 8]}}""", 8, "tensor 'w': 'dtype' appears twice")]
    [InlineData("""{"w": {"dtype": "F16", "shape": [2], "data_offsets": [0, 8]}}""", 8, "tensor 'w': shape [2] × F16 (2 bytes) is 4 bytes but data_offsets span 8")]
    [InlineData("""{"w": [0, 8]}""", 8, "tensor 'w': header entry is not an object")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}""", 16, "tensor 'w' appears twice")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}""", 12, "tensor 'b' starts at byte 8 but the previous tensor ends at 4")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}""", 8, "tensor 'a' starts at byte 4")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}""", 12, "the tensors cover 4 bytes but the data section has 12")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}""", 8, "overlaps tensor 'a'")]
    [InlineData("""{"__metadata__": "pt"}""", 0, "__metadata__ must be an object")]
    [InlineData("""{"__metadata__": {"format": 1}}""", 0, "__metadata__ entry 'format' must be a string")]
    [InlineData("""[1, 2]""", 0, "not a JSON object")]
    [InlineData("", 0, "not valid JSON")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}""", 0, "not valid JSON")]
    public void MalformedHeaderNamesFileAndTensor(string header, int dataBytes, string? expected)
    {
        if (expected == null)
        {
            var path = Path.Combine(TempDir(), "model.safetensors");
            SafeTensorsBuilder.WriteWithHeader(path, header, new byte[dataBytes]);
            new SafeTensorsReader(path).Dispose();
            return;
        }
        Assert.Contains(expected, OpenFails(header, dataBytes).Message);
    }

    [Fact]
    public void HeaderThatIsNotUtf8()
    {
        var path = Path.Combine(TempDir(), "model.safetensors");
        byte[] header = [.. "{\"w"u8, 0xFF, .. "\": {}}"u8];
        using (var fs = File.Create(path)) { fs.Write(BitConverter.GetBytes((ulong)header.Length)); fs.Write(header); }
        var e = Assert.Throws<ModelFormatException>(() => new SafeTensorsReader(path).Dispose());
        Assert.Contains("not valid UTF-8", e.Message);
    }

    [Theory]
    [InlineData(100_000_001UL)]
    [InlineData(ulong.MaxValue)]
    [InlineData(0x8000_0000_0000_0000UL)]
    public void HugeHeaderLengthIsRefusedBeforeAllocating(ulong declared)
    {
        var path = Path.Combine(TempDir(), "model.safetensors");
        SafeTensorsBuilder.WriteWithHeader(path, "{}", [], declaredLength: declared);
        var e = Assert.Throws<ModelFormatException>(() => new SafeTensorsReader(path).Dispose());
        Assert.Contains("header length", e.Message);
    }

    /// <summary>Random corruption of a real (tiny) checkpoint file: it reads, or fails with ModelFormatException.</summary>
    [Fact]
    public void CorruptedSafetensorsFailOnlyWithModelFormatException()
    {
        var dir = TempDir();
        var config = TinyConfig(labels: 2);
        BertCheckpoint.Save(dir, config, BertCheckpoint.RandomInit(config, 1));
        var original = File.ReadAllBytes(Path.Combine(dir, "model.safetensors"));
        int headerEnd = 8 + (int)BitConverter.ToUInt64(original, 0);
        var path = Path.Combine(TempDir(), "model.safetensors");
        var rng = new Random(11);
        byte[] alphabet = "\"{}[],:-.0123456789eE FBI"u8.ToArray();
        for (int trial = 0; trial < 1500; trial++)
        {
            var bytes = (byte[])original.Clone();
            for (int k = rng.Next(1, 4); k > 0; k--)
            {
                int at = rng.Next(8) == 0 ? rng.Next(8) : rng.Next(8, headerEnd); // mostly the header, sometimes its length
                bytes[at] = at < 8 ? (byte)rng.Next(256) : alphabet[rng.Next(alphabet.Length)];
            }
            if (rng.Next(10) == 0) Array.Resize(ref bytes, rng.Next(bytes.Length));
            File.WriteAllBytes(path, bytes);
            try
            {
                using var reader = new SafeTensorsReader(path);
                foreach (var t in reader.Tensors.Where(t => t.DType is "F32" or "F16" or "BF16" or "F64"))
                    reader.ReadFloat32(t.Name, new float[t.ElementCount]);
            }
            catch (ModelFormatException e) { Assert.Contains(path, e.Message); }
        }
    }

    /// <summary>Random corruption of MiniLM's config.json: it loads, or fails with ModelFormatException naming the file.</summary>
    [Fact]
    public void CorruptedConfigFailsOnlyWithModelFormatException()
    {
        var original = File.ReadAllText(Path.Combine(MiniLmDir, "config.json"));
        var path = Path.Combine(TempDir(), "config.json");
        var rng = new Random(3);
        string[] pieces = ["\"", "{", "}", "[", "]", ",", ":", "-", ".", "e", "9", "0", "1e9", "null", "true", "\"x\"", "99999999999", " "];
        for (int trial = 0; trial < 1500; trial++)
        {
            var text = new System.Text.StringBuilder(original);
            for (int k = rng.Next(1, 4); k > 0; k--)
            {
                int at = rng.Next(text.Length);
                if (rng.Next(2) == 0) text.Remove(at, Math.Min(rng.Next(1, 4), text.Length - at));
                text.Insert(Math.Min(at, text.Length), pieces[rng.Next(pieces.Length)]);
            }
            File.WriteAllText(path, text.ToString());
            try { BertConfig.Load(path); }
            catch (ModelFormatException e) { Assert.Contains(path, e.Message); }
        }
    }

    private static ModelFormatException ConfigFails(string json)
    {
        var path = Path.Combine(TempDir(), "config.json");
        File.WriteAllText(path, json);
        var e = Assert.Throws<ModelFormatException>(() => BertConfig.Load(path));
        Assert.Contains(path, e.Message);
        return e;
    }

    [Theory]
    [InlineData("""{"num_hidden_layers": "12"}""", "'num_hidden_layers' must be an integer, got \"12\"")]
    [InlineData("""{"num_hidden_layers": 1e9}""", "'num_hidden_layers' must be an integer, got 1e9")]
    [InlineData("""{"num_hidden_layers": 12.0}""", "'num_hidden_layers' must be an integer, got 12.0")]
    [InlineData("""{"num_hidden_layers": [12]}""", "'num_hidden_layers' must be an integer, got [12]")]
    [InlineData("""{"num_hidden_layers": null}""", "'num_hidden_layers' must be an integer, got null")]
    [InlineData("""{"num_hidden_layers": true}""", "'num_hidden_layers' must be an integer, got true")]
    [InlineData("""{"num_hidden_layers": 0}""", "'num_hidden_layers' must be in 1..1000, got 0")]
    [InlineData("""{"num_hidden_layers": 1000000000}""", "'num_hidden_layers' must be in 1..1000, got 1000000000")]
    [InlineData("""{"hidden_size": -768}""", "'hidden_size' must be in 1..2147483647, got -768")]
    [InlineData("""{"hidden_size": 99999999999}""", "'hidden_size' must be in 1..2147483647, got 99999999999")]
    [InlineData("""{"vocab_size": {"n": 1}}""", "'vocab_size' must be an integer")]
    [InlineData("""{"num_labels": 1000000000}""", "'num_labels' must be in 1..10000, got 1000000000")]
    [InlineData("""{"num_labels": 0}""", "'num_labels' must be in 1..10000, got 0")]
    [InlineData("""{"id2label": {"0": 0, "1": 1}}""", "id2label['0'] must be a string")]
    [InlineData("""{"id2label": {"0": "a", "1": null}}""", "id2label['1'] must be a string")]
    [InlineData("""{"id2label": ["a", "b"]}""", "'id2label' must be an object")]
    [InlineData("""{"id2label": {"0": "a", "2": "b"}}""", "id2label key '2' is not an id in 0..1")]
    [InlineData("""{"id2label": {"0": "a", "-1": "b"}}""", "id2label key '-1' is not an id")]
    [InlineData("""{"layer_norm_eps": "1e-12"}""", "'layer_norm_eps' must be a number")]
    [InlineData("""{"layer_norm_eps": 0}""", "layer_norm_eps must be in (0, 1)")]
    [InlineData("""{"layer_norm_eps": 1e999}""", "'layer_norm_eps' must be a finite number")]
    [InlineData("""{"hidden_dropout_prob": 1.5}""", "hidden_dropout_prob must be in [0, 1)")]
    [InlineData("""{"classifier_dropout": "0.1"}""", "'classifier_dropout' must be a number")]
    [InlineData("""{"hidden_act": 5}""", "'hidden_act' must be a string")]
    [InlineData("""{"model_type": ["bert"]}""", "'model_type' must be a string")]
    [InlineData("""{"pad_token_id": 30522}""", "'pad_token_id' must be in 0..30521, got 30522")]
    [InlineData("""{"hidden_size": 64, "hidden_size": 128}""", "Duplicate property 'hidden_size'")]
    [InlineData("""[]""", "expected a JSON object")]
    [InlineData("""{"hidden_size": 768 """, "not valid JSON")]
    public void ConfigWithWrongTypesOrRangesNamesTheKey(string json, string expected) =>
        Assert.Contains(expected, ConfigFails(json).Message);

    [Theory]
    [InlineData("""{"vocab_size": 2000000000, "hidden_size": 768}""", "parameters")]                            // past one float32 buffer
    [InlineData("""{"vocab_size": 30522, "hidden_size": 24576, "num_attention_heads": 12}""", "parameters")]   // 3.2e10 parameters
    [InlineData("""{"hidden_size": 65536, "num_attention_heads": 1, "num_hidden_layers": 1000, "intermediate_size": 2147483647}""", "parameters")]
    [InlineData("""{"max_position_embeddings": 2147483647, "hidden_size": 768}""", "parameters")]
    public void ConfigThatCannotFitIsRefusedWithTheFigure(string json, string expected)
    {
        var e = ConfigFails(json);
        Assert.Contains(expected, e.Message);
        Assert.Matches(@"\d", e.Message);
    }

    [Fact]
    public void ConfigWhoseWeightsExceedAvailableMemoryNamesTheFigure()
    {
        // bert-base's shape: 440 MB of weights, refused where 256 MiB is available
        var config = new BertConfig();
        var e = Assert.Throws<ModelFormatException>(() => ModelSize.RequireFits(config, "some/config.json", availableBytes: 256L << 20));
        Assert.StartsWith("some/config.json: the model needs 0.49", e.Message);
        Assert.Contains("109,", e.Message); // parameters, counted
        Assert.Contains("but 0.25 GiB of memory is available", e.Message);
        ModelSize.RequireFits(config, "some/config.json", availableBytes: 1L << 30);
    }

    [Fact]
    public void TrainingBatchWhoseActivationsExceedAvailableMemoryIsRefusedWithTheFigure()
    {
        // bert-base: 1.6 GiB for weights, gradients and moments; a 32 × 128 batch adds about 3 GiB of activations
        var config = new BertConfig();
        var e = Assert.Throws<ArgumentException>(() => ModelSize.RequireTrainingFits(config, 32, 128, "some/config.json", availableBytes: 4L << 30));
        Assert.StartsWith("some/config.json: training needs", e.Message);
        Assert.Contains("batch of 32 × 128 tokens", e.Message);
        Assert.Contains("--batch-size", e.Message);
        ModelSize.RequireTrainingFits(config, 32, 128, "some/config.json", availableBytes: 8L << 30);
        ModelSize.RequireTrainingFits(config, 8, 128, "some/config.json", availableBytes: 4L << 30);
    }

    [Fact]
    public void BertBaseAndNullPadTokenAreAccepted()
    {
        var path = Path.Combine(TempDir(), "config.json");
        File.WriteAllText(path, """{"model_type": "bert", "pad_token_id": null, "classifier_dropout": null, "id2label": {"0": "neg", "1": "pos"}, "num_labels": 2}""");
        var c = BertConfig.Load(path);
        Assert.Equal(0, c.PadTokenId);
        Assert.Equal(new[] { "neg", "pos" }, c.Id2Label);
        Assert.InRange(ModelSize.ParameterCount(c), 108_000_000L, 110_000_000L); // bert-base: 109.5M with a 2-label head
    }

    [Fact]
    public void TaskLabelsBeyondTheLimitAreRefused()
    {
        var dir = TempDir();
        var config = TinyConfig(labels: 2);
        BertCheckpoint.Save(dir, config, BertCheckpoint.RandomInit(config, 1));
        var labels = Enumerable.Range(0, BertConfig.MaxLabels + 1).Select(i => $"c{i}").ToArray();
        var e = Assert.Throws<ModelFormatException>(() => BertCheckpoint.Load(dir, labels));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("10001 labels", e.Message);
    }

    [Theory]
    [InlineData(float.NaN, "F32", "holds NaN at element 5")]
    [InlineData(float.PositiveInfinity, "F32", "holds +Infinity at element 5")]
    [InlineData(float.NegativeInfinity, "BF16", "holds -Infinity at element 5")]
    [InlineData(float.NaN, "F16", "holds NaN at element 5")]
    public void NonFiniteWeightsAreRefusedAtLoadNamingTheTensor(float bad, string dtype, string expected)
    {
        var dir = TempDir();
        var config = TinyConfig(labels: 2);
        var p = BertCheckpoint.RandomInit(config, 1);
        var t = new BertLayout(config)["bert.encoder.layer.1.attention.self.key.weight"];
        p[t.Offset + 5] = bad;
        BertCheckpoint.Save(dir, config, p, dtype);
        var e = Assert.Throws<ModelFormatException>(() => BertCheckpoint.Load(dir));
        Assert.Contains(Path.Combine(dir, "model.safetensors"), e.Message);
        Assert.Contains("tensor 'bert.encoder.layer.1.attention.self.key.weight'", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void SavingAsF16RefusesValuesThatWouldBecomeInfinite()
    {
        var dir = TempDir();
        var config = TinyConfig(labels: 2);
        var p = BertCheckpoint.RandomInit(config, 1);
        p[new BertLayout(config)["classifier.bias"].Offset] = 1e6f;
        var e = Assert.Throws<ArgumentException>(() => BertCheckpoint.Save(dir, config, p, "F16"));
        Assert.Contains("tensor 'classifier.bias'", e.Message);
        Assert.False(File.Exists(Path.Combine(dir, "model.safetensors.tmp")));
    }
}
