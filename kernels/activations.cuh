// activations.cuh: exact (erf) GELU and tanh (src/Kernels/Cpu/Activations.cs). BERT's intermediate
// layer is Linear.ForwardGelu on both backends: on the CPU the GEMM applies bias and GELU to each tile
// as it stores it; here cuBLAS's GEMM is followed by bias_gelu_forward, and the bias is kept out of the
// stored pre-activation (gelu_backward adds it back).
#pragma once
#include "common.cuh"

// The division and the exponential of GELU: IEEE's in float32, to stay within a few ulps of the CPU; in
// bf16, whose results keep 8 bits of mantissa, the SFU's (MUFU.RCP, MUFU.EX2: within 2 ulps, and 2 + 1.2·|x|
// ulps), two instructions where the IEEE forms take eight to ten, in kernels that ncu found bound by them.
#ifdef MIXUP_BF16
#define GELU_DIV(a, b) __fdividef(a, b)
#define GELU_EXP(x) __expf(x)
#else
#define GELU_DIV(a, b) ((a) / (b))
#define GELU_EXP(x) expf(x)
#endif

// erf as Activations.Erf on the CPU (Eigen/XLA's float rational approximation on [-4, 4]).
__device__ __forceinline__ float erf_approx(float x) {
    x = fminf(fmaxf(x, -4.0f), 4.0f);
    float x2 = x * x;
    float p = fmaf(x2, -2.72614225801306e-10f, 2.77068142495902e-08f);
    p = fmaf(x2, p, -2.10102402082508e-06f); p = fmaf(x2, p, -5.69250639462346e-05f);
    p = fmaf(x2, p, -7.34990630326855e-04f); p = fmaf(x2, p, -2.95459980854025e-03f);
    p = fmaf(x2, p, -1.60960333262415e-02f);
    float q = fmaf(x2, -1.45660718464996e-05f, -2.13374055278905e-04f);
    q = fmaf(x2, q, -1.68282697438203e-03f); q = fmaf(x2, q, -7.37332916720468e-03f);
    q = fmaf(x2, q, -1.42647390514189e-02f);
    return GELU_DIV(x * p, q);
}

__device__ __forceinline__ float gelu(float v) { return 0.5f * v * (1.0f + erf_approx(v * 0.70710678118654752f)); }

// dy · gelu'(v) = dy · (Φ(v) + v·φ(v))
__device__ __forceinline__ float gelu_grad(float v, float dy) {
    float cdf = 0.5f * (1.0f + erf_approx(v * 0.70710678118654752f));
    float pdf = 0.39894228040143268f * GELU_EXP(-0.5f * v * v);
    return dy * (cdf + v * pdf);
}

// GELU's forward and backward over [rows, cols] share one layout: a block column of threads each owns
// XPACK adjacent columns c0 … of a chunk of rows (grid: (ceil(rows / chunk rows), ceil(cols / (XPACK ·
// block))): the chunks on x, whose limit is 2³¹ − 1; y's 65535 would stop at a million rows). The thread
// reads its bias once, and GELU_BATCH rows' loads at a time, kept as stored (PackX) until it computes and
// stores them, so their latencies overlap (a store between them would serialise them: dx may be dy) in
// few registers. The forward's chunk is one batch (GELU_FORWARD_ROWS): it sums nothing over rows, and
// the more warps, the more loads in flight; bounded to 64 registers, 32 of an SM's 64 warps fit. The
// backward's chunk is GELU_ROWS rows, over which it sums the bias gradient's partials (longer chunks,
// fewer partials to write and add up), two rows' loads at a time (GELU_BACKWARD_BATCH): its erf and exp
// take registers, and at 80 of them (__launch_bounds__(128, 6)) ptxas spills none with two and some
// with three, and 6 blocks an SM hold all 768 blocks of bert-base's 4096 × 3072 in one wave. Measured on
// an H200 (ncu, one launch, the card's clocks): forward 26.3 -> 24.2 us, backward 56.6 -> 37.8 us.
// 128-bit packs when cols is a whole number of them and the pointers are aligned, else one by one.
#define GELU_ROWS 16
#define GELU_BATCH 4
#define GELU_FORWARD_ROWS GELU_BATCH
#define GELU_BACKWARD_BATCH 2

// bias[c0 …] (0 past the row's end, or with no bias)
__device__ __forceinline__ VecX<XPACK> load_bias_columns(const float* bias, int c0, int cols) {
    VecX<XPACK> b;
#pragma unroll
    for (int j = 0; j < XPACK; j++) b.v[j] = bias != 0 && c0 + j < cols ? bias[c0 + j] : 0.0f;
    return b;
}

// y = gelu(pre + bias): BERT's intermediate layer after its GEMM. pre stays the GEMM's output, without
// the bias: the backward adds it again as it reads pre, so both see the same float32 pre-activation
// and the forward writes one [rows, cols] tensor, not two. bias 0: none.
extern "C" __global__ void __launch_bounds__(128, 8) bias_gelu_forward(floatX* y, const floatX* pre, const float* bias, int rows, int cols) {
    int c0 = (blockIdx.y * blockDim.x + threadIdx.x) * XPACK, chunk = blockIdx.x;
    if (c0 >= cols) return;
    bool packed = cols % XPACK == 0 && aligned16(y) && aligned16(pre);
    VecX<XPACK> b = load_bias_columns(bias, c0, cols);
    int r1 = min(rows, (chunk + 1) * GELU_FORWARD_ROWS);
    for (int r = chunk * GELU_FORWARD_ROWS; r < r1; r += GELU_BATCH) {
        PackX v[GELU_BATCH];
#pragma unroll
        for (int u = 0; u < GELU_BATCH; u++)
            if (r + u < r1) v[u] = load_columns_pack(pre + (int64_t)(r + u) * cols + c0, c0, cols, packed);
#pragma unroll
        for (int u = 0; u < GELU_BATCH; u++)
            if (r + u < r1) {
                VecX<XPACK> a = unpack(v[u]);
#pragma unroll
                for (int j = 0; j < XPACK; j++) a.v[j] = gelu(a.v[j] + b.v[j]);
                store_columns(y + (int64_t)(r + u) * cols + c0, a, c0, cols, packed);
            }
    }
}

// dx = dy · gelu'(pre + bias), pre as bias_gelu_forward read it (bias 0: none; dx may be dy), and when
// partial is not 0, partial[chunk][c] = Σ over the chunk's GELU_ROWS rows of dx[r, c], rows in order: the
// bias gradient of the layer before GELU (add_chunk_partials sums the chunks), with no pass of its own.
extern "C" __global__ void __launch_bounds__(128, 6) gelu_backward(floatX* dx, float* partial, const floatX* pre, const float* bias, const floatX* dy, int rows, int cols) {
    int c0 = (blockIdx.y * blockDim.x + threadIdx.x) * XPACK, chunk = blockIdx.x;
    if (c0 >= cols) return;
    bool packed = cols % XPACK == 0 && aligned16(dx) && aligned16(pre) && aligned16(dy);
    VecX<XPACK> b = load_bias_columns(bias, c0, cols);
    float acc[XPACK];
#pragma unroll
    for (int j = 0; j < XPACK; j++) acc[j] = 0.0f;
    int r1 = min(rows, (chunk + 1) * GELU_ROWS);
    for (int r = chunk * GELU_ROWS; r < r1; r += GELU_BACKWARD_BATCH) {
        PackX v[GELU_BACKWARD_BATCH], g[GELU_BACKWARD_BATCH];
#pragma unroll
        for (int u = 0; u < GELU_BACKWARD_BATCH; u++)
            if (r + u < r1) {
                int64_t i = (int64_t)(r + u) * cols + c0;
                v[u] = load_columns_pack(pre + i, c0, cols, packed);
                g[u] = load_columns_pack(dy + i, c0, cols, packed);
            }
#pragma unroll
        for (int u = 0; u < GELU_BACKWARD_BATCH; u++)
            if (r + u < r1) {
                VecX<XPACK> a = unpack(v[u]), d = unpack(g[u]);
#pragma unroll
                for (int j = 0; j < XPACK; j++) { d.v[j] = gelu_grad(a.v[j] + b.v[j], d.v[j]); acc[j] += d.v[j]; }
                store_columns(dx + (int64_t)(r + u) * cols + c0, d, c0, cols, packed);
            }
    }
    if (partial != 0)
#pragma unroll
        for (int j = 0; j < XPACK; j++) if (c0 + j < cols) partial[(int64_t)chunk * cols + c0 + j] = acc[j];
}

// The pooler's tanh ([B, C], a few kilobytes) stays scalar.
extern "C" __global__ void tanh_forward(floatX* y, const floatX* x, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) y[i] = tanhf((float)x[i]);
}

// dx = dy · (1 − y²), from the forward's output.
extern "C" __global__ void tanh_backward(floatX* dx, const floatX* y, const floatX* dy, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dx[i] = (float)dy[i] * (1.0f - (float)y[i] * (float)y[i]);
}
