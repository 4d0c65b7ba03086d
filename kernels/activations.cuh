// activations.cuh: exact (erf) GELU and tanh (src/Kernels/Cpu/Activations.cs). BERT's intermediate
// layer is Linear.ForwardGelu on both backends: on the CPU the GEMM applies bias and GELU to each tile
// as it stores it; here cuBLAS's GEMM is followed by bias_gelu_forward.
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

// Elements i … i + N − 1 of bias_gelu_forward (a row holds whole packs, so they share a row).
template <int N>
__device__ __forceinline__ void bias_gelu_at(floatX* y, floatX* pre, const float* bias, int64_t i, int cols) {
    VecX<N> v = load_x<N>(pre + i);
    int c = (int)(i % cols);
#pragma unroll
    for (int j = 0; j < N; j++) v.v[j] += bias[c + j];
    store_x<N>(pre + i, v);
    // GELU of pre as stored (bf16: rounded), which the backward reads, as torch.autocast's GELU sees it
#pragma unroll
    for (int j = 0; j < N; j++) v.v[j] = gelu(round_x(v.v[j]));
    store_x<N>(y + i, v);
}

// pre[r, c] += bias[c] (the linear layer's output, kept for the backward); y = gelu(pre).
// Grid-stride over packs of rows·cols (cols a whole number of packs, pointers aligned), else elements.
extern "C" __global__ void bias_gelu_forward(floatX* y, floatX* pre, const float* bias, int rows, int cols) {
    int64_t n = (int64_t)rows * cols, first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (int64_t)gridDim.x * blockDim.x;
    int64_t packs = cols % XPACK == 0 && aligned16(y) && aligned16(pre) ? n / XPACK : 0;
    for (int64_t k = first; k < packs; k += stride) bias_gelu_at<XPACK>(y, pre, bias, k * XPACK, cols);
    for (int64_t i = packs * XPACK + first; i < n; i += stride) bias_gelu_at<1>(y, pre, bias, i, cols);
}

template <int N>
__device__ __forceinline__ void gelu_backward_at(floatX* dx, const floatX* x, const floatX* dy, int64_t i) {
    VecX<N> v = load_x<N>(x + i), g = load_x<N>(dy + i);
#pragma unroll
    for (int j = 0; j < N; j++) g.v[j] = gelu_grad(v.v[j], g.v[j]);
    store_x<N>(dx + i, g);
}

// dx = dy · gelu'(x); dx may be dy. Grid-stride over packs, then the scalar tail.
extern "C" __global__ void gelu_backward(floatX* dx, const floatX* x, const floatX* dy, int64_t n) {
    int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (int64_t)gridDim.x * blockDim.x;
    int64_t packs = aligned16(dx) && aligned16(x) && aligned16(dy) ? n / XPACK : 0;
    for (int64_t k = first; k < packs; k += stride) gelu_backward_at<XPACK>(dx, x, dy, k * XPACK);
    for (int64_t i = packs * XPACK + first; i < n; i += stride) gelu_backward_at<1>(dx, x, dy, i);
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
