using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

namespace MixupBert.Bench;

/// <summary>
/// BenchmarkDotNet entry point. Run e.g.
///   dotnet run -c Release --project bench -- --filter '*Peak*' '*Gemm*' '*Step*'
/// Every benchmark reports GFLOP/s (or GB/s) from its median time in the "Rate" column, and the
/// GEMM micro-kernel / ISA path it ran on in the "ISA path" column (and in its log).
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        IsaPath.Print();
        var config = DefaultConfig.Instance.AddColumn(new RateColumn(), new IsaPathColumn()).WithOptions(ConfigOptions.JoinSummary);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
    }
}
