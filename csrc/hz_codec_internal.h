/* Internal layout shared by hz_codec.c and the per-ISA kernels. */
#ifndef HZ_CODEC_INTERNAL_H
#define HZ_CODEC_INTERNAL_H

#include <string.h>

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
    size_t local_bytes;        /* the per-thread row buffers come first in the scratch ... */
    size_t scratch_bytes;      /* ... then the image's planes and saved DCTs */
    uint16_t *blockpos[2];     /* per class: (component, block row, block column) of each block */
    uint8_t *shared;           /* when several threads share one image: its planes live here */
} hz_layout;

/* Where an image's planes live: the thread's own scratch, or the shared one. */
static inline uint8_t *hz_image_base(const hz_layout *L, uint8_t *scratch) { return L->shared ? L->shared : scratch; }

/* Work units of the row phase: plane rows without downsampling, else chroma rows. */
static inline int hz_plane_units(const hz_layout *L)
{
    if (L->ncomp == 1 || (L->h_samp == 1 && L->v_samp == 1)) return L->comp[0].blocks_high * 8;
    return (L->height + L->v_samp - 1) / L->v_samp;
}

/* Pad the planes to whole blocks after the row phase: luma rows beyond the last
 * row group repeat the last image row, chroma rows beyond the real ones repeat
 * the last downsampled row (jcprepct.c). Nothing to do without downsampling. */
static inline void hz_finish_planes(const hz_layout *L, uint8_t *base)
{
    if (L->ncomp == 1 || (L->h_samp == 1 && L->v_samp == 1)) return;
    const int units = hz_plane_units(L);
    const ptrdiff_t ys = L->stride[0], cs = L->stride[1];
    uint8_t *y = base + L->off_plane[0], *cb = base + L->off_plane[1], *cr = base + L->off_plane[2];
    for (int r = units * L->v_samp; r < L->comp[0].blocks_high * 8; r++)
        memcpy(y + r * ys, y + (ptrdiff_t)(L->height - 1) * ys, (size_t)ys);
    for (int rc = units; rc < L->comp[1].blocks_high * 8; rc++) {
        memcpy(cb + rc * cs, cb + (ptrdiff_t)(units - 1) * cs, (size_t)cs);
        memcpy(cr + rc * cs, cr + (ptrdiff_t)(units - 1) * cs, (size_t)cs);
    }
}

enum { HZ_PHASE_ROWS, HZ_PHASE_FDCT, HZ_PHASE_QUANT, HZ_PHASE_EMIT };
typedef void (*hz_band_fn)(const hz_job *job, const hz_layout *L, int i, int q, int phase, uint8_t *scratch, int begin,
                           int end);

const hz_divisor_table *hz_divisors(int quality, int chroma);

static inline void hz_block_position(const hz_layout *L, int cls, int b, int *comp, int *bi, int *bj)
{
    const uint16_t *p = L->blockpos[cls] + 3 * (ptrdiff_t)b;
    *comp = p[0];
    *bi = p[1];
    *bj = p[2];
}

void hz_process_image_generic(const hz_job *job, const hz_layout *L, int i, uint8_t *scratch);
hz_band_fn hz_band_kernel_generic(void);
/* The reconstruct kernels return HZ_OK or HZ_ERR_RANGE. */
int hz_reconstruct_image_generic(const int16_t *const *coefs, const uint16_t *tables, const hz_layout *L, int i,
                                 uint8_t *scratch, uint8_t *out);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HZ_HAVE_AVX2_KERNELS 1
void hz_process_image_avx2(const hz_job *job, const hz_layout *L, int i, uint8_t *scratch);
hz_band_fn hz_band_kernel_avx2(void);
int hz_reconstruct_image_avx2(const int16_t *const *coefs, const uint16_t *tables, const hz_layout *L, int i,
                              uint8_t *scratch, uint8_t *out);
#endif

#endif /* HZ_CODEC_INTERNAL_H */
