using MixupBert.Model.Weights;

namespace MixupBert.Model.Bert;

/// <summary>One named tensor inside a flat parameter buffer.</summary>
public sealed record ParameterTensor(string Name, long[] Shape, int Offset, int Length, bool WeightDecay);

/// <summary>Offsets of one encoder layer's tensors. Q, K and V weights (and biases) are adjacent,
/// so together they form one [3C, C] matrix and the three projections are a single GEMM.</summary>
public readonly record struct LayerOffsets(
    int QkvWeight, int QkvBias, int AttnOutWeight, int AttnOutBias, int Ln1Gamma, int Ln1Beta,
    int Fc1Weight, int Fc1Bias, int Fc2Weight, int Fc2Bias, int Ln2Gamma, int Ln2Beta);

/// <summary>
/// Where every tensor of BertForSequenceClassification lives in one flat float32 buffer, under the
/// names Python transformers uses. Parameters, gradients and both Adam moments share this layout,
/// so the optimizer and the gradient norm run over single contiguous arrays.
/// </summary>
public sealed class BertLayout
{
    private readonly List<ParameterTensor> tensors = new();
    private readonly Dictionary<string, ParameterTensor> byName = new(StringComparer.Ordinal);

    public BertConfig Config { get; }
    public int Size { get; private set; }
    public IReadOnlyList<ParameterTensor> Tensors => tensors;

    public int WordEmbeddings { get; }
    public int PositionEmbeddings { get; }
    public int TypeEmbeddings { get; }
    public int EmbLnGamma { get; }
    public int EmbLnBeta { get; }
    public LayerOffsets[] Layers { get; }
    public int PoolerWeight { get; }
    public int PoolerBias { get; }
    public int ClassifierWeight { get; }
    public int ClassifierBias { get; }

    public BertLayout(BertConfig c)
    {
        Config = c;
        int C = c.HiddenSize, I = c.IntermediateSize, L = c.NumLabels;
        WordEmbeddings = Add("bert.embeddings.word_embeddings.weight", true, c.VocabSize, C);
        PositionEmbeddings = Add("bert.embeddings.position_embeddings.weight", true, c.MaxPositionEmbeddings, C);
        TypeEmbeddings = Add("bert.embeddings.token_type_embeddings.weight", true, c.TypeVocabSize, C);
        EmbLnGamma = Add("bert.embeddings.LayerNorm.weight", false, C);
        EmbLnBeta = Add("bert.embeddings.LayerNorm.bias", false, C);
        Layers = new LayerOffsets[c.NumHiddenLayers];
        for (int l = 0; l < Layers.Length; l++)
        {
            string p = $"bert.encoder.layer.{l}.";
            int qw = Add(p + "attention.self.query.weight", true, C, C);
            Add(p + "attention.self.key.weight", true, C, C);
            Add(p + "attention.self.value.weight", true, C, C);
            int qb = Add(p + "attention.self.query.bias", false, C);
            Add(p + "attention.self.key.bias", false, C);
            Add(p + "attention.self.value.bias", false, C);
            Layers[l] = new LayerOffsets(
                QkvWeight: qw, QkvBias: qb,
                AttnOutWeight: Add(p + "attention.output.dense.weight", true, C, C),
                AttnOutBias: Add(p + "attention.output.dense.bias", false, C),
                Ln1Gamma: Add(p + "attention.output.LayerNorm.weight", false, C),
                Ln1Beta: Add(p + "attention.output.LayerNorm.bias", false, C),
                Fc1Weight: Add(p + "intermediate.dense.weight", true, I, C),
                Fc1Bias: Add(p + "intermediate.dense.bias", false, I),
                Fc2Weight: Add(p + "output.dense.weight", true, C, I),
                Fc2Bias: Add(p + "output.dense.bias", false, C),
                Ln2Gamma: Add(p + "output.LayerNorm.weight", false, C),
                Ln2Beta: Add(p + "output.LayerNorm.bias", false, C));
        }
        PoolerWeight = Add("bert.pooler.dense.weight", true, C, C);
        PoolerBias = Add("bert.pooler.dense.bias", false, C);
        ClassifierWeight = Add("classifier.weight", true, L, C);
        ClassifierBias = Add("classifier.bias", false, L);
    }

    /// <summary>Adds a tensor; weight decay applies to matrices, not to biases and LayerNorm weights
    /// (the HF Trainer convention; embedding tables are decayed as there).</summary>
    private int Add(string name, bool decay, params int[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        if (Size + n > Array.MaxLength) throw new ModelFormatException($"model too large for one buffer at tensor '{name}'");
        var t = new ParameterTensor(name, shape.Select(d => (long)d).ToArray(), Size, (int)n, decay);
        tensors.Add(t);
        byName[name] = t;
        Size += (int)n;
        return t.Offset;
    }

    public ParameterTensor this[string name] => byName[name];

    /// <summary>The tensors as AdamW sees them. The weights of the linear layers (Q, K, V, the attention
    /// output, both feed-forward layers, the pooler, the classifier) are marked as overwritten: their
    /// gradient is the weight-gradient GEMM's (Linear.Backward, beta 0), written whole by every backward.
    /// Every other gradient is added into (the embedding tables by scatter, biases and LayerNorm weights
    /// by sums), so it must start each backward at zero.</summary>
    public Kernels.Cpu.AdamW.Tensor[] OptimizerTensors()
    {
        int C = Config.HiddenSize;
        var linearWeights = new HashSet<int> { PoolerWeight, ClassifierWeight };
        foreach (var l in Layers)
        {
            linearWeights.UnionWith([l.QkvWeight, l.QkvWeight + C * C, l.QkvWeight + 2 * C * C]);  // query, key, value
            linearWeights.UnionWith([l.AttnOutWeight, l.Fc1Weight, l.Fc2Weight]);
        }
        return tensors.Select(t => new Kernels.Cpu.AdamW.Tensor(t.Offset, t.Length, t.WeightDecay, linearWeights.Contains(t.Offset))).ToArray();
    }

    public static float[] Allocate(int size) => GC.AllocateArray<float>(size, pinned: true);
}
