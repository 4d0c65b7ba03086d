// common.cuh: what every op family shares: the activation type, warp and block sums, dropout's
// counter-based hash, and the in-order sum of per-chunk partials that keeps reductions deterministic.
#pragma once
#include <stdint.h>

// Index math that can pass 2^31 (B·T·C, B·H·T·T) is int64_t, never `long`: `long` is 32 bits on
// Windows (LLP64), and the host passes every 64-bit kernel argument in an 8-byte slot.

// floatX is the type of activations and their gradients: float32, or bfloat16 when kernels.cu is
// compiled with -DMIXUP_BF16 (a second module, src/Kernels/Kernels.csproj). Parameters, their
// gradients, Adam's moments and every statistic (LayerNorm's mean and rstd, softmax's max and sum,
// cross-entropy, norms) stay float32, and every kernel computes in float32: a floatX is converted
// once when loaded and rounded once when stored, always written out as (float)x, never mixed into
// arithmetic with a float (bf16 arithmetic would round each step, and bf16·float is ambiguous).
#ifdef MIXUP_BF16
#include <cuda_bf16.h>
typedef __nv_bfloat16 floatX;
#else
typedef float floatX;
#endif

#define WARP 32

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ float block_sum(float v) {
    __shared__ float partial[WARP];
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = blockDim.x / WARP;
    v = warp_sum(v);
    __syncthreads();                  // partial[] may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < warps; w++) total += partial[w];   // fixed order: deterministic
    return total;
}

// Dropout's mask: the counter-based hash of Dropout.Uniform in src/Kernels/Cpu/Dropout.cs, bit for bit.
__device__ __forceinline__ unsigned int mix32(unsigned int h) {
    h ^= h >> 16; h *= 0x85EBCA6Bu;
    h ^= h >> 13; h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

__device__ __forceinline__ float dropout_uniform(unsigned int key, unsigned int index) {
    unsigned int h = mix32(index ^ key);
    h = mix32(h + 0x9E3779B9u + key);
    return (float)(h >> 8) * (1.0f / 16777216.0f);
}

// out[c] += Σ_chunk partial[chunk·stride + c], chunks in order (Reduce's second pass: the chunk
// sums of column_sum_partial and layernorm_backward_params_partial). grid: ceil(C / block).
extern "C" __global__ void add_chunk_partials(float* out, const float* partial, int chunks, int C, int stride) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = out[c];
    for (int k = 0; k < chunks; k++) acc += partial[(int64_t)k * stride + c];
    out[c] = acc;
}
