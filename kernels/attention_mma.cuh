// attention_mma.cuh: the fused attention kernels of attention.cuh with their products on tensor
// cores, through CUDA's warp matrix API (WMMA, 16×16×16 bf16 tiles accumulated in float32). In the
// bf16 module only (kernels.cu): WMMA has no float32 operands, only TF32's, which would round the
// float32 engine's products. Heads of 16, 32, 48 or 64 channels (whole 16-column tiles).
//
// Grid, block, arguments, masks, dropout and the saved log-sum-exps are those of the FMA kernels, and
// so is the algorithm; what changes is where the numbers live. A tensor core reads its operands from
// shared memory as bf16 tiles and leaves its results in fragments spread over a warp in a layout CUDA
// does not specify, so every product goes through shared memory: Q Kᵀ (and dO Vᵀ) are stored as
// float32 scores, the softmax works on those row by row as before (a warp per row, a lane per key),
// and its probabilities (P̃, dS) are rounded to bf16 for the next product, as FlashAttention does. That,
// and Q, K and V rounded to bf16 again after the QKV bias is added (the FMA kernels keep that sum in
// float32), are the roundings these kernels add to the FMA ones. Each 32 × 32 product is four 16 × 16
// fragments, one per warp; a 32 × d output has 2·d/16 fragments, warp w taking w and w + 4.
#pragma once
#include <mma.h>
#include "attention.cuh"

using namespace nvcuda;

#define MMA_LD (ATT_MAX_D + 8)   // a bf16 tile row, padded: 144 bytes, so every 16th row is 256-bit aligned as WMMA requires
#define MMA_SLD (ATT_TILE + 4)   // a float32 32 × 32 product's row: 144 bytes
#define MMA_PLD (ATT_TILE + 8)   // a bf16 32 × 32 operand's row: 80 bytes
#define MMA_OLD (ATT_MAX_D + 4)  // a float32 32 × d result's row: 272 bytes

typedef floatX MmaTile[ATT_TILE][MMA_LD];      // 32 rows of a head (Q, K, V or dO), bf16
typedef float MmaScores[ATT_TILE][MMA_SLD];    // a 32 × 32 product (scores, dP)
typedef floatX MmaProbs[ATT_TILE][MMA_PLD];    // a 32 × 32 operand (P̃, dS)
typedef float MmaOut[ATT_TILE][MMA_OLD];       // a 32 × d result (O, dQ, dK, dV)

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, floatX, wmma::row_major> MmaA;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, floatX, wmma::col_major> MmaATransposed;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, floatX, wmma::row_major> MmaB;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, floatX, wmma::col_major> MmaBTransposed;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> MmaAcc;

// out = a[:, :d] · b[:, :d]ᵀ (32 × 32): this warp's fragment, rows 16·(warp / 2), columns 16·(warp % 2).
__device__ void mma_rows_dot_rows(MmaScores out, const MmaTile a, const MmaTile b, int d) {
    int warp = threadIdx.x / WARP, i = warp / 2, j = warp % 2;
    MmaAcc acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int kk = 0; kk < d; kk += 16) {
        MmaA fa;
        MmaBTransposed fb;                  // bᵀ: b's rows are its columns
        wmma::load_matrix_sync(fa, &a[16 * i][kk], MMA_LD);
        wmma::load_matrix_sync(fb, &b[16 * j][kk], MMA_LD);
        wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(&out[16 * i][16 * j], acc, MMA_SLD, wmma::mem_row_major);
}

// acc += p[16i …, :] · x[:, 16j …] (over the tile's 32 keys)
__device__ void mma_probs_times_tile(MmaAcc& acc, const MmaProbs p, const MmaTile x, int i, int j) {
    for (int kk = 0; kk < ATT_TILE; kk += 16) {
        MmaA fa;
        MmaB fb;
        wmma::load_matrix_sync(fa, &p[16 * i][kk], MMA_PLD);
        wmma::load_matrix_sync(fb, &x[kk][16 * j], MMA_LD);
        wmma::mma_sync(acc, fa, fb, acc);
    }
}

// acc += p[:, 16i …]ᵀ · x[:, 16j …] (over the tile's 32 queries)
__device__ void mma_probs_transposed_times_tile(MmaAcc& acc, const MmaProbs p, const MmaTile x, int i, int j) {
    for (int kk = 0; kk < ATT_TILE; kk += 16) {
        MmaATransposed fa;
        MmaB fb;
        wmma::load_matrix_sync(fa, &p[kk][16 * i], MMA_PLD);
        wmma::load_matrix_sync(fb, &x[kk][16 * j], MMA_LD);
        wmma::mma_sync(acc, fa, fb, acc);
    }
}

// dst[(row0 + r) · ld + c] = src[r][c] for the block's rows r with row0 + r < T and columns c < d.
__device__ void mma_write_rows(floatX* dst, int64_t ld, const MmaOut src, int row0, int T, int d) {
    for (int e = threadIdx.x; e < ATT_TILE * d; e += blockDim.x) {
        int r = e / d, c = e % d;
        if (row0 + r < T) dst[(int64_t)(row0 + r) * ld + c] = (floatX)src[r][c];
    }
}

// out = this warp's fragments w and w + 4 of a 32 × d result (those that exist).
__device__ __forceinline__ void mma_store_fragments(MmaOut out, const MmaAcc (&acc)[2], int d) {
    int warp = threadIdx.x / WARP;
#pragma unroll
    for (int n = 0; n < 2; n++) {
        int f = warp + n * ATT_WARPS;
        if (f < 2 * (d / 16)) wmma::store_matrix_sync(&out[16 * (f % 2)][16 * (f / 2)], acc[n], MMA_OLD, wmma::mem_row_major);
    }
}

// attention_forward_fused on tensor cores. The running output O stays in shared memory (float32): the
// online softmax rescales its rows, which a fragment's unspecified layout does not allow.
extern "C" __global__ void attention_forward_mma(floatX* ctx, float* lse, const floatX* qkv, const float* qkv_bias,
                                                 const float* key_mask, int B, int T, int C, int H, float scale, float p, unsigned int key) {
    __shared__ __align__(32) MmaTile q, k, v;
    __shared__ __align__(32) MmaScores s;
    __shared__ __align__(32) MmaProbs pt;
    __shared__ __align__(32) MmaOut o;
    __shared__ float kmask[ATT_TILE];
    int d = C / H, bh = blockIdx.x, b = bh / H, h = bh % H, q0 = blockIdx.y * ATT_TILE;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int64_t ld = 3 * (int64_t)C;
    const floatX* head = qkv + (int64_t)b * T * ld + (int64_t)h * d;
    const float* hbias = qkv_bias != 0 ? qkv_bias + h * d : 0;
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    float m[ATT_ROWS], l[ATT_ROWS];
#pragma unroll
    for (int rr = 0; rr < ATT_ROWS; rr++) { m[rr] = -INFINITY; l[rr] = 0.0f; }
    attention_load_tile(q, head, hbias, ld, q0, T, d);
    for (int e = threadIdx.x; e < ATT_TILE * MMA_OLD; e += blockDim.x) o[e / MMA_OLD][e % MMA_OLD] = 0.0f;
    for (int k0 = 0; k0 < T; k0 += ATT_TILE) {
        attention_load_key_tile(k, v, kmask, head, hbias, ld, C, key_mask + (int64_t)b * T, k0, T, d);
        mma_rows_dot_rows(s, q, k, d);
        __syncthreads();
        bool valid = kmask[lane] != 0.0f;
#pragma unroll
        for (int rr = 0; rr < ATT_ROWS; rr++) {
            int r = warp + rr * ATT_WARPS;
            float corr, pj = attention_online_softmax(s[r][lane] * scale, valid, m[rr], l[rr], corr);
            if (p > 0.0f) {
                unsigned int index = (unsigned int)(((int64_t)bh * T + q0 + r) * T + k0 + lane);
                pj = dropout_uniform(key, index) >= p ? pj * keep_scale : 0.0f;
            }
            pt[r][lane] = (floatX)pj;
            for (int c = lane; c < d; c += WARP) o[r][c] *= corr;
        }
        __syncthreads();
#pragma unroll
        for (int n = 0; n < 2; n++) {
            int f = warp + n * ATT_WARPS, i = f % 2, j = f / 2;
            if (f >= 2 * (d / 16)) continue;                              // the same for the whole warp
            MmaAcc acc;
            wmma::load_matrix_sync(acc, &o[16 * i][16 * j], MMA_OLD, wmma::mem_row_major);
            mma_probs_times_tile(acc, pt, v, i, j);
            wmma::store_matrix_sync(&o[16 * i][16 * j], acc, MMA_OLD, wmma::mem_row_major);
        }
    }
    __syncthreads();
#pragma unroll
    for (int rr = 0; rr < ATT_ROWS; rr++) {
        int r = warp + rr * ATT_WARPS, t = q0 + r;
        if (t >= T) continue;
        float inv = l[rr] > 0.0f ? 1.0f / l[rr] : 0.0f;
        floatX* out = ctx + ((int64_t)b * T + t) * C + (int64_t)h * d;
        for (int c = lane; c < d; c += WARP) out[c] = (floatX)(o[r][c] * inv);
        if (lane == 0) lse[(int64_t)bh * T + t] = l[rr] > 0.0f ? m[rr] + logf(l[rr]) : INFINITY;
    }
}

// attention_backward_dq_fused on tensor cores: dQ accumulates in fragments over the key tiles.
extern "C" __global__ void attention_backward_dq_mma(floatX* dqkv, const floatX* qkv, const float* qkv_bias, const floatX* dctx,
                                                     const float* lse, const float* dot, const float* key_mask, int B, int T, int C, int H,
                                                     float scale, float p, unsigned int key) {
    __shared__ __align__(32) MmaTile q, dout, k, v;
    __shared__ __align__(32) MmaScores s, dp;
    __shared__ __align__(32) MmaProbs ds;
    __shared__ __align__(32) MmaOut out;
    __shared__ float kmask[ATT_TILE];
    int d = C / H, bh = blockIdx.x, b = bh / H, h = bh % H, q0 = blockIdx.y * ATT_TILE;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int64_t ld = 3 * (int64_t)C;
    const floatX* head = qkv + (int64_t)b * T * ld + (int64_t)h * d;
    const float* hbias = qkv_bias != 0 ? qkv_bias + h * d : 0;
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    attention_load_tile(q, head, hbias, ld, q0, T, d);
    attention_load_tile(dout, dctx + (int64_t)b * T * C + (int64_t)h * d, (const float*)0, C, q0, T, d);
    float row_lse[ATT_ROWS], row_dot[ATT_ROWS];
#pragma unroll
    for (int rr = 0; rr < ATT_ROWS; rr++) {
        int t = q0 + warp + rr * ATT_WARPS;
        row_lse[rr] = t < T ? lse[(int64_t)bh * T + t] : INFINITY;
        row_dot[rr] = t < T ? dot[(int64_t)bh * T + t] : 0.0f;
    }
    MmaAcc dq[2];
#pragma unroll
    for (int n = 0; n < 2; n++) wmma::fill_fragment(dq[n], 0.0f);
    for (int k0 = 0; k0 < T; k0 += ATT_TILE) {
        attention_load_key_tile(k, v, kmask, head, hbias, ld, C, key_mask + (int64_t)b * T, k0, T, d);
        mma_rows_dot_rows(s, q, k, d);
        mma_rows_dot_rows(dp, dout, v, d);
        __syncthreads();
        bool valid = kmask[lane] != 0.0f;
#pragma unroll
        for (int rr = 0; rr < ATT_ROWS; rr++) {
            int r = warp + rr * ATT_WARPS;
            float pij = valid ? expf(s[r][lane] * scale - row_lse[rr]) : 0.0f;
            float dpv = dp[r][lane];
            if (p > 0.0f) {
                unsigned int index = (unsigned int)(((int64_t)bh * T + q0 + r) * T + k0 + lane);
                dpv = dropout_uniform(key, index) >= p ? dpv * keep_scale : 0.0f;
            }
            ds[r][lane] = (floatX)(pij * (dpv - row_dot[rr]) * scale);
        }
        __syncthreads();
#pragma unroll
        for (int n = 0; n < 2; n++) {
            int f = warp + n * ATT_WARPS;
            if (f < 2 * (d / 16)) mma_probs_times_tile(dq[n], ds, k, f % 2, f / 2);
        }
    }
    mma_store_fragments(out, dq, d);
    __syncthreads();
    mma_write_rows(dqkv + (int64_t)b * T * ld + (int64_t)h * d, ld, out, q0, T, d);
}

// attention_backward_dkv_fused on tensor cores: dK = Σ dSᵀ Q and dV = Σ P̃ᵀ dO accumulate in fragments
// over the query tiles; the scores are [query][key] as in the other kernels, read transposed.
extern "C" __global__ void attention_backward_dkv_mma(floatX* dqkv, const floatX* qkv, const float* qkv_bias, const floatX* dctx,
                                                      const float* lse, const float* dot, const float* key_mask, int B, int T, int C, int H,
                                                      float scale, float p, unsigned int key) {
    __shared__ __align__(32) MmaTile k, v, q, dout;
    __shared__ __align__(32) MmaScores s, dp;
    __shared__ __align__(32) MmaProbs pt, ds;
    __shared__ __align__(32) MmaOut out;
    __shared__ float kvalid[ATT_TILE], qlse[ATT_TILE], qdot[ATT_TILE];
    int d = C / H, bh = blockIdx.x, b = bh / H, h = bh % H, k0 = blockIdx.y * ATT_TILE;
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    int64_t ld = 3 * (int64_t)C;
    const floatX* head = qkv + (int64_t)b * T * ld + (int64_t)h * d;
    const float* hbias = qkv_bias != 0 ? qkv_bias + h * d : 0;
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    attention_load_tile(k, head + C, hbias != 0 ? hbias + C : 0, ld, k0, T, d);
    attention_load_tile(v, head + 2 * (int64_t)C, hbias != 0 ? hbias + 2 * C : 0, ld, k0, T, d);
    if (threadIdx.x < ATT_TILE) kvalid[threadIdx.x] = k0 + (int)threadIdx.x < T ? key_mask[(int64_t)b * T + k0 + threadIdx.x] : 0.0f;
    MmaAcc dk[2], dv[2];
#pragma unroll
    for (int n = 0; n < 2; n++) { wmma::fill_fragment(dk[n], 0.0f); wmma::fill_fragment(dv[n], 0.0f); }
    for (int i0 = 0; i0 < T; i0 += ATT_TILE) {
        attention_load_query_tile(q, dout, qlse, qdot, head, hbias, ld, dctx + (int64_t)b * T * C + (int64_t)h * d, C,
                                  lse + (int64_t)bh * T, dot + (int64_t)bh * T, i0, T, d);
        mma_rows_dot_rows(s, q, k, d);
        mma_rows_dot_rows(dp, dout, v, d);
        __syncthreads();
        bool valid = kvalid[lane] != 0.0f;
#pragma unroll
        for (int rr = 0; rr < ATT_ROWS; rr++) {
            int r = warp + rr * ATT_WARPS;   // the query; lane = the key
            float pij = valid ? expf(s[r][lane] * scale - qlse[r]) : 0.0f;   // 0 for queries past T (lse +∞)
            float pdrop = pij, dpv = dp[r][lane];
            if (p > 0.0f) {
                unsigned int index = (unsigned int)(((int64_t)bh * T + i0 + r) * T + k0 + lane);
                bool kept = dropout_uniform(key, index) >= p;
                pdrop = kept ? pij * keep_scale : 0.0f;
                dpv = kept ? dpv * keep_scale : 0.0f;
            }
            pt[r][lane] = (floatX)pdrop;
            ds[r][lane] = (floatX)(pij * (dpv - qdot[r]) * scale);
        }
        __syncthreads();
#pragma unroll
        for (int n = 0; n < 2; n++) {
            int f = warp + n * ATT_WARPS;
            if (f >= 2 * (d / 16)) continue;
            mma_probs_transposed_times_tile(dv[n], pt, dout, f % 2, f / 2);
            mma_probs_transposed_times_tile(dk[n], ds, q, f % 2, f / 2);
        }
    }
    // dK, then dV, through one staging tile
    floatX* dk_out = dqkv + (int64_t)b * T * ld + (int64_t)h * d + C;
    __syncthreads();
    mma_store_fragments(out, dk, d);
    __syncthreads();
    mma_write_rows(dk_out, ld, out, k0, T, d);
    __syncthreads();
    mma_store_fragments(out, dv, d);
    __syncthreads();
    mma_write_rows(dk_out + C, ld, out, k0, T, d);
}
