using System.Numerics.Tensors;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// Softmax cross-entropy against soft targets, averaged over the batch:
/// L = −(1/B) Σ_b Σ_c t[b,c] · log softmax(z[b])[c]. One-hot targets are the special case; a
/// mixup batch passes λ·onehot(y_a) + (1−λ)·onehot(y_b), which equals λ·CE(y_a) + (1−λ)·CE(y_b).
/// </summary>
public static class CrossEntropy
{
    /// <summary>Fills probs with softmax(logits) and returns the mean loss.</summary>
    public static double Forward(ReadOnlySpan<float> logits, ReadOnlySpan<float> targets, Span<float> probs, int batch, int classes)
    {
        if (logits.Length < batch * classes || targets.Length < batch * classes || probs.Length < batch * classes)
            throw new ArgumentException("cross-entropy: buffers too small");
        double total = 0;
        for (int b = 0; b < batch; b++)
        {
            var z = logits.Slice(b * classes, classes);
            var p = probs.Slice(b * classes, classes);
            var t = targets.Slice(b * classes, classes);
            float max = TensorPrimitives.Max(z);
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.Exp(z[c] - max);
            double logSum = Math.Log(sum) + max;
            for (int c = 0; c < classes; c++)
            {
                double logp = z[c] - logSum;
                p[c] = (float)Math.Exp(logp);
                total -= t[c] * logp;
            }
        }
        return total / batch;
    }

    /// <summary>dlogits = (softmax − t) · (dloss / B).</summary>
    public static void Backward(ReadOnlySpan<float> probs, ReadOnlySpan<float> targets, Span<float> dlogits, int batch, int classes, float dloss = 1f)
    {
        int n = batch * classes;
        TensorPrimitives.Subtract(probs[..n], targets[..n], dlogits[..n]);
        TensorPrimitives.Multiply(dlogits[..n], dloss / batch, dlogits[..n]);
    }
}
