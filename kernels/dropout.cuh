// dropout.cuh: Dropout.Forward/Backward (src/Kernels/Cpu/Dropout.cs). The mask is a pure function
// of (key, flat index), the same hash as the CPU's, so both backends drop the same elements.
#pragma once
#include "common.cuh"

// y = x · keep / (1 − p), keep = uniform(key, i) ≥ p; y may be x. Also serves attention dropout
// (the probabilities' flat index is the CPU's bh·T·T + j).
extern "C" __global__ void dropout_forward(floatX* y, const floatX* x, int64_t n, float p, unsigned int key) {
    float scale = 1.0f / (1.0f - p);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = dropout_uniform(key, (unsigned int)i) >= p ? (float)x[i] * scale : 0.0f;
}

// dx (+)= dy · keep / (1 − p), the forward's mask.
extern "C" __global__ void dropout_backward(floatX* dx, const floatX* dy, int64_t n, float p, unsigned int key, int accumulate) {
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float g = (p <= 0.0f || dropout_uniform(key, (unsigned int)i) >= p) ? (float)dy[i] * scale : 0.0f;
        dx[i] = accumulate ? (float)dx[i] + g : g;
    }
}
