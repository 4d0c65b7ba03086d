// layernorm.cuh: LayerNorm.Forward, LayerNorm.DropoutResidualForward and LayerNorm.Backward
// (src/Kernels/Cpu/LayerNorm.cs). The forward fuses a post-LN block's dropout and residual add.
#pragma once
#include "common.cuh"

// v under the dropout of element (row, c) of an [N, C] tensor: Cpu.Dropout's mask at flat index row·C + c.
// The forward drops the residual branch; the backward its gradient, and the embeddings' dy.
__device__ __forceinline__ float layernorm_dropout(float v, unsigned int key, int row, int C, int c, float p, float scale) {
    return dropout_hash(key, (unsigned int)row * (unsigned int)C + (unsigned int)c) >> 8 >= dropout_threshold(p) ? v * scale : 0.0f;
}

// One row of layernorm_forward, W columns at a time (W = XPACK: 128-bit packs; W = 1: one by one).
// Each thread reads back only what it wrote.
template <int W>
__device__ void layernorm_forward_row(floatX* out, floatX* s, float* mean_out, float* rstd_out, const floatX* xr, const float* bias,
                                      const floatX* rr, const float* gamma, const float* beta, int row, int C, float eps, float p,
                                      unsigned int key) {
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    float local = 0.0f;
    for (int c = threadIdx.x * W; c < C; c += blockDim.x * W) {
        VecX<W> v = load_x<W>(xr + c), r;
        if (rr != 0) r = load_x<W>(rr + c);
#pragma unroll
        for (int j = 0; j < W; j++) {
            float e = v.v[j];
            if (bias != 0) e += bias[c + j];
            if (p > 0.0f) e = layernorm_dropout(e, key, row, C, c + j, p, scale);
            if (rr != 0) e += r.v[j];
            v.v[j] = round_x(e);   // the statistics of the sum as stored (bf16: rounded)
            local += v.v[j];
        }
        if (s != 0) store_x<W>(s + c, v);
    }
    float mean = block_sum(local) / C;
    const floatX* src = s != 0 ? s : xr;
    local = 0.0f;
    for (int c = threadIdx.x * W; c < C; c += blockDim.x * W) {
        VecX<W> v = load_x<W>(src + c);
#pragma unroll
        for (int j = 0; j < W; j++) { float d = v.v[j] - mean; local += d * d; }
    }
    float var = block_sum(local) / C;
    float rstd = 1.0f / sqrtf(var + eps);
    for (int c = threadIdx.x * W; c < C; c += blockDim.x * W) {
        VecX<W> v = load_x<W>(src + c);
#pragma unroll
        for (int j = 0; j < W; j++) v.v[j] = fmaf((v.v[j] - mean) * rstd, gamma[c + j], beta[c + j]);
        store_x<W>(out + c, v);
    }
    if (threadIdx.x == 0) { mean_out[row] = mean; rstd_out[row] = rstd; }
}

// sum = residual + dropout(x + bias); out = LN(sum). residual 0: sum is x (LayerNorm.Forward); p = 0: no
// dropout; bias 0: none (the bias of the linear layer before, applied here instead of in a pass of its
// own); sum_out may be 0 when sum is x itself. In 128-bit packs when C is a whole number of them and
// the activations are aligned. grid: N blocks (one row each); block: multiple of 32.
extern "C" __global__ void layernorm_forward(floatX* out, floatX* sum_out, float* mean_out, float* rstd_out,
                                             const floatX* x, const float* bias, const floatX* residual, const float* gamma,
                                             const float* beta, int N, int C, float eps, float p, unsigned int key) {
    int64_t base = (int64_t)blockIdx.x * C;
    floatX* s = sum_out != 0 ? sum_out + base : 0;
    const floatX* rr = residual != 0 ? residual + base : 0;
    bool packed = C % XPACK == 0 && aligned16(x) && aligned16(out) && aligned16(sum_out) && aligned16(residual);   // 0 is aligned
    if (packed) layernorm_forward_row<XPACK>(out + base, s, mean_out, rstd_out, x + base, bias, rr, gamma, beta, blockIdx.x, C, eps, p, key);
    else layernorm_forward_row<1>(out + base, s, mean_out, rstd_out, x + base, bias, rr, gamma, beta, blockIdx.x, C, eps, p, key);
}

// layernorm_forward with a warp per row and the row in its registers, for rows of at most LN_WARP_COLS · 32
// columns in 128-bit packs: lane l holds packs l, l + 32, … (P of them), so the row is read once, the
// sums are shuffles, and no barrier stops the block. On bert-base's rows the block-per-row kernel above
// measured 24 us a launch on an H200 (ncu, caches flushed), where moving its 25 MB (x, residual, sum, out in
// bf16) takes 5.2 us at the data sheet's 4.8 TB/s: three passes, two block sums
// of four barriers, 96 of 128 threads busy. The same sums, in another order. grid: ceil(N / warps per
// block); block: a multiple of 32. The launcher takes it when every activation pointer is 16-byte
// aligned and C is a whole number of packs.
#define LN_WARP_COLS 32

// p[0 … W − 1] as floats: float4 loads when aligned (parameters are views into one array, so a tensor
// may start anywhere), else one by one.
template <int W>
__device__ __forceinline__ VecX<W> load_f_any(const float* p, bool aligned) {
    if (aligned) return load_f<W>(p);
    VecX<W> r;
#pragma unroll
    for (int j = 0; j < W; j++) r.v[j] = p[j];
    return r;
}

template <int P>
__device__ void layernorm_forward_warp_row(floatX* out, floatX* sum_out, float* mean_out, float* rstd_out, const floatX* x,
                                           const float* bias, const floatX* residual, const float* gamma, const float* beta, int row,
                                           int C, float eps, float p, unsigned int key) {
    int lane = threadIdx.x % WARP;
    int64_t base = (int64_t)row * C;
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    bool params_aligned = aligned16(bias) && aligned16(gamma) && aligned16(beta);
    // every load of the row first, kept as stored, so all of them are in flight at once (a store between
    // them would order them: sum_out may alias x as far as the compiler knows)
    PackX xs[P], rs[P];
#pragma unroll
    for (int k = 0; k < P; k++) {
        int c = (lane + k * WARP) * XPACK;
        if (c < C) {
            xs[k] = load_columns_pack(x + base + c, c, C, true);
            if (residual != 0) rs[k] = load_columns_pack(residual + base + c, c, C, true);
        }
    }
    // xs[k] becomes the sum as stored (bf16: rounded), which the statistics are of: packed, it holds the
    // row in half the registers. __launch_bounds__(128, 8) caps them at 64, so 32 warps an SM fit and
    // bert-base's 4096 rows run in one wave, not 1.29; ptxas then spills a little (bf16: 134 bytes, most of
    // it on the 1024-column path). Measured on an H200 (ncu, one launch, the card's clocks): 21.5 -> 19.5 us.
    float local = 0.0f;
#pragma unroll
    for (int k = 0; k < P; k++) {
        int c = (lane + k * WARP) * XPACK;
        if (c < C) {
            VecX<XPACK> v = unpack(xs[k]), r, b;
            if (residual != 0) r = unpack(rs[k]);
            if (bias != 0) b = load_f_any<XPACK>(bias + c, params_aligned);
#pragma unroll
            for (int j = 0; j < XPACK; j++) {
                float e = v.v[j];
                if (bias != 0) e += b.v[j];
                if (p > 0.0f) e = layernorm_dropout(e, key, row, C, c + j, p, scale);
                if (residual != 0) e += r.v[j];
                v.v[j] = e;
            }
            xs[k] = pack_x(v);
            v = unpack(xs[k]);
#pragma unroll
            for (int j = 0; j < XPACK; j++) local += v.v[j];
            if (sum_out != 0) *(PackX*)(sum_out + base + c) = xs[k];   // 16-byte aligned: WarpRows checked sum_out
        }
    }
    float mean = warp_sum(local) / C;
    local = 0.0f;
#pragma unroll
    for (int k = 0; k < P; k++)
        if ((lane + k * WARP) * XPACK < C) {
            VecX<XPACK> v = unpack(xs[k]);
#pragma unroll
            for (int j = 0; j < XPACK; j++) { float d = v.v[j] - mean; local += d * d; }
        }
    float rstd = 1.0f / sqrtf(warp_sum(local) / C + eps);
#pragma unroll
    for (int k = 0; k < P; k++) {
        int c = (lane + k * WARP) * XPACK;
        if (c < C) {
            VecX<XPACK> v = unpack(xs[k]), g = load_f_any<XPACK>(gamma + c, params_aligned), b = load_f_any<XPACK>(beta + c, params_aligned);
#pragma unroll
            for (int j = 0; j < XPACK; j++) v.v[j] = fmaf((v.v[j] - mean) * rstd, g.v[j], b.v[j]);
            store_x<XPACK>(out + base + c, v);
        }
    }
    if (lane == 0) { mean_out[row] = mean; rstd_out[row] = rstd; }
}

extern "C" __global__ void __launch_bounds__(128, 8) layernorm_forward_warp(floatX* out, floatX* sum_out, float* mean_out, float* rstd_out, const floatX* x,
                                                  const float* bias, const floatX* residual, const float* gamma, const float* beta, int N,
                                                  int C, float eps, float p, unsigned int key) {
    int row = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (row >= N) return;   // the whole warp: no barrier below
    switch ((C / XPACK + WARP - 1) / WARP) {   // packs a lane holds, at most LN_WARP_COLS / XPACK
#define LN_FORWARD_WARP_CASE(P) \
    case P:                                                                                                                    \
        if constexpr (P * XPACK <= LN_WARP_COLS)                                                                               \
            layernorm_forward_warp_row<P>(out, sum_out, mean_out, rstd_out, x, bias, residual, gamma, beta, row, C, eps, p, key); \
        break;
        LN_FORWARD_WARP_CASE(1) LN_FORWARD_WARP_CASE(2) LN_FORWARD_WARP_CASE(3) LN_FORWARD_WARP_CASE(4)
        LN_FORWARD_WARP_CASE(5) LN_FORWARD_WARP_CASE(6) LN_FORWARD_WARP_CASE(7) LN_FORWARD_WARP_CASE(8)   // 5 to 8: float32's packs
#undef LN_FORWARD_WARP_CASE
    }
}

// The whole backward in one pass over dy and x: dx (+)= rstd · (g − mean(g) − x̂ · mean(g·x̂)), g = dy·γ,
// row by row, and for the block's chunk of LN_ROWS rows partial[chunk][0][c] = Σ dy·x̂, partial[chunk][1][c]
// = Σ dy, rows in order (add_chunk_partials then sums the chunks in order: deterministic). Thread t owns
// LN_COLS_PER_THREAD columns, W adjacent ones at (t + k·blockDim)·W (W = XPACK: 128-bit packs; W = 1:
// one by one), so dγ and dβ stay in its registers. Two dropouts of the encoder are fused in, each a pass
// over [N, C] less (p > 0; the mask of element (row, c) is the CPU's, flat index row·C + c):
//  - dropout_dy: dy is the gradient of a dropout that followed the LayerNorm (the embeddings'), masked as read;
//  - dx_dropped (not 0): also dx_dropped = dropout's backward of dx, the gradient of a residual branch under
//    the dropout that layernorm_forward applied to it.
// With branch_sums, partial[chunk][2][c] = Σ of the branch's gradient (dx_dropped, or this LayerNorm's
// gradient without dropout, not counting what dx held when accumulating):
// the bias gradient of the linear layer whose bias layernorm_forward added, with no pass of its own.
// grid: ceil(N / LN_ROWS) blocks; block: a multiple of 32, at least C / LN_COLS_PER_THREAD threads.
#define LN_ROWS 8
#define LN_COLS_PER_THREAD 8

// dy[row, c … c + W − 1], masked by dropout when dropout_dy
template <int W>
__device__ __forceinline__ VecX<W> layernorm_load_dy(const floatX* dyr, int row, int C, int c, bool dropout_dy, float p, float scale,
                                                    unsigned int key) {
    VecX<W> d = load_x<W>(dyr + c);
    if (dropout_dy)
#pragma unroll
        for (int j = 0; j < W; j++)
            d.v[j] = layernorm_dropout(d.v[j], key, row, C, c + j, p, scale);
    return d;
}

template <int W>
__device__ void layernorm_backward_rows(floatX* dx, floatX* dx_dropped, float* partial, const floatX* dy, const floatX* x, const float* mean,
                                        const float* rstd, const float* gamma, int N, int C, int accumulate, float p, unsigned int key,
                                        bool dropout_dy, bool branch_sums) {
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    float dg[LN_COLS_PER_THREAD], db[LN_COLS_PER_THREAD], dbranch[LN_COLS_PER_THREAD];
#pragma unroll
    for (int e = 0; e < LN_COLS_PER_THREAD; e++) { dg[e] = 0.0f; db[e] = 0.0f; dbranch[e] = 0.0f; }
    int r0 = blockIdx.x * LN_ROWS, r1 = min(N, r0 + LN_ROWS);
    for (int row = r0; row < r1; row++) {   // the same rows for every thread: the block sums stay uniform
        const floatX* dyr = dy + (int64_t)row * C;
        const floatX* xr = x + (int64_t)row * C;
        float mu = mean[row], rs = rstd[row];
        float sg = 0.0f, sgx = 0.0f;
#pragma unroll
        for (int k = 0; k < LN_COLS_PER_THREAD / W; k++) {
            int c = (threadIdx.x + k * blockDim.x) * W;
            if (c < C) {
                VecX<W> d = layernorm_load_dy<W>(dyr, row, C, c, dropout_dy, p, scale, key), xv = load_x<W>(xr + c);
#pragma unroll
                for (int j = 0; j < W; j++) {
                    float xhat = (xv.v[j] - mu) * rs, g = d.v[j] * gamma[c + j];
                    sg += g; sgx += g * xhat;
                    dg[k * W + j] = fmaf(d.v[j], xhat, dg[k * W + j]); db[k * W + j] += d.v[j];
                }
            }
        }
        float mean_g = block_sum(sg) / C;
        float mean_gx = block_sum(sgx) / C;
#pragma unroll
        for (int k = 0; k < LN_COLS_PER_THREAD / W; k++) {
            int c = (threadIdx.x + k * blockDim.x) * W;
            if (c < C) {
                VecX<W> d = layernorm_load_dy<W>(dyr, row, C, c, dropout_dy, p, scale, key), xv = load_x<W>(xr + c), grad, out;
                floatX* dxr = dx + (int64_t)row * C + c;
                if (accumulate) out = load_x<W>(dxr);
#pragma unroll
                for (int j = 0; j < W; j++) {
                    float g = d.v[j] * gamma[c + j], xhat = (xv.v[j] - mu) * rs;
                    grad.v[j] = rs * (g - mean_g - xhat * mean_gx);   // this LayerNorm's own gradient
                    out.v[j] = accumulate ? out.v[j] + grad.v[j] : grad.v[j];
                }
                store_x<W>(dxr, out);
                if (dx_dropped != 0) {   // the branch's gradient: this LayerNorm's, not what dx held before
#pragma unroll
                    for (int j = 0; j < W; j++)
                        grad.v[j] = layernorm_dropout(grad.v[j], key, row, C, c + j, p, scale);
                    store_x<W>(dx_dropped + (int64_t)row * C + c, grad);
                }
#pragma unroll
                for (int j = 0; j < W; j++) dbranch[k * W + j] += grad.v[j];
            }
        }
    }
    float* pg = partial + (int64_t)blockIdx.x * (branch_sums ? 3 : 2) * C;
#pragma unroll
    for (int k = 0; k < LN_COLS_PER_THREAD / W; k++) {
        int c = (threadIdx.x + k * blockDim.x) * W;
        if (c < C)
#pragma unroll
            for (int j = 0; j < W; j++) {
                pg[c + j] = dg[k * W + j];
                pg[C + c + j] = db[k * W + j];
                if (branch_sums) pg[2 * C + c + j] = dbranch[k * W + j];
            }
    }
}

extern "C" __global__ void layernorm_backward(floatX* dx, floatX* dx_dropped, float* partial, const floatX* dy, const floatX* x,
                                              const float* mean, const float* rstd, const float* gamma, int N, int C, int accumulate,
                                              float p, unsigned int key, int dropout_dy, int branch_sums) {
    bool on_dy = dropout_dy != 0 && p > 0.0f;
    if (p <= 0.0f) dx_dropped = 0;
    if (C % XPACK == 0 && aligned16(dx) && aligned16(dx_dropped) && aligned16(dy) && aligned16(x))
        layernorm_backward_rows<XPACK>(dx, dx_dropped, partial, dy, x, mean, rstd, gamma, N, C, accumulate, p, key, on_dy, branch_sums != 0);
    else
        layernorm_backward_rows<1>(dx, dx_dropped, partial, dy, x, mean, rstd, gamma, N, C, accumulate, p, key, on_dy, branch_sums != 0);
}

// layernorm_backward with a warp per row and the row in its registers, for rows of at most LN_WARP_COLS · 32
// columns in 128-bit packs (lane l holds packs l, l + 32, …, as layernorm_forward_warp). A block of LN_WARPS
// warps takes a chunk of LN_ROWS rows, as layernorm_backward does, warp w its rows r0 + w, r0 + w + LN_WARPS, …;
// a lane adds dγ, dβ and the branch sums of its columns over its rows in its warp's part of shared memory
// (its first row stores them, so nothing is zeroed but a warp without rows; ln_slot lays them out without
// bank conflicts), and the block adds the warps' sums in warp order: the same partial[chunk], summed in
// another fixed order.
// Why so: on bert-base's rows the block-per-row kernel measured 41 us a launch on an H200 (each block took its
// 16 rows one after another, four barriers a row, 8 warps an SM). This kernel with the sums in registers
// measured 23.6 us (ncu, the card's clocks) at 12% of the DRAM bandwidth: 256 blocks of 16 rows held 7.75
// warps an SM, each taking 4 rows one after another, and the sums' 72 registers (208 in all) left no room
// for more. With them in shared memory (48 KB a block) and 8-row chunks: 512 blocks, 4 an SM in registers
// (__launch_bounds__) and in shared memory, so all are resident at once, 15.5 warps an SM of 2 rows each.
// grid: ceil(N / LN_ROWS); block: LN_WARPS · 32.
#define LN_WARPS 4

// Where a warp's sum of column c sits in its shared section: lane l's pack k as XPACK / 4 runs of four
// floats, run h of every lane side by side, so that a warp's 128-bit accesses to a run cover 512 contiguous
// bytes (column order, lanes 32 bytes apart, made every bf16 access a two-way bank conflict). float32's
// packs are one run: there it is column order.
__device__ __forceinline__ int ln_slot(int k, int lane, int j) { return ((k * (XPACK / 4) + j / 4) * WARP + lane) * 4 + j % 4; }
__device__ __forceinline__ int ln_slot_of_column(int c) { int pack = c / XPACK; return ln_slot(pack / WARP, pack % WARP, c % XPACK); }

// section's runs of this lane's pack k (=)+ a · b (PRODUCT, as fmaf) or a: the row's first stores, the others add
template <bool PRODUCT>
__device__ __forceinline__ void ln_add_pack(float* section, int k, int lane, const float* a, const float* b, bool first) {
#pragma unroll
    for (int h = 0; h < XPACK / 4; h++) {
        float4* run = (float4*)(section + ln_slot(k, lane, 4 * h));
        float4 was = first ? float4{0.0f, 0.0f, 0.0f, 0.0f} : *run;
        float o[4] = {was.x, was.y, was.z, was.w};
#pragma unroll
        for (int e = 0; e < 4; e++) o[e] = PRODUCT ? fmaf(a[4 * h + e], b[4 * h + e], o[e]) : o[e] + a[4 * h + e];
        *run = float4{o[0], o[1], o[2], o[3]};
    }
}

template <int P>
__device__ void layernorm_backward_warp_rows(float (*sums)[3][LN_WARP_COLS * WARP], floatX* dx, floatX* dx_dropped, float* partial,
                                             const floatX* dy, const floatX* x, const float* mean, const float* rstd, const float* gamma,
                                             int N, int C, int accumulate, float p, unsigned int key, bool dropout_dy, bool branch_sums) {
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP;
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    bool gamma_aligned = aligned16(gamma);
    float (*mine)[LN_WARP_COLS * WARP] = sums[warp];   // [dγ, dβ, branch][ln_slot]: this lane's slots are its own
    int sections = branch_sums ? 3 : 2;
    int r0 = blockIdx.x * LN_ROWS, r1 = min(N, r0 + LN_ROWS);
    if (r0 + warp >= r1)   // a warp without rows adds zeros to the block's sums (a warp with rows stores its first)
#pragma unroll
        for (int k = 0; k < P; k++)
            if ((lane + k * WARP) * XPACK < C)
                for (int q = 0; q < sections; q++)
#pragma unroll
                    for (int j = 0; j < XPACK; j++) mine[q][ln_slot(k, lane, j)] = 0.0f;
    for (int row = r0 + warp; row < r1; row += LN_WARPS) {   // the whole warp: its shuffles stay whole
        int64_t base = (int64_t)row * C;
        bool first = row == r0 + warp;
        float mu = mean[row], rs = rstd[row];
        VecX<XPACK> g[P], xhat[P];   // g = dy·γ (dy masked when dropout_dy) and x̂
        float sg = 0.0f, sgx = 0.0f;
#pragma unroll
        for (int k = 0; k < P; k++) {
            int c = (lane + k * WARP) * XPACK;
            if (c < C) {
                VecX<XPACK> d = layernorm_load_dy<XPACK>(dy + base, row, C, c, dropout_dy, p, scale, key), xv = load_x<XPACK>(x + base + c);
                VecX<XPACK> gm = load_f_any<XPACK>(gamma + c, gamma_aligned);
#pragma unroll
                for (int j = 0; j < XPACK; j++) {
                    xhat[k].v[j] = (xv.v[j] - mu) * rs;
                    g[k].v[j] = d.v[j] * gm.v[j];
                    sg += g[k].v[j]; sgx += g[k].v[j] * xhat[k].v[j];
                }
                ln_add_pack<true>(mine[0], k, lane, d.v, xhat[k].v, first);    // dγ += dy·x̂
                ln_add_pack<false>(mine[1], k, lane, d.v, d.v, first);         // dβ += dy
            }
        }
        float mean_g = warp_sum(sg) / C;
        float mean_gx = warp_sum(sgx) / C;
#pragma unroll
        for (int k = 0; k < P; k++) {
            int c = (lane + k * WARP) * XPACK;
            if (c < C) {
                VecX<XPACK> grad, out;
                if (accumulate) out = load_x<XPACK>(dx + base + c);
#pragma unroll
                for (int j = 0; j < XPACK; j++) {
                    grad.v[j] = rs * (g[k].v[j] - mean_g - xhat[k].v[j] * mean_gx);   // this LayerNorm's own gradient
                    out.v[j] = accumulate ? out.v[j] + grad.v[j] : grad.v[j];
                }
                store_x<XPACK>(dx + base + c, out);
                if (dx_dropped != 0) {   // the branch's gradient: this LayerNorm's, not what dx held before
#pragma unroll
                    for (int j = 0; j < XPACK; j++)
                        grad.v[j] = layernorm_dropout(grad.v[j], key, row, C, c + j, p, scale);
                    store_x<XPACK>(dx_dropped + base + c, grad);
                }
                if (branch_sums) ln_add_pack<false>(mine[2], k, lane, grad.v, grad.v, first);
            }
        }
    }
    // partial[chunk][q][c] = Σ over the warps, in order, of their sums q (dγ, dβ, the branch's)
    __syncthreads();
    float* pg = partial + (int64_t)blockIdx.x * sections * C;
    for (int q = 0; q < sections; q++)
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            float total = 0.0f;
            int slot = ln_slot_of_column(c);
#pragma unroll
            for (int w = 0; w < LN_WARPS; w++) total += sums[w][q][slot];
            pg[(int64_t)q * C + c] = total;
        }
}

extern "C" __global__ void __launch_bounds__(LN_WARPS * WARP, 4) layernorm_backward_warp(floatX* dx, floatX* dx_dropped, float* partial,
                                                   const floatX* dy, const floatX* x, const float* mean, const float* rstd, const float* gamma,
                                                   int N, int C, int accumulate, float p, unsigned int key, int dropout_dy, int branch_sums) {
    __shared__ __align__(16) float sums[LN_WARPS][3][LN_WARP_COLS * WARP];   // 48 KB: four blocks an SM
    bool on_dy = dropout_dy != 0 && p > 0.0f;
    if (p <= 0.0f) dx_dropped = 0;
    switch ((C / XPACK + WARP - 1) / WARP) {   // packs a lane holds, at most LN_WARP_COLS / XPACK
#define LN_BACKWARD_WARP_CASE(P)                                                                                                       \
    case P:                                                                                                                            \
        if constexpr (P * XPACK <= LN_WARP_COLS)                                                                                       \
            layernorm_backward_warp_rows<P>(sums, dx, dx_dropped, partial, dy, x, mean, rstd, gamma, N, C, accumulate, p, key, on_dy,      \
                                        branch_sums != 0);                                                                             \
        break;
        LN_BACKWARD_WARP_CASE(1) LN_BACKWARD_WARP_CASE(2) LN_BACKWARD_WARP_CASE(3) LN_BACKWARD_WARP_CASE(4)
        LN_BACKWARD_WARP_CASE(5) LN_BACKWARD_WARP_CASE(6) LN_BACKWARD_WARP_CASE(7) LN_BACKWARD_WARP_CASE(8)   // 5 to 8: float32's packs
#undef LN_BACKWARD_WARP_CASE
    }
}
