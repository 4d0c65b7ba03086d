using System.Runtime.Intrinsics;
using MixupBert.Kernels.Cpu;

namespace MixupBert.Tests.Engine;

/// <summary>
/// The CPU kernels' ISA paths and the machine facts they rest on: the cache sizes read from sysfs,
/// the block sizes derived from them, the FMA-peak loop's width, and the AVX2 (eight-lane) paths of
/// GELU and dropout against their scalar definitions. CI runs the Engine tests under each ISA
/// setting, so each path meets these checks on a machine that has it.
/// </summary>
public class CpuPathTests
{
    [Theory]
    [InlineData("32K", 32L << 10)]
    [InlineData("512K", 512L << 10)]
    [InlineData("32768K", 32L << 20)]
    [InlineData("1M", 1L << 20)]
    [InlineData("4096", 4096L)]
    [InlineData("", 0L)]
    [InlineData("lots", 0L)]
    [InlineData("-4K", 0L)]
    public void CacheSizesParseSysfsSizes(string text, long bytes) => Assert.Equal(bytes, CacheSizes.ParseSize(text));

    [Fact]
    public void CacheSizesReadSysfsAndSkipTheInstructionCache()
    {
        string root = Directory.CreateTempSubdirectory("caches").FullName;
        try
        {
            void Index(int i, string level, string type, string size)
            {
                string d = Directory.CreateDirectory(Path.Combine(root, $"index{i}")).FullName;
                File.WriteAllText(Path.Combine(d, "level"), level + "\n");
                File.WriteAllText(Path.Combine(d, "type"), type + "\n");
                File.WriteAllText(Path.Combine(d, "size"), size + "\n");
            }
            Index(0, "1", "Data", "48K"); Index(1, "1", "Instruction", "32K"); Index(2, "2", "Unified", "1280K"); Index(3, "3", "Unified", "30720K");
            Assert.Equal(new CacheSizes(48 << 10, 1280 << 10, 30 << 20, true), CacheSizes.Read(root));
        }
        finally { Directory.Delete(root, true); }
        Assert.Equal(CacheSizes.Fallback, CacheSizes.Read(Path.Combine(root, "gone")));
    }

    /// <summary>A CPUID instruction that answers from a recorded register dump (leaf, subleaf) → registers; zeros elsewhere.</summary>
    private static Func<int, int, (int, int, int, int)> RecordedCpuId(params (uint Leaf, int Sub, uint Eax, uint Ebx, uint Ecx, uint Edx)[] dump) =>
        (leaf, sub) => dump.Where(r => r.Leaf == (uint)leaf && r.Sub == sub).Select(r => ((int)r.Eax, (int)r.Ebx, (int)r.Ecx, (int)r.Edx)).FirstOrDefault();

    [Fact]
    public void CacheSizesFromIntelsDeterministicCacheLeaf()
    {
        // Skylake-SP's leaf 4: L1d 8 ways × 64 B × 64 sets, L2 16 × 64 × 1024, L3 11 × 64 × 49152; its
        // L1i is given 16 ways (64 KiB, not the real 32 KiB) so that counting it as L1 would show
        var intel = RecordedCpuId((0, 0, 0x16, 0, 0, 0), (0x80000000, 0, 0x80000008, 0, 0, 0),
            (4, 0, 0x1C004121, 0x01C0003F, 0x3F, 0), (4, 1, 0x1C004122, 0x03C0003F, 0x3F, 0),
            (4, 2, 0x1C004143, 0x03C0003F, 0x3FF, 0), (4, 3, 0x1C03C163, 0x0280003F, 0xBFFF, 0));
        Assert.Equal(new CacheSizes(32 << 10, 1 << 20, 11 * 64 * 49152, true), CacheSizes.FromCpuId(intel));
    }

    [Fact]
    public void CacheSizesFromAmdsLegacyLeavesWhereTheHypervisorHidesTheOthers()
    {
        // the development machine (AMD EPYC, Zen 5, under KVM; no sysfs cache folder): leaves 4 and
        // 0x8000001D are empty, 0x80000005/6 say L1d 48 KiB, L2 1 MiB, L3 1016 × 512 KiB
        var zen5 = RecordedCpuId((0, 0, 0xD, 0x68747541, 0x444D4163, 0x69746E65), (0x80000000, 0, 0x80000021, 0, 0, 0),
            (0x80000005, 0, 0xFF60FF40, 0xFF60FF40, 0x300C0140, 0x20080140), (0x80000006, 0, 0x40802040, 0x60804040, 0x04006140, 0x0FE09140));
        Assert.Equal(new CacheSizes(48 << 10, 1 << 20, 1016L * (512 << 10), true), CacheSizes.FromCpuId(zen5));
        // a CPUID that describes no cache at all leaves the fallback
        Assert.Equal(CacheSizes.Fallback, CacheSizes.FromCpuId(RecordedCpuId((0, 0, 1, 0, 0, 0))));
    }

    [Fact]
    public void BlockingKeepsZen4sTunedAvx512BlocksAndFitsZen3sL2()
    {
        // Zen 4 (1 MiB L2), AVX-512 8 × 32: the sweep's best, mc 64 × kc 1536 (docs/perf.md)
        Assert.Equal(new GemmBlocking(64, 1536, 1 << 20), GemmBlocking.For(8, 32, new CacheSizes(32 << 10, 1 << 20, 32 << 20, true)));
        // Zen 3 (512 KiB L2), AVX2 6 × 16: the old constant kc 1536 made a 360 KiB packed A block, 70% of L2
        var zen3 = GemmBlocking.For(6, 16, new CacheSizes(32 << 10, 512 << 10, 32 << 20, true));
        Assert.Equal(60, zen3.MC);
        Assert.InRange(zen3.MC * zen3.KC * 4L, 1, (512 << 10) * 3 / 8);
        Assert.Equal(0, zen3.KC % 8);
        // a tiny L2 still gives a usable block, and packed B always holds one panel at full depth
        var tiny = GemmBlocking.For(4, 8, new CacheSizes(16 << 10, 64 << 10, 0, false));
        Assert.Equal(128, tiny.KC);
        Assert.True(tiny.PackedBFloats >= tiny.KC * 8);
    }

    [Fact]
    public void ThisProcessBlockingFollowsThisMachinesCaches()
    {
        Assert.Equal(GemmBlocking.For(Gemm.MR, Gemm.NR, CacheSizes.OfThisMachine), Gemm.Blocking);
        Assert.Equal(0, Gemm.Blocking.MC % Gemm.MR);
    }

    [Fact]
    public void PeakLoopCountsTheLanesOfTheVectorItRuns()
    {
        // with DOTNET_EnableAVX2=0, Vector256 is emulated: the loop must run on Vector128 and count 4
        // lanes (it once ran emulated Vector256 code and counted 8)
        int lanes = Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 4;
        Assert.Equal(lanes, MachinePeak.Lanes);
        Assert.Contains($"{lanes} lanes", MachinePeak.Describe());
        Assert.True(MachinePeak.Chains >= 10, "fewer chains than FMA latency × ports on Zen 1 (5 × 2)");
        Assert.True(float.IsFinite(MachinePeak.Fma(1000)));
    }

    [Fact]
    public void GemmMicroKernelNamesTheIsaPath()
    {
        string expected = Vector512.IsHardwareAccelerated ? "AVX-512 8×32" : Vector256.IsHardwareAccelerated ? "6×16" : "4×8";
        Assert.Contains(expected, Gemm.MicroKernel);
        Assert.Contains($"{Gemm.MR}×{Gemm.NR}", Gemm.MicroKernel);
    }

    [Fact]
    public unsafe void GeluVectorPathEqualsTheScalarBitForBit()
    {
        var rng = new Random(5);
        int n = 4096 + 13;
        var x = TestSupport.Random(rng, n, 12f);
        x[0] = 0f; x[1] = -0f; x[2] = 4f * MathF.Sqrt(2f); x[3] = -5.7f; x[4] = 1e-30f; x[5] = float.PositiveInfinity; x[6] = float.NegativeInfinity;
        var y = new float[n];
        fixed (float* px = x, py = y) Activations.Gelu(px, py, n);
        for (int i = 0; i < n; i++)
            Assert.True(BitConverter.SingleToInt32Bits(Activations.Gelu(x[i])) == BitConverter.SingleToInt32Bits(y[i]), $"gelu({x[i]:R}): vector {y[i]:R}, scalar {Activations.Gelu(x[i]):R}");
    }

    [Fact]
    public void GeluBackwardVectorPathIsWithinAFewUlpOfTheScalar()
    {
        // the vector paths' Exp (Vector256/512.Exp) may differ from MathF.Exp in the last bits; the
        // gradient may differ from the scalar definition by no more than 4 ulp of its magnitude
        var rng = new Random(6);
        int n = 4096 + 5;
        var x = TestSupport.Random(rng, n, 12f); var dy = new float[n]; Array.Fill(dy, 1f);
        var dx = new float[n];
        Activations.GeluBackward(x, dy, dx);
        for (int i = 0; i < n; i++)
        {
            float scalar = Activations.GeluGrad(x[i]);
            float ulp = MathF.BitIncrement(MathF.Abs(scalar)) - MathF.Abs(scalar);
            Assert.True(MathF.Abs(dx[i] - scalar) <= 4 * ulp + 1e-7f, $"gelu'({x[i]:R}): vector {dx[i]:R}, scalar {scalar:R}");
        }
    }

    [Theory]
    [InlineData(0.1f, 0u)]
    [InlineData(0.5f, 12345u)]
    [InlineData(0.9f, 4_294_967_000u)] // the element index wraps past 2^32 within the span
    public void DropoutVectorMaskEqualsTheScalarHashBitForBit(float p, uint offset)
    {
        uint key = Dropout.Key(42, 7, 3);
        var m = new float[1000 + 7];
        Dropout.Multipliers(m, p, key, offset);
        float scale = 1f / (1f - p);
        for (int i = 0; i < m.Length; i++)
            Assert.Equal(Dropout.Uniform(key, offset + (uint)i) >= p ? scale : 0f, m[i]);
    }
}
