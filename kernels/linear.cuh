// linear.cuh: the non-GEMM parts of Linear.Forward/Backward (src/Kernels/Cpu/Linear.cs; the GEMMs run
// on cuBLAS, src/Kernels/Cuda/Linear.cs): the bias add, and the bias gradient as column sums in fixed
// row chunks (Reduce.AddColumnSums).
#pragma once
#include "common.cuh"

template <int N>
__device__ __forceinline__ void add_bias_at(floatX* y, const float* bias, int64_t i, int cols) {
    VecX<N> v = load_x<N>(y + i);
    int c = (int)(i % cols);
#pragma unroll
    for (int j = 0; j < N; j++) v.v[j] += bias[c + j];
    store_x<N>(y + i, v);
}

// y[r, c] += bias[c]. Grid-stride over packs of rows·cols (cols a whole number of packs, y aligned), else elements.
extern "C" __global__ void add_bias(floatX* y, const float* bias, int rows, int cols) {
    int64_t n = (int64_t)rows * cols, first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (int64_t)gridDim.x * blockDim.x;
    int64_t packs = cols % XPACK == 0 && aligned16(y) ? n / XPACK : 0;
    for (int64_t k = first; k < packs; k += stride) add_bias_at<XPACK>(y, bias, k * XPACK, cols);
    for (int64_t i = packs * XPACK + first; i < n; i += stride) add_bias_at<1>(y, bias, i, cols);
}

// partial[chunk][c] = Σ over the chunk's 64 rows of x[r, c], rows in order. A thread owns XPACK adjacent
// columns, read as one pack per row when cols is a whole number of packs and x aligned, else one by one.
// The rows come COLUMN_SUM_BATCH at a time, every load issued before the first add: with a pack a thread
// and few threads (one per XPACK columns of a chunk: 768 warps at bert-base's QKV), a load at a time made
// each thread wait out 64 memory round trips, 17 us a launch on an H200 (ncu) for 18.9 MB. The adds keep
// their order, so the sums are the same to the bit. Without __launch_bounds__ ptxas interleaves the loads
// with the adds (two in flight, 40 registers); with it all 16 go first (128 registers: 4 blocks an SM,
// more than the grid of a step's QKV bias gradient fills).
// grid: (chunks, ceil(cols / (XPACK · block))): the chunks on x, whose limit is 2³¹ − 1, not y's 65535; block: 128.
#define COLUMN_SUM_BATCH 16
extern "C" __global__ void __launch_bounds__(128, 4) column_sum_partial(float* partial, const floatX* x, int rows, int cols) {
    int c0 = (blockIdx.y * blockDim.x + threadIdx.x) * XPACK, chunk = blockIdx.x;
    if (c0 >= cols) return;
    bool packed = cols % XPACK == 0 && aligned16(x);
    float acc[XPACK];
#pragma unroll
    for (int j = 0; j < XPACK; j++) acc[j] = 0.0f;
    int r = chunk * 64, r1 = min(rows, (chunk + 1) * 64);
    const floatX* at = x + (int64_t)r * cols + c0;
    for (; r + COLUMN_SUM_BATCH <= r1; r += COLUMN_SUM_BATCH, at += (int64_t)COLUMN_SUM_BATCH * cols) {
        PackX q[COLUMN_SUM_BATCH];
#pragma unroll
        for (int u = 0; u < COLUMN_SUM_BATCH; u++) q[u] = load_columns_pack(at + (int64_t)u * cols, c0, cols, packed);   // 0 past the row's end
#pragma unroll
        for (int u = 0; u < COLUMN_SUM_BATCH; u++) {
            VecX<XPACK> v = unpack(q[u]);
#pragma unroll
            for (int j = 0; j < XPACK; j++) acc[j] += v.v[j];
        }
    }
    for (; r < r1; r++, at += cols) {   // the chunk's last rows, fewer than a batch
        VecX<XPACK> v = load_columns(at, c0, cols, packed);
#pragma unroll
        for (int j = 0; j < XPACK; j++) acc[j] += v.v[j];
    }
#pragma unroll
    for (int j = 0; j < XPACK; j++) if (c0 + j < cols) partial[(int64_t)chunk * cols + c0 + j] = acc[j];
}
