using System.Runtime.Intrinsics;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// One AdamW step, written as PyTorch's torch.optim.AdamW does it: decoupled weight decay
/// p ← p·(1 − lr·wd), then m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g²,
/// p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε), the gradient first scaled by the clip factor of
/// <see cref="GlobalNormClip"/>. CUDA: kernels/adamw.cuh.
/// </summary>
public static unsafe class AdamW
{
    public readonly record struct Hyper(float LearningRate, float Beta1, float Beta2, float Epsilon, float WeightDecay, long Step);

    private struct Body : ParallelFor.IRangeBody
    {
        public float* P, G, M, V;
        public float Lr, B1, B2, Eps, Decay, StepSize, InvSqrtBc2, Clip;
        public void Run(int begin, int end)
        {
            int i = begin;
            if (Vector512.IsHardwareAccelerated)
            {
                var decay = Vector512.Create(1f - Lr * Decay);
                var b1 = Vector512.Create(B1); var b1c = Vector512.Create(1f - B1);
                var b2 = Vector512.Create(B2); var b2c = Vector512.Create(1f - B2);
                var step = Vector512.Create(StepSize); var isb = Vector512.Create(InvSqrtBc2); var eps = Vector512.Create(Eps);
                var clip = Vector512.Create(Clip);
                for (; i + 16 <= end; i += 16)
                {
                    var g = Vector512.Load(G + i) * clip;
                    var m = b1 * Vector512.Load(M + i) + b1c * g;
                    var v = b2 * Vector512.Load(V + i) + b2c * g * g;
                    var p = Vector512.Load(P + i) * decay;
                    p -= step * m / (Vector512.Sqrt(v) * isb + eps);
                    m.Store(M + i); v.Store(V + i); p.Store(P + i);
                }
            }
            for (; i < end; i++)
            {
                float g = G[i] * Clip;
                float m = B1 * M[i] + (1f - B1) * g;
                float v = B2 * V[i] + (1f - B2) * g * g;
                float p = P[i] * (1f - Lr * Decay);
                P[i] = p - StepSize * m / (MathF.Sqrt(v) * InvSqrtBc2 + Eps);
                M[i] = m; V[i] = v;
            }
        }
    }

    /// <summary>A parameter tensor as the optimizer sees it: where it lies in the flat buffers, whether
    /// weight decay applies (not to biases and LayerNorm weights, HF's no-decay groups), and whether the
    /// backward overwrites its gradient whole (a weight-gradient GEMM with beta 0), so that clearing it
    /// after the update would be wasted work.</summary>
    public readonly record struct Tensor(long Offset, long Length, bool Decay, bool GradientOverwritten = false);

    /// <summary>
    /// One AdamW step on every tensor (h.WeightDecay for those that decay, 0 for the others), the
    /// gradient scaled by <paramref name="clip"/>; when <paramref name="clearGradients"/>, each
    /// tensor's gradient is zeroed after its update, except those the backward overwrites
    /// (<see cref="Tensor.GradientOverwritten"/>). The GPU does it in one launch (Cuda.AdamW.StepTensors).
    /// </summary>
    public static void StepTensors(Span<float> param, Span<float> grad, Span<float> m, Span<float> v, ReadOnlySpan<Tensor> tensors,
        in Hyper h, float clip, bool clearGradients)
    {
        foreach (var t in tensors)
        {
            int o = checked((int)t.Offset), n = checked((int)t.Length);
            Step(param.Slice(o, n), grad.Slice(o, n), m.Slice(o, n), v.Slice(o, n), t.Decay ? h : h with { WeightDecay = 0f }, clip);
            if (clearGradients && !t.GradientOverwritten) grad.Slice(o, n).Clear();
        }
    }

    /// <summary>torch.nn.utils.clip_grad_norm_'s factor: min(1, maxNorm / (‖g‖ + 1e-6)), 1 when maxNorm is 0
    /// (no clipping); norm is ‖g‖ before clipping. Σ g² in double, in fixed chunks.</summary>
    public static float GlobalNormClip(ReadOnlySpan<float> grad, float maxNorm, out double norm)
    {
        norm = Math.Sqrt(Reduce.SumOfSquares(grad));
        return maxNorm > 0 ? (float)Math.Min(1.0, maxNorm / (norm + 1e-6)) : 1f;
    }

    /// <summary>One AdamW step on one tensor with the gradient scaled by <paramref name="clip"/> (the
    /// gradient itself is left as it is).</summary>
    public static void Step(Span<float> param, ReadOnlySpan<float> grad, Span<float> m, Span<float> v, in Hyper h, float clip = 1f)
    {
        int n = param.Length;
        if (grad.Length < n || m.Length < n || v.Length < n) throw new ArgumentException("adamw: buffers differ in length");
        if (h.Step < 1) throw new ArgumentOutOfRangeException(nameof(h), "AdamW steps count from 1");
        double bc1 = 1 - Math.Pow(h.Beta1, h.Step), bc2 = 1 - Math.Pow(h.Beta2, h.Step);
        fixed (float* pp = param, pg = grad, pm = m, pv = v)
            ParallelFor.Run(n, new Body
            {
                P = pp, G = pg, M = pm, V = pv, Lr = h.LearningRate, B1 = h.Beta1, B2 = h.Beta2, Eps = h.Epsilon, Decay = h.WeightDecay,
                StepSize = (float)(h.LearningRate / bc1), InvSqrtBc2 = (float)(1 / Math.Sqrt(bc2)), Clip = clip,
            }, 8, 64);
    }
}
