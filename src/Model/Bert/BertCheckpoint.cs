using MixupBert.Model.Weights;

namespace MixupBert.Model.Bert;

/// <summary>What loading a checkpoint did besides copying tensors, so that it can be reported.</summary>
public sealed class LoadReport
{
    public List<string> Initialized { get; } = new();
    public List<string> Ignored { get; } = new();
    public List<string> Unexpected { get; } = new();
    public Dictionary<string, string> SourceNames { get; } = new();
}

/// <summary>
/// Loads and saves BERT checkpoints in Hugging Face's layout (config.json + model.safetensors).
/// Loading accepts every BERT layout in circulation: names with the "bert." prefix
/// (BertForSequenceClassification, BertForPreTraining) or without (BertModel, as in
/// sentence-transformers), legacy LayerNorm.gamma/beta, unused pre-training heads (cls.*), and a
/// missing pooler or classifier, which are initialised as transformers does and reported.
/// Saving writes the names BertForSequenceClassification loads without warnings.
/// </summary>
public static class BertCheckpoint
{
    public const string WeightsFile = "model.safetensors";
    public const string ConfigFile = "config.json";

    /// <summary>Loads config.json and model.safetensors from a model folder.</summary>
    /// <param name="labels">the task's labels; when their number differs from the checkpoint's, the classifier is re-initialised.</param>
    public static (BertConfig Config, float[] Parameters, LoadReport Report) Load(string directory, IReadOnlyList<string>? labels = null, int seed = 0)
    {
        if (!Directory.Exists(directory)) throw new ModelFormatException($"{directory}: model folder not found");
        string configPath = Path.Combine(directory, ConfigFile);
        var config = BertConfig.Load(configPath);
        bool relabelled = labels != null && labels.Count != config.NumLabels;
        if (labels != null)
        {
            config = config with { Id2Label = labels.ToArray() };
            config.Validate(configPath); // the task's label count changes the classifier's size
        }
        string weightsPath = Path.Combine(directory, WeightsFile);
        if (!File.Exists(weightsPath))
        {
            string? other = new[] { "pytorch_model.bin", "tf_model.h5", "model.safetensors.index.json" }.FirstOrDefault(f => File.Exists(Path.Combine(directory, f)));
            throw new ModelFormatException(other != null
                ? $"{directory}: no {WeightsFile}; found {other}, which this tool does not read. Convert it to a single safetensors file (in Python: model.save_pretrained(dir, safe_serialization=True))."
                : $"{directory}: no {WeightsFile} in the model folder");
        }
        using var reader = new SafeTensorsReader(weightsPath);
        var (parameters, report) = LoadWeights(reader, config, relabelled, seed);
        return (config, parameters, report);
    }

    /// <summary>Copies every tensor of the layout from the file, trying the known name variants.</summary>
    public static (float[] Parameters, LoadReport Report) LoadWeights(SafeTensorsReader reader, BertConfig config, bool reinitClassifier = false, int seed = 0)
    {
        var layout = new BertLayout(config);
        var parameters = BertLayout.Allocate(layout.Size);
        var report = new LoadReport();
        var used = new HashSet<string>(StringComparer.Ordinal);
        var rng = new Random(seed);
        foreach (var t in layout.Tensors)
        {
            bool isHead = t.Name.StartsWith("bert.pooler.", StringComparison.Ordinal) || t.Name.StartsWith("classifier.", StringComparison.Ordinal);
            bool skip = reinitClassifier && t.Name.StartsWith("classifier.", StringComparison.Ordinal);
            string? source = skip ? null : Candidates(t.Name).FirstOrDefault(reader.Contains);
            if (source == null)
            {
                if (!isHead)
                    throw new ModelFormatException($"{reader.Path}: missing required tensor '{t.Name}' (also looked for {string.Join(", ", Candidates(t.Name).Skip(1).Select(n => $"'{n}'"))})");
                Initialize(parameters.AsSpan(t.Offset, t.Length), t, config.InitializerRange, rng);
                report.Initialized.Add(t.Name);
                continue;
            }
            var info = reader.Info(source);
            if (!info.Shape.SequenceEqual(t.Shape))
                throw new ModelFormatException($"{reader.Path}: tensor '{source}' has shape {info.ShapeText} but config.json implies [{string.Join(", ", t.Shape)}] (vocab_size {config.VocabSize}, hidden_size {config.HiddenSize}, intermediate_size {config.IntermediateSize}, num_labels {config.NumLabels})");
            reader.ReadFloat32(source, parameters.AsSpan(t.Offset, t.Length));
            used.Add(source);
            if (source != t.Name) report.SourceNames[t.Name] = source;
        }
        foreach (var info in reader.Tensors.OrderBy(i => i.Name, StringComparer.Ordinal))
        {
            if (used.Contains(info.Name)) continue;
            if (IsKnownUnused(info.Name) || (reinitClassifier && info.Name.StartsWith("classifier.", StringComparison.Ordinal))) report.Ignored.Add(info.Name);
            else report.Unexpected.Add(info.Name);
        }
        return (parameters, report);
    }

    /// <summary>The names a tensor may carry in checkpoints written by different versions and heads.</summary>
    public static IEnumerable<string> Candidates(string name)
    {
        var bases = name.StartsWith("bert.", StringComparison.Ordinal) ? new[] { name, name["bert.".Length..] } : new[] { name };
        foreach (var b in bases)
        {
            yield return b;
            if (b.EndsWith("LayerNorm.weight", StringComparison.Ordinal)) yield return b[..^"weight".Length] + "gamma";
            if (b.EndsWith("LayerNorm.bias", StringComparison.Ordinal)) yield return b[..^"bias".Length] + "beta";
        }
    }

    /// <summary>Tensors that BERT checkpoints carry but sequence classification does not use.</summary>
    private static bool IsKnownUnused(string name) =>
        name.StartsWith("cls.", StringComparison.Ordinal)
        || name.EndsWith("embeddings.position_ids", StringComparison.Ordinal)
        || name.EndsWith("embeddings.token_type_ids", StringComparison.Ordinal);

    /// <summary>transformers' _init_weights: Linear weights ~ normal(0, initializer_range), biases 0,
    /// LayerNorm weight 1 and bias 0.</summary>
    public static void Initialize(Span<float> data, ParameterTensor t, float std, Random rng)
    {
        if (t.Name.Contains("LayerNorm.weight", StringComparison.Ordinal)) { data.Fill(1f); return; }
        if (t.Shape.Length == 1) { data.Clear(); return; }
        for (int i = 0; i < data.Length; i++) data[i] = (float)(std * Normal(rng));
    }

    public static double Normal(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>A freshly initialised model (all tensors drawn as transformers initialises them).</summary>
    public static float[] RandomInit(BertConfig config, int seed)
    {
        var layout = new BertLayout(config);
        var p = BertLayout.Allocate(layout.Size);
        var rng = new Random(seed);
        foreach (var t in layout.Tensors) Initialize(p.AsSpan(t.Offset, t.Length), t, config.InitializerRange, rng);
        return p;
    }

    /// <summary>Writes config.json and model.safetensors (each atomically) into <paramref name="directory"/>.</summary>
    public static void Save(string directory, BertConfig config, float[] parameters, string dtype = "F32")
    {
        Directory.CreateDirectory(directory);
        SaveWeights(Path.Combine(directory, WeightsFile), config, parameters, dtype);
        config.Save(Path.Combine(directory, ConfigFile));
    }

    /// <summary>Writes the weights alone, as model.safetensors holds them, to <paramref name="file"/> (atomically).</summary>
    public static void SaveWeights(string file, BertConfig config, float[] parameters, string dtype = "F32")
    {
        var layout = new BertLayout(config);
        if (parameters.Length != layout.Size) throw new ArgumentException($"parameter buffer has {parameters.Length} floats, the layout needs {layout.Size}");
        var tensors = layout.Tensors.Select(t => (t.Name, t.Shape, (ReadOnlyMemory<float>)parameters.AsMemory(t.Offset, t.Length))).ToList();
        SafeTensorsWriter.Write(file, tensors, dtype: dtype);
    }
}
