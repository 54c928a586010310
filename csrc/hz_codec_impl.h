/* The per-image pipeline of the C core, compiled once per kernel set.
 *
 * Included by hz_kernels_portable.c, hz_kernels_avx2.c and hz_kernels_avx512.c
 * with HZ_FN(name) defined to give each copy its own names and HZ_LANES (8 or
 * 16) the vector width; hz_codec.c picks one set at run time.
 *
 * Blocks are processed HZ_LANES at a time in "lane" layout: d[k][l] is
 * coefficient (or sample) k of the block in lane l. Every 1-D DCT pass then
 * runs the math of hz_dct_generic.h on HZ_LANES-wide vectors, one SIMD
 * instruction per operation, and quantisation and bit counting work on all
 * lanes at once; only loading samples and storing results transposes.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hz_block.h"
#include "hz_codec_internal.h"
#include "hz_huffman.h"

#ifndef HZ_LANES
#define HZ_LANES 8
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__AVX2__)
#include <immintrin.h>

#include "hz_rows_avx2.h"
#endif
#if HZ_LANES == 16
#include "hz_rows_avx512.h"
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <x86intrin.h>
#endif

/* HZ_LANES lanes of int32: GCC/Clang vector extensions turn each operation
 * of hz_dct_generic.h into one SIMD instruction (two on SSE2). */
typedef int32_t hz_vec __attribute__((vector_size(4 * HZ_LANES), aligned(4 * HZ_LANES)));
typedef int16_t hz_vec16 __attribute__((vector_size(2 * HZ_LANES)));
typedef hz_vec hz_lanes[64];

/* a * c for a and c in [-32768, 32767]: vpmaddwd of a's low word with c (the
 * high word of the multiplier is 0), one cheap instruction instead of a
 * 32-bit multiply. */
#define HZ_WORD(c) ((int32_t)((uint32_t)(c) & 0xFFFFu))
#if HZ_LANES == 16
#define HZ_VMUL16(a, c) ((hz_vec)_mm512_madd_epi16((__m512i)(a), _mm512_set1_epi32(HZ_WORD(c))))
#elif defined(__AVX2__)
#define HZ_VMUL16(a, c) ((hz_vec)_mm256_madd_epi16((__m256i)(a), _mm256_set1_epi32(HZ_WORD(c))))
#elif defined(__SSE2__)
static inline hz_vec HZ_FN(mul16_sse2)(hz_vec a, int32_t c)
{
    __m128i k = _mm_set1_epi32(HZ_WORD(c)), h[2];
    hz_vec r;
    memcpy(h, &a, sizeof h);
    h[0] = _mm_madd_epi16(h[0], k);
    h[1] = _mm_madd_epi16(h[1], k);
    memcpy(&r, h, sizeof r);
    return r;
}
#define HZ_VMUL16(a, c) HZ_FN(mul16_sse2)((a), (c))
#else
#define HZ_VMUL16(a, c) ((a) * (c))
#endif

#define HZ_T hz_vec
#define HZ_QUAL static inline __attribute__((always_inline))
#define HZ_FDCT_1D HZ_FN(fdct_1d_v)
#define HZ_IDCT_1D HZ_FN(idct_1d_v)
#define HZ_QUANTIZE HZ_FN(quantize_v)
#define HZ_QUANTIZE_MAG HZ_FN(quantize_mag_v)
#define HZ_MUL16(a, c) HZ_VMUL16(a, c)
/* The AVX sets quantise with divisors broadcast straight from the table
 * (vector arguments): no scalar-to-vector moves, per-lane shifts. Every
 * multiplier there is in 0..8191, so its high word is already zero. */
#if HZ_LANES == 16
#define HZ_QVEC 1
#define HZ_VMULV(a, b) ((hz_vec)_mm512_madd_epi16((__m512i)(a), (__m512i)(b)))
#elif defined(__AVX2__)
#define HZ_QVEC 1
#define HZ_VMULV(a, b) ((hz_vec)_mm256_madd_epi16((__m256i)(a), (__m256i)(b)))
#endif
#ifdef HZ_QVEC
#define HZ_QT hz_vec
#define HZ_MULQ(a, b) HZ_VMULV(a, b)
#if HZ_LANES == 16
#define HZ_SHRQ(a, s) ((hz_vec)_mm512_srav_epi32((__m512i)(a), (__m512i)(s)))
#else
#define HZ_SHRQ(a, s) ((hz_vec)_mm256_srav_epi32((__m256i)(a), (__m256i)(s)))
#endif
#endif
#include "hz_dct_generic.h"

#ifdef HZ_QVEC
static inline hz_vec HZ_FN(bcast)(const int32_t *p) { return (hz_vec){0} + *p; }
#endif

/* ---- moving 8x8 sample blocks in and out of lane layout ----------------- */

#if defined(__SSE2__)
/* Eight 8-byte rows m[0..7] (low halves) -> c[k] holding columns 2k (low 8
 * bytes) and 2k+1 (high 8 bytes) of the 8x8 byte matrix. */
static inline void HZ_FN(transpose8x8_u8)(const __m128i m[8], __m128i c[4])
{
    __m128i a0 = _mm_unpacklo_epi8(m[0], m[1]), a1 = _mm_unpacklo_epi8(m[2], m[3]);
    __m128i a2 = _mm_unpacklo_epi8(m[4], m[5]), a3 = _mm_unpacklo_epi8(m[6], m[7]);
    __m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);
    __m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);
    c[0] = _mm_unpacklo_epi32(b0, b2);
    c[1] = _mm_unpackhi_epi32(b0, b2);
    c[2] = _mm_unpacklo_epi32(b1, b3);
    c[3] = _mm_unpackhi_epi32(b1, b3);
}
#endif

/* d[r*8+c][l] = src[l][r*stride + c]. The level shift by -128 is folded into
 * fdct_lanes: it only moves the DC term. */
static inline void HZ_FN(load_samples)(uint8_t *const src[HZ_LANES], ptrdiff_t stride, hz_lanes d)
{
    for (int r = 0; r < 8; r++) {
#if HZ_LANES == 16
        __m128i m[8], lo[4], hi[4];
        for (int l = 0; l < 8; l++) m[l] = _mm_loadl_epi64((const __m128i *)(src[l] + r * stride));
        HZ_FN(transpose8x8_u8)(m, lo);
        for (int l = 0; l < 8; l++) m[l] = _mm_loadl_epi64((const __m128i *)(src[8 + l] + r * stride));
        HZ_FN(transpose8x8_u8)(m, hi);
        for (int k = 0; k < 4; k++) {
            d[r * 8 + 2 * k] = (hz_vec)_mm512_cvtepu8_epi32(_mm_unpacklo_epi64(lo[k], hi[k]));
            d[r * 8 + 2 * k + 1] = (hz_vec)_mm512_cvtepu8_epi32(_mm_unpackhi_epi64(lo[k], hi[k]));
        }
#elif defined(__SSE2__)
        __m128i m[8], c[4];
        for (int l = 0; l < 8; l++) m[l] = _mm_loadl_epi64((const __m128i *)(src[l] + r * stride));
        HZ_FN(transpose8x8_u8)(m, c);
        for (int k = 0; k < 4; k++) {
#if defined(__AVX2__)
            d[r * 8 + 2 * k] = (hz_vec)_mm256_cvtepu8_epi32(c[k]);
            d[r * 8 + 2 * k + 1] = (hz_vec)_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(c[k], c[k]));
#else
            const __m128i z = _mm_setzero_si128();
            __m128i w[2] = {_mm_unpacklo_epi8(c[k], z), _mm_unpackhi_epi8(c[k], z)};
            for (int h = 0; h < 2; h++) {
                __m128i q[2] = {_mm_unpacklo_epi16(w[h], z), _mm_unpackhi_epi16(w[h], z)};
                memcpy(&d[r * 8 + 2 * k + h], q, sizeof q);
            }
#endif
        }
#else
        for (int c = 0; c < 8; c++)
            for (int l = 0; l < HZ_LANES; l++) d[r * 8 + c][l] = src[l][r * stride + c];
#endif
    }
}

/* dst[l][r*stride + c] = range_limit(d[r*8+c][l]) for lanes l < nl. */
static inline void HZ_FN(store_samples)(hz_lanes d, uint8_t *const dst[HZ_LANES], ptrdiff_t stride, int nl)
{
#if HZ_LANES == 16
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    /* in-lane 4x4 byte transpose: (column c, block t) at 4c + t -> 4t + c */
    const __m512i t4 = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    for (int r = 0; r < 8; r++) {
        __m512i v[8];
        /* wrap to 10 bits as signed (RANGE_MASK); the signed saturation to -128..127 of
         * the packs and the flip of the top bit are then the +128 and the clamp */
        for (int c = 0; c < 8; c++) v[c] = _mm512_srai_epi32(_mm512_slli_epi32((__m512i)d[r * 8 + c], 22), 22);
        /* 128-bit lane j: columns 0..3 (lo) / 4..7 (hi) of blocks 4j..4j+3, column-major */
        __m512i lo = _mm512_packs_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
        __m512i hi = _mm512_packs_epi16(_mm512_packs_epi32(v[4], v[5]), _mm512_packs_epi32(v[6], v[7]));
        lo = _mm512_shuffle_epi8(_mm512_xor_si512(lo, flip), t4);
        hi = _mm512_shuffle_epi8(_mm512_xor_si512(hi, flip), t4);
        /* qwords: lane j of a holds blocks 4j, 4j + 1, of b blocks 4j + 2, 4j + 3 */
        const __m512i a = _mm512_unpacklo_epi32(lo, hi), b = _mm512_unpackhi_epi32(lo, hi);
        /* the extract lane must be an immediate at every optimisation level: spelled out */
#define HZ_STORE4(j, x, y)                                                                                      \
    do {                                                                                                        \
        const int l = 4 * (j);                                                                                  \
        if (l < nl) _mm_storel_epi64((__m128i *)(dst[l] + r * stride), x);                                      \
        if (l + 1 < nl) _mm_storeh_pd((double *)(void *)(dst[l + 1] + r * stride), _mm_castsi128_pd(x));       \
        if (l + 2 < nl) _mm_storel_epi64((__m128i *)(dst[l + 2] + r * stride), y);                              \
        if (l + 3 < nl) _mm_storeh_pd((double *)(void *)(dst[l + 3] + r * stride), _mm_castsi128_pd(y));       \
    } while (0)
        HZ_STORE4(0, _mm512_castsi512_si128(a), _mm512_castsi512_si128(b));
        HZ_STORE4(1, _mm512_extracti32x4_epi32(a, 1), _mm512_extracti32x4_epi32(b, 1));
        HZ_STORE4(2, _mm512_extracti32x4_epi32(a, 2), _mm512_extracti32x4_epi32(b, 2));
        HZ_STORE4(3, _mm512_extracti32x4_epi32(a, 3), _mm512_extracti32x4_epi32(b, 3));
#undef HZ_STORE4
    }
#elif defined(__SSE2__)
    /* Mask to 10 bits, sign-extend, +128; the saturating packs then clamp to 0..255. */
    for (int k = 0; k < 64; k++) d[k] = ((d[k] & 1023) ^ 512) - 512 + 128;
    for (int r = 0; r < 8; r++) {
        __m128i m[8], c[4];
        for (int col = 0; col < 8; col++) {
            __m128i h[2];
            memcpy(h, &d[r * 8 + col], sizeof h);
            __m128i w = _mm_packs_epi32(h[0], h[1]);
            m[col] = _mm_packus_epi16(w, w);
        }
        HZ_FN(transpose8x8_u8)(m, c);
        for (int k = 0; k < 4; k++) {
            if (2 * k < nl) _mm_storel_epi64((__m128i *)(dst[2 * k] + r * stride), c[k]);
            if (2 * k + 1 < nl) _mm_storeh_pd((double *)(void *)(dst[2 * k + 1] + r * stride), _mm_castsi128_pd(c[k]));
        }
    }
#else
    for (int r = 0; r < 8; r++)
        for (int l = 0; l < nl; l++)
            for (int c = 0; c < 8; c++) dst[l][r * stride + c] = (uint8_t)hz_idct_range_limit(d[r * 8 + c][l]);
#endif
}

/* ---- the block math across lanes --------------------------------------- */

/* Forward DCT of samples 0..255. jfdctint.c subtracts 128 first; every output
 * but the DC is a difference in which that constant cancels exactly, and the
 * DC moves by 8 * 8 * 128 * 8 / 8 (pass 1 scales by 4, pass 2's rounded
 * shift by 2 of a multiple of 4 is exact): 8192. */
static inline void HZ_FN(fdct_lanes)(hz_lanes d)
{
    for (int r = 0; r < 8; r++) HZ_FN(fdct_1d_v)(&d[r * 8], 1, 0);
    for (int c = 0; c < 8; c++) HZ_FN(fdct_1d_v)(&d[c], 8, 1);
    d[0] -= 8192;
}

/* True when rows 1..7 of column c are zero in every lane: pass 1 of the
 * IDCT then reduces to DC << PASS1_BITS, exactly as jidctint.c's shortcut. */
static inline int HZ_FN(column_ac_zero)(const hz_lanes d, int c)
{
    hz_vec any = d[8 + c] | d[16 + c] | d[24 + c] | d[32 + c] | d[40 + c] | d[48 + c] | d[56 + c];
#if HZ_LANES == 16
    return _mm512_test_epi32_mask((__m512i)any, (__m512i)any) == 0;
#elif defined(__AVX2__)
    __m256i v = (__m256i)any;
    return _mm256_testz_si256(v, v);
#else
    int32_t acc = 0;
    for (int l = 0; l < HZ_LANES; l++) acc |= any[l];
    return acc == 0;
#endif
}

static inline void HZ_FN(idct_lanes)(hz_lanes d)
{
    for (int c = 0; c < 8; c++) {
        if (HZ_FN(column_ac_zero)(d, c)) {
            hz_vec dc = d[c] * (1 << HZ_PASS1_BITS);
            for (int r = 0; r < 8; r++) d[r * 8 + c] = dc;
            continue;
        }
        HZ_FN(idct_1d_v)(&d[c], 8, 0);
    }
    for (int r = 0; r < 8; r++) HZ_FN(idct_1d_v)(&d[r * 8], 1, 1);
}

/* Per zigzag position z, for the bit count: the lanes holding a nonzero
 * value (a bit mask) and the values' categories (bit lengths). Filled by
 * quantize_lanes on the fly; positions whose mask is 0 have no categories. */
typedef struct {
    int32_t cat[64][HZ_LANES] __attribute__((aligned(64)));
#if HZ_LANES == 16
    uint16_t nz[64] __attribute__((aligned(64)));
#else
    uint8_t nz[64] __attribute__((aligned(64)));
#endif
} HZ_FN(zz_counts);

static inline hz_vec HZ_FN(vabs)(hz_vec c)
{
#if HZ_LANES == 16
    return (hz_vec)_mm512_abs_epi32((__m512i)c);
#elif defined(__AVX2__)
    return (hz_vec)_mm256_abs_epi32((__m256i)c);
#else
    const hz_vec sign = c >> 31;
    return (c ^ sign) - sign;
#endif
}

/* Quantise in[0..64) (jcdctmgr.c, hz_dct_generic.h): out <- the quantised
 * values (out may be in; with keep == 0 only out[0], the DC, is written),
 * deq <- them times the table (unless NULL), zc <- what the bit count needs
 * (unless NULL). The bit count alone never forms the signed AC values. */
static inline void HZ_FN(quantize_lanes)(const hz_vec *in, hz_lanes out, int keep, const hz_divisor_table *t,
                                         hz_vec *deq, HZ_FN(zz_counts) *zc)
{
    const int signed_values = keep || deq;
    for (int k = 0; k < 64; k++) {
        const hz_vec c = in[k];
#ifdef HZ_QVEC
        const hz_vec q = HZ_FN(bcast)(&t->qval[k]);
        const hz_vec m = HZ_FN(quantize_mag_v)(HZ_FN(vabs)(c), q, HZ_FN(bcast)(&t->recip[k]), HZ_FN(bcast)(&t->shift[k]));
#else
        const int32_t q = t->qval[k];
        const hz_vec m = HZ_FN(quantize_mag_v)(HZ_FN(vabs)(c), q, t->recip[k], t->shift[k]);
#endif
        if (signed_values || k == 0) {
            const hz_vec sign = c >> 31;
            const hz_vec o = (m ^ sign) - sign;
            out[k] = o;
#ifdef HZ_QVEC
            if (deq) deq[k] = HZ_VMULV(o, q); /* |value| <= 2048, Q <= 255 */
#else
            if (deq) deq[k] = HZ_VMUL16(o, q);
#endif
        }
        if (zc && k > 0) {
            const int z = HZ_UNZIGZAG[k];
#if HZ_LANES == 16
            const __m512i v = (__m512i)m;
            zc->nz[z] = _mm512_test_epi32_mask(v, v);
            _mm512_store_si512(zc->cat[z], _mm512_sub_epi32(_mm512_set1_epi32(32), _mm512_lzcnt_epi32(v)));
#elif defined(__AVX2__)
            const __m256i a = (__m256i)m, zero = _mm256_setzero_si256();
            const int nz = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(a, zero)));
            zc->nz[z] = (uint8_t)nz;
            if (nz) { /* the category is the float exponent of the magnitude (exact below 2^24), 0 for 0 */
                __m256i e = _mm256_srli_epi32(_mm256_castps_si256(_mm256_cvtepi32_ps(a)), 23);
                _mm256_store_si256((__m256i *)zc->cat[z], _mm256_max_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(126)), zero));
            }
#else
            int nz = 0;
            for (int l = 0; l < HZ_LANES; l++) {
                nz |= (m[l] != 0) << l;
                zc->cat[z][l] = hz_nbits((uint32_t)m[l]);
            }
            zc->nz[z] = (uint8_t)nz;
#endif
        }
    }
    if (zc) zc->nz[0] = 0;
}

static inline void HZ_FN(dequantize_lanes)(hz_lanes d, const uint16_t *table)
{
    for (int k = 0; k < 64; k++) d[k] = d[k] * (int32_t)table[k];
}

/* ---- exact bit counts, straight from the quantised lanes ----------------- */

/* AC bits of one block under the standard tables: zz is the nonzero mask in
 * zigzag order (bit 0, the DC, clear), cat[z * stride] the category of the
 * value at zigzag position z; run_cat as in hz_code_lengths. */
static inline int64_t HZ_FN(block_ac_bits)(uint64_t zz, const int32_t *cat, int stride, const uint8_t *run_cat, int eob)
{
    /* index ((z - last - 1) << 4) | c kept as z16 - next16 + c, all in unsigned 64-bit
     * arithmetic (no sign extensions in the loop); cat[z] is at z * stride */
    uint64_t bits = 0, next16 = 16;
    while (zz) {
        const uint64_t z = (uint64_t)HZ_CTZ64(zz);
        zz &= zz - 1;
        const uint64_t z16 = z << 4;
        bits += run_cat[z16 - next16 + (uint64_t)(uint32_t)cat[z * (uint64_t)stride]];
        next16 = z16 + 16;
    }
    return (int64_t)bits + (next16 != 64 * 16 ? eob : 0);
}

/* The same block's AC symbols counted into hist (optimal tables); returns its magnitude bits. */
static inline int64_t HZ_FN(block_ac_gather)(uint64_t zz, const int32_t *cat, int stride, int64_t *hist)
{
    int64_t extra = 0;
    int last = 0;
    while (zz) {
        const int z = HZ_CTZ64(zz);
        zz &= zz - 1;
        const int run = z - last - 1, nb = cat[z * stride];
        last = z;
        hist[0xF0] += run >> 4;
        hist[((run & 15) << 4) | nb]++;
        extra += nb;
    }
    if (last != 63) hist[0x00]++;
    return extra;
}

/* What the block loop needs of the code lengths of one class. */
typedef struct {
    const uint8_t *run_cat;
    int eob, optimize, cls;
} HZ_FN(count_ctx);

#if HZ_LANES != 16 && !defined(__AVX2__)
/* Lane l's nonzero mask in zigzag order, bit by bit. */
static inline uint64_t HZ_FN(lane_mask_portable)(const HZ_FN(zz_counts) *zc, int l)
{
    uint64_t m = 0;
    for (int z = 1; z < 64; z++) m |= (uint64_t)((zc->nz[z] >> l) & 1) << z;
    return m;
}
#endif

/* Count the AC bits of the nl blocks in lanes into acc from zc (quantize_lanes)
 * and store their DC values dcv at dc[0..HZ_LANES) (the scan-order DC pass,
 * hz_count_finish, runs later). Quantised values of 8-bit images always fit
 * the baseline categories. */
static inline void HZ_FN(count_lanes)(hz_vec dcv, const HZ_FN(zz_counts) *zc, int l0, int nl, const HZ_FN(count_ctx) *cc,
                                      hz_count_state *acc, int32_t *dc)
{
    int64_t total = 0;
    int64_t *hist = acc->hist[2 * cc->cls + 1];
    int32_t lanes[HZ_LANES];
    memcpy(lanes, &dcv, sizeof dcv);
    memcpy(dc, lanes + l0, sizeof(int32_t) * (size_t)(nl - l0)); /* lanes l0.. go to dc[0..] */
#if HZ_LANES == 16
    const __m512i lo = _mm512_load_si512(zc->nz), hi = _mm512_load_si512(zc->nz + 32);
#define HZ_LANE_MASK(l)                                                                                      \
    ((uint64_t)_mm512_test_epi16_mask(lo, _mm512_set1_epi16((short)(1 << (l)))) |                             \
     ((uint64_t)_mm512_test_epi16_mask(hi, _mm512_set1_epi16((short)(1 << (l)))) << 32))
#elif defined(__AVX2__)
    const __m256i lo = _mm256_load_si256((const __m256i *)zc->nz), hi = _mm256_load_si256((const __m256i *)(zc->nz + 32));
    /* bit l of every byte moved to its top bit */
#define HZ_LANE_MASK(l)                                                                                      \
    ((uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_sll_epi64(lo, _mm_cvtsi32_si128(7 - (l)))) |            \
     ((uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_sll_epi64(hi, _mm_cvtsi32_si128(7 - (l)))) << 32))
#else
#define HZ_LANE_MASK(l) HZ_FN(lane_mask_portable)(zc, (l))
#endif
    for (int l = l0; l < nl; l++) {
        const uint64_t zz = HZ_LANE_MASK(l);
        if (cc->optimize)
            total += HZ_FN(block_ac_gather)(zz, &zc->cat[0][l], HZ_LANES, hist);
        else
            total += HZ_FN(block_ac_bits)(zz, &zc->cat[0][l], HZ_LANES, cc->run_cat, cc->eob);
    }
#undef HZ_LANE_MASK
    if (cc->optimize)
        acc->extra += total;
    else
        acc->ac_bits += total;
}

/* ---- forward: RGB rows -> component planes ----------------------------- */

/* One source row, edge-extended to ext columns, converted to Y, Cb, Cr. The
 * extension replicates the last pixel (jcsample.c expand_right_edge); its
 * conversion is the last converted value, replicated. */
static void HZ_FN(convert_row)(const uint8_t *src, int width, int channels, int ext, uint8_t *rgb, uint8_t *y,
                               uint8_t *cb, uint8_t *cr)
{
    if (channels == 1) {
        memcpy(y, src, (size_t)width);
        memset(y + width, src[width - 1], (size_t)(ext - width));
        return;
    }
    (void)rgb;
    int x = 0;
#if HZ_LANES == 16
    hz_rgb_to_ycc_row_avx512(src, width, y, cb, cr);
    x = width;
#elif defined(__AVX2__)
    x = hz_rgb_to_ycc_row_avx2(src, width, y, cb, cr);
#endif
    for (; x < width; x++) {
        int32_t r = src[3 * x], g = src[3 * x + 1], b = src[3 * x + 2];
        y[x] = (uint8_t)hz_rgb_y(r, g, b);
        cb[x] = (uint8_t)hz_rgb_cb(r, g, b);
        cr[x] = (uint8_t)hz_rgb_cr(r, g, b);
    }
    if (ext > width) {
        memset(y + width, y[width - 1], (size_t)(ext - width));
        memset(cb + width, cb[width - 1], (size_t)(ext - width));
        memset(cr + width, cr[width - 1], (size_t)(ext - width));
    }
}

/* n outputs of h2v1 (rows == 1) or h2v2 (rows == 2) downsampling. */
static void HZ_FN(downsample_row)(const uint8_t *r0, const uint8_t *r1, int n, int rows, uint8_t *out)
{
    int x = 0;
#if HZ_LANES == 16
    hz_downsample_row_avx512(r0, r1, n, rows, out);
    x = n;
#elif defined(__AVX2__)
    x = hz_downsample_row_avx2(r0, r1, n, rows, out);
#endif
    if (rows == 1)
        for (; x < n; x++) out[x] = (uint8_t)hz_down_h2v1(r0[2 * x], r0[2 * x + 1], x);
    else
        for (; x < n; x++) out[x] = (uint8_t)hz_down_h2v2(r0[2 * x], r0[2 * x + 1], r1[2 * x], r1[2 * x + 1], x);
}

/* Build rows [u0, u1) of the component planes of one image (edge replication
 * and downsampling exactly as jcprepct.c / jcsample.c do). A unit is a plane
 * row without downsampling, else a chroma row and the luma rows it comes
 * from (hz_plane_units); hz_finish_planes then pads the planes to whole blocks. */
static void HZ_FN(build_rows)(const hz_layout *L, const uint8_t *img, uint8_t *s, int u0, int u1)
{
    const int H = L->height, W = L->width, C = L->channels;
    const hz_component *cy = &L->comp[0];
    uint8_t *rgb = s + L->off_rgb;
    uint8_t *base = hz_image_base(L, s);
    uint8_t *plane[3];
    for (int c = 0; c < L->ncomp; c++) plane[c] = base + L->off_plane[c];
    const ptrdiff_t ystride = L->stride[0];
    const ptrdiff_t row_bytes = (ptrdiff_t)W * C;

    if (L->ncomp == 1 || (L->h_samp == 1 && L->v_samp == 1)) {
        /* No downsampling: every plane row is a converted (replicated) source row. */
        for (int r = u0; r < u1; r++) {
            const uint8_t *src = img + (ptrdiff_t)(r < H ? r : H - 1) * row_bytes;
            HZ_FN(convert_row)(src, W, C, L->ext, rgb, plane[0] + r * ystride,
                               L->ncomp > 1 ? plane[1] + r * L->stride[1] : NULL,
                               L->ncomp > 1 ? plane[2] + r * L->stride[2] : NULL);
        }
        return;
    }

    const hz_component *cc = &L->comp[1];
    const ptrdiff_t cstride = L->stride[1];
    uint8_t *cbrow[2] = {s + L->off_crow[0], s + L->off_crow[1]};
    uint8_t *crrow[2] = {s + L->off_crow[2], s + L->off_crow[3]};
    uint8_t *ytmp = s + L->off_ytmp;
    const int fv = L->v_samp; /* 1 (4:2:2) or 2 (4:2:0) */
    const int cols = cc->blocks_wide * 8;

    for (int rc = u0; rc < u1; rc++) {
#if HZ_LANES == 16
        if (C == 3) { /* converted and downsampled in registers */
            const int r0 = rc * fv, r1 = r0 + 1;
            uint8_t *y0 = r0 < cy->blocks_high * 8 ? plane[0] + r0 * ystride : ytmp;
            uint8_t *y1 = r1 < cy->blocks_high * 8 ? plane[0] + r1 * ystride : ytmp;
            hz_rgb_rows_h2_avx512(img + (ptrdiff_t)(r0 < H ? r0 : H - 1) * row_bytes,
                                  fv == 2 ? img + (ptrdiff_t)(r1 < H ? r1 : H - 1) * row_bytes : NULL, W, L->ext, cols, y0,
                                  y1, plane[1] + rc * cstride, plane[2] + rc * cstride);
            continue;
        }
#endif
        for (int j = 0; j < fv; j++) {
            int r = rc * fv + j;
            const uint8_t *src = img + (ptrdiff_t)(r < H ? r : H - 1) * row_bytes;
            uint8_t *yrow = r < cy->blocks_high * 8 ? plane[0] + r * ystride : ytmp;
            HZ_FN(convert_row)(src, W, C, L->ext, rgb, yrow, cbrow[j], crrow[j]);
        }
        HZ_FN(downsample_row)(cbrow[0], cbrow[1], cols, fv, plane[1] + rc * cstride);
        HZ_FN(downsample_row)(crrow[0], crrow[1], cols, fv, plane[2] + rc * cstride);
    }
}

/* ---- inverse: component samples -> pixels ------------------------------ */

/* Upsample one chroma row to full resolution into out[0..2*dw) (jdsample.c).
 * csbuf holds the column sums with one replicated sample at each end. */
static void HZ_FN(upsample_row)(const uint8_t *row, const uint8_t *nb, int dw, int vertical, int16_t *csbuf,
                                uint8_t *out)
{
    if (dw <= 2) { /* libjpeg-turbo uses plain replication for such narrow components */
        for (int x = 0; x < dw; x++) out[2 * x] = out[2 * x + 1] = row[x];
        return;
    }
    int16_t *cs = csbuf + 16;
    int x = 0;
#if HZ_LANES == 16
    hz_column_sums_avx512(row, nb, dw, vertical, cs);
    cs[-1] = cs[0];
    cs[dw] = cs[dw - 1];
    hz_fancy_row_avx512(cs, dw, vertical, out);
    return;
#endif
    if (vertical)
        for (int k = 0; k < dw; k++) cs[k] = (int16_t)(3 * row[k] + nb[k]);
    else
        for (int k = 0; k < dw; k++) cs[k] = row[k];
    cs[-1] = cs[0];
    cs[dw] = cs[dw - 1];
#if defined(__AVX2__)
    x = hz_fancy_row_avx2(cs, dw, vertical, out);
#endif
    for (; x < dw; x++) {
        out[2 * x] = (uint8_t)(vertical ? hz_up_h2v2_even(cs[x - 1], cs[x]) : hz_up_h2v1_even(cs[x - 1], cs[x]));
        out[2 * x + 1] = (uint8_t)(vertical ? hz_up_h2v2_odd(cs[x], cs[x + 1]) : hz_up_h2v1_odd(cs[x], cs[x + 1]));
    }
}

/* Full-resolution Y, Cb, Cr rows -> interleaved RGB (jdcolor.c). */
static void HZ_FN(ycc_row)(const uint8_t *y, const uint8_t *cb, const uint8_t *cr, int n, uint8_t *o)
{
    int x = 0;
#if HZ_LANES == 16
    hz_ycc_consts k;
    hz_ycc_setup(&k, 0);
    hz_ycc_to_rgb_row_avx512(&k, y, cb, cr, n, o);
    x = n;
#elif defined(__AVX2__)
    x = hz_ycc_to_rgb_row_avx2(y, cb, cr, n, o);
#endif
    for (; x < n; x++) {
        int32_t Y = y[x], b = cb[x], r = cr[x];
        o[3 * x] = (uint8_t)hz_ycc_r(Y, b, r);
        o[3 * x + 1] = (uint8_t)hz_ycc_g(Y, b, r);
        o[3 * x + 2] = (uint8_t)hz_ycc_b(Y, b, r);
    }
}

/* The chroma row (and its context row) output row y of 4:2:x upsampling reads. */
static inline void HZ_FN(chroma_rows)(const hz_layout *L, int y, int *rc, int *nbr)
{
    const int h = L->comp[1].height;
    *rc = y / L->v_samp;
    *nbr = *rc;
    if (L->v_samp == 2) /* context row above for even rows, below for odd (jdmainct.c) */
        *nbr = (y & 1) ? (*rc + 1 < h ? *rc + 1 : h - 1) : (*rc > 0 ? *rc - 1 : 0);
}

/* Output rows [y0, y1) of one image from the reconstructed planes. */
static void HZ_FN(emit_pixels)(const hz_layout *L, uint8_t *s, uint8_t *out, int y0, int y1)
{
    const int W = L->width;
    const uint8_t *base = hz_image_base(L, s);
    const uint8_t *plane[3];
    for (int c = 0; c < L->ncomp; c++) plane[c] = base + L->off_recon[c];
    if (L->ncomp == 1) {
        for (int y = y0; y < y1; y++) memcpy(out + (ptrdiff_t)y * W, plane[0] + y * L->stride[0], (size_t)W);
        return;
    }
    uint8_t *ucb = s + L->off_up[0], *ucr = s + L->off_up[1];
    int16_t *cs = (int16_t *)(s + L->off_up[2]);
    const hz_component *cc = &L->comp[1];
#if HZ_LANES == 16
    hz_ycc_consts k;
    /* stream only when every row starts 32-byte aligned (with the output): whole lines, no mixing */
    hz_ycc_setup(&k, L->stream && (L->width * 3) % 32 == 0 && ((uintptr_t)out & 31) == 0);
#endif
    for (int y = y0; y < y1; y++) {
        const uint8_t *yrow = plane[0] + y * L->stride[0];
        uint8_t *o = out + (ptrdiff_t)y * W * 3;
        if (L->h_samp == 1 && L->v_samp == 1) {
#if HZ_LANES == 16
            hz_ycc_to_rgb_row_avx512(&k, yrow, plane[1] + y * L->stride[1], plane[2] + y * L->stride[2], W, o);
#else
            HZ_FN(ycc_row)(yrow, plane[1] + y * L->stride[1], plane[2] + y * L->stride[2], W, o);
#endif
            continue;
        }
        int rc, nbr;
        HZ_FN(chroma_rows)(L, y, &rc, &nbr);
#if HZ_LANES == 16
        if (cc->width > 2 && L->v_samp == 2 && !(y & 1)) { /* rows 2rc, 2rc + 1 share chroma row rc */
            const int h = cc->height, above = rc > 0 ? rc - 1 : 0, below = rc + 1 < h ? rc + 1 : h - 1;
            const int two = y + 1 < y1;
            const ptrdiff_t cs1 = L->stride[1];
            hz_upsample_ycc_row_pair_avx512(&k, yrow, yrow + L->stride[0], plane[1] + rc * cs1, plane[1] + above * cs1,
                                            plane[1] + below * cs1, plane[2] + rc * cs1, plane[2] + above * cs1,
                                            plane[2] + below * cs1, cc->width, W, o, two ? o + (ptrdiff_t)W * 3 : NULL);
            y += two;
            continue;
        }
        if (cc->width > 2) { /* upsampled chroma stays in registers */
            hz_upsample_ycc_row_avx512(&k, yrow, plane[1] + rc * L->stride[1], plane[1] + nbr * L->stride[1],
                                       plane[2] + rc * L->stride[2], plane[2] + nbr * L->stride[2], cc->width,
                                       L->v_samp == 2, W, o);
            continue;
        }
#endif
        HZ_FN(upsample_row)(plane[1] + rc * L->stride[1], plane[1] + nbr * L->stride[1], cc->width, L->v_samp == 2, cs, ucb);
        HZ_FN(upsample_row)(plane[2] + rc * L->stride[2], plane[2] + nbr * L->stride[2], cc->width, L->v_samp == 2, cs, ucr);
        HZ_FN(ycc_row)(yrow, ucb, ucr, W, o);
    }
}

/* ---- lane groups -------------------------------------------------------- */

/* Pointers to the blocks of group g of class cls in the planes at base +
 * off[comp], and (coef_arrays given) into each component's block grid. Idle
 * lanes past the last block repeat it. Returns the number of real blocks. */
static inline int HZ_FN(group_ptrs)(const hz_layout *L, int cls, int g, uint8_t *base, const size_t *off,
                                    uint8_t *ptr[HZ_LANES], int16_t *const *coef_arrays, int16_t *cptr[HZ_LANES])
{
    const int first = g * HZ_LANES;
    int count = L->nblocks[cls] - first;
    if (count > HZ_LANES) count = HZ_LANES;
    int comp, bi, bj;
    hz_block_position(L, cls, first, &comp, &bi, &bj);
    for (int l = 0; l < HZ_LANES; l++) {
        if (l >= count) {
            ptr[l] = ptr[count - 1];
            if (coef_arrays) cptr[l] = cptr[count - 1];
            continue;
        }
        ptr[l] = base + off[comp] + (ptrdiff_t)bi * 8 * L->stride[comp] + bj * 8;
        if (coef_arrays) cptr[l] = coef_arrays[comp] + ((ptrdiff_t)bi * L->comp[comp].blocks_wide + bj) * 64;
        if (++bj == L->comp[comp].blocks_wide) { /* step to the next block of the class */
            bj = 0;
            if (++bi == L->comp[comp].blocks_high) {
                bi = 0;
                comp++;
            }
        }
    }
    return count;
}

static inline ptrdiff_t HZ_FN(group_stride)(const hz_layout *L, int cls) { return L->stride[cls == 0 ? 0 : 1]; }

#if HZ_LANES == 16
/* Eight vectors y[j] of 16 words (word l: lane l's value j) <-> sixteen rows
 * of 8 words: r[t] holds lane t in its low half and lane 8 + t in its high
 * half. The same network does both directions (it is a transpose). */
static inline void HZ_FN(transpose8x16_i16)(const __m256i y[8], __m256i r[8])
{
    __m256i p[8], q[8];
    for (int i = 0; i < 4; i++) {
        p[2 * i] = _mm256_unpacklo_epi16(y[2 * i], y[2 * i + 1]);
        p[2 * i + 1] = _mm256_unpackhi_epi16(y[2 * i], y[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) { /* values 4h..4h+3 */
        q[4 * h + 0] = _mm256_unpacklo_epi32(p[4 * h + 0], p[4 * h + 2]);
        q[4 * h + 1] = _mm256_unpackhi_epi32(p[4 * h + 0], p[4 * h + 2]);
        q[4 * h + 2] = _mm256_unpacklo_epi32(p[4 * h + 1], p[4 * h + 3]);
        q[4 * h + 3] = _mm256_unpackhi_epi32(p[4 * h + 1], p[4 * h + 3]);
    }
    for (int t = 0; t < 4; t++) {
        r[2 * t] = _mm256_unpacklo_epi64(q[t], q[4 + t]);
        r[2 * t + 1] = _mm256_unpackhi_epi64(q[t], q[4 + t]);
    }
}
#elif defined(__AVX2__)
/* In-place transpose of an 8x8 int32 matrix held as eight rows. */
static inline void HZ_FN(transpose8x8_i32)(__m256i r[8])
{
    __m256i t[8], u[8];
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_epi32(r[j], r[j + 1]);
        t[j + 1] = _mm256_unpackhi_epi32(r[j], r[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {
        u[j] = _mm256_unpacklo_epi64(t[j], t[j + 2]);
        u[j + 1] = _mm256_unpackhi_epi64(t[j], t[j + 2]);
        u[j + 2] = _mm256_unpacklo_epi64(t[j + 1], t[j + 3]);
        u[j + 3] = _mm256_unpackhi_epi64(t[j + 1], t[j + 3]);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x20);
        r[j + 4] = _mm256_permute2x128_si256(u[j], u[j + 4], 0x31);
    }
}
#endif

/* Lane vectors -> each lane's block of 64 int16 in natural order. */
static inline void HZ_FN(store_coefs)(const hz_lanes d, int16_t *const cptr[HZ_LANES], int nl)
{
#if HZ_LANES == 16
    for (int kb = 0; kb < 8; kb++) {
        __m256i y[8], r[8];
        for (int j = 0; j < 8; j++) y[j] = _mm512_cvtsepi32_epi16((__m512i)d[8 * kb + j]);
        HZ_FN(transpose8x16_i16)(y, r);
        for (int t = 0; t < 8; t++) {
            if (t < nl) _mm_storeu_si128((__m128i *)(cptr[t] + 8 * kb), _mm256_castsi256_si128(r[t]));
            if (8 + t < nl) _mm_storeu_si128((__m128i *)(cptr[8 + t] + 8 * kb), _mm256_extracti128_si256(r[t], 1));
        }
    }
#elif defined(__AVX2__)
    for (int kb = 0; kb < 8; kb++) {
        __m256i r[8];
        for (int j = 0; j < 8; j++) r[j] = (__m256i)d[8 * kb + j];
        HZ_FN(transpose8x8_i32)(r); /* r[l]: lane l's coefficients 8kb..8kb+7 */
        for (int l = 0; l < 8; l += 2) {
            __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(r[l], r[l + 1]), 0xD8);
            if (l < nl) _mm_storeu_si128((__m128i *)(cptr[l] + 8 * kb), _mm256_castsi256_si128(p));
            if (l + 1 < nl) _mm_storeu_si128((__m128i *)(cptr[l + 1] + 8 * kb), _mm256_extracti128_si256(p, 1));
        }
    }
#else
    for (int l = 0; l < nl; l++)
        for (int k = 0; k < 64; k++) cptr[l][k] = (int16_t)d[k][l];
#endif
}

/* Each lane's block of 64 int16 -> lane vectors (lanes past nl repeat the last block). */
static inline void HZ_FN(load_coefs)(hz_lanes d, int16_t *const cptr[HZ_LANES], int nl)
{
#if HZ_LANES == 16
    for (int kb = 0; kb < 8; kb++) {
        __m256i r[8], y[8];
        for (int t = 0; t < 8; t++) {
            const int16_t *a = cptr[t < nl ? t : nl - 1] + 8 * kb, *b = cptr[8 + t < nl ? 8 + t : nl - 1] + 8 * kb;
            r[t] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                                           _mm_loadu_si128((const __m128i *)b), 1);
        }
        HZ_FN(transpose8x16_i16)(r, y);
        for (int j = 0; j < 8; j++) d[8 * kb + j] = (hz_vec)_mm512_cvtepi16_epi32(y[j]);
    }
#elif defined(__AVX2__)
    for (int kb = 0; kb < 8; kb++) {
        __m256i r[8];
        for (int l = 0; l < 8; l++)
            r[l] = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(cptr[l < nl ? l : nl - 1] + 8 * kb)));
        HZ_FN(transpose8x8_i32)(r);
        for (int j = 0; j < 8; j++) d[8 * kb + j] = (hz_vec)r[j];
    }
#else
    for (int l = 0; l < HZ_LANES; l++) {
        const int16_t *src = cptr[l < nl ? l : nl - 1];
        for (int k = 0; k < 64; k++) d[k][l] = src[k];
    }
#endif
}

/* Forward DCT of lane groups [g0, g1) (both classes, luma first), kept in
 * lane layout for the per-quality passes when there are several qualities. */
static void HZ_FN(fdct_groups)(const hz_layout *L, uint8_t *s, int g0, int g1)
{
    uint8_t *base = hz_image_base(L, s);
    hz_vec *fd = (hz_vec *)(base + L->off_fdct);
    for (int gi = g0; gi < g1; gi++) {
        const int cls = gi < L->ngroups[0] ? 0 : 1, g = cls ? gi - L->ngroups[0] : gi;
        uint8_t *ptr[HZ_LANES];
        HZ_FN(group_ptrs)(L, cls, g, base, L->off_plane, ptr, NULL, NULL);
        HZ_FN(load_samples)(ptr, HZ_FN(group_stride)(L, cls), fd + (ptrdiff_t)gi * 64);
        HZ_FN(fdct_lanes)(fd + (ptrdiff_t)gi * 64);
    }
}

static inline void HZ_FN(count_setup)(const hz_job *job, int cls, HZ_FN(count_ctx) *cc)
{
    const hz_code_lengths *lens = hz_std_code_lengths();
    cc->run_cat = lens->run_cat[cls];
    cc->eob = lens->ac[cls][0x00];
    cc->optimize = job->optimize;
    cc->cls = cls;
}

/* Quality row q of image i for lane groups [g0, g1): quantise, then store the
 * coefficients, count the bits (into acc) and/or inverse-transform into the
 * reconstructed planes. */
static void HZ_FN(quant_groups)(const hz_job *job, const hz_layout *L, int i, int q, uint8_t *s, int g0, int g1,
                                hz_count_state *acc)
{
    uint8_t *base = hz_image_base(L, s);
    const hz_vec *fd = (const hz_vec *)(base + L->off_fdct);
    const ptrdiff_t slot = (ptrdiff_t)q * job->n + i;
    const int quality = job->qualities[slot];
    int16_t *const *coefs = job->coefs ? job->coefs + 3 * slot : NULL;
    int32_t *dc = (int32_t *)(base + L->off_dc);
    HZ_FN(count_ctx) cc[2];
    if (acc) {
        HZ_FN(count_setup)(job, 0, &cc[0]);
        HZ_FN(count_setup)(job, 1, &cc[1]);
    }
    hz_lanes d, deq;
    HZ_FN(zz_counts) zc;
    for (int gi = g0; gi < g1; gi++) {
        const int cls = gi < L->ngroups[0] ? 0 : 1, g = cls ? gi - L->ngroups[0] : gi;
        uint8_t *ptr[HZ_LANES], *rptr[HZ_LANES];
        int16_t *cptr[HZ_LANES];
        int nl = HZ_FN(group_ptrs)(L, cls, g, base, L->off_plane, ptr, coefs, cptr);
        const hz_vec *in = d;
        if (job->nq > 1) {
            in = fd + (ptrdiff_t)gi * 64;
        } else {
            HZ_FN(load_samples)(ptr, HZ_FN(group_stride)(L, cls), d);
            HZ_FN(fdct_lanes)(d);
        }
        HZ_FN(quantize_lanes)(in, d, coefs != NULL, hz_divisors(quality, cls), job->pixels ? deq : NULL, acc ? &zc : NULL);
        if (coefs) HZ_FN(store_coefs)(d, cptr, nl);
        if (acc) HZ_FN(count_lanes)(d[0], &zc, 0, nl, &cc[cls], acc, dc + (ptrdiff_t)gi * HZ_LANES);
        if (job->pixels) {
            HZ_FN(group_ptrs)(L, cls, g, base, L->off_recon, rptr, NULL, NULL);
            HZ_FN(idct_lanes)(deq);
            HZ_FN(store_samples)(deq, rptr, HZ_FN(group_stride)(L, cls), nl);
        }
    }
}

/* One image on one thread: every phase over its whole range. */
static void HZ_FN(process_image)(const hz_job *job, const hz_layout *L, int i, uint8_t *s)
{
    const int groups = L->ngroups[0] + L->ngroups[1];
    uint8_t *base = hz_image_base(L, s);
    HZ_FN(build_rows)(L, job->src[i], s, 0, hz_plane_units(L));
    hz_finish_planes(L, base);
    if (job->bits) hz_count_prepare(L, base);
    if (job->nq > 1) HZ_FN(fdct_groups)(L, s, 0, groups);
    for (int q = 0; q < job->nq; q++) {
        const ptrdiff_t slot = (ptrdiff_t)q * job->n + i;
        hz_count_state *acc = job->bits ? (hz_count_state *)(base + L->off_count) : NULL;
        if (acc) hz_count_begin(job, L, base);
        HZ_FN(quant_groups)(job, L, i, q, s, 0, groups, acc);
        if (acc) job->bits[slot] = hz_count_finish(job, L, base);
        if (job->pixels) HZ_FN(emit_pixels)(L, s, job->pixels[slot], 0, L->height);
    }
}

/* Two small images of one size whose chroma blocks fill at most half a group
 * each (hz_pairable): their Cb and Cr blocks share one lane group, lanes
 * 0..7 image a, lanes 8..15 image b, so no lane idles (CIFAR: 16 luma blocks
 * and 4 + 4 chroma blocks). Both use the same quality in every row. The
 * second image's planes and state live after the first's in the scratch. */
static void HZ_FN(chroma_pair)(const hz_job *job, const hz_layout *L, const hz_layout *LB, int ia, int ib, int q,
                               uint8_t *s, hz_count_state *acc_a, hz_count_state *acc_b)
{
    enum { HALF = HZ_LANES / 2 };
    uint8_t *base[2] = {hz_image_base(L, s), hz_image_base(LB, s)};
    const int img[2] = {ia, ib};
    const int nb = L->nblocks[1];
    uint8_t *ptr[HZ_LANES], *rptr[HZ_LANES], *one[HZ_LANES];
    int16_t *cptr[HZ_LANES], *cone[HZ_LANES];
    for (int h = 0; h < 2; h++) {
        const ptrdiff_t slot = (ptrdiff_t)q * job->n + img[h];
        int16_t *const *coefs = job->coefs ? job->coefs + 3 * slot : NULL;
        HZ_FN(group_ptrs)(L, 1, 0, base[h], L->off_plane, one, coefs, cone);
        for (int l = 0; l < HALF; l++) {
            ptr[h * HALF + l] = one[l];
            if (coefs) cptr[h * HALF + l] = cone[l];
        }
        HZ_FN(group_ptrs)(L, 1, 0, base[h], L->off_recon, one, NULL, NULL);
        for (int l = 0; l < HALF; l++) rptr[h * HALF + l] = one[l];
    }
    hz_lanes d, deq;
    const hz_vec *in = d;
    if (job->nq > 1) { /* fdct_pair kept the pair's transform in image a's chroma slot */
        in = (const hz_vec *)(base[0] + L->off_fdct) + (ptrdiff_t)L->ngroups[0] * 64;
    } else {
        HZ_FN(load_samples)(ptr, L->stride[1], d);
        HZ_FN(fdct_lanes)(d);
    }
    HZ_FN(zz_counts) zc;
    HZ_FN(quantize_lanes)(in, d, job->coefs != NULL, hz_divisors(job->qualities[(ptrdiff_t)q * job->n + ia], 1),
                          job->pixels ? deq : NULL, acc_a ? &zc : NULL);
    /* lanes past nb in each half repeat that half's last block: whole-group stores write it again, alike */
    if (job->coefs) HZ_FN(store_coefs)(d, cptr, HZ_LANES);
    if (acc_a) {
        HZ_FN(count_ctx) cc;
        HZ_FN(count_setup)(job, 1, &cc);
        HZ_FN(count_lanes)(d[0], &zc, 0, nb, &cc, acc_a, (int32_t *)(base[0] + L->off_dc) + (ptrdiff_t)L->ngroups[0] * HZ_LANES);
        HZ_FN(count_lanes)(d[0], &zc, HALF, HALF + nb, &cc, acc_b, (int32_t *)(base[1] + L->off_dc) + (ptrdiff_t)L->ngroups[0] * HZ_LANES);
    }
    if (job->pixels) {
        HZ_FN(idct_lanes)(deq);
        HZ_FN(store_samples)(deq, rptr, L->stride[1], HZ_LANES);
    }
}

static void HZ_FN(process_pair)(const hz_job *job, const hz_layout *L, int ia, int ib, uint8_t *s)
{
    hz_layout LB = *L;
    LB.shared = s + (L->scratch_bytes - L->local_bytes); /* b's planes after a's */
    const hz_layout *lay[2] = {L, &LB};
    const int img[2] = {ia, ib};
    for (int h = 0; h < 2; h++) {
        HZ_FN(build_rows)(lay[h], job->src[img[h]], s, 0, hz_plane_units(L));
        hz_finish_planes(lay[h], hz_image_base(lay[h], s));
        if (job->bits) hz_count_prepare(lay[h], hz_image_base(lay[h], s));
    }
    if (job->nq > 1) {
        for (int h = 0; h < 2; h++) HZ_FN(fdct_groups)(lay[h], s, 0, L->ngroups[0]);
        uint8_t *ptr[HZ_LANES], *one[HZ_LANES];
        for (int h = 0; h < 2; h++) {
            HZ_FN(group_ptrs)(L, 1, 0, hz_image_base(lay[h], s), L->off_plane, one, NULL, NULL);
            for (int l = 0; l < HZ_LANES / 2; l++) ptr[h * (HZ_LANES / 2) + l] = one[l];
        }
        hz_vec *fd = (hz_vec *)(s + L->off_fdct) + (ptrdiff_t)L->ngroups[0] * 64;
        HZ_FN(load_samples)(ptr, L->stride[1], fd);
        HZ_FN(fdct_lanes)(fd);
    }
    for (int q = 0; q < job->nq; q++) {
        hz_count_state *acc[2] = {NULL, NULL};
        for (int h = 0; h < 2; h++) {
            uint8_t *base = hz_image_base(lay[h], s);
            if (job->bits) {
                acc[h] = (hz_count_state *)(base + L->off_count);
                hz_count_begin(job, L, base);
            }
            HZ_FN(quant_groups)(job, lay[h], img[h], q, s, 0, L->ngroups[0], acc[h]);
        }
        HZ_FN(chroma_pair)(job, L, &LB, ia, ib, q, s, acc[0], acc[1]);
        for (int h = 0; h < 2; h++) {
            const ptrdiff_t slot = (ptrdiff_t)q * job->n + img[h];
            if (job->bits) job->bits[slot] = hz_count_finish(job, L, hz_image_base(lay[h], s));
            if (job->pixels) HZ_FN(emit_pixels)(lay[h], s, job->pixels[slot], 0, L->height);
        }
    }
}

/* The same phases, one range at a time, for several threads on one image.
 * The bits of a range are counted on the side and added to the image's. */
static void HZ_FN(band)(const hz_job *job, const hz_layout *L, int i, int q, int phase, uint8_t *s, int b, int e)
{
    switch (phase) {
    case HZ_PHASE_ROWS: HZ_FN(build_rows)(L, job->src[i], s, b, e); break;
    case HZ_PHASE_FDCT: HZ_FN(fdct_groups)(L, s, b, e); break;
    case HZ_PHASE_QUANT: {
        hz_count_state *local = job->bits ? (hz_count_state *)(s + L->off_hist) : NULL;
        if (local) {
            local->ac_bits = local->extra = 0;
            if (job->optimize) memset(local->hist, 0, sizeof(local->hist));
        }
        HZ_FN(quant_groups)(job, L, i, q, s, b, e, local);
        if (local) {
            hz_count_state *img = (hz_count_state *)(hz_image_base(L, s) + L->off_count);
            __atomic_fetch_add(&img->ac_bits, local->ac_bits, __ATOMIC_RELAXED);
            __atomic_fetch_add(&img->extra, local->extra, __ATOMIC_RELAXED);
            if (job->optimize)
                for (int t = 0; t < 4; t++)
                    for (int k = 0; k < 256; k++)
                        if (local->hist[t][k]) __atomic_fetch_add(&img->hist[t][k], local->hist[t][k], __ATOMIC_RELAXED);
        }
        break;
    }
    default: HZ_FN(emit_pixels)(L, s, job->pixels[(ptrdiff_t)q * job->n + i], b, e);
    }
}

/* Decode one image from stored coefficients with its own tables. Coefficients
 * beyond what an 8-bit baseline encoder produces are refused (HZ_ERR_RANGE):
 * libjpeg-turbo's own C and SIMD decoders disagree on them. */
static int HZ_FN(reconstruct_image)(const int16_t *const *coefs, const uint16_t *tables, const hz_layout *L, int i,
                                    uint8_t *s, uint8_t *out)
{
    hz_lanes d;
    int16_t *comp_base[3];
    for (int c = 0; c < L->ncomp; c++)
        comp_base[c] = (int16_t *)coefs[c] + (ptrdiff_t)i * L->comp[c].blocks_high * L->comp[c].blocks_wide * 64;
    for (int cls = 0; cls < 2; cls++) {
        const uint16_t *table = tables + ((ptrdiff_t)i * 2 + cls) * 64;
        for (int g = 0; g < L->ngroups[cls]; g++) {
            uint8_t *rptr[HZ_LANES];
            int16_t *cptr[HZ_LANES];
            int nl = HZ_FN(group_ptrs)(L, cls, g, hz_image_base(L, s), L->off_recon, rptr, comp_base, cptr);
            HZ_FN(load_coefs)(d, cptr, nl);
            HZ_FN(dequantize_lanes)(d, table);
            hz_vec bad = d[0] > HZ_MAX_DEQUANTIZED;
            for (int k = 0; k < 64; k++) bad |= (d[k] > HZ_MAX_DEQUANTIZED) | (d[k] < -HZ_MAX_DEQUANTIZED);
            for (int l = 0; l < HZ_LANES; l++)
                if (bad[l]) return HZ_ERR_RANGE;
            HZ_FN(idct_lanes)(d);
            HZ_FN(store_samples)(d, rptr, HZ_FN(group_stride)(L, cls), nl);
        }
    }
    HZ_FN(emit_pixels)(L, s, out + (ptrdiff_t)i * L->image_bytes, 0, L->height);
    return HZ_OK;
}

/* ---- where the time goes ------------------------------------------------- */

static inline uint64_t HZ_FN(ticks)(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    _mm_lfence();
    return __rdtsc();
#else
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
#endif
}

#define HZ_STAGE_CHUNK 4

/* hz_stage_ticks: each stage of the round trip plus the bit count run on its
 * own over every image, one image at a time (so the data is where the real
 * pipeline has it), timed separately; the smallest of `repeats` sums is kept. */
static int HZ_FN(stage_ticks)(const uint8_t *images, int n, const hz_layout *L, int quality, int repeats, uint64_t *out)
{
    const int groups = L->ngroups[0] + L->ngroups[1];
    const size_t lane_bytes = sizeof(hz_lanes) * HZ_STAGE_CHUNK;
    uint8_t *s = (uint8_t *)aligned_alloc(64, (L->scratch_bytes + 63) & ~(size_t)63);
    hz_vec *fd = (hz_vec *)aligned_alloc(64, lane_bytes), *qd = (hz_vec *)aligned_alloc(64, lane_bytes);
    hz_vec *dq = (hz_vec *)aligned_alloc(64, lane_bytes);
    uint8_t *pixels = (uint8_t *)malloc((size_t)L->image_bytes);
    /* per image and stage: the fastest of the repeats (other processes' time slices fall out) */
    uint64_t *best = (uint64_t *)malloc(sizeof(uint64_t) * (HZ_NSTAGES + 1) * (size_t)n);
    if (!s || !fd || !qd || !dq || !pixels || !best) {
        free(s); free(fd); free(qd); free(dq); free(pixels); free(best);
        return HZ_ERR_NOMEM;
    }
    for (size_t k = 0; k < (size_t)(HZ_NSTAGES + 1) * (size_t)n; k++) best[k] = ~(uint64_t)0;
    memset(s, 0, L->scratch_bytes);
    hz_job job;
    memset(&job, 0, sizeof(job));
    job.n = 1;
    job.nq = 1;
    job.h_samp = L->h_samp;
    job.v_samp = L->v_samp;
    HZ_FN(count_ctx) cc[2];
    HZ_FN(count_setup)(&job, 0, &cc[0]);
    HZ_FN(count_setup)(&job, 1, &cc[1]);
    const hz_component *cy = &L->comp[0], *cc1 = &L->comp[1];
    uint8_t *plane[3], *recon[3];
    for (int c = 0; c < 3; c++) {
        plane[c] = s + L->off_plane[c];
        recon[c] = s + L->off_recon[c];
    }
    const int sub = L->h_samp == 2, fv = L->v_samp;
    uint8_t *cbrow[2] = {s + L->off_crow[0], s + L->off_crow[1]}, *crrow[2] = {s + L->off_crow[2], s + L->off_crow[3]};
    /* the calibrated cost of an empty interval, taken off every stage */
    uint64_t empty = ~(uint64_t)0;
    for (int k = 0; k < 64; k++) {
        uint64_t a = HZ_FN(ticks)(), b = HZ_FN(ticks)();
        if (b - a < empty) empty = b - a;
    }
    for (int rep = 0; rep < repeats; rep++) {
        uint64_t t0, t1; /* stage HZ_NSTAGES: quantisation alone, for the count's share */
#define HZ_TIMED(stage, ...)                                                 \
    do {                                                                     \
        t0 = HZ_FN(ticks)();                                                 \
        __VA_ARGS__;                                                         \
        t1 = HZ_FN(ticks)() - t0;                                            \
        t1 = t1 > empty ? t1 - empty : 0;                                    \
        if (t1 < best[(size_t)i * (HZ_NSTAGES + 1) + (stage)]) best[(size_t)i * (HZ_NSTAGES + 1) + (stage)] = t1; \
    } while (0)
        for (int i = 0; i < n; i++) {
            const uint8_t *img = images + (ptrdiff_t)i * L->image_bytes;
            const ptrdiff_t row_bytes = (ptrdiff_t)L->width * 3;
            /* colour: every plane row (edge rows replicate the last image row) */
            HZ_TIMED(HZ_STAGE_COLOUR, {
                for (int r = 0; r < cy->blocks_high * 8; r++) {
                    const uint8_t *src = img + (ptrdiff_t)(r < L->height ? r : L->height - 1) * row_bytes;
                    uint8_t *cbo = sub ? cbrow[r % fv] : plane[1] + r * L->stride[1];
                    uint8_t *cro = sub ? crrow[r % fv] : plane[2] + r * L->stride[2];
                    HZ_FN(convert_row)(src, L->width, 3, L->ext, s + L->off_rgb, plane[0] + r * L->stride[0], cbo, cro);
                }
            });
            if (sub)
                HZ_TIMED(HZ_STAGE_DOWNSAMPLE, {
                    for (int rc = 0; rc < cc1->blocks_high * 8; rc++) {
                        HZ_FN(downsample_row)(cbrow[0], cbrow[1], cc1->blocks_wide * 8, fv, plane[1] + rc * L->stride[1]);
                        HZ_FN(downsample_row)(crrow[0], crrow[1], cc1->blocks_wide * 8, fv, plane[2] + rc * L->stride[2]);
                    }
                });
            /* the block stages, a few groups at a time so their data stays in the L1 cache as in the pipeline */
            hz_count_state *acc = (hz_count_state *)(s + L->off_count);
            int32_t *dc = (int32_t *)(s + L->off_dc);
            hz_count_prepare(L, s);
            hz_count_begin(&job, L, s);
            uint64_t part[HZ_NSTAGES + 1] = {0};
            for (int c0 = 0; c0 < groups; c0 += HZ_STAGE_CHUNK) {
                const int c1 = c0 + HZ_STAGE_CHUNK < groups ? c0 + HZ_STAGE_CHUNK : groups;
#define HZ_PART(stage, ...)                    \
    do {                                       \
        t0 = HZ_FN(ticks)();                   \
        __VA_ARGS__;                           \
        t1 = HZ_FN(ticks)() - t0;              \
        part[stage] += t1 > empty ? t1 - empty : 0; \
    } while (0)
                HZ_PART(HZ_STAGE_DCT, {
                    for (int gi = c0; gi < c1; gi++) {
                        const int cls = gi < L->ngroups[0] ? 0 : 1, g = cls ? gi - L->ngroups[0] : gi;
                        uint8_t *ptr[HZ_LANES];
                        HZ_FN(group_ptrs)(L, cls, g, s, L->off_plane, ptr, NULL, NULL);
                        HZ_FN(load_samples)(ptr, HZ_FN(group_stride)(L, cls), fd + (ptrdiff_t)(gi - c0) * 64);
                        HZ_FN(fdct_lanes)(fd + (ptrdiff_t)(gi - c0) * 64);
                    }
                });
                /* the round trip's quantisation: values and dequantised values */
                HZ_PART(HZ_STAGE_QUANTISE, {
                    for (int gi = c0; gi < c1; gi++) {
                        const int cls = gi < L->ngroups[0] ? 0 : 1;
                        HZ_FN(quantize_lanes)(fd + (ptrdiff_t)(gi - c0) * 64, qd + (ptrdiff_t)(gi - c0) * 64, 1,
                                              hz_divisors(quality, cls), dq + (ptrdiff_t)(gi - c0) * 64, NULL);
                    }
                });
                /* counting rides on a quantisation pass of its own (bits needs no values):
                 * its cost is that pass minus the bare quantisation, timed next */
                HZ_PART(HZ_STAGE_COUNT, {
                    HZ_FN(zz_counts) zc;
                    for (int gi = c0; gi < c1; gi++) {
                        const int cls = gi < L->ngroups[0] ? 0 : 1;
                        const int nl = L->nblocks[cls] - (cls ? gi - L->ngroups[0] : gi) * HZ_LANES;
                        hz_vec *w = qd + (ptrdiff_t)(gi - c0) * 64;
                        HZ_FN(quantize_lanes)(fd + (ptrdiff_t)(gi - c0) * 64, w, 0, hz_divisors(quality, cls), NULL, &zc);
                        HZ_FN(count_lanes)(w[0], &zc, 0, nl < HZ_LANES ? nl : HZ_LANES, &cc[cls], acc, dc + (ptrdiff_t)gi * HZ_LANES);
                    }
                });
                HZ_PART(HZ_NSTAGES, {
                    for (int gi = c0; gi < c1; gi++) {
                        const int cls = gi < L->ngroups[0] ? 0 : 1;
                        HZ_FN(quantize_lanes)(fd + (ptrdiff_t)(gi - c0) * 64, qd + (ptrdiff_t)(gi - c0) * 64, 0,
                                              hz_divisors(quality, cls), NULL, NULL);
                    }
                });
                HZ_PART(HZ_STAGE_IDCT, {
                    for (int gi = c0; gi < c1; gi++) {
                        const int cls = gi < L->ngroups[0] ? 0 : 1, g = cls ? gi - L->ngroups[0] : gi;
                        uint8_t *rptr[HZ_LANES];
                        hz_vec *w = dq + (ptrdiff_t)(gi - c0) * 64; /* the dequantised values, used up */
                        int nl = HZ_FN(group_ptrs)(L, cls, g, s, L->off_recon, rptr, NULL, NULL);
                        HZ_FN(idct_lanes)(w);
                        HZ_FN(store_samples)(w, rptr, HZ_FN(group_stride)(L, cls), nl);
                    }
                });
#undef HZ_PART
            }
            t0 = HZ_FN(ticks)();
            (void)hz_count_finish(&job, L, s);
            t1 = HZ_FN(ticks)() - t0;
            part[HZ_STAGE_COUNT] += t1 > empty ? t1 - empty : 0;
            for (int k = 0; k <= HZ_NSTAGES; k++) {
                if (k != HZ_STAGE_DCT && k != HZ_STAGE_QUANTISE && k != HZ_STAGE_COUNT && k != HZ_STAGE_IDCT && k != HZ_NSTAGES) continue;
                uint64_t *b = &best[(size_t)i * (HZ_NSTAGES + 1) + k];
                if (part[k] < *b) *b = part[k];
            }
            uint8_t *ucb = s + L->off_up[0], *ucr = s + L->off_up[1];
            int16_t *cs = (int16_t *)(s + L->off_up[2]);
#if HZ_LANES == 16
            /* AVX-512 upsamples inside the colour conversion (emit_pixels): one fused pass,
             * timed whole under "upsample"; "colour back" is then the same conversion alone */
            if (sub && cc1->width > 2)
                HZ_TIMED(HZ_STAGE_UPSAMPLE, HZ_FN(emit_pixels)(L, s, pixels, 0, L->height));
            else
#endif
            if (sub)
                HZ_TIMED(HZ_STAGE_UPSAMPLE, {
                    for (int y = 0; y < L->height; y++) {
                        int rc, nbr;
                        HZ_FN(chroma_rows)(L, y, &rc, &nbr);
                        HZ_FN(upsample_row)(recon[1] + rc * L->stride[1], recon[1] + nbr * L->stride[1], cc1->width, fv == 2, cs, ucb);
                        HZ_FN(upsample_row)(recon[2] + rc * L->stride[2], recon[2] + nbr * L->stride[2], cc1->width, fv == 2, cs, ucr);
                    }
                });
            HZ_TIMED(HZ_STAGE_COLOUR_BACK, {
                for (int y = 0; y < L->height; y++) {
                    const uint8_t *b = sub ? ucb : recon[1] + y * L->stride[1], *r = sub ? ucr : recon[2] + y * L->stride[2];
                    HZ_FN(ycc_row)(recon[0] + y * L->stride[0], b, r, L->width, pixels + (ptrdiff_t)y * row_bytes);
                }
            });
        }
#undef HZ_TIMED
    }
    uint64_t sum[HZ_NSTAGES + 1] = {0};
    for (int i = 0; i < n; i++)
        for (int k = 0; k <= HZ_NSTAGES; k++) {
            const uint64_t b = best[(size_t)i * (HZ_NSTAGES + 1) + k];
            sum[k] += b == ~(uint64_t)0 ? 0 : b; /* stages this subsampling does not have */
        }
    sum[HZ_STAGE_COUNT] = sum[HZ_STAGE_COUNT] > sum[HZ_NSTAGES] ? sum[HZ_STAGE_COUNT] - sum[HZ_NSTAGES] : 0;
#if HZ_LANES == 16
    if (sub && cc1->width > 2) /* the fused pass less the conversion: the upsampling's share */
        sum[HZ_STAGE_UPSAMPLE] = sum[HZ_STAGE_UPSAMPLE] > sum[HZ_STAGE_COLOUR_BACK] ? sum[HZ_STAGE_UPSAMPLE] - sum[HZ_STAGE_COLOUR_BACK] : 0;
#endif
    for (int k = 0; k < HZ_NSTAGES; k++) out[k] = sum[k];
    free(s); free(fd); free(qd); free(dq); free(pixels); free(best);
    return HZ_OK;
}

const hz_kernel_set HZ_FN(hz_kernels) = {
    HZ_FN_NAME, HZ_LANES, HZ_FN(process_image), HZ_FN(process_pair), HZ_FN(band), HZ_FN(reconstruct_image),
    HZ_FN(stage_ticks),
};
