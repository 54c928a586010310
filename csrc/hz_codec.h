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

/* One batch job: images (n, height, width, channels) uint8, C-contiguous.
 * nq quality rows: result q of image i uses qualities[q * n + i].
 * coefs (optional): nq * ncomp arrays, coefs[q * ncomp + c] of shape
 *   (n, blocks_high, blocks_wide, 64) int16 in natural order.
 * pixels (optional): (nq, n, height, width, channels) uint8. */
typedef struct {
    const uint8_t *images;
    int n, height, width, channels;
    int h_samp, v_samp;
    int nq;
    const int32_t *qualities;
    int16_t *const *coefs;
    uint8_t *pixels;
} hz_job;

/* Forward transform once per image, then per quality: quantise, and
 * optionally store coefficients and/or decode to pixels. */
int hz_run(const hz_job *job, int num_threads);

/* Decode quantised coefficients (ncomp arrays as above, one quality row)
 * with per-image tables (n, 2, 64) uint16 to pixels (n, height, width, channels). */
int hz_reconstruct(const int16_t *const *coefs, const uint16_t *tables, int n, int height, int width,
                   int channels, int h_samp, int v_samp, uint8_t *pixels, int num_threads);

/* Which kernel set the dispatcher chose: "avx2" or "generic". */
const char *hz_kernel_name(void);

#ifdef __cplusplus
}
#endif

#endif /* HZ_CODEC_H */
