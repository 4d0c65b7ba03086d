// activations.cuh: exact (erf) GELU and tanh (src/Kernels/Cpu/Activations.cs). BERT's intermediate
// layer is Linear.ForwardGelu on both backends: on the CPU the GEMM applies bias and GELU to each tile
// as it stores it; here cuBLAS's GEMM is followed by bias_gelu_forward, and the bias is kept out of the
// stored pre-activation (gelu_backward adds it back).
#pragma once
#include "common.cuh"

// erf as Activations.Erf on the CPU (Eigen/XLA's float rational approximation on [-4, 4]).
__device__ __forceinline__ float erf_approx(float x) {
    x = fminf(fmaxf(x, -4.0f), 4.0f);
    float x2 = x * x;
    float p = fmaf(x2, -2.72614225801306e-10f, 2.77068142495902e-08f);
    p = fmaf(x2, p, -2.10102402082508e-06f); p = fmaf(x2, p, -5.69250639462346e-05f);
    p = fmaf(x2, p, -7.34990630326855e-04f); p = fmaf(x2, p, -2.95459980854025e-03f);
    p = fmaf(x2, p, -1.60960333262415e-02f);
    float q = fmaf(x2, -1.45660718464996e-05f, -2.13374055278905e-04f);
    q = fmaf(x2, q, -1.68282697438203e-03f); q = fmaf(x2, q, -7.37332916720468e-03f);
    q = fmaf(x2, q, -1.42647390514189e-02f);
    return x * p / q;
}

__device__ __forceinline__ float gelu(float v) { return 0.5f * v * (1.0f + erf_approx(v * 0.70710678118654752f)); }

// dy · gelu'(v) = dy · (Φ(v) + v·φ(v))
__device__ __forceinline__ float gelu_grad(float v, float dy) {
    float cdf = 0.5f * (1.0f + erf_approx(v * 0.70710678118654752f));
    float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
    return dy * (cdf + v * pdf);
}

// pre + bias for elements i … i + N − 1 of a [rows, cols] tensor (a pack never spans two rows when
// cols is a whole number of packs; bias 0: none).
template <int N>
__device__ __forceinline__ VecX<N> load_x_biased(const floatX* pre, const float* bias, int64_t i, int cols) {
    VecX<N> v = load_x<N>(pre + i);
    if (bias == 0) return v;
    int c = (int)(i % cols);
#pragma unroll
    for (int j = 0; j < N; j++) v.v[j] += bias[c + j];
    return v;
}

// y = gelu(pre + bias): BERT's intermediate layer after its GEMM. pre stays the GEMM's output, without
// the bias: the backward adds it again as it reads pre, so both see the same float32 pre-activation
// and the forward writes one [rows, cols] tensor, not two.
extern "C" __global__ void bias_gelu_forward(floatX* y, const floatX* pre, const float* bias, int rows, int cols) {
    int64_t n = (int64_t)rows * cols, first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (int64_t)gridDim.x * blockDim.x;
    // packs while they never span two rows (or there is no bias) and the pointers are aligned, then one by one
    int64_t packs = (bias == 0 || cols % XPACK == 0) && aligned16(y) && aligned16(pre) ? n / XPACK : 0;
    for (int64_t k = first; k < packs; k += stride) {
        VecX<XPACK> v = load_x_biased<XPACK>(pre, bias, k * XPACK, cols);
#pragma unroll
        for (int j = 0; j < XPACK; j++) v.v[j] = gelu(v.v[j]);
        store_x<XPACK>(y + k * XPACK, v);
    }
    for (int64_t i = packs * XPACK + first; i < n; i += stride) y[i] = gelu(load_x_biased<1>(pre, bias, i, cols).v[0]);
}

// dx = dy · gelu'(pre + bias), pre as bias_gelu_forward read it (bias 0: none; dx may be dy), and when
// partial is not 0, partial[chunk][c] = Σ over the chunk's GELU_ROWS rows of dx[r, c], rows in order: the
// bias gradient of the layer before GELU (add_chunk_partials sums the chunks), with no pass of its own.
// A thread owns XPACK adjacent columns of one chunk, read in packs when cols is a whole number of them
// and the pointers are aligned, else one by one. grid: (ceil(rows / GELU_ROWS), ceil(cols / (XPACK · block))):
// the chunks on x, whose limit is 2³¹ − 1 (y's 65535 would stop at a million rows).
#define GELU_ROWS 16
extern "C" __global__ void gelu_backward(floatX* dx, float* partial, const floatX* pre, const float* bias, const floatX* dy, int rows, int cols) {
    int c0 = (blockIdx.y * blockDim.x + threadIdx.x) * XPACK, chunk = blockIdx.x;
    if (c0 >= cols) return;
    bool packed = cols % XPACK == 0 && aligned16(dx) && aligned16(pre) && aligned16(dy);
    float acc[XPACK];
#pragma unroll
    for (int j = 0; j < XPACK; j++) acc[j] = 0.0f;
    int r1 = min(rows, (chunk + 1) * GELU_ROWS);
    for (int r = chunk * GELU_ROWS; r < r1; r++) {
        int64_t i = (int64_t)r * cols + c0;
        if (packed) {
            VecX<XPACK> v = load_x_biased<XPACK>(pre, bias, i, cols), g = load_x<XPACK>(dy + i);
#pragma unroll
            for (int j = 0; j < XPACK; j++) { g.v[j] = gelu_grad(v.v[j], g.v[j]); acc[j] += g.v[j]; }
            store_x<XPACK>(dx + i, g);
        } else {
#pragma unroll
            for (int j = 0; j < XPACK; j++)
                if (c0 + j < cols) {
                    float g = gelu_grad(load_x_biased<1>(pre, bias, i + j, cols).v[0], (float)dy[i + j]);
                    dx[i + j] = g;
                    acc[j] += g;
                }
        }
    }
    if (partial != 0)
#pragma unroll
        for (int j = 0; j < XPACK; j++) if (c0 + j < cols) partial[(int64_t)chunk * cols + c0 + j] = acc[j];
}

// The pooler's tanh ([B, C], a few kilobytes) stays scalar.
extern "C" __global__ void tanh_forward(floatX* y, const floatX* x, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) y[i] = tanhf((float)x[i]);
}

// dx = dy · (1 − y²), from the forward's output.
extern "C" __global__ void tanh_backward(floatX* dx, const floatX* y, const floatX* dy, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dx[i] = (float)dy[i] * (1.0f - (float)y[i] * (float)y[i]);
}
