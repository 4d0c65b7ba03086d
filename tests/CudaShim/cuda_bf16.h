// cuda_bf16.h for the CUDA shim: __nv_bfloat16 as CUDA declares it for kernels.cu's purposes, a
// 16-bit value converted from float with round-to-nearest-even (as __float2bfloat16) and to float
// exactly. The arithmetic operators are declared, as CUDA's are, so that an expression mixing a
// bf16 and a float is as ambiguous here as under nvcc (kernels.cu converts explicitly instead).
#pragma once
#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
    uint16_t __x;
    __nv_bfloat16() = default;
    __nv_bfloat16(float f) {
        uint32_t b;
        std::memcpy(&b, &f, 4);
        if ((b & 0x7FFFFFFFu) > 0x7F800000u) { __x = 0x7FFF; return; }   // NaN stays NaN (CUDA's canonical bf16 NaN)
        b += 0x7FFFu + ((b >> 16) & 1u);                                   // round to nearest, ties to even
        __x = (uint16_t)(b >> 16);
    }
    operator float() const {
        uint32_t b = (uint32_t)__x << 16;
        float f;
        std::memcpy(&f, &b, 4);
        return f;
    }
};

__nv_bfloat16 operator+(const __nv_bfloat16& a, const __nv_bfloat16& b);
__nv_bfloat16 operator-(const __nv_bfloat16& a, const __nv_bfloat16& b);
__nv_bfloat16 operator*(const __nv_bfloat16& a, const __nv_bfloat16& b);
__nv_bfloat16 operator/(const __nv_bfloat16& a, const __nv_bfloat16& b);
__nv_bfloat16& operator+=(__nv_bfloat16& a, const __nv_bfloat16& b);
__nv_bfloat16& operator*=(__nv_bfloat16& a, const __nv_bfloat16& b);

// CUDA's conversions that kernels.cu uses to pack two bf16 into the 32-bit registers of mma.sync
inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
