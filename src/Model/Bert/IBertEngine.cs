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
    /// AdamW step at <paramref name="learningRate"/>; <paramref name="step"/> counts from 1. The same as
    /// <see cref="StartTrainStep"/> then <see cref="FinishTrainStep"/>: it needs no step in flight.</summary>
    StepResult TrainStep(Batch batch, Mix? mix, float learningRate, long step, ulong seed, in OptimizerSettings optimizer)
    {
        StartTrainStep(batch, mix, learningRate, step, seed, optimizer);
        return FinishTrainStep();
    }

    /// <summary>
    /// The training step of <see cref="TrainStep"/>, started: on the GPU it is enqueued and this returns
    /// before it has run, so the host can prepare the next step while the device computes this one; the
    /// CPU computes it here. The contract, on every engine:
    /// <list type="bullet">
    /// <item>at most <see cref="StepsInFlight.Max"/> steps are started and not finished (a third start throws);</item>
    /// <item><see cref="FinishTrainStep"/> returns their results in the order they were started;</item>
    /// <item>every other call that touches the model or its state (Evaluate, ForwardBackward,
    /// TokenSaliency, Copy*, LoadState, Reserve) throws <see cref="InvalidOperationException"/> while a
    /// step is in flight: finish it first. Dispose waits for it and drops its result.</item>
    /// </list>
    /// The batch and the mix may be reused as soon as this returns (the engine has copied what it needs).
    /// </summary>
    void StartTrainStep(Batch batch, Mix? mix, float learningRate, long step, ulong seed, in OptimizerSettings optimizer);

    /// <summary>Waits for the oldest step in flight and returns its loss and gradient norm; throws
    /// <see cref="InvalidOperationException"/> when none is in flight.</summary>
    StepResult FinishTrainStep();

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

/// <summary>The bookkeeping of <see cref="IBertEngine.StartTrainStep"/>'s contract, shared by the engines.</summary>
public struct StepsInFlight
{
    /// <summary>The most steps started and not finished: the one the device computes and the one the
    /// host has just enqueued behind it (the GPU engine's per-step host buffers come in pairs).</summary>
    public const int Max = 2;

    /// <summary>Steps started and not finished.</summary>
    public int Count { get; private set; }
    /// <summary>Steps started since the engine was made: its parity picks the per-step buffers.</summary>
    public long Started { get; private set; }
    /// <summary>The start number (0-based) of the oldest step in flight.</summary>
    public readonly long Oldest => Started - Count;

    /// <summary>Throws when <see cref="Max"/> steps are in flight: called before a step's work begins.</summary>
    public readonly void CheckCanStart()
    {
        if (Count == Max) throw new InvalidOperationException($"{Max} training steps are already in flight: finish one (FinishTrainStep) before starting another");
    }

    /// <summary>Counts a step started, once its work is computed or enqueued.</summary>
    public void Start()
    {
        CheckCanStart();
        Started++; Count++;
    }

    public void Finish()
    {
        if (Count == 0) throw new InvalidOperationException("no training step is in flight: nothing to finish");
        Count--;
    }

    /// <summary>Throws when a step is in flight: <paramref name="call"/> reads or changes what it computes.</summary>
    public readonly void RequireNone(string call)
    {
        if (Count > 0) throw new InvalidOperationException($"{call}: {Count} training step(s) in flight; finish them (FinishTrainStep) first");
    }
}
