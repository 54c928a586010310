/* The kernels compiled for AVX-512 (16 lanes of 32 bits; F, BW, DQ, VL, CD as
 * on Skylake-SP, Zen 4 and later); hz_codec.c calls them only when the CPU
 * and the OS support them. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512cd,avx2,fma,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512cd,avx2,fma,bmi,bmi2")
#endif
#define HZ_FN(name) name##_avx512
#define HZ_FN_NAME "avx512"
#define HZ_LANES 16
#include "hz_codec_impl.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
