/* Cooperative device code of helmholtz's CUDA kernels: the 8-thread block
 * pipeline (DCT, quantisation, IDCT through a padded transpose tile), the
 * 2-D output mapping, and the warp-per-image entropy helpers.
 *
 * The arithmetic is hz_block.h's and hz_huffman.h's, called on 8 values in
 * registers per thread (thread t of a block's group holds row t, or after a
 * transpose column t); this file adds only data movement and thread mapping.
 *
 * Shared memory is touched only through HZ_LDS / HZ_STS and barriers are only
 * HZ_SYNC / HZ_SYNCWARP, each with a site name. On the GPU they are plain
 * accesses and __syncthreads / __syncwarp. The host emulation
 * (tests/cuda_emul.cpp) defines HZ_EMUL and replaces them: its threads run
 * phase by phase between barriers (so a missing barrier shows in the results),
 * it checks every shared access against the allocation, and it logs each
 * access with its site so that tests compute the bank pattern of each one.
 *
 * NVRTC-safe: no system headers.
 */
#ifndef HZ_GPU_BLOCK_CUH
#define HZ_GPU_BLOCK_CUH

#include "hz_gpu_tiles.h"

#ifndef HZ_EMUL
#define HZ_DEV __device__ __forceinline__
#define HZ_LDS(site, T, p) (*(const T *)(p))
#define HZ_STS(site, T, p, v) (*(T *)(p) = (v))
#define HZ_SYNC(site) __syncthreads()
#define HZ_SYNCWARP(site) __syncwarp()
#define HZ_SHFL_XOR(v, m) __shfl_xor_sync(0xFFFFFFFFu, (v), (m))
#define HZ_BALLOT(p) __ballot_sync(0xFFFFFFFFu, (p))
#define HZ_POPC(x) __popc(x)
#define HZ_ATOMIC_INC(p) atomicAdd((p), 1u)
#endif

/* Loads and stores that are shared-memory accesses when SH (logged by the
 * emulation) and plain (global) otherwise: the same pipeline serves the
 * small-image kernel (everything in shared memory) and the per-phase kernels. */
template <bool SH, class T>
HZ_DEV T hz_ld(const char *site, const void *p)
{
    if (SH) return HZ_LDS(site, T, p);
    (void)site;
    return *(const T *)p;
}
template <bool SH, class T>
HZ_DEV void hz_st(const char *site, void *p, T v)
{
    if (SH) {
        HZ_STS(site, T, p, v);
        return;
    }
    (void)site;
    *(T *)p = v;
}

/* ---- the 8-thread block pipeline ------------------------------------------ */

/* Row t of a block's samples (8 bytes at p) -> x[0..7] = sample - 128. */
template <bool SH>
HZ_DEV void hz_load_row(const uint8_t *p, int32_t *x)
{
    const uint2 v = hz_ld<SH, uint2>("planes.load_row", p);
    for (int k = 0; k < 4; k++) {
        x[k] = (int32_t)((v.x >> (8 * k)) & 0xFFu) - 128;
        x[4 + k] = (int32_t)((v.y >> (8 * k)) & 0xFFu) - 128;
    }
}

/* IDCT output row t -> range-limited samples, 8 bytes at p. */
template <bool SH>
HZ_DEV void hz_store_row(uint8_t *p, const int32_t *x)
{
    uint2 v;
    v.x = hz_pack4(hz_idct_range_limit(x[0]), hz_idct_range_limit(x[1]), hz_idct_range_limit(x[2]),
                   hz_idct_range_limit(x[3]));
    v.y = hz_pack4(hz_idct_range_limit(x[4]), hz_idct_range_limit(x[5]), hz_idct_range_limit(x[6]),
                   hz_idct_range_limit(x[7]));
    hz_st<SH, uint2>("planes.store_row", p, v);
}

/* The group's transpose tile: 8 rows of 9 words (the ninth pads), groups 72
 * words apart. Row writes hit banks 8j + 9t + c and column reads 8j + 9r + t
 * for the warp's groups j = 0..3: 32 distinct banks each time. One warp
 * barrier between the writes and the reads. Before the writes, a barrier only
 * when the tile's previous use went the same way (reuse != 0): after a
 * rows-to-columns pass thread t rewrites column t, which only thread t read,
 * and the other way round; after a pass the same way it would overwrite
 * cells another thread may not have read yet. */
HZ_DEV void hz_rows_to_cols(int32_t *tile, int t, int32_t *x, int reuse)
{
    if (reuse) HZ_SYNCWARP("tile.reuse_rows");
    for (int c = 0; c < 8; c++) HZ_STS("tile.write_row", int32_t, tile + t * 9 + c, x[c]);
    HZ_SYNCWARP("tile.rows_written");
    for (int r = 0; r < 8; r++) x[r] = HZ_LDS("tile.read_col", int32_t, tile + r * 9 + t);
}
HZ_DEV void hz_cols_to_rows(int32_t *tile, int t, int32_t *x, int reuse)
{
    if (reuse) HZ_SYNCWARP("tile.reuse_cols");
    for (int r = 0; r < 8; r++) HZ_STS("tile.write_col", int32_t, tile + r * 9 + t, x[r]);
    HZ_SYNCWARP("tile.cols_written");
    for (int c = 0; c < 8; c++) x[c] = HZ_LDS("tile.read_row", int32_t, tile + t * 9 + c);
}

/* Forward (reuse: see the tile): sample row t in x -> column t of the unquantised DCT (natural
 * index r * 8 + t in x[r]), jfdctint.c's rows-then-columns order. */
HZ_DEV void hz_fdct_block(int32_t *tile, int t, int32_t *x, int reuse)
{
    hz_fdct_1d(x, 1, 0);
    hz_rows_to_cols(tile, t, x, reuse);
    hz_fdct_1d(x, 1, 1);
}

/* Inverse: dequantised column t in x -> sample row t (before range limiting),
 * jidctint.c's columns-then-rows order. */
HZ_DEV void hz_idct_block(int32_t *tile, int t, int32_t *x, int reuse)
{
    hz_idct_1d(x, 1, 0);
    hz_cols_to_rows(tile, t, x, reuse);
    hz_idct_1d(x, 1, 1);
}

/* Quantise column t in registers with the block's 64 packed divisors (table
 * entry r * 8 + t): x[r] becomes the dequantised value (for the IDCT) and v[r]
 * the coefficient (when v is not NULL). */
template <bool ST>
HZ_DEV void hz_quantize_col(const uint32_t *table, int t, int32_t *x, int32_t *v)
{
    for (int r = 0; r < 8; r++) {
        const uint32_t w = hz_ld<ST, uint32_t>("tables.load", table + r * 8 + t);
        int32_t d;
        const int32_t q = hz_gpu_quantize(x[r], w, &d);
        if (v) v[r] = q;
        x[r] = d;
    }
}

/* int16 column t (8 values) <-> 16 bytes: the unquantised DCT between
 * qualities, thread t's own 16 bytes (a warp's 128-bit accesses are contiguous). */
HZ_DEV uint4 hz_pack_col16(const int32_t *x)
{
    uint4 u;
    u.x = ((uint32_t)x[0] & 0xFFFFu) | ((uint32_t)x[1] << 16);
    u.y = ((uint32_t)x[2] & 0xFFFFu) | ((uint32_t)x[3] << 16);
    u.z = ((uint32_t)x[4] & 0xFFFFu) | ((uint32_t)x[5] << 16);
    u.w = ((uint32_t)x[6] & 0xFFFFu) | ((uint32_t)x[7] << 16);
    return u;
}
HZ_DEV void hz_unpack_col16(uint4 u, int32_t *x)
{
    x[0] = (int32_t)(int16_t)(u.x & 0xFFFFu);
    x[1] = (int32_t)(int16_t)(u.x >> 16);
    x[2] = (int32_t)(int16_t)(u.y & 0xFFFFu);
    x[3] = (int32_t)(int16_t)(u.y >> 16);
    x[4] = (int32_t)(int16_t)(u.z & 0xFFFFu);
    x[5] = (int32_t)(int16_t)(u.z >> 16);
    x[6] = (int32_t)(int16_t)(u.w & 0xFFFFu);
    x[7] = (int32_t)(int16_t)(u.w >> 16);
}

/* The rest of a block after its forward DCT (column t in x): quantise with the
 * block's divisors, then either invert and store row t of the samples at `row`
 * (coef == NULL) or store row t of the coefficients at `coef` (16 bytes).
 * Inactive groups (act == 0) run the warp barriers with the others and store
 * nothing; coef is NULL for all groups of a launch or for none. */
template <bool SP, bool ST>
HZ_DEV void hz_quantize_block(int32_t *tile, int t, int32_t *x, const uint32_t *table, int reuse, int act,
                              uint8_t *row, int16_t *coef)
{
    if (!coef) {
        hz_quantize_col<ST>(table, t, x, (int32_t *)0);
        hz_idct_block(tile, t, x, reuse);
        if (act) hz_store_row<SP>(row, x);
        return;
    }
    int32_t v[8];
    hz_quantize_col<ST>(table, t, x, v);
    hz_cols_to_rows(tile, t, v, reuse);
    if (act) *(uint4 *)coef = hz_pack_col16(v);
}

/* ---- colour conversion ------------------------------------------------------ */

/* Conversion items per block of component c: 16 (4 samples each) for luma
 * and 4:4:4 chroma, 32 (2 samples each) for subsampled chroma. With items
 * numbered block-major a warp converts 2 blocks (16-item components) or 1
 * block (32-item ones), and the 32-bit loads of its lanes fall on 32 distinct
 * banks: rows 4 (mod 32) words apart, lanes 0, 3, 6, 9 words into a row. */
HZ_HD int hz_items_per_block(const hz_gpu_geom &g, int c) { return (c > 0 && g.hsh) ? 32 : 16; }
HZ_HD int hz_items_shift(const hz_gpu_geom &g, int c) { return (c > 0 && g.hsh) ? 5 : 4; }

/* One conversion item of component c, block (bi, bj), item e within the block:
 * its samples packed in a word (4, or 2 for subsampled chroma), for the byte
 * offset hz_item_offset(e) in the block. load(r, x, w, nw) fills w[0 .. nw)
 * with the bytes of pixels x, x + 1, ... of pixel row r (edges replicated):
 * 32-bit loads from the small kernel's padded tile, or from global memory in
 * the per-phase path. */
HZ_HD int hz_item_offset(const hz_gpu_geom &g, int c, int e)
{
    return (c > 0 && g.hsh) ? (e & 31) * 2 : (e & 15) * 4; /* row t = e / 4 or e / 2, t * 8 + piece */
}

template <class Load>
HZ_DEV uint32_t hz_convert_item(Load load, const hz_gpu_geom &g, int c, int bi, int bj, int e)
{
    if (c == 0 || g.hsh == 0) { /* 4 samples from 4 pixels of one row */
        const int t = (e >> 1) & 7, r = bi * 8 + t, x = bj * 8 + (e & 1) * 4;
        if (g.C == 1) { /* grayscale: the samples are the pixels */
            uint32_t w[1];
            load(r, x, w, 1);
            return w[0];
        }
        uint32_t w[3];
        int32_t s[4];
        load(c == 0 ? r : (r < g.ch1 ? r : g.ch1 - 1), x, w, 3);
        for (int k = 0; k < 4; k++) s[k] = hz_gpu_rgb_comp(c, HZ_BYTE(w, 3 * k), HZ_BYTE(w, 3 * k + 1), HZ_BYTE(w, 3 * k + 2));
        return hz_pack4(s[0], s[1], s[2], s[3]);
    }
    /* 2 chroma samples from 4 pixels on 1 (h2v1) or 2 (h2v2) rows; rows past the
     * component's height replicate its last row */
    const int t = (e >> 2) & 7, rc0 = bi * 8 + t, rc = rc0 < g.ch1 ? rc0 : g.ch1 - 1, cx = bj * 8 + (e & 3) * 2;
    uint32_t a[3];
    int32_t s[2];
    load(rc << g.vsh, cx * 2, a, 3);
    int32_t p0 = hz_gpu_rgb_comp(c, HZ_BYTE(a, 0), HZ_BYTE(a, 1), HZ_BYTE(a, 2));
    int32_t p1 = hz_gpu_rgb_comp(c, HZ_BYTE(a, 3), HZ_BYTE(a, 4), HZ_BYTE(a, 5));
    int32_t p2 = hz_gpu_rgb_comp(c, HZ_BYTE(a, 6), HZ_BYTE(a, 7), HZ_BYTE(a, 8));
    int32_t p3 = hz_gpu_rgb_comp(c, HZ_BYTE(a, 9), HZ_BYTE(a, 10), HZ_BYTE(a, 11));
    if (g.vsh == 0) {
        s[0] = hz_down_h2v1(p0, p1, cx);
        s[1] = hz_down_h2v1(p2, p3, cx + 1);
    } else {
        load((rc << 1) + 1, cx * 2, a, 3);
        s[0] = hz_down_h2v2(p0, p1, hz_gpu_rgb_comp(c, HZ_BYTE(a, 0), HZ_BYTE(a, 1), HZ_BYTE(a, 2)),
                            hz_gpu_rgb_comp(c, HZ_BYTE(a, 3), HZ_BYTE(a, 4), HZ_BYTE(a, 5)), cx);
        s[1] = hz_down_h2v2(p2, p3, hz_gpu_rgb_comp(c, HZ_BYTE(a, 6), HZ_BYTE(a, 7), HZ_BYTE(a, 8)),
                            hz_gpu_rgb_comp(c, HZ_BYTE(a, 9), HZ_BYTE(a, 10), HZ_BYTE(a, 11)), cx + 1);
    }
    return (uint32_t)s[0] | ((uint32_t)s[1] << 8);
}

/* Store an item's samples: a 32-bit word, or 16 bits for 2 samples. */
template <bool SH>
HZ_DEV void hz_store_item(uint8_t *p, const hz_gpu_geom &g, int c, uint32_t w)
{
    if (c > 0 && g.hsh) hz_st<SH, uint16_t>("convert.store", p, (uint16_t)w);
    else hz_st<SH, uint32_t>("convert.store", p, w);
}

/* ---- output: 4 horizontally adjacent pixels ------------------------------- */

/* Sample (r, x) of a chroma plane (block-major, bw1 blocks wide). */
template <bool SH>
HZ_DEV int32_t hz_chroma_at(const uint8_t *plane, int bw1, int r, int x)
{
    return hz_ld<SH, uint8_t>("emit.load_chroma", plane + ((r >> 3) * bw1 + (x >> 3)) * 64 + (r & 7) * 8 + (x & 7));
}

/* Chroma of output pixels x .. x + 3 (x a multiple of 4) of row y into v[0..3]:
 * jdsample.c's fancy upsampling, shifts for the sampling factors. Indices are
 * clamped, so pixels past the image width read valid samples and are simply
 * not stored. */
template <bool SH>
HZ_DEV void hz_upsample4(const uint8_t *plane, const hz_gpu_geom &g, int y, int x, int32_t *v)
{
    const int dw = g.cw1, last = dw - 1, rc = y >> g.vsh, cx = x >> 1;
    if (g.hsh == 0) { /* 4:4:4 */
        const uint32_t w = hz_ld<SH, uint32_t>("emit.load_chroma444",
                                               plane + ((y >> 3) * g.bw1 + (x >> 3)) * 64 + (y & 7) * 8 + (x & 4));
        for (int k = 0; k < 4; k++) v[k] = (int32_t)((w >> (8 * k)) & 0xFFu);
        return;
    }
    const int i0 = cx > 0 ? cx - 1 : 0, i1 = cx, i2 = cx + 1 < last ? cx + 1 : last, i3 = cx + 2 < last ? cx + 2 : last;
    if (dw <= 2) { /* jdsample.c replicates a component at most 2 samples wide */
        v[0] = v[1] = hz_chroma_at<SH>(plane, g.bw1, rc, i1);
        v[2] = v[3] = hz_chroma_at<SH>(plane, g.bw1, rc, i2);
        return;
    }
    int32_t s[4];
    s[0] = hz_chroma_at<SH>(plane, g.bw1, rc, i0);
    s[1] = hz_chroma_at<SH>(plane, g.bw1, rc, i1);
    s[2] = hz_chroma_at<SH>(plane, g.bw1, rc, i2);
    s[3] = hz_chroma_at<SH>(plane, g.bw1, rc, i3);
    if (g.vsh == 0) { /* h2v1 */
        v[0] = hz_up_h2v1_even(s[0], s[1]);
        v[1] = hz_up_h2v1_odd(s[1], s[2]);
        v[2] = hz_up_h2v1_even(s[1], s[2]);
        v[3] = hz_up_h2v1_odd(s[2], s[3]);
        return;
    }
    /* h2v2 on column sums 3 * nearer row + further row; the context row is above
     * for even rows, below for odd ones (jdmainct.c), clamped */
    const int rr = (y & 1) ? (rc + 1 < g.ch1 ? rc + 1 : g.ch1 - 1) : (rc > 0 ? rc - 1 : 0);
    s[0] = 3 * s[0] + hz_chroma_at<SH>(plane, g.bw1, rr, i0);
    s[1] = 3 * s[1] + hz_chroma_at<SH>(plane, g.bw1, rr, i1);
    s[2] = 3 * s[2] + hz_chroma_at<SH>(plane, g.bw1, rr, i2);
    s[3] = 3 * s[3] + hz_chroma_at<SH>(plane, g.bw1, rr, i3);
    v[0] = hz_up_h2v2_even(s[0], s[1]);
    v[1] = hz_up_h2v2_odd(s[1], s[2]);
    v[2] = hz_up_h2v2_even(s[1], s[2]);
    v[3] = hz_up_h2v2_odd(s[2], s[3]);
}

/* Pixels x .. x + 3 of row y from an image's planes: px[p * 3 + ch] (RGB), or
 * px[p] for grayscale (jdcolor.c). */
template <bool SH>
HZ_DEV void hz_emit_quad(const uint8_t *planes, const hz_gpu_geom &g, int y, int x, int32_t *px)
{
    const uint32_t yw = hz_ld<SH, uint32_t>("emit.load_luma",
                                            planes + ((y >> 3) * g.bw0 + (x >> 3)) * 64 + (y & 7) * 8 + (x & 4));
    if (g.ncomp == 1) {
        for (int k = 0; k < 4; k++) px[k] = (int32_t)((yw >> (8 * k)) & 0xFFu);
        return;
    }
    int32_t cb[4], cr[4];
    hz_upsample4<SH>(planes + g.nb0 * 64, g, y, x, cb);
    hz_upsample4<SH>(planes + (g.nb0 + g.nb1) * 64, g, y, x, cr);
    for (int k = 0; k < 4; k++) {
        const int32_t Y = (int32_t)((yw >> (8 * k)) & 0xFFu);
        px[3 * k] = hz_ycc_r(Y, cb[k], cr[k]);
        px[3 * k + 1] = hz_ycc_g(Y, cb[k], cr[k]);
        px[3 * k + 2] = hz_ycc_b(Y, cb[k], cr[k]);
    }
}

/* Output of one quad. kind 0: uint8 (N, H, W, C); 1: float32 (N, C, H, W);
 * 2: bfloat16 bits (N, C, H, W). Whole quads of a width divisible by 4 are
 * stored 32 bits at a time (uint8), 128 bits per channel (float32) or 64 bits
 * per channel (bfloat16); other quads pixel by pixel. */
typedef struct {
    int kind, normalize;
    float mean0, mean1, mean2, std0, std1, std2;
} hz_out_spec;

HZ_DEV void hz_store_quad(void *out, const hz_out_spec &o, const hz_gpu_geom &g, int64_t img, int y, int x,
                          const int32_t *px)
{
    /* px is indexed with compile-time constants only (C is 1 or 3), so it stays in registers */
#define HZ_PX(k, ch) (g.C == 1 ? px[(k)] : px[3 * (k) + (ch)])
    const int C = g.C;
    const int whole = (g.W & 3) == 0; /* then every quad is whole and aligned */
    const int count = g.W - x < 4 ? g.W - x : 4;
    if (o.kind == 0) {
        uint8_t *p = (uint8_t *)out + ((img * g.H + y) * g.W + x) * C;
        if (whole && C == 3) {
            uint32_t *w = (uint32_t *)p;
            w[0] = hz_pack4(px[0], px[1], px[2], px[3]);
            w[1] = hz_pack4(px[4], px[5], px[6], px[7]);
            w[2] = hz_pack4(px[8], px[9], px[10], px[11]);
        } else if (whole) {
            *(uint32_t *)p = hz_pack4(px[0], px[1], px[2], px[3]);
        } else {
            for (int k = 0; k < 4; k++)
                if (k < count) {
                    if (C == 3) {
                        p[3 * k] = (uint8_t)px[3 * k];
                        p[3 * k + 1] = (uint8_t)px[3 * k + 1];
                        p[3 * k + 2] = (uint8_t)px[3 * k + 2];
                    } else {
                        p[k] = (uint8_t)px[k];
                    }
                }
        }
        return;
    }
    const int64_t plane = (int64_t)g.H * g.W;
    for (int ch = 0; ch < 3; ch++) {
        if (ch >= C) break;
        const float mean = ch == 0 ? o.mean0 : (ch == 1 ? o.mean1 : o.mean2);
        const float sd = ch == 0 ? o.std0 : (ch == 1 ? o.std1 : o.std2);
        const int64_t at = (img * C + ch) * plane + (int64_t)y * g.W + x;
        float f[4];
        for (int k = 0; k < 4; k++) f[k] = hz_gpu_to_float(HZ_PX(k, ch), o.normalize, mean, sd);
        if (o.kind == 1) {
            float *p = (float *)out + at;
            if (whole) {
                float4 v;
                v.x = f[0];
                v.y = f[1];
                v.z = f[2];
                v.w = f[3];
                *(float4 *)p = v;
            } else {
                for (int k = 0; k < 4; k++)
                    if (k < count) p[k] = f[k];
            }
        } else {
            uint16_t *p = (uint16_t *)out + at;
            if (whole) {
                uint2 v;
                v.x = hz_gpu_bf16_bits(f[0]) | (hz_gpu_bf16_bits(f[1]) << 16);
                v.y = hz_gpu_bf16_bits(f[2]) | (hz_gpu_bf16_bits(f[3]) << 16);
                *(uint2 *)p = v;
            } else {
                for (int k = 0; k < 4; k++)
                    if (k < count) p[k] = (uint16_t)hz_gpu_bf16_bits(f[k]);
            }
        }
    }
#undef HZ_PX
}

/* ---- entropy: warp per image ---------------------------------------------- */

HZ_DEV int64_t hz_warp_sum64(int64_t v)
{
    for (int m = 16; m > 0; m >>= 1) v += HZ_SHFL_XOR(v, m);
    return v;
}

/* Zigzag nonzero mask of a block in global memory, from eight 128-bit loads. */
HZ_DEV uint64_t hz_block_zigzag_mask(const int16_t *block)
{
    uint64_t natural = 0;
    const uint4 *p = (const uint4 *)block;
    for (int k = 0; k < 8; k++) {
        const uint4 u = p[k];
        natural |= hz_gpu_nonzero_pair(u.x, 4 * k) | hz_gpu_nonzero_pair(u.y, 4 * k + 1) |
                   hz_gpu_nonzero_pair(u.z, 4 * k + 2) | hz_gpu_nonzero_pair(u.w, 4 * k + 3);
    }
    return hz_zigzag_mask(natural);
}

/* Call f(block, DC difference, slot) for the scan positions lane, lane + 32, ...
 * of image i (block NULL for a dummy block, whose difference is 0). */
template <class F>
HZ_DEV void hz_for_each_position(const hz_gpu_scan &s, int64_t i, int lane, F f)
{
    for (int64_t p = lane; p < s.positions; p += 32) {
        const int16_t *prev;
        int slot;
        const int16_t *blk = hz_gpu_scan_block(&s, i, p, &prev, &slot);
        f(blk, blk ? blk[0] - (prev ? prev[0] : 0) : 0, slot);
    }
}

/* hz_huffman.h's hz_block_gather into a warp's shared uint32 counts (atomic,
 * the warp's lanes count blocks side by side). Returns the extra bits. */
HZ_DEV int64_t hz_block_gather_shared(const int16_t *block, uint64_t zzmask, int diff, uint32_t *dc_freq,
                                      uint32_t *ac_freq, int *bad)
{
    uint32_t a = (uint32_t)(diff < 0 ? -diff : diff);
    int nb = hz_nbits(a), last = 0;
    int64_t extra = nb;
    int worst = nb > HZ_MAX_DC_NBITS;
    HZ_ATOMIC_INC(dc_freq + nb);
    while (zzmask) {
        int k = HZ_CTZ64(zzmask), run, v;
        zzmask &= zzmask - 1;
        run = k - last - 1;
        while (run > 15) {
            HZ_ATOMIC_INC(ac_freq + 0xF0);
            run -= 16;
        }
        v = block[HZ_ZIGZAG[k]];
        nb = hz_nbits_nz((uint32_t)(v < 0 ? -v : v));
        worst |= nb > HZ_MAX_AC_NBITS;
        HZ_ATOMIC_INC(ac_freq + ((run << 4) | nb));
        extra += nb;
        last = k;
    }
    if (last != 63) HZ_ATOMIC_INC(ac_freq);
    *bad |= worst;
    return extra;
}

/* Gather the symbol counts of image i into hist[4][256] (zeroed here) with the
 * warp's lanes; returns the extra bits (the same on every lane) and sets *bad
 * (every lane) for coefficients outside the baseline range. */
HZ_DEV int64_t hz_warp_gather(const hz_gpu_scan &s, int64_t i, uint32_t *hist, int lane, int *bad)
{
    for (int k = lane; k < 1024; k += 32) HZ_STS("bits.zero_hist", uint32_t, hist + k, 0u);
    HZ_SYNCWARP("bits.hist_zeroed");
    int64_t extra = 0;
    int b = 0;
    hz_for_each_position(s, i, lane, [&](const int16_t *blk, int diff, int slot) {
        if (blk)
            extra += hz_block_gather_shared(blk, hz_block_zigzag_mask(blk), diff, hist + slot * 256,
                                            hist + (slot + 1) * 256, &b);
        else { /* dummy block: DC difference 0, then EOB */
            HZ_ATOMIC_INC(hist + slot * 256);
            HZ_ATOMIC_INC(hist + (slot + 1) * 256);
        }
    });
    HZ_SYNCWARP("bits.hist_counted");
    *bad = HZ_BALLOT(b != 0) != 0;
    return hz_warp_sum64(extra);
}

/* Work space of one warp's optimal-table builder. */
#define HZ_OPT_MAX 260
typedef struct {
    uint32_t f[HZ_OPT_MAX];  /* frequencies of the present symbols (merged as the tree grows) */
    int32_t cs[HZ_OPT_MAX];  /* code sizes */
    int32_t grp[HZ_OPT_MAX]; /* tree of each symbol (its root); later its position in code order */
    int32_t sym[HZ_OPT_MAX]; /* the symbols, ascending, pseudo-symbol 256 last */
    int32_t bits[36];        /* codes per length */
    int32_t cum[18];         /* codes of length <= l */
    int32_t pos[36];         /* next position in code order per code size */
} hz_opt_work;

/* Bits of one slot's symbols under the libjpeg-optimal table of their counts
 * (jchuff.c jpeg_gen_optimal_table, hz_entropy.c's hz_optimal_table), built
 * by the warp. Each merge finds the two smallest counts (ties: the larger
 * symbol, as libjpeg's `<=` scans) with a warp reduction and grows both trees'
 * code sizes in parallel. Returns -1 when a code size passes 32 (as the C core). */
HZ_DEV int64_t hz_warp_optimal_bits(const uint32_t *hist, hz_opt_work *w, int lane)
{
    const uint64_t NONE = ~(uint64_t)0;
    int m = 0;
    /* the present symbols, ascending */
    for (int base = 0; base < 256; base += 32) {
        const uint32_t v = HZ_LDS("opt.load_hist", uint32_t, hist + base + lane);
        const uint32_t present = HZ_BALLOT(v != 0);
        if (v) {
            const int at = m + HZ_POPC(present & ((1u << lane) - 1u));
            HZ_STS("opt.compact", uint32_t, w->f + at, v);
            HZ_STS("opt.compact", int32_t, w->sym + at, base + lane);
        }
        m += HZ_POPC(present);
    }
    if (lane == 0) {
        HZ_STS("opt.pseudo", uint32_t, w->f + m, 1u);
        HZ_STS("opt.pseudo", int32_t, w->sym + m, 256);
    }
    m++;
    for (int j = lane; j < m; j += 32) {
        HZ_STS("opt.init", int32_t, w->cs + j, 0);
        HZ_STS("opt.init", int32_t, w->grp + j, j);
    }
    HZ_SYNCWARP("opt.ready");
    for (;;) {
        /* key: count, then the larger index first */
        uint64_t k1 = NONE, k2 = NONE;
        for (int j = lane; j < m; j += 32) {
            const uint32_t f = HZ_LDS("opt.scan", uint32_t, w->f + j);
            const uint64_t key = f ? ((uint64_t)f << 9) | (uint64_t)(511 - j) : NONE;
            if (key < k1) {
                k2 = k1;
                k1 = key;
            } else if (key < k2) {
                k2 = key;
            }
        }
        for (int s = 16; s > 0; s >>= 1) {
            const uint64_t o1 = HZ_SHFL_XOR(k1, s), o2 = HZ_SHFL_XOR(k2, s);
            const uint64_t lo = k1 < o1 ? k1 : o1, hi = k1 < o1 ? o1 : k1, m2 = k2 < o2 ? k2 : o2;
            k1 = lo;
            k2 = hi < m2 ? hi : m2;
        }
        if (k2 == NONE) break;
        const int c1 = 511 - (int)(k1 & 511), c2 = 511 - (int)(k2 & 511);
        HZ_SYNCWARP("opt.scanned");
        if (lane == 0) {
            HZ_STS("opt.merge", uint32_t, w->f + c1,
                   HZ_LDS("opt.merge", uint32_t, w->f + c1) + HZ_LDS("opt.merge", uint32_t, w->f + c2));
            HZ_STS("opt.merge", uint32_t, w->f + c2, 0u);
        }
        for (int j = lane; j < m; j += 32) {
            const int gj = HZ_LDS("opt.grow", int32_t, w->grp + j);
            if (gj == c1 || gj == c2) {
                HZ_STS("opt.grow", int32_t, w->cs + j, HZ_LDS("opt.grow", int32_t, w->cs + j) + 1);
                HZ_STS("opt.grow", int32_t, w->grp + j, c1);
            }
        }
        HZ_SYNCWARP("opt.merged");
    }
    /* code lengths: counted, limited to 16, one dropped for the pseudo-symbol;
     * positions in code order (size, then symbol) -- one lane, at most 257 steps */
    int err = 0;
    if (lane == 0) {
#define HZ_RD(a) HZ_LDS("opt.serial", int32_t, &(a))
#define HZ_WR(a, v) HZ_STS("opt.serial", int32_t, &(a), (v))
        int32_t *bits = w->bits, *pos = w->pos;
        int i, j;
        for (i = 0; i < 36; i++) HZ_WR(bits[i], 0);
        for (j = 0; j < m; j++) {
            const int c = HZ_RD(w->cs[j]);
            if (c > 32) err = 1;
            else if (c) HZ_WR(bits[c], HZ_RD(bits[c]) + 1);
        }
        if (!err) {
            for (i = 32; i > 16; i--) {
                while (HZ_RD(bits[i]) > 0) {
                    j = i - 2;
                    while (HZ_RD(bits[j]) == 0) j--;
                    HZ_WR(bits[i], HZ_RD(bits[i]) - 2);
                    HZ_WR(bits[i - 1], HZ_RD(bits[i - 1]) + 1);
                    HZ_WR(bits[j + 1], HZ_RD(bits[j + 1]) + 2);
                    HZ_WR(bits[j], HZ_RD(bits[j]) - 1);
                }
            }
            while (i > 0 && HZ_RD(bits[i]) == 0) i--;
            HZ_WR(bits[i], HZ_RD(bits[i]) - 1);
            HZ_WR(w->cum[0], 0);
            for (i = 1; i <= 16; i++) HZ_WR(w->cum[i], HZ_RD(w->cum[i - 1]) + HZ_RD(bits[i]));
            /* counting sort of the real symbols (the pseudo-symbol, last, excluded):
             * pos[c] = symbols of size < c, then each symbol's position in code order */
            for (i = 0; i <= 32; i++) HZ_WR(pos[i], 0);
            for (j = 0; j < m - 1; j++) {
                const int c = HZ_RD(w->cs[j]);
                HZ_WR(pos[c], HZ_RD(pos[c]) + 1);
            }
            {
                int acc = 0;
                for (i = 1; i <= 32; i++) {
                    const int c = HZ_RD(pos[i]);
                    HZ_WR(pos[i], acc);
                    acc += c;
                }
            }
            for (j = 0; j < m - 1; j++) {
                const int c = HZ_RD(w->cs[j]);
                int p = -1;
                if (c) {
                    p = HZ_RD(pos[c]);
                    HZ_WR(pos[c], p + 1);
                }
                HZ_WR(w->grp[j], p);
            }
        }
        HZ_WR(w->cum[17], err);
#undef HZ_RD
#undef HZ_WR
    }
    HZ_SYNCWARP("opt.ordered");
    if (HZ_LDS("opt.err", int32_t, w->cum + 17)) return -1;
    int64_t total = 0;
    for (int j = lane; j < m - 1; j += 32) {
        const int p = HZ_LDS("opt.sum", int32_t, w->grp + j);
        if (p < 0) continue;
        int l = 1;
        while (l < 16 && p >= HZ_LDS("opt.sum", int32_t, w->cum + l)) l++;
        total += (int64_t)HZ_LDS("opt.sum", uint32_t, hist + HZ_LDS("opt.sum", int32_t, w->sym + j)) * l;
    }
    total = hz_warp_sum64(total);
    HZ_SYNCWARP("opt.done");
    return total;
}

#endif /* HZ_GPU_BLOCK_CUH */
