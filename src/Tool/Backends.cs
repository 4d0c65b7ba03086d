using MixupBert.Kernels.Cpu;
using MixupBert.Kernels.Cuda;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;

namespace MixupBert.Tool;

/// <summary>Picks the compute backend for --backend auto|cpu|cuda and --precision auto|fp32|tf32|bf16, and says why.</summary>
public static class Backends
{
    public static readonly string[] Names = { "auto", "cpu", "cuda" };

    public const string PrecisionHelp =
        "GPU arithmetic: fp32, tf32 (float32 storage, TF32 tensor-core GEMMs), bf16 (bfloat16 activations and GEMMs, float32 master weights, " +
        "gradients and optimizer state) or auto (bf16 on Ampere and newer, else fp32). The CPU computes in fp32 only";

    /// <summary>Creates the engine. <paramref name="precision"/>: auto, fp32, tf32 or bf16 (only auto and fp32
    /// on the CPU); <paramref name="device"/> the CUDA device ordinal (compare --devices), unused on the CPU.</summary>
    public static (IBertEngine Engine, string Why) Create(string backend, BertConfig config, float[] parameters, string precision = "auto", int device = 0)
    {
        Precision? asked = precision == "auto" ? null : DTypes.Parse(precision); // throws ArgumentException naming the choices
        switch (backend)
        {
            case "cpu":
                RequireCpuPrecision(asked, "--backend cpu");
                return (new CpuBertEngine(config, parameters), "--backend cpu");
            case "cuda":
                return OnGpu(config, parameters, asked, device, "--backend cuda");
            case "auto":
                try { return OnGpu(config, parameters, asked, device, "auto picked cuda"); }
                catch (CudaUnavailableException e)
                {
                    RequireCpuPrecision(asked, $"auto picked cpu ({e.Message})");
                    return (new CpuBertEngine(config, parameters), $"auto picked cpu ({WorkerPool.Shared.WorkerCount} threads): {e.Message}");
                }
            default:
                throw new ArgumentException($"unknown backend '{backend}' (auto, cpu or cuda)");
        }
    }

    private static void RequireCpuPrecision(Precision? asked, string why)
    {
        if (asked is Precision p && p != Precision.Fp32)
            throw new ArgumentException($"--precision {p.Name()} needs a CUDA GPU; {why}, and the CPU computes in fp32 only");
    }

    private static (IBertEngine, string) OnGpu(BertConfig config, float[] parameters, Precision? asked, int device, string why)
    {
        // TF32 math matters to float32 GEMMs only; under bf16 every GEMM has bf16 operands
        var gpu = CudaGpu.Open(device, asked switch { Precision.Fp32 => false, Precision.Tf32 => true, _ => null }); // throws CudaUnavailableException with the reason
        try
        {
            // auto: bf16 where the GPU has it. Measured on an H200 (docs/perf.md): 2.2× TF32's training step,
            // test accuracy within +0.13 pt of fp32 (95% CI −0.14..+0.40) over 5 seeds of MiniLM
            var precision = asked ?? (gpu.SupportsBf16 ? Precision.Bf16 : Precision.Fp32);
            if (precision == Precision.Bf16 && !gpu.SupportsBf16)
                throw new CudaUnavailableException($"--precision bf16 needs compute capability 8.0 (Ampere) or newer; {gpu.Name} has {gpu.ComputeCapability / 10}.{gpu.ComputeCapability % 10}");
            return (new GpuBertEngine(gpu, config, parameters, precision.Activations(), ownsGpu: true), $"{why}: {Describe(gpu, precision)}");
        }
        catch
        {
            gpu.Dispose();
            throw;
        }
    }

    private static string Describe(CudaGpu gpu, Precision precision) =>
        $"device {gpu.Ordinal}: {gpu.Name}, compute capability {gpu.ComputeCapability / 10}.{gpu.ComputeCapability % 10}, {gpu.TotalMemory / (1L << 30)} GiB, precision {precision.Name()}";
}
