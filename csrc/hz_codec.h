/* helmholtz C core: batch JPEG lossy path, exact to libjpeg-turbo.
 *
 * Plain C (no Python.h). Every function returns an hz_status code; the
 * Cython layer turns it into a Python exception in one place.
 */
#ifndef HZ_CODEC_H
#define HZ_CODEC_H

#include "hz_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Geometry of one JPEG component (libjpeg's names in comments). */
typedef struct {
    int h_samp, v_samp;   /* sampling factors */
    int width, height;    /* downsampled_width / downsampled_height */
    int blocks_wide;      /* width_in_blocks */
    int blocks_high;      /* height_in_blocks */
} hz_component;

/* Fill comps[0..ncomp) for an image; returns the number of components (1 or 3).
 * h_samp, v_samp: luma sampling factors, (1,1) 4:4:4, (2,1) 4:2:2, (2,2) 4:2:0. */
int hz_geometry(int height, int width, int channels, int h_samp, int v_samp, hz_component comps[3]);

/* One batch job over n images that may differ in size and channel count.
 *
 * Image i is src[i], uint8 (dims[3i], dims[3i+1], dims[3i+2]) = (height,
 * width, channels 1 or 3), C-contiguous. Result q of image i (q < nq) uses
 * quality qualities[q * n + i]; slot r = q * n + i names it in the outputs:
 *   pixels (optional): pixels[r] receives the decoded image (the input's shape);
 *   coefs (optional):  coefs[3r + c] receives component c as (blocks_high,
 *                      blocks_wide, 64) int16 in natural order (c < ncomp);
 *   bits (optional):   bits[r] receives the entropy-coded bits of the scan,
 *                      as hz_bits counts them (optimize: libjpeg's optimal tables).
 * The forward transform runs once per image, whatever nq. */
typedef struct {
    int n;
    const uint8_t *const *src;
    const int32_t *dims;
    int h_samp, v_samp;
    int nq;
    const int32_t *qualities;
    uint8_t *const *pixels;
    int16_t *const *coefs;
    int64_t *bits;
    int optimize;
} hz_job;

int hz_run(const hz_job *job, int num_threads);

/* Decode quantised coefficients (ncomp arrays (n, blocks_high, blocks_wide, 64),
 * one quality row) with per-image tables (n, 2, 64) uint16 to pixels (n, height, width, channels). */
int hz_reconstruct(const int16_t *const *coefs, const uint16_t *tables, int n, int height, int width,
                   int channels, int h_samp, int v_samp, uint8_t *pixels, int num_threads);

/* ---- kernel sets ---------------------------------------------------------
 * Three builds of the same pipeline: "portable" (the baseline instruction set,
 * SSE2 on x86-64), "avx2" (8 lanes of 32 bits) and "avx512" (16 lanes; F, BW,
 * DQ, VL and CD, i.e. Skylake-SP / Zen 4 and later). The best set the CPU runs
 * is used unless the environment variable HELMHOLTZ_KERNELS names one. */

/* Bit k set: kernel set k (0 portable, 1 avx2, 2 avx512) is compiled in and runs on this CPU. */
unsigned hz_kernels_supported(void);
/* The name of kernel set k, or NULL past the last. */
const char *hz_kernels_set_name(int k);
/* Name of the active set, or NULL when HELMHOLTZ_KERNELS asks for a set this
 * CPU cannot run (every codec call then returns HZ_ERR_KERNELS). */
const char *hz_kernels_active(void);
/* Make set `name` the active one; HZ_ERR_ARG for an unknown name,
 * HZ_ERR_KERNELS when this CPU cannot run it. Not meant to race with codec calls. */
int hz_kernels_select(const char *name);
/* The value of HELMHOLTZ_KERNELS that failed, or NULL. */
const char *hz_kernels_request_error(void);

/* ---- stage timing ----------------------------------------------------------
 * Time stages of the pipeline in isolation over a batch of uniform images with
 * the active kernel set: out[s] receives the smallest time-stamp-counter ticks
 * of `repeats` passes of stage s over all n images (images (n, height, width, 3),
 * luma tables of `quality`, chroma subsampling h_samp x v_samp). */
enum {
    HZ_STAGE_COLOUR, HZ_STAGE_DOWNSAMPLE, HZ_STAGE_DCT, HZ_STAGE_QUANTISE, HZ_STAGE_IDCT,
    HZ_STAGE_UPSAMPLE, HZ_STAGE_COLOUR_BACK, HZ_STAGE_COUNT, HZ_NSTAGES
};
int hz_stage_ticks(const uint8_t *images, int n, int height, int width, int h_samp, int v_samp, int quality,
                   int repeats, uint64_t out[HZ_NSTAGES]);
/* Core clock cycles per time-stamp-counter tick, measured with a chain of
 * dependent one-cycle additions (0 where there is no cycle counter). */
double hz_cycles_per_tick(void);

#ifdef __cplusplus
}
#endif

#endif /* HZ_CODEC_H */
