// embedding.cuh: Embedding.Forward/Backward (src/Kernels/Cpu/Embedding.cs), with mixup's word-embedding
// site fused in: example b's word vectors are interpolated with its partner's before the position
// and type embeddings are added.
#pragma once
#include "common.cuh"

// out[n, :] = word[id] + position[t] + type[type_id]; when partner != 0 the word part is
// λ_b·word[id[b, t]] + (1−λ_b)·word[id[partner_b, t]].
// grid: B·T blocks (one token each); block: any multiple of 32.
extern "C" __global__ void embedding_forward(floatX* out, const int* ids, const int* type_ids, const float* word,
                                             const float* pos, const float* type, const int* partner, const float* lambda,
                                             int B, int T, int C) {
    int n = blockIdx.x, b = n / T, t = n % T;
    const float* w = word + (int64_t)ids[n] * C;
    const float* p = pos + (int64_t)t * C;
    const float* y = type + (int64_t)type_ids[n] * C;
    floatX* o = out + (int64_t)n * C;
    if (partner != 0) {
        float l = lambda[b];
        const float* w2 = word + (int64_t)ids[partner[b] * T + t] * C;
        for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = (l * w[c] + (1.0f - l) * w2[c] + p[c]) + y[c];
    } else {
        for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = (w[c] + p[c]) + y[c];
    }
}

// Scatter-adds dout into the tables' gradients. Each thread owns one channel and walks every token
// in order: no races and a fixed summation order. grid: ceil(C / block) blocks.
extern "C" __global__ void embedding_backward(float* dword, float* dpos, float* dtype, const floatX* dout,
                                              const int* ids, const int* type_ids, const int* partner, const float* lambda,
                                              int B, int T, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;   // no barrier in this kernel
    for (int n = 0; n < B * T; n++) {
        float g = dout[(int64_t)n * C + c];
        int b = n / T, t = n % T;
        if (partner != 0) {
            float l = lambda[b];
            dword[(int64_t)ids[n] * C + c] += l * g;
            dword[(int64_t)ids[partner[b] * T + t] * C + c] += (1.0f - l) * g;
        } else {
            dword[(int64_t)ids[n] * C + c] += g;
        }
        dpos[(int64_t)t * C + c] += g;
        dtype[(int64_t)type_ids[n] * C + c] += g;
    }
}
