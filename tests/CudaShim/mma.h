// mma.h for the CUDA shim: the part of CUDA's warp matrix API (nvcuda::wmma) that kernels.cu uses,
// bf16 16×16×16 tiles with float32 accumulators, executed on the CPU.
//
// On a GPU a fragment is spread over the warp's 32 lanes in a layout CUDA leaves unspecified; the
// shim spreads the accumulator too (lane l holds elements 8l … 8l + 7 of the row-major tile), so a
// kernel that reads a tile another lane stored, without a barrier in between, or that assumes a
// layout, computes garbage here as it would on a GPU. Operand fragments hold the whole tile in every
// lane (each lane needs a row of A and a column of B for its outputs). Loads and stores check what
// CUDA requires and a GPU does not forgive: a 256-bit aligned pointer and ldm a multiple of 16 bytes.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include "cuda_bf16.h"

unsigned int shim_lane();

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int m, int n, int k, typename T, typename Layout = void>
struct fragment;

// A (16×16, row r, column c) or B (16×16, row r, column c) widened to float32 (bf16 is exact in it).
template <typename Use, typename Layout>
struct fragment<Use, 16, 16, 16, __nv_bfloat16, Layout> {
    float tile[16][16];
};

template <>
struct fragment<accumulator, 16, 16, 16, float, void> {
    static constexpr int num_elements = 8;
    float x[num_elements];        // this lane's elements 8·lane … 8·lane + 7 of the row-major tile
};

namespace shim {
inline void check(const void* p, unsigned ldm, unsigned element_bytes, const char* what) {
    if ((uintptr_t)p % 32 != 0 || (ldm * element_bytes) % 16 != 0) {
        std::fprintf(stderr, "cuda shim: wmma::%s: pointer %p is not 256-bit aligned or ldm %u is not a multiple of 16 bytes\n", what, p, ldm);
        std::abort();
    }
}
inline int row(int e) { return (int)(shim_lane() * 8 + e) / 16; }
inline int col(int e) { return (int)(shim_lane() * 8 + e) % 16; }
}  // namespace shim

template <typename Use, typename Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, __nv_bfloat16, Layout>& a, const __nv_bfloat16* p, unsigned ldm) {
    shim::check(p, ldm, 2, "load_matrix_sync");
    constexpr bool rows = std::is_same_v<Layout, row_major>;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) a.tile[r][c] = (float)(rows ? p[r * ldm + c] : p[c * ldm + r]);
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& a, const float* p, unsigned ldm, layout_t layout) {
    shim::check(p, ldm, 4, "load_matrix_sync");
    for (int e = 0; e < 8; e++) {
        int r = shim::row(e), c = shim::col(e);
        a.x[e] = layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
    }
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& a, unsigned ldm, layout_t layout) {
    shim::check(p, ldm, 4, "store_matrix_sync");
    for (int e = 0; e < 8; e++) {
        int r = shim::row(e), c = shim::col(e);
        (layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = a.x[e];
    }
}

inline void fill_fragment(fragment<accumulator, 16, 16, 16, float>& a, float v) {
    for (int e = 0; e < 8; e++) a.x[e] = v;
}

// d = a·b + c for this lane's elements, accumulated in float32 (d may be c).
template <typename LayoutA, typename LayoutB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LayoutA>& a,
                     const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB>& b, const fragment<accumulator, 16, 16, 16, float>& c) {
    for (int e = 0; e < 8; e++) {
        int r = shim::row(e), col = shim::col(e);
        float acc = c.x[e];
        for (int kk = 0; kk < 16; kk++) acc += a.tile[r][kk] * b.tile[kk][col];
        d.x[e] = acc;
    }
}

}  // namespace wmma
}  // namespace nvcuda
