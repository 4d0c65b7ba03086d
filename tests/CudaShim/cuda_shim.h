// cuda_shim.h: just enough of CUDA to compile kernels.cu with a host C++ compiler and run it on
// the CPU, so that CI (which has no GPU) executes the real kernel code.
//
// A launch runs its blocks one after another; the threads of a block are fibers (shim_runtime.cpp),
// so __syncthreads() is a barrier across them and __shared__ (a function-local static here) is shared
// by exactly one block at a time. Warp shuffles and mma.sync are rendezvous of a warp's 32 lanes, and a
// warp runs ahead of the others up to the next __syncthreads() (shim_runtime.cpp), so kernels.cu calls
// them with the whole warp, and a missing barrier between warps shows up here as on a GPU.
#pragma once
#include <cmath>
#include <cstdint>
#include <algorithm>

struct float4 {
    float x, y, z, w;
};
struct float2 {
    float x, y;
};

struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};

struct ShimThreadState {
    dim3 thread, block, block_dim, grid_dim;
};

extern thread_local ShimThreadState shim_state;

#define threadIdx (shim_state.thread)
#define blockIdx (shim_state.block)
#define blockDim (shim_state.block_dim)
#define gridDim (shim_state.grid_dim)

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)           // a register budget for ptxas: nothing to the shim

void __syncthreads();
float __shfl_xor_sync(unsigned int mask, float v, int lane_mask);
double __shfl_xor_sync(unsigned int mask, double v, int lane_mask);
float __shfl_down_sync(unsigned int mask, float v, int delta);
float __shfl_sync(unsigned int mask, float v, int src_lane);

// kernels/attention_flash.cuh's tensor-core product (PTX mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32),
// a warp collective like the shuffles: d += A·B from the fragments the warp's 32 lanes hold.
void shim_mma_16x8x16(float* d, const uint32_t* a, const uint32_t* b);
// and its ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: each lane passes the row it addresses
void shim_ldmatrix_x4(uint32_t* r, const void* row, bool trans);

// common.cuh's 128-bit packs: a GPU faults on a misaligned one, so the shim stops there too
void shim_misaligned(const void* p, int bytes);
#define shim_check_aligned(p) do { if ((uintptr_t)(p) % 16 != 0) shim_misaligned(p, 16); } while (0)
// attention_flash.cuh's 32-bit stores of two bf16
#define shim_check_aligned4(p) do { if ((uintptr_t)(p) % 4 != 0) shim_misaligned(p, 4); } while (0)

using std::min;
using std::max;
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
// the SFU's approximate forms; here exact (the GPU's are within a few ulps of these)
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return std::exp(x); }
