// attention.cuh: Attention.Forward/Backward (src/Kernels/Cpu/Attention.cs). Heads are permuted so
// that cuBLAS runs one strided-batched GEMM over all B·H heads (src/Kernels/Cuda/Attention.cs); the
// softmax with scale and padding mask is a kernel of its own.
#pragma once
#include "common.cuh"

// qkv [B, T, 3C] plus the projection's bias qkv_bias [3C] (0: none) → q, k, v [B, H, T, d]. grid-stride over B·T·C.
extern "C" __global__ void attention_split_heads(floatX* q, floatX* k, floatX* v, const floatX* qkv, const float* qkv_bias,
                                                 int B, int T, int C, int H) {
    int d = C / H;
    int64_t n = (int64_t)B * T * C;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C); int64_t bt = i / C; int t = (int)(bt % T), b = (int)(bt / T);
        int h = c / d, j = c % d;
        int64_t dst = (((int64_t)b * H + h) * T + t) * d + j;
        const floatX* src = qkv + bt * 3 * C + c;
        if (qkv_bias == 0) { q[dst] = src[0]; k[dst] = src[C]; v[dst] = src[2 * C]; continue; }
        q[dst] = (float)src[0] + qkv_bias[c];
        k[dst] = (float)src[C] + qkv_bias[C + c];
        v[dst] = (float)src[2 * C] + qkv_bias[2 * C + c];
    }
}

// The backward of attention_split_heads: dq, dk, dv [B, H, T, d] → dqkv [B, T, 3C].
extern "C" __global__ void attention_split_heads_backward(floatX* dqkv, const floatX* dq, const floatX* dk, const floatX* dv,
                                                          int B, int T, int C, int H) {
    int d = C / H;
    int64_t n = (int64_t)B * T * C;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C); int64_t bt = i / C; int t = (int)(bt % T), b = (int)(bt / T);
        int h = c / d, j = c % d;
        int64_t src = (((int64_t)b * H + h) * T + t) * d + j;
        floatX* dst = dqkv + bt * 3 * C + c;
        dst[0] = dq[src]; dst[C] = dk[src]; dst[2 * C] = dv[src];
    }
}

// ctx_heads [B, H, T, d] → ctx [B, T, C] (merge = 1), or back (merge = 0, for the backward).
extern "C" __global__ void attention_merge_heads(floatX* ctx, floatX* ctx_heads, int B, int T, int C, int H, int merge) {
    int d = C / H;
    int64_t n = (int64_t)B * T * C;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C); int64_t bt = i / C; int t = (int)(bt % T), b = (int)(bt / T);
        int h = c / d, j = c % d;
        int64_t hi = (((int64_t)b * H + h) * T + t) * d + j;
        if (merge) ctx[i] = ctx_heads[hi]; else ctx_heads[hi] = ctx[i];
    }
}

// probs[row] = softmax(scale · scores[row]) over the keys whose mask is non-zero, 0 elsewhere
// (a row with no key to attend to is all zeros). One warp per row of the [B, H, T, T] scores.
// grid: ceil(B·H·T / (block / 32)); block: multiple of 32.
extern "C" __global__ void attention_softmax_forward(floatX* probs, const floatX* scores, const float* key_mask,
                                                     int B, int H, int T, float scale) {
    int lane = threadIdx.x % WARP;
    int64_t row = (int64_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    bool valid = row < (int64_t)B * H * T;
    int64_t r = valid ? row : 0;
    int b = (int)(r / ((int64_t)H * T));
    const floatX* s = scores + r * T;
    const float* mask = key_mask + (int64_t)b * T;
    float mx = -INFINITY;
    for (int j = lane; j < T; j += WARP) if (mask[j] != 0.0f) mx = fmaxf(mx, (float)s[j]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j < T; j += WARP) if (mask[j] != 0.0f) sum += expf(((float)s[j] - mx) * scale);
    sum = warp_sum(sum);
    float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    if (valid)
        for (int j = lane; j < T; j += WARP)
            probs[r * T + j] = mask[j] != 0.0f ? expf(((float)s[j] - mx) * scale) * inv : 0.0f;
}

// dscores = P ⊙ (dP − Σ_j P·dP) · scale; dscores may be dprobs. One warp per row.
extern "C" __global__ void attention_softmax_backward(floatX* dscores, const floatX* probs, const floatX* dprobs,
                                                      int B, int H, int T, float scale) {
    int lane = threadIdx.x % WARP;
    int64_t row = (int64_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    bool valid = row < (int64_t)B * H * T;
    int64_t r = valid ? row : 0;
    const floatX* p = probs + r * T;
    const floatX* dp = dprobs + r * T;
    float dot = 0.0f;
    for (int j = lane; j < T; j += WARP) dot += (float)p[j] * (float)dp[j];
    dot = warp_sum(dot);
    if (valid)
        for (int j = lane; j < T; j += WARP) {
            float v = ((float)dp[j] - dot) * (float)p[j] * scale;
            dscores[r * T + j] = v;
        }
}

// ---------------------------------------------------------------------------------------------
// Fused attention for head sizes up to 64 (FlashAttention's scheme, on the FMA units): no T × T
// tensor in memory. Q, K and V are read straight from qkv [B, T, 3C] and the output written
// straight into ctx [B, T, C] (no head permutes). A block owns 32 queries of one head and streams
// the keys through shared memory 32 at a time, keeping each query's running max, sum and output
// (online softmax); it saves the softmax's log-sum-exp per query for the backward, which recomputes
// the probabilities from it. Dropout regenerates the CPU's mask from the same counter hash (the flat
// index of the [B, H, T, T] probabilities). One warp per query row at a time, a lane per key of the
// tile when scoring and per output column (lane and lane + 32) when accumulating.
#define ATT_TILE 32                           // queries per block, keys per shared tile
#define ATT_MAX_D 64
#define ATT_WARPS 4
#define ATT_ROWS (ATT_TILE / ATT_WARPS)       // rows of the tile each warp owns
#define ATT_THREADS (ATT_WARPS * WARP)        // the block of every fused kernel

typedef float AttTile[ATT_TILE][ATT_MAX_D + 1];   // +1: lane j reading row j hits bank (j + k) % 32

// tile[r][k] = rows r0 + r of one head's d columns of a [·, ld] tensor plus bias[k] (bias 0: none), 0
// past row T and column d. The QKV projection's bias is added here, where Q, K and V are read, instead
// of in a pass of its own over [B, T, 3C]. E is float (the FMA kernels compute from float32 tiles) or
// floatX (attention_mma.cuh's operands). Read in 128-bit packs when the rows allow (aligned, d a whole
// number of packs), with every thread's loads issued before any is used: one element at a time, each
// load's latency was paid in turn, and the measured forward on an H200 spent most of its time here.
template <typename E, int LD>
__device__ void attention_load_tile(E (*tile)[LD], const floatX* head, const float* bias, int64_t ld, int r0, int T, int d) {
    constexpr int PACKS = ATT_TILE * ATT_MAX_D / XPACK, ROW_PACKS = ATT_MAX_D / XPACK;
    if (d % XPACK == 0 && aligned16(head) && (ld * (int64_t)sizeof(floatX)) % 16 == 0 && PACKS % ATT_THREADS == 0) {
        VecX<XPACK> v[PACKS / ATT_THREADS];
#pragma unroll
        for (int n = 0; n < PACKS / ATT_THREADS; n++) {   // all loads first
            int e = threadIdx.x + n * ATT_THREADS, r = e / ROW_PACKS, k = e % ROW_PACKS * XPACK;
            if (r0 + r < T && k < d) v[n] = load_x<XPACK>(head + (int64_t)(r0 + r) * ld + k);
        }
#pragma unroll
        for (int n = 0; n < PACKS / ATT_THREADS; n++) {
            int e = threadIdx.x + n * ATT_THREADS, r = e / ROW_PACKS, k = e % ROW_PACKS * XPACK;
            bool in = r0 + r < T && k < d;
#pragma unroll
            for (int j = 0; j < XPACK; j++) tile[r][k + j] = (E)(in ? v[n].v[j] + (bias != 0 ? bias[k + j] : 0.0f) : 0.0f);
        }
        return;
    }
    for (int e = threadIdx.x; e < ATT_TILE * ATT_MAX_D; e += blockDim.x) {
        int r = e / ATT_MAX_D, k = e % ATT_MAX_D;
        float v = 0.0f;
        if (r0 + r < T && k < d) v = (float)head[(int64_t)(r0 + r) * ld + k] + (bias != 0 ? bias[k] : 0.0f);
        tile[r][k] = (E)v;
    }
}

// The keys k0 … k0 + 31 of one head: K and V into shared tiles, the key mask into kmask (0 past T).
// Waits before (the previous tile may still be read) and after (every thread sees the whole tile).
// head and bias point at the head's Q columns; K and V are C and 2C further on.
template <typename E, int LD>
__device__ void attention_load_key_tile(E (*k)[LD], E (*v)[LD], float* kmask, const floatX* head, const float* bias, int64_t ld, int C,
                                        const float* key_mask_b, int k0, int T, int d) {
    __syncthreads();
    attention_load_tile(k, head + C, bias != 0 ? bias + C : 0, ld, k0, T, d);
    attention_load_tile(v, head + 2 * (int64_t)C, bias != 0 ? bias + 2 * C : 0, ld, k0, T, d);
    if (threadIdx.x < ATT_TILE) kmask[threadIdx.x] = k0 + (int)threadIdx.x < T ? key_mask_b[k0 + threadIdx.x] : 0.0f;
    __syncthreads();
}

// The queries i0 … i0 + 31 of one head for the dK/dV kernels: Q and dO into shared tiles, their
// log-sum-exps and dO·O dots into qlse and qdot (+∞ and 0 past T, so their probabilities are 0).
// Waits before and after, as attention_load_key_tile.
template <typename E, int LD>
__device__ void attention_load_query_tile(E (*q)[LD], E (*dout)[LD], float* qlse, float* qdot, const floatX* head, const float* bias,
                                          int64_t ld, const floatX* dctx_head, int C, const float* lse_bh, const float* dot_bh, int i0,
                                          int T, int d) {
    __syncthreads();
    attention_load_tile(q, head, bias, ld, i0, T, d);
    attention_load_tile(dout, dctx_head, (const float*)0, C, i0, T, d);
    if (threadIdx.x < ATT_TILE) {
        int i = i0 + threadIdx.x;
        qlse[threadIdx.x] = i < T ? lse_bh[i] : INFINITY;
        qdot[threadIdx.x] = i < T ? dot_bh[i] : 0.0f;
    }
    __syncthreads();
}

// One key tile of the online softmax of a query row (a warp; a lane per key, s its scaled score): the
// row's running max m and sum l take in the tile's valid keys. Returns the lane's exp(s − m) and sets
// corr, the factor that rescales what was accumulated under the previous max.
__device__ __forceinline__ float attention_online_softmax(float s, bool valid, float& m, float& l, float& corr) {
    float m_new = fmaxf(m, warp_max(valid ? s : -INFINITY));
    float pj = valid ? expf(s - m_new) : 0.0f;                    // m_new is finite when any key is valid
    corr = m == -INFINITY ? 0.0f : expf(m - m_new);
    l = l * corr + warp_sum(pj);
    m = m_new;
    return pj;
}

// ctx = softmax(scale · Q Kᵀ, masked) · V with dropout on the probabilities, Q, K and V read from qkv
// plus qkv_bias (0: none); lse[bh, t] = the log of
// the softmax's denominator (scaled scores), +∞ for a query with no key to attend to (its ctx is 0).
// grid: (B·H, ceil(T / 32)) (B·H on x, whose limit is 2³¹ − 1, not y's 65535); block: 128 threads.
extern "C" __global__ void attention_forward_fused(floatX* ctx, float* lse, const floatX* qkv, const float* qkv_bias,
                                                   const float* key_mask, int B, int T, int C, int H, float scale, float p, unsigned int key) {
    __shared__ AttTile q, k, v;
    __shared__ float kmask[ATT_TILE];
    int d = C / H, bh = blockIdx.x, b = bh / H, h = bh % H, q0 = blockIdx.y * ATT_TILE;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int64_t ld = 3 * (int64_t)C;
    const floatX* head = qkv + (int64_t)b * T * ld + (int64_t)h * d;
    const float* hbias = qkv_bias != 0 ? qkv_bias + h * d : 0;
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    float m[ATT_ROWS], l[ATT_ROWS], o0[ATT_ROWS], o1[ATT_ROWS];
#pragma unroll
    for (int rr = 0; rr < ATT_ROWS; rr++) { m[rr] = -INFINITY; l[rr] = 0.0f; o0[rr] = 0.0f; o1[rr] = 0.0f; }
    attention_load_tile(q, head, hbias, ld, q0, T, d);
    for (int k0 = 0; k0 < T; k0 += ATT_TILE) {
        attention_load_key_tile(k, v, kmask, head, hbias, ld, C, key_mask + (int64_t)b * T, k0, T, d);
        bool valid = kmask[lane] != 0.0f;
#pragma unroll
        for (int rr = 0; rr < ATT_ROWS; rr++) {
            int r = warp + rr * ATT_WARPS;
            float s = 0.0f;
            for (int kk = 0; kk < d; kk++) s = fmaf(q[r][kk], k[lane][kk], s);
            float corr, pj = attention_online_softmax(s * scale, valid, m[rr], l[rr], corr);
            if (p > 0.0f) {
                unsigned int index = (unsigned int)(((int64_t)bh * T + q0 + r) * T + k0 + lane);
                pj = dropout_uniform(key, index) >= p ? pj * keep_scale : 0.0f;
            }
            float a0 = 0.0f, a1 = 0.0f;
            for (int j = 0; j < ATT_TILE; j++) {
                float pjj = __shfl_sync(0xffffffffu, pj, j);
                a0 = fmaf(pjj, v[j][lane], a0);
                a1 = fmaf(pjj, v[j][lane + WARP], a1);
            }
            o0[rr] = o0[rr] * corr + a0;
            o1[rr] = o1[rr] * corr + a1;
        }
    }
#pragma unroll
    for (int rr = 0; rr < ATT_ROWS; rr++) {
        int t = q0 + warp + rr * ATT_WARPS;
        if (t >= T) continue;
        float inv = l[rr] > 0.0f ? 1.0f / l[rr] : 0.0f;
        floatX* out = ctx + ((int64_t)b * T + t) * C + (int64_t)h * d;
        if (lane < d) out[lane] = o0[rr] * inv;
        if (lane + WARP < d) out[lane + WARP] = o1[rr] * inv;
        if (lane == 0) lse[(int64_t)bh * T + t] = l[rr] > 0.0f ? m[rr] + logf(l[rr]) : INFINITY;
    }
}

// dot[bh, t] = Σ_k dctx[b, t, h·d + k] · ctx[b, t, h·d + k]: the softmax backward's Σ_j P·dP of the
// row (with dropout too: Σ_j P·dP = Σ_j P̃·dP̃ = dO·O). In packs (packed: C and d whole numbers of
// them, the pointers aligned) a row's d / XPACK packs go to lanes_per_row lanes (a power of two, at
// least d / XPACK; the rest add 0), so a warp takes 32 / lanes_per_row rows at once and sums each over
// its lanes with shuffles; one element at a time it is a warp a row (lanes_per_row 32). With a warp
// a row and two scalar loads a lane it took 20 us a layer at bert-base's shape on an H200, for 12.6 MB
// of reads. grid: ceil(B·H·T / (rows a warp · warps a block)); block 128.
extern "C" __global__ void attention_backward_dot(float* dot, const floatX* dctx, const floatX* ctx, int B, int T, int C, int H,
                                                  int lanes_per_row, int packed) {
    int lane = threadIdx.x % WARP, sub = lane % lanes_per_row;
    int64_t row = ((int64_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP) * (WARP / lanes_per_row) + lane / lanes_per_row;
    bool valid = row < (int64_t)B * H * T;
    int64_t r = valid ? row : 0;
    int d = C / H, t = (int)(r % T), bh = (int)(r / T), b = bh / H, h = bh % H;
    int64_t base = ((int64_t)b * T + t) * C + (int64_t)h * d;
    float acc = 0.0f;
    if (packed)
        for (int j = sub * XPACK; j < d; j += lanes_per_row * XPACK) {
            VecX<XPACK> g = load_x<XPACK>(dctx + base + j), o = load_x<XPACK>(ctx + base + j);
#pragma unroll
            for (int e = 0; e < XPACK; e++) acc = fmaf(g.v[e], o.v[e], acc);
        }
    else
        for (int k = sub; k < d; k += lanes_per_row) acc += (float)dctx[base + k] * (float)ctx[base + k];
    for (int offset = lanes_per_row / 2; offset > 0; offset /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
    if (valid && sub == 0) dot[r] = acc;
}

// dq[b, t, h·d + :] = Σ_j dS[t, j] · k_j with dS = P ⊙ (dP − dot) · scale, P recomputed from lse, dP
// = dropout'(dctx · vᵀ); written into dqkv's Q columns. grid: (B·H, ceil(T / 32)); block: 128.
extern "C" __global__ void attention_backward_dq_fused(floatX* dqkv, const floatX* qkv, const float* qkv_bias, const floatX* dctx,
                                                       const float* lse, const float* dot, const float* key_mask, int B, int T, int C, int H,
                                                       float scale, float p, unsigned int key) {
    __shared__ AttTile q, dout, k, v;
    __shared__ float kmask[ATT_TILE];
    int d = C / H, bh = blockIdx.x, b = bh / H, h = bh % H, q0 = blockIdx.y * ATT_TILE;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int64_t ld = 3 * (int64_t)C;
    const floatX* head = qkv + (int64_t)b * T * ld + (int64_t)h * d;
    const float* hbias = qkv_bias != 0 ? qkv_bias + h * d : 0;
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    attention_load_tile(q, head, hbias, ld, q0, T, d);
    attention_load_tile(dout, dctx + (int64_t)b * T * C + (int64_t)h * d, (const float*)0, C, q0, T, d);
    float row_lse[ATT_ROWS], row_dot[ATT_ROWS], g0[ATT_ROWS], g1[ATT_ROWS];
#pragma unroll
    for (int rr = 0; rr < ATT_ROWS; rr++) {
        int t = q0 + warp + rr * ATT_WARPS;
        row_lse[rr] = t < T ? lse[(int64_t)bh * T + t] : INFINITY;
        row_dot[rr] = t < T ? dot[(int64_t)bh * T + t] : 0.0f;
        g0[rr] = 0.0f; g1[rr] = 0.0f;
    }
    for (int k0 = 0; k0 < T; k0 += ATT_TILE) {
        attention_load_key_tile(k, v, kmask, head, hbias, ld, C, key_mask + (int64_t)b * T, k0, T, d);
        bool valid = kmask[lane] != 0.0f;
#pragma unroll
        for (int rr = 0; rr < ATT_ROWS; rr++) {
            int r = warp + rr * ATT_WARPS;
            float s = 0.0f, dp = 0.0f;
            for (int kk = 0; kk < d; kk++) { s = fmaf(q[r][kk], k[lane][kk], s); dp = fmaf(dout[r][kk], v[lane][kk], dp); }
            float pij = valid ? expf(s * scale - row_lse[rr]) : 0.0f;
            if (p > 0.0f) {
                unsigned int index = (unsigned int)(((int64_t)bh * T + q0 + r) * T + k0 + lane);
                dp = dropout_uniform(key, index) >= p ? dp * keep_scale : 0.0f;
            }
            float ds = pij * (dp - row_dot[rr]) * scale;
            float a0 = 0.0f, a1 = 0.0f;
            for (int j = 0; j < ATT_TILE; j++) {
                float dsj = __shfl_sync(0xffffffffu, ds, j);
                a0 = fmaf(dsj, k[j][lane], a0);
                a1 = fmaf(dsj, k[j][lane + WARP], a1);
            }
            g0[rr] += a0; g1[rr] += a1;
        }
    }
#pragma unroll
    for (int rr = 0; rr < ATT_ROWS; rr++) {
        int t = q0 + warp + rr * ATT_WARPS;
        if (t >= T) continue;
        floatX* out = dqkv + ((int64_t)b * T + t) * ld + (int64_t)h * d;
        if (lane < d) out[lane] = g0[rr];
        if (lane + WARP < d) out[lane + WARP] = g1[rr];
    }
}

// dk_j = Σ_i dS[i, j] · q_i and dv_j = Σ_i P̃[i, j] · dctx_i for the block's 32 keys, queries streamed
// through shared memory; written into dqkv's K and V columns. grid: (B·H, ceil(T / 32)); block: 128.
extern "C" __global__ void attention_backward_dkv_fused(floatX* dqkv, const floatX* qkv, const float* qkv_bias, const floatX* dctx,
                                                        const float* lse, const float* dot, const float* key_mask, int B, int T, int C, int H,
                                                        float scale, float p, unsigned int key) {
    __shared__ AttTile k, v, q, dout;
    __shared__ float qlse[ATT_TILE], qdot[ATT_TILE];
    int d = C / H, bh = blockIdx.x, b = bh / H, h = bh % H, k0 = blockIdx.y * ATT_TILE;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int64_t ld = 3 * (int64_t)C;
    const floatX* head = qkv + (int64_t)b * T * ld + (int64_t)h * d;
    const float* hbias = qkv_bias != 0 ? qkv_bias + h * d : 0;
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    attention_load_tile(k, head + C, hbias != 0 ? hbias + C : 0, ld, k0, T, d);
    attention_load_tile(v, head + 2 * (int64_t)C, hbias != 0 ? hbias + 2 * C : 0, ld, k0, T, d);
    bool key_valid[ATT_ROWS];
    float gk0[ATT_ROWS], gk1[ATT_ROWS], gv0[ATT_ROWS], gv1[ATT_ROWS];
#pragma unroll
    for (int rr = 0; rr < ATT_ROWS; rr++) {
        int j = k0 + warp + rr * ATT_WARPS;
        key_valid[rr] = j < T && key_mask[(int64_t)b * T + j] != 0.0f;
        gk0[rr] = 0.0f; gk1[rr] = 0.0f; gv0[rr] = 0.0f; gv1[rr] = 0.0f;
    }
    for (int i0 = 0; i0 < T; i0 += ATT_TILE) {
        attention_load_query_tile(q, dout, qlse, qdot, head, hbias, ld, dctx + (int64_t)b * T * C + (int64_t)h * d, C,
                                  lse + (int64_t)bh * T, dot + (int64_t)bh * T, i0, T, d);
#pragma unroll
        for (int rr = 0; rr < ATT_ROWS; rr++) {
            int r = warp + rr * ATT_WARPS;   // this warp's key; lane = the query
            float s = 0.0f, dp = 0.0f;
            for (int kk = 0; kk < d; kk++) { s = fmaf(q[lane][kk], k[r][kk], s); dp = fmaf(dout[lane][kk], v[r][kk], dp); }
            float pij = key_valid[rr] ? expf(s * scale - qlse[lane]) : 0.0f;   // 0 for queries past T (lse +∞)
            float pdrop = pij;
            if (p > 0.0f) {
                unsigned int index = (unsigned int)(((int64_t)bh * T + i0 + lane) * T + k0 + r);
                bool kept = dropout_uniform(key, index) >= p;
                pdrop = kept ? pij * keep_scale : 0.0f;
                dp = kept ? dp * keep_scale : 0.0f;
            }
            float ds = pij * (dp - qdot[lane]) * scale;
            float a0 = 0.0f, a1 = 0.0f, c0 = 0.0f, c1 = 0.0f;
            for (int i = 0; i < ATT_TILE; i++) {
                float dsi = __shfl_sync(0xffffffffu, ds, i), pi = __shfl_sync(0xffffffffu, pdrop, i);
                a0 = fmaf(dsi, q[i][lane], a0);
                a1 = fmaf(dsi, q[i][lane + WARP], a1);
                c0 = fmaf(pi, dout[i][lane], c0);
                c1 = fmaf(pi, dout[i][lane + WARP], c1);
            }
            gk0[rr] += a0; gk1[rr] += a1; gv0[rr] += c0; gv1[rr] += c1;
        }
    }
#pragma unroll
    for (int rr = 0; rr < ATT_ROWS; rr++) {
        int j = k0 + warp + rr * ATT_WARPS;
        if (j >= T) continue;
        floatX* dk = dqkv + ((int64_t)b * T + j) * ld + (int64_t)h * d + C;
        if (lane < d) { dk[lane] = gk0[rr]; dk[C + lane] = gv0[rr]; }
        if (lane + WARP < d) { dk[lane + WARP] = gk1[rr]; dk[C + lane + WARP] = gv1[rr]; }
    }
}
