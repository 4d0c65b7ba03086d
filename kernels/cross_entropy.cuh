// cross_entropy.cuh: CrossEntropy.Forward (src/Kernels/Cpu/CrossEntropy.cs), forward and backward in
// one pass, against λ·onehot(y) + (1−λ)·onehot(y_partner); and the batch's mean loss.
#pragma once
#include "common.cuh"

// One thread per example: softmax of its logits, its loss −Σ t·log p, and dlogits = (p − t) · (1/B).
// partner may be 0 (plain one-hot targets); dlogits may be 0 (no backward).
extern "C" __global__ void cross_entropy_forward(float* losses, float* probs, floatX* dlogits, const floatX* logits,
                                                 const int* labels, const int* partner, const float* lambda, int B, int L) {
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= B) return;
    const floatX* z = logits + (int64_t)b * L;
    float mx = -INFINITY;
    for (int c = 0; c < L; c++) mx = fmaxf(mx, (float)z[c]);
    float sum = 0.0f;
    for (int c = 0; c < L; c++) sum += expf((float)z[c] - mx);
    float log_sum = logf(sum) + mx;
    float l = partner != 0 ? lambda[b] : 1.0f, scale = 1.0f / B;
    int ya = labels[b], yb = partner != 0 ? labels[partner[b]] : ya;
    float loss = 0.0f;
    for (int c = 0; c < L; c++) {
        float t = (c == ya ? l : 0.0f) + (c == yb ? 1.0f - l : 0.0f);
        float logp = (float)z[c] - log_sum;
        float p = expf(logp);
        probs[(int64_t)b * L + c] = p;
        if (dlogits != 0) dlogits[(int64_t)b * L + c] = (p - t) * scale;
        loss -= t * logp;
    }
    losses[b] = loss;
}

// stats[0] = the mean of losses[B], summed in order in double. One thread.
extern "C" __global__ void cross_entropy_mean(float* stats, const float* losses, int B) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double loss = 0.0;
    for (int b = 0; b < B; b++) loss += losses[b];
    stats[0] = (float)(loss / B);
}
