using System.Text.Json.Nodes;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Weights;

/// <summary>Every malformed input gets a message that names the file and, where there is one, the tensor.</summary>
public class BadInputTests
{
    private static string File1(out string dir)
    {
        dir = TempDir();
        return Path.Combine(dir, "model.safetensors");
    }

    private static ModelFormatException Open(string path) => Assert.Throws<ModelFormatException>(() => new SafeTensorsReader(path).Dispose());

    [Fact]
    public void TruncatedFile()
    {
        var path = File1(out _);
        File.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        var e = Open(path);
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void HeaderLengthPastEndOfFile()
    {
        var path = File1(out _);
        SafeTensorsBuilder.WriteWithHeader(path, "{}", Array.Empty<byte>(), declaredLength: 1000);
        var e = Open(path);
        Assert.Contains(path, e.Message);
        Assert.Contains("past the end", e.Message);
    }

    [Fact]
    public void InvalidJsonHeader()
    {
        var path = File1(out _);
        SafeTensorsBuilder.WriteWithHeader(path, "{\"a\": {\"dtype\": ", new byte[4]);
        var e = Open(path);
        Assert.Contains(path, e.Message);
        Assert.Contains("not valid JSON", e.Message);
    }

    [Fact]
    public void OffsetsOutsideTheData()
    {
        var path = File1(out _);
        SafeTensorsBuilder.WriteWithHeader(path, """{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}""", new byte[8]);
        var e = Open(path);
        Assert.Contains(path, e.Message);
        Assert.Contains("'w'", e.Message);
        Assert.Contains("outside the data", e.Message);
    }

    [Fact]
    public void OverlappingOffsets()
    {
        var path = File1(out _);
        SafeTensorsBuilder.WriteWithHeader(path, """{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}""", new byte[12]);
        var e = Open(path);
        Assert.Contains(path, e.Message);
        Assert.Contains("'b'", e.Message);
        Assert.Contains("overlaps", e.Message);
    }

    [Fact]
    public void ShapeTimesDTypeSizeDiffersFromByteLength()
    {
        var path = File1(out _);
        SafeTensorsBuilder.WriteWithHeader(path, """{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}""", new byte[8]);
        var e = Open(path);
        Assert.Contains("'w'", e.Message);
        Assert.Contains("12 bytes", e.Message);
    }

    [Fact]
    public void UnknownDType()
    {
        var path = File1(out _);
        SafeTensorsBuilder.WriteWithHeader(path, """{"w": {"dtype": "F9", "shape": [2], "data_offsets": [0, 8]}}""", new byte[8]);
        var e = Open(path);
        Assert.Contains("'w'", e.Message);
        Assert.Contains("unknown dtype 'F9'", e.Message);
    }

    private static string TinyCheckpoint(Func<string, long[], (string, long[])?> edit)
    {
        var config = TinyConfig(labels: 2);
        var layout = new BertLayout(config);
        var p = BertCheckpoint.RandomInit(config, 2);
        var dir = TempDir();
        var tensors = new List<(string, long[], ReadOnlyMemory<float>)>();
        foreach (var t in layout.Tensors)
        {
            if (edit(t.Name, t.Shape) is not var (name, shape)) continue;
            long n = shape.Aggregate(1L, (a, b) => a * b);
            tensors.Add((name, shape, new float[n]));
        }
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        config.Save(Path.Combine(dir, "config.json"));
        return dir;
    }

    [Fact]
    public void MissingRequiredTensor()
    {
        var dir = TinyCheckpoint((n, s) => n == "bert.encoder.layer.1.intermediate.dense.weight" ? null : (n, s));
        var e = Assert.Throws<ModelFormatException>(() => BertCheckpoint.Load(dir));
        Assert.Contains(Path.Combine(dir, "model.safetensors"), e.Message);
        Assert.Contains("missing required tensor 'bert.encoder.layer.1.intermediate.dense.weight'", e.Message);
    }

    [Fact]
    public void TensorShapeDoesNotMatchConfig()
    {
        var dir = TinyCheckpoint((n, s) => n == "bert.encoder.layer.0.output.dense.weight" ? (n, new long[] { 32, 40 }) : (n, s));
        var e = Assert.Throws<ModelFormatException>(() => BertCheckpoint.Load(dir));
        Assert.Contains("'bert.encoder.layer.0.output.dense.weight'", e.Message);
        Assert.Contains("[32, 40]", e.Message);
        Assert.Contains("[32, 48]", e.Message);
    }

    [Fact]
    public void ModelFolderWithoutWeights()
    {
        var dir = TempDir();
        TinyConfig().Save(Path.Combine(dir, "config.json"));
        File.WriteAllBytes(Path.Combine(dir, "pytorch_model.bin"), new byte[10]);
        var e = Assert.Throws<ModelFormatException>(() => BertCheckpoint.Load(dir));
        Assert.Contains("no model.safetensors", e.Message);
        Assert.Contains("pytorch_model.bin", e.Message);
    }

    [Theory]
    [InlineData("""{"hidden_act": "gelu_new"}""", "hidden_act 'gelu_new' is not supported")]
    [InlineData("""{"position_embedding_type": "relative_key"}""", "position_embedding_type 'relative_key' is not supported")]
    [InlineData("""{"hidden_size": 30, "num_attention_heads": 4}""", "not a multiple of num_attention_heads")]
    [InlineData("""{"hidden_size": "big"}""", "'hidden_size' must be an integer")]
    [InlineData("""{"hidden_size": 32,""", "not valid JSON")]
    [InlineData("""{"model_type": "roberta"}""", "model_type 'roberta' is not supported")]
    public void BadConfig(string json, string expected)
    {
        var path = Path.Combine(TempDir(), "config.json");
        File.WriteAllText(path, json);
        var e = Assert.Throws<ModelFormatException>(() => BertConfig.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void UnknownConfigKeysAreIgnored()
    {
        var path = Path.Combine(TempDir(), "config.json");
        File.WriteAllText(path, """{"hidden_size": 64, "num_attention_heads": 4, "gradient_checkpointing": false, "some_future_key": [1, 2]}""");
        Assert.Equal(64, BertConfig.Load(path).HiddenSize);
    }

    [Fact]
    public void TokenIdOutsideVocabulary()
    {
        var config = TinyConfig();
        var model = new CpuBertEngine(config, BertCheckpoint.RandomInit(config, 1));
        var batch = WithInputId(RandomBatch(config, 2, 5, 1), 7, config.VocabSize);
        var e = Assert.Throws<ArgumentException>(() => model.Forward(batch, training: false));
        Assert.Contains("input_ids[1, 2]", e.Message);
        Assert.Contains("vocab_size 50", e.Message);
    }

    [Fact]
    public void SequenceLongerThanMaxPositions()
    {
        var config = TinyConfig();
        var model = new CpuBertEngine(config, BertCheckpoint.RandomInit(config, 1));
        int T = config.MaxPositionEmbeddings + 1;
        var batch = new Batch(T, config.NumLabels, new int[T], Enumerable.Repeat(1f, T).ToArray(), new int[1]);
        var e = Assert.Throws<ArgumentException>(() => model.Forward(batch, training: false));
        Assert.Contains("input_ids", e.Message);
        Assert.Contains("max_position_embeddings 16", e.Message);
    }
}
