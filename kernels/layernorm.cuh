// layernorm.cuh: LayerNorm.Forward, LayerNorm.DropoutResidualForward and LayerNorm.Backward
// (src/Kernels/Cpu/LayerNorm.cs). The forward fuses a post-LN block's dropout and residual add.
#pragma once
#include "common.cuh"

// sum = residual + dropout(x + bias); out = LN(sum). residual 0: sum is x (LayerNorm.Forward); p = 0: no
// dropout; bias 0: none (the bias of the linear layer before, applied here instead of in a pass of its
// own); sum_out may be 0 when sum is x itself. grid: N blocks (one row each); block: multiple of 32.
extern "C" __global__ void layernorm_forward(floatX* out, floatX* sum_out, float* mean_out, float* rstd_out,
                                             const floatX* x, const float* bias, const floatX* residual, const float* gamma,
                                             const float* beta, int N, int C, float eps, float p, unsigned int key) {
    int row = blockIdx.x;
    const floatX* xr = x + (int64_t)row * C;
    floatX* s = sum_out != 0 ? sum_out + (int64_t)row * C : 0;
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    float local = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = (float)xr[c];
        if (bias != 0) v += bias[c];
        if (p > 0.0f) v = dropout_uniform(key, (unsigned int)row * (unsigned int)C + (unsigned int)c) >= p ? v * scale : 0.0f;
        if (residual != 0) v += (float)residual[(int64_t)row * C + c];
        if (s != 0) { s[c] = v; v = s[c]; }   // the statistics of the sum as stored (rounded, in bf16)
        local += v;
    }
    float mean = block_sum(local) / C;
    const floatX* src = s != 0 ? s : xr;   // each thread reads back only what it wrote
    local = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) { float d = (float)src[c] - mean; local += d * d; }
    float var = block_sum(local) / C;
    float rstd = 1.0f / sqrtf(var + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        out[(int64_t)row * C + c] = fmaf(((float)src[c] - mean) * rstd, gamma[c], beta[c]);
    if (threadIdx.x == 0) { mean_out[row] = mean; rstd_out[row] = rstd; }
}

// The whole backward in one pass over dy and x: dx (+)= rstd · (g − mean(g) − x̂ · mean(g·x̂)), g = dy·γ,
// row by row, and for the block's chunk of LN_ROWS rows partial[chunk][0][c] = Σ dy·x̂, partial[chunk][1][c]
// = Σ dy, rows in order (add_chunk_partials then sums the chunks in order: deterministic). Thread t owns
// columns t, t + blockDim, … (at most LN_COLS_PER_THREAD of them), so dγ and dβ stay in its registers.
// grid: ceil(N / LN_ROWS) blocks; block: a multiple of 32, at least C / LN_COLS_PER_THREAD threads.
#define LN_ROWS 16
#define LN_COLS_PER_THREAD 8
extern "C" __global__ void layernorm_backward(floatX* dx, float* partial, const floatX* dy, const floatX* x, const float* mean,
                                              const float* rstd, const float* gamma, int N, int C, int accumulate) {
    float dg[LN_COLS_PER_THREAD], db[LN_COLS_PER_THREAD];
#pragma unroll
    for (int k = 0; k < LN_COLS_PER_THREAD; k++) { dg[k] = 0.0f; db[k] = 0.0f; }
    int r0 = blockIdx.x * LN_ROWS, r1 = min(N, r0 + LN_ROWS);
    for (int row = r0; row < r1; row++) {   // the same rows for every thread: the block sums stay uniform
        const floatX* dyr = dy + (int64_t)row * C;
        const floatX* xr = x + (int64_t)row * C;
        float mu = mean[row], rs = rstd[row];
        float sg = 0.0f, sgx = 0.0f;
#pragma unroll
        for (int k = 0; k < LN_COLS_PER_THREAD; k++) {
            int c = threadIdx.x + k * blockDim.x;
            if (c < C) {
                float d = (float)dyr[c], xhat = ((float)xr[c] - mu) * rs, g = d * gamma[c];
                sg += g; sgx += g * xhat;
                dg[k] = fmaf(d, xhat, dg[k]); db[k] += d;
            }
        }
        float mean_g = block_sum(sg) / C;
        float mean_gx = block_sum(sgx) / C;
#pragma unroll
        for (int k = 0; k < LN_COLS_PER_THREAD; k++) {
            int c = threadIdx.x + k * blockDim.x;
            if (c < C) {
                float g = (float)dyr[c] * gamma[c], xhat = ((float)xr[c] - mu) * rs;
                float v = rs * (g - mean_g - xhat * mean_gx);
                int64_t i = (int64_t)row * C + c;
                dx[i] = accumulate ? (float)dx[i] + v : v;
            }
        }
    }
    float* pg = partial + (int64_t)blockIdx.x * 2 * C;
#pragma unroll
    for (int k = 0; k < LN_COLS_PER_THREAD; k++) {
        int c = threadIdx.x + k * blockDim.x;
        if (c < C) { pg[c] = dg[k]; pg[C + c] = db[k]; }
    }
}
