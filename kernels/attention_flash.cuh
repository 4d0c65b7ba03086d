// attention_flash.cuh: the fused attention of attention.cuh on tensor cores in FlashAttention-2's
// structure, through PTX's mma.sync (m16n8k16: bf16 operands, float32 accumulators). In the bf16 module
// only, for heads of 16, 32, 48 or 64 channels, with the arguments, grid shape, masks, dropout hash and
// saved log-sum-exps of the other fused kernels.
//
// What differs from attention_mma.cuh (WMMA) is where the numbers live. mma.sync's fragments have a
// documented layout (below), so a warp keeps its 16 rows' scores, probabilities and running output in
// registers: a score tile never goes through shared memory, the online softmax rescales the output in
// registers, and a product's result is the next product's operand without a round trip (the float32
// accumulator of S = Q·Kᵀ over 16 keys is, rounded to bf16 in pairs, exactly the A fragment of P·V).
// Only K and V (or Q and dO) tiles are shared, one barrier pair per tile. A block takes 64 rows (16 per
// warp) and streams the other side 64 at a time. The roundings are those of the WMMA kernels: Q, K, V
// rounded to bf16 after the bias is added, P̃ and dS rounded to bf16 for their products, every sum in
// float32. Exponentials are exp2f of scores pre-scaled by log2(e) (one FFMA and one MUFU.EX2, as
// FlashAttention), where expf's accurate path takes several instructions per score; the log-sum-exps
// saved and read stay natural logarithms, as the other kernels'.
#pragma once
#include "attention.cuh"

#define FLASH_ROWS 64              // rows a block owns (queries; keys in the dK/dV kernel): 16 per warp
#define FLASH_TILE 64              // rows per shared tile of the other side
#define FLASH_LD (ATT_MAX_D + 8)   // a tile row: 144 bytes, so lane (g, t)'s 32-bit reads of rows g (word 36g + t) hit 32 banks
#define FLASH_KSTEPS (ATT_MAX_D / 16)   // 16-channel steps of a product over the head's channels
#define FLASH_NTILES (ATT_MAX_D / 8)    // 8-channel column tiles of a product's head-wide result
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

// Resident blocks an SM that ptxas must leave registers for: 3 (at most 170 registers a thread; the dK/dV
// kernel spills a little). Without the bound ptxas took 171/182/225 registers, two blocks an SM; with
// it, on an H200, the kernels ran in 57/64/88 µs a layer instead of 74/89/102 (docs/perf.md).
#define FLASH_MIN_BLOCKS 3

// The attention dropout's keep decisions, made once by the forward (from the counter hash, as everywhere)
// and read by both backward kernels, which hashed every score again: in the buffer of the log-sum-exps,
// after the B·H·T of them (rounded up to an even count; Cuda.Attention.SavedElements), 64 bits for each
// query row (bh, q) and 64-key tile j: the 16 bits that lane t of the forward decided, keys 8n + 2t + e
// at bit 16t + 2n + e (a 16-bit store a lane, no shuffles). Rows past T are never written nor read.
static_assert(FLASH_TILE == 64, "a lane's keep bits of a row and tile are 16: 8 column tiles of 2 keys");
__device__ __forceinline__ uint16_t* flash_keep_bits(const float* lse, int B, int H, int T) {
    int64_t rows = (int64_t)B * H * T;
    return (uint16_t*)(lse + (rows + 1) / 2 * 2);
}
// the first of the four 16-bit parts of row (bh, q)'s word of key tile j
__device__ __forceinline__ int64_t flash_keep_at(int bh, int q, int j, int T) {
    return (((int64_t)bh * T + q) * ((T + FLASH_TILE - 1) / FLASH_TILE) + j) * 4;
}

typedef floatX FlashTile[FLASH_TILE][FLASH_LD];

// d += A·B on the warp's tensor cores: A 16×16 bf16 row-major, B 16×8 bf16 (k down a column), D 16×8
// float32. Fragments, as the PTX ISA documents them (lane = 4g + t; the lower-indexed element of a pair
// in a register's low 16 bits):
//   a[0] = A[g][2t, 2t+1]   a[1] = A[g+8][2t, 2t+1]   a[2] = A[g][2t+8, 2t+9]   a[3] = A[g+8][2t+8, 2t+9]
//   b[0] = B[2t, 2t+1][g]   b[1] = B[2t+8, 2t+9][g]
//   d[0], d[1] = D[g][2t, 2t+1]   d[2], d[3] = D[g+8][2t, 2t+1]
// The CUDA shim executes the same layout (tests/CudaShim/shim_runtime.cpp).
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#ifdef __CUDACC__
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    shim_mma_16x8x16(d, a, b);
#endif
}

// Two values rounded to bf16, lo in the low half: a register of an A or B fragment.
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    return (uint32_t)__bfloat16_as_ushort(__float2bfloat16(lo)) | ((uint32_t)__bfloat16_as_ushort(__float2bfloat16(hi)) << 16);
}

// r[j] = this lane's part of the 8 × 8 bf16 matrix j (j = 0 … 3) in shared memory whose rows the lanes
// 8j … 8j + 7 address (row: this lane's row, 16-byte aligned), as PTX's ldmatrix.x4 documents it: lane
// 4i + k gets row i's elements 2k and 2k + 1 or, transposed, column i's. One instruction where 32-bit
// and 16-bit loads of the same fragments took four to eight. The CUDA shim executes the same layout.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const floatX* row) {
#ifdef __CUDACC__
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"((unsigned int)__cvta_generic_to_shared(row)));
#else
    shim_ldmatrix_x4(r, row, false);
#endif
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const floatX* row) {
#ifdef __CUDACC__
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"((unsigned int)__cvta_generic_to_shared(row)));
#else
    shim_ldmatrix_x4(r, row, true);
#endif
}

// The row this lane addresses for the four 8 × 8 matrices (rows r0 …, r0 + 8 …) × (columns c0 …, c0 + 8 …),
// in that order: an A fragment of 16 rows and 16 columns, or B fragments of two 8-column tiles (trans).
__device__ __forceinline__ const floatX* flash_quad_row(const FlashTile tile, int r0, int c0) {
    int lane = threadIdx.x % WARP;
    return &tile[r0 + lane % 8 + 8 * (lane / 8 % 2)][c0 + 8 * (lane / 16)];
}

// The A fragments of a tile's rows r0 … r0 + 15 over the head's channels: a[kk] covers 16kk … 16kk + 15.
__device__ __forceinline__ void flash_row_fragments(uint32_t (&a)[FLASH_KSTEPS][4], const FlashTile tile, int r0, int d) {
#pragma unroll
    for (int kk = 0; kk < FLASH_KSTEPS; kk++) {
        if (16 * kk < d) ldmatrix_x4(a[kk], flash_quad_row(tile, r0, 16 * kk));   // d is the block's: uniform
        else a[kk][0] = a[kk][1] = a[kk][2] = a[kk][3] = 0u;
    }
}

// acc += rows · tile[n0 … n0 + 7]ᵀ over the head's channels: an 8-column slice of scores (Q·Kᵀ, dO·Vᵀ;
// transposed, K·Qᵀ and V·dOᵀ). B is the tile's rows n0 … n0 + 7 as they are stored: one ldmatrix takes
// 32 channels, B for two 16-channel steps.
__device__ __forceinline__ void flash_dot_rows(float (&acc)[4], const uint32_t (&rows)[FLASH_KSTEPS][4], const FlashTile tile, int n0, int d) {
    int lane = threadIdx.x % WARP;
#pragma unroll
    for (int kk = 0; kk < FLASH_KSTEPS; kk += 2) {
        if (16 * kk >= d) break;
        uint32_t b[4];
        ldmatrix_x4(b, &tile[n0 + lane % 8][16 * kk + 8 * (lane / 8)]);
        mma_16x8x16(acc, rows[kk], {b[0], b[1]});
        if (16 * (kk + 1) < d) mma_16x8x16(acc, rows[kk + 1], {b[2], b[3]});
    }
}

// acc[j] += a · tile[k0 … k0 + 15][8j … 8j + 7] for the head's column tiles j: probabilities (or dS) over
// 16 rows of the tile times those rows (P̃·V, dS·K, P̃ᵀ·dO, dSᵀ·Q). B runs down the tile's columns: one
// transposing ldmatrix takes 16 rows of 16 channels, B for two column tiles (d is a multiple of 16).
__device__ __forceinline__ void flash_times_rows(float (&acc)[FLASH_NTILES][4], const uint32_t (&a)[4], const FlashTile tile, int k0, int d) {
#pragma unroll
    for (int j = 0; j < FLASH_NTILES; j += 2) {
        if (8 * j >= d) break;
        uint32_t b[4];
        ldmatrix_x4_trans(b, flash_quad_row(tile, k0, 8 * j));
        mma_16x8x16(acc[j], a, {b[0], b[1]});
        mma_16x8x16(acc[j + 1], a, {b[2], b[3]});
    }
}

// out[0], out[1] = lo, hi rounded to bf16 with one 32-bit store (out 4-byte aligned: an even element of
// a row that starts so).
__device__ __forceinline__ void store_bf16x2(floatX* out, float lo, float hi) {
    shim_check_aligned4(out);
    *(uint32_t*)out = pack_bf16x2(lo, hi);
}

// An A fragment from two 8-column accumulators (columns 0 … 7 and 8 … 15 of 16 rows), rounded to bf16.
__device__ __forceinline__ void flash_accumulators_to_a(uint32_t (&a)[4], const float (&lo)[4], const float (&hi)[4]) {
    a[0] = pack_bf16x2(lo[0], lo[1]);
    a[1] = pack_bf16x2(lo[2], lo[3]);
    a[2] = pack_bf16x2(hi[0], hi[1]);
    a[3] = pack_bf16x2(hi[2], hi[3]);
}

// tile = rows r0 … r0 + 63 of one head's d channels of a [·, ld] tensor plus bias (0: none), rounded to
// bf16; 0 past row T and channel d. 128-bit loads and stores when the rows allow, all loads issued first.
// The caller waits before (the tile may still be read) and after (every warp reads all of it).
__device__ void flash_load_tile(FlashTile tile, const floatX* src, const float* bias, int64_t ld, int r0, int T, int d) {
    constexpr int ROW_PACKS = ATT_MAX_D / XPACK, PACKS = FLASH_TILE * ROW_PACKS, PER_THREAD = PACKS / ATT_THREADS;
    if (d % XPACK == 0 && aligned16(src) && (ld * (int64_t)sizeof(floatX)) % 16 == 0) {
        VecX<XPACK> v[PER_THREAD];
#pragma unroll
        for (int n = 0; n < PER_THREAD; n++) {
            int e = threadIdx.x + n * ATT_THREADS, r = e / ROW_PACKS, k = e % ROW_PACKS * XPACK;
            if (r0 + r < T && k < d) v[n] = load_x<XPACK>(src + (int64_t)(r0 + r) * ld + k);
        }
#pragma unroll
        for (int n = 0; n < PER_THREAD; n++) {
            int e = threadIdx.x + n * ATT_THREADS, r = e / ROW_PACKS, k = e % ROW_PACKS * XPACK;
            bool in = r0 + r < T && k < d;
#pragma unroll
            for (int j = 0; j < XPACK; j++) v[n].v[j] = in ? v[n].v[j] + (bias != 0 ? bias[k + j] : 0.0f) : 0.0f;
            store_x<XPACK>(&tile[r][k], v[n]);
        }
    } else {
        for (int e = threadIdx.x; e < FLASH_TILE * ATT_MAX_D; e += blockDim.x) {
            int r = e / ATT_MAX_D, k = e % ATT_MAX_D;
            float v = 0.0f;
            if (r0 + r < T && k < d) v = (float)src[(int64_t)(r0 + r) * ld + k] + (bias != 0 ? bias[k] : 0.0f);
            tile[r][k] = (floatX)v;
        }
    }
}

// The max and the sum over the four lanes of a quad (the lanes 4g … 4g + 3 that share rows g and g + 8).
__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// attention_forward_fused with FlashAttention-2's registers. A warp owns queries q0 + 16w … + 15; lane
// (g, t) holds rows g and g + 8 of them (r = 0, 1), and of each 8-key (or 8-channel) slice the columns
// 2t and 2t + 1. grid: (B·H, ceil(T / 64)); block: 128.
extern "C" __global__ void __launch_bounds__(ATT_THREADS, FLASH_MIN_BLOCKS) attention_forward_flash(floatX* ctx, float* lse, const floatX* qkv, const float* qkv_bias,
                                                   const float* key_mask, int B, int T, int C, int H, float scale, float p, unsigned int key) {
    __shared__ __align__(16) FlashTile kt, vt;
    __shared__ float kmask[FLASH_TILE];
    int d = C / H, bh = blockIdx.x, b = bh / H, h = bh % H, q0 = blockIdx.y * FLASH_ROWS;
    int warp = threadIdx.x / WARP, g = threadIdx.x % WARP / 4, t = threadIdx.x % 4;
    int64_t ld = 3 * (int64_t)C;
    const floatX* head = qkv + (int64_t)b * T * ld + (int64_t)h * d;
    const float* hbias = qkv_bias != 0 ? qkv_bias + h * d : 0;
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f, scale2 = scale * LOG2E;
    uint16_t* keep = flash_keep_bits(lse, B, H, T);

    uint32_t qa[FLASH_KSTEPS][4];                       // this warp's 16 queries, through kt
    flash_load_tile(kt, head, hbias, ld, q0, T, d);
    __syncthreads();
    flash_row_fragments(qa, kt, 16 * warp, d);
    float o[FLASH_NTILES][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};   // m: the running max of scale2 · score
#pragma unroll
    for (int j = 0; j < FLASH_NTILES; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;

    for (int k0 = 0; k0 < T; k0 += FLASH_TILE) {
        __syncthreads();                                // every warp is done with the previous tiles
        flash_load_tile(kt, head + C, hbias != 0 ? hbias + C : 0, ld, k0, T, d);
        flash_load_tile(vt, head + 2 * (int64_t)C, hbias != 0 ? hbias + 2 * C : 0, ld, k0, T, d);
        if (threadIdx.x < FLASH_TILE) kmask[threadIdx.x] = k0 + (int)threadIdx.x < T ? key_mask[(int64_t)b * T + k0 + threadIdx.x] : 0.0f;
        __syncthreads();
        unsigned int valid = 0;                         // bit 2n + e: this lane's key 8n + 2t + e of the tile is not masked
#pragma unroll
        for (int n = 0; n < FLASH_TILE / 8; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) valid |= (kmask[8 * n + 2 * t + e] != 0.0f ? 1u : 0u) << (2 * n + e);
        float s[FLASH_TILE / 8][4];                     // scores of the 64 keys, 8 at a time
#pragma unroll
        for (int n = 0; n < FLASH_TILE / 8; n++) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            flash_dot_rows(s[n], qa, kt, 8 * n, d);
        }
        // online softmax of rows g (r = 0: elements 0, 1) and g + 8 (r = 1: elements 2, 3)
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float mx = -INFINITY;
#pragma unroll
            for (int n = 0; n < FLASH_TILE / 8; n++)
#pragma unroll
                for (int e = 0; e < 2; e++)
                    if (valid & (1u << (2 * n + e))) mx = fmaxf(mx, s[n][2 * r + e]);
            float m_new = fmaxf(m[r], quad_max(mx) * scale2);  // scale2 > 0: the max of the scaled scores
            float corr = m[r] == -INFINITY ? 0.0f : exp2f(m[r] - m_new), sum = 0.0f;
            int query = q0 + 16 * warp + g + 8 * r;
            unsigned int keep_bits = 0;                 // bit 2n + e: key 8n + 2t + e kept
#pragma unroll
            for (int n = 0; n < FLASH_TILE / 8; n++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    int kj = 8 * n + 2 * t + e;
                    float pj = valid & (1u << (2 * n + e)) ? exp2f(fmaf(s[n][2 * r + e], scale2, -m_new)) : 0.0f;   // m_new is finite when any key is valid
                    sum += pj;
                    if (p > 0.0f) {
                        unsigned int index = (unsigned int)(((int64_t)bh * T + query) * T + k0 + kj);
                        bool kept = dropout_uniform(key, index) >= p;
                        pj = kept ? pj * keep_scale : 0.0f;
                        keep_bits |= (kept ? 1u : 0u) << (2 * n + e);
                    }
                    s[n][2 * r + e] = pj;
                }
            if (p > 0.0f && query < T) keep[flash_keep_at(bh, query, k0 / FLASH_TILE, T) + t] = (uint16_t)keep_bits;
            l[r] = l[r] * corr + quad_sum(sum);
            m[r] = m_new;
#pragma unroll
            for (int j = 0; j < FLASH_NTILES; j++) { o[j][2 * r] *= corr; o[j][2 * r + 1] *= corr; }
        }
        // O += P̃·V, 16 keys a step: the scores' accumulators of keys 16kk … 16kk + 15 are P̃'s A fragment
#pragma unroll
        for (int kk = 0; kk < FLASH_TILE / 16; kk++) {
            uint32_t pa[4];
            flash_accumulators_to_a(pa, s[2 * kk], s[2 * kk + 1]);
            flash_times_rows(o, pa, vt, 16 * kk, d);
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int query = q0 + 16 * warp + g + 8 * r;
        if (query >= T) continue;
        float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        floatX* out = ctx + ((int64_t)b * T + query) * C + (int64_t)h * d;
#pragma unroll
        for (int j = 0; j < FLASH_NTILES; j++)
            if (8 * j < d) store_bf16x2(&out[8 * j + 2 * t], o[j][2 * r] * inv, o[j][2 * r + 1] * inv);
        if (t == 0) lse[(int64_t)bh * T + query] = l[r] > 0.0f ? m[r] * LN2 + logf(l[r]) : INFINITY;
    }
}

// attention_backward_dq_fused with FlashAttention-2's registers: a warp's 16 queries' dQ accumulates in
// registers over the keys, 16 keys at a time (S and dP for 16 keys, then dS as the A fragment of dS·K).
// grid: (B·H, ceil(T / 64)); block: 128.
extern "C" __global__ void __launch_bounds__(ATT_THREADS, FLASH_MIN_BLOCKS) attention_backward_dq_flash(floatX* dqkv, const floatX* qkv, const float* qkv_bias, const floatX* dctx,
                                                       const float* lse, const float* dot, const float* key_mask, int B, int T, int C, int H,
                                                       float scale, float p, unsigned int key) {
    __shared__ __align__(16) FlashTile kt, vt;
    __shared__ float kmask[FLASH_TILE];
    int d = C / H, bh = blockIdx.x, b = bh / H, h = bh % H, q0 = blockIdx.y * FLASH_ROWS;
    int warp = threadIdx.x / WARP, g = threadIdx.x % WARP / 4, t = threadIdx.x % 4;
    int64_t ld = 3 * (int64_t)C;
    const floatX* head = qkv + (int64_t)b * T * ld + (int64_t)h * d;
    const float* hbias = qkv_bias != 0 ? qkv_bias + h * d : 0;
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    const uint16_t* keep = flash_keep_bits(lse, B, H, T);

    uint32_t qa[FLASH_KSTEPS][4], da[FLASH_KSTEPS][4];  // this warp's queries and their dO, through kt and vt
    flash_load_tile(kt, head, hbias, ld, q0, T, d);
    flash_load_tile(vt, dctx + (int64_t)b * T * C + (int64_t)h * d, (const float*)0, C, q0, T, d);
    __syncthreads();
    flash_row_fragments(qa, kt, 16 * warp, d);
    flash_row_fragments(da, vt, 16 * warp, d);
    float row_lse[2], row_dot[2], dq[FLASH_NTILES][4], scale2 = scale * LOG2E;   // row_lse: log2(e) · lse
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int query = q0 + 16 * warp + g + 8 * r;
        row_lse[r] = query < T ? lse[(int64_t)bh * T + query] * LOG2E : INFINITY;
        row_dot[r] = query < T ? dot[(int64_t)bh * T + query] : 0.0f;
    }
#pragma unroll
    for (int j = 0; j < FLASH_NTILES; j++) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0.0f;

    for (int k0 = 0; k0 < T; k0 += FLASH_TILE) {
        __syncthreads();                                // every warp is done with the previous tiles
        flash_load_tile(kt, head + C, hbias != 0 ? hbias + C : 0, ld, k0, T, d);
        flash_load_tile(vt, head + 2 * (int64_t)C, hbias != 0 ? hbias + 2 * C : 0, ld, k0, T, d);
        if (threadIdx.x < FLASH_TILE) kmask[threadIdx.x] = k0 + (int)threadIdx.x < T ? key_mask[(int64_t)b * T + k0 + threadIdx.x] : 0.0f;
        unsigned int keep_bits[2] = {0, 0};             // this lane's part of its rows' keep bits, as the forward's lane t wrote them
        if (p > 0.0f)
#pragma unroll
            for (int r = 0; r < 2; r++) {
                int query = q0 + 16 * warp + g + 8 * r;
                if (query < T) keep_bits[r] = keep[flash_keep_at(bh, query, k0 / FLASH_TILE, T) + t];
            }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < FLASH_TILE / 16; kk++) {
            float s[2][4], dp[2][4];
#pragma unroll
            for (int n = 0; n < 2; n++) {
                s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
                dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.0f;
                flash_dot_rows(s[n], qa, kt, 16 * kk + 8 * n, d);
                flash_dot_rows(dp[n], da, vt, 16 * kk + 8 * n, d);
            }
#pragma unroll
            for (int n = 0; n < 2; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    int r = i / 2, kj = 16 * kk + 8 * n + 2 * t + i % 2;
                    float pij = kmask[kj] != 0.0f ? exp2f(fmaf(s[n][i], scale2, -row_lse[r])) : 0.0f;
                    float dpv = dp[n][i];
                    if (p > 0.0f) dpv = keep_bits[r] >> (2 * (2 * kk + n) + i % 2) & 1u ? dpv * keep_scale : 0.0f;   // key 8(2kk + n) + 2t + i % 2
                    s[n][i] = pij * (dpv - row_dot[r]) * scale;                           // dS
                }
            uint32_t dsa[4];
            flash_accumulators_to_a(dsa, s[0], s[1]);
            flash_times_rows(dq, dsa, kt, 16 * kk, d);
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int query = q0 + 16 * warp + g + 8 * r;
        if (query >= T) continue;
        floatX* out = dqkv + ((int64_t)b * T + query) * ld + (int64_t)h * d;
#pragma unroll
        for (int j = 0; j < FLASH_NTILES; j++)
            if (8 * j < d) store_bf16x2(&out[8 * j + 2 * t], dq[j][2 * r], dq[j][2 * r + 1]);
    }
}

// attention_backward_dkv_fused with FlashAttention-2's registers, transposed: a warp owns 16 keys and
// computes Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ for 16 queries at a time, whose accumulators, turned into P̃ᵀ and
// dSᵀ, are the A fragments of dV += P̃ᵀ·dO and dK += dSᵀ·Q. grid: (B·H, ceil(T / 64)); block: 128.
extern "C" __global__ void __launch_bounds__(ATT_THREADS, FLASH_MIN_BLOCKS) attention_backward_dkv_flash(floatX* dqkv, const floatX* qkv, const float* qkv_bias, const floatX* dctx,
                                                        const float* lse, const float* dot, const float* key_mask, int B, int T, int C, int H,
                                                        float scale, float p, unsigned int key) {
    __shared__ __align__(16) FlashTile qt, ot;
    __shared__ float qlse[FLASH_TILE], qdot[FLASH_TILE];
    __shared__ __align__(8) uint16_t qkeep[4 * FLASH_TILE];   // the query tile's keep bits for this block's 64 keys
    int d = C / H, bh = blockIdx.x, b = bh / H, h = bh % H, k0 = blockIdx.y * FLASH_ROWS;
    int warp = threadIdx.x / WARP, g = threadIdx.x % WARP / 4, t = threadIdx.x % 4;
    int64_t ld = 3 * (int64_t)C;
    const floatX* head = qkv + (int64_t)b * T * ld + (int64_t)h * d;
    const floatX* dctx_head = dctx + (int64_t)b * T * C + (int64_t)h * d;
    const float* hbias = qkv_bias != 0 ? qkv_bias + h * d : 0;
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f, scale2 = scale * LOG2E;
    const uint16_t* keep = flash_keep_bits(lse, B, H, T);

    uint32_t ka[FLASH_KSTEPS][4], va[FLASH_KSTEPS][4];  // this warp's keys and values, through qt and ot
    flash_load_tile(qt, head + C, hbias != 0 ? hbias + C : 0, ld, k0, T, d);
    flash_load_tile(ot, head + 2 * (int64_t)C, hbias != 0 ? hbias + 2 * C : 0, ld, k0, T, d);
    __syncthreads();
    flash_row_fragments(ka, qt, 16 * warp, d);
    flash_row_fragments(va, ot, 16 * warp, d);
    bool key_valid[2];
    float dk[FLASH_NTILES][4], dv[FLASH_NTILES][4];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int kj = k0 + 16 * warp + g + 8 * r;
        key_valid[r] = kj < T && key_mask[(int64_t)b * T + kj] != 0.0f;
    }
#pragma unroll
    for (int j = 0; j < FLASH_NTILES; j++)
#pragma unroll
        for (int i = 0; i < 4; i++) dk[j][i] = dv[j][i] = 0.0f;

    for (int i0 = 0; i0 < T; i0 += FLASH_TILE) {
        __syncthreads();                                // every warp is done with the previous tiles
        flash_load_tile(qt, head, hbias, ld, i0, T, d);
        flash_load_tile(ot, dctx_head, (const float*)0, C, i0, T, d);
        if (threadIdx.x < FLASH_TILE) {
            int i = i0 + threadIdx.x;
            qlse[threadIdx.x] = i < T ? lse[(int64_t)bh * T + i] * LOG2E : INFINITY;   // log2(e) · lse; past T: probability 0
            qdot[threadIdx.x] = i < T ? dot[(int64_t)bh * T + i] : 0.0f;
            if (p > 0.0f) *(uint64_t*)&qkeep[4 * threadIdx.x] = i < T ? *(const uint64_t*)(keep + flash_keep_at(bh, i, k0 / FLASH_TILE, T)) : 0;
        }
        __syncthreads();
#pragma unroll
        for (int qq = 0; qq < FLASH_TILE / 16; qq++) {
            float s[2][4], dp[2][4];                        // [key][query]: rows = this warp's keys
#pragma unroll
            for (int n = 0; n < 2; n++) {
                s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
                dp[n][0] = dp[n][1] = dp[n][2] = dp[n][3] = 0.0f;
                flash_dot_rows(s[n], ka, qt, 16 * qq + 8 * n, d);
                flash_dot_rows(dp[n], va, ot, 16 * qq + 8 * n, d);
            }
            float pt[2][4];
#pragma unroll
            for (int n = 0; n < 2; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    int r = i / 2, qi = 16 * qq + 8 * n + 2 * t + i % 2;
                    float pij = key_valid[r] ? exp2f(fmaf(s[n][i], scale2, -qlse[qi])) : 0.0f;
                    float pdrop = pij, dpv = dp[n][i];
                    if (p > 0.0f) {
                        // key 16·warp + g + 8r of the tile = 8(2·warp + r) + 2(g / 2) + g % 2: the forward's lane g / 2 kept it
                        bool kept = qkeep[4 * qi + g / 2] >> (4 * warp + 2 * r + g % 2) & 1u;
                        pdrop = kept ? pij * keep_scale : 0.0f;
                        dpv = kept ? dpv * keep_scale : 0.0f;
                    }
                    pt[n][i] = pdrop;
                    s[n][i] = pij * (dpv - qdot[qi]) * scale;                              // dSᵀ
                }
            uint32_t pa[4], dsa[4];
            flash_accumulators_to_a(pa, pt[0], pt[1]);
            flash_accumulators_to_a(dsa, s[0], s[1]);
            flash_times_rows(dv, pa, ot, 16 * qq, d);
            flash_times_rows(dk, dsa, qt, 16 * qq, d);
        }
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int kj = k0 + 16 * warp + g + 8 * r;
        if (kj >= T) continue;
        floatX* out = dqkv + ((int64_t)b * T + kj) * ld + (int64_t)h * d + C;
#pragma unroll
        for (int j = 0; j < FLASH_NTILES; j++)
            if (8 * j < d) {
                store_bf16x2(&out[8 * j + 2 * t], dk[j][2 * r], dk[j][2 * r + 1]);
                store_bf16x2(&out[C + 8 * j + 2 * t], dv[j][2 * r], dv[j][2 * r + 1]);
            }
    }
}
