// kernels.cu: the CUDA kernels of mixup-bert, forward and backward side by side.
//
// Each kernel mirrors one CPU op of src/Kernels/Cpu (named in its comment) and is checked against
// it: in CI by compiling this file a second time with the host C++ compiler against
// tests/CudaShim/cuda_shim.h, and on a GPU by `mixup-bert selftest --backend cuda`.
// GEMMs are not here: they run on cuBLAS (src/Kernels/Cuda/CuBlas.cs).
//
// Rules that keep the file runnable on the CPU shim as well as on a GPU:
//  - every kernel is extern "C" (looked up by name) and takes pointers, ints, floats or unsigned;
//  - a thread never returns before a __syncthreads() or warp shuffle that the rest of its block
//    still reaches (guard work with `if (valid)` instead), and shuffles use the full warp;
//  - no atomics: every reduction has a fixed order, so results are deterministic run to run.
//
// Activations are float32 (floatX) now; the type is named so that a bf16 build with float32
// master weights can change it in one place.

typedef float floatX;

#define WARP 32

// ---------------------------------------------------------------------------------------------
// helpers

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ float block_sum(float v) {
    __shared__ float partial[WARP];
    int lane = threadIdx.x % WARP, warp = threadIdx.x / WARP, warps = blockDim.x / WARP;
    v = warp_sum(v);
    __syncthreads();                  // partial[] may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    float total = 0.0f;
    for (int w = 0; w < warps; w++) total += partial[w];   // fixed order: deterministic
    return total;
}

// Dropout's mask: the counter-based hash of Dropout.Uniform in src/Kernels/Cpu/Dropout.cs, bit for bit.
__device__ __forceinline__ unsigned int mix32(unsigned int h) {
    h ^= h >> 16; h *= 0x85EBCA6Bu;
    h ^= h >> 13; h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

__device__ __forceinline__ float dropout_uniform(unsigned int key, unsigned int index) {
    unsigned int h = mix32(index ^ key);
    h = mix32(h + 0x9E3779B9u + key);
    return (float)(h >> 8) * (1.0f / 16777216.0f);
}

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
    return x * p / q;
}

// ---------------------------------------------------------------------------------------------
// embeddings (Embedding.Forward/Backward; the mask part mirrors BertClassifier's union mask)

// out[n, :] = word[id] + position[t] + type[type_id], with, when partner != 0 and mix_words,
// the word part λ·word[id] + (1−λ)·word[partner's id]. When partner != 0, mask_out is the union
// of the example's and its partner's masks (a side with weight 0 contributes nothing).
// grid: B·T blocks (one token each); block: any multiple of 32.
extern "C" __global__ void embedding_forward(floatX* out, float* mask_out, const float* word, const float* pos,
                                             const float* type, const int* ids, const int* type_ids, const float* mask,
                                             const int* partner, const float* lambda, int mix_words, int B, int T, int C) {
    int n = blockIdx.x, b = n / T, t = n % T;
    const float* w = word + (long)ids[n] * C;
    const float* p = pos + (long)t * C;
    const float* y = type + (long)type_ids[n] * C;
    floatX* o = out + (long)n * C;
    if (partner != 0 && mix_words) {
        float l = lambda[b];
        const float* w2 = word + (long)ids[partner[b] * T + t] * C;
        for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = (l * w[c] + (1.0f - l) * w2[c] + p[c]) + y[c];
    } else {
        for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = (w[c] + p[c]) + y[c];
    }
    if (threadIdx.x == 0 && mask_out != 0) {
        if (partner != 0) {
            float l = lambda[b];
            float own = l > 0.0f ? mask[n] : 0.0f, other = l < 1.0f ? mask[partner[b] * T + t] : 0.0f;
            mask_out[n] = fmaxf(own, other);
        } else {
            mask_out[n] = mask[n];
        }
    }
}

// Scatter-adds dout into the tables' gradients. Each thread owns one channel and walks every token
// in order: no races and a fixed summation order. grid: ceil(C / block) blocks.
extern "C" __global__ void embedding_backward(float* dword, float* dpos, float* dtype, const floatX* dout,
                                              const int* ids, const int* type_ids, const int* partner, const float* lambda,
                                              int mix_words, int B, int T, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;   // no barrier in this kernel
    for (int n = 0; n < B * T; n++) {
        float g = dout[(long)n * C + c];
        int b = n / T, t = n % T;
        if (partner != 0 && mix_words) {
            float l = lambda[b];
            dword[(long)ids[n] * C + c] += l * g;
            dword[(long)ids[partner[b] * T + t] * C + c] += (1.0f - l) * g;
        } else {
            dword[(long)ids[n] * C + c] += g;
        }
        dpos[(long)t * C + c] += g;
        dtype[(long)type_ids[n] * C + c] += g;
    }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm with the residual add and the dropout before it fused
// (Dropout.Forward + TensorPrimitives.Add + LayerNorm.Forward)

// sum = residual + dropout(x) (residual may be 0; p = 0 means no dropout); out = LN(sum).
// sum_out may be 0 when sum is x itself. grid: N blocks (one row each); block: multiple of 32.
extern "C" __global__ void residual_layernorm_forward(floatX* out, floatX* sum_out, float* mean_out, float* rstd_out,
                                                      const floatX* x, const floatX* residual, const float* gamma,
                                                      const float* beta, int N, int C, float eps, float p, unsigned int key) {
    int row = blockIdx.x;
    const floatX* xr = x + (long)row * C;
    floatX* s = sum_out != 0 ? sum_out + (long)row * C : 0;
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    float local = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = xr[c];
        if (p > 0.0f) v = dropout_uniform(key, (unsigned int)(row * C + c)) >= p ? v * scale : 0.0f;
        if (residual != 0) v += residual[(long)row * C + c];
        if (s != 0) s[c] = v;
        local += v;
    }
    float mean = block_sum(local) / C;
    const floatX* src = s != 0 ? s : xr;   // each thread reads back only what it wrote
    local = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) { float d = src[c] - mean; local += d * d; }
    float var = block_sum(local) / C;
    float rstd = 1.0f / sqrtf(var + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        out[(long)row * C + c] = fmaf((src[c] - mean) * rstd, gamma[c], beta[c]);
    if (threadIdx.x == 0) { mean_out[row] = mean; rstd_out[row] = rstd; }
}

// dx (+)= rstd · (g − mean(g) − x̂ · mean(g·x̂)), g = dy·γ. grid: N blocks; block: multiple of 32.
extern "C" __global__ void layernorm_backward_input(floatX* dx, const floatX* dy, const floatX* x, const float* mean,
                                                    const float* rstd, const float* gamma, int N, int C, int accumulate) {
    int row = blockIdx.x;
    const floatX* dyr = dy + (long)row * C;
    const floatX* xr = x + (long)row * C;
    float mu = mean[row], rs = rstd[row];
    float sg = 0.0f, sgx = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float g = dyr[c] * gamma[c];
        float xhat = (xr[c] - mu) * rs;
        sg += g; sgx += g * xhat;
    }
    float mean_g = block_sum(sg) / C;
    float mean_gx = block_sum(sgx) / C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float g = dyr[c] * gamma[c];
        float xhat = (xr[c] - mu) * rs;
        float v = rs * (g - mean_g - xhat * mean_gx);
        long i = (long)row * C + c;
        dx[i] = accumulate ? dx[i] + v : v;
    }
}

// Per chunk of 64 rows (Reduce.RowsPerChunk): partial[chunk][0][c] = Σ dy·x̂, partial[chunk][1][c] = Σ dy,
// rows in order. grid: (ceil(C / block), chunks).
extern "C" __global__ void layernorm_backward_params_partial(float* partial, const floatX* dy, const floatX* x,
                                                             const float* mean, const float* rstd, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c >= C) return;
    float dg = 0.0f, db = 0.0f;
    int r1 = min(N, (chunk + 1) * 64);
    for (int r = chunk * 64; r < r1; r++) {
        float g = dy[(long)r * C + c];
        float xhat = (x[(long)r * C + c] - mean[r]) * rstd[r];
        dg = fmaf(g, xhat, dg);
        db += g;
    }
    partial[((long)chunk * 2) * C + c] = dg;
    partial[((long)chunk * 2 + 1) * C + c] = db;
}

// out[c] += Σ_chunk partial[chunk·stride + c], chunks in order. grid: ceil(C / block).
extern "C" __global__ void add_chunk_partials(float* out, const float* partial, int chunks, int C, int stride) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = out[c];
    for (int k = 0; k < chunks; k++) acc += partial[(long)k * stride + c];
    out[c] = acc;
}

// ---------------------------------------------------------------------------------------------
// bias (Activations.AddBias; Reduce.AddColumnSums for its gradient)

// y[r, c] += bias[c]. grid-stride over rows·cols.
extern "C" __global__ void add_bias(floatX* y, const float* bias, int rows, int cols) {
    long n = (long)rows * cols;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        y[i] += bias[i % cols];
}

// partial[chunk][c] = Σ over the chunk's 64 rows of x[r, c], in order. grid: (ceil(C / block), chunks).
extern "C" __global__ void column_sum_partial(float* partial, const floatX* x, int rows, int cols) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (c >= cols) return;
    float acc = 0.0f;
    int r1 = min(rows, (chunk + 1) * 64);
    for (int r = chunk * 64; r < r1; r++) acc += x[(long)r * cols + c];
    partial[(long)chunk * cols + c] = acc;
}

// ---------------------------------------------------------------------------------------------
// elementwise: GELU, tanh, dropout (Activations, Dropout)

extern "C" __global__ void gelu_forward(floatX* y, const floatX* x, long n) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erf_approx(v * 0.70710678118654752f));
    }
}

// dx = dy · (Φ(x) + x·φ(x)); dx may be dy.
extern "C" __global__ void gelu_backward(floatX* dx, const floatX* x, const floatX* dy, long n) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erf_approx(v * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

extern "C" __global__ void tanh_forward(floatX* y, const floatX* x, long n) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) y[i] = tanhf(x[i]);
}

// dx = dy · (1 − y²), from the forward's output.
extern "C" __global__ void tanh_backward(floatX* dx, const floatX* y, const floatX* dy, long n) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

// y = x · keep / (1 − p), keep = uniform(key, i) ≥ p; y may be x. Also serves attention dropout
// (the probabilities' flat index is the CPU's bh·T·T + j).
extern "C" __global__ void dropout_forward(floatX* y, const floatX* x, long n, float p, unsigned int key) {
    float scale = 1.0f / (1.0f - p);
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x)
        y[i] = dropout_uniform(key, (unsigned int)i) >= p ? x[i] * scale : 0.0f;
}

// dx (+)= dy · keep / (1 − p), the forward's mask.
extern "C" __global__ void dropout_backward(floatX* dx, const floatX* dy, long n, float p, unsigned int key, int accumulate) {
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float g = (p <= 0.0f || dropout_uniform(key, (unsigned int)i) >= p) ? dy[i] * scale : 0.0f;
        dx[i] = accumulate ? dx[i] + g : g;
    }
}

// ---------------------------------------------------------------------------------------------
// attention (Attention.Forward/Backward): heads permuted so that cuBLAS runs one strided-batched
// GEMM over all B·H heads; the softmax with scale and padding mask is a kernel of its own.

// qkv [B, T, 3C] → q, k, v [B, H, T, d]. grid-stride over B·T·C.
extern "C" __global__ void attention_split_heads(floatX* q, floatX* k, floatX* v, const floatX* qkv, int B, int T, int C, int H) {
    int d = C / H;
    long n = (long)B * T * C;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        int c = (int)(i % C); long bt = i / C; int t = (int)(bt % T), b = (int)(bt / T);
        int h = c / d, j = c % d;
        long dst = (((long)b * H + h) * T + t) * d + j;
        const floatX* src = qkv + bt * 3 * C + c;
        q[dst] = src[0]; k[dst] = src[C]; v[dst] = src[2 * C];
    }
}

// The backward of attention_split_heads: dq, dk, dv [B, H, T, d] → dqkv [B, T, 3C].
extern "C" __global__ void attention_split_heads_backward(floatX* dqkv, const floatX* dq, const floatX* dk, const floatX* dv,
                                                          int B, int T, int C, int H) {
    int d = C / H;
    long n = (long)B * T * C;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        int c = (int)(i % C); long bt = i / C; int t = (int)(bt % T), b = (int)(bt / T);
        int h = c / d, j = c % d;
        long src = (((long)b * H + h) * T + t) * d + j;
        floatX* dst = dqkv + bt * 3 * C + c;
        dst[0] = dq[src]; dst[C] = dk[src]; dst[2 * C] = dv[src];
    }
}

// ctx_heads [B, H, T, d] → ctx [B, T, C] (merge = 1), or back (merge = 0, for the backward).
extern "C" __global__ void attention_merge_heads(floatX* ctx, floatX* ctx_heads, int B, int T, int C, int H, int merge) {
    int d = C / H;
    long n = (long)B * T * C;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        int c = (int)(i % C); long bt = i / C; int t = (int)(bt % T), b = (int)(bt / T);
        int h = c / d, j = c % d;
        long hi = (((long)b * H + h) * T + t) * d + j;
        if (merge) ctx[i] = ctx_heads[hi]; else ctx_heads[hi] = ctx[i];
    }
}

// probs[row] = softmax(scale · scores[row]) over the keys whose mask is non-zero, 0 elsewhere
// (a row with no key to attend to is all zeros). One warp per row of the [B, H, T, T] scores.
// grid: ceil(B·H·T / (block / 32)); block: multiple of 32.
extern "C" __global__ void attention_softmax_forward(floatX* probs, const floatX* scores, const float* key_mask,
                                                     int B, int H, int T, float scale) {
    int lane = threadIdx.x % WARP;
    long row = (long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    bool valid = row < (long)B * H * T;
    long r = valid ? row : 0;
    int b = (int)(r / ((long)H * T));
    const floatX* s = scores + r * T;
    const float* mask = key_mask + (long)b * T;
    float mx = -INFINITY;
    for (int j = lane; j < T; j += WARP) if (mask[j] != 0.0f) mx = fmaxf(mx, s[j]);
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j < T; j += WARP) if (mask[j] != 0.0f) sum += expf((s[j] - mx) * scale);
    sum = warp_sum(sum);
    float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    if (valid)
        for (int j = lane; j < T; j += WARP)
            probs[r * T + j] = mask[j] != 0.0f ? expf((s[j] - mx) * scale) * inv : 0.0f;
}

// dscores = P ⊙ (dP − Σ_j P·dP) · scale; dscores may be dprobs. One warp per row.
extern "C" __global__ void attention_softmax_backward(floatX* dscores, const floatX* probs, const floatX* dprobs,
                                                      int B, int H, int T, float scale) {
    int lane = threadIdx.x % WARP;
    long row = (long)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    bool valid = row < (long)B * H * T;
    long r = valid ? row : 0;
    const floatX* p = probs + r * T;
    const floatX* dp = dprobs + r * T;
    float dot = 0.0f;
    for (int j = lane; j < T; j += WARP) dot += p[j] * dp[j];
    dot = warp_sum(dot);
    if (valid)
        for (int j = lane; j < T; j += WARP) {
            float v = (dp[j] - dot) * p[j] * scale;
            dscores[r * T + j] = v;
        }
}

// ---------------------------------------------------------------------------------------------
// pooler input and mixing (BertClassifier's [CLS] gather, MixRows / UnmixRows)

// cls[b, :] = hidden[b, 0, :]. grid-stride over B·C.
extern "C" __global__ void gather_cls(floatX* cls, const floatX* hidden, int B, int T, int C) {
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (long)B * C; i += (long)gridDim.x * blockDim.x) {
        int b = (int)(i / C), c = (int)(i % C);
        cls[i] = hidden[(long)b * T * C + c];
    }
}

// dhidden = 0 except dhidden[b, 0, :] = dcls[b, :]. grid-stride over B·T·C.
extern "C" __global__ void gather_cls_backward(floatX* dhidden, const floatX* dcls, int B, int T, int C) {
    long n = (long)B * T * C;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        int c = (int)(i % C); long bt = i / C; int t = (int)(bt % T), b = (int)(bt / T);
        dhidden[i] = t == 0 ? dcls[(long)b * C + c] : 0.0f;
    }
}

// dst[b, r, :] = λ_b · src[b, r, :] + (1 − λ_b) · src[partner_b, r, :] (rows = T for tmix, 1 for senmix).
extern "C" __global__ void mix_rows(floatX* dst, const floatX* src, const int* partner, const float* lambda,
                                   int B, int rows, int C) {
    long n = (long)B * rows * C, per = (long)rows * C;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        int b = (int)(i / per); long off = i % per;
        float l = lambda[b];
        dst[i] = l * src[i] + (1.0f - l) * src[(long)partner[b] * per + off];
    }
}

// dsrc[e] = Σ over examples b in order: λ_b·g[b] if b = e, plus (1 − λ_b)·g[b] if partner_b = e.
// The same order as the CPU's UnmixRows, without atomics. grid-stride over B·rows·C.
extern "C" __global__ void mix_rows_backward(floatX* dsrc, const floatX* g, const int* partner, const float* lambda,
                                            int B, int rows, int C) {
    long n = (long)B * rows * C, per = (long)rows * C;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        int e = (int)(i / per); long off = i % per;
        float acc = 0.0f;
        for (int b = 0; b < B; b++) {
            float l = lambda[b], gb = g[(long)b * per + off];
            if (b == e) acc += l * gb;
            if (partner[b] == e) acc += (1.0f - l) * gb;
        }
        dsrc[i] = acc;
    }
}

// ---------------------------------------------------------------------------------------------
// loss (CrossEntropy with targets λ·onehot(y) + (1−λ)·onehot(y_partner))

// One thread per example: softmax of its logits, its loss −Σ t·log p, and dlogits = (p − t) / B.
// partner may be 0 (plain one-hot targets). losses[b] receives the example's loss.
extern "C" __global__ void mixed_cross_entropy(float* losses, floatX* probs, floatX* dlogits, const floatX* logits,
                                               const int* labels, const int* partner, const float* lambda, int B, int L) {
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= B) return;
    const floatX* z = logits + (long)b * L;
    float mx = -INFINITY;
    for (int c = 0; c < L; c++) mx = fmaxf(mx, z[c]);
    float sum = 0.0f;
    for (int c = 0; c < L; c++) sum += expf(z[c] - mx);
    float log_sum = logf(sum) + mx;
    float l = partner != 0 ? lambda[b] : 1.0f;
    int ya = labels[b], yb = partner != 0 ? labels[partner[b]] : ya;
    float loss = 0.0f;
    for (int c = 0; c < L; c++) {
        float t = (c == ya ? l : 0.0f) + (c == yb ? 1.0f - l : 0.0f);
        float logp = z[c] - log_sum;
        float p = expf(logp);
        probs[(long)b * L + c] = p;
        if (dlogits != 0) dlogits[(long)b * L + c] = (p - t) / B;
        loss -= t * logp;
    }
    losses[b] = loss;
}

// ---------------------------------------------------------------------------------------------
// optimizer: global gradient norm for clipping, and AdamW (AdamW.Step, after clipping)

// partial[block] = Σ x² over a grid-stride share. Launch with a fixed grid so the order is fixed.
extern "C" __global__ void squared_norm_partial(float* partial, const float* x, long n) {
    float acc = 0.0f;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) acc += x[i] * x[i];
    float total = block_sum(acc);
    if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// stats[0] = mean loss over B examples, stats[1] = global gradient norm, stats[2] = the clip factor
// min(1, max_norm / (norm + 1e-6)) as torch.nn.utils.clip_grad_norm_. One thread; partial may be 0
// (no gradient: evaluation).
extern "C" __global__ void finalize_step_stats(float* stats, const float* losses, int B, const float* partial, int blocks,
                                               float max_norm) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double loss = 0.0;
    for (int b = 0; b < B; b++) loss += losses[b];
    stats[0] = (float)(loss / B);
    if (partial != 0) {
        double sq = 0.0;
        for (int k = 0; k < blocks; k++) sq += partial[k];
        float norm = (float)sqrt(sq);
        stats[1] = norm;
        stats[2] = max_norm > 0.0f ? fminf(1.0f, max_norm / (norm + 1e-6f)) : 1.0f;
    }
}

// torch.optim.AdamW on one tensor, the gradient first scaled by the clip factor stats[2].
// step_size = lr / (1 − β1ᵗ), inv_sqrt_bc2 = 1 / √(1 − β2ᵗ).
extern "C" __global__ void adamw_update(float* params, const float* grads, float* m, float* v, long n, float lr,
                                        float beta1, float beta2, float eps, float weight_decay, float step_size,
                                        float inv_sqrt_bc2, const float* stats) {
    float clip = stats != 0 ? stats[2] : 1.0f;
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        float g = grads[i] * clip;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        float p = params[i] * (1.0f - lr * weight_decay);
        params[i] = p - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
        m[i] = mi; v[i] = vi;
    }
}
