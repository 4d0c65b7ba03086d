using MixupBert.Kernels.Cpu;
using MixupBert.Model.Weights;

namespace MixupBert.Model.Bert;

/// <summary>The CPU backend: <see cref="BertClassifier"/> plus clipping and AdamW on host arrays.</summary>
public sealed class CpuBertEngine : IBertEngine
{
    private readonly BertClassifier model;
    private readonly float[] m, v;

    public CpuBertEngine(BertConfig config, float[] parameters)
    {
        model = new BertClassifier(config, parameters);
        m = BertLayout.Allocate(parameters.Length);
        v = BertLayout.Allocate(parameters.Length);
    }

    public string Backend => $"cpu ({WorkerPool.Shared.WorkerCount} threads)";
    public BertConfig Config => model.Config;
    public BertLayout Layout => model.Layout;
    public BertClassifier Model => model;

    public double ForwardBackward(Batch batch, Mix? mix, ulong seed, long step)
    {
        model.ZeroGradients();
        batch.SetTargets(mix);
        double loss = model.Forward(batch, training: true, seed, step, mix);
        model.Backward();
        return loss;
    }

    public StepResult TrainStep(Batch batch, Mix? mix, float learningRate, long step, ulong seed, in OptimizerSettings o)
    {
        double loss = ForwardBackward(batch, mix, seed, step);
        var g = model.Gradients;
        double norm = Math.Sqrt(Reduce.SumOfSquares(g));
        // torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is below 1
        float clip = o.MaxGradNorm > 0 ? (float)Math.Min(1.0, o.MaxGradNorm / (norm + 1e-6)) : 1f;
        if (clip < 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(g, clip, g);
        foreach (var t in Layout.Tensors)
        {
            var hyper = new AdamW.Hyper(learningRate, o.Beta1, o.Beta2, o.Epsilon, t.WeightDecay ? o.WeightDecay : 0f, step);
            AdamW.Step(model.Parameters.AsSpan(t.Offset, t.Length), g.AsSpan(t.Offset, t.Length), m.AsSpan(t.Offset, t.Length), v.AsSpan(t.Offset, t.Length), hyper);
        }
        return new StepResult(loss, norm);
    }

    public double Evaluate(Batch batch, Span<float> probabilities)
    {
        batch.SetTargets(null);
        double loss = model.Forward(batch, training: false);
        model.Probabilities.CopyTo(probabilities);
        return loss;
    }

    public void CopyLogits(Span<float> destination) => model.Logits.CopyTo(destination);
    public void CopyGradients(Span<float> destination) => model.Gradients.CopyTo(destination);
    public void CopyParameters(Span<float> destination) => model.Parameters.CopyTo(destination);
    public void CopyOptimizerState(Span<float> m_, Span<float> v_) { m.CopyTo(m_); v.CopyTo(v_); }

    public void LoadState(ReadOnlySpan<float> parameters, ReadOnlySpan<float> m_, ReadOnlySpan<float> v_)
    {
        parameters.CopyTo(model.Parameters);
        if (!m_.IsEmpty) m_.CopyTo(m);
        if (!v_.IsEmpty) v_.CopyTo(v);
    }

    public void Dispose() { }
}
