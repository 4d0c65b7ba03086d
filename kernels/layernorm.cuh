// layernorm.cuh: LayerNorm.Forward, LayerNorm.DropoutResidualForward and LayerNorm.Backward
// (src/Kernels/Cpu/LayerNorm.cs). The forward fuses a post-LN block's dropout and residual add.
#pragma once
#include "common.cuh"

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
            if (p > 0.0f) e = dropout_uniform(key, (unsigned int)row * (unsigned int)C + (unsigned int)(c + j)) >= p ? e * scale : 0.0f;
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
#define LN_ROWS 16
#define LN_COLS_PER_THREAD 8

// dy[row, c … c + W − 1], masked by dropout when dropout_dy
template <int W>
__device__ __forceinline__ VecX<W> layernorm_load_dy(const floatX* dyr, int row, int C, int c, bool dropout_dy, float p, float scale,
                                                    unsigned int key) {
    VecX<W> d = load_x<W>(dyr + c);
    if (dropout_dy)
#pragma unroll
        for (int j = 0; j < W; j++)
            d.v[j] = dropout_uniform(key, (unsigned int)row * (unsigned int)C + (unsigned int)(c + j)) >= p ? d.v[j] * scale : 0.0f;
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
                        grad.v[j] = dropout_uniform(key, (unsigned int)row * (unsigned int)C + (unsigned int)(c + j)) >= p ? grad.v[j] * scale : 0.0f;
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
