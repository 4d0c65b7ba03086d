using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

namespace MixupBert.Bench;

/// <summary>
/// BenchmarkDotNet entry point. Run e.g.
///   dotnet run -c Release --project bench -- --filter '*Peak*' '*Gemm*' '*Step*'
/// Every benchmark reports GFLOP/s (or GB/s) from its median time in the "Rate" column.
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        var config = DefaultConfig.Instance.AddColumn(new RateColumn()).WithOptions(ConfigOptions.JoinSummary);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
    }
}
