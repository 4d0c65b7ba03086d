using MixupBert.Kernels.Cpu;

namespace MixupBert.Tests.Engine;

public class GemmTests
{
    private static double[] Reference(bool ta, bool tb, int m, int n, int k, float[] a, float[] b, float[] c0, bool acc)
    {
        var r = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = acc ? c0[i * n + j] : 0;
                for (int p = 0; p < k; p++) s += (double)(ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
                r[i * n + j] = s;
            }
        return r;
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(7, 33, 5)]
    [InlineData(9, 31, 300)]
    [InlineData(100, 70, 257)]
    [InlineData(130, 3100, 40)]
    [InlineData(3, 2, 0)]
    [InlineData(20, 40, 1600)] // deeper than one packed block: two blocks of 800
    [InlineData(5, 3600, 300)] // wider than one packed B block (4 MiB / 300 deep = 3488 columns)
    public void MatchesDoublePrecisionReferenceForEveryTransposeAndAccumulate(int m, int n, int k)
    {
        var rng = new Random(m * 1000 + n + k);
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                foreach (bool acc in new[] { false, true })
                    foreach (bool withBias in new[] { false, true })
                    {
                        var a = TestSupport.Random(rng, m * k); var b = TestSupport.Random(rng, k * n); var c = TestSupport.Random(rng, m * n);
                        var bias = withBias ? TestSupport.Random(rng, n) : Array.Empty<float>();
                        var expected = Reference(ta, tb, m, n, k, a, b, c, acc);
                        if (withBias) for (int i = 0; i < m * n; i++) expected[i] += bias[i % n];
                        // with the bias, also the GELU epilogue: geluOut must be gelu of the final C, element by element
                        var gelu = withBias ? new float[m * n] : Array.Empty<float>();
                        Gemm.Multiply(ta, tb, m, n, k, a, ta ? m : k, b, tb ? k : n, c, n, acc, columnBias: bias, geluOut: gelu);
                        // float32 summation of k products of magnitude ≤ 1: error grows like k·2⁻²⁴ at worst
                        double tol = 1e-6 * (k + 2) + 1e-6;
                        for (int i = 0; i < m * n; i++)
                        {
                            Assert.True(Math.Abs(expected[i] - c[i]) <= tol, $"ta={ta} tb={tb} acc={acc} bias={withBias} element {i}: {c[i]} vs {expected[i]}");
                            if (withBias) Assert.Equal(Activations.Gelu(c[i]), gelu[i]);
                        }
                    }
    }

    [Fact]
    public void StridedOperandsReadOnlyTheirWindow()
    {
        // A is the middle 5 columns of a 6×12 buffer (lda 12), C the left 4 columns of 6×9 (ldc 9)
        var rng = new Random(3);
        int m = 6, n = 4, k = 5;
        var a = TestSupport.Random(rng, m * 12); var b = TestSupport.Random(rng, k * n); var c = new float[m * 9];
        Array.Fill(c, 42f);
        Gemm.Multiply(false, false, m, n, k, a.AsSpan(3), 12, b, n, c, 9);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0; for (int p = 0; p < k; p++) s += a[3 + i * 12 + p] * b[p * n + j];
                Assert.Equal(s, c[i * 9 + j], 5);
            }
            for (int j = n; j < 9; j++) Assert.Equal(42f, c[i * 9 + j]);
        }
    }

    [Fact]
    public void ResultIsBitIdenticalForOneAndTwoThreads()
    {
        var rng = new Random(5);
        int m = 301, n = 517, k = 700;
        var a = TestSupport.Random(rng, m * k); var b = TestSupport.Random(rng, k * n);
        var c1 = new float[m * n]; var c2 = new float[m * n];
        using var one = new WorkerPool(1);
        using var two = new WorkerPool(2);
        Gemm.Multiply(false, true, m, n, k, a, k, b, k, c1, n, pool: one);
        Gemm.Multiply(false, true, m, n, k, a, k, b, k, c2, n, pool: two);
        Assert.Equal(c1, c2);
    }

    [Fact]
    public void RejectsOperandsThatDoNotFitTheirBuffers()
    {
        var e = Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 4, 4, 4, new float[15], 4, new float[16], 4, new float[16], 4));
        Assert.Contains("operand A", e.Message);
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(13, 48, 7)]   // 8×32 and 8×16 tiles, a partial row tile
    [InlineData(64, 64, 32)]  // one attention head of all-MiniLM-L6-v2
    [InlineData(9, 37, 20)]   // 8×32 tile + 5 scalar columns
    [InlineData(70, 16, 5)]
    [InlineData(5, 3, 64)]    // scalar columns only
    public unsafe void SmallGemmMatchesDoublePrecisionReferenceForBothLayoutsOfA(int m, int n, int k)
    {
        var rng = new Random(m * 100 + n * 10 + k);
        foreach (bool aTransposed in new[] { false, true })
        {
            // A(i,p) at a[i·k + p], or Aᵀ stored: a[p·m + i]; C is written into the left n of ldc = n + 3 columns
            var a = TestSupport.Random(rng, m * k); var b = TestSupport.Random(rng, k * n);
            int ldc = n + 3;
            var c = new float[m * ldc];
            Array.Fill(c, 42f);
            var expected = Reference(aTransposed, false, m, n, k, a, b, new float[m * n], false);
            fixed (float* pa = a, pb = b, pc = c)
            {
                if (aTransposed) SmallGemm.Multiply(m, n, k, pa, 1, m, pb, n, pc, ldc);
                else SmallGemm.Multiply(m, n, k, pa, k, 1, pb, n, pc, ldc);
            }
            double tol = 1e-6 * (k + 1) + 1e-6;
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++)
                    Assert.True(Math.Abs(expected[i * n + j] - c[i * ldc + j]) <= tol, $"transposed={aTransposed} ({i},{j}): {c[i * ldc + j]} vs {expected[i * n + j]}");
                for (int j = n; j < ldc; j++) Assert.Equal(42f, c[i * ldc + j]);
            }
        }
    }

    [Fact]
    public void TheAvx2RunReallyRunsWithoutAvx512()
    {
        // CI runs these tests a second time with DOTNET_EnableAVX512=0 (see README); if the runtime
        // ignored the switch, that run would repeat the AVX-512 paths and check nothing new
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") == "0")
        {
            Assert.False(System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated);
            Assert.Equal(6, Gemm.MR);
        }
        // and a third time with DOTNET_EnableAVX2=0: the portable Vector128 4 × 8 kernel
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX2") == "0")
        {
            Assert.False(System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated);
            Assert.Equal(4, Gemm.MR);
        }
    }
}
