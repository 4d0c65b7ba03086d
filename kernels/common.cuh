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

// 128-bit loads and stores, as llm.c's x128. VecX<N> is N activations as float32, loaded with one
// 128-bit load when N is XPACK (8 bf16 or 4 float32; the pointer 16-byte aligned) and as one element
// when N is 1, so one kernel body, a template on N, serves its packed path and its scalar one. A
// memory-bound kernel takes the packed path when every pointer it packs is 16-byte aligned (device
// allocations are; a view into a tensor may not be) and, over rows, when the row length is a whole
// number of packs; the scalar path does the rest (the tail, or everything). The CUDA shim defines
// shim_check_aligned to stop at a misaligned pack, which a GPU would fault on.
#define XPACK ((int)(16 / sizeof(floatX)))
struct __align__(16) PackX {
    floatX v[16 / sizeof(floatX)];
};
#ifndef shim_check_aligned
#define shim_check_aligned(p)
#define shim_check_aligned4(p)
#endif
__device__ __forceinline__ bool aligned16(const void* p) { return (uintptr_t)p % 16 == 0; }

template <int N>
struct VecX {
    float v[N];
};

template <int N>
__device__ __forceinline__ VecX<N> load_x(const floatX* p) {
    VecX<N> r;
    if constexpr (N == 1) {
        r.v[0] = (float)p[0];
    } else {
        shim_check_aligned(p);
        PackX pack = *(const PackX*)p;
#pragma unroll
        for (int j = 0; j < N; j++) r.v[j] = (float)pack.v[j];
    }
    return r;
}

// N float32 values (parameters, tables) as one VecX: float4 loads when N is a multiple of 4 (p 16-byte aligned).
template <int N>
__device__ __forceinline__ VecX<N> load_f(const float* p) {
    VecX<N> r;
    if constexpr (N == 1) {
        r.v[0] = p[0];
    } else {
        shim_check_aligned(p);
#pragma unroll
        for (int j = 0; j < N; j += 4) {
            float4 q = *(const float4*)(p + j);
            r.v[j] = q.x; r.v[j + 1] = q.y; r.v[j + 2] = q.z; r.v[j + 3] = q.w;
        }
    }
    return r;
}

// v as a floatX holds it (bf16: rounded to nearest even)
__device__ __forceinline__ float round_x(float v) { return (float)(floatX)v; }

// v rounded once into floatX, as a pack (what a 128-bit store writes; half the registers in bf16)
__device__ __forceinline__ PackX pack_x(const VecX<XPACK>& v) {
    PackX q;
#pragma unroll
    for (int j = 0; j < XPACK; j++) q.v[j] = v.v[j];
    return q;
}

// Rounds each value once into floatX.
template <int N>
__device__ __forceinline__ void store_x(floatX* p, const VecX<N>& r) {
    if constexpr (N == 1) {
        p[0] = r.v[0];
    } else {
        shim_check_aligned(p);
        *(PackX*)p = pack_x(r);
    }
}

// The XPACK activations at p[0 …] of a row's columns c0 …: one pack when packed (cols a whole number of packs,
// p aligned), else one by one up to the row's end (0 past it). A thread that owns a pack of columns over
// rows (column_sum_partial, the GELU kernels) reads and writes its row this way.
// load_columns_pack keeps the pack as stored (16 bytes: four registers, half of its floats in bf16) for a
// kernel that has several loads in flight before it converts them (unpack).
__device__ __forceinline__ PackX load_columns_pack(const floatX* p, int c0, int cols, bool packed) {
    if (packed) {
        shim_check_aligned(p);
        return *(const PackX*)p;
    }
    PackX q;
#pragma unroll
    for (int j = 0; j < XPACK; j++) q.v[j] = c0 + j < cols ? p[j] : (floatX)0.0f;
    return q;
}

__device__ __forceinline__ VecX<XPACK> unpack(const PackX& q) {
    VecX<XPACK> v;
#pragma unroll
    for (int j = 0; j < XPACK; j++) v.v[j] = (float)q.v[j];
    return v;
}

__device__ __forceinline__ VecX<XPACK> load_columns(const floatX* p, int c0, int cols, bool packed) {
    return unpack(load_columns_pack(p, c0, cols, packed));
}

__device__ __forceinline__ void store_columns(floatX* p, const VecX<XPACK>& v, int c0, int cols, bool packed) {
    if (packed) {
        store_x<XPACK>(p, v);
        return;
    }
#pragma unroll
    for (int j = 0; j < XPACK; j++)
        if (c0 + j < cols) p[j] = v.v[j];
}

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

__device__ __forceinline__ unsigned int dropout_hash(unsigned int key, unsigned int index) {
    return mix32(mix32(index ^ key) + 0x9E3779B9u + key);
}

// uniform in [0, 1): the hash's top 24 bits over 2^24 (exact in float32). An element is kept when
// it is >= p, the dropout probability.
__device__ __forceinline__ float dropout_uniform(unsigned int key, unsigned int index) {
    return (float)(dropout_hash(key, index) >> 8) * (1.0f / 16777216.0f);
}

// The same decision in integers, for the attention's inner loops: dropout_uniform(key, i) >= p exactly
// when dropout_hash(key, i) >> 8 >= dropout_threshold(p), for p in [0, 1]: scaling both sides of u >= p
// by 2^24 rounds neither (u·2^24 is the integer h >> 8; a power of two times a float is exact), and an
// integer is >= a real exactly when it is >= the real's ceiling (p = 1: 2^24, which no hash reaches).
// tests/CudaShim/dropout_threshold_check.cpp checks it at every threshold's edges.
__device__ __forceinline__ unsigned int dropout_threshold(float p) {
    return (unsigned int)ceilf(p * 16777216.0f);
}

// out[c] += Σ_chunk partial[chunk·stride + c] (Reduce's second pass: the chunk sums of column_sum_partial,
// layernorm_backward and gelu_backward), in a fixed order. A block owns 32 columns; its 8 warps each sum
// every 8th chunk (warp g: chunks g, g + 8, …), and warp 0 adds the 8 sums in order. On one thread per
// column (6 blocks for C = 768) it was latency-bound: 10-17 us a launch on an H200. Eight of a thread's loads
// are in flight at once (SASS: 8 LDG, then the 8 adds in order), for the LayerNorm backward's 512 chunks.
// Up to three sums in one launch (LayerNorm's dγ, dβ and its branch's bias gradient, which sit C apart in
// each chunk's partials): grid.y = 1, 2 or 3 picks out0, out1 or out2 and the partials C · y further on.
// grid: (ceil(C / 32), sums); block: (32, 8).
extern "C" __global__ void add_chunk_partials(float* out0, float* out1, float* out2, const float* partial, int chunks, int C, int stride) {
    __shared__ float sums[8][WARP];
    float* out = blockIdx.y == 0 ? out0 : blockIdx.y == 1 ? out1 : out2;
    partial += (int64_t)blockIdx.y * C;
    int c = blockIdx.x * WARP + threadIdx.x, g = threadIdx.y;
    float acc = 0.0f;
    if (c < C)
#pragma unroll 8
        for (int k = g; k < chunks; k += 8) acc += partial[(int64_t)k * stride + c];
    sums[g][threadIdx.x] = acc;
    __syncthreads();
    if (g == 0 && c < C) {
        float total = out[c];
#pragma unroll
        for (int j = 0; j < 8; j++) total += sums[j][threadIdx.x];
        out[c] = total;
    }
}
