// linear.cuh: the non-GEMM parts of Linear.Forward/Backward (src/Kernels/Cpu/Linear.cs; the GEMMs run
// on cuBLAS, src/Kernels/Cuda/Linear.cs): the bias add, and the bias gradient as column sums in fixed
// row chunks (Reduce.AddColumnSums).
#pragma once
#include "common.cuh"

// y[r, c] += bias[c]. grid-stride over rows·cols.
extern "C" __global__ void add_bias(floatX* y, const float* bias, int rows, int cols) {
    int64_t n = (int64_t)rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = (float)y[i] + bias[i % cols];
}

// partial[chunk][c] = Σ over the chunk's 64 rows of x[r, c], in order. grid: (ceil(C / block), chunks).
extern "C" __global__ void column_sum_partial(float* partial, const floatX* x, int rows, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c >= cols) return;
    float acc = 0.0f;
    int r1 = min(rows, (chunk + 1) * 64);
    for (int r = chunk * 64; r < r1; r++) acc += (float)x[(int64_t)r * cols + c];
    partial[(int64_t)chunk * cols + c] = acc;
}
