// adamw.cuh: AdamW.GlobalNormClip and AdamW.Step (src/Kernels/Cpu/AdamW.cs): the global gradient norm
// for clipping, and torch.optim.AdamW with the gradient scaled by the clip factor.
#pragma once
#include "common.cuh"

// partial[block] = Σ x² over a grid-stride share: four floats per load (x 16-byte aligned, as device
// allocations are), then the scalar tail. The grid depends on n alone, so the order is fixed.
extern "C" __global__ void squared_norm_partial(float* partial, const float* x, int64_t n) {
    float acc = 0.0f;
    int64_t stride = (int64_t)gridDim.x * blockDim.x, first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t n4 = (uintptr_t)x % 16 == 0 ? n / 4 : 0;
    const float4* x4 = (const float4*)x;
    for (int64_t i = first; i < n4; i += stride) { float4 v = x4[i]; acc += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w; }
    for (int64_t i = 4 * n4 + first; i < n; i += stride) acc += x[i] * x[i];
    float total = block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// stats[1] = the global gradient norm, stats[2] = the clip factor min(1, max_norm / (norm + 1e-6)),
// as torch.nn.utils.clip_grad_norm_ (1 when max_norm is 0). One thread.
extern "C" __global__ void global_norm_clip(float* stats, const float* partial, int blocks, float max_norm) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double sq = 0.0;
    for (int k = 0; k < blocks; k++) sq += partial[k];
    float norm = (float)sqrt(sq);
    stats[1] = norm;
    stats[2] = max_norm > 0.0f ? fminf(1.0f, max_norm / (norm + 1e-6f)) : 1.0f;
}

// torch.optim.AdamW over many tensors in one launch (the multi-tensor apply of llm.c and apex):
// block k updates elements [ranges[2k], ranges[2k+1]) of one tensor, with weight decay
// decays[k]·weight_decay (decays[k] is 1 or 0: HF's no-decay groups); when clear_grads, each gradient
// is zeroed after its use, so the next step needs no separate pass to clear them. params_x, when not 0,
// receives the new parameters rounded to floatX: the copy the bf16 GEMMs read (the float32 params stay
// the master weights, as in torch.autocast). grid: the table's blocks.
extern "C" __global__ void adamw_update_tensors(float* params, floatX* params_x, float* grads, float* m, float* v, const int64_t* ranges,
                                                const float* decays, float lr, float beta1, float beta2, float eps,
                                                float weight_decay, float step_size, float inv_sqrt_bc2,
                                                const float* clip, int clear_grads) {
    int64_t begin = ranges[2 * (int64_t)blockIdx.x], end = ranges[2 * (int64_t)blockIdx.x + 1];
    float decay = 1.0f - lr * weight_decay * decays[blockIdx.x];
    float scale = clip != 0 ? *clip : 1.0f;
    for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
        float g = grads[i] * scale;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        float p = params[i] * decay;
        p -= step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
        params[i] = p;
        if (params_x != 0) params_x[i] = p;
        m[i] = mi; v[i] = vi;
        if (clear_grads) grads[i] = 0.0f;
    }
}

// y = x rounded to floatX: the bf16 copy of the parameters after they are loaded. grid-stride over n.
extern "C" __global__ void copy_to_floatx(floatX* y, const float* x, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) y[i] = x[i];
}
