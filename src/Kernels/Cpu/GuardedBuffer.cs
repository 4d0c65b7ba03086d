using System.Collections.Concurrent;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// A pinned scratch buffer for the unsafe kernels (GEMM packing, attention), with a guard zone of a
/// known bit pattern on each side. A kernel states how much it is about to write
/// (<see cref="CheckFits"/>, a checked bound once per block, not per element), and the tests check
/// after every product that no write strayed into a guard (<see cref="AllGuardsIntact"/>). A pack
/// buffer sized for one ISA's tile and written by another's is how an AVX2-only CPU once crashed.
/// </summary>
public sealed unsafe class GuardedBuffer
{
    private const int GuardFloats = 64;              // 256 bytes: past a whole 8 × 32 tile row
    private const uint GuardBits = 0x7FC0_DEADu;     // a NaN no kernel computes
    private static readonly ConcurrentBag<WeakReference<GuardedBuffer>> all = new();

    private readonly float[] data;
    /// <summary>Where the usable floats begin.</summary>
    public float* Start { get; }
    /// <summary>How many floats may be written from <see cref="Start"/>.</summary>
    public int Capacity { get; }

    public GuardedBuffer(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        Capacity = capacity;
        data = GC.AllocateUninitializedArray<float>(capacity + 2 * GuardFloats, pinned: true);
        fixed (float* p = data) Start = p + GuardFloats;
        var guard = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(data.AsSpan());
        guard[..GuardFloats].Fill(GuardBits);
        guard[(GuardFloats + capacity)..].Fill(GuardBits);
        all.Add(new WeakReference<GuardedBuffer>(this));
    }

    /// <summary>Throws unless <paramref name="floats"/> fit: a kernel's promise, checked before it writes.</summary>
    public void CheckFits(long floats, string what)
    {
        if (floats > Capacity)
            throw new InvalidOperationException($"{what} needs {floats} floats but its buffer holds {Capacity} (a block-size bug)");
    }

    /// <summary>Whether both guard zones still hold their pattern.</summary>
    public bool GuardsIntact()
    {
        var bits = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(data.AsSpan());
        return !bits[..GuardFloats].ContainsAnyExcept(GuardBits) && !bits[(GuardFloats + Capacity)..].ContainsAnyExcept(GuardBits);
    }

    /// <summary>Whether every guarded buffer still alive, on any thread, is intact (for tests).</summary>
    public static bool AllGuardsIntact()
    {
        foreach (var w in all)
            if (w.TryGetTarget(out var b) && !b.GuardsIntact()) return false;
        return true;
    }
}
