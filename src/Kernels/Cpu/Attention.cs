using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

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
    [ThreadStatic] private static GuardedBuffer? scratch;

    /// <summary>A per-thread pinned scratch of at least n floats (grown once, reused by every call).</summary>
    private static float* Scratch(long n)
    {
        var s = scratch;
        if (s == null || s.Capacity < n) scratch = s = new GuardedBuffer(checked((int)n));
        return s.Start;
    }

    /// <summary>The T×d block of one head (rows ld apart) transposed into d×tp, columns T…tp−1 zero.</summary>
    private static void TransposeHead(float* src, int ld, int T, int d, float* dst, int tp)
    {
        int t8 = 0, d8 = 0;
        if (System.Runtime.Intrinsics.X86.Avx.IsSupported)
        {
            t8 = T / 8 * 8; d8 = d / 8 * 8;
            for (int j = 0; j < t8; j += 8)
                for (int c = 0; c < d8; c += 8) Gemm.Transpose8x8(src + (long)j * ld + c, ld, dst + (long)c * tp + j, tp);
        }
        for (int c = 0; c < d; c++)
        {
            float* row = dst + (long)c * tp;
            for (int j = c < d8 ? t8 : 0; j < T; j++) row[j] = src[(long)j * ld + c];
            for (int j = T; j < tp; j++) row[j] = 0f;
        }
    }

    /// <summary>Rows of scores are padded to a multiple of 16 so that the softmax needs no scalar tail.</summary>
    private static int Padded(int T) => (T + 15) & ~15;

    private struct ForwardBody : ParallelFor.IRangeBody
    {
        public float* Qkv, KeyMask, Probs, Ctx;
        public int B, T, C, H;
        public float Dropout;
        public uint Key;
        public void Run(int begin, int end)
        {
            int T_ = T, d = C / H, ld = 3 * C, tp = Padded(T_);
            float scale = 1f / MathF.Sqrt(d);
            float* kt = Scratch((long)d * tp + (long)T_ * tp + tp + (long)T_ * T_);
            float* scores = kt + d * tp, maskAdd = scores + T_ * tp, dropped = maskAdd + tp;
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
                    // the key mask as an additive term: 0 where a key may be attended, −∞ where not (and on the padding)
                    for (int j = 0; j < tp; j++) maskAdd[j] = j < T_ && KeyMask[(long)b * T_ + j] != 0f ? 0f : float.NegativeInfinity;
                    lastBatch = b;
                }
                // S = Q Kᵀ, P = softmax(S·scale + mask)
                TransposeHead(k, ld, T_, d, kt, tp);
                SmallGemm.Multiply(T_, tp, d, q, ld, 1, kt, tp, scores, tp);
                for (int i = 0; i < T_; i++)
                {
                    var row = new Span<float>(scores + (long)i * tp, tp);
                    SoftmaxRow(row, new ReadOnlySpan<float>(maskAdd, tp), scale);
                    row[..T_].CopyTo(new Span<float>(p + (long)i * T_, T_));
                }
                // ctx = dropout(P) V
                float* pv = p;
                if (Dropout > 0f)
                {
                    var drop = new Span<float>(dropped, T_ * T_);
                    Cpu.Dropout.Multipliers(drop, Dropout, Key, (uint)bh * (uint)(T_ * T_));
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(p, T_ * T_), drop, drop);
                    pv = dropped;
                }
                SmallGemm.Multiply(T_, d, T_, pv, T_, 1, v, ld, Ctx + (long)b * T_ * C + h * d, C);
            }
        }
    }

    /// <summary>row = softmax(scale · row + maskAdd): the keys with maskAdd −∞ get exactly 0; a row with
    /// no key to attend to is all 0. Masking costs one add, since exp(−∞) = 0. The row's length is a
    /// multiple of 16 (see <see cref="Padded"/>), so the AVX-512 path has no tail.</summary>
    private static void SoftmaxRow(Span<float> row, ReadOnlySpan<float> maskAdd, float scale)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            TensorPrimitives.MultiplyAdd(row, scale, maskAdd, row);
            float m = TensorPrimitives.Max(row);
            if (float.IsNegativeInfinity(m)) { row.Clear(); return; }
            TensorPrimitives.Subtract(row, m, row);
            TensorPrimitives.Exp(row, row);
            TensorPrimitives.Multiply(row, 1f / TensorPrimitives.Sum(row), row);
            return;
        }
        fixed (float* x = row, add = maskAdd)
        {
            int n = row.Length;
            var vScale = Vector512.Create(scale);
            var vMax = Vector512.Create(float.NegativeInfinity);
            for (int j = 0; j < n; j += 16)
            {
                var s = Vector512.FusedMultiplyAdd(Vector512.Load(x + j), vScale, Vector512.Load(add + j));
                s.Store(x + j);
                vMax = Vector512.Max(vMax, s);
            }
            float max = HorizontalMax(vMax);
            if (float.IsNegativeInfinity(max)) { row.Clear(); return; }
            var vm = Vector512.Create(max);
            var vSum = Vector512<float>.Zero;
            for (int j = 0; j < n; j += 16)
            {
                var e = Vector512.Exp(Vector512.Load(x + j) - vm);
                e.Store(x + j);
                vSum += e;
            }
            var inv = Vector512.Create(1f / Vector512.Sum(vSum));
            for (int j = 0; j < n; j += 16) (Vector512.Load(x + j) * inv).Store(x + j);
        }
    }

    private static float HorizontalMax(Vector512<float> v)
    {
        var m = Vector256.Max(v.GetLower(), v.GetUpper());
        var m4 = Vector128.Max(m.GetLower(), m.GetUpper());
        float r = m4[0];
        for (int i = 1; i < 4; i++) r = MathF.Max(r, m4[i]);
        return r;
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
            int T_ = T, d = C / H, ld = 3 * C, tp = Padded(T_);
            float scale = 1f / MathF.Sqrt(d);
            float* vt = Scratch((long)d * tp + (long)T_ * tp + 2L * T_ * T_);
            float* dp = vt + d * tp, dropped = dp + T_ * tp, keep = dropped + T_ * T_;
            for (int bh = begin; bh < end; bh++)
            {
                int b = bh / H, h = bh % H;
                long rowBase = (long)b * T_ * ld + h * d;
                float* q = Qkv + rowBase, k = q + C, v = q + 2 * C;
                float* dq = DQkv + rowBase, dk = dq + C, dv = dq + 2 * C;
                float* dctx = DCtx + (long)b * T_ * C + h * d;
                float* p = Probs + (long)bh * T_ * T_;
                float* pv = p;
                if (Dropout > 0f)
                {
                    Cpu.Dropout.Multipliers(new Span<float>(keep, T_ * T_), Dropout, Key, (uint)bh * (uint)(T_ * T_));
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(p, T_ * T_), new ReadOnlySpan<float>(keep, T_ * T_), new Span<float>(dropped, T_ * T_));
                    pv = dropped;
                }
                // ctx = P̃ V:  dP̃ = dctx Vᵀ (rows tp apart),  dV = P̃ᵀ dctx
                TransposeHead(v, ld, T_, d, vt, tp);
                SmallGemm.Multiply(T_, tp, d, dctx, C, 1, vt, tp, dp, tp);
                SmallGemm.Multiply(T_, d, T_, pv, 1, T_, dctx, C, dv, ld);
                // dropout, then softmax: dS = P ⊙ (dP − Σ_j P dP) · scale
                for (int i = 0; i < T_; i++)
                {
                    var pr = new ReadOnlySpan<float>(p + (long)i * T_, T_);
                    var dr = new Span<float>(dp + (long)i * tp, T_);
                    if (Dropout > 0f) TensorPrimitives.Multiply(dr, new ReadOnlySpan<float>(keep + (long)i * T_, T_), dr);
                    float dot = TensorPrimitives.Dot(pr, dr);
                    TensorPrimitives.AddMultiply(dr, -dot, pr, dr);
                    TensorPrimitives.Multiply(dr, scale, dr);
                }
                // S = Q Kᵀ:  dQ = dS K,  dK = dSᵀ Q
                SmallGemm.Multiply(T_, d, T_, dp, tp, 1, k, ld, dq, ld);
                SmallGemm.Multiply(T_, d, T_, dp, 1, tp, q, ld, dk, ld);
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
