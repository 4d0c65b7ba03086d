// embedding.cuh: Embedding.Forward/Backward (src/Kernels/Cpu/Embedding.cs), with mixup's word-embedding
// site fused in: example b's word vectors are interpolated with its partner's before the position
// and type embeddings are added.
#pragma once
#include "common.cuh"

// One token's row of embedding_forward, W columns at a time (W = XPACK: 128-bit packs; W = 1: one by one).
template <int W>
__device__ void embedding_forward_row(floatX* o, const float* w, const float* w2, const float* p, const float* y, float l, int C) {
    for (int c = threadIdx.x * W; c < C; c += blockDim.x * W) {
        VecX<W> e = load_f<W>(w + c), pv = load_f<W>(p + c), tv = load_f<W>(y + c);
        if (w2 != 0) {
            VecX<W> e2 = load_f<W>(w2 + c);
#pragma unroll
            for (int j = 0; j < W; j++) e.v[j] = l * e.v[j] + (1.0f - l) * e2.v[j];
        }
#pragma unroll
        for (int j = 0; j < W; j++) e.v[j] = (e.v[j] + pv.v[j]) + tv.v[j];
        store_x<W>(o + c, e);
    }
}

// out[n, :] = word[id] + position[t] + type[type_id]; when partner != 0 the word part is
// λ_b·word[id[b, t]] + (1−λ_b)·word[id[partner_b, t]]. In 128-bit packs when C is a whole number of
// them and the tables and out are aligned. grid: B·T blocks (one token each); block: any multiple of 32.
extern "C" __global__ void embedding_forward(floatX* out, const int* ids, const int* type_ids, const float* word,
                                             const float* pos, const float* type, const int* partner, const float* lambda,
                                             int B, int T, int C) {
    int n = blockIdx.x, b = n / T, t = n % T;
    const float* w = word + (int64_t)ids[n] * C;
    const float* w2 = partner != 0 ? word + (int64_t)ids[partner[b] * T + t] * C : 0;
    const float* p = pos + (int64_t)t * C;
    const float* y = type + (int64_t)type_ids[n] * C;
    float l = partner != 0 ? lambda[b] : 1.0f;
    floatX* o = out + (int64_t)n * C;
    if (C % XPACK == 0 && aligned16(out) && aligned16(word) && aligned16(pos) && aligned16(type))
        embedding_forward_row<XPACK>(o, w, w2, p, y, l, C);
    else
        embedding_forward_row<1>(o, w, w2, p, y, l, C);
}

// The backward in parallel and still deterministic, as llm.c's encoder backward: the host sorts the
// batch's (row, token, weight) entries into one bucket per table row (Cuda.Embedding.Buckets), entries
// in the CPU's order (token by token, an example's own word before its partner's), and one thread per
// (bucket, channel) adds them in that order, so no two threads add into the same element.
// A bucket of more than EMBEDDING_SEGMENT entries (the type table's: every token of a type; [PAD],
// [CLS]) would leave one thread walking thousands of entries, one dependent sum at a time (320 us a
// step for bert-base's type table on an H200): the host cuts it into segments of at most that many,
// embedding_backward_segments sums each segment in parallel and embedding_add_segments adds a bucket's
// segment sums to its row in order, so the result is still the same every run.
#define EMBEDDING_SEGMENT 32

// acc + Σ_{e in [first, end)} weights[e]·dout[tokens[e], c], added one entry at a time, in order.
__device__ __forceinline__ float embedding_entries_sum(float acc, const floatX* dout, const int* tokens, const float* weights, int first,
                                                       int end, int c, int C) {
    for (int e = first; e < end; e++) acc += weights[e] * (float)dout[(int64_t)tokens[e] * C + c];
    return acc;
}

// dtable[rows[k], c] += the sum of bucket k's entries, for the buckets of at most EMBEDDING_SEGMENT
// entries (the longer ones are the segments' work). grid: (buckets, ceil(C / block)).
extern "C" __global__ void embedding_backward_rows(float* dtable, const floatX* dout, const int* rows, const int* starts,
                                                   const int* tokens, const float* weights, int C) {
    int k = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C || starts[k + 1] - starts[k] > EMBEDDING_SEGMENT) return;
    float* out = dtable + (int64_t)rows[k] * C + c;
    *out = embedding_entries_sum(*out, dout, tokens, weights, starts[k], starts[k + 1], c, C);   // the CPU's order
}

// partial[s, c] = the sum of segment s's entries [segment_starts[s], segment_ends[s]). grid: (segments, ceil(C / block)).
extern "C" __global__ void embedding_backward_segments(float* partial, const floatX* dout, const int* segment_starts, const int* segment_ends,
                                                       const int* tokens, const float* weights, int C) {
    int s = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    partial[(int64_t)s * C + c] = embedding_entries_sum(0.0f, dout, tokens, weights, segment_starts[s], segment_ends[s], c, C);
}

// dtable[rows[buckets[j]], c] += Σ_s partial[s, c] over long bucket j's segments [first_segment[j],
// first_segment[j + 1]), in order. grid: (long buckets, ceil(C / block)).
extern "C" __global__ void embedding_add_segments(float* dtable, const float* partial, const int* rows, const int* buckets,
                                                  const int* first_segment, int C) {
    int j = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float* out = dtable + (int64_t)rows[buckets[j]] * C + c;
    float acc = 0.0f;
    for (int s = first_segment[j]; s < first_segment[j + 1]; s++) acc += partial[(int64_t)s * C + c];
    *out += acc;
}

// dpos[t, c] += Σ_b dout[b, t, c], examples in order. grid: (T, ceil(C / block)).
extern "C" __global__ void embedding_backward_positions(float* dpos, const floatX* dout, int B, int T, int C) {
    int t = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = dpos[(int64_t)t * C + c];
    for (int b = 0; b < B; b++) acc += (float)dout[((int64_t)b * T + t) * C + c];
    dpos[(int64_t)t * C + c] = acc;
}
