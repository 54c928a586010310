/* Internal layout shared by hz_codec.c and the per-ISA kernels. */
#ifndef HZ_CODEC_INTERNAL_H
#define HZ_CODEC_INTERNAL_H

#include <string.h>

#include "hz_codec.h"

/* Divisors of one quantisation table (quality, luma or chroma). */
typedef struct {
    int32_t qval[64], recip[64], shift[64];
} hz_divisor_table;

/* Code lengths of the standard (Annex K) Huffman tables, per class (0 luma, 1 chroma). */
typedef struct {
    uint8_t dc[2][16];      /* by DC category 0..11 */
    uint8_t ac[2][256];     /* by symbol (run << 4) | category */
    uint8_t acx[2][256];    /* ac plus the symbol's magnitude bits (its category) */
    /* the bits of a nonzero AC value of category c after r zeros (r < 64):
     * the ZRLs for every 16 zeros, then symbol ((r & 15) << 4) | c; at [(r << 4) | c] */
    uint8_t run_cat[2][64 * 16];
} hz_code_lengths;

/* Everything that depends only on the image size, the subsampling and the
 * kernel set's lane count: component geometry and the offsets of each
 * scratch buffer. Computed per image size (no allocation). */
typedef struct {
    int height, width, channels, ncomp, h_samp, v_samp, lanes;
    hz_component comp[3];
    ptrdiff_t stride[3];       /* row stride of each component plane */
    ptrdiff_t image_bytes;     /* height * width * channels */
    int ext;                   /* columns of colour conversion (edge-extended) */
    int nblocks[2], ngroups[2];/* class 0: luma blocks; class 1: Cb then Cr blocks */
    /* per-thread row buffers (local_bytes) ... */
    size_t off_rgb, off_crow[4], off_ytmp, off_up[3], off_hist;
    size_t local_bytes;
    /* ... then the image's planes, saved DCTs and bit-count state (scratch_bytes) */
    size_t off_plane[3], off_recon[3], off_fdct, off_dc, off_prev, off_count;
    int dummies;               /* libjpeg's dummy luma blocks completing the last MCU row and column */
    size_t scratch_bytes;
    uint8_t *shared;           /* when several threads share one image: its planes live here */
    int stream;                /* the job's output is large: write pixels around the cache */
} hz_layout;

/* Bit-count state of one image and quality (at base + off_count). */
typedef struct {
    int64_t ac_bits;            /* standard tables: AC code lengths plus magnitude bits */
    int64_t extra;              /* optimal tables: magnitude bits */
    int64_t hist[4][256];       /* optimal tables: symbol counts (DC luma, AC luma, DC chroma, AC chroma) */
} hz_count_state;

/* Fill L for one image; the lane count comes from the kernel set, flags say
 * which buffers the job needs. */
enum { HZ_LAYOUT_RECON = 1, HZ_LAYOUT_COUNT = 2 };
void hz_make_layout(hz_layout *L, int height, int width, int channels, int h_samp, int v_samp, int nq, int lanes,
                    int flags);

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

/* Block b of class cls: its component and block row / column. */
static inline void hz_block_position(const hz_layout *L, int cls, int b, int *comp, int *bi, int *bj)
{
    int c = 0;
    if (cls) {
        const int per = L->comp[1].blocks_wide * L->comp[1].blocks_high;
        c = b < per ? 1 : 2;
        if (c == 2) b -= per;
    }
    *comp = c;
    *bi = b / L->comp[c].blocks_wide;
    *bj = b - *bi * L->comp[c].blocks_wide;
}


/* Whether two images of this layout can share their chroma lane group: colour,
 * and at most half a group of chroma blocks. */
static inline int hz_pairable(const hz_layout *L)
{
    return L->ncomp == 3 && L->nblocks[1] <= L->lanes / 2;
}

/* Phases of one image shared by several threads (hz_codec.c run_banded). */
enum { HZ_PHASE_ROWS, HZ_PHASE_FDCT, HZ_PHASE_QUANT, HZ_PHASE_EMIT };

const hz_divisor_table *hz_divisors(int quality, int chroma);
const hz_code_lengths *hz_std_code_lengths(void);

/* Once per image before its bit counts: each block's predecessor in scan order
 * (its DC difference is taken from it), kept beside the DC values. */
void hz_count_prepare(const hz_layout *L, uint8_t *base);
/* Reset the bit-count state of an image before a quality's quantisation pass,
 * and turn it into the image's bit count afterwards (the DC differences in scan
 * order, dummy blocks, and for optimal tables the tables themselves). */
void hz_count_begin(const hz_job *job, const hz_layout *L, uint8_t *base);
int64_t hz_count_finish(const hz_job *job, const hz_layout *L, uint8_t *base);

/* A kernel set: the pipeline compiled for one instruction set (hz_codec_impl.h). */
typedef struct {
    const char *name;
    int lanes;
    /* One image on one thread, every quality. */
    void (*process_image)(const hz_job *job, const hz_layout *L, int i, uint8_t *scratch);
    /* Two images of one size and quality whose chroma shares a lane group (hz_pairable);
     * the scratch holds 2 * scratch_bytes - local_bytes. */
    void (*process_pair)(const hz_job *job, const hz_layout *L, int ia, int ib, uint8_t *scratch);
    /* Rows or block groups [begin, end) of one phase of image i, quality row q (run_banded). */
    void (*band)(const hz_job *job, const hz_layout *L, int i, int q, int phase, uint8_t *scratch, int begin, int end);
    /* Decode one image from stored coefficients: HZ_OK or HZ_ERR_RANGE. */
    int (*reconstruct_image)(const int16_t *const *coefs, const uint16_t *tables, const hz_layout *L, int i,
                             uint8_t *scratch, uint8_t *out);
    /* hz_stage_ticks for this set. */
    int (*stage_ticks)(const uint8_t *images, int n, const hz_layout *L, int quality, int repeats, uint64_t *out);
} hz_kernel_set;

extern const hz_kernel_set hz_kernels_portable;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HZ_HAVE_X86_KERNELS 1
extern const hz_kernel_set hz_kernels_avx2;
extern const hz_kernel_set hz_kernels_avx512;
#endif

/* The active kernel set, or NULL when HELMHOLTZ_KERNELS cannot be honoured. */
const hz_kernel_set *hz_active_kernels(void);

#endif /* HZ_CODEC_INTERNAL_H */
