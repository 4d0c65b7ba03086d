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

// dx (+)= rstd · (g − mean(g) − x̂ · mean(g·x̂)), g = dy·γ. grid: N blocks; block: multiple of 32.
extern "C" __global__ void layernorm_backward_input(floatX* dx, const floatX* dy, const floatX* x, const float* mean,
                                                    const float* rstd, const float* gamma, int N, int C, int accumulate) {
    int row = blockIdx.x;
    const floatX* dyr = dy + (int64_t)row * C;
    const floatX* xr = x + (int64_t)row * C;
    float mu = mean[row], rs = rstd[row];
    float sg = 0.0f, sgx = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float g = (float)dyr[c] * gamma[c];
        float xhat = ((float)xr[c] - mu) * rs;
        sg += g; sgx += g * xhat;
    }
    float mean_g = block_sum(sg) / C;
    float mean_gx = block_sum(sgx) / C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float g = (float)dyr[c] * gamma[c];
        float xhat = ((float)xr[c] - mu) * rs;
        float v = rs * (g - mean_g - xhat * mean_gx);
        int64_t i = (int64_t)row * C + c;
        dx[i] = accumulate ? (float)dx[i] + v : v;
    }
}

// Per chunk of 64 rows (Reduce.RowsPerChunk): partial[chunk][0][c] = Σ dy·x̂, partial[chunk][1][c] = Σ dy,
// rows in order. grid: (ceil(C / block), chunks).
extern "C" __global__ void layernorm_backward_params_partial(float* partial, const floatX* dy, const floatX* x,
                                                             const float* mean, const float* rstd, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c >= C) return;
    float dg = 0.0f, db = 0.0f;
    int r1 = min(N, (chunk + 1) * 64);
    for (int r = chunk * 64; r < r1; r++) {
        float g = (float)dy[(int64_t)r * C + c];
        float xhat = ((float)x[(int64_t)r * C + c] - mean[r]) * rstd[r];
        dg = fmaf(g, xhat, dg);
        db += g;
    }
    partial[((int64_t)chunk * 2) * C + c] = dg;
    partial[((int64_t)chunk * 2 + 1) * C + c] = db;
}
