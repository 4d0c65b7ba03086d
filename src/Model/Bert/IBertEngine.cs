namespace MixupBert.Model.Bert;

/// <summary>AdamW and clipping settings, HF Trainer's defaults.</summary>
public readonly record struct OptimizerSettings(
    float Beta1 = 0.9f, float Beta2 = 0.999f, float Epsilon = 1e-8f, float WeightDecay = 0.01f, float MaxGradNorm = 1f);

/// <summary>What one optimizer step reports: the mean loss and the gradient norm before clipping.</summary>
public readonly record struct StepResult(double Loss, double GradNorm);

/// <summary>
/// A BertForSequenceClassification that trains on some device: the CPU (<see cref="CpuBertEngine"/>)
/// or a CUDA GPU (<see cref="GpuBertEngine"/>). The training loop talks to this interface only.
/// Parameters and both Adam moments are laid out by <see cref="BertLayout"/> on every backend.
/// </summary>
public interface IBertEngine : IDisposable
{
    string Backend { get; }
    Weights.BertConfig Config { get; }
    BertLayout Layout { get; }

    /// <summary>Forward (dropout on, masks from seed and step), backward, gradient clipping and one
    /// AdamW step at <paramref name="learningRate"/>; <paramref name="step"/> counts from 1.</summary>
    StepResult TrainStep(Batch batch, Mix? mix, float learningRate, long step, ulong seed, in OptimizerSettings optimizer);

    /// <summary>
    /// SSMix's token saliency: saliency[b, t] = ‖∂L/∂e[b, t]‖₂, where e[b, t] is the sum of the word,
    /// position and type embeddings of token t of example b (the input of the embeddings' LayerNorm:
    /// the same gradient as its word-embedding row) and L the batch's mean cross-entropy with its own
    /// labels, unmixed, dropout on with the masks of <paramref name="seed"/> and <paramref name="step"/>
    /// as in a training step. One forward and backward (the parameter gradients on the way are scratch,
    /// zeroed again: nothing reaches an optimizer step); the op is RowNorm on both backends.
    /// </summary>
    void TokenSaliency(Batch batch, ulong seed, long step, Span<float> saliency);

    /// <summary>
    /// Allocates the activations for batches of up to <paramref name="batchSize"/> rows of
    /// <paramref name="seqLen"/> tokens now. Without it they grow with the largest batch seen, and with
    /// dynamic padding every longer batch reallocated them all: fresh pages, faulted in one by one
    /// (on the CPU as much system time as compute), and a device allocation on the GPU.
    /// </summary>
    void Reserve(int batchSize, int seqLen);

    /// <summary>A plain forward (no dropout, no mixing): fills probabilities [B, L], returns the mean loss.</summary>
    double Evaluate(Batch batch, Span<float> probabilities);

    /// <summary>Forward and backward only, gradients zeroed first; for checks against another backend.</summary>
    double ForwardBackward(Batch batch, Mix? mix, ulong seed, long step);

    void CopyLogits(Span<float> destination);
    /// <summary>The parameter gradients of the last ForwardBackward. After a TrainStep they are not
    /// defined: the GPU's optimizer launch clears them as it goes.</summary>
    void CopyGradients(Span<float> destination);
    void CopyParameters(Span<float> destination);
    void CopyOptimizerState(Span<float> m, Span<float> v);
    void LoadState(ReadOnlySpan<float> parameters, ReadOnlySpan<float> m, ReadOnlySpan<float> v);
}
