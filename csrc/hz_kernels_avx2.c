/* The kernels compiled for AVX2 (8 lanes of 32 bits); hz_codec.c calls them only when the CPU has AVX2. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,bmi,bmi2"))), apply_to = function)
#else
#pragma GCC target("avx2,fma,bmi,bmi2")
#endif
#define HZ_FN(name) name##_avx2
#define HZ_FN_NAME "avx2"
#define HZ_LANES 8
#include "hz_codec_impl.h"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
