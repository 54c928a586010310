/* helmholtz CUDA kernels: the JPEG lossy path of the C core on the GPU.
 *
 * Thin loops over hz_gpu_block.cuh / hz_gpu_tiles.h, which run the math of
 * hz_block.h / hz_huffman.h: the same integers as the C core, bit for bit.
 * Compiled at run time by CuPy (NVRTC, -std=c++14, the include path pointing
 * at this directory); `make cuda-check` compiles it with nvcc for sm_80 /
 * sm_90 and holds every kernel to <= 64 registers and no local memory.
 *
 * Thread mapping (the review in issue 14):
 *   colour conversion  one 32-bit word of 4 samples per thread, from 32-bit
 *                      loads of the pixels; each component's items start at a
 *                      multiple of 32, so a warp converts one component;
 *   blocks             8 threads per 8x8 block, thread t holding row t (then
 *                      column t) in registers, transposed through a padded
 *                      tile; with one quality the DCT is quantised and
 *                      inverted in registers, with several it is kept as
 *                      int16 between qualities; divisors come from shared
 *                      memory (small kernel) or the read-only cache;
 *   output             a warp covers 16 x 8 pixels, 4 per thread; shifts for
 *                      the chroma factors; 32-bit (uint8), 128-bit (float32)
 *                      or 64-bit (bfloat16) stores;
 *   bits               one warp per image, lanes over scan positions, a
 *                      shuffle reduction; optimal tables built by the warp.
 *
 * Two paths for the round trip:
 *   hz_roundtrip_small   one CTA holds `ipc` whole images in shared memory and
 *                        runs every phase with barriers between them (images
 *                        up to a few thousand pixels, e.g. CIFAR's 32x32);
 *   hz_*_global          one kernel per phase over a batch chunk, with the
 *                        planes (and DCTs) in global scratch; for any size.
 *
 * Qualities: `qual` is int32 (nq, n) on the device, or NULL and the rows'
 * qualities are packed 7 bits each into qp0 (rows 0..8) / qp1 (rows 9..17).
 * Output kinds: 0 uint8 (nq, n, H, W, C); 1 float32 (nq, n, C, H, W);
 * 2 bfloat16 bits (nq, n, C, H, W); float values are v / 255, or
 * (v / 255 - mean[c]) / std[c] when `normalize`.
 *
 * tests/cuda_emul.cpp compiles this very file for the host, runs every CTA's
 * threads phase by phase between barriers and compares the results with the C
 * core; it also logs every shared-memory access for the bank-conflict test.
 */
#include "hz_common.h"
/* The shared headers' functions are device functions here (under full nvcc a
 * __host__ __device__ function may not read __device__ tables or call device
 * intrinsics); NVRTC compiles device code only, with the same result. */
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#undef HZ_HD
#define HZ_HD __device__ __forceinline__
#define HZ_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
/* 256 threads and 4 CTAs per SM (128 threads, 8 CTAs for the bit counts): at
 * most 64 registers per thread, the budget tools/check_cuda_compile.sh enforces. */
#define HZ_LAUNCH_BOUNDS(threads, ctas) __launch_bounds__(threads, ctas)
#else
#define HZ_DYNAMIC_SHARED(name) unsigned char *name = hz_emul_shared
#define HZ_LAUNCH_BOUNDS(threads, ctas)
#endif
#include "hz_gpu_block.cuh"

#define HZ_CTA_LOOP(i, count) for (int i = (int)threadIdx.x; i < (count); i += (int)blockDim.x)

/* Row t of block b of `image` in the coefficient arrays (rows, n, blocks of the component, 64). */
__device__ __forceinline__ int16_t *hz_coef_row(const hz_gpu_geom &g, int16_t *c0, int16_t *c1, int16_t *c2,
                                                int64_t image, int b, int t)
{
    const int c = hz_gpu_comp(&g, b);
    int16_t *base = c == 0 ? c0 : (c == 1 ? c1 : c2);
    return base + (image * (c == 0 ? g.nb0 : g.nb1) + b - hz_gpu_comp_first(&g, c)) * 64 + t * 8;
}

/* ---- tables ----------------------------------------------------------------- */

/* div: uint32[HZ_GPU_DIV_WORDS] packed divisors of every quality; lens / codes:
 * [4][256] code lengths / codes of the standard Huffman tables. Any grid. */
extern "C" __global__ void HZ_LAUNCH_BOUNDS(256, 4) hz_init_tables(uint32_t *div, uint8_t *lens, uint16_t *codes)
{
    for (int i = (int)(blockIdx.x * blockDim.x + threadIdx.x); i < HZ_GPU_DIV_WORDS; i += (int)(gridDim.x * blockDim.x))
        div[i] = hz_gpu_pack_divisor(i >> 7, (i >> 6) & 1, i & 63);
    if (blockIdx.x == 0 && threadIdx.x < 4)
        hz_gpu_std_lengths((int)threadIdx.x, lens + threadIdx.x * 256, codes + threadIdx.x * 256);
}

/* ---- small images: whole images per CTA in shared memory ------------------- */

/* Items of a CTA loop over ipc images of `per` items each, as (image, item)
 * without a division per item. */
#define HZ_IMAGE_ITEMS(li, e, k, per_fd) const int li = hz_div((k), (per_fd)), e = (k)-li * (per_fd).d

/* mode 0: pixels (out, out_kind); mode 1: coefficients only (coef0..2, int16
 * (row0 + nq, n, blocks of the component, 64)). Output image of quality row q
 * and image i: (row0 + q) * n + i. Dynamic shared memory: hz_make_small_layout. */
extern "C" __global__ void HZ_LAUNCH_BOUNDS(256, 4)
    hz_roundtrip_small(const uint8_t *images, int n, int H, int W, int C, int hs, int vs, const int32_t *qual,
                       uint64_t qp0, uint64_t qp1, int nq, int row0, int ipc, const uint32_t *div, int mode,
                       int out_kind, void *out, float mean0, float mean1, float mean2, float std0, float std1,
                       float std2, int normalize, int16_t *coef0, int16_t *coef1, int16_t *coef2)
{
    HZ_DYNAMIC_SHARED(smem);
    hz_gpu_geom g;
    hz_gpu_make_geom(&g, H, W, C, hs, vs);
    const hz_small_layout L = hz_make_small_layout(&g, ipc, (int)blockDim.x);
    const int64_t first = (int64_t)blockIdx.x * ipc;
    const int count = (int)(n - first < ipc ? n - first : ipc);
    if (count <= 0) return; /* the whole CTA leaves together */
    const int img_bytes = H * W * C;
    uint32_t *s_tab = (uint32_t *)(smem + L.tables_off);
    const int tid = (int)threadIdx.x, t = tid & 7, group = tid >> 3, groups = (int)blockDim.x >> 3;
    int32_t *tile = (int32_t *)(smem + L.tiles_off) + group * HZ_GPU_TILE_WORDS;
    const int blocks = g.blocks;
    const hz_fastdiv blocks_fd = hz_make_fastdiv(blocks);

    /* stage: the images into their padded pixel tiles, edges replicated */
    const uint8_t *src = images + first * img_bytes;
    const int row_chunks = (W * C) >> 4;
    if (W == g.Wt && H == g.Ht && ((W * C) & 15) == 0 && (((unsigned long long)src) & 15) == 0) {
        int slots = 1, slot_bits = 0; /* 16-byte chunks per row, a power of two: a quarter-warp stores one row */
        while (slots < row_chunks) slots <<= 1, slot_bits++;
        const hz_fastdiv per = hz_make_fastdiv(H * slots);
        HZ_CTA_LOOP(k, count * H * slots)
        {
            HZ_IMAGE_ITEMS(li, e, k, per);
            const int r = e >> slot_bits, j = e & (slots - 1);
            if (j < row_chunks)
                HZ_STS("stage.store", uint4, smem + li * L.image_bytes + hz_tile_row(&L, r) + j * 16,
                       *(const uint4 *)(src + (int64_t)li * img_bytes + r * W * C + j * 16));
        }
    } else {
        const int row_bytes = g.Wt * C;
        const hz_fastdiv per = hz_make_fastdiv(g.Ht * row_bytes), rowfd = hz_make_fastdiv(row_bytes),
                         cfd = hz_make_fastdiv(C);
        HZ_CTA_LOOP(k, count * g.Ht * row_bytes)
        {
            HZ_IMAGE_ITEMS(li, e, k, per);
            const int r = hz_div(e, rowfd), xb = e - r * row_bytes, px = hz_div(xb, cfd), ch = xb - px * C;
            const int sr = r < H ? r : H - 1, sx = px < W ? px : W - 1;
            HZ_STS("stage.store_bytes", uint8_t, smem + li * L.image_bytes + hz_tile_row(&L, r) + xb,
                   src[(int64_t)li * img_bytes + (sr * W + sx) * C + ch]);
        }
    }
    /* the divisor tables of quality row q for the CTA's images */
#define HZ_LOAD_TABLES(q)                                                                                        \
    HZ_CTA_LOOP(k, count * 128)                                                                                  \
    {                                                                                                            \
        const int li = k >> 7, cls = (k >> 6) & 1, kk = k & 63;                                                  \
        const int quality = hz_gpu_quality(qual, n, (q), first + li, qp0, qp1);                                  \
        HZ_STS("tables.store", uint32_t, s_tab + (li * 2 + cls) * HZ_GPU_TABLE_WORDS + kk,                       \
               div[(quality * 2 + cls) * 64 + kk]);                                                              \
    }
    if (nq == 1) HZ_LOAD_TABLES(0);
    HZ_SYNC("stage");

    /* colour conversion: tile -> block-major planes, one component per warp */
    {
        const int y_items = hz_round_up(g.nb0 * 16, 32), c_items = hz_round_up(g.nb1 * hz_items_per_block(g, 1), 32);
        const hz_fastdiv per = hz_make_fastdiv(y_items + 2 * c_items), bw0 = hz_make_fastdiv(g.bw0),
                         bw1 = hz_make_fastdiv(g.bw1 > 0 ? g.bw1 : 1);
        HZ_CTA_LOOP(k, count * (y_items + 2 * c_items))
        {
            HZ_IMAGE_ITEMS(li, e0, k, per);
            const int c = e0 < y_items ? 0 : (e0 < y_items + c_items ? 1 : 2);
            const int e = c == 0 ? e0 : e0 - y_items - (c - 1) * c_items, b = e >> hz_items_shift(g, c);
            if (b >= (c == 0 ? g.nb0 : g.nb1)) continue;
            const int bi = hz_div(b, c == 0 ? bw0 : bw1), bj = b - bi * (c == 0 ? g.bw0 : g.bw1);
            const uint8_t *ptile = smem + li * L.image_bytes;
            const uint32_t w = hz_convert_item(
                [&](int r, int x, uint32_t *out, int nw) {
                    const uint8_t *p = ptile + hz_tile_row(&L, r) + x * C;
                    for (int q = 0; q < nw; q++) out[q] = HZ_LDS("convert.load", uint32_t, p + 4 * q);
                },
                g, c, bi, bj, e);
            hz_store_item<true>(smem + li * L.image_bytes + L.tile_bytes + (hz_gpu_comp_first(&g, c) + b) * 64 +
                                    hz_item_offset(g, c, e),
                                g, c, w);
        }
    }
    HZ_SYNC("convert");

    const int total = count * blocks;
    if (nq == 1) { /* one quality: FDCT, quantisation and IDCT of each block in registers */
        for (int k0 = 0; k0 < total; k0 += groups) {
            const int k = k0 + group, act = k < total;
            const int li = act ? hz_div(k, blocks_fd) : 0, b = act ? k - li * blocks : 0;
            uint8_t *row = smem + li * L.image_bytes + L.tile_bytes + b * 64 + t * 8;
            const uint32_t *table = s_tab + (li * 2 + (b >= g.nb0)) * HZ_GPU_TABLE_WORDS;
            int32_t x[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (act) hz_load_row<true>(row, x);
            hz_fdct_block(tile, t, x, 0); /* the tile alternates rows->columns, columns->rows */
            hz_quantize_block<true, true>(tile, t, x, table, 0, act, row,
                                          mode ? hz_coef_row(g, coef0, coef1, coef2, (int64_t)row0 * n + first + li, b, t)
                                               : (int16_t *)0);
        }
    } else { /* several qualities: the DCTs, as int16, replace the consumed pixel tiles */
        for (int k0 = 0; k0 < total; k0 += groups) {
            const int k = k0 + group, act = k < total;
            const int li = act ? hz_div(k, blocks_fd) : 0, b = act ? k - li * blocks : 0;
            int32_t x[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            if (act) hz_load_row<true>(smem + li * L.image_bytes + L.tile_bytes + b * 64 + t * 8, x);
            hz_fdct_block(tile, t, x, 1); /* rows->columns only: reuse */
            if (act) HZ_STS("fd.store", uint4, smem + li * L.image_bytes + b * 128 + t * 16, hz_pack_col16(x));
        }
    }
    if (mode == 0 && nq == 1) HZ_SYNC("blocks"); /* with several rows, "tables" follows the DCTs */

    const int cg = (W + 15) >> 4, per_image = g.bh0 * cg * 32;
    const hz_fastdiv per_fd = hz_make_fastdiv(per_image), cg_fd = hz_make_fastdiv(cg);
    hz_out_spec o;
    o.kind = out_kind;
    o.normalize = normalize;
    o.mean0 = mean0, o.mean1 = mean1, o.mean2 = mean2, o.std0 = std0, o.std1 = std1, o.std2 = std2;
    for (int q = 0; q < nq; q++) {
        if (nq > 1) {
            /* no barrier before the tables: the previous row's readers of tables
             * passed "quantised", and its readers of the planes pass "tables"
             * before anyone writes them again */
            HZ_LOAD_TABLES(q);
            HZ_SYNC("tables");
            for (int k0 = 0; k0 < total; k0 += groups) {
                const int k = k0 + group, act = k < total;
                const int li = act ? hz_div(k, blocks_fd) : 0, b = act ? k - li * blocks : 0;
                const uint32_t *table = s_tab + (li * 2 + (b >= g.nb0)) * HZ_GPU_TABLE_WORDS;
                int32_t x[8] = {0, 0, 0, 0, 0, 0, 0, 0};
                if (act) hz_unpack_col16(HZ_LDS("fd.load", uint4, smem + li * L.image_bytes + b * 128 + t * 16), x);
                /* columns->rows only: reuse */
                hz_quantize_block<true, true>(
                    tile, t, x, table, 1, act, smem + li * L.image_bytes + L.tile_bytes + b * 64 + t * 8,
                    mode ? hz_coef_row(g, coef0, coef1, coef2, (int64_t)(row0 + q) * n + first + li, b, t) : (int16_t *)0);
            }
            HZ_SYNC("quantised"); /* planes ready for the output; tables free for the next row */
        }
        if (mode != 0) continue;
        /* output: a warp's 32 lanes cover 16 x 8 pixels of one image, 4 each */
        HZ_CTA_LOOP(k, count * per_image)
        {
            HZ_IMAGE_ITEMS(li, e, k, per_fd);
            const int wi = e >> 5, lane = e & 31, band = hz_div(wi, cg_fd), col = wi - band * cg;
            const int y = band * 8 + (lane >> 2), x = col * 16 + (lane & 3) * 4;
            if (y >= H || x >= W) continue;
            int32_t px[12];
            hz_emit_quad<true>(smem + li * L.image_bytes + L.tile_bytes, g, y, x, px);
            hz_store_quad(out, o, g, (int64_t)(row0 + q) * n + first + li, y, x, px);
        }
    }
#undef HZ_LOAD_TABLES
}

/* ---- any size: one kernel per phase over a chunk of images ---------------- */

/* images (n, H, W, C) -> planes (n, blocks * 64), block-major. Grid: y = image
 * of the chunk, x over the image's conversion items. */
extern "C" __global__ void HZ_LAUNCH_BOUNDS(256, 4)
    hz_convert_global(const uint8_t *images, int H, int W, int C, int hs, int vs, uint8_t *planes)
{
    hz_gpu_geom g;
    hz_gpu_make_geom(&g, H, W, C, hs, vs);
    const int64_t i = blockIdx.y;
    const uint8_t *img = images + i * H * W * C;
    const int y_items = hz_round_up(g.nb0 * 16, 32), c_items = hz_round_up(g.nb1 * hz_items_per_block(g, 1), 32);
    const int e0 = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (e0 >= y_items + 2 * c_items) return;
    const int c = e0 < y_items ? 0 : (e0 < y_items + c_items ? 1 : 2);
    const int e = c == 0 ? e0 : e0 - y_items - (c - 1) * c_items, b = e >> hz_items_shift(g, c);
    if (b >= (c == 0 ? g.nb0 : g.nb1)) return;
    const int bwc = c == 0 ? g.bw0 : g.bw1, bi = b / bwc, bj = b - bi * bwc;
    const int words_ok = ((W * C) & 3) == 0 && (((unsigned long long)images) & 3) == 0;
    const uint32_t w = hz_convert_item(
        [&](int r, int x, uint32_t *out, int nw) {
            const uint8_t *row = img + (int64_t)(r < H ? r : H - 1) * W * C;
            if (words_ok && x + (nw * 4) / C <= W) {
                for (int q = 0; q < nw; q++) out[q] = ((const uint32_t *)(row + x * C))[q];
                return;
            }
            for (int q = 0; q < nw; q++) { /* bytes of clamped pixels */
                uint32_t v = 0;
                for (int k = 0; k < 4; k++) {
                    const int byte = 4 * q + k, p = C == 3 ? byte / 3 : byte, ch = C == 3 ? byte - 3 * (byte / 3) : 0;
                    const int px = x + p < W ? x + p : W - 1;
                    v |= (uint32_t)row[px * C + ch] << (8 * k);
                }
                out[q] = v;
            }
        },
        g, c, bi, bj, e);
    hz_store_item<false>(planes + i * g.blocks * 64 + (hz_gpu_comp_first(&g, c) + b) * 64 + hz_item_offset(g, c, e), g,
                         c, w);
}

/* One 8-thread group per block of a chunk of n images; modes:
 *   0 planes -> quantised, reconstructed planes (one quality row)
 *   1 planes -> coefficients (one quality row)
 *   2 planes -> unquantised DCTs fd (n, blocks, 128 bytes: thread t's column t)
 *   3 fd -> reconstructed planes at quality row q
 *   4 fd -> coefficients at quality row q
 *   5 coefficients + tables (n, 2, 64) uint16 -> planes; *flag = 1 when a
 *     dequantised value is beyond what a baseline encoder produces
 * Coefficients: int16 (rows, n_total, blocks of the component, 64) with this
 * chunk's image i at (q_out * n_total + i0 + i). With qual == NULL the one
 * quality of row q is staged into shared memory once per CTA. Dynamic shared
 * memory: (threads / 8) * 72 words of tiles, then 128 words of divisors. */
extern "C" __global__ void HZ_LAUNCH_BOUNDS(256, 4)
    hz_block_global(int mode, uint8_t *planes, int16_t *fd, int n, int H, int W, int C, int hs, int vs,
                    const int32_t *qual, uint64_t qp0, uint64_t qp1, int q, int64_t n_total, int64_t i0, int q_out,
                    const uint32_t *div, int16_t *coef0, int16_t *coef1, int16_t *coef2, const uint16_t *tables,
                    int32_t *flag)
{
    HZ_DYNAMIC_SHARED(smem);
    hz_gpu_geom g;
    hz_gpu_make_geom(&g, H, W, C, hs, vs);
    const int tid = (int)threadIdx.x, t = tid & 7, groups = (int)blockDim.x >> 3;
    int32_t *tile = (int32_t *)smem + (tid >> 3) * HZ_GPU_TILE_WORDS;
    uint32_t *s_tab = (uint32_t *)smem + groups * HZ_GPU_TILE_WORDS;
    const int quant = mode == 0 || mode == 1 || mode == 3 || mode == 4;
    if (quant && !qual) {
        const int quality = hz_gpu_quality(qual, n_total, q, 0, qp0, qp1);
        HZ_CTA_LOOP(k, 128) HZ_STS("tables.store", uint32_t, s_tab + k, div[quality * 128 + k]);
        HZ_SYNC("tables");
    }
    const int blocks = g.blocks, total = n * blocks;
    const int stride = (int)gridDim.x * groups;
    for (int k0 = (int)blockIdx.x * groups; k0 < total; k0 += stride) {
        const int k = k0 + (tid >> 3), act = k < total;
        const int i = act ? k / blocks : 0, b = act ? k - i * blocks : 0;
        const int cls = b >= g.nb0;
        uint8_t *row = planes ? planes + ((int64_t)i * blocks + b) * 64 + t * 8 : (uint8_t *)0;
        int16_t *fdp = fd ? fd + ((int64_t)i * blocks + b) * 64 + t * 8 : (int16_t *)0;
        int32_t x[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        if (mode == 5) { /* stored coefficients: row t, dequantised after the transpose */
            const int16_t *src = hz_coef_row(g, coef0, coef1, coef2, i0 + i, b, t);
            if (act) hz_unpack_col16(*(const uint4 *)src, x);
            hz_rows_to_cols(tile, t, x, 0);
            const uint16_t *tab = tables + (i0 + i) * 128 + cls * 64;
            int bad = 0;
            for (int r = 0; r < 8; r++) {
                x[r] *= (int32_t)tab[r * 8 + t];
                bad |= x[r] > HZ_MAX_DEQUANTIZED || x[r] < -HZ_MAX_DEQUANTIZED;
            }
            if (act && bad) *flag = 1;
            hz_idct_block(tile, t, x, 0);
            if (act) hz_store_row<false>(row, x);
            continue;
        }
        if (mode <= 2) {
            if (act) hz_load_row<false>(row, x);
            hz_fdct_block(tile, t, x, mode == 2); /* mode 2 goes rows->columns only */
            if (mode == 2) {
                if (act) *(uint4 *)fdp = hz_pack_col16(x);
                continue;
            }
        } else if (act) {
            hz_unpack_col16(*(const uint4 *)fdp, x);
        }
        /* modes 3, 4 go columns->rows only */
        int16_t *coef = mode == 1 || mode == 4 ? hz_coef_row(g, coef0, coef1, coef2, q_out * n_total + i0 + i, b, t)
                                               : (int16_t *)0;
        if (qual)
            hz_quantize_block<false, false>(tile, t, x, div + hz_gpu_quality(qual, n_total, q, i0 + i, qp0, qp1) * 128 +
                                                             cls * 64, mode >= 3, act, row, coef);
        else
            hz_quantize_block<false, true>(tile, t, x, s_tab + cls * 64, mode >= 3, act, row, coef);
    }
}

/* planes (n, blocks * 64) -> pixels of output images out_index0 + i. Grid: y =
 * image of the chunk, x over its items (a warp covers 16 x 8 pixels). */
extern "C" __global__ void HZ_LAUNCH_BOUNDS(256, 4)
    hz_emit_global(const uint8_t *planes, int H, int W, int C, int hs, int vs, int64_t out_index0, int out_kind,
                   void *out, float mean0, float mean1, float mean2, float std0, float std1, float std2, int normalize)
{
    hz_gpu_geom g;
    hz_gpu_make_geom(&g, H, W, C, hs, vs);
    const int64_t i = blockIdx.y;
    const int cg = (W + 15) >> 4;
    const int e = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    const int wi = e >> 5, lane = e & 31, band = wi / cg, col = wi - band * cg;
    const int y = band * 8 + (lane >> 2), x = col * 16 + (lane & 3) * 4;
    if (band >= g.bh0 || y >= H || x >= W) return;
    hz_out_spec o;
    o.kind = out_kind;
    o.normalize = normalize;
    o.mean0 = mean0, o.mean1 = mean1, o.mean2 = mean2, o.std0 = std0, o.std1 = std1, o.std2 = std2;
    int32_t px[12];
    hz_emit_quad<false>(planes + i * g.blocks * 64, g, y, x, px);
    hz_store_quad(out, o, g, out_index0 + i, y, x, px);
}

/* ---- entropy-coded bits: one warp per image -------------------------------- */

#define HZ_WARP_LOOP(i, n)                                                                                     \
    for (int64_t i = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; i < (n);                           \
         i += ((int64_t)gridDim.x * blockDim.x) >> 5)

/* Bits with the standard tables (lens [4][256] from hz_init_tables), or -1
 * for coefficients outside the baseline range. Dynamic shared memory: 1024. */
extern "C" __global__ void HZ_LAUNCH_BOUNDS(128, 8)
    hz_bits_std(const int16_t *coef0, const int16_t *coef1, const int16_t *coef2, int ncomp, int64_t n, int bh0,
                int bw0, int bh1, int bw1, int hs, int vs, const uint8_t *lens, int64_t *out)
{
    HZ_DYNAMIC_SHARED(smem);
    HZ_CTA_LOOP(k, 256) HZ_STS("bits.lens", uint32_t, smem + 4 * k, ((const uint32_t *)lens)[k]);
    HZ_SYNC("lens");
    hz_gpu_scan s;
    hz_gpu_make_scan(&s, coef0, coef1, coef2, ncomp, bh0, bw0, bh1, bw1, hs, vs);
    const int lane = (int)(threadIdx.x & 31);
    HZ_WARP_LOOP(i, n)
    {
        int64_t total = 0;
        int bad = 0;
        hz_for_each_position(s, i, lane, [&](const int16_t *blk, int diff, int slot) {
            if (blk)
                total += hz_block_bits(blk, hz_block_zigzag_mask(blk), diff, smem + slot * 256, smem + (slot + 1) * 256,
                                       &bad);
            else /* dummy block: DC difference 0, then EOB */
                total += smem[slot * 256] + smem[(slot + 1) * 256];
        });
        total = hz_warp_sum64(total);
        bad = HZ_BALLOT(bad != 0) != 0;
        if (lane == 0) out[i] = bad ? -1 : total;
    }
}

/* Symbol counts freq (n, 4, 256) int64 and extra bits (n,) (-1 when out of
 * range). Dynamic shared memory: 4096 bytes per warp. */
extern "C" __global__ void HZ_LAUNCH_BOUNDS(128, 8)
    hz_frequencies(const int16_t *coef0, const int16_t *coef1, const int16_t *coef2, int ncomp, int64_t n, int bh0,
                   int bw0, int bh1, int bw1, int hs, int vs, int64_t *freq, int64_t *extra)
{
    HZ_DYNAMIC_SHARED(smem);
    hz_gpu_scan s;
    hz_gpu_make_scan(&s, coef0, coef1, coef2, ncomp, bh0, bw0, bh1, bw1, hs, vs);
    const int lane = (int)(threadIdx.x & 31);
    uint32_t *hist = (uint32_t *)smem + (threadIdx.x >> 5) * 1024;
    HZ_WARP_LOOP(i, n)
    {
        int bad;
        const int64_t e = hz_warp_gather(s, i, hist, lane, &bad);
        for (int k = lane; k < 1024; k += 32) freq[i * 1024 + k] = HZ_LDS("bits.read_hist", uint32_t, hist + k);
        if (lane == 0) extra[i] = bad ? -1 : e; /* lane l rezeroes only the counts it read: no barrier */
    }
}

/* Bits with each image's optimal tables (libjpeg's jpeg_gen_optimal_table),
 * counted and built on the device, or -1. Dynamic shared memory per warp:
 * 4096 bytes of counts + sizeof(hz_opt_work). */
extern "C" __global__ void HZ_LAUNCH_BOUNDS(128, 8)
    hz_bits_optimal(const int16_t *coef0, const int16_t *coef1, const int16_t *coef2, int ncomp, int64_t n, int bh0,
                    int bw0, int bh1, int bw1, int hs, int vs, int64_t *out)
{
    HZ_DYNAMIC_SHARED(smem);
    hz_gpu_scan s;
    hz_gpu_make_scan(&s, coef0, coef1, coef2, ncomp, bh0, bw0, bh1, bw1, hs, vs);
    const int lane = (int)(threadIdx.x & 31);
    unsigned char *mine = smem + (threadIdx.x >> 5) * (4096 + sizeof(hz_opt_work));
    uint32_t *hist = (uint32_t *)mine;
    hz_opt_work *w = (hz_opt_work *)(mine + 4096);
    HZ_WARP_LOOP(i, n)
    {
        int bad;
        int64_t total = hz_warp_gather(s, i, hist, lane, &bad);
        for (int slot = 0; slot < (ncomp == 1 ? 2 : 4) && !bad; slot++) {
            const int64_t b = hz_warp_optimal_bits(hist + slot * 256, w, lane);
            if (b < 0) bad = 1;
            total += b;
        }
        if (lane == 0) out[i] = bad ? -1 : total; /* "opt.done" ended the reads of the counts */
    }
}
