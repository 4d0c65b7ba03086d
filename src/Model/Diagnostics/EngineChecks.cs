using System.Numerics.Tensors;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;
using static MixupBert.Model.Diagnostics.GpuSelfTest;

namespace MixupBert.Model.Diagnostics;

/// <summary>The two engines on the same small BERT: one training step in each mode (loss, logits,
/// every gradient tensor), and three AdamW steps with dropout, clipping and a mixed batch. On bf16
/// activations the GPU engine is compared with the float32 CPU engine tensor by tensor, norm-wise
/// (<see cref="StepRel"/>): a step rounds every activation, so no single element is bound tightly.
/// These checks are for the wiring (which buffer, which type, which weight copy: a mistake there is
/// an error of order 1); bf16's precision is bound op by op in <see cref="OpChecks"/>.</summary>
internal static class EngineChecks
{
    /// <summary>A whole bf16 training step against float32: 16u (6%) of each tensor's norm. Measured on the
    /// shim: at most about 11.5u (0.72× of this), on attention biases' gradients (sums over all tokens that cancel).</summary>
    public const double StepRel = 16 * Bf16U;

    /// <summary>Close elementwise (float32) or norm-wise (bf16).</summary>
    private static void Compare(Checker c, SelfTestDevice d, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rel, double abs, string what)
    {
        if (d.Activations == Kernels.Cuda.DType.BF16) c.CloseNorm(expected, actual, StepRel, 0, what);
        else c.Close(expected, actual, rel, abs, what);
    }

    /// <summary>A small BERT: 2 layers, hidden 32, 2 heads of 16 channels (on bf16, the tensor-core
    /// attention kernels that real BERTs' heads of 32 or 64 take), 3 labels.</summary>
    private static BertConfig Small(float dropout) => new()
    {
        VocabSize = 50, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 48,
        MaxPositionEmbeddings = 16, HiddenDropoutProb = dropout, AttentionProbsDropoutProb = dropout, InitializerRange = 0.2f,
        Id2Label = ["a", "b", "c"],
    };

    /// <summary>Random ids with varied lengths and padding (the first row full), two segments in odd
    /// rows, random labels: a batch that exercises masks and token types.</summary>
    private static Batch SomeBatch(BertConfig c, int batch, int seqLen, int seed)
    {
        var rng = new Random(seed);
        var ids = new int[batch * seqLen]; var types = new int[batch * seqLen]; var mask = new float[batch * seqLen];
        for (int i = 0; i < batch; i++)
        {
            int len = i == 0 ? seqLen : 1 + rng.Next(seqLen);
            for (int t = 0; t < seqLen; t++)
            {
                ids[i * seqLen + t] = t < len ? rng.Next(c.VocabSize) : c.PadTokenId;
                mask[i * seqLen + t] = t < len ? 1 : 0;
                types[i * seqLen + t] = t < len && t >= len / 2 && i % 2 == 1 ? 1 : 0;
            }
        }
        var labels = Enumerable.Range(0, batch).Select(_ => rng.Next(c.NumLabels)).ToArray();
        return new Batch(seqLen, c.NumLabels, ids, mask, labels, types);
    }

    private static Mix? MixFor(string mode) => mode switch
    {
        "mixup" => new Mix(MixSite.WordEmbeddings, [2, 3, 0, 1], [0.7f, 1f, 0.25f, 0.5f]),
        "tmix" => new Mix(MixSite.Hidden, [1, 0, 3, 2], [0.6f, 0.4f, 0.9f, 0f], Layer: 1),
        "tmix-last" => new Mix(MixSite.Hidden, [3, 2, 1, 0], [0.6f, 0.4f, 0.9f, 0.1f], Layer: 2),
        "senmix" => new Mix(MixSite.Pooled, [2, 3, 0, 1], [0.3f, 0.8f, 0.5f, 0.5f]),
        "ssmix" => new Mix(MixSite.Tokens, [2, 3, 0, 1], [0.75f, 1f, 0.5f, 0.9f]),
        _ => null,
    };

    /// <summary>BERT's initialisation, then biases, LayerNorm γ and β perturbed (γ around 1, the others
    /// around 0, ±0.1): a fresh BERT's zero biases and unit γ would hide a kernel that drops or misplaces
    /// one.</summary>
    private static float[] Init(BertConfig config, int seed)
    {
        var p = BertCheckpoint.RandomInit(config, seed);
        var rng = new Random(seed + 1000);
        foreach (var t in new BertLayout(config).Tensors)
            if (t.Name.EndsWith(".bias", StringComparison.Ordinal) || t.Name.EndsWith("LayerNorm.weight", StringComparison.Ordinal))
                foreach (ref float v in p.AsSpan(t.Offset, t.Length)) v += (float)(rng.NextDouble() * 0.2 - 0.1);
        return p;
    }

    private static bool IsKeyBias(string name) => name.EndsWith("attention.self.key.bias", StringComparison.Ordinal);

    /// <summary>One training step (forward + backward) on both backends: loss, logits, every gradient.</summary>
    public static void TrainStep(Checker c, SelfTestDevice d, string mode)
    {
        var config = Small(mode == "dropout" ? 0.1f : 0f);
        var init = Init(config, 21);
        var batch = SomeBatch(config, batch: 4, seqLen: 9, seed: 22);
        var mix = MixFor(mode);
        using var cpu = new CpuBertEngine(config, (float[])init.Clone());
        using var gpu = new GpuBertEngine(d.Gpu, config, (float[])init.Clone(), d.Activations) { AttentionTensorCores = d.Context.AttentionTensorCores };
        double lossCpu = cpu.ForwardBackward(batch, mix, seed: 5, step: 3);
        double lossGpu = gpu.ForwardBackward(batch, mix, seed: 5, step: 3);
        Compare(c, d, [(float)lossCpu], [(float)lossGpu], ReductionRel, 0, "loss");
        var logitsCpu = new float[4 * 3]; var logitsGpu = new float[4 * 3];
        cpu.CopyLogits(logitsCpu); gpu.CopyLogits(logitsGpu);
        Compare(c, d, logitsCpu, logitsGpu, ReductionRel, ReductionAbs, "logits");
        var gc = new float[cpu.Layout.Size]; var gg = new float[cpu.Layout.Size];
        cpu.CopyGradients(gc); gpu.CopyGradients(gg);
        foreach (var t in cpu.Layout.Tensors)
        {
            var e = gc.AsSpan(t.Offset, t.Length); var a = gg.AsSpan(t.Offset, t.Length);
            if (IsKeyBias(t.Name))
            {
                // exactly 0 in exact arithmetic (softmax ignores a per-query constant): both sides hold
                // rounding residue only, far below the query bias gradient just before it
                double q = Math.Sqrt(TensorPrimitives.SumOfSquares(gc.AsSpan(t.Offset - t.Length, t.Length)) / t.Length);
                // bf16: a quarter of it. The tensor-core dK product takes dS rounded to bf16, so Σ_j dS_ij = 0
                // holds to u/2 per term only: measured 0.020-0.081× on the shim over the 7 modes (16u = 0.0625×
                // was this bound until tmix-last's 0.081×; the FMA kernels, with float32 dS, 0.017-0.021×).
                // A misplaced bias or key is an error of order 1.
                double residue = d.Activations == Kernels.Cuda.DType.BF16 ? 0.25 : 1e-4;
                c.True(TensorPrimitives.MaxMagnitude(a) < residue * q, $"gradient {t.Name} should vanish: max {TensorPrimitives.MaxMagnitude(a):G3}, the query bias gradient's rms {q:G3} ({TensorPrimitives.MaxMagnitude(a) / q:G3}×)");
                continue;
            }
            // a gradient is a sum of many terms: the absolute floor scales with the tensor's size
            double scale = Math.Sqrt(TensorPrimitives.SumOfSquares(e) / t.Length) + 1e-12;
            Compare(c, d, e, a, ReductionRel, ReductionRel * scale, $"gradient {t.Name}");
        }
    }

    /// <summary>SSMix's saliency pass (dropout on) on both backends: the token saliency, and the
    /// parameter gradients it used as scratch zeroed again.</summary>
    public static void TokenSaliency(Checker c, SelfTestDevice d)
    {
        var config = Small(0.1f);
        var init = Init(config, 23);
        var batch = SomeBatch(config, batch: 4, seqLen: 9, seed: 24);
        using var cpu = new CpuBertEngine(config, (float[])init.Clone());
        using var gpu = new GpuBertEngine(d.Gpu, config, (float[])init.Clone(), d.Activations) { AttentionTensorCores = d.Context.AttentionTensorCores };
        var sc = new float[4 * 9]; var sg = new float[4 * 9];
        cpu.TokenSaliency(batch, seed: 5, step: 3, sc);
        gpu.TokenSaliency(batch, seed: 5, step: 3, sg);
        c.True(TensorPrimitives.Min(sc.AsSpan(0, 9)) > 0f, "every token of the full first example has a positive saliency");
        Compare(c, d, sc, sg, ReductionRel, ReductionRel * TensorPrimitives.Max(sc), "saliency (row_norm_forward of the embeddings' gradient)");
        var grads = new float[gpu.Layout.Size];
        gpu.CopyGradients(grads);
        c.True(TensorPrimitives.MaxMagnitude(grads) == 0f, "the saliency pass leaves no parameter gradient");
    }

    /// <summary>Three AdamW steps (dropout on, clipping active, one mixup batch) on both backends.</summary>
    public static void ThreeAdamWSteps(Checker c, SelfTestDevice d)
    {
        var config = Small(0.1f) with { Id2Label = ["a", "b"] };
        var init = Init(config, 31);
        using var cpu = new CpuBertEngine(config, (float[])init.Clone());
        using var gpu = new GpuBertEngine(d.Gpu, config, (float[])init.Clone(), d.Activations) { AttentionTensorCores = d.Context.AttentionTensorCores };
        var settings = new OptimizerSettings(MaxGradNorm: 0.5f);
        for (int step = 1; step <= 3; step++)
        {
            var batch = SomeBatch(config, batch: 3, seqLen: 6 + step, seed: 40 + step);
            var mix = step == 2 ? new Mix(MixSite.WordEmbeddings, [2, 0, 1], [0.3f, 0.6f, 0.9f]) : null;
            var rc = cpu.TrainStep(batch, mix, 1e-3f, step, 7, settings);
            var rg = gpu.TrainStep(batch, mix, 1e-3f, step, 7, settings);
            Compare(c, d, [(float)rc.Loss], [(float)rg.Loss], ReductionRel, 0, $"step {step} loss");
            Compare(c, d, [(float)rc.GradNorm], [(float)rg.GradNorm], ReductionRel, 0, $"step {step} gradient norm");
            c.True(rc.GradNorm > settings.MaxGradNorm, "the check means clipping to act");
        }
        var pc = new float[cpu.Layout.Size]; var pg = new float[pc.Length];
        var mc = new float[pc.Length]; var vc = new float[pc.Length]; var mg = new float[pc.Length]; var vg = new float[pc.Length];
        cpu.CopyParameters(pc); gpu.CopyParameters(pg);
        cpu.CopyOptimizerState(mc, vc); gpu.CopyOptimizerState(mg, vg);
        // Adam turns the key biases' rounding-residue gradients into full-size steps of either sign,
        // on any two implementations: they are left out of this comparison
        foreach (var t in cpu.Layout.Tensors.Where(t => !IsKeyBias(t.Name)))
        {
            if (d.Activations == Kernels.Cuda.DType.BF16)
            {
                // Adam's first steps move each weight by about ±lr whatever its gradient's size, so where a
                // gradient is below bf16's noise the step's sign is noise: the weights are not comparable,
                // the first moment (linear in the gradients) is
                c.CloseNorm(mc.AsSpan(t.Offset, t.Length), mg.AsSpan(t.Offset, t.Length), StepRel, 0, $"{t.Name} Adam first moment");
                continue;
            }
            c.Close(pc.AsSpan(t.Offset, t.Length), pg.AsSpan(t.Offset, t.Length), ReductionRel, 1e-6, $"{t.Name} after three AdamW steps");
            c.Close(mc.AsSpan(t.Offset, t.Length), mg.AsSpan(t.Offset, t.Length), 1e-3, 1e-7, $"{t.Name} Adam first moment");
        }
    }
}
