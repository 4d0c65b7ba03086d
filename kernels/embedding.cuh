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

// The backward in parallel and still deterministic, as llm.c's encoder backward: the host sorts the
// batch's (row, token, weight) entries into one bucket per table row (Cuda.Embedding.Buckets), entries
// in the CPU's order (token by token, an example's own word before its partner's), and one thread per
// (bucket, channel) adds them in that order, so no two threads add into the same element.
// dtable[rows[k], c] += Σ_{e in bucket k} weights[e]·dout[tokens[e], c]. grid: (buckets, ceil(C / block)).
extern "C" __global__ void embedding_backward_rows(float* dtable, const floatX* dout, const int* rows, const int* starts,
                                                   const int* tokens, const float* weights, int C) {
    int k = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float* out = dtable + (int64_t)rows[k] * C + c;
    float acc = *out;
    for (int e = starts[k]; e < starts[k + 1]; e++) acc += weights[e] * (float)dout[(int64_t)tokens[e] * C + c];
    *out = acc;
}

// dpos[t, c] += Σ_b dout[b, t, c], examples in order. grid: (T, ceil(C / block)).
extern "C" __global__ void embedding_backward_positions(float* dpos, const floatX* dout, int B, int T, int C) {
    int t = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = dpos[(int64_t)t * C + c];
    for (int b = 0; b < B; b++) acc += (float)dout[((int64_t)b * T + t) * C + c];
    dpos[(int64_t)t * C + c] = acc;
}
