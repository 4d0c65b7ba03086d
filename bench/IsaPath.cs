using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using MixupBert.Kernels.Cpu;

namespace MixupBert.Bench;

/// <summary>Which ISA path a benchmark measured: the GEMM micro-kernel and the FMA-peak loop.</summary>
public static class IsaPath
{
    public static string Describe() => $"GEMM {Gemm.MicroKernel}, peak loop {MachinePeak.Describe()}";

    /// <summary>Printed by each benchmark's [GlobalSetup], in the process that runs it (so the log shows
    /// the path that ran even where a job's environment switches an ISA off).</summary>
    public static void Print() => Console.WriteLine($"// ISA path: {Describe()}; caches {CacheSizes.OfThisMachine}; GEMM blocking {Gemm.Blocking}");
}

/// <summary>The summary table's "ISA path" column: the micro-kernel of the host process, unless the
/// job sets DOTNET_Enable* switches, which the benchmark process then honours (its log line says which path).</summary>
public sealed class IsaPathColumn : IColumn
{
    public string Id => "IsaPath";
    public string ColumnName => "ISA path";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 1;
    public bool IsNumeric => false;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "GEMM micro-kernel (ISA path) the benchmark ran on";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var switches = benchmarkCase.Job.Environment.EnvironmentVariables?
            .Where(v => v.Key.StartsWith("DOTNET_Enable", StringComparison.OrdinalIgnoreCase)).Select(v => $"{v.Key}={v.Value}").ToArray();
        return switches is { Length: > 0 } ? $"see log ({string.Join(" ", switches)})" : Gemm.MicroKernel;
    }
}
