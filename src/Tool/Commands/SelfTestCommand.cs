using System.CommandLine;
using MixupBert.Kernels.Cuda;
using MixupBert.Model.Diagnostics;

namespace MixupBert.Tool.Commands;

/// <summary>`mixup-bert selftest --backend cuda`: every CUDA kernel and a whole training step against the CPU backend.</summary>
public static class SelfTestCommand
{
    public static Command Build()
    {
        var backend = new Option<string>("--backend") { Description = "The backend to check against the CPU reference (cuda)", DefaultValueFactory = _ => "cuda" };
        var tf32 = new Option<bool>("--tf32") { Description = "Use TF32 tensor-op GEMMs (off by default here: the check compares float32 results)" };
        var only = new Option<string>("--only")
        {
            Description = "Run only the checks whose name contains one of these comma-separated words (e.g. \"bf16 attention,bf16 layernorm\"); the names are those selftest prints",
        };
        var cmd = new Command("selftest", "Check every CUDA kernel and one training step of a small BERT against the CPU backend, in float32 and in bf16") { backend, tf32, only };
        cmd.SetAction(parse =>
        {
            if (parse.GetValue(backend) != "cuda")
            {
                Console.Error.WriteLine("selftest checks the cuda backend against the cpu backend, which is the reference; its own checks are in the test suite (dotnet test)");
                return ErrorReport.BadInput;
            }
            var words = parse.GetValue(only)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
            if (!GpuSelfTest.Named(GpuSelfTest.Checks, words).Any())   // before the device: a typo is the same error with or without one
            {
                Console.Error.WriteLine($"--only {parse.GetValue(only)}: no selftest check's name contains {string.Join(" or ", words.Select(w => $"'{w}'"))}");
                return ErrorReport.BadInput;
            }
            CudaGpu gpu;
            try { gpu = CudaGpu.Open(tf32: parse.GetValue(tf32)); }
            catch (CudaUnavailableException e)
            {
                Console.Error.WriteLine($"no CUDA device: {e.Message}");
                return ErrorReport.NoDevice;
            }
            using (gpu)
            {
                Console.WriteLine($"selftest on {gpu.Name} (compute capability {gpu.ComputeCapability / 10}.{gpu.ComputeCapability % 10}, TF32 {(gpu.Tf32 ? "on" : "off")}) against the CPU backend");
                if (!gpu.SupportsBf16) Console.WriteLine("bf16 checks skipped: bf16 needs compute capability 8.0 or newer");
                var checks = GpuSelfTest.Named(GpuSelfTest.ChecksFor(gpu.SupportsBf16), words).ToList();
                if (checks.Count == 0)
                {
                    Console.Error.WriteLine($"--only {parse.GetValue(only)}: every check it names needs bf16, which this GPU lacks");
                    return ErrorReport.BadInput;
                }
                int failed = 0;
                foreach (var check in checks)
                {
                    var r = GpuSelfTest.Run(check, gpu);
                    if (!r.Passed) failed++;
                    Console.WriteLine($"{(r.Passed ? "PASS" : "FAIL")}  {r.Check,-34} {r.Seconds,6:F2} s  {r.Detail}");
                }
                Console.WriteLine($"selftest: {checks.Count - failed} passed, {failed} failed");
                return failed == 0 ? ErrorReport.Ok : ErrorReport.ChecksFailed;
            }
        });
        return cmd;
    }
}
