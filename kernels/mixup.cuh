// mixup.cuh: Mixup.Forward/Backward/UnionMask (src/Kernels/Cpu/Mixup.cs): example b interpolated with
// its partner p_b with weight λ_b on itself, at the hidden states (tmix: T rows per example) or the
// pooled vector (senmix: 1 row); the word-embedding site is fused into embedding_forward.
#pragma once
#include "common.cuh"

// y[b, r, :] = λ_b · x[b, r, :] + (1 − λ_b) · x[partner_b, r, :]. grid-stride over B·rows·C.
extern "C" __global__ void mixup_forward(floatX* y, const floatX* x, const int* partner, const float* lambda,
                                         int B, int rows, int C) {
    int64_t n = (int64_t)B * rows * C, per = (int64_t)rows * C;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int b = (int)(i / per); int64_t off = i % per;
        float l = lambda[b];
        y[i] = l * (float)x[i] + (1.0f - l) * (float)x[(int64_t)partner[b] * per + off];
    }
}

// dx[e] = Σ over examples b in order: λ_b·dy[b] if b = e, plus (1 − λ_b)·dy[b] if partner_b = e.
// The same order as the CPU's Mixup.Backward, without atomics. grid-stride over B·rows·C.
extern "C" __global__ void mixup_backward(floatX* dx, const floatX* dy, const int* partner, const float* lambda,
                                          int B, int rows, int C) {
    int64_t n = (int64_t)B * rows * C, per = (int64_t)rows * C;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int e = (int)(i / per); int64_t off = i % per;
        float acc = 0.0f;
        for (int b = 0; b < B; b++) {
            float l = lambda[b], g = (float)dy[(int64_t)b * per + off];
            if (b == e) acc += l * g;
            if (partner[b] == e) acc += (1.0f - l) * g;
        }
        dx[i] = acc;
    }
}

// union[b, t] = max(λ_b > 0 ? mask[b, t] : 0, λ_b < 1 ? mask[partner_b, t] : 0). grid-stride over B·T.
extern "C" __global__ void mixup_union_mask(float* mask_union, const float* mask, const int* partner, const float* lambda,
                                            int B, int T) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)B * T; i += (int64_t)gridDim.x * blockDim.x) {
        int b = (int)(i / T), t = (int)(i % T);
        float l = lambda[b];
        float own = l > 0.0f ? mask[i] : 0.0f, other = l < 1.0f ? mask[(int64_t)partner[b] * T + t] : 0.0f;
        mask_union[i] = fmaxf(own, other);
    }
}
