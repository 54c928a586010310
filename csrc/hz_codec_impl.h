/* The per-image pipeline of the C core, compiled once per instruction set.
 *
 * Included by hz_kernels_generic.c and hz_kernels_avx2.c with HZ_FN(name)
 * defined to give each copy its own names; hz_codec.c picks one at run time.
 *
 * Blocks are processed eight at a time in "lane" layout: d[k][l] is
 * coefficient (or sample) k of the block in lane l. Every 1-D DCT pass then
 * runs the math of hz_dct_generic.h on 8-lane vectors, one SIMD instruction
 * per operation.
 */
#include <stdlib.h>
#include <string.h>

#include "hz_block.h"
#include "hz_codec_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__AVX2__)
#include <immintrin.h>

#include "hz_rows_avx2.h"
#endif


/* Eight lanes of int32: GCC/Clang vector extensions turn each operation of
 * hz_dct_generic.h into one SIMD instruction (two on SSE2). */
typedef int32_t hz_v8 __attribute__((vector_size(32), aligned(32)));
typedef hz_v8 hz_lanes[64];

#define HZ_T hz_v8
#define HZ_QUAL static inline __attribute__((always_inline))
#define HZ_FDCT_1D HZ_FN(fdct_1d_v8)
#define HZ_IDCT_1D HZ_FN(idct_1d_v8)
#define HZ_QUANTIZE HZ_FN(quantize_v8)
#include "hz_dct_generic.h"

/* ---- moving 8x8 sample blocks in and out of lane layout ----------------- */

#if defined(__SSE2__)
/* Transpose eight 8-byte rows m[0..7] (low halves) into eight 8-byte columns. */
static inline void HZ_FN(transpose8x8_u8)(__m128i m[8])
{
    __m128i a0 = _mm_unpacklo_epi8(m[0], m[1]), a1 = _mm_unpacklo_epi8(m[2], m[3]);
    __m128i a2 = _mm_unpacklo_epi8(m[4], m[5]), a3 = _mm_unpacklo_epi8(m[6], m[7]);
    __m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);
    __m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);
    __m128i c0 = _mm_unpacklo_epi32(b0, b2), c1 = _mm_unpackhi_epi32(b0, b2);
    __m128i c2 = _mm_unpacklo_epi32(b1, b3), c3 = _mm_unpackhi_epi32(b1, b3);
    m[0] = c0; m[1] = _mm_srli_si128(c0, 8);
    m[2] = c1; m[3] = _mm_srli_si128(c1, 8);
    m[4] = c2; m[5] = _mm_srli_si128(c2, 8);
    m[6] = c3; m[7] = _mm_srli_si128(c3, 8);
}
#endif

/* d[r*8+c][l] = src[l][r*stride + c] - 128 */
static inline void HZ_FN(load_samples)(const uint8_t *const src[8], ptrdiff_t stride, hz_lanes d)
{
    for (int r = 0; r < 8; r++) {
#if defined(__SSE2__)
        __m128i m[8];
        for (int l = 0; l < 8; l++) m[l] = _mm_loadl_epi64((const __m128i *)(src[l] + r * stride));
        HZ_FN(transpose8x8_u8)(m);
        for (int c = 0; c < 8; c++) {
#if defined(__AVX2__)
            __m256i v = _mm256_sub_epi32(_mm256_cvtepu8_epi32(m[c]), _mm256_set1_epi32(128));
            _mm256_storeu_si256((__m256i *)&d[r * 8 + c], v);
#else
            __m128i z = _mm_setzero_si128();
            __m128i w = _mm_unpacklo_epi8(m[c], z);
            __m128i off = _mm_set1_epi32(128);
            _mm_storeu_si128((__m128i *)&d[r * 8 + c], _mm_sub_epi32(_mm_unpacklo_epi16(w, z), off));
            _mm_storeu_si128((__m128i *)((int32_t *)&d[r * 8 + c] + 4), _mm_sub_epi32(_mm_unpackhi_epi16(w, z), off));
#endif
        }
#else
        for (int c = 0; c < 8; c++)
            for (int l = 0; l < 8; l++) d[r * 8 + c][l] = (int32_t)src[l][r * stride + c] - 128;
#endif
    }
}

/* dst[l][r*stride + c] = range_limit(d[r*8+c][l]) for lanes l < nl. */
static inline void HZ_FN(store_samples)(hz_lanes d, uint8_t *const dst[8], ptrdiff_t stride, int nl)
{
#if defined(__SSE2__)
    /* Mask to 10 bits, sign-extend, +128; the saturating packs then clamp to 0..255. */
    for (int k = 0; k < 64; k++) d[k] = ((d[k] & 1023) ^ 512) - 512 + 128;
    for (int r = 0; r < 8; r++) {
        __m128i m[8];
        for (int c = 0; c < 8; c++) {
            __m128i lo = _mm_loadu_si128((const __m128i *)&d[r * 8 + c]);
            __m128i hi = _mm_loadu_si128((const __m128i *)((const int32_t *)&d[r * 8 + c] + 4));
            __m128i w = _mm_packs_epi32(lo, hi);
            m[c] = _mm_packus_epi16(w, w);
        }
        HZ_FN(transpose8x8_u8)(m);
        for (int l = 0; l < nl; l++) _mm_storel_epi64((__m128i *)(dst[l] + r * stride), m[l]);
    }
#else
    for (int r = 0; r < 8; r++)
        for (int l = 0; l < nl; l++)
            for (int c = 0; c < 8; c++) dst[l][r * stride + c] = (uint8_t)hz_idct_range_limit(d[r * 8 + c][l]);
#endif
}

/* ---- the block math across lanes --------------------------------------- */

static inline void HZ_FN(fdct_lanes)(hz_lanes d)
{
    for (int r = 0; r < 8; r++) HZ_FN(fdct_1d_v8)(&d[r * 8], 1, 0);
    for (int c = 0; c < 8; c++) HZ_FN(fdct_1d_v8)(&d[c], 8, 1);
}

/* True when rows 1..7 of column c are zero in every lane: pass 1 of the
 * IDCT then reduces to DC << PASS1_BITS, exactly as jidctint.c's shortcut. */
static inline int HZ_FN(column_ac_zero)(const hz_lanes d, int c)
{
    hz_v8 any = d[8 + c] | d[16 + c] | d[24 + c] | d[32 + c] | d[40 + c] | d[48 + c] | d[56 + c];
#if defined(__AVX2__)
    __m256i v;
    memcpy(&v, &any, sizeof v);
    return _mm256_testz_si256(v, v);
#else
    int32_t acc = 0;
    for (int l = 0; l < 8; l++) acc |= any[l];
    return acc == 0;
#endif
}

static inline void HZ_FN(idct_lanes)(hz_lanes d)
{
    for (int c = 0; c < 8; c++) {
        if (HZ_FN(column_ac_zero)(d, c)) {
            hz_v8 dc = d[c] * (1 << HZ_PASS1_BITS);
            for (int r = 0; r < 8; r++) d[r * 8 + c] = dc;
            continue;
        }
        HZ_FN(idct_1d_v8)(&d[c], 8, 0);
    }
    for (int r = 0; r < 8; r++) HZ_FN(idct_1d_v8)(&d[r * 8], 1, 1);
}

/* Quantise in place (d <- quantised value) and dequantise into deq. */
static inline void HZ_FN(quantize_lanes)(hz_lanes d, const hz_divisor_table *t, hz_lanes deq)
{
    for (int k = 0; k < 64; k++) {
        const int32_t q = t->qval[k];
        d[k] = HZ_FN(quantize_v8)(d[k], q, t->recip[k], t->shift[k]);
        deq[k] = d[k] * q;
    }
}

static inline void HZ_FN(dequantize_lanes)(hz_lanes d, const uint16_t *table)
{
    for (int k = 0; k < 64; k++) d[k] = d[k] * (int32_t)table[k];
}

/* ---- forward: RGB rows -> component planes ----------------------------- */

/* One source row, edge-extended to ext columns, converted to Y, Cb, Cr.
 * The body is converted in place; only the tail goes through a small copy
 * that replicates the last pixel (jcsample.c expand_right_edge). */
static void HZ_FN(convert_row)(const uint8_t *src, int width, int channels, int ext, uint8_t *rgb, uint8_t *y,
                               uint8_t *cb, uint8_t *cr)
{
    if (channels == 1) {
        memcpy(y, src, (size_t)width);
        memset(y + width, src[width - 1], (size_t)(ext - width));
        return;
    }
    int done = 0;
#if defined(__AVX2__)
    done = hz_rgb_to_ycc_row_avx2(src, width, y, cb, cr);
#endif
    const int tail = width - done;
    memcpy(rgb, src + 3 * done, (size_t)tail * 3);
    for (int x = tail; x < ext - done; x++) {
        rgb[3 * x] = src[3 * width - 3];
        rgb[3 * x + 1] = src[3 * width - 2];
        rgb[3 * x + 2] = src[3 * width - 1];
    }
    y += done;
    cb += done;
    cr += done;
    int x = 0;
#if defined(__AVX2__)
    x = hz_rgb_to_ycc_row_avx2(rgb, ext - done, y, cb, cr);
#endif
    for (; x < ext - done; x++) {
        int32_t r = rgb[3 * x], g = rgb[3 * x + 1], b = rgb[3 * x + 2];
        y[x] = (uint8_t)hz_rgb_y(r, g, b);
        cb[x] = (uint8_t)hz_rgb_cb(r, g, b);
        cr[x] = (uint8_t)hz_rgb_cr(r, g, b);
    }
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
        for (int j = 0; j < fv; j++) {
            int r = rc * fv + j;
            const uint8_t *src = img + (ptrdiff_t)(r < H ? r : H - 1) * row_bytes;
            uint8_t *yrow = r < cy->blocks_high * 8 ? plane[0] + r * ystride : ytmp;
            HZ_FN(convert_row)(src, W, C, L->ext, rgb, yrow, cbrow[j], crrow[j]);
        }
        uint8_t *ob = plane[1] + rc * cstride, *orr = plane[2] + rc * cstride;
        int x = 0;
#if defined(__AVX2__)
        x = hz_downsample_row_avx2(cbrow[0], cbrow[1], cols, fv, ob);
        hz_downsample_row_avx2(crrow[0], crrow[1], cols, fv, orr);
#endif
        if (fv == 1) {
            for (; x < cols; x++) {
                ob[x] = (uint8_t)hz_down_h2v1(cbrow[0][2 * x], cbrow[0][2 * x + 1], x);
                orr[x] = (uint8_t)hz_down_h2v1(crrow[0][2 * x], crrow[0][2 * x + 1], x);
            }
        } else {
            for (; x < cols; x++) {
                ob[x] = (uint8_t)hz_down_h2v2(cbrow[0][2 * x], cbrow[0][2 * x + 1], cbrow[1][2 * x], cbrow[1][2 * x + 1], x);
                orr[x] = (uint8_t)hz_down_h2v2(crrow[0][2 * x], crrow[0][2 * x + 1], crrow[1][2 * x], crrow[1][2 * x + 1], x);
            }
        }
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
    if (vertical)
        for (int x = 0; x < dw; x++) cs[x] = (int16_t)(3 * row[x] + nb[x]);
    else
        for (int x = 0; x < dw; x++) cs[x] = row[x];
    cs[-1] = cs[0];
    cs[dw] = cs[dw - 1];
    int x = 0;
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
#if defined(__AVX2__)
    x = hz_ycc_to_rgb_row_avx2(y, cb, cr, n, o);
#endif
    for (; x < n; x++) {
        int32_t Y = y[x], b = cb[x], r = cr[x];
        o[3 * x] = (uint8_t)hz_ycc_r(Y, b, r);
        o[3 * x + 1] = (uint8_t)hz_ycc_g(Y, b, r);
        o[3 * x + 2] = (uint8_t)hz_ycc_b(Y, b, r);
    }
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
    for (int y = y0; y < y1; y++) {
        const uint8_t *yrow = plane[0] + y * L->stride[0];
        uint8_t *o = out + (ptrdiff_t)y * W * 3;
        if (L->h_samp == 1 && L->v_samp == 1) {
            HZ_FN(ycc_row)(yrow, plane[1] + y * L->stride[1], plane[2] + y * L->stride[2], W, o);
            continue;
        }
        int rc = y / L->v_samp, nbr = rc;
        if (L->v_samp == 2) /* context row above for even rows, below for odd (jdmainct.c) */
            nbr = (y & 1) ? (rc + 1 < cc->height ? rc + 1 : cc->height - 1) : (rc > 0 ? rc - 1 : 0);
        HZ_FN(upsample_row)(plane[1] + rc * L->stride[1], plane[1] + nbr * L->stride[1], cc->width, L->v_samp == 2, cs, ucb);
        HZ_FN(upsample_row)(plane[2] + rc * L->stride[2], plane[2] + nbr * L->stride[2], cc->width, L->v_samp == 2, cs, ucr);
        HZ_FN(ycc_row)(yrow, ucb, ucr, W, o);
    }
}

/* ---- lane groups -------------------------------------------------------- */

/* Pointers to the 8 blocks of group g in plane base (class: luma or chroma). */
static inline int HZ_FN(group_ptrs)(const hz_layout *L, int cls, int g, uint8_t *base, int recon, uint8_t *ptr[8],
                                    int16_t *const *coef_arrays, int image, int16_t *cptr[8])
{
    int first = g * 8, count = L->nblocks[cls] - first;
    if (count > 8) count = 8;
    for (int l = 0; l < 8; l++) {
        int b = first + (l < count ? l : count - 1); /* idle lanes repeat the last block */
        int comp, bi, bj;
        hz_block_position(L, cls, b, &comp, &bi, &bj);
        ptr[l] = base + (recon ? L->off_recon[comp] : L->off_plane[comp]) + (ptrdiff_t)bi * 8 * L->stride[comp] + bj * 8;
        if (coef_arrays) {
            const hz_component *cp = &L->comp[comp];
            cptr[l] = coef_arrays[comp] + (((ptrdiff_t)image * cp->blocks_high + bi) * cp->blocks_wide + bj) * 64;
        }
    }
    return count;
}

static inline ptrdiff_t HZ_FN(group_stride)(const hz_layout *L, int cls) { return L->stride[cls == 0 ? 0 : 1]; }

#if defined(__AVX2__)
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
static inline void HZ_FN(store_coefs)(const hz_lanes d, int16_t *const cptr[8], int nl)
{
#if defined(__AVX2__)
    for (int kb = 0; kb < 8; kb++) {
        __m256i r[8];
        for (int j = 0; j < 8; j++) memcpy(&r[j], &d[8 * kb + j], sizeof(__m256i));
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
static inline void HZ_FN(load_coefs)(hz_lanes d, int16_t *const cptr[8], int nl)
{
#if defined(__AVX2__)
    for (int kb = 0; kb < 8; kb++) {
        __m256i r[8];
        for (int l = 0; l < 8; l++)
            r[l] = _mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(cptr[l < nl ? l : nl - 1] + 8 * kb)));
        HZ_FN(transpose8x8_i32)(r);
        for (int j = 0; j < 8; j++) memcpy(&d[8 * kb + j], &r[j], sizeof(__m256i));
    }
#else
    for (int l = 0; l < 8; l++) {
        const int16_t *src = cptr[l < nl ? l : nl - 1];
        for (int k = 0; k < 64; k++) d[k][l] = src[k];
    }
#endif
}

/* The forward DCT of a group kept as int16 (it fits: |c| <= 2^14) between qualities. */
typedef int16_t hz_v8s __attribute__((vector_size(16)));

static inline void HZ_FN(save_fdct)(const hz_lanes d, int16_t *dst)
{
    for (int k = 0; k < 64; k++) {
        hz_v8s v = __builtin_convertvector(d[k], hz_v8s);
        memcpy(dst + 8 * k, &v, sizeof v);
    }
}

static inline void HZ_FN(restore_fdct)(hz_lanes d, const int16_t *src)
{
    for (int k = 0; k < 64; k++) {
        hz_v8s v;
        memcpy(&v, src + 8 * k, sizeof v);
        d[k] = __builtin_convertvector(v, hz_v8);
    }
}

/* Forward DCT of lane groups [g0, g1) (both classes, luma first), kept as
 * int16 for the per-quality passes when there are several qualities. */
static void HZ_FN(fdct_groups)(const hz_layout *L, uint8_t *s, int g0, int g1)
{
    uint8_t *base = hz_image_base(L, s);
    int16_t *fd = (int16_t *)(base + L->off_fdct);
    hz_lanes d;
    for (int gi = g0; gi < g1; gi++) {
        const int cls = gi < L->ngroups[0] ? 0 : 1, g = cls ? gi - L->ngroups[0] : gi;
        uint8_t *ptr[8];
        HZ_FN(group_ptrs)(L, cls, g, base, 0, ptr, NULL, 0, NULL);
        HZ_FN(load_samples)((const uint8_t *const *)ptr, HZ_FN(group_stride)(L, cls), d);
        HZ_FN(fdct_lanes)(d);
        HZ_FN(save_fdct)(d, fd + (ptrdiff_t)gi * 512);
    }
}

/* Quality row q of image i for lane groups [g0, g1): quantise, store the
 * coefficients and/or inverse-transform into the reconstructed planes. */
static void HZ_FN(quant_groups)(const hz_job *job, const hz_layout *L, int i, int q, uint8_t *s, int g0, int g1)
{
    uint8_t *base = hz_image_base(L, s);
    const int16_t *fd = (const int16_t *)(base + L->off_fdct);
    const int quality = job->qualities[(ptrdiff_t)q * job->n + i];
    int16_t *const *coefs = job->coefs ? job->coefs + (ptrdiff_t)q * L->ncomp : NULL;
    hz_lanes d, deq;
    for (int gi = g0; gi < g1; gi++) {
        const int cls = gi < L->ngroups[0] ? 0 : 1, g = cls ? gi - L->ngroups[0] : gi;
        uint8_t *ptr[8], *rptr[8];
        int16_t *cptr[8] = {0};
        int nl = HZ_FN(group_ptrs)(L, cls, g, base, 0, ptr, coefs, i, cptr);
        if (job->nq > 1) {
            HZ_FN(restore_fdct)(d, fd + (ptrdiff_t)gi * 512);
        } else {
            HZ_FN(load_samples)((const uint8_t *const *)ptr, HZ_FN(group_stride)(L, cls), d);
            HZ_FN(fdct_lanes)(d);
        }
        HZ_FN(quantize_lanes)(d, hz_divisors(quality, cls), deq);
        if (coefs) HZ_FN(store_coefs)(d, cptr, nl);
        if (job->pixels) {
            HZ_FN(group_ptrs)(L, cls, g, base, 1, rptr, NULL, 0, NULL);
            HZ_FN(idct_lanes)(deq);
            HZ_FN(store_samples)(deq, rptr, HZ_FN(group_stride)(L, cls), nl);
        }
    }
}

static uint8_t *HZ_FN(pixels_of)(const hz_job *job, const hz_layout *L, int i, int q)
{
    return job->pixels + ((ptrdiff_t)q * job->n + i) * L->image_bytes;
}

/* One image on one thread: every phase over its whole range. */
void HZ_FN(hz_process_image)(const hz_job *job, const hz_layout *L, int i, uint8_t *s)
{
    const int groups = L->ngroups[0] + L->ngroups[1];
    HZ_FN(build_rows)(L, job->images + (ptrdiff_t)i * L->image_bytes, s, 0, hz_plane_units(L));
    hz_finish_planes(L, hz_image_base(L, s));
    if (job->nq > 1) HZ_FN(fdct_groups)(L, s, 0, groups);
    for (int q = 0; q < job->nq; q++) {
        HZ_FN(quant_groups)(job, L, i, q, s, 0, groups);
        if (job->pixels) HZ_FN(emit_pixels)(L, s, HZ_FN(pixels_of)(job, L, i, q), 0, L->height);
    }
}

/* The same phases, one range at a time, for several threads on one image. */
static void HZ_FN(band)(const hz_job *job, const hz_layout *L, int i, int q, int phase, uint8_t *s, int b, int e)
{
    switch (phase) {
    case HZ_PHASE_ROWS: HZ_FN(build_rows)(L, job->images + (ptrdiff_t)i * L->image_bytes, s, b, e); break;
    case HZ_PHASE_FDCT: HZ_FN(fdct_groups)(L, s, b, e); break;
    case HZ_PHASE_QUANT: HZ_FN(quant_groups)(job, L, i, q, s, b, e); break;
    default: HZ_FN(emit_pixels)(L, s, HZ_FN(pixels_of)(job, L, i, q), b, e);
    }
}

hz_band_fn HZ_FN(hz_band_kernel)(void) { return HZ_FN(band); }

/* Decode one image from stored coefficients with its own tables. Coefficients
 * beyond what an 8-bit baseline encoder produces are refused (HZ_ERR_RANGE):
 * libjpeg-turbo's own C and SIMD decoders disagree on them. */
int HZ_FN(hz_reconstruct_image)(const int16_t *const *coefs, const uint16_t *tables, const hz_layout *L, int i,
                                uint8_t *s, uint8_t *out)
{
    hz_lanes d;
    for (int cls = 0; cls < 2; cls++) {
        const uint16_t *table = tables + ((ptrdiff_t)i * 2 + cls) * 64;
        for (int g = 0; g < L->ngroups[cls]; g++) {
            uint8_t *rptr[8];
            int16_t *cptr[8] = {0};
            int nl = HZ_FN(group_ptrs)(L, cls, g, hz_image_base(L, s), 1, rptr, (int16_t *const *)coefs, i, cptr);
            HZ_FN(load_coefs)(d, cptr, nl);
            HZ_FN(dequantize_lanes)(d, table);
            hz_v8 bad = d[0] > HZ_MAX_DEQUANTIZED;
            for (int k = 0; k < 64; k++) bad |= (d[k] > HZ_MAX_DEQUANTIZED) | (d[k] < -HZ_MAX_DEQUANTIZED);
            for (int l = 0; l < 8; l++)
                if (bad[l]) return HZ_ERR_RANGE;
            HZ_FN(idct_lanes)(d);
            HZ_FN(store_samples)(d, rptr, HZ_FN(group_stride)(L, cls), nl);
        }
    }
    HZ_FN(emit_pixels)(L, s, out + (ptrdiff_t)i * L->image_bytes, 0, L->height);
    return HZ_OK;
}
