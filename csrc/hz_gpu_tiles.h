/* Geometry and per-item work of helmholtz's CUDA kernels (csrc/hz_kernels.cu).
 *
 * Everything here is HZ_HD over plain scalars and pointers, so that the host
 * emulation (tests/cuda_emul.cpp) compiles the very same code. The math is
 * hz_block.h's (colour conversion, resampling, DCT, quantisation) and
 * hz_huffman.h's (bit counts): this file only says which samples go where,
 * with the edge rules of hz_codec_impl.h:
 *   - pixels beyond the image replicate the last row / column;
 *   - chroma is downsampled from those replicated pixels (h2v1 / h2v2 biases);
 *   - chroma rows beyond the component's real height replicate its last row;
 *   - fancy upsampling clamps its context rows and columns to the component's
 *     real size, and a component at most 2 samples wide is replicated.
 *
 * Layouts the kernels share (see hz_kernels.cu for who reads what):
 *   planes   one image's component samples, block-major: block b (luma blocks
 *            in raster order, then Cb's, then Cr's) is 64 contiguous bytes, row
 *            t of it at b * 64 + t * 8. A block row is one 8-byte load and a
 *            warp's 4 blocks are 256 contiguous bytes.
 *   divisors one packed word per (quality, luma/chroma, coefficient):
 *            Q | recip << 8 | shift << 24 (hz_block.h's hz_divisor).
 *
 * NVRTC-safe: no system headers beyond hz_common.h.
 */
#ifndef HZ_GPU_TILES_H
#define HZ_GPU_TILES_H

#include "hz_block.h"
#include "hz_huffman.h"

/* ---- geometry ------------------------------------------------------------ */

/* One image size and subsampling; only scalars, so that a kernel keeps it in
 * registers (an array indexed by component would live in local memory). Chroma
 * components 1 and 2 always share a geometry. */
typedef struct {
    int H, W, C, ncomp;
    int hsh, vsh;          /* log2 of the luma sampling factors (0 or 1; 0 for grayscale) */
    int cw1, ch1;          /* chroma width / height in samples */
    int bw0, bh0, bw1, bh1; /* blocks wide / high: luma, chroma */
    int nb0, nb1, blocks;  /* luma blocks, blocks of one chroma component, blocks of an image */
    int Wt, Ht;            /* the MCU-padded pixel area the planes are made from */
} hz_gpu_geom;

HZ_HD void hz_gpu_make_geom(hz_gpu_geom *g, int H, int W, int C, int hs, int vs)
{
    g->H = H;
    g->W = W;
    g->C = C;
    g->ncomp = C == 1 ? 1 : 3;
    g->hsh = (C == 1 || hs == 1) ? 0 : 1;
    g->vsh = (C == 1 || vs == 1) ? 0 : 1;
    g->bw0 = (W + 7) >> 3;
    g->bh0 = (H + 7) >> 3;
    g->nb0 = g->bw0 * g->bh0;
    g->Wt = g->bw0 * 8;
    g->Ht = g->bh0 * 8;
    if (g->ncomp == 1) {
        g->cw1 = g->ch1 = g->bw1 = g->bh1 = g->nb1 = 0;
        g->blocks = g->nb0;
        return;
    }
    g->cw1 = (W + (1 << g->hsh) - 1) >> g->hsh;
    g->ch1 = (H + (1 << g->vsh) - 1) >> g->vsh;
    g->bw1 = (g->cw1 + 7) >> 3;
    g->bh1 = (g->ch1 + 7) >> 3;
    g->nb1 = g->bw1 * g->bh1;
    g->blocks = g->nb0 + 2 * g->nb1;
    if ((g->bw1 * 8) << g->hsh > g->Wt) g->Wt = (g->bw1 * 8) << g->hsh;
    if ((g->bh1 * 8) << g->vsh > g->Ht) g->Ht = (g->bh1 * 8) << g->vsh;
}

/* Component of block b of an image and its index within that component. */
HZ_HD int hz_gpu_comp(const hz_gpu_geom *g, int b) { return b < g->nb0 ? 0 : (b < g->nb0 + g->nb1 ? 1 : 2); }
HZ_HD int hz_gpu_comp_first(const hz_gpu_geom *g, int c) { return c == 0 ? 0 : g->nb0 + (c - 1) * g->nb1; }

/* Exact x / d for x < 2^16 (or x * (m * d - 2^32) < 2^32) with one multiply:
 * m = ceil(2^32 / d), d >= 2; d == 1 is x itself. The small kernel's indices
 * divide by block counts this way instead of by a division per item. */
typedef struct {
    uint32_t m;
    int d;
} hz_fastdiv;

HZ_HD hz_fastdiv hz_make_fastdiv(int d)
{
    hz_fastdiv f;
    f.d = d;
    f.m = d > 1 ? 0xFFFFFFFFu / (uint32_t)d + 1u : 0u;
    return f;
}

HZ_HD uint32_t hz_umulhi(uint32_t a, uint32_t b)
{
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
    return __umulhi(a, b);
#else
    return (uint32_t)(((uint64_t)a * b) >> 32);
#endif
}

HZ_HD int hz_div(int x, hz_fastdiv f) { return f.d == 1 ? x : (int)hz_umulhi((uint32_t)x, f.m); }

/* ---- shared-memory layout of the small-image kernel ----------------------- */

/* Per image: the pixel tile (or, with several qualities, the unquantised DCTs
 * after the conversion has consumed the pixels), then the planes. Per CTA: the
 * divisor tables of its images, then one transpose tile per 8-thread group.
 * Pixel-tile rows are Rb bytes apart with Rb = 16 (mod 32) and rows of odd
 * 8-row bands start 16 bytes further in: with that, the 32-bit loads of the
 * colour conversion are free of bank conflicts (tests/test_cuda_emulation.py
 * measures every access). helmholtz/_cuda.py mirrors this function. */
typedef struct {
    int row_bytes;       /* Rb */
    int tile_bytes;      /* pixel tile / DCT area per image (multiple of 128) */
    int plane_bytes;     /* planes per image (multiple of 128) */
    int image_bytes;     /* tile_bytes + plane_bytes */
    int tables_off;      /* offset of the divisor tables: ipc * 2 * HZ_GPU_TABLE_WORDS words */
    int tiles_off;       /* offset of the transpose tiles: (threads / 8) * HZ_GPU_TILE_WORDS words */
    int total;           /* dynamic shared bytes */
} hz_small_layout;

#define HZ_GPU_TABLE_WORDS 72 /* 64 divisors + 8: consecutive tables start 8 banks apart */
#define HZ_GPU_TILE_WORDS 72  /* 8 rows of 9 words: rows and columns both conflict-free */

HZ_HD int hz_round_up(int v, int m) { return (v + m - 1) / m * m; }

HZ_HD hz_small_layout hz_make_small_layout(const hz_gpu_geom *g, int ipc, int threads)
{
    hz_small_layout L;
    int rb = g->Wt * g->C + 16, a;
    rb = hz_round_up(rb, 16);
    if ((rb & 31) == 0) rb += 16;
    L.row_bytes = rb;
    a = g->Ht * rb + 16;
    if (a < g->blocks * 128) a = g->blocks * 128;
    L.tile_bytes = hz_round_up(a, 128);
    L.plane_bytes = hz_round_up(g->blocks * 64, 128);
    L.image_bytes = L.tile_bytes + L.plane_bytes;
    L.tables_off = ipc * L.image_bytes;
    L.tiles_off = L.tables_off + ipc * 2 * HZ_GPU_TABLE_WORDS * 4;
    L.total = L.tiles_off + (threads / 8) * HZ_GPU_TILE_WORDS * 4;
    return L;
}

/* Byte offset of pixel row r in the tile (see hz_make_small_layout). */
HZ_HD int hz_tile_row(const hz_small_layout *L, int r) { return r * L->row_bytes + (((r >> 3) & 1) << 4); }

/* ---- colour conversion ---------------------------------------------------- */

/* Byte k of the little-endian word sequence w (k a compile-time constant after unrolling). */
#define HZ_BYTE(w, k) ((int32_t)(((w)[(k) >> 2] >> (((k) & 3) * 8)) & 0xFFu))

HZ_HD uint32_t hz_pack4(int32_t a, int32_t b, int32_t c, int32_t d)
{
    return (uint32_t)a | ((uint32_t)b << 8) | ((uint32_t)c << 16) | ((uint32_t)d << 24);
}

/* Component c of RGB (hz_block.h's jccolor.c arithmetic). */
HZ_HD int32_t hz_gpu_rgb_comp(int c, int32_t r, int32_t g, int32_t b)
{
    return c == 0 ? hz_rgb_y(r, g, b) : (c == 1 ? hz_rgb_cb(r, g, b) : hz_rgb_cr(r, g, b));
}

/* ---- the packed divisor table -------------------------------------------- */

#define HZ_GPU_DIV_WORDS (101 * 2 * 64) /* quality 0 .. 100 (row 0 = quality 1) x luma/chroma x 64 */

HZ_HD uint32_t hz_gpu_pack_divisor(int quality, int chroma, int k)
{
    hz_divisor d = hz_make_divisor(hz_quant_value(quality < 1 ? 1 : quality, chroma, k));
    return (uint32_t)d.qval | ((uint32_t)d.recip << 8) | ((uint32_t)d.shift << 24);
}

/* hz_block.h's quantisation with a packed divisor: the coefficient v, and
 * *deq = v * Q, the dequantised value the IDCT starts from. */
HZ_HD int32_t hz_gpu_quantize(int32_t c, uint32_t w, int32_t *deq)
{
    const int32_t q = (int32_t)(w & 0xFFu), recip = (int32_t)((w >> 8) & 0x3FFFu), shift = (int32_t)(w >> 24);
    const int32_t v = hz_quantize(c, q, recip, shift);
    *deq = v * q;
    return v;
}

HZ_HD int hz_gpu_clamp_quality(int q) { return q < 1 ? 1 : (q > 100 ? 100 : q); }

/* Quality of image i in quality row q: from the device array (nq, n) when
 * given, else packed 7 bits per row into p0 (rows 0..8) and p1 (rows 9..17). */
HZ_HD int hz_gpu_quality(const int32_t *qual, int64_t n, int q, int64_t i, uint64_t p0, uint64_t p1)
{
    if (qual) return hz_gpu_clamp_quality(qual[(int64_t)q * n + i]);
    return hz_gpu_clamp_quality((int)(((q < 9 ? p0 : p1) >> (7 * (q < 9 ? q : q - 9))) & 127u));
}

/* ---- training output ------------------------------------------------------ */

/* float32 value of sample v: v / 255, then (. - mean) / std when normalising.
 * Division (not multiplication by 1/255) so that plain output equals
 * uint8 / 255 as torch computes it. */
HZ_HD float hz_gpu_to_float(int32_t v, int normalize, float mean, float std)
{
    float f = (float)v / 255.0f;
    return normalize ? (f - mean) / std : f;
}

/* bfloat16 bits of a finite float, rounded to nearest even (torch's .bfloat16()). */
HZ_HD uint32_t hz_gpu_bf16_bits(float f)
{
    union {
        float f;
        uint32_t u;
    } b;
    b.f = f;
    return (b.u + 0x7FFFu + ((b.u >> 16) & 1u)) >> 16;
}

/* ---- entropy-coded bits (hz_entropy.c's scan, hz_huffman.h's math) ------- */

/* Quantised coefficients of a batch, as helmholtz.jpeg.Coefficients holds them:
 * comp[c] is int16 (n, bh[c], bw[c], 64) in natural order; the chroma grids
 * equal the MCU grid (helmholtz/_cuda.py checks). */
typedef struct {
    const int16_t *comp0, *comp1, *comp2;
    int ncomp, hs, vs;
    int bh0, bw0, bh1, bw1;
    int mcus_w, bpm;  /* MCUs per row; blocks per MCU in the scan (dummies included) */
    int64_t positions; /* scan positions of an image: blocks, dummies included */
} hz_gpu_scan;

HZ_HD void hz_gpu_make_scan(hz_gpu_scan *s, const int16_t *c0, const int16_t *c1, const int16_t *c2, int ncomp,
                            int bh0, int bw0, int bh1, int bw1, int hs, int vs)
{
    s->comp0 = c0;
    s->comp1 = c1;
    s->comp2 = c2;
    s->ncomp = ncomp;
    s->hs = ncomp == 1 ? 1 : hs;
    s->vs = ncomp == 1 ? 1 : vs;
    s->bh0 = bh0;
    s->bw0 = bw0;
    s->bh1 = bh1;
    s->bw1 = bw1;
    s->mcus_w = ncomp == 1 ? bw0 : (bw0 + s->hs - 1) / s->hs;
    s->bpm = ncomp == 1 ? 1 : s->hs * s->vs + 2;
    s->positions = ncomp == 1 ? (int64_t)bh0 * bw0 : (int64_t)((bh0 + s->vs - 1) / s->vs) * s->mcus_w * s->bpm;
}

/* Scan position p of image i: the block (NULL for a dummy), the block whose DC
 * the DC difference is taken from (NULL: none, difference from 0) and the
 * table slot (0 luma, 2 chroma). Every position is independent of the others,
 * so a warp's lanes take positions side by side. */
HZ_HD const int16_t *hz_gpu_scan_block(const hz_gpu_scan *s, int64_t i, int64_t p, const int16_t **prev, int *slot)
{
    int my, mx, r, c, y, x, ylim, xlim, pm;
    const int16_t *base;
    if (s->ncomp == 1) {
        base = s->comp0 + i * (int64_t)s->bh0 * s->bw0 * 64;
        *slot = 0;
        *prev = p > 0 ? base + (p - 1) * 64 : (const int16_t *)0;
        return base + p * 64;
    }
    {
        const int64_t m = p / s->bpm;
        r = (int)(p - m * s->bpm);
        my = (int)(m / s->mcus_w);
        mx = (int)(m - (int64_t)my * s->mcus_w);
        pm = m > 0; /* there is an MCU before this one */
    }
    if (r >= s->hs * s->vs) { /* chroma: one real block per MCU */
        c = r - s->hs * s->vs + 1;
        base = (c == 1 ? s->comp1 : s->comp2) + i * (int64_t)s->bh1 * s->bw1 * 64;
        *slot = 2;
        *prev = pm ? base + ((int64_t)my * s->bw1 + mx - 1) * 64 : (const int16_t *)0;
        return base + ((int64_t)my * s->bw1 + mx) * 64;
    }
    /* luma block (y, x) of the MCU; the real ones form the rectangle ylim x xlim */
    y = r / s->hs;
    x = r - y * s->hs;
    ylim = s->bh0 - my * s->vs < s->vs ? s->bh0 - my * s->vs : s->vs;
    xlim = s->bw0 - mx * s->hs < s->hs ? s->bw0 - mx * s->hs : s->hs;
    base = s->comp0 + i * (int64_t)s->bh0 * s->bw0 * 64;
    *slot = 0;
    if (y >= ylim || x >= xlim) { /* dummy block */
        *prev = (const int16_t *)0;
        return (const int16_t *)0;
    }
    if (x > 0 || y > 0) { /* the previous real block of this MCU */
        const int py = x > 0 ? y : y - 1, px = x > 0 ? x - 1 : xlim - 1;
        *prev = base + ((int64_t)(my * s->vs + py) * s->bw0 + mx * s->hs + px) * 64;
    } else if (pm) { /* the last real block of the MCU before */
        const int qy = mx > 0 ? my : my - 1, qx = mx > 0 ? mx - 1 : s->mcus_w - 1;
        const int ly = s->bh0 - qy * s->vs < s->vs ? s->bh0 - qy * s->vs : s->vs;
        const int lx = s->bw0 - qx * s->hs < s->hs ? s->bw0 - qx * s->hs : s->hs;
        *prev = base + ((int64_t)(qy * s->vs + ly - 1) * s->bw0 + qx * s->hs + lx - 1) * 64;
    } else {
        *prev = (const int16_t *)0;
    }
    return base + ((int64_t)(my * s->vs + y) * s->bw0 + mx * s->hs + x) * 64;
}

/* Bits 2k, 2k + 1 of a natural-order nonzero mask from word k of a block
 * (two int16 coefficients), so that a kernel can build hz_huffman.h's mask
 * from vector loads instead of 64 scalar ones. */
HZ_HD uint64_t hz_gpu_nonzero_pair(uint32_t w, int k)
{
    return ((uint64_t)((w & 0xFFFFu) != 0) | ((uint64_t)((w >> 16) != 0) << 1)) << (2 * k);
}

/* Code lengths (and codes) of standard table `slot` into lens[256], codes[256] (hz_huffman.h). */
HZ_HD void hz_gpu_std_lengths(int slot, uint8_t *lens, uint16_t *codes)
{
    hz_derive_table(HZ_STD_BITS[slot], hz_std_huffval(slot), lens, codes);
}

#endif /* HZ_GPU_TILES_H */
