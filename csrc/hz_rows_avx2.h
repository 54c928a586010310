/* AVX2 versions of the row loops (colour conversion, fancy upsampling).
 *
 * Each function handles a multiple of 16 samples and returns how many it did;
 * the caller finishes the row with the scalar hz_block.h functions, so both
 * paths compute the same integers. Included only where __AVX2__ is defined.
 */
#ifndef HZ_ROWS_AVX2_H
#define HZ_ROWS_AVX2_H

#include <immintrin.h>

#include "hz_block.h"

/* pshufb masks: pixel j's channel ch from each 16-byte chunk of 16 RGB pixels. */
static const int8_t hz_deinterleave_mask[3][3][16] = {
    {{0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
     {-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1},
     {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13}},
    {{1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
     {-1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1},
     {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14}},
    {{2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
     {-1, -1, -1, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1},
     {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15}}};

/* pshufb masks: output chunk s takes channel ch of these pixels. */
static const int8_t hz_interleave_mask[3][3][16] = {
    {{0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1, 5},
     {-1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1},
     {-1, -1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1}},
    {{-1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10, -1},
     {5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10},
     {-1, 5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1}},
    {{-1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1, -1},
     {-1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1},
     {10, -1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15}}};

static inline __m128i hz_mask(const int8_t *m) { return _mm_loadu_si128((const __m128i *)m); }

/* Two vectors of 8 int32 (each 0..255 after saturation) -> 16 bytes. */
static inline __m128i hz_pack16(__m256i a, __m256i b)
{
    __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
    return _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
}

static inline int hz_rgb_to_ycc_row_avx2(const uint8_t *rgb, int n, uint8_t *y, uint8_t *cb, uint8_t *cr)
{
    const __m256i kYr = _mm256_set1_epi32(HZ_FIX_0_29900), kYg = _mm256_set1_epi32(HZ_FIX_0_58700);
    const __m256i kYb = _mm256_set1_epi32(HZ_FIX_0_11400), kHalf = _mm256_set1_epi32(HZ_ONE_HALF);
    const __m256i kCbR = _mm256_set1_epi32(-HZ_FIX_0_16874), kCbG = _mm256_set1_epi32(-HZ_FIX_0_33126);
    const __m256i kCrG = _mm256_set1_epi32(-HZ_FIX_0_41869), kCrB = _mm256_set1_epi32(-HZ_FIX_0_08131);
    const __m256i kOff = _mm256_set1_epi32((128 << HZ_SCALEBITS) + HZ_ONE_HALF - 1);
    int x = 0;
    for (; x + 16 <= n; x += 16) {
        const uint8_t *p = rgb + 3 * x;
        __m128i c0 = _mm_loadu_si128((const __m128i *)p), c1 = _mm_loadu_si128((const __m128i *)(p + 16));
        __m128i c2 = _mm_loadu_si128((const __m128i *)(p + 32));
        __m128i ch[3];
        for (int k = 0; k < 3; k++)
            ch[k] = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(c0, hz_mask(hz_deinterleave_mask[k][0])),
                                              _mm_shuffle_epi8(c1, hz_mask(hz_deinterleave_mask[k][1]))),
                                 _mm_shuffle_epi8(c2, hz_mask(hz_deinterleave_mask[k][2])));
        __m256i yv[2], cbv[2], crv[2];
        for (int h = 0; h < 2; h++) {
            __m256i r = _mm256_cvtepu8_epi32(h ? _mm_srli_si128(ch[0], 8) : ch[0]);
            __m256i g = _mm256_cvtepu8_epi32(h ? _mm_srli_si128(ch[1], 8) : ch[1]);
            __m256i b = _mm256_cvtepu8_epi32(h ? _mm_srli_si128(ch[2], 8) : ch[2]);
            __m256i t = _mm256_add_epi32(_mm256_mullo_epi32(r, kYr), _mm256_mullo_epi32(g, kYg));
            yv[h] = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(t, _mm256_mullo_epi32(b, kYb)), kHalf), 16);
            t = _mm256_add_epi32(_mm256_mullo_epi32(r, kCbR), _mm256_mullo_epi32(g, kCbG));
            cbv[h] = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(t, _mm256_slli_epi32(b, 15)), kOff), 16);
            t = _mm256_add_epi32(_mm256_slli_epi32(r, 15), _mm256_mullo_epi32(g, kCrG));
            crv[h] = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(t, _mm256_mullo_epi32(b, kCrB)), kOff), 16);
        }
        _mm_storeu_si128((__m128i *)(y + x), hz_pack16(yv[0], yv[1]));
        _mm_storeu_si128((__m128i *)(cb + x), hz_pack16(cbv[0], cbv[1]));
        _mm_storeu_si128((__m128i *)(cr + x), hz_pack16(crv[0], crv[1]));
    }
    return x;
}

static inline int hz_ycc_to_rgb_row_avx2(const uint8_t *y, const uint8_t *cb, const uint8_t *cr, int n, uint8_t *rgb)
{
    const __m256i k128 = _mm256_set1_epi32(128), kHalf = _mm256_set1_epi32(HZ_ONE_HALF);
    const __m256i kRr = _mm256_set1_epi32(HZ_FIX_1_40200), kBb = _mm256_set1_epi32(HZ_FIX_1_77200);
    const __m256i kGb = _mm256_set1_epi32(-HZ_FIX_0_34414), kGr = _mm256_set1_epi32(-HZ_FIX_0_71414);
    int x = 0;
    for (; x + 16 <= n; x += 16) {
        __m128i yy = _mm_loadu_si128((const __m128i *)(y + x));
        __m128i bb = _mm_loadu_si128((const __m128i *)(cb + x));
        __m128i rr = _mm_loadu_si128((const __m128i *)(cr + x));
        __m256i R[2], G[2], B[2];
        for (int h = 0; h < 2; h++) {
            __m256i Y = _mm256_cvtepu8_epi32(h ? _mm_srli_si128(yy, 8) : yy);
            __m256i xb = _mm256_sub_epi32(_mm256_cvtepu8_epi32(h ? _mm_srli_si128(bb, 8) : bb), k128);
            __m256i xr = _mm256_sub_epi32(_mm256_cvtepu8_epi32(h ? _mm_srli_si128(rr, 8) : rr), k128);
            R[h] = _mm256_add_epi32(Y, _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(xr, kRr), kHalf), 16));
            B[h] = _mm256_add_epi32(Y, _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(xb, kBb), kHalf), 16));
            __m256i g = _mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(xb, kGb), kHalf), _mm256_mullo_epi32(xr, kGr));
            G[h] = _mm256_add_epi32(Y, _mm256_srai_epi32(g, 16));
        }
        /* packus saturates to 0..255: the same clamp as libjpeg's range_limit */
        __m128i ch[3] = {hz_pack16(R[0], R[1]), hz_pack16(G[0], G[1]), hz_pack16(B[0], B[1])};
        uint8_t *o = rgb + 3 * x;
        for (int s = 0; s < 3; s++) {
            __m128i v = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(ch[0], hz_mask(hz_interleave_mask[s][0])),
                                                  _mm_shuffle_epi8(ch[1], hz_mask(hz_interleave_mask[s][1]))),
                                     _mm_shuffle_epi8(ch[2], hz_mask(hz_interleave_mask[s][2])));
            _mm_storeu_si128((__m128i *)(o + 16 * s), v);
        }
    }
    return x;
}

/* Fancy upsampling of samples 0..dw-1 given padded sums cs[-1..dw] (edges
 * replicated). vertical: h2v2 weights (cs = 3*near + far, >> 4); else h2v1 (>> 2).
 * Writes out[2x], out[2x+1] for x < returned count (a multiple of 16). */
static inline int hz_fancy_row_avx2(const int16_t *cs, int dw, int vertical, uint8_t *out)
{
    const __m256i three = _mm256_set1_epi16(3);
    const __m256i be = _mm256_set1_epi16(vertical ? 8 : 1), bo = _mm256_set1_epi16(vertical ? 7 : 2);
    const int sh = vertical ? 4 : 2;
    int x = 0;
    for (; x + 16 <= dw; x += 16) {
        __m256i c = _mm256_loadu_si256((const __m256i *)(cs + x));
        __m256i l = _mm256_loadu_si256((const __m256i *)(cs + x - 1));
        __m256i r = _mm256_loadu_si256((const __m256i *)(cs + x + 1));
        __m256i c3 = _mm256_mullo_epi16(c, three);
        __m256i even = _mm256_srli_epi16(_mm256_add_epi16(_mm256_add_epi16(c3, l), be), sh);
        __m256i odd = _mm256_srli_epi16(_mm256_add_epi16(_mm256_add_epi16(c3, r), bo), sh);
        __m256i lo = _mm256_unpacklo_epi16(even, odd), hi = _mm256_unpackhi_epi16(even, odd);
        _mm256_storeu_si256((__m256i *)(out + 2 * x), _mm256_packus_epi16(lo, hi));
    }
    return x;
}

/* h2v1 / h2v2 downsampling of 2*n input samples (one or two rows) to n outputs with
 * libjpeg's alternating biases; returns how many outputs it wrote (a multiple of 16). */
static inline int hz_downsample_row_avx2(const uint8_t *r0, const uint8_t *r1, int n, int rows, uint8_t *out)
{
    const __m256i ones = _mm256_set1_epi8(1);
    const __m256i bias = rows == 2 ? _mm256_set1_epi32(0x00020001) : _mm256_set1_epi32(0x00010000);
    const int sh = rows == 2 ? 2 : 1;
    int x = 0;
    for (; x + 16 <= n; x += 16) {
        __m256i s = _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(r0 + 2 * x)), ones);
        if (rows == 2) s = _mm256_add_epi16(s, _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i *)(r1 + 2 * x)), ones));
        s = _mm256_srli_epi16(_mm256_add_epi16(s, bias), sh);
        __m256i p = _mm256_packus_epi16(s, s);
        _mm_storeu_si128((__m128i *)(out + x), _mm256_castsi256_si128(_mm256_permute4x64_epi64(p, 0x08)));
    }
    return x;
}

#endif /* HZ_ROWS_AVX2_H */
