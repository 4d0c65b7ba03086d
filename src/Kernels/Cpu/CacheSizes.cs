using System.Runtime.Intrinsics;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// The data-cache sizes of one core, in bytes, as the machine reports them (Linux sysfs,
/// /sys/devices/system/cpu/cpu0/cache/index*/), with fixed fallbacks where it reports nothing
/// (other systems, containers that hide sysfs): the GEMM's block sizes are derived from them.
/// </summary>
public readonly record struct CacheSizes(long L1Data, long L2, long L3, bool FromMachine)
{
    /// <summary>What the block sizes assume where the machine says nothing: a common x86 core.</summary>
    public static readonly CacheSizes Fallback = new(32 << 10, 512 << 10, 8 << 20, false);

    private static readonly Lazy<CacheSizes> thisMachine = new(() => Read("/sys/devices/system/cpu/cpu0/cache"));

    public static CacheSizes OfThisMachine => thisMachine.Value;

    /// <summary>Reads a sysfs cache folder; any level it lacks, or cannot parse, keeps its fallback.</summary>
    public static CacheSizes Read(string folder)
    {
        long l1 = 0, l2 = 0, l3 = 0;
        try
        {
            if (!Directory.Exists(folder)) return Fallback;
            foreach (var index in Directory.GetDirectories(folder, "index*"))
            {
                string type = ReadText(index, "type"), level = ReadText(index, "level");
                long size = ParseSize(ReadText(index, "size"));
                if (size <= 0 || type == "Instruction") continue;
                if (level == "1") l1 = size;
                else if (level == "2") l2 = size;
                else if (level == "3") l3 = size;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return Fallback; }
        if (l1 == 0 && l2 == 0) return Fallback;
        return new CacheSizes(l1 > 0 ? l1 : Fallback.L1Data, l2 > 0 ? l2 : Fallback.L2, l3 > 0 ? l3 : Fallback.L3, true);
    }

    private static string ReadText(string folder, string file)
    {
        string path = Path.Combine(folder, file);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : "";
    }

    /// <summary>"32K", "512K", "32768K", "1M" or plain bytes; 0 when unreadable.</summary>
    public static long ParseSize(string text)
    {
        if (text.Length == 0) return 0;
        long unit = char.ToUpperInvariant(text[^1]) switch { 'K' => 1 << 10, 'M' => 1 << 20, 'G' => 1 << 30, _ => 1 };
        string digits = unit == 1 ? text : text[..^1];
        return long.TryParse(digits, out long n) && n > 0 ? n * unit : 0;
    }

    public override string ToString() =>
        $"L1d {L1Data >> 10} KiB, L2 {L2 >> 10} KiB, L3 {L3 >> 20} MiB{(FromMachine ? "" : " (assumed: the machine reports none)")}";
}
