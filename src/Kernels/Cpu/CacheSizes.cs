using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// The data-cache sizes of one core, in bytes, as the machine reports them: Linux sysfs
/// (/sys/devices/system/cpu/cpu0/cache/index*/), else the x86 CPUID instruction (virtual machines and
/// containers often hide sysfs's cache folder but pass CPUID through), else fixed fallbacks. The
/// GEMM's block sizes are derived from them.
/// </summary>
public readonly record struct CacheSizes(long L1Data, long L2, long L3, bool FromMachine)
{
    /// <summary>What the block sizes assume where the machine says nothing: a common x86 core.</summary>
    public static readonly CacheSizes Fallback = new(32 << 10, 512 << 10, 8 << 20, false);

    private static readonly Lazy<CacheSizes> thisMachine = new(() =>
    {
        var sysfs = Read("/sys/devices/system/cpu/cpu0/cache");
        return sysfs.FromMachine || !X86Base.IsSupported ? sysfs : FromCpuId((leaf, sub) => X86Base.CpuId(leaf, sub));
    });

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

    /// <summary>
    /// The caches as CPUID describes them: the deterministic cache leaf (Intel leaf 4, AMD 0x8000001D),
    /// each subleaf one cache (type, level, ways × partitions × line × sets); where neither lists a
    /// data cache, AMD's and Intel's legacy leaves (0x80000005 ECX[31:24] = L1d KiB, 0x80000006
    /// ECX[31:16] = L2 KiB, EDX[31:18] = L3 in 512 KiB units, AMD only). Takes the instruction as a
    /// function so that tests can feed it recorded register dumps.
    /// </summary>
    public static CacheSizes FromCpuId(Func<int, int, (int Eax, int Ebx, int Ecx, int Edx)> cpuid)
    {
        long l1 = 0, l2 = 0, l3 = 0;
        int maxBasic = cpuid(0, 0).Eax, maxExtended = cpuid(unchecked((int)0x80000000), 0).Eax;
        void Deterministic(int leaf)
        {
            for (int sub = 0; sub < 16; sub++)
            {
                var (eax, ebx, ecx, _) = cpuid(leaf, sub);
                int type = eax & 31, level = (eax >> 5) & 7;
                if (type == 0) break;            // no more caches
                if (type == 2) continue;         // instruction cache
                long size = (long)(((ebx >> 22) & 0x3FF) + 1) * (((ebx >> 12) & 0x3FF) + 1) * ((ebx & 0xFFF) + 1) * ((long)(uint)ecx + 1);
                if (level == 1) l1 = size; else if (level == 2) l2 = size; else if (level == 3) l3 = size;
            }
        }
        if (maxBasic >= 4) Deterministic(4);
        if (l1 == 0 && l2 == 0 && (uint)maxExtended >= 0x8000001D) Deterministic(unchecked((int)0x8000001D));
        if (l1 == 0 && l2 == 0 && (uint)maxExtended >= 0x80000006)
        {
            l1 = (long)((uint)cpuid(unchecked((int)0x80000005), 0).Ecx >> 24) << 10;
            var legacy = cpuid(unchecked((int)0x80000006), 0);
            l2 = (long)((uint)legacy.Ecx >> 16) << 10;
            l3 = (long)((uint)legacy.Edx >> 18) * (512 << 10);
        }
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
