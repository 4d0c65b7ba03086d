using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace MixupBert.Bench;

/// <summary>A benchmark that knows how much work one invocation does.</summary>
public interface IWork
{
    /// <summary>Floating-point operations (or bytes, for bandwidth) of one invocation, and the unit.</summary>
    static abstract (double Amount, string Unit) Work(string method, string parameter);
}

/// <summary>Work per invocation divided by the median time: GFLOP/s or GB/s.</summary>
public sealed class RateColumn : IColumn
{
    public string Id => "Rate";
    public string ColumnName => "Rate (median)";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "GFLOP/s or GB/s computed from the median time of one invocation";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is not { } stats) return "-";
        var type = benchmarkCase.Descriptor.Type;
        var method = type.GetMethod(nameof(IWork.Work), System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static);
        if (method == null) return "-";
        string parameter = string.Join(",", benchmarkCase.Parameters.Items.Select(p => p.Value?.ToString()));
        var (amount, unit) = ((double, string))method.Invoke(null, new object[] { benchmarkCase.Descriptor.WorkloadMethod.Name, parameter })!;
        double seconds = stats.Median / 1e9;
        return $"{amount / seconds / 1e9:F1} {unit}";
    }
}
