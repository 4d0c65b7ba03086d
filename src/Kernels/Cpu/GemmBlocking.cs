namespace MixupBert.Kernels.Cpu;

/// <summary>
/// The GEMM's block sizes for one micro-tile on one machine's caches: <see cref="MC"/> rows of A ×
/// <see cref="KC"/> (the deepest block) make the packed A block, which every NR-wide panel of B
/// sweeps and which must stay in L2; the packed B block is at most <see cref="PackedBFloats"/>.
/// </summary>
public readonly record struct GemmBlocking(int MC, int KC, int PackedBFloats)
{
    /// <summary>Share of L2 the packed A block may fill: the rest holds the B micro-panel being
    /// swept, the C tiles and the packing's source lines. Zen 4 (1 MiB L2, AVX-512 8 × 32) swept
    /// best at a 384 KiB A block (mc 64 × kc 1536): 3/8. </summary>
    private const double L2ShareOfA = 3.0 / 8;
    private const int KCMin = 128, KCMax = 1536;

    /// <summary>
    /// Block sizes for an MR × NR micro-tile: mc is 64 rows rounded down to whole MR panels (so a
    /// block pads a panel only at the matrix's last rows); kc is the depth that fills
    /// <see cref="L2ShareOfA"/> of L2 with the packed A block, a multiple of 8 (the packing's
    /// transpose step) in [128, 1536]; packed B takes a quarter of L3 up to 4 MiB (at least one
    /// panel's worth).
    /// </summary>
    public static GemmBlocking For(int mr, int nr, CacheSizes caches)
    {
        int mc = Math.Max(mr, 64 / mr * mr);
        long kc = (long)(caches.L2 * L2ShareOfA) / (4L * mc) / 8 * 8;
        int kcBlock = (int)Math.Clamp(kc, KCMin, KCMax);
        long bFloats = Math.Clamp(caches.L3 / 4 / sizeof(float), 1 << 18, 1 << 20);
        return new GemmBlocking(mc, kcBlock, (int)Math.Max(bFloats, (long)kcBlock * nr));
    }

    public override string ToString() => $"mc {MC}, kc ≤ {KC}, packed B ≤ {PackedBFloats * 4L >> 10} KiB";
}
