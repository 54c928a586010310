/* Internal layout shared by hz_codec.c and the per-ISA kernels. */
#ifndef HZ_CODEC_INTERNAL_H
#define HZ_CODEC_INTERNAL_H

#include "hz_codec.h"

/* Divisors of one quantisation table (quality, luma or chroma). */
typedef struct {
    int32_t qval[64], recip[64], shift[64];
} hz_divisor_table;

/* Everything that depends only on the image size and subsampling, computed
 * once per batch: component geometry and the offsets of each scratch buffer. */
typedef struct {
    int height, width, channels, ncomp, h_samp, v_samp;
    hz_component comp[3];
    ptrdiff_t stride[3];       /* row stride of each component plane = blocks_wide * 8 */
    ptrdiff_t image_bytes;     /* height * width * channels */
    int ext;                   /* columns of colour conversion (edge-extended) */
    int nblocks[2], ngroups[2];/* class 0: luma blocks; class 1: Cb then Cr blocks */
    size_t off_rgb, off_plane[3], off_recon[3], off_crow[4], off_ytmp, off_up[3], off_fdct;
    size_t scratch_bytes;
    uint16_t *blockpos[2];     /* per class: (component, block row, block column) of each block */
} hz_layout;

const hz_divisor_table *hz_divisors(int quality, int chroma);

static inline void hz_block_position(const hz_layout *L, int cls, int b, int *comp, int *bi, int *bj)
{
    const uint16_t *p = L->blockpos[cls] + 3 * (ptrdiff_t)b;
    *comp = p[0];
    *bi = p[1];
    *bj = p[2];
}

void hz_process_image_generic(const hz_job *job, const hz_layout *L, int i, uint8_t *scratch);
/* The reconstruct kernels return HZ_OK or HZ_ERR_RANGE. */
int hz_reconstruct_image_generic(const int16_t *const *coefs, const uint16_t *tables, const hz_layout *L, int i,
                                 uint8_t *scratch, uint8_t *out);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HZ_HAVE_AVX2_KERNELS 1
void hz_process_image_avx2(const hz_job *job, const hz_layout *L, int i, uint8_t *scratch);
int hz_reconstruct_image_avx2(const int16_t *const *coefs, const uint16_t *tables, const hz_layout *L, int i,
                              uint8_t *scratch, uint8_t *out);
#endif

#endif /* HZ_CODEC_INTERNAL_H */
