/* Per-item work of helmholtz's CUDA kernels (csrc/hz_kernels.cu).
 *
 * Every kernel in hz_kernels.cu is a loop "for item = thread; item < count;
 * item += threads" over one of the functions below, with __syncthreads()
 * between phases. Keeping the work here, as HZ_HD functions over plain
 * pointers, lets a host harness (tests/cuda_emul.cpp) run exactly the same
 * code over the same grid loops on the CPU and compare it with the C core:
 * evidence of exactness without a GPU.
 *
 * The math is hz_block.h (and hz_huffman.h for bit counts); this file only
 * says which samples go where, with the edge rules of hz_codec_impl.h:
 *   - pixels beyond the image replicate the last row / column;
 *   - chroma is downsampled from those replicated pixels (h2v1 / h2v2 biases);
 *   - chroma rows beyond the component's real height replicate its last row;
 *   - fancy upsampling clamps its context rows and columns to the component's
 *     real size, and a component at most 2 samples wide is replicated.
 *
 * NVRTC-safe: no system headers beyond hz_common.h. Offsets that can exceed
 * 2^31 (per-image plane bytes, batch offsets) are int64_t.
 */
#ifndef HZ_GPU_TILES_H
#define HZ_GPU_TILES_H

#include "hz_block.h"
#include "hz_huffman.h"

/* Geometry of one image size / subsampling (hz_geometry of hz_codec.c). */
typedef struct {
    int H, W, C, ncomp, hs, vs; /* hs, vs: luma sampling factors (1 for grayscale) */
    int cw[3], ch[3];           /* component width / height in samples */
    int bw[3], bh[3];           /* component width / height in blocks */
    int block_off[4];           /* first block of component c; block_off[ncomp] = blocks per image */
    int64_t plane_off[4];       /* byte offset of component c's plane (stride bw*8, bh*8 rows) */
} hz_gpu_geom;

HZ_HD void hz_gpu_make_geom(hz_gpu_geom *g, int H, int W, int C, int hs, int vs)
{
    int c;
    g->H = H;
    g->W = W;
    g->C = C;
    g->ncomp = C == 1 ? 1 : 3;
    if (g->ncomp == 1) hs = vs = 1;
    g->hs = hs;
    g->vs = vs;
    g->block_off[0] = 0;
    g->plane_off[0] = 0;
    for (c = 0; c < 3; c++) {
        int h = c == 0 ? hs : 1, v = c == 0 ? vs : 1;
        g->cw[c] = (W * h + hs - 1) / hs;
        g->ch[c] = (H * v + vs - 1) / vs;
        g->bw[c] = (g->cw[c] + 7) / 8;
        g->bh[c] = (g->ch[c] + 7) / 8;
        if (c < g->ncomp) {
            g->block_off[c + 1] = g->block_off[c] + g->bw[c] * g->bh[c];
            g->plane_off[c + 1] = g->plane_off[c] + (int64_t)g->bw[c] * g->bh[c] * 64;
        }
    }
}

HZ_HD int hz_gpu_blocks(const hz_gpu_geom *g) { return g->block_off[g->ncomp]; }
HZ_HD int64_t hz_gpu_plane_bytes(const hz_gpu_geom *g) { return g->plane_off[g->ncomp]; }

/* Component, block row and block column of block b (0 .. blocks - 1). */
HZ_HD void hz_gpu_block_pos(const hz_gpu_geom *g, int b, int *c, int *bi, int *bj)
{
    int k = 0;
    while (k + 1 < g->ncomp && b >= g->block_off[k + 1]) k++;
    b -= g->block_off[k];
    *c = k;
    *bi = b / g->bw[k];
    *bj = b % g->bw[k];
}

/* ---- forward: pixels -> component samples ------------------------------ */

/* Component c (0 Y, 1 Cb, 2 Cr) of the pixel at (r, x), both clamped to the
 * image: the edge replication of jcprepct.c / jcsample.c expand_right_edge. */
HZ_HD int32_t hz_gpu_convert(const uint8_t *img, const hz_gpu_geom *g, int r, int x, int c)
{
    const uint8_t *p;
    int32_t R, G, B;
    r = r < g->H ? r : g->H - 1;
    x = x < g->W ? x : g->W - 1;
    p = img + ((int64_t)r * g->W + x) * g->C;
    if (g->C == 1) return p[0];
    R = p[0];
    G = p[1];
    B = p[2];
    return c == 0 ? hz_rgb_y(R, G, B) : (c == 1 ? hz_rgb_cb(R, G, B) : hz_rgb_cr(R, G, B));
}

/* Sample (r, x) of component c's block-padded plane (as build_planes). */
HZ_HD int32_t hz_gpu_plane_sample(const uint8_t *img, const hz_gpu_geom *g, int c, int r, int x)
{
    int rc;
    if (c == 0 || (g->hs == 1 && g->vs == 1)) return hz_gpu_convert(img, g, r, x, c);
    rc = r < g->ch[c] ? r : g->ch[c] - 1; /* rows beyond the real ones replicate the last */
    if (g->vs == 1)
        return hz_down_h2v1(hz_gpu_convert(img, g, rc, 2 * x, c), hz_gpu_convert(img, g, rc, 2 * x + 1, c), x);
    return hz_down_h2v2(hz_gpu_convert(img, g, 2 * rc, 2 * x, c), hz_gpu_convert(img, g, 2 * rc, 2 * x + 1, c),
                        hz_gpu_convert(img, g, 2 * rc + 1, 2 * x, c),
                        hz_gpu_convert(img, g, 2 * rc + 1, 2 * x + 1, c), x);
}

/* 2-D islow FDCT of d (natural order): rows, then columns (jfdctint.c). */
HZ_HD void hz_gpu_fdct(int32_t *d)
{
    int i;
    for (i = 0; i < 8; i++) hz_fdct_1d(d + i * 8, 1, 0);
    for (i = 0; i < 8; i++) hz_fdct_1d(d + i, 8, 1);
}

/* 2-D islow IDCT of dequantised d, range-limited to samples (jidctint.c). */
HZ_HD void hz_gpu_idct(int32_t *d)
{
    int i;
    for (i = 0; i < 8; i++) hz_idct_1d(d + i, 8, 0);
    for (i = 0; i < 8; i++) hz_idct_1d(d + i * 8, 1, 1);
    for (i = 0; i < 64; i++) d[i] = hz_idct_range_limit(d[i]);
}

/* Item of phase "fdct": block b of one image -> unquantised DCT fd[64] (int16,
 * as the C core saves it between qualities). */
HZ_HD void hz_gpu_fdct_item(const uint8_t *img, const hz_gpu_geom *g, int b, int16_t *fd)
{
    int32_t d[64];
    int c, bi, bj, r, x;
    hz_gpu_block_pos(g, b, &c, &bi, &bj);
    for (r = 0; r < 8; r++)
        for (x = 0; x < 8; x++) d[r * 8 + x] = hz_gpu_plane_sample(img, g, c, bi * 8 + r, bj * 8 + x) - 128;
    hz_gpu_fdct(d);
    for (r = 0; r < 64; r++) fd[r] = (int16_t)d[r];
}

/* ---- quantisation ------------------------------------------------------- */

/* Divisor tables of every quality: div[((q * 2 + chroma) * 3 + f) * 64 + k],
 * f = 0 quantiser, 1 reciprocal, 2 shift; q = 0 .. 100 (row 0 unused).
 * Item i of HZ_GPU_DIV_ITEMS fills one entry (kernel hz_init_tables). */
#define HZ_GPU_DIV_ITEMS (101 * 2 * 64)
#define HZ_GPU_DIV_WORDS (101 * 2 * 3 * 64)
HZ_HD void hz_gpu_div_item(int i, int32_t *div)
{
    int k = i & 63, chroma = (i >> 6) & 1, q = i >> 7;
    hz_divisor d = hz_make_divisor(hz_quant_value(q < 1 ? 1 : q, chroma, k));
    int32_t *base = div + (int64_t)(q * 2 + chroma) * 3 * 64;
    base[k] = d.qval;
    base[64 + k] = d.recip;
    base[128 + k] = d.shift;
}

/* Write the 8x8 samples d into component c's plane at block (bi, bj). */
HZ_HD void hz_gpu_store_block(const int32_t *d, const hz_gpu_geom *g, int c, int bi, int bj, uint8_t *planes)
{
    const int64_t stride = (int64_t)g->bw[c] * 8;
    uint8_t *p = planes + g->plane_off[c] + (int64_t)bi * 8 * stride + bj * 8;
    int r, x;
    for (r = 0; r < 8; r++)
        for (x = 0; x < 8; x++) p[r * stride + x] = (uint8_t)d[r * 8 + x];
}

/* Item of phase "quantise": block b's DCT fd -> quantised coefficients
 * (to coef[64] when not NULL) and, when planes is not NULL, the decoded
 * samples into the reconstruction planes. */
HZ_HD void hz_gpu_quant_item(const int16_t *fd, const hz_gpu_geom *g, int b, int quality, const int32_t *div,
                             int16_t *coef, uint8_t *planes)
{
    int32_t d[64];
    int c, bi, bj, k;
    const int32_t *t;
    hz_gpu_block_pos(g, b, &c, &bi, &bj);
    t = div + (int64_t)(quality * 2 + (c > 0)) * 3 * 64;
    for (k = 0; k < 64; k++) {
        int32_t v = hz_quantize(fd[k], t[k], t[64 + k], t[128 + k]);
        if (coef) coef[k] = (int16_t)v;
        d[k] = v * t[k];
    }
    if (!planes) return;
    hz_gpu_idct(d);
    hz_gpu_store_block(d, g, c, bi, bj, planes);
}

/* Item of phase "dequantise" (reconstruct): stored coefficients coef[64] with
 * the image's tables (2, 64) uint16 -> samples into the planes. */
HZ_HD void hz_gpu_dequant_item(const int16_t *coef, const uint16_t *tables, const hz_gpu_geom *g, int b,
                               uint8_t *planes)
{
    int32_t d[64];
    int c, bi, bj, k;
    const uint16_t *t;
    hz_gpu_block_pos(g, b, &c, &bi, &bj);
    t = tables + (c > 0) * 64;
    for (k = 0; k < 64; k++) d[k] = (int32_t)coef[k] * (int32_t)t[k];
    hz_gpu_idct(d);
    hz_gpu_store_block(d, g, c, bi, bj, planes);
}

/* ---- inverse: component samples -> pixels ------------------------------ */

/* Chroma of output pixel (y, x) from the plane of component c (jdsample.c):
 * h2v1 / h2v2 fancy upsampling, or replication when the component is at
 * most 2 samples wide. */
HZ_HD int32_t hz_gpu_upsample(const uint8_t *planes, const hz_gpu_geom *g, int c, int y, int x)
{
    const int64_t stride = (int64_t)g->bw[c] * 8;
    const uint8_t *plane = planes + g->plane_off[c];
    const int dw = g->cw[c], rc = y / g->vs, cx = x >> 1;
    const uint8_t *row = plane + rc * stride, *nb;
    int l, m, rr;
    int32_t a, b;
    if (dw <= 2) return row[cx];
    l = cx > 0 ? cx - 1 : 0;
    m = cx + 1 < dw ? cx + 1 : dw - 1;
    if (g->vs == 1) {
        if (x & 1) return hz_up_h2v1_odd(row[cx], row[m]);
        return hz_up_h2v1_even(row[l], row[cx]);
    }
    /* context row above for even rows, below for odd (jdmainct.c), clamped */
    rr = (y & 1) ? (rc + 1 < g->ch[c] ? rc + 1 : g->ch[c] - 1) : (rc > 0 ? rc - 1 : 0);
    nb = plane + rr * stride;
    if (x & 1) {
        a = 3 * row[cx] + nb[cx];
        b = 3 * row[m] + nb[m];
        return hz_up_h2v2_odd(a, b);
    }
    a = 3 * row[l] + nb[l];
    b = 3 * row[cx] + nb[cx];
    return hz_up_h2v2_even(a, b);
}

/* Item of phase "emit": output pixel (y, x) -> v[0..C) (jdcolor.c). */
HZ_HD void hz_gpu_pixel(const uint8_t *planes, const hz_gpu_geom *g, int y, int x, int32_t *v)
{
    int32_t Y = planes[(int64_t)y * g->bw[0] * 8 + x], cb, cr;
    if (g->ncomp == 1) {
        v[0] = Y;
        return;
    }
    if (g->hs == 1 && g->vs == 1) {
        cb = planes[g->plane_off[1] + (int64_t)y * g->bw[1] * 8 + x];
        cr = planes[g->plane_off[2] + (int64_t)y * g->bw[2] * 8 + x];
    } else {
        cb = hz_gpu_upsample(planes, g, 1, y, x);
        cr = hz_gpu_upsample(planes, g, 2, y, x);
    }
    v[0] = hz_ycc_r(Y, cb, cr);
    v[1] = hz_ycc_g(Y, cb, cr);
    v[2] = hz_ycc_b(Y, cb, cr);
}

/* ---- training output ---------------------------------------------------- */

/* float32 value of sample v of channel ch: v / 255, then (. - mean) / std
 * when normalising. Division (not multiplication by 1/255) so that plain
 * output equals uint8 / 255 as torch computes it. */
HZ_HD float hz_gpu_to_float(int32_t v, int normalize, float mean, float std)
{
    float f = (float)v / 255.0f;
    return normalize ? (f - mean) / std : f;
}

/* bfloat16 bits of a finite float, rounded to nearest even (torch's .bfloat16()). */
HZ_HD uint16_t hz_gpu_bf16_bits(float f)
{
    union {
        float f;
        uint32_t u;
    } b;
    b.f = f;
    return (uint16_t)((b.u + 0x7FFFu + ((b.u >> 16) & 1u)) >> 16);
}

/* ---- entropy-coded bits (hz_entropy.c's scan walk, hz_huffman.h's math) ---- */

/* Quantised coefficients of a batch, as helmholtz.jpeg.Coefficients holds them:
 * comp[c] is int16 (n, bh[c], bw[c], 64) in natural order. */
typedef struct {
    const int16_t *comp[3];
    int ncomp, hs, vs;
    int bh[3], bw[3];
} hz_gpu_scan;

/* Walk image i's scan in order (MCU-interleaved with libjpeg's dummy blocks
 * for 3 components). With freq == NULL: the bits under code lengths
 * lens[4][256] (slots DC luma, AC luma, DC chroma, AC chroma). With freq
 * (int64[4][256], zeroed by the caller): count the symbols and return the
 * extra bits. Returns -1 when a coefficient is outside the baseline range. */
HZ_HD int64_t hz_gpu_image_bits(const hz_gpu_scan *s, int64_t i, const uint8_t *lens, int64_t *freq)
{
    int64_t total = 0;
    int prev[3] = {0, 0, 0}, bad = 0;
    int my, mx, c, y, x;
    int mcus_w = s->ncomp == 1 ? s->bw[0] : (s->bw[0] + s->hs - 1) / s->hs;
    int mcus_h = s->ncomp == 1 ? s->bh[0] : (s->bh[0] + s->vs - 1) / s->vs;
    for (my = 0; my < mcus_h; my++)
        for (mx = 0; mx < mcus_w; mx++)
            for (c = 0; c < s->ncomp; c++) {
                const int h = (c || s->ncomp == 1) ? 1 : s->hs, v = (c || s->ncomp == 1) ? 1 : s->vs;
                const int slot = c ? 2 : 0;
                const int16_t *base = s->comp[c] + i * (int64_t)s->bh[c] * s->bw[c] * 64;
                for (y = 0; y < v; y++)
                    for (x = 0; x < h; x++) {
                        const int by = my * v + y, bx = mx * h + x;
                        if (by < s->bh[c] && bx < s->bw[c]) {
                            const int16_t *block = base + ((int64_t)by * s->bw[c] + bx) * 64;
                            const uint64_t zz = hz_zigzag_mask(hz_nonzero_mask_portable(block));
                            if (freq)
                                total += hz_block_gather(block, zz, block[0] - prev[c], freq + slot * 256,
                                                         freq + (slot + 1) * 256, &bad);
                            else
                                total += hz_block_bits(block, zz, block[0] - prev[c], lens + slot * 256,
                                                       lens + (slot + 1) * 256, &bad);
                            prev[c] = block[0];
                        } else if (freq) { /* dummy block: DC difference 0, then EOB */
                            freq[slot * 256]++;
                            freq[(slot + 1) * 256]++;
                        } else {
                            total += lens[slot * 256] + lens[(slot + 1) * 256];
                        }
                    }
            }
    return bad ? -1 : total;
}

/* Code lengths of standard table `slot` into lens[256] (item of hz_init_tables). */
HZ_HD void hz_gpu_std_lengths(int slot, uint8_t *lens, uint16_t *codes)
{
    hz_derive_table(HZ_STD_BITS[slot], hz_std_huffval(slot), lens, codes);
}

#endif /* HZ_GPU_TILES_H */
