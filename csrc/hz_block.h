/* Per-sample and per-block JPEG math shared by the C core and the CUDA kernels.
 *
 * Each function reproduces one step of libjpeg-turbo's islow path integer
 * for integer (the file named beside it); helmholtz/_reference.py is the
 * readable NumPy statement of the same arithmetic and the tests hold the two
 * equal. Functions work on plain scalars or on 8 values at a stride, so the
 * CPU loops can run them across 8 SIMD lanes and a CUDA thread can run them
 * on one row of a block.
 *
 * NVRTC-safe: no system headers beyond hz_common.h.
 */
#ifndef HZ_BLOCK_H
#define HZ_BLOCK_H

#include "hz_common.h"

/* ---- fixed-point constants ------------------------------------------- */

#define HZ_CONST_BITS 13
#define HZ_PASS1_BITS 2
/* FIX(x) = round(x * 2^13), jfdctint.c / jidctint.c */
#define HZ_F_0_298631336 2446
#define HZ_F_0_390180644 3196
#define HZ_F_0_541196100 4433
#define HZ_F_0_765366865 6270
#define HZ_F_0_899976223 7373
#define HZ_F_1_175875602 9633
#define HZ_F_1_501321110 12299
#define HZ_F_1_847759065 15137
#define HZ_F_1_961570560 16069
#define HZ_F_2_053119869 16819
#define HZ_F_2_562915447 20995
#define HZ_F_3_072711026 25172

#define HZ_SCALEBITS 16
#define HZ_ONE_HALF (1 << 15)
/* FIX(x) = round(x * 2^16), jccolor.c / jdcolor.c */
#define HZ_FIX_0_29900 19595
#define HZ_FIX_0_58700 38470
#define HZ_FIX_0_11400 7471
#define HZ_FIX_0_16874 11059
#define HZ_FIX_0_33126 21709
#define HZ_FIX_0_50000 32768
#define HZ_FIX_0_41869 27439
#define HZ_FIX_0_08131 5329
#define HZ_FIX_1_40200 91881
#define HZ_FIX_1_77200 116130
#define HZ_FIX_0_71414 46802
#define HZ_FIX_0_34414 22554


/* ---- tables ----------------------------------------------------------- */

/* ITU T.81 Annex K tables K.1 / K.2 in natural (row-major) order. */
HZ_CONST uint8_t hz_annex_k[2][64] = {
    {16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99},
    {17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
     24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
     99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
     99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99}};

/* hz_zigzag[k]: natural index of the k-th coefficient in zigzag order. */
HZ_CONST uint8_t hz_zigzag[64] = {
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
    12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
    35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
    58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

/* jcparam.c jpeg_quality_scaling + jpeg_add_quant_table with force_baseline. */
HZ_HD int hz_quant_value(int quality, int chroma, int k)
{
    int q = quality < 1 ? 1 : (quality > 100 ? 100 : quality);
    int scale = q < 50 ? 5000 / q : 200 - 2 * q;
    int v = ((int)hz_annex_k[chroma][k] * scale + 50) / 100;
    return v < 1 ? 1 : (v > 255 ? 255 : v);
}

/* Exact division by a quantiser value Q (1..255) of y in [0, 4096):
 * floor(y / Q) == (y * recip) >> shift with shift = 12 + ceil(log2 Q) and
 * recip = ceil(2^shift / Q) (the round-up reciprocal is exact for 12-bit y). */
/* |quantised coefficient * Q| never exceeds this for 8-bit samples: |DCT| <= 16384
 * (8x the orthonormal DCT of values in [-128, 127]), so |v * Q| <= 2048 + Q/2. */
#define HZ_MAX_DEQUANTIZED 2176

typedef struct {
    int32_t qval;   /* Q */
    int32_t recip;  /* multiplier */
    int32_t shift;  /* right shift */
} hz_divisor;

HZ_HD hz_divisor hz_make_divisor(int qval)
{
    hz_divisor d;
    int bits = 0;
    while ((1 << bits) < qval) bits++;
    d.qval = qval;
    d.shift = 12 + bits;
    d.recip = (int32_t)(((1u << d.shift) + (uint32_t)qval - 1u) / (uint32_t)qval);
    return d;
}

/* ---- colour conversion ------------------------------------------------ */

/* jccolor.c rgb_ycc_convert; the Cb/Cr fudge ONE_HALF - 1 keeps the maximum at 255. */
HZ_HD int32_t hz_rgb_y(int32_t r, int32_t g, int32_t b)
{
    return (HZ_FIX_0_29900 * r + HZ_FIX_0_58700 * g + HZ_FIX_0_11400 * b + HZ_ONE_HALF) >> HZ_SCALEBITS;
}
HZ_HD int32_t hz_rgb_cb(int32_t r, int32_t g, int32_t b)
{
    return (-HZ_FIX_0_16874 * r - HZ_FIX_0_33126 * g + HZ_FIX_0_50000 * b + (128 << HZ_SCALEBITS) + HZ_ONE_HALF - 1) >> HZ_SCALEBITS;
}
HZ_HD int32_t hz_rgb_cr(int32_t r, int32_t g, int32_t b)
{
    return (HZ_FIX_0_50000 * r - HZ_FIX_0_41869 * g - HZ_FIX_0_08131 * b + (128 << HZ_SCALEBITS) + HZ_ONE_HALF - 1) >> HZ_SCALEBITS;
}

HZ_HD int32_t hz_clamp255(int32_t v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

/* jdcolor.c ycc_rgb_convert with its tables written as arithmetic. */
HZ_HD int32_t hz_ycc_r(int32_t y, int32_t cb, int32_t cr)
{
    (void)cb;
    return hz_clamp255(y + ((HZ_FIX_1_40200 * (cr - 128) + HZ_ONE_HALF) >> HZ_SCALEBITS));
}
HZ_HD int32_t hz_ycc_g(int32_t y, int32_t cb, int32_t cr)
{
    return hz_clamp255(y + ((-HZ_FIX_0_34414 * (cb - 128) + HZ_ONE_HALF - HZ_FIX_0_71414 * (cr - 128)) >> HZ_SCALEBITS));
}
HZ_HD int32_t hz_ycc_b(int32_t y, int32_t cb, int32_t cr)
{
    (void)cr;
    return hz_clamp255(y + ((HZ_FIX_1_77200 * (cb - 128) + HZ_ONE_HALF) >> HZ_SCALEBITS));
}

/* ---- islow DCTs and quantisation, written once for any arithmetic type ---- */

/* Scalar instances (C and CUDA): hz_fdct_1d, hz_idct_1d, hz_quantize. The CPU
 * kernels include hz_dct_generic.h again with an 8-lane vector type. */
#define HZ_T int32_t
#define HZ_QUAL HZ_HD
#define HZ_FDCT_1D hz_fdct_1d
#define HZ_IDCT_1D hz_idct_1d
#define HZ_QUANTIZE hz_quantize
#include "hz_dct_generic.h"

/* jdmaster.c range-limit table after the IDCT: the value is masked to 10
 * bits (RANGE_MASK), read as signed, shifted by +128 and clamped. */
HZ_HD int32_t hz_idct_range_limit(int32_t v)
{
    int32_t m = ((v & 1023) ^ 512) - 512;
    return hz_clamp255(m + 128);
}

/* ---- chroma resampling (jcsample.c / jdsample.c) ---------------------- */

/* h2v1_downsample: bias alternates 0, 1 along the output row. */
HZ_HD int32_t hz_down_h2v1(int32_t a, int32_t b, int col) { return (a + b + (col & 1)) >> 1; }
/* h2v2_downsample: bias alternates 1, 2 along the output row. */
HZ_HD int32_t hz_down_h2v2(int32_t a, int32_t b, int32_t c, int32_t d, int col)
{
    return (a + b + c + d + 1 + (col & 1)) >> 2;
}

/* h2v1_fancy_upsample: outputs 2x and 2x+1 from samples x-1, x, x+1 (edges replicated). */
HZ_HD int32_t hz_up_h2v1_even(int32_t left, int32_t mid) { return (3 * mid + left + 1) >> 2; }
HZ_HD int32_t hz_up_h2v1_odd(int32_t mid, int32_t right) { return (3 * mid + right + 2) >> 2; }
/* h2v2_fancy_upsample on column sums cs = 3 * nearer row + further row. */
HZ_HD int32_t hz_up_h2v2_even(int32_t left, int32_t mid) { return (3 * mid + left + 8) >> 4; }
HZ_HD int32_t hz_up_h2v2_odd(int32_t mid, int32_t right) { return (3 * mid + right + 7) >> 4; }

#endif /* HZ_BLOCK_H */
