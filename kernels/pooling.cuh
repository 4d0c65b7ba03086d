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

// dhidden = 0 except dhidden[b, 0, :] = dfirst[b, :]. grid-stride over B·T·C.
extern "C" __global__ void first_token_backward(floatX* dhidden, const floatX* dfirst, int B, int T, int C) {
    int64_t n = (int64_t)B * T * C;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C); int64_t bt = i / C; int t = (int)(bt % T), b = (int)(bt / T);
        dhidden[i] = t == 0 ? (float)dfirst[(int64_t)b * C + c] : 0.0f;
    }
}
