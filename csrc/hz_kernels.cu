/* helmholtz CUDA kernels: the JPEG lossy path of the C core on the GPU.
 *
 * Thin loops over the per-item functions of hz_gpu_tiles.h, which in turn
 * run the math of hz_block.h / hz_huffman.h: the same integers as the C
 * core, bit for bit. Compiled at run time by CuPy (NVRTC, -std=c++14, the
 * include path pointing at this directory) and checked with nvcc for
 * sm_80 / sm_90 by tools/check_cuda_compile.sh.
 *
 * Two paths:
 *   hz_roundtrip_small   one CTA holds `ipc` whole images in shared memory
 *                        (staged pixels, DCTs, reconstruction planes) and runs
 *                        every phase with __syncthreads() between them; for
 *                        small images such as CIFAR's 32x32 (24 blocks at 4:2:0).
 *   hz_*_global          one kernel per phase over the whole batch with global
 *                        scratch (DCT int16, planes uint8); for any size.
 * Every image carries its own quality (qualities is int32 (nq, n) on the device).
 *
 * Output kinds: 0 uint8 (nq, n, H, W, C); 1 float32 (nq, n, C, H, W);
 * 2 bfloat16 bits (nq, n, C, H, W). Float values are v / 255, or
 * (v / 255 - mean[c]) / std[c] when `normalize`.
 *
 * Indices that can pass 2^31 (batch x pixels) are int64_t.
 *
 * tests/cuda_emul.cpp compiles this very file as host C++ (blockDim = gridDim
 * = 1 per call, CTAs run in turn, __syncthreads a no-op) and the tests compare
 * its output with the C core.
 */
#include "hz_common.h"
/* The shared headers mark their functions __host__ __device__ under CUDA. A
 * .cu file needs only their device versions, and under full nvcc a
 * __host__ __device__ function may not read __device__ tables (hz_annex_k,
 * HZ_ZIGZAG) or call device intrinsics (__clz, __ffsll): compile them as
 * device functions here. (NVRTC compiles device code only; same result.) */
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#undef HZ_HD
#define HZ_HD __device__ __forceinline__
#define HZ_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#else
/* Host emulation (tests/cuda_emul.cpp): one thread per CTA, CTAs in turn. */
#define HZ_DYNAMIC_SHARED(name) unsigned char *name = hz_emul_shared
#endif
#include "hz_gpu_tiles.h"

/* hz_roundtrip_small is launched with 256 threads (helmholtz/_cuda.py _THREADS);
 * asking for 2 CTAs per SM caps it at 128 registers. Untuned: no GPU measured it. */
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define HZ_LAUNCH_BOUNDS(threads, ctas) __launch_bounds__(threads, ctas)
#else
#define HZ_LAUNCH_BOUNDS(threads, ctas)
#endif

#define HZ_GRID_LOOP(i, count) \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (count); i += (int64_t)gridDim.x * blockDim.x)
#define HZ_CTA_LOOP(i, count) for (int i = threadIdx.x; i < (count); i += blockDim.x)

/* Write pixel (y, x) of image i for quality row q in the requested kind. */
__device__ __forceinline__ void hz_write_pixel(const hz_gpu_geom *g, int64_t img, int y, int x, const int32_t *v,
                                               int out_kind, uint8_t *out_u8, void *out_f, const float *mean,
                                               const float *std, int normalize)
{
    if (out_kind == 0) {
        uint8_t *o = out_u8 + ((img * g->H + y) * g->W + x) * g->C;
        for (int ch = 0; ch < g->C; ch++) o[ch] = (uint8_t)v[ch];
        return;
    }
    const int64_t plane = (int64_t)g->H * g->W;
    const int64_t at = img * g->C * plane + (int64_t)y * g->W + x;
    for (int ch = 0; ch < g->C; ch++) {
        float f = hz_gpu_to_float(v[ch], normalize, normalize ? mean[ch] : 0.0f, normalize ? std[ch] : 1.0f);
        if (out_kind == 1)
            ((float *)out_f)[at + ch * plane] = f;
        else
            ((uint16_t *)out_f)[at + ch * plane] = hz_gpu_bf16_bits(f);
    }
}

/* Address of block b of image `img` in the coefficient arrays (comp c). */
__device__ __forceinline__ int16_t *hz_coef_ptr(const hz_gpu_geom *g, int16_t *c0, int16_t *c1, int16_t *c2,
                                                int64_t img, int b)
{
    int c, bi, bj;
    hz_gpu_block_pos(g, b, &c, &bi, &bj);
    int16_t *base = c == 0 ? c0 : (c == 1 ? c1 : c2);
    return base + ((img * g->bh[c] + bi) * g->bw[c] + bj) * 64;
}

/* ---- tables ----------------------------------------------------------------- */

/* div: int32[HZ_GPU_DIV_WORDS] (see hz_gpu_div_item); lens: uint8[4][256]
 * code lengths of the standard Huffman tables. One launch, any grid. */
extern "C" __global__ void hz_init_tables(int32_t *div, uint8_t *lens)
{
    HZ_GRID_LOOP(i, HZ_GPU_DIV_ITEMS) hz_gpu_div_item((int)i, div);
    HZ_GRID_LOOP(t, 4)
    {
        uint16_t codes[256];
        hz_gpu_std_lengths((int)t, lens + t * 256, codes);
    }
}

/* ---- small images: whole images per CTA in shared memory ------------------- */

/* Shared memory per CTA: ipc * (round16(H*W*C) + blocks*128 + round16(plane bytes)).
 * coef0..2: int16 (nq, n, bh, bw, 64) per component, or NULL. want_pixels: 0
 * for coefficients only. */
extern "C" __global__ void HZ_LAUNCH_BOUNDS(256, 2) hz_roundtrip_small(const uint8_t *images, int n, int H, int W, int C, int hs, int vs,
                                              const int32_t *qualities, int nq, int ipc, const int32_t *div,
                                              int want_pixels, int out_kind, uint8_t *out_u8, void *out_f,
                                              const float *mean, const float *std, int normalize, int16_t *coef0,
                                              int16_t *coef1, int16_t *coef2)
{
    HZ_DYNAMIC_SHARED(hz_smem);
    hz_gpu_geom g;
    hz_gpu_make_geom(&g, H, W, C, hs, vs);
    const int blocks = hz_gpu_blocks(&g);
    const int img_bytes = H * W * C;
    const int img_stride = (img_bytes + 15) & ~15;
    const int plane_stride = (int)((hz_gpu_plane_bytes(&g) + 15) & ~(int64_t)15);
    const int64_t first = (int64_t)blockIdx.x * ipc;
    const int count = (int)(n - first < ipc ? n - first : ipc);
    if (count <= 0) return;

    uint8_t *s_img = hz_smem;
    int16_t *s_fd = (int16_t *)(s_img + (int64_t)ipc * img_stride);
    uint8_t *s_planes = (uint8_t *)(s_fd + (int64_t)ipc * blocks * 64);

    /* stage the images (contiguous in global memory) */
    const uint8_t *src = images + first * img_bytes;
    if ((((unsigned long long)src) & 3) == 0 && (img_bytes & 3) == 0 && (img_stride == img_bytes)) {
        const uint32_t *s4 = (const uint32_t *)src;
        uint32_t *d4 = (uint32_t *)s_img;
        HZ_CTA_LOOP(k, count * (img_bytes >> 2)) d4[k] = s4[k];
    } else {
        HZ_CTA_LOOP(k, count * img_bytes)
        {
            const int li = k / img_bytes;
            s_img[li * img_stride + (k - li * img_bytes)] = src[k];
        }
    }
    __syncthreads();

    HZ_CTA_LOOP(k, count * blocks)
    {
        const int li = k / blocks, b = k - li * blocks;
        hz_gpu_fdct_item(s_img + li * img_stride, &g, b, s_fd + (int64_t)k * 64);
    }
    __syncthreads();

    for (int q = 0; q < nq; q++) {
        HZ_CTA_LOOP(k, count * blocks)
        {
            const int li = k / blocks, b = k - li * blocks;
            const int64_t img = first + li;
            const int quality = qualities[(int64_t)q * n + img];
            int16_t *coef = coef0 ? hz_coef_ptr(&g, coef0, coef1, coef2, (int64_t)q * n + img, b) : (int16_t *)0;
            hz_gpu_quant_item(s_fd + (int64_t)k * 64, &g, b, quality, div, coef,
                              want_pixels ? s_planes + li * plane_stride : (uint8_t *)0);
        }
        if (!want_pixels) continue;
        __syncthreads();
        HZ_CTA_LOOP(k, count * H * W)
        {
            const int li = k / (H * W), p = k - li * (H * W), y = p / W, x = p - y * W;
            int32_t v[3];
            hz_gpu_pixel(s_planes + li * plane_stride, &g, y, x, v);
            hz_write_pixel(&g, (int64_t)q * n + first + li, y, x, v, out_kind, out_u8, out_f, mean, std, normalize);
        }
        __syncthreads();
    }
}

/* ---- any size: one kernel per phase ------------------------------------------ */

/* images (n, H, W, C) -> unquantised DCTs fd (n, blocks, 64) int16. */
extern "C" __global__ void hz_fdct_global(const uint8_t *images, int64_t n, int H, int W, int C, int hs, int vs,
                                          int16_t *fd)
{
    hz_gpu_geom g;
    hz_gpu_make_geom(&g, H, W, C, hs, vs);
    const int blocks = hz_gpu_blocks(&g);
    const int64_t img_bytes = (int64_t)H * W * C;
    HZ_GRID_LOOP(k, n * blocks)
    {
        const int64_t i = k / blocks;
        hz_gpu_fdct_item(images + i * img_bytes, &g, (int)(k - i * blocks), fd + k * 64);
    }
}

/* fd -> quantised coefficients (quality row q: coefficient arrays indexed by
 * q * n + i, qualities[q * n + i]) and/or reconstruction planes (n, plane bytes). */
extern "C" __global__ void hz_quant_global(const int16_t *fd, int64_t n, int H, int W, int C, int hs, int vs,
                                           const int32_t *qualities, int q, const int32_t *div, int16_t *coef0,
                                           int16_t *coef1, int16_t *coef2, uint8_t *planes)
{
    hz_gpu_geom g;
    hz_gpu_make_geom(&g, H, W, C, hs, vs);
    const int blocks = hz_gpu_blocks(&g);
    const int64_t pb = hz_gpu_plane_bytes(&g);
    HZ_GRID_LOOP(k, n * blocks)
    {
        const int64_t i = k / blocks;
        const int b = (int)(k - i * blocks);
        int16_t *coef = coef0 ? hz_coef_ptr(&g, coef0, coef1, coef2, (int64_t)q * n + i, b) : (int16_t *)0;
        hz_gpu_quant_item(fd + k * 64, &g, b, qualities[(int64_t)q * n + i], div, coef,
                          planes ? planes + i * pb : (uint8_t *)0);
    }
}

/* Stored coefficients (n, bh, bw, 64) per component + tables (n, 2, 64) -> planes. */
extern "C" __global__ void hz_dequant_global(const int16_t *coef0, const int16_t *coef1, const int16_t *coef2,
                                             const uint16_t *tables, int64_t n, int H, int W, int C, int hs, int vs,
                                             uint8_t *planes)
{
    hz_gpu_geom g;
    hz_gpu_make_geom(&g, H, W, C, hs, vs);
    const int blocks = hz_gpu_blocks(&g);
    const int64_t pb = hz_gpu_plane_bytes(&g);
    HZ_GRID_LOOP(k, n * blocks)
    {
        const int64_t i = k / blocks;
        const int b = (int)(k - i * blocks);
        const int16_t *coef = hz_coef_ptr(&g, (int16_t *)coef0, (int16_t *)coef1, (int16_t *)coef2, i, b);
        hz_gpu_dequant_item(coef, tables + i * 128, &g, b, planes + i * pb);
    }
}

/* Planes (n, plane bytes) -> pixels of images out_index0 + i (see output kinds). */
extern "C" __global__ void hz_emit_global(const uint8_t *planes, int64_t n, int H, int W, int C, int hs, int vs,
                                          int64_t out_index0, int out_kind, uint8_t *out_u8, void *out_f,
                                          const float *mean, const float *std, int normalize)
{
    hz_gpu_geom g;
    hz_gpu_make_geom(&g, H, W, C, hs, vs);
    const int64_t pb = hz_gpu_plane_bytes(&g);
    const int64_t hw = (int64_t)H * W;
    HZ_GRID_LOOP(k, n * hw)
    {
        const int64_t i = k / hw;
        const int64_t p = k - i * hw; /* H * W can pass 2^31 (65500 x 65500) */
        const int y = (int)(p / W), x = (int)(p - (int64_t)y * W);
        int32_t v[3];
        hz_gpu_pixel(planes + i * pb, &g, y, x, v);
        hz_write_pixel(&g, out_index0 + i, y, x, v, out_kind, out_u8, out_f, mean, std, normalize);
    }
}

/* ---- entropy-coded bits ------------------------------------------------------ */

/* The scan geometry of one batch of coefficient arrays (chroma arrays share a shape). */
static __device__ __forceinline__ hz_gpu_scan hz_make_scan(const int16_t *coef0, const int16_t *coef1,
                                                          const int16_t *coef2, int ncomp, int bh0, int bw0,
                                                          int bh1, int bw1, int hs, int vs)
{
    hz_gpu_scan s;
    s.comp[0] = coef0;
    s.comp[1] = coef1;
    s.comp[2] = coef2;
    s.ncomp = ncomp;
    s.hs = hs;
    s.vs = vs;
    s.bh[0] = bh0;
    s.bw[0] = bw0;
    s.bh[1] = s.bh[2] = bh1;
    s.bw[1] = s.bw[2] = bw1;
    return s;
}

/* One thread per image: bits with the standard tables (lens from hz_init_tables),
 * or -1 for coefficients outside the baseline range. */
extern "C" __global__ void hz_bits_std(const int16_t *coef0, const int16_t *coef1, const int16_t *coef2, int ncomp,
                                       int64_t n, int bh0, int bw0, int bh1, int bw1, int hs, int vs,
                                       const uint8_t *lens, int64_t *out)
{
    __shared__ uint8_t s_lens[4 * 256];
    for (int k = threadIdx.x; k < 4 * 256; k += blockDim.x) s_lens[k] = lens[k];
    __syncthreads();
    const hz_gpu_scan s = hz_make_scan(coef0, coef1, coef2, ncomp, bh0, bw0, bh1, bw1, hs, vs);
    HZ_GRID_LOOP(i, n) out[i] = hz_gpu_image_bits(&s, i, s_lens, (int64_t *)0);
}

/* One thread per image: symbol counts freq (n, 4, 256) int64 (zeroed here)
 * and extra bits (n,) (-1 when out of range), for optimal tables. */
extern "C" __global__ void hz_frequencies(const int16_t *coef0, const int16_t *coef1, const int16_t *coef2,
                                          int ncomp, int64_t n, int bh0, int bw0, int bh1, int bw1, int hs, int vs,
                                          int64_t *freq, int64_t *extra)
{
    const hz_gpu_scan s = hz_make_scan(coef0, coef1, coef2, ncomp, bh0, bw0, bh1, bw1, hs, vs);
    HZ_GRID_LOOP(i, n)
    {
        int64_t *f = freq + i * 1024;
        for (int k = 0; k < 1024; k++) f[k] = 0;
        extra[i] = hz_gpu_image_bits(&s, i, (const uint8_t *)0, f);
    }
}
