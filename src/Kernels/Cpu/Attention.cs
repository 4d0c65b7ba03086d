using System.Numerics.Tensors;

namespace MixupBert.Kernels.Cpu;

/// <summary>
/// Multi-head scaled dot-product self-attention with a key padding mask and attention dropout.
/// Layout: qkv[B, T, 3C] holds Q, K, V side by side (head h owns columns h·d … h·d+d−1 of each),
/// the output ctx[B, T, C] has the heads merged back, probs[B, H, T, T] keeps the softmax for the
/// backward (before dropout; the dropout mask is recomputed from its key).
/// Masked keys get probability exactly 0, whatever the constant another implementation adds.
/// </summary>
public static unsafe class Attention
{
    [ThreadStatic] private static float[]? scratch;

    /// <summary>A per-thread pinned scratch of at least n floats (grown once, reused by every call).</summary>
    private static float* Scratch(int n)
    {
        var s = scratch;
        if (s == null || s.Length < n) scratch = s = GC.AllocateUninitializedArray<float>(n, pinned: true);
        return (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref s[0]);
    }

    private struct ForwardBody : ParallelFor.IRangeBody
    {
        public float* Qkv, KeyMask, Probs, Ctx;
        public int B, T, C, H;
        public float Dropout;
        public uint Key;
        public void Run(int begin, int end)
        {
            int T_ = T, d = C / H, ld = 3 * C;
            float scale = 1f / MathF.Sqrt(d);
            float* buf = Scratch(T_ * T_ + T_);
            float* dropped = buf, maskAdd = buf + T_ * T_;
            int lastBatch = -1;
            for (int bh = begin; bh < end; bh++)
            {
                int b = bh / H, h = bh % H;
                float* q = Qkv + (long)b * T_ * ld + h * d;
                float* k = q + C;
                float* v = q + 2 * C;
                float* p = Probs + (long)bh * T_ * T_;
                if (b != lastBatch)
                {
                    // the key mask as an additive term: 0 where a key may be attended, −∞ where not
                    for (int j = 0; j < T_; j++) maskAdd[j] = KeyMask[(long)b * T_ + j] != 0f ? 0f : float.NegativeInfinity;
                    lastBatch = b;
                }
                Gemm.MultiplySerial(false, true, T_, T_, d, q, ld, k, ld, p, T_, false);
                var additive = new ReadOnlySpan<float>(maskAdd, T_);
                for (int i = 0; i < T_; i++) SoftmaxRow(new Span<float>(p + (long)i * T_, T_), additive, scale);
                float* pv = p;
                if (Dropout > 0f)
                {
                    var drop = new Span<float>(dropped, T_ * T_);
                    Cpu.Dropout.Multipliers(drop, Dropout, Key, (uint)bh * (uint)(T_ * T_));
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(p, T_ * T_), drop, drop);
                    pv = dropped;
                }
                Gemm.MultiplySerial(false, false, T_, d, T_, pv, T_, v, ld, Ctx + (long)b * T_ * C + h * d, C, false);
            }
        }
    }

    /// <summary>row = softmax(scale · row + maskAdd): the keys with maskAdd −∞ get exactly 0; a row with
    /// no key to attend to is all 0. Vectorised: exp(−∞) is 0, so masking costs one add.</summary>
    private static void SoftmaxRow(Span<float> row, ReadOnlySpan<float> maskAdd, float scale)
    {
        TensorPrimitives.MultiplyAdd(row, scale, maskAdd, row);
        float max = TensorPrimitives.Max(row);
        if (float.IsNegativeInfinity(max)) { row.Clear(); return; }
        TensorPrimitives.Subtract(row, max, row);
        TensorPrimitives.Exp(row, row);
        TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
    }

    /// <summary>ctx = softmax(QKᵀ/√d + mask) · V per batch and head. keyMask[B, T]: 1 attend, 0 padding.</summary>
    public static void Forward(ReadOnlySpan<float> qkv, ReadOnlySpan<float> keyMask, Span<float> probs, Span<float> ctx,
        int batch, int seqLen, int channels, int heads, float dropout, uint dropoutKey)
    {
        Check(qkv, keyMask, probs, ctx, batch, seqLen, channels, heads);
        fixed (float* pq = qkv, pm = keyMask, pp = probs, pc = ctx)
            ParallelFor.Run(batch * heads, new ForwardBody
            {
                Qkv = pq, KeyMask = pm, Probs = pp, Ctx = pc, B = batch, T = seqLen, C = channels, H = heads,
                Dropout = dropout, Key = dropoutKey,
            }, 4L * seqLen * seqLen * channels / heads);
    }

    private struct BackwardBody : ParallelFor.IRangeBody
    {
        public float* Qkv, Probs, DCtx, DQkv;
        public int B, T, C, H;
        public float Dropout;
        public uint Key;
        public void Run(int begin, int end)
        {
            int T_ = T, d = C / H, ld = 3 * C;
            float scale = 1f / MathF.Sqrt(d);
            float* buf = Scratch(3 * T_ * T_);
            float* dropped = buf, dp = buf + T_ * T_, keep = buf + 2 * T_ * T_;
            for (int bh = begin; bh < end; bh++)
            {
                int b = bh / H, h = bh % H;
                long rowBase = (long)b * T_ * ld + h * d;
                float* q = Qkv + rowBase, k = q + C, v = q + 2 * C;
                float* dq = DQkv + rowBase, dk = dq + C, dv = dq + 2 * C;
                float* dctx = DCtx + (long)b * T_ * C + h * d;
                float* p = Probs + (long)bh * T_ * T_;
                uint baseIndex = (uint)bh * (uint)(T_ * T_);
                float* pv = p;
                var multipliers = new Span<float>(keep, T_ * T_);
                if (Dropout > 0f)
                {
                    Cpu.Dropout.Multipliers(multipliers, Dropout, Key, baseIndex);
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(p, T_ * T_), multipliers, new Span<float>(dropped, T_ * T_));
                    pv = dropped;
                }
                // ctx = P̃ V:  dP̃ = dctx Vᵀ,  dV = P̃ᵀ dctx
                Gemm.MultiplySerial(false, true, T_, T_, d, dctx, C, v, ld, dp, T_, false);
                Gemm.MultiplySerial(true, false, T_, d, T_, pv, T_, dctx, C, dv, ld, false);
                // dropout, then softmax: dS = P ⊙ (dP − Σ_j P dP) · scale
                if (Dropout > 0f) TensorPrimitives.Multiply(new ReadOnlySpan<float>(dp, T_ * T_), multipliers, new Span<float>(dp, T_ * T_));
                for (int i = 0; i < T_; i++)
                {
                    var pr = new ReadOnlySpan<float>(p + (long)i * T_, T_);
                    var dr = new Span<float>(dp + (long)i * T_, T_);
                    float dot = TensorPrimitives.Dot(pr, dr);
                    TensorPrimitives.Subtract(dr, dot, dr);
                    TensorPrimitives.Multiply(dr, pr, dr);
                    TensorPrimitives.Multiply(dr, scale, dr);
                }
                // S = Q Kᵀ:  dQ = dS K,  dK = dSᵀ Q
                Gemm.MultiplySerial(false, false, T_, d, T_, dp, T_, k, ld, dq, ld, false);
                Gemm.MultiplySerial(true, false, T_, d, T_, dp, T_, q, ld, dk, ld, false);
            }
        }
    }

    /// <summary>dqkv = ∂L/∂qkv (overwritten) from dctx, using the forward's probs and dropout key.</summary>
    public static void Backward(ReadOnlySpan<float> dctx, ReadOnlySpan<float> qkv, ReadOnlySpan<float> probs, Span<float> dqkv,
        int batch, int seqLen, int channels, int heads, float dropout, uint dropoutKey)
    {
        Check(qkv, default, probs, dctx, batch, seqLen, channels, heads, checkMask: false);
        if (dqkv.Length < (long)batch * seqLen * 3 * channels) throw new ArgumentException("attention backward: dqkv too small");
        fixed (float* pq = qkv, pp = probs, pd = dctx, pdq = dqkv)
            ParallelFor.Run(batch * heads, new BackwardBody
            {
                Qkv = pq, Probs = pp, DCtx = pd, DQkv = pdq, B = batch, T = seqLen, C = channels, H = heads,
                Dropout = dropout, Key = dropoutKey,
            }, 8L * seqLen * seqLen * channels / heads);
    }

    private static void Check(ReadOnlySpan<float> qkv, ReadOnlySpan<float> mask, ReadOnlySpan<float> probs, ReadOnlySpan<float> ctx,
        int batch, int seqLen, int channels, int heads, bool checkMask = true)
    {
        if (heads <= 0 || channels % heads != 0) throw new ArgumentException($"attention: {channels} channels do not split into {heads} heads");
        long n = (long)batch * seqLen;
        if (qkv.Length < n * 3 * channels || probs.Length < (long)batch * heads * seqLen * seqLen || ctx.Length < n * channels
            || (checkMask && mask.Length < n))
            throw new ArgumentException($"attention: buffers too small for B={batch} T={seqLen} C={channels} H={heads}");
    }
}
