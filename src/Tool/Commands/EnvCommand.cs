using System.CommandLine;
using System.Runtime.Intrinsics;
using MixupBert.Kernels.Cpu;
using MixupBert.Kernels.Cuda;

namespace MixupBert.Tool.Commands;

/// <summary>`mixup-bert env`: what this build and machine can run on (CPU features, CUDA kernels, GPU).</summary>
public static class EnvCommand
{
    public static Command Build()
    {
        var cmd = new Command("env", "Show the CPU features, the CUDA kernels in this build and the GPU, if any");
        cmd.SetAction(_ =>
        {
            Console.WriteLine($"mixup-bert {typeof(EnvCommand).Assembly.GetName().Version} on .NET {Environment.Version}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
            string simd = Vector512.IsHardwareAccelerated ? "AVX-512" : Vector256.IsHardwareAccelerated ? "AVX2" : "128-bit vectors";
            Console.WriteLine($"cpu: {Environment.ProcessorCount} threads, {simd}, GEMM micro-tile {Gemm.MR}x{Gemm.NR}");
            var fatbin = CudaGpu.EmbeddedKernels();
            var fatbinBf16 = CudaGpu.EmbeddedKernels(DType.BF16);
            Console.WriteLine(fatbin != null
                ? $"cuda kernels: embedded ({fatbin.Length:N0} bytes float32, {(fatbinBf16 != null ? $"{fatbinBf16.Length:N0} bytes bf16" : "no bf16 module")})"
                : "cuda kernels: not in this build (built without nvcc): CPU only");
            foreach (string variable in new[] { CudaGpu.KernelsVariable, CudaGpu.KernelsBf16Variable })
                if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } path)
                    Console.WriteLine($"cuda kernels: {variable} replaces the embedded ones with {path}");
            try
            {
                using var gpu = CudaGpu.Open();
                Console.WriteLine($"gpu: {gpu.Name}, compute capability {gpu.ComputeCapability / 10}.{gpu.ComputeCapability % 10}, {gpu.TotalMemory / (1L << 30)} GiB");
            }
            catch (CudaUnavailableException e) { Console.WriteLine($"gpu: none usable ({e.Message})"); }
            return ErrorReport.Ok;
        });
        return cmd;
    }
}
