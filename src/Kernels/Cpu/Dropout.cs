using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// Inverted dropout whose mask is a pure function of (key, element index): a counter-based hash,
/// not a stateful generator. The backward pass recomputes the mask instead of storing it, any
/// thread can compute any element, and the CUDA kernel computes the same mask bit for bit.
/// </summary>
public static unsafe class Dropout
{
    /// <summary>The key of one dropout site in one step: mixes the run's seed, the step and the site.</summary>
    public static uint Key(ulong seed, long step, int site)
    {
        ulong z = seed + 0x9E3779B97F4A7C15UL * (ulong)(step * 4099 + site + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (uint)(z ^ (z >> 31));
    }

    /// <summary>A uniform value in [0, 1) for element <paramref name="index"/> (two murmur3 finalisers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Uniform(uint key, uint index)
    {
        uint h = Mix(index ^ key);
        h = Mix(h + 0x9E3779B9u + key);
        return (h >> 8) * (1.0f / 16777216f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Mix(uint h)
    {
        h ^= h >> 16; h *= 0x85EBCA6Bu;
        h ^= h >> 13; h *= 0xC2B2AE35u;
        h ^= h >> 16;
        return h;
    }

    /// <summary>
    /// multipliers[i] = 1/(1 − p) where element offset + i is kept, 0 where dropped: the mask of
    /// <see cref="Uniform"/>, sixteen (AVX-512) or eight (AVX2) elements at a time (integer hash and
    /// exact float conversion, so it equals the scalar path bit for bit).
    /// </summary>
    public static void Multipliers(Span<float> multipliers, float p, uint key, uint offset)
    {
        float scale = 1f / (1f - p);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var lane = Vector512.Create(0u, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            var k = Vector512.Create(key);
            var golden = Vector512.Create(0x9E3779B9u);
            var threshold = Vector512.Create(p);
            var keep = Vector512.Create(scale);
            for (; i + 16 <= multipliers.Length; i += 16)
            {
                var h = Mix(((lane + Vector512.Create(offset + (uint)i)) ^ k));
                h = Mix(h + golden + k);
                var u = Vector512.ConvertToSingle(Vector512.ShiftRightLogical(h, 8)) * Vector512.Create(1.0f / 16777216f);
                Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(u, threshold), keep, Vector512<float>.Zero).CopyTo(multipliers[i..]);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var lane = Vector256.Create(0u, 1, 2, 3, 4, 5, 6, 7);
            var k = Vector256.Create(key);
            var golden = Vector256.Create(0x9E3779B9u);
            var threshold = Vector256.Create(p);
            var keep = Vector256.Create(scale);
            for (; i + 8 <= multipliers.Length; i += 8)
            {
                var h = Mix(((lane + Vector256.Create(offset + (uint)i)) ^ k));
                h = Mix(h + golden + k);
                // h >> 8 < 2^24 converts exactly through int (AVX2 has no unsigned conversion)
                var u = Vector256.ConvertToSingle(Vector256.ShiftRightLogical(h, 8).AsInt32()) * Vector256.Create(1.0f / 16777216f);
                Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(u, threshold), keep, Vector256<float>.Zero).CopyTo(multipliers[i..]);
            }
        }
        for (; i < multipliers.Length; i++) multipliers[i] = Uniform(key, offset + (uint)i) >= p ? scale : 0f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Mix(Vector512<uint> h)
    {
        h ^= Vector512.ShiftRightLogical(h, 16); h *= Vector512.Create(0x85EBCA6Bu);
        h ^= Vector512.ShiftRightLogical(h, 13); h *= Vector512.Create(0xC2B2AE35u);
        h ^= Vector512.ShiftRightLogical(h, 16);
        return h;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Mix(Vector256<uint> h)
    {
        h ^= Vector256.ShiftRightLogical(h, 16); h *= Vector256.Create(0x85EBCA6Bu);
        h ^= Vector256.ShiftRightLogical(h, 13); h *= Vector256.Create(0xC2B2AE35u);
        h ^= Vector256.ShiftRightLogical(h, 16);
        return h;
    }

    private struct Body : ParallelFor.IRangeBody
    {
        public float* X, Y;
        public float P, Scale;
        public uint Key, Offset;
        public bool Accumulate;
        public void Run(int begin, int end)
        {
            Span<float> m = stackalloc float[1024];
            Span<float> product = stackalloc float[1024];
            for (int i = begin; i < end; i += m.Length)
            {
                int n = Math.Min(m.Length, end - i);
                var mask = m[..n];
                Multipliers(mask, P, Key, Offset + (uint)i);
                var x = new ReadOnlySpan<float>(X + i, n);
                var y = new Span<float>(Y + i, n);
                if (!Accumulate) { System.Numerics.Tensors.TensorPrimitives.Multiply(x, mask, y); continue; }
                // y + x·m in two roundings, as the CUDA kernel computes it
                System.Numerics.Tensors.TensorPrimitives.Multiply(x, mask, product[..n]);
                System.Numerics.Tensors.TensorPrimitives.Add(y, product[..n], y);
            }
        }
    }

    /// <summary>y = x · keep / (1 − p), keep = Uniform(key, offset + i) ≥ p. x and y may be the same buffer.</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, float p, uint key, uint offset = 0)
        => Apply(x, y, p, key, offset, accumulate: false);

    /// <summary>dx (+)= dy · keep / (1 − p), with the same mask as the forward.</summary>
    public static void Backward(ReadOnlySpan<float> dy, Span<float> dx, float p, uint key, bool accumulate, uint offset = 0)
        => Apply(dy, dx, p, key, offset, accumulate);

    private static void Apply(ReadOnlySpan<float> x, Span<float> y, float p, uint key, uint offset, bool accumulate)
    {
        if (y.Length < x.Length) throw new ArgumentException("dropout: output shorter than input");
        int n = x.Length;
        if (n == 0) return;
        if (p <= 0f)
        {
            if (accumulate) System.Numerics.Tensors.TensorPrimitives.Add(y[..n], x, y[..n]);
            else if (!Unsafe.AreSame(ref Unsafe.AsRef(in x[0]), ref y[0])) x.CopyTo(y);
            return;
        }
        fixed (float* px = x, py = y)
            ParallelFor.Run(n, new Body { X = px, Y = py, P = p, Scale = 1f / (1f - p), Key = key, Offset = offset, Accumulate = accumulate }, 8, 1024);
    }
}
