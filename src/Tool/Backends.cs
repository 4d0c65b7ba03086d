using MixupBert.Kernels.Cpu;
using MixupBert.Kernels.Cuda;
using MixupBert.Model.Bert;
using MixupBert.Model.Weights;

namespace MixupBert.Tool;

/// <summary>Picks the compute backend for --backend auto|cpu|cuda and says why.</summary>
public static class Backends
{
    public static readonly string[] Names = { "auto", "cpu", "cuda" };

    /// <summary>Creates the engine; <paramref name="tf32"/> null = the GPU's default (on for Ampere and newer);
    /// <paramref name="device"/> the CUDA device ordinal (compare --devices), unused on the CPU.</summary>
    public static (IBertEngine Engine, string Why) Create(string backend, BertConfig config, float[] parameters, bool? tf32 = null, int device = 0)
    {
        switch (backend)
        {
            case "cpu":
                return (new CpuBertEngine(config, parameters), "--backend cpu");
            case "cuda":
                {
                    var gpu = CudaGpu.Open(device, tf32); // throws CudaUnavailableException with the reason
                    return (new GpuBertEngine(gpu, config, parameters), $"--backend cuda: {Describe(gpu)}");
                }
            case "auto":
                try
                {
                    var gpu = CudaGpu.Open(device, tf32);
                    return (new GpuBertEngine(gpu, config, parameters), $"auto picked cuda: {Describe(gpu)}");
                }
                catch (CudaUnavailableException e)
                {
                    return (new CpuBertEngine(config, parameters), $"auto picked cpu ({WorkerPool.Shared.WorkerCount} threads): {e.Message}");
                }
            default:
                throw new ArgumentException($"unknown backend '{backend}' (auto, cpu or cuda)");
        }
    }

    private static string Describe(CudaGpu gpu) =>
        $"device {gpu.Ordinal}: {gpu.Name}, compute capability {gpu.ComputeCapability / 10}.{gpu.ComputeCapability % 10}, {gpu.TotalMemory / (1L << 30)} GiB, TF32 {(gpu.Tf32 ? "on" : "off")}";
}
