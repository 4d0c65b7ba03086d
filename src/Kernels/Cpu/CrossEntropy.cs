using System.Numerics.Tensors;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// Mixed softmax cross-entropy, forward and backward in one pass (as llm.c's fused classifier):
/// example b is scored against λ_b·onehot(y_b) + (1−λ_b)·onehot(y_{p_b}), so its loss is
/// λ_b·CE(y_b) + (1−λ_b)·CE(y_{p_b}); without a partner the targets are one-hot. The mean over the
/// batch is the loss. CUDA: kernels/cross_entropy.cuh.
/// </summary>
public static class CrossEntropy
{
    /// <summary>Fills probs = softmax(logits), losses[b] (each example's loss) and, unless it is empty,
    /// dlogits = (probs − targets) / B; returns the mean loss.</summary>
    /// <param name="partner">empty: one-hot targets; else each example's partner (length B).</param>
    /// <param name="lambda">with a partner: the weight of each example's own label.</param>
    public static double Forward(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, ReadOnlySpan<int> partner, ReadOnlySpan<float> lambda,
        Span<float> probs, Span<float> losses, Span<float> dlogits, int batch, int classes)
    {
        if (logits.Length < batch * classes || probs.Length < batch * classes || labels.Length < batch || losses.Length < batch
            || (!dlogits.IsEmpty && dlogits.Length < batch * classes))
            throw new ArgumentException("cross-entropy: buffers too small");
        bool mixed = !partner.IsEmpty;
        if (mixed && (partner.Length < batch || lambda.Length < batch)) throw new ArgumentException("cross-entropy: partner and λ need one entry per example");
        if (labels[..batch].ContainsAnyExceptInRange(0, classes - 1)) throw new ArgumentException($"cross-entropy: a label is outside 0..{classes - 1}");
        if (mixed && partner[..batch].ContainsAnyExceptInRange(0, batch - 1)) throw new ArgumentException($"cross-entropy: a partner is outside the batch of {batch}");
        float scale = 1f / batch;
        double total = 0;
        for (int b = 0; b < batch; b++)
        {
            var z = logits.Slice(b * classes, classes);
            var p = probs.Slice(b * classes, classes);
            float l = mixed ? lambda[b] : 1f;
            int ya = labels[b], yb = mixed ? labels[partner[b]] : ya;
            float max = TensorPrimitives.Max(z);
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.Exp(z[c] - max);
            double logSum = Math.Log(sum) + max, loss = 0;
            for (int c = 0; c < classes; c++)
            {
                // the target as a sum from zero, as the mixed one-hot vector would hold it
                float t = 0f;
                if (c == ya) t += l;
                if (c == yb) t += 1f - l;
                double logp = z[c] - logSum;
                p[c] = (float)Math.Exp(logp);
                if (!dlogits.IsEmpty) dlogits[b * classes + c] = (p[c] - t) * scale;
                total -= t * logp;
                loss -= t * logp;
            }
            losses[b] = (float)loss;
        }
        return total / batch;
    }
}
