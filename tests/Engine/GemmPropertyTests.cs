using CsCheck;
using MixupBert.Kernels.Cpu;

namespace MixupBert.Tests.Engine;

/// <summary>
/// The GEMM against a plain triple loop over random shapes that straddle every block edge of the
/// micro-kernel this process runs (MR × NR tiles, MC-row and kc-deep blocks of this machine's
/// blocking, the packed-B width):
/// every transpose combination, accumulate, bias and GELU epilogues, C inside a larger buffer. After
/// each product the pack buffers' guard zones must be intact and C's surroundings untouched. CI runs
/// this file under each ISA setting (default, DOTNET_EnableAVX512=0, DOTNET_EnableAVX2=0), so each
/// micro-kernel (8 × 32 AVX-512, 6 × 16 AVX2, 4 × 8 Vector128) is covered on a machine that has it.
/// </summary>
public class GemmPropertyTests
{
    private const float Outside = -12345f; // what C's buffer holds around the m × n window

    /// <summary>Sizes near multiples of <paramref name="edge"/> (one below, on, one above), or anywhere up to max.</summary>
    private static Gen<int> NearEdges(int edge, int max, int min = 1) =>
        Gen.OneOf(
            Gen.Int[1, Math.Max(1, max / edge)].SelectMany(q => Gen.Int[-1, 1].Select(d => Math.Clamp(q * edge + d, min, max))),
            Gen.Int[min, Math.Min(max, 2 * edge)],
            Gen.Int[min, max]);

    private sealed record Case(int M, int N, int K, bool TransA, bool TransB, bool Accumulate, bool Bias, bool Gelu, int Seed)
    {
        public override string ToString() => $"m={M} n={N} k={K} transA={TransA} transB={TransB} acc={Accumulate} bias={Bias} gelu={Gelu} seed={Seed}";
    }

    private static readonly Gen<Case> Cases =
        Gen.Select(NearEdges(Gemm.MR, 300), NearEdges(Gemm.NR, 300), Gen.OneOf(NearEdges(Gemm.Blocking.KC, 4096, 0), Gen.Int[0, 80]),
                   Gen.Bool, Gen.Bool, Gen.Bool, Gen.Bool, Gen.Int[0, 1_000_000])
           .Select(Gen.Bool, (t, gelu) => new Case(t.Item1, t.Item2, t.Item3, t.Item4, t.Item5, t.Item6, t.Item7, gelu && t.Item7, t.Item8))
           // keep one product under ~100 M multiply-adds so the reference stays quick
           .Where(c => (long)c.M * c.N * c.K <= 100_000_000);

    [Fact]
    public void MatchesTripleLoopAtRandomShapesAcrossBlockEdges()
    {
        Cases.Sample(Check, iter: 60, threads: 1);
    }

    [Theory]
    [InlineData(61, 384, 1536)]   // all-MiniLM-L6-v2's output projection for one 61-token text: crashed on AVX2
    [InlineData(66, 768, 3072)]   // bert-base's, two blocks deep
    [InlineData(61, 16, 1490)]    // the first depth where MC = 64 rows padded to 66 overflowed MC × KCMax
    [InlineData(300, 33, 1537)]
    [InlineData(7, 800, 4096)]    // three blocks deep, wider than one packed B block at that depth
    public void MatchesTripleLoopAtTheShapesThatOverflowedThePackBuffer(int m, int n, int k)
    {
        foreach (bool transA in new[] { false, true })
            foreach (bool transB in new[] { false, true })
                Check(new Case(m, n, k, transA, transB, Accumulate: true, Bias: true, Gelu: true, Seed: m + n + k));
    }

    private static void Check(Case t)
    {
        var rng = new Random(t.Seed);
        int m = t.M, n = t.N, k = t.K;
        var a = TestSupport.Random(rng, m * k); var b = TestSupport.Random(rng, k * n);
        // C is the m × n window at row 1, column 2 of an (m + 2) × (n + 5) buffer
        int ldc = n + 5, offset = ldc + 2;
        var c = new float[(m + 2) * ldc];
        Array.Fill(c, Outside);
        var c0 = TestSupport.Random(rng, m * n);
        for (int i = 0; i < m; i++) Array.Copy(c0, i * n, c, offset + i * ldc, n);
        var bias = t.Bias ? TestSupport.Random(rng, n) : Array.Empty<float>();
        var gelu = t.Gelu ? new float[c.Length] : Array.Empty<float>();
        if (t.Gelu) Array.Fill(gelu, Outside);

        Gemm.Multiply(t.TransA, t.TransB, m, n, k, a, t.TransA ? m : k, b, t.TransB ? k : n,
            c.AsSpan(offset), ldc, t.Accumulate, columnBias: bias, geluOut: t.Gelu ? gelu.AsSpan(offset) : default);

        Assert.True(GuardedBuffer.AllGuardsIntact(), $"{t}: a pack buffer was written outside its bounds");
        // float32 sums of k products of magnitude ≤ 1 against a double-precision sum
        double tol = 1e-6 * (k + 2) + 1e-6;
        for (int i = 0; i < m + 2; i++)
            for (int j = 0; j < ldc; j++)
            {
                int at = i * ldc + j;
                bool inside = i >= 1 && i <= m && j >= 2 && j < n + 2;
                if (!inside)
                {
                    Assert.True(c[at] == Outside, $"{t}: C written outside its window at ({i - 1},{j - 2})");
                    if (t.Gelu) Assert.True(gelu[at] == Outside, $"{t}: GELU output written outside its window at ({i - 1},{j - 2})");
                    continue;
                }
                int r = i - 1, col = j - 2;
                double s = t.Accumulate ? c0[r * n + col] : 0;
                for (int p = 0; p < k; p++)
                    s += (double)(t.TransA ? a[p * m + r] : a[r * k + p]) * (t.TransB ? b[col * k + p] : b[p * n + col]);
                if (t.Bias) s += bias[col];
                Assert.True(Math.Abs(s - c[at]) <= tol, $"{t}: C({r},{col}) = {c[at]}, expected {s}");
                if (t.Gelu) Assert.True(Activations.Gelu(c[at]) == gelu[at], $"{t}: GELU({r},{col}) is not gelu(C)");
            }
    }
}
