using MixupBert.Kernels.Cuda;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;
using MixupBert.Tests.CudaShim;

namespace MixupBert.Tests.Cuda;

/// <summary>
/// bf16 mixed precision trains as float32 does: a small BERT learns a token-presence task for
/// <see cref="Steps"/> AdamW steps, once on the float32 CPU engine and once on the CUDA engine with
/// bf16 activations (kernels.cu's bf16 module on the shim), same initial weights, same batches, same
/// dropout masks. The loss curves must stay within a stated band of each other at every step, and
/// both must learn (the band means nothing if neither moves).
/// </summary>
public class Bf16ConvergenceTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Steps = 64, Window = 8, Batch = 8, SeqLen = 12;
    /// <summary>|loss_bf16 − loss_fp32| at any step ≤ Band + BandRel·loss_fp32.</summary>
    private const double Band = 0.005, BandRel = 0.01;

    // heads of 16 channels: bf16 attention on tensor cores (either kernel set), as real BERTs' heads take it
    private static readonly BertConfig Config = new()
    {
        VocabSize = 40, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 64,
        MaxPositionEmbeddings = 16, HiddenDropoutProb = 0.1f, AttentionProbsDropoutProb = 0.1f, InitializerRange = 0.02f,
        Id2Label = ["absent", "present"],
    };

    /// <summary>Label 1 when the example starts with token 7, the pooler's position: a task a 2-layer
    /// BERT learns in a few dozen steps, with the rest of the sequence as noise it must attend past.</summary>
    private static Batch TaskBatch(int step)
    {
        var rng = new Random(1000 + step);
        var ids = new int[Batch * SeqLen]; var mask = new float[Batch * SeqLen]; var labels = new int[Batch];
        for (int b = 0; b < Batch; b++)
        {
            int len = 4 + rng.Next(SeqLen - 3);
            labels[b] = b % 2;
            for (int t = 0; t < SeqLen; t++)
            {
                ids[b * SeqLen + t] = t < len ? 8 + rng.Next(Config.VocabSize - 8) : Config.PadTokenId;
                mask[b * SeqLen + t] = t < len ? 1 : 0;
            }
            if (labels[b] == 1) ids[b * SeqLen] = 7;
        }
        return new Batch(SeqLen, 2, ids, mask, labels, new int[Batch * SeqLen]);
    }

    private static double[] Train(IBertEngine engine)
    {
        var losses = new double[Steps];
        var settings = new OptimizerSettings(MaxGradNorm: 1f); // HF's defaults (a bare new() would zero them)
        for (int step = 1; step <= Steps; step++)
        {
            var mix = step % 2 == 0 ? new Mix(MixSite.WordEmbeddings, [1, 0, 3, 2, 5, 4, 7, 6], [0.8f, 0.3f, 0.6f, 1f, 0.5f, 0.9f, 0.2f, 0.7f]) : null;
            losses[step - 1] = engine.TrainStep(TaskBatch(step), mix, 2e-3f * (1 - (step - 1f) / Steps), step, 11, settings).Loss;
        }
        return losses;
    }

    [Theory]
    [InlineData(TensorCoreKernels.Wmma)]
    [InlineData(TensorCoreKernels.MmaSync)]
    public void Bf16LossCurveStaysWithinTheBandOfFloat32(TensorCoreKernels attention)
    {
        var init = BertCheckpoint.RandomInit(Config, 5);
        using var cpu = new CpuBertEngine(Config, (float[])init.Clone());
        using var shim = new ShimGpu();
        using var bf16 = new GpuBertEngine(shim, Config, (float[])init.Clone(), DType.BF16) { AttentionTensorCores = attention };
        var reference = Train(cpu);
        var mixed = Train(bf16);
        double worst = 0;
        for (int i = 0; i < Steps; i++)
            output.WriteLine($"step {i + 1,2}: fp32 {reference[i]:F4}  bf16 {mixed[i]:F4}");
        for (int w = 0; w < Steps / Window; w++)
        {
            double r = reference.Skip(w * Window).Take(Window).Average(), m = mixed.Skip(w * Window).Take(Window).Average();
            double gap = Math.Abs(m - r), allowed = Band + BandRel * r;
            worst = Math.Max(worst, gap / allowed);
            output.WriteLine($"steps {w * Window + 1,2}-{(w + 1) * Window,2}: fp32 {r:F4}  bf16 {m:F4}  gap {gap:F4} ({gap / allowed:F2}× the band)");
        }
        double first = reference.Take(4).Average(), last = reference.TakeLast(4).Average(), lastBf16 = mixed.TakeLast(4).Average();
        output.WriteLine($"fp32 loss {first:F3} → {last:F3}; bf16 → {lastBf16:F3}; worst gap {worst:F2}× the band");
        Assert.True(last < 0.5 * first, $"float32 did not learn the task (loss {first:F3} → {last:F3}): the check needs a curve that moves");
        Assert.True(worst <= 1.0, $"the bf16 loss curve left the band of float32's ({worst:F2}× the band)");
    }
}
