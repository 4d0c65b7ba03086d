// dropout.cuh: Dropout.Forward/Backward (src/Kernels/Cpu/Dropout.cs). The mask is a pure function
// of (key, flat index), the same hash as the CPU's, so both backends drop the same elements.
#pragma once
#include "common.cuh"

// Elements i … i + N − 1 of dropout_forward (y = x · keep / (1 − p)) or, backward, of dropout_backward
// (y (+)= x · keep / (1 − p), accumulate reading y first).
template <int N>
__device__ __forceinline__ void dropout_at(floatX* y, const floatX* x, int64_t i, float p, unsigned int key, bool accumulate) {
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    VecX<N> v = load_x<N>(x + i), out;
    if (accumulate) out = load_x<N>(y + i);
#pragma unroll
    for (int j = 0; j < N; j++) {
        float g = (p <= 0.0f || dropout_uniform(key, (unsigned int)(i + j)) >= p) ? v.v[j] * scale : 0.0f;
        out.v[j] = accumulate ? out.v[j] + g : g;
    }
    store_x<N>(y + i, out);
}

// y = x · keep / (1 − p), keep = uniform(key, i) ≥ p; y may be x. Also serves attention dropout
// (the probabilities' flat index is the CPU's bh·T·T + j). Grid-stride over packs, then the scalar tail.
extern "C" __global__ void dropout_forward(floatX* y, const floatX* x, int64_t n, float p, unsigned int key) {
    int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (int64_t)gridDim.x * blockDim.x;
    int64_t packs = aligned16(y) && aligned16(x) ? n / XPACK : 0;
    for (int64_t k = first; k < packs; k += stride) dropout_at<XPACK>(y, x, k * XPACK, p, key, false);
    for (int64_t i = packs * XPACK + first; i < n; i += stride) dropout_at<1>(y, x, i, p, key, false);
}

// dx (+)= dy · keep / (1 − p), the forward's mask.
extern "C" __global__ void dropout_backward(floatX* dx, const floatX* dy, int64_t n, float p, unsigned int key, int accumulate) {
    int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (int64_t)gridDim.x * blockDim.x;
    int64_t packs = aligned16(dx) && aligned16(dy) ? n / XPACK : 0;
    for (int64_t k = first; k < packs; k += stride) dropout_at<XPACK>(dx, dy, k * XPACK, p, key, accumulate != 0);
    for (int64_t i = packs * XPACK + first; i < n; i += stride) dropout_at<1>(dx, dy, i, p, key, accumulate != 0);
}
