// scheduler_cases.cpp: small kernels that break the CUDA model on purpose, so ShimSchedulerTests can check
// that the shim's scheduler (shim_runtime.cpp) catches them. `scheduler_cases NAME` runs one case; a
// case the shim must stop aborts with its message, a case it must let through prints "ok" or "stale".
#include "cuda_shim.h"
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>

void shim_run(dim3 grid, dim3 block, const std::function<void()>& body);

// Half the warp shuffles with lane mask 1, the other half with 2: a collective in divergent code.
void divergent_masks(float* out) {
    float v = (float)threadIdx.x;
    out[threadIdx.x] = threadIdx.x < 16 ? __shfl_xor_sync(0xffffffffu, v, 1) : __shfl_xor_sync(0xffffffffu, v, 2);
}

// Half the warp shuffles while the other half enters mma.sync.
void shuffle_against_mma(float* out) {
    float d[4] = {0, 0, 0, 0};
    uint32_t a[4] = {0, 0, 0, 0}, b[2] = {0, 0};
    if (threadIdx.x < 16) out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
    else shim_mma_16x8x16(d, a, b);
}

// Lane 0 makes one shuffle fewer than the others: it ends its block while they wait.
void one_lane_short(float* out) {
    float v = (float)threadIdx.x;
    for (int i = threadIdx.x == 0 ? 1 : 0; i < 3; i++) v = __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}

// The well-formed version: every lane makes the same shuffles.
void well_formed(float* out) {
    float v = (float)threadIdx.x;
    for (int i = 0; i < 3; i++) v = __shfl_xor_sync(0xffffffffu, v, 1);
    out[blockIdx.x * blockDim.x + threadIdx.x] = v;
}

// Warp 0 fills shared memory and the other warps read it with no __syncthreads() between: stale reads
// must show in some block, whichever warp the scheduler runs first.
void missing_barrier(float* out) {
    __shared__ float tile[32];
    if (threadIdx.x == 0) tile[0] = -1.0f;   // the previous block's value, if any, is overwritten below
    __syncthreads();
    if (threadIdx.x < 32) tile[threadIdx.x] = (float)(blockIdx.x + 1);
    // __syncthreads() missing here
    if (threadIdx.x >= 32) out[blockIdx.x * blockDim.x + threadIdx.x] = tile[threadIdx.x % 32];
    __syncthreads();
}

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    static float out[4 * 128];
    std::memset(out, 0, sizeof out);
    std::string name = argv[1];
    if (name == "divergent_masks") shim_run(dim3{1, 1, 1}, dim3{32, 1, 1}, [&] { divergent_masks(out); });
    else if (name == "shuffle_against_mma") shim_run(dim3{1, 1, 1}, dim3{32, 1, 1}, [&] { shuffle_against_mma(out); });
    else if (name == "one_lane_short") shim_run(dim3{1, 1, 1}, dim3{32, 1, 1}, [&] { one_lane_short(out); });
    else if (name == "well_formed") shim_run(dim3{2, 1, 1}, dim3{64, 1, 1}, [&] { well_formed(out); });
    else if (name == "missing_barrier") {
        shim_run(dim3{4, 1, 1}, dim3{128, 1, 1}, [&] { missing_barrier(out); });
        for (int b = 0; b < 4; b++)
            for (int t = 32; t < 128; t++)
                if (out[b * 128 + t] != (float)(b + 1)) { std::printf("stale\n"); return 0; }
    } else return 2;
    std::printf("ok\n");
    return 0;
}
