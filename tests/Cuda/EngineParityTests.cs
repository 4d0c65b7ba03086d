using MixupBert.Model.Bert;
using MixupBert.Model.Weights;
using MixupBert.Tests.CudaShim;
using static MixupBert.Tests.Cuda.Compare;
using static MixupBert.Tests.TestSupport;

namespace MixupBert.Tests.Cuda;

/// <summary>
/// The whole CUDA backend (GpuBertEngine over kernels.cu on the shim) against the CPU backend:
/// one training step's loss, logits and every gradient tensor, then three AdamW steps.
/// </summary>
public class EngineParityTests
{
    public static TheoryData<string> Modes => new() { "baseline", "dropout", "mixup", "tmix", "tmix-last", "senmix" };

    private static Mix? MixFor(string mode, int batch) => mode switch
    {
        "mixup" => new Mix(MixSite.WordEmbeddings, Enumerable.Range(0, batch).Select(b => (b + 2) % batch).ToArray(), new[] { 0.7f, 1f, 0.25f, 0.5f }),
        "tmix" => new Mix(MixSite.Hidden, new[] { 1, 0, 3, 2 }, new[] { 0.6f, 0.4f, 0.9f, 0f }, Layer: 1),
        "tmix-last" => new Mix(MixSite.Hidden, new[] { 3, 2, 1, 0 }, new[] { 0.6f, 0.4f, 0.9f, 0.1f }, Layer: 2),
        "senmix" => new Mix(MixSite.Pooled, new[] { 2, 3, 0, 1 }, new[] { 0.3f, 0.8f, 0.5f, 0.5f }),
        _ => null,
    };

    [Theory]
    [MemberData(nameof(Modes))]
    public void OneTrainingStepMatchesTheCpuBackend(string mode)
    {
        var config = TinyConfig(labels: 3, dropout: mode == "dropout" ? 0.1f : 0f);
        var init = BertCheckpoint.RandomInit(config, 21);
        var batch = RandomBatch(config, batch: 4, seqLen: 9, seed: 22);
        var mix = MixFor(mode, 4);
        using var cpu = new CpuBertEngine(config, (float[])init.Clone());
        using var shim = new ShimGpu();
        using var gpu = new GpuBertEngine(shim, config, (float[])init.Clone());

        double lossCpu = cpu.ForwardBackward(batch, mix, seed: 5, step: 3);
        double lossGpu = gpu.ForwardBackward(batch, mix, seed: 5, step: 3);
        Assert.True(Math.Abs(lossCpu - lossGpu) <= 1e-4 * Math.Abs(lossCpu), $"{mode}: loss CPU {lossCpu}, GPU {lossGpu}");
        var logitsCpu = new float[4 * 3]; var logitsGpu = new float[4 * 3];
        cpu.CopyLogits(logitsCpu); gpu.CopyLogits(logitsGpu);
        Close(logitsCpu, logitsGpu, ReductionRel, ReductionAbs, $"{mode}: logits");

        var gc = new float[cpu.Layout.Size]; var gg = new float[cpu.Layout.Size];
        cpu.CopyGradients(gc); gpu.CopyGradients(gg);
        foreach (var t in cpu.Layout.Tensors)
        {
            var e = gc.AsSpan(t.Offset, t.Length); var a = gg.AsSpan(t.Offset, t.Length);
            if (IsKeyBias(t.Name))
            {
                // exactly zero in exact arithmetic (softmax ignores a per-query constant): both sides
                // hold rounding residue only, far below the query bias gradient beside it
                var q = gc.AsSpan(t.Offset - t.Length, t.Length); // query.bias sits just before key.bias
                double qScale = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.SumOfSquares(q) / t.Length);
                Assert.True(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(a) < 1e-4 * qScale, $"{mode}: {t.Name} should vanish on the GPU too");
                continue;
            }
            // gradients are sums over many terms: compare relative to the tensor's scale
            double scale = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.SumOfSquares(e) / t.Length) + 1e-12;
            Close(e, a, ReductionRel, ReductionRel * scale, $"{mode}: gradient {t.Name}");
        }
    }

    [Fact]
    public void ThreeAdamWStepsMatchTheCpuBackend()
    {
        var config = TinyConfig(labels: 2, dropout: 0.1f);
        var init = BertCheckpoint.RandomInit(config, 31);
        using var cpu = new CpuBertEngine(config, (float[])init.Clone());
        using var shim = new ShimGpu();
        using var gpu = new GpuBertEngine(shim, config, (float[])init.Clone());
        var settings = new OptimizerSettings(MaxGradNorm: 0.5f); // small enough that clipping acts
        for (int step = 1; step <= 3; step++)
        {
            var batch = RandomBatch(config, batch: 3, seqLen: 6 + step, seed: 40 + step);
            var mix = step == 2 ? new Mix(MixSite.WordEmbeddings, new[] { 2, 0, 1 }, new[] { 0.3f, 0.6f, 0.9f }) : null;
            var rc = cpu.TrainStep(batch, mix, 1e-3f, step, 7, settings);
            var rg = gpu.TrainStep(batch, mix, 1e-3f, step, 7, settings);
            Assert.True(Math.Abs(rc.Loss - rg.Loss) <= 1e-4 * Math.Abs(rc.Loss), $"step {step}: loss CPU {rc.Loss}, GPU {rg.Loss}");
            Assert.True(Math.Abs(rc.GradNorm - rg.GradNorm) <= 1e-4 * rc.GradNorm, $"step {step}: grad norm CPU {rc.GradNorm}, GPU {rg.GradNorm}");
            Assert.True(rc.GradNorm > 0.5, "the test means clipping to act");
        }
        var pc = new float[cpu.Layout.Size]; var pg = new float[cpu.Layout.Size];
        cpu.CopyParameters(pc); gpu.CopyParameters(pg);
        // Adam turns the key biases' rounding-residue gradients (exactly 0 in exact arithmetic) into
        // full-size steps of either sign, on any two implementations: they are left out here
        foreach (var t in cpu.Layout.Tensors.Where(t => !IsKeyBias(t.Name)))
            Close(pc.AsSpan(t.Offset, t.Length), pg.AsSpan(t.Offset, t.Length), ReductionRel, 1e-6, $"{t.Name} after three AdamW steps");
        var mc = new float[pc.Length]; var vc = new float[pc.Length]; var mg = new float[pc.Length]; var vg = new float[pc.Length];
        cpu.CopyOptimizerState(mc, vc); gpu.CopyOptimizerState(mg, vg);
        foreach (var t in cpu.Layout.Tensors.Where(t => !IsKeyBias(t.Name)))
            Close(mc.AsSpan(t.Offset, t.Length), mg.AsSpan(t.Offset, t.Length), 1e-3, 1e-7, $"{t.Name} Adam first moment");
    }

    private static bool IsKeyBias(string name) => name.EndsWith("attention.self.key.bias", StringComparison.Ordinal);
}
