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
// as torch.nn.utils.clip_grad_norm_ (1 when max_norm is 0). One warp: lane l adds partials l, l + 32, …
// in order, in double, then the lanes' sums meet in a fixed shuffle tree (deterministic). One thread
// adding the 1024 partials one after another took 35 us on an H200 (ncu). grid: 1; block: 32.
extern "C" __global__ void global_norm_clip(float* stats, const float* partial, int blocks, float max_norm) {
    if (blockIdx.x != 0 || threadIdx.x >= WARP) return;
    double sq = 0.0;
    for (int k = threadIdx.x; k < blocks; k += WARP) sq += partial[k];
    for (int offset = WARP / 2; offset > 0; offset /= 2) sq += __shfl_xor_sync(0xffffffffu, sq, offset);
    if (threadIdx.x != 0) return;
    float norm = (float)sqrt(sq);
    stats[1] = norm;
    stats[2] = max_norm > 0.0f ? fminf(1.0f, max_norm / (norm + 1e-6f)) : 1.0f;
}

// One element of torch.optim.AdamW: g the clipped gradient, p, mi, vi updated in place.
__device__ __forceinline__ void adamw_one(float& p, float& mi, float& vi, float g, float decay, float beta1, float beta2,
                                          float eps, float step_size, float inv_sqrt_bc2) {
    mi = beta1 * mi + (1.0f - beta1) * g;
    vi = beta2 * vi + (1.0f - beta2) * g * g;
    p = p * decay - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
}

// adamw_one on element i of the arrays, one by one.
__device__ __forceinline__ void adamw_at(float* params, floatX* params_x, float* grads, float* m, float* v, int64_t i, float scale,
                                         float decay, float beta1, float beta2, float eps, float step_size, float inv_sqrt_bc2,
                                         int clear_grads) {
    float p = params[i], mi = m[i], vi = v[i];
    adamw_one(p, mi, vi, grads[i] * scale, decay, beta1, beta2, eps, step_size, inv_sqrt_bc2);
    params[i] = p; m[i] = mi; v[i] = vi;
    if (params_x != 0) params_x[i] = p;
    if (clear_grads) grads[i] = 0.0f;
}

// torch.optim.AdamW over many tensors in one launch (the multi-tensor apply of llm.c and apex):
// block k updates elements [ranges[2k], ranges[2k+1]) of one tensor, with weight decay
// decays[k]·weight_decay (decays[k] is 1 or 0: HF's no-decay groups). Blocks k < clear_blocks zero each
// gradient after its use, so the next step needs no separate pass to clear them; the host puts the tensors
// the backward overwrites (the weight-gradient GEMMs, beta 0) last, where clearing would be wasted
// traffic (kernel images from before this treated any nonzero as "all": still correct). params_x, when not 0,
// receives the new parameters rounded to floatX: the copy the bf16 GEMMs read (the float32 params stay
// the master weights, as in torch.autocast). A range is read as float4 from its first element at a
// multiple of 4 to its last whole float4, the elements around them one by one (the float32 arrays
// share one alignment: every index is as aligned in all four). grid: the table's blocks.
extern "C" __global__ void adamw_update_tensors(float* params, floatX* params_x, float* grads, float* m, float* v, const int64_t* ranges,
                                                const float* decays, float lr, float beta1, float beta2, float eps,
                                                float weight_decay, float step_size, float inv_sqrt_bc2,
                                                const float* clip, int clear_blocks) {
    int64_t begin = ranges[2 * (int64_t)blockIdx.x], end = ranges[2 * (int64_t)blockIdx.x + 1];
    int clear_grads = (int)blockIdx.x < clear_blocks;
    float decay = 1.0f - lr * weight_decay * decays[blockIdx.x];
    float scale = clip != 0 ? *clip : 1.0f;
    bool packed = aligned16(params) && aligned16(grads) && aligned16(m) && aligned16(v);
    int64_t body = packed ? min(end, (begin + 3) / 4 * 4) : end, body_end = packed ? max(body, end / 4 * 4) : end;
    for (int64_t i = begin + threadIdx.x; i < body; i += blockDim.x)
        adamw_at(params, params_x, grads, m, v, i, scale, decay, beta1, beta2, eps, step_size, inv_sqrt_bc2, clear_grads);
    for (int64_t k = body / 4 + threadIdx.x; k < body_end / 4; k += blockDim.x) {
        float4 p = ((float4*)params)[k], mi = ((float4*)m)[k], vi = ((float4*)v)[k], g = ((float4*)grads)[k];
        adamw_one(p.x, mi.x, vi.x, g.x * scale, decay, beta1, beta2, eps, step_size, inv_sqrt_bc2);
        adamw_one(p.y, mi.y, vi.y, g.y * scale, decay, beta1, beta2, eps, step_size, inv_sqrt_bc2);
        adamw_one(p.z, mi.z, vi.z, g.z * scale, decay, beta1, beta2, eps, step_size, inv_sqrt_bc2);
        adamw_one(p.w, mi.w, vi.w, g.w * scale, decay, beta1, beta2, eps, step_size, inv_sqrt_bc2);
        ((float4*)params)[k] = p; ((float4*)m)[k] = mi; ((float4*)v)[k] = vi;
        if (params_x != 0) { floatX* px = params_x + 4 * k; px[0] = p.x; px[1] = p.y; px[2] = p.z; px[3] = p.w; }
        if (clear_grads) ((float4*)grads)[k] = float4{0.0f, 0.0f, 0.0f, 0.0f};
    }
    for (int64_t i = body_end + threadIdx.x; i < end; i += blockDim.x)
        adamw_at(params, params_x, grads, m, v, i, scale, decay, beta1, beta2, eps, step_size, inv_sqrt_bc2, clear_grads);
}

// y = x rounded to floatX: the bf16 copy of the parameters after they are loaded. grid-stride over n.
extern "C" __global__ void copy_to_floatx(floatX* y, const float* x, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) y[i] = x[i];
}
