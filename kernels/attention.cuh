// attention.cuh: Attention.Forward/Backward (src/Kernels/Cpu/Attention.cs). Heads are permuted so
// that cuBLAS runs one strided-batched GEMM over all B·H heads (src/Kernels/Cuda/Attention.cs); the
// softmax with scale and padding mask is a kernel of its own.
#pragma once
#include "common.cuh"

// qkv [B, T, 3C] → q, k, v [B, H, T, d]. grid-stride over B·T·C.
extern "C" __global__ void attention_split_heads(floatX* q, floatX* k, floatX* v, const floatX* qkv, int B, int T, int C, int H) {
    int d = C / H;
    int64_t n = (int64_t)B * T * C;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C); int64_t bt = i / C; int t = (int)(bt % T), b = (int)(bt / T);
        int h = c / d, j = c % d;
        int64_t dst = (((int64_t)b * H + h) * T + t) * d + j;
        const floatX* src = qkv + bt * 3 * C + c;
        q[dst] = src[0]; k[dst] = src[C]; v[dst] = src[2 * C];
    }
}

// The backward of attention_split_heads: dq, dk, dv [B, H, T, d] → dqkv [B, T, 3C].
extern "C" __global__ void attention_split_heads_backward(floatX* dqkv, const floatX* dq, const floatX* dk, const floatX* dv,
                                                          int B, int T, int C, int H) {
    int d = C / H;
    int64_t n = (int64_t)B * T * C;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C); int64_t bt = i / C; int t = (int)(bt % T), b = (int)(bt / T);
        int h = c / d, j = c % d;
        int64_t src = (((int64_t)b * H + h) * T + t) * d + j;
        floatX* dst = dqkv + bt * 3 * C + c;
        dst[0] = dq[src]; dst[C] = dk[src]; dst[2 * C] = dv[src];
    }
}

// ctx_heads [B, H, T, d] → ctx [B, T, C] (merge = 1), or back (merge = 0, for the backward).
extern "C" __global__ void attention_merge_heads(floatX* ctx, floatX* ctx_heads, int B, int T, int C, int H, int merge) {
    int d = C / H;
    int64_t n = (int64_t)B * T * C;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C); int64_t bt = i / C; int t = (int)(bt % T), b = (int)(bt / T);
        int h = c / d, j = c % d;
        int64_t hi = (((int64_t)b * H + h) * T + t) * d + j;
        if (merge) ctx[i] = ctx_heads[hi]; else ctx_heads[hi] = ctx[i];
    }
}

// probs[row] = softmax(scale · scores[row]) over the keys whose mask is non-zero, 0 elsewhere
// (a row with no key to attend to is all zeros). One warp per row of the [B, H, T, T] scores.
// grid: ceil(B·H·T / (block / 32)); block: multiple of 32.
extern "C" __global__ void attention_softmax_forward(floatX* probs, const floatX* scores, const float* key_mask,
                                                     int B, int H, int T, float scale) {
    int lane = threadIdx.x % WARP;
    int64_t row = (int64_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    bool valid = row < (int64_t)B * H * T;
    int64_t r = valid ? row : 0;
    int b = (int)(r / ((int64_t)H * T));
    const floatX* s = scores + r * T;
    const float* mask = key_mask + (int64_t)b * T;
    float mx = -INFINITY;
    for (int j = lane; j < T; j += WARP) if (mask[j] != 0.0f) mx = fmaxf(mx, (float)s[j]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j < T; j += WARP) if (mask[j] != 0.0f) sum += expf(((float)s[j] - mx) * scale);
    sum = warp_sum(sum);
    float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    if (valid)
        for (int j = lane; j < T; j += WARP)
            probs[r * T + j] = mask[j] != 0.0f ? expf(((float)s[j] - mx) * scale) * inv : 0.0f;
}

// dscores = P ⊙ (dP − Σ_j P·dP) · scale; dscores may be dprobs. One warp per row.
extern "C" __global__ void attention_softmax_backward(floatX* dscores, const floatX* probs, const floatX* dprobs,
                                                      int B, int H, int T, float scale) {
    int lane = threadIdx.x % WARP;
    int64_t row = (int64_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    bool valid = row < (int64_t)B * H * T;
    int64_t r = valid ? row : 0;
    const floatX* p = probs + r * T;
    const floatX* dp = dprobs + r * T;
    float dot = 0.0f;
    for (int j = lane; j < T; j += WARP) dot += (float)p[j] * (float)dp[j];
    dot = warp_sum(dot);
    if (valid)
        for (int j = lane; j < T; j += WARP) {
            float v = ((float)dp[j] - dot) * (float)p[j] * scale;
            dscores[r * T + j] = v;
        }
}
