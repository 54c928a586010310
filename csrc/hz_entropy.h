/* Batch entropy coding of quantised JPEG coefficients: exact bit counts and
 * complete baseline JFIF files, byte-identical to libjpeg-turbo (as Pillow
 * drives it). Plain C99 + pthreads; no Python.
 *
 * Coefficient layout (as helmholtz.jpeg.Coefficients): for component c,
 * comps[c] is a C-contiguous int16 array (n, blocks_high[c], blocks_wide[c], 8, 8)
 * in natural order holding only the real blocks. With ncomp == 3 the scan is
 * interleaved with luma sampling h_samp x v_samp (chroma 1x1) and libjpeg's
 * dummy blocks are coded where the luma grid does not fill whole MCUs; with
 * ncomp == 1 it is non-interleaved and h_samp/v_samp only appear in the SOF
 * header (Pillow writes the requested subsampling factors even for grayscale).
 *
 * All functions return an hz_status code (hz_common.h); HZ_ERR_ARG also
 * reports coefficients outside the baseline range (|AC| > 1023 or a DC
 * difference needing more than 11 bits).
 */
#ifndef HZ_ENTROPY_H
#define HZ_ENTROPY_H

#include "hz_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes a file needs besides its scan data, at most: SOI, APP0, 2 DQT, SOF0,
 * 4 DHT of up to 256 symbols each, SOS and EOI. */
#define HZ_MAX_HEADER_BYTES 1400

/* Entropy-coded bits per image (before byte stuffing and padding), with the
 * standard Annex K tables (optimize == 0) or per-image optimal tables built
 * as libjpeg's jpeg_gen_optimal_table (optimize != 0). out_bits: int64[n]. */
int hz_bits(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high, const int *blocks_wide,
            int h_samp, int v_samp, int optimize, int64_t *out_bits, int num_threads);

/* Per-image symbol counts: out_freq int64[n][4][256] (slots DC luma, AC luma,
 * DC chroma, AC chroma) and out_extra int64[n], the extra (magnitude) bits. */
int hz_frequencies(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high,
                   const int *blocks_wide, int h_samp, int v_samp, int64_t *out_freq, int64_t *out_extra,
                   int num_threads);

/* An upper bound of each image's file size in bytes (HZ_MAX_HEADER_BYTES +
 * 2 * ceil(bits / 8), every scan byte possibly stuffed). out_bounds: int64[n]. */
int hz_encode_bounds(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high,
                     const int *blocks_wide, int h_samp, int v_samp, int optimize, int64_t *out_bounds,
                     int num_threads);

/* Complete JFIF files. Image i is written at out + offsets[i], with room
 * offsets[i + 1] - offsets[i] (offsets: int64[n + 1]); its length goes to
 * out_sizes[i]. qtables: uint16 (n, 2, 64) natural-order luma/chroma tables
 * (values 1..255). height, width: the image size in pixels.
 * HZ_ERR_OVERFLOW when a file does not fit its room. */
int hz_encode(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high, const int *blocks_wide,
              int h_samp, int v_samp, int height, int width, const uint16_t *qtables, int optimize, uint8_t *out,
              const int64_t *offsets, int64_t *out_sizes, int num_threads);

/* Ragged batches: image i has its own size. dims[3i..3i+2] = (height, width,
 * channels 1 or 3); comps[3i + c] is its component c, (blocks_high,
 * blocks_wide, 8, 8) as hz_geometry gives them for h_samp x v_samp;
 * the SOF of a grayscale image names gray_h_samp x gray_v_samp (1x1 as
 * Pillow's default, h_samp x v_samp as Pillow given a subsampling);
 * qtables (n, 2, 64) as for hz_encode. With out == NULL, writes each file's
 * upper bound (as hz_encode_bounds) to out_sizes; else writes the files as
 * hz_encode does. */
int hz_encode_ragged(const int16_t *const *comps, const int32_t *dims, int64_t n, int h_samp, int v_samp,
                     int gray_h_samp, int gray_v_samp, const uint16_t *qtables, int optimize, uint8_t *out,
                     const int64_t *offsets, int64_t *out_sizes, int num_threads);

/* libjpeg's jpeg_gen_optimal_table: from 256 symbol frequencies to a DHT
 * description (bits[16], huffval[<= 256]); *nsymbols gets the symbol count. */
int hz_optimal_table(const int64_t *freq, uint8_t *bits, uint8_t *huffval, int *nsymbols);

#ifdef __cplusplus
}
#endif

#endif /* HZ_ENTROPY_H */
