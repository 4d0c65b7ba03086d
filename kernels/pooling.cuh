// pooling.cuh: FirstToken.Forward/Backward (src/Kernels/Cpu/FirstToken.cs): BERT's pooler reads the
// [CLS] vector of each sequence.
#pragma once
#include "common.cuh"

// first[b, :] = hidden[b, 0, :]. grid-stride over B·C.
extern "C" __global__ void first_token_forward(floatX* first, const floatX* hidden, int B, int T, int C) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)B * C; i += (int64_t)gridDim.x * blockDim.x) {
        int b = (int)(i / C), c = (int)(i % C);
        first[i] = hidden[(int64_t)b * T * C + c];
    }
}

// dhidden = 0 except dhidden[b, 0, :] = dfirst[b, :], N elements at flat index i (N = XPACK: one pack).
template <int N>
__device__ __forceinline__ void first_token_backward_at(floatX* dhidden, const floatX* dfirst, int64_t i, int T, int C) {
    int64_t bt = i / C;
    int c = (int)(i - bt * C), t = (int)(bt % T), b = (int)(bt / T);
    VecX<N> v;
#pragma unroll
    for (int j = 0; j < N; j++) v.v[j] = t == 0 ? (float)dfirst[(int64_t)b * C + c + j] : 0.0f;
    store_x<N>(dhidden + i, v);
}

// first_token_backward_at over [B, T, C]: grid-stride over packs (C a whole number of them, dhidden aligned),
// else over elements. An element at a time (a 2-byte store and 64-bit divisions each) it took 16.5 us on an
// H200 (ncu) to write bert-base's 6.3 MB.
extern "C" __global__ void first_token_backward(floatX* dhidden, const floatX* dfirst, int B, int T, int C) {
    int64_t n = (int64_t)B * T * C, first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (int64_t)gridDim.x * blockDim.x;
    int64_t packs = C % XPACK == 0 && aligned16(dhidden) ? n / XPACK : 0;
    for (int64_t k = first; k < packs; k += stride) first_token_backward_at<XPACK>(dhidden, dfirst, k * XPACK, T, C);
    for (int64_t i = packs * XPACK + first; i < n; i += stride) first_token_backward_at<1>(dhidden, dfirst, i, T, C);
}
