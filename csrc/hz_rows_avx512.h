/* AVX-512 (F, BW, DQ, VL) versions of the row loops: colour conversion both
 * ways, chroma downsampling and fancy upsampling.
 *
 * Each function handles a whole row: the last partial vector uses masked
 * loads and stores, so nothing is read or written past the row. The
 * arithmetic is that of the hz_block.h scalar functions, rearranged into
 * 16-bit multiply-adds (vpmaddwd) whose 32-bit sums are exact:
 *
 *   Y  * 2^16 = 19595 R + 38470 G + 7471 B + 2^15
 *             = (R, G) . (19595, 19235) + (G, B) . (19235, 7471) + 2^15
 *   Cb * 2^16 = -11059 R - 21709 G + 32768 B + K     (K = 128 * 2^16 + 2^15 - 1)
 *             = (G, B) . (-21709, 32767) + (B, R) . (1, -11059) + K
 *   Cr * 2^16 =  32768 R - 27439 G - 5329 B + K
 *             = (R, G) . (32767, -27439) + (B, R) . (-5329, 1) + K
 *
 * and on the way back, with x = Cb - 128, z = Cr - 128 (jdcolor.c tables):
 *   R - Y = (91881 z + 2^15) >> 16              = z + ((26345 z + 2^15) >> 16)
 *   G - Y = (-22554 x - 46802 z + 2^15) >> 16   = ((x, z) . (-22554, 18734) + 2^15) >> 16 - z
 *   B - Y = (116130 x + 2^15) >> 16             = 2x + ((-14942 x + 2^15) >> 16)
 * (adding a multiple of 2^16 before the shift adds its quotient after it).
 *
 * Included only into the AVX-512 kernel set (hz_kernels_avx512.c).
 */
#ifndef HZ_ROWS_AVX512_H
#define HZ_ROWS_AVX512_H

#include <immintrin.h>

#include "hz_block.h"

/* Word pairs (a, b) as one 32-bit multiplier of vpmaddwd. */
#define HZ_PAIR(a, b) ((int32_t)(((uint32_t)(uint16_t)(int16_t)(b) << 16) | (uint16_t)(int16_t)(a)))

static inline __mmask64 hz_mask64(int n) { return n >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n) - 1); }
static inline __mmask32 hz_mask32(int n) { return n >= 32 ? ~(__mmask32)0 : (((__mmask32)1 << n) - 1); }
static inline __mmask16 hz_mask16(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/* RGB -> Y, Cb, Cr for n pixels (jccolor.c rgb_ycc_convert), 16 per step. */
static inline void hz_rgb_to_ycc_row_avx512(const uint8_t *rgb, int n, uint8_t *y, uint8_t *cb, uint8_t *cr)
{
    /* Pixels 4j..4j+3 (bytes 12j..12j+11) go to 128-bit lane j; their dwords start at 3j. */
    const __m512i spread = _mm512_setr_epi32(0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 11, 12);
    /* In-lane byte picks forming word pairs per pixel: (R, G), (G, B), (B, R). */
    const __m512i pick_rg = _mm512_broadcast_i32x4(_mm_setr_epi8(0, -1, 1, -1, 3, -1, 4, -1, 6, -1, 7, -1, 9, -1, 10, -1));
    const __m512i pick_gb = _mm512_broadcast_i32x4(_mm_setr_epi8(1, -1, 2, -1, 4, -1, 5, -1, 7, -1, 8, -1, 10, -1, 11, -1));
    const __m512i pick_br = _mm512_broadcast_i32x4(_mm_setr_epi8(2, -1, 0, -1, 5, -1, 3, -1, 8, -1, 6, -1, 11, -1, 9, -1));
    const __m512i y_rg = _mm512_set1_epi32(HZ_PAIR(HZ_FIX_0_29900, HZ_FIX_0_58700 / 2));
    const __m512i y_gb = _mm512_set1_epi32(HZ_PAIR(HZ_FIX_0_58700 - HZ_FIX_0_58700 / 2, HZ_FIX_0_11400));
    const __m512i cb_gb = _mm512_set1_epi32(HZ_PAIR(-HZ_FIX_0_33126, HZ_FIX_0_50000 - 1));
    const __m512i cb_br = _mm512_set1_epi32(HZ_PAIR(1, -HZ_FIX_0_16874));
    const __m512i cr_rg = _mm512_set1_epi32(HZ_PAIR(HZ_FIX_0_50000 - 1, -HZ_FIX_0_41869));
    const __m512i cr_br = _mm512_set1_epi32(HZ_PAIR(-HZ_FIX_0_08131, 1));
    const __m512i half = _mm512_set1_epi32(HZ_ONE_HALF);
    const __m512i off = _mm512_set1_epi32((128 << HZ_SCALEBITS) + HZ_ONE_HALF - 1);
    for (int x = 0; x < n; x += 16) {
        const int left = n - x;
        const __mmask16 keep = hz_mask16(left);
        /* bytes 0..47 hold the 16 pixels; the last step of a row loads fewer */
        __m512i raw = _mm512_maskz_loadu_epi8(hz_mask64(3 * (left < 16 ? left : 16)), rgb + 3 * x);
        __m512i v = _mm512_permutexvar_epi32(spread, raw);
        __m512i rg = _mm512_shuffle_epi8(v, pick_rg), gb = _mm512_shuffle_epi8(v, pick_gb);
        __m512i br = _mm512_shuffle_epi8(v, pick_br);
        __m512i yy = _mm512_add_epi32(_mm512_madd_epi16(rg, y_rg), _mm512_madd_epi16(gb, y_gb));
        __m512i bb = _mm512_add_epi32(_mm512_madd_epi16(gb, cb_gb), _mm512_madd_epi16(br, cb_br));
        __m512i rr = _mm512_add_epi32(_mm512_madd_epi16(rg, cr_rg), _mm512_madd_epi16(br, cr_br));
        yy = _mm512_srai_epi32(_mm512_add_epi32(yy, half), HZ_SCALEBITS);
        bb = _mm512_srai_epi32(_mm512_add_epi32(bb, off), HZ_SCALEBITS);
        rr = _mm512_srai_epi32(_mm512_add_epi32(rr, off), HZ_SCALEBITS);
        _mm_mask_storeu_epi8(y + x, keep, _mm512_cvtepi32_epi8(yy));
        _mm_mask_storeu_epi8(cb + x, keep, _mm512_cvtepi32_epi8(bb));
        _mm_mask_storeu_epi8(cr + x, keep, _mm512_cvtepi32_epi8(rr));
    }
}

/* Y, Cb, Cr of 16 pixels at rgb (left of them real: the rest repeat the last
 * real pixel, whose values are lastv), as 16 int32 lanes each. */
typedef struct {
    __m512i spread, pick_rg, pick_gb, pick_br, y_rg, y_gb, cb_gb, cb_br, cr_rg, cr_br, half, off;
} hz_rgb_consts;

static inline void hz_rgb_setup(hz_rgb_consts *k)
{
    k->spread = _mm512_setr_epi32(0, 1, 2, 3, 3, 4, 5, 6, 6, 7, 8, 9, 9, 10, 11, 12);
    k->pick_rg = _mm512_broadcast_i32x4(_mm_setr_epi8(0, -1, 1, -1, 3, -1, 4, -1, 6, -1, 7, -1, 9, -1, 10, -1));
    k->pick_gb = _mm512_broadcast_i32x4(_mm_setr_epi8(1, -1, 2, -1, 4, -1, 5, -1, 7, -1, 8, -1, 10, -1, 11, -1));
    k->pick_br = _mm512_broadcast_i32x4(_mm_setr_epi8(2, -1, 0, -1, 5, -1, 3, -1, 8, -1, 6, -1, 11, -1, 9, -1));
    k->y_rg = _mm512_set1_epi32(HZ_PAIR(HZ_FIX_0_29900, HZ_FIX_0_58700 / 2));
    k->y_gb = _mm512_set1_epi32(HZ_PAIR(HZ_FIX_0_58700 - HZ_FIX_0_58700 / 2, HZ_FIX_0_11400));
    k->cb_gb = _mm512_set1_epi32(HZ_PAIR(-HZ_FIX_0_33126, HZ_FIX_0_50000 - 1));
    k->cb_br = _mm512_set1_epi32(HZ_PAIR(1, -HZ_FIX_0_16874));
    k->cr_rg = _mm512_set1_epi32(HZ_PAIR(HZ_FIX_0_50000 - 1, -HZ_FIX_0_41869));
    k->cr_br = _mm512_set1_epi32(HZ_PAIR(-HZ_FIX_0_08131, 1));
    k->half = _mm512_set1_epi32(HZ_ONE_HALF);
    k->off = _mm512_set1_epi32((128 << HZ_SCALEBITS) + HZ_ONE_HALF - 1);
}

/* The converted values of a row's last pixel, for the edge extension (jcsample.c expand_right_edge). */
typedef struct {
    __m512i y, cb, cr;
} hz_rgb_edge;

static inline void hz_rgb_edge_of(const uint8_t *rgb, int width, hz_rgb_edge *e)
{
    const int32_t r = rgb[3 * width - 3], g = rgb[3 * width - 2], b = rgb[3 * width - 1];
    e->y = _mm512_set1_epi32(hz_rgb_y(r, g, b));
    e->cb = _mm512_set1_epi32(hz_rgb_cb(r, g, b));
    e->cr = _mm512_set1_epi32(hz_rgb_cr(r, g, b));
}

static inline void hz_rgb16(const hz_rgb_consts *k, const uint8_t *rgb, int left, const hz_rgb_edge *e, __m512i *yy,
                            __m512i *bb, __m512i *rr)
{
    const int real = left < 0 ? 0 : (left < 16 ? left : 16);
    __m512i v = _mm512_permutexvar_epi32(k->spread, _mm512_maskz_loadu_epi8(hz_mask64(3 * real), rgb));
    __m512i rg = _mm512_shuffle_epi8(v, k->pick_rg), gb = _mm512_shuffle_epi8(v, k->pick_gb);
    __m512i br = _mm512_shuffle_epi8(v, k->pick_br);
    __m512i y = _mm512_add_epi32(_mm512_madd_epi16(rg, k->y_rg), _mm512_madd_epi16(gb, k->y_gb));
    __m512i b = _mm512_add_epi32(_mm512_madd_epi16(gb, k->cb_gb), _mm512_madd_epi16(br, k->cb_br));
    __m512i r = _mm512_add_epi32(_mm512_madd_epi16(rg, k->cr_rg), _mm512_madd_epi16(br, k->cr_br));
    y = _mm512_srai_epi32(_mm512_add_epi32(y, k->half), HZ_SCALEBITS);
    b = _mm512_srai_epi32(_mm512_add_epi32(b, k->off), HZ_SCALEBITS);
    r = _mm512_srai_epi32(_mm512_add_epi32(r, k->off), HZ_SCALEBITS);
    if (real < 16) { /* past the row: the last pixel's values */
        const __mmask16 m = hz_mask16(real);
        y = _mm512_mask_blend_epi32(m, e->y, y);
        b = _mm512_mask_blend_epi32(m, e->cb, b);
        r = _mm512_mask_blend_epi32(m, e->cr, r);
    }
    *yy = y;
    *bb = b;
    *rr = r;
}

/* Downsample chroma of 32 converted pixels (two 16-lane halves, each the sum of
 * the rows' values) to 16 outputs: pair sums plus libjpeg's biases, >> sh. */
static inline __m128i hz_pairs16(__m512i a, __m512i b, __m512i bias, int sh)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512i s = _mm512_add_epi32(_mm512_permutex2var_epi32(a, even, b), _mm512_permutex2var_epi32(a, odd, b));
    s = _mm512_sra_epi32(_mm512_add_epi32(s, bias), _mm_cvtsi32_si128(sh));
    return _mm512_cvtepi32_epi8(s);
}

/* One unit of the row phase for h2v1 / h2v2 subsampling: source rows s0 (and s1
 * for h2v2; NULL for h2v1) of `width` pixels, edge-extended, converted to Y
 * (ext samples into y0 and y1) and downsampled to `cols` Cb and Cr samples,
 * in registers (jccolor.c, jcsample.c expand_right_edge and h2v1/h2v2_downsample). */
static inline void hz_rgb_rows_h2_avx512(const uint8_t *s0, const uint8_t *s1, int width, int ext, int cols, uint8_t *y0,
                                         uint8_t *y1, uint8_t *cb, uint8_t *cr)
{
    hz_rgb_consts k;
    hz_rgb_edge e0, e1;
    hz_rgb_setup(&k);
    hz_rgb_edge_of(s0, width, &e0);
    if (s1) hz_rgb_edge_of(s1, width, &e1);
    /* output j gets bias 1, 2 (h2v2) or 0, 1 (h2v1) by its parity */
    const __m512i bias = s1 ? _mm512_set1_epi32(1) : _mm512_setzero_si512();
    const __m512i biases = _mm512_add_epi32(bias, _mm512_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1));
    const int sh = s1 ? 2 : 1, span = ext > 2 * cols ? ext : 2 * cols;
    /* the next unit's rows (the source is read once, from memory): fetch them now */
    const ptrdiff_t ahead = s1 ? 2 * (s1 - s0) : (ptrdiff_t)3 * width;
    for (int x = 0; x < span; x += 32) {
        __m512i ya, ba, ra, yb, bb, rb;
        if (x < width) {
            _mm_prefetch((const char *)(s0 + ahead + 3 * x), _MM_HINT_T0);
            _mm_prefetch((const char *)(s0 + ahead + 3 * x + 64), _MM_HINT_T0);
            if (s1) {
                _mm_prefetch((const char *)(s1 + ahead + 3 * x), _MM_HINT_T0);
                _mm_prefetch((const char *)(s1 + ahead + 3 * x + 64), _MM_HINT_T0);
            }
        }
        hz_rgb16(&k, s0 + 3 * x, width - x, &e0, &ya, &ba, &ra);
        hz_rgb16(&k, s0 + 3 * (x + 16), width - x - 16, &e0, &yb, &bb, &rb);
        const __mmask16 ym0 = hz_mask16(ext - x > 0 ? ext - x : 0), ym1 = hz_mask16(ext - x - 16 > 0 ? ext - x - 16 : 0);
        _mm_mask_storeu_epi8(y0 + x, ym0, _mm512_cvtepi32_epi8(ya));
        _mm_mask_storeu_epi8(y0 + x + 16, ym1, _mm512_cvtepi32_epi8(yb));
        if (s1) {
            __m512i yc, bc, rc, yd, bd, rd;
            hz_rgb16(&k, s1 + 3 * x, width - x, &e1, &yc, &bc, &rc);
            hz_rgb16(&k, s1 + 3 * (x + 16), width - x - 16, &e1, &yd, &bd, &rd);
            _mm_mask_storeu_epi8(y1 + x, ym0, _mm512_cvtepi32_epi8(yc));
            _mm_mask_storeu_epi8(y1 + x + 16, ym1, _mm512_cvtepi32_epi8(yd));
            ba = _mm512_add_epi32(ba, bc);
            bb = _mm512_add_epi32(bb, bd);
            ra = _mm512_add_epi32(ra, rc);
            rb = _mm512_add_epi32(rb, rd);
        }
        const int j = x / 2;
        if (j < cols) {
            const __mmask16 cm = hz_mask16(cols - j);
            _mm_mask_storeu_epi8(cb + j, cm, hz_pairs16(ba, bb, biases, sh));
            _mm_mask_storeu_epi8(cr + j, cm, hz_pairs16(ra, rb, biases, sh));
        }
    }
}

/* h2v1 / h2v2 downsampling (jcsample.c) of 2n input samples of one or two rows
 * into n outputs with libjpeg's alternating biases (0, 1 or 1, 2). */
static inline void hz_downsample_row_avx512(const uint8_t *r0, const uint8_t *r1, int n, int rows, uint8_t *out)
{
    const __m512i ones = _mm512_set1_epi8(1);
    const __m512i bias = rows == 2 ? _mm512_set1_epi32(0x00020001) : _mm512_set1_epi32(0x00010000);
    const int sh = rows == 2 ? 2 : 1;
    for (int x = 0; x < n; x += 32) {
        const int left = n - x;
        const __mmask64 in = hz_mask64(2 * left);
        __m512i s = _mm512_maddubs_epi16(_mm512_maskz_loadu_epi8(in, r0 + 2 * x), ones);
        if (rows == 2) s = _mm512_add_epi16(s, _mm512_maddubs_epi16(_mm512_maskz_loadu_epi8(in, r1 + 2 * x), ones));
        s = _mm512_srli_epi16(_mm512_add_epi16(s, bias), sh);
        _mm256_mask_storeu_epi8(out + x, hz_mask32(left), _mm512_cvtepi16_epi8(s));
    }
}

/* Column sums of fancy h2v2 upsampling (jdsample.c): cs[x] = 3 * row[x] + nb[x],
 * or cs[x] = row[x] for h2v1, for x < dw. */
static inline void hz_column_sums_avx512(const uint8_t *row, const uint8_t *nb, int dw, int vertical, int16_t *cs)
{
    for (int x = 0; x < dw; x += 32) {
        const __mmask32 m = hz_mask32(dw - x);
        __m512i a = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, row + x));
        if (vertical) {
            __m512i b = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, nb + x));
            a = _mm512_add_epi16(_mm512_add_epi16(a, _mm512_slli_epi16(a, 1)), b);
        }
        _mm512_mask_storeu_epi16(cs + x, m, a);
    }
}

/* Fancy upsampling of samples 0..dw-1 given padded sums cs[-1..dw] (edges
 * replicated): out[2x], out[2x+1] for every x < dw. vertical: h2v2 weights
 * (cs = 3 * near + far, >> 4); else h2v1 (>> 2). */
static inline void hz_fancy_row_avx512(const int16_t *cs, int dw, int vertical, uint8_t *out)
{
    const __m512i be = _mm512_set1_epi16(vertical ? 8 : 1), bo = _mm512_set1_epi16(vertical ? 7 : 2);
    const __m128i sh = _mm_cvtsi32_si128(vertical ? 4 : 2);
    for (int x = 0; x < dw; x += 32) {
        const int left = dw - x;
        const __mmask32 m = hz_mask32(left);
        __m512i c = _mm512_maskz_loadu_epi16(m, cs + x);
        __m512i l = _mm512_maskz_loadu_epi16(m, cs + x - 1);
        __m512i r = _mm512_maskz_loadu_epi16(m, cs + x + 1);
        __m512i c3 = _mm512_add_epi16(c, _mm512_slli_epi16(c, 1));
        __m512i even = _mm512_srl_epi16(_mm512_add_epi16(_mm512_add_epi16(c3, l), be), sh);
        __m512i odd = _mm512_srl_epi16(_mm512_add_epi16(_mm512_add_epi16(c3, r), bo), sh);
        /* lane j of the unpacks: outputs 16j..16j+7 and 16j+8..16j+15; the pack keeps that order */
        __m512i lo = _mm512_unpacklo_epi16(even, odd), hi = _mm512_unpackhi_epi16(even, odd);
        _mm512_mask_storeu_epi8(out + 2 * x, hz_mask64(2 * left), _mm512_packus_epi16(lo, hi));
    }
}

/* pshufb masks: output chunk s (16 bytes of 16 interleaved pixels) takes channel ch of these pixels. */
static const int8_t hz_interleave16_mask[3][3][16] = {
    {{0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1, 5},
     {-1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1},
     {-1, -1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1}},
    {{-1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10, -1},
     {5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10},
     {-1, 5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1}},
    {{-1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1, -1},
     {-1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1},
     {10, -1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15}}};

typedef struct {
    __m512i k128, half, r_z, g_xz, b_x;
    __m512i rb0, g0, rb1, g1, join0, join1;
    int stream; /* whole 32-byte aligned chunks bypass the cache */
} hz_ycc_consts;

static inline void hz_ycc_setup(hz_ycc_consts *k, int stream)
{
    k->stream = stream;
    k->k128 = _mm512_set1_epi16(128);
    k->half = _mm512_set1_epi32(HZ_ONE_HALF);
    k->r_z = _mm512_set1_epi16((short)(HZ_FIX_1_40200 - 65536));  /* R - Y = z + (26345 z + 2^15) >> 16 */
    k->g_xz = _mm512_set1_epi32(HZ_PAIR(-HZ_FIX_0_34414, 65536 - HZ_FIX_0_71414));
    k->b_x = _mm512_set1_epi16((short)(HZ_FIX_1_77200 - 131072)); /* B - Y = 2x + (-14942 x + 2^15) >> 16 */
    /* pixel t < 8 of a lane: R at rb[t], G at gg[t], B at rb[8 + t]; output byte 3t + c,
     * bytes 0..15 from the first pair of masks, 16..23 from the second */
    static const int8_t rb0[16] = {0, -1, 8, 1, -1, 9, 2, -1, 10, 3, -1, 11, 4, -1, 12, 5};
    static const int8_t g0[16] = {-1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1};
    static const int8_t rb1[16] = {-1, 13, 6, -1, 14, 7, -1, 15, -1, -1, -1, -1, -1, -1, -1, -1};
    static const int8_t g1[16] = {5, -1, -1, 6, -1, -1, 7, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    /* lane j's 6 dwords: 4j..4j+3 of p0 (index 4j + i), then 4j, 4j + 1 of p1 (16 + 4j + i) */
    static const int32_t j0[16] = {0, 1, 2, 3, 16, 17, 4, 5, 6, 7, 20, 21, 8, 9, 10, 11};
    static const int32_t j1[16] = {24, 25, 12, 13, 14, 15, 28, 29, 0, 0, 0, 0, 0, 0, 0, 0};
    k->rb0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)rb0));
    k->g0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)g0));
    k->rb1 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)rb1));
    k->g1 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)g1));
    k->join0 = _mm512_loadu_si512((const void *)j0);
    k->join1 = _mm512_loadu_si512((const void *)j1);
}

/* (c * v + 2^15) >> 16 for words v and a word constant c: the high half of the
 * product, plus one when its low half reaches 2^15 (exact for every v). */
static inline __m512i hz_round_mulhi(__m512i v, __m512i c)
{
    return _mm512_add_epi16(_mm512_mulhi_epi16(v, c), _mm512_srli_epi16(_mm512_mullo_epi16(v, c), 15));
}

/* 32 pixels from words Y (0..255) and chroma U, V (0..255), in pixel order:
 * jdcolor.c's arithmetic, then RGB interleaved to rgb[0 .. 3 * left) (left <= 32 stored). */
static inline void hz_ycc_32(const hz_ycc_consts *k, __m512i Y, __m512i U, __m512i V, int left, uint8_t *p)
{
    const __m512i X = _mm512_sub_epi16(U, k->k128), Z = _mm512_sub_epi16(V, k->k128);
    /* G needs two products before its rounding: (x, z) word pairs, 32-bit sums */
    const __m512i lo = _mm512_unpacklo_epi16(X, Z), hi = _mm512_unpackhi_epi16(X, Z);
    const __m512i gt = _mm512_packs_epi32(_mm512_srai_epi32(_mm512_add_epi32(_mm512_madd_epi16(lo, k->g_xz), k->half), 16),
                                          _mm512_srai_epi32(_mm512_add_epi32(_mm512_madd_epi16(hi, k->g_xz), k->half), 16));
    __m512i R = _mm512_add_epi16(_mm512_add_epi16(Y, Z), hz_round_mulhi(Z, k->r_z));
    __m512i G = _mm512_sub_epi16(_mm512_add_epi16(Y, gt), Z);
    __m512i B = _mm512_add_epi16(_mm512_add_epi16(Y, _mm512_add_epi16(X, X)), hz_round_mulhi(X, k->b_x));
    /* saturating packs clamp to 0..255 (libjpeg's range limit); lane j then holds
     * pixels 8j..8j+7 as R (bytes 0..7) and B (8..15), and G twice */
    const __m512i rb = _mm512_packus_epi16(R, B), gg = _mm512_packus_epi16(G, G);
    /* per lane: the 24 bytes of its 8 pixels, 16 in p0 and 8 in p1 */
    const __m512i p0 = _mm512_or_si512(_mm512_shuffle_epi8(rb, k->rb0), _mm512_shuffle_epi8(gg, k->g0));
    const __m512i p1 = _mm512_or_si512(_mm512_shuffle_epi8(rb, k->rb1), _mm512_shuffle_epi8(gg, k->g1));
    /* the lanes' 6 dwords each, back to back */
    const __m512i s0 = _mm512_permutex2var_epi32(p0, k->join0, p1);
    const __m256i s1 = _mm512_castsi512_si256(_mm512_permutex2var_epi32(p0, k->join1, p1));
    if (left >= 32 && k->stream && ((uintptr_t)p & 31) == 0) {
        /* a large batch's output goes to memory: write around the cache (no read for
         * ownership). Chunks are 96 bytes, so a row that starts 32-byte aligned streams
         * every whole chunk: no cache line is written half streaming, half not. */
        _mm256_stream_si256((__m256i *)p, _mm512_castsi512_si256(s0));
        _mm256_stream_si256((__m256i *)(p + 32), _mm512_extracti64x4_epi64(s0, 1));
        _mm256_stream_si256((__m256i *)(p + 64), s1);
    } else if (left >= 32) {
        _mm512_storeu_si512((__m512i *)p, s0);
        _mm256_storeu_si256((__m256i *)(p + 64), s1);
    } else {
        const int bytes = 3 * left;
        _mm512_mask_storeu_epi8(p, hz_mask64(bytes), s0);
        if (bytes > 64) _mm256_mask_storeu_epi8(p + 64, hz_mask32(bytes - 64), s1);
    }
}

/* Y, Cb, Cr rows -> interleaved RGB (jdcolor.c ycc_rgb_convert), 32 pixels per step. */
static inline void hz_ycc_to_rgb_row_avx512(const hz_ycc_consts *k, const uint8_t *y, const uint8_t *cb, const uint8_t *cr,
                                            int n, uint8_t *rgb)
{
    for (int x = 0; x < n; x += 32) {
        const __mmask32 m = hz_mask32(n - x);
        hz_ycc_32(k, _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, y + x)),
                  _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, cb + x)),
                  _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, cr + x)), n - x, rgb + 3 * x);
    }
}

/* Fancy upsampling (jdsample.c h2v1 / h2v2) of one chroma row, 16 samples at
 * a time, straight into the colour conversion: the column sums cs (3 * near +
 * far row for h2v2, the row itself for h2v1) of samples j0..j0+15 come in
 * with their neighbours' vectors, lanes past the row end hold the last sum. */
typedef struct {
    const uint8_t *row, *far;
    int dw;
    __m256i first, last; /* cs[0] and cs[dw - 1], broadcast */
} hz_chroma_row;

static inline __m256i hz_column_sums16(const hz_chroma_row *c, int j0, int vertical)
{
    const int left = c->dw - j0;
    const __mmask16 m = hz_mask16(left > 0 ? left : 0);
    __m256i a = _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, c->row + j0));
    if (vertical) {
        __m256i b = _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, c->far + j0));
        a = _mm256_add_epi16(_mm256_add_epi16(a, _mm256_slli_epi16(a, 1)), b);
    }
    return _mm256_mask_blend_epi16(m, c->last, a);
}

static inline void hz_chroma_setup(hz_chroma_row *c, const uint8_t *row, const uint8_t *far, int dw, int vertical)
{
    c->row = row;
    c->far = far;
    c->dw = dw;
    c->first = _mm256_set1_epi16((short)(vertical ? 3 * row[0] + far[0] : row[0]));
    c->last = _mm256_set1_epi16((short)(vertical ? 3 * row[dw - 1] + far[dw - 1] : row[dw - 1]));
}

/* The 32 upsampled samples (words, pixel order) from the sums prev, cur, next. */
static inline __m512i hz_fancy32(__m256i prev, __m256i cur, __m256i next, int vertical)
{
    const __m256i to_left = _mm256_setr_epi16(15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30);
    const __m256i to_right = _mm256_setr_epi16(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    const __m256i l = _mm256_permutex2var_epi16(prev, to_left, cur);  /* cs[j - 1] */
    const __m256i r = _mm256_permutex2var_epi16(cur, to_right, next); /* cs[j + 1] */
    const __m256i c3 = _mm256_add_epi16(cur, _mm256_slli_epi16(cur, 1));
    const __m256i be = _mm256_set1_epi16(vertical ? 8 : 1), bo = _mm256_set1_epi16(vertical ? 7 : 2);
    const __m128i sh = _mm_cvtsi32_si128(vertical ? 4 : 2);
    const __m256i even = _mm256_srl_epi16(_mm256_add_epi16(_mm256_add_epi16(c3, l), be), sh);
    const __m256i odd = _mm256_srl_epi16(_mm256_add_epi16(_mm256_add_epi16(c3, r), bo), sh);
    /* unpacks give pixels [0..7 | 16..23] and [8..15 | 24..31]; put the quarters in order */
    const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_unpacklo_epi16(even, odd)),
                                            _mm256_unpackhi_epi16(even, odd), 1);
    return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7), both);
}

/* One output row of 4:2:x decoding: fancy-upsample the chroma rows (cb, cr
 * with their context rows cbn, crn; dw >= 3 samples) and convert n pixels. */
static inline void hz_upsample_ycc_row_avx512(const hz_ycc_consts *k, const uint8_t *y, const uint8_t *cb,
                                              const uint8_t *cbn, const uint8_t *cr, const uint8_t *crn, int dw,
                                              int vertical, int n, uint8_t *rgb)
{
    hz_chroma_row b, r;
    hz_chroma_setup(&b, cb, cbn, dw, vertical);
    hz_chroma_setup(&r, cr, crn, dw, vertical);
    __m256i bp = b.first, bc = hz_column_sums16(&b, 0, vertical);
    __m256i rp = r.first, rc = hz_column_sums16(&r, 0, vertical);
    for (int x = 0; x < n; x += 32) {
        const int j0 = x / 2;
        const __m256i bn = hz_column_sums16(&b, j0 + 16, vertical), rn = hz_column_sums16(&r, j0 + 16, vertical);
        const __m512i Y = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(hz_mask32(n - x), y + x));
        hz_ycc_32(k, Y, hz_fancy32(bp, bc, bn, vertical), hz_fancy32(rp, rc, rn, vertical), n - x, rgb + 3 * x);
        bp = bc;
        bc = bn;
        rp = rc;
        rc = rn;
    }
}

/* The sums of a chroma row pair (near row and two far rows: above, below) for
 * the two output rows of h2v2 upsampling that share the near row. */
static inline void hz_column_sums16_pair(const uint8_t *near, const uint8_t *above, const uint8_t *below, int dw, int j0,
                                         __m256i last_up, __m256i last_dn, __m256i *up, __m256i *dn)
{
    const int left = dw - j0;
    const __mmask16 m = hz_mask16(left > 0 ? left : 0);
    const __m256i a = _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, near + j0));
    const __m256i a3 = _mm256_add_epi16(a, _mm256_slli_epi16(a, 1));
    *up = _mm256_mask_blend_epi16(m, last_up, _mm256_add_epi16(a3, _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, above + j0))));
    *dn = _mm256_mask_blend_epi16(m, last_dn, _mm256_add_epi16(a3, _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, below + j0))));
}

/* Output rows 2rc and 2rc + 1 of 4:2:0 decoding: both upsample chroma row rc,
 * with the row above (rows 2rc) or below (2rc + 1) as context (jdmainct.c). */
static inline void hz_upsample_ycc_row_pair_avx512(const hz_ycc_consts *k, const uint8_t *y0, const uint8_t *y1,
                                                   const uint8_t *cb, const uint8_t *cba, const uint8_t *cbb,
                                                   const uint8_t *cr, const uint8_t *cra, const uint8_t *crb, int dw,
                                                   int n, uint8_t *rgb0, uint8_t *rgb1)
{
#define HZ_CS(row, far, x) (3 * (row)[x] + (far)[x])
    const __m256i bfu = _mm256_set1_epi16((short)HZ_CS(cb, cba, 0)), bfd = _mm256_set1_epi16((short)HZ_CS(cb, cbb, 0));
    const __m256i rfu = _mm256_set1_epi16((short)HZ_CS(cr, cra, 0)), rfd = _mm256_set1_epi16((short)HZ_CS(cr, crb, 0));
    const __m256i blu = _mm256_set1_epi16((short)HZ_CS(cb, cba, dw - 1)), bld = _mm256_set1_epi16((short)HZ_CS(cb, cbb, dw - 1));
    const __m256i rlu = _mm256_set1_epi16((short)HZ_CS(cr, cra, dw - 1)), rld = _mm256_set1_epi16((short)HZ_CS(cr, crb, dw - 1));
#undef HZ_CS
    __m256i bpu = bfu, bpd = bfd, rpu = rfu, rpd = rfd, bcu, bcd, rcu, rcd;
    hz_column_sums16_pair(cb, cba, cbb, dw, 0, blu, bld, &bcu, &bcd);
    hz_column_sums16_pair(cr, cra, crb, dw, 0, rlu, rld, &rcu, &rcd);
    for (int x = 0; x < n; x += 32) {
        const int j0 = x / 2;
        const __mmask32 m = hz_mask32(n - x);
        __m256i bnu, bnd, rnu, rnd;
        hz_column_sums16_pair(cb, cba, cbb, dw, j0 + 16, blu, bld, &bnu, &bnd);
        hz_column_sums16_pair(cr, cra, crb, dw, j0 + 16, rlu, rld, &rnu, &rnd);
        hz_ycc_32(k, _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, y0 + x)), hz_fancy32(bpu, bcu, bnu, 1),
                  hz_fancy32(rpu, rcu, rnu, 1), n - x, rgb0 + 3 * x);
        if (rgb1)
            hz_ycc_32(k, _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, y1 + x)), hz_fancy32(bpd, bcd, bnd, 1),
                      hz_fancy32(rpd, rcd, rnd, 1), n - x, rgb1 + 3 * x);
        bpu = bcu; bcu = bnu; bpd = bcd; bcd = bnd;
        rpu = rcu; rcu = rnu; rpd = rcd; rcd = rnd;
    }
}

#endif /* HZ_ROWS_AVX512_H */
