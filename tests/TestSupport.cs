using MixupBert.Model.Bert;
using MixupBert.Model.Weights;

namespace MixupBert.Tests;

/// <summary>Paths and small fixtures shared by the tests.</summary>
public static class TestSupport
{
    /// <summary>The ../shared folder beside the repository (or $MIXUP_BERT_SHARED). Tests that need it
    /// fail, rather than skip, when it is missing: CI always has it.</summary>
    public static string SharedDir
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("MIXUP_BERT_SHARED");
            if (!string.IsNullOrEmpty(env)) return env;
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "MixupBert.sln")))
                {
                    var shared = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared"));
                    if (Directory.Exists(shared)) return shared;
                    throw new DirectoryNotFoundException($"no ../shared beside the repository at {dir.FullName}; set MIXUP_BERT_SHARED");
                }
            }
            throw new DirectoryNotFoundException("repository root not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>The repository's root: the folder above the test binaries that holds MixupBert.sln.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MixupBert.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("repository root not found above " + AppContext.BaseDirectory);
    }

    public static string MiniLmDir => Path.Combine(SharedDir, "hf", "sentence-transformers", "all-MiniLM-L6-v2", "resolve", "main");

    public static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "mixup-bert-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    public static float[] Random(Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return a;
    }

    /// <summary>A tiny BERT: 2 layers, hidden 32, 4 heads, as the gradient checks ask for.</summary>
    public static BertConfig TinyConfig(int labels = 3, float dropout = 0f) => new()
    {
        VocabSize = 50, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 4, IntermediateSize = 48,
        MaxPositionEmbeddings = 16, TypeVocabSize = 2, HiddenDropoutProb = dropout, AttentionProbsDropoutProb = dropout,
        LayerNormEps = 1e-12f, InitializerRange = 0.2f,
        Id2Label = Enumerable.Range(0, labels).Select(i => $"c{i}").ToArray(),
    };

    /// <summary>A padded batch with random ids, two segments in one row, and varied lengths.</summary>
    public static Batch RandomBatch(BertConfig c, int batch, int seqLen, int seed)
    {
        var rng = new Random(seed);
        int n = batch * seqLen;
        var ids = new int[n]; var types = new int[n]; var mask = new float[n];
        for (int b = 0; b < batch; b++)
        {
            int length = b == 0 ? seqLen : 1 + rng.Next(seqLen); // the first row full, the others padded
            for (int t = 0; t < length; t++)
            {
                ids[b * seqLen + t] = rng.Next(c.VocabSize);
                mask[b * seqLen + t] = 1;
                if (b % 2 == 1 && t >= length / 2) types[b * seqLen + t] = 1; // a second segment in odd rows
            }
            for (int t = length; t < seqLen; t++) ids[b * seqLen + t] = c.PadTokenId;
        }
        var labels = new int[batch];
        for (int b = 0; b < batch; b++) labels[b] = rng.Next(c.NumLabels);
        return new Batch(seqLen, c.NumLabels, ids, mask, labels, types);
    }

    /// <summary>The same batch with one input id replaced.</summary>
    public static Batch WithInputId(Batch batch, int index, int id)
    {
        var ids = batch.InputIds.ToArray();
        ids[index] = id;
        return new Batch(batch.SeqLen, batch.NumLabels, ids, batch.AttentionMask, batch.Labels, batch.TokenTypeIds);
    }

    /// <summary>A parquet file of one row group: text columns (null for a missing value), an int64 label column, and
    /// the file's key-value metadata (datasets writes its features under "huggingface").</summary>
    public static async Task WriteTextParquet(string path, (string Name, string?[] Values)[] texts, string labelName, long[] labels, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var fields = texts.Select(t => (Parquet.Schema.DataField)new Parquet.Schema.DataField<string>(t.Name)).Append(new Parquet.Schema.DataField<long>(labelName)).ToArray();
        var schema = new Parquet.Schema.ParquetSchema(fields);
        await using var file = File.Create(path);
        await using var writer = await Parquet.ParquetWriter.CreateAsync(schema, file);
        if (metadata != null) writer.CustomMetadata = metadata.ToDictionary();
        using var group = writer.CreateRowGroup();
        for (int i = 0; i < texts.Length; i++) await group.WriteAsync(schema.DataFields[i], texts[i].Values);
        await group.WriteAsync(schema.DataFields[^1], new ReadOnlyMemory<long>(labels));
    }
}
