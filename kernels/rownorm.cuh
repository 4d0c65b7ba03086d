// rownorm.cuh: RowNorm.Forward (src/Kernels/Cpu/RowNorm.cs): the Euclidean norm of each row, SSMix's
// token saliency (the norm of the loss gradient at each token's embedding).
#pragma once
#include "common.cuh"

// y[r] = sqrt(Σ_c x[r, c]²). grid: N blocks (one row each); block: multiple of 32.
extern "C" __global__ void row_norm_forward(float* y, const floatX* x, int N, int C) {
    int row = blockIdx.x;
    const floatX* xr = x + (int64_t)row * C;
    float local = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) { float v = (float)xr[c]; local += v * v; }
    float total = block_sum(local);   // every thread of the block reaches it
    if (threadIdx.x == 0) y[row] = sqrtf(total);
}
