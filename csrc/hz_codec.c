/* Batch driver of the C core: layout, threads, kernel dispatch. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hz_block.h"
#include "hz_codec_internal.h"
#include "hz_parallel.h"

/* ---- quantisation divisors for every quality, built once ----------------- */

static hz_divisor_table g_divisors[101][2];
static pthread_once_t g_divisors_once = PTHREAD_ONCE_INIT;

static void init_divisors(void)
{
    for (int q = 1; q <= 100; q++)
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 64; k++) {
                hz_divisor d = hz_make_divisor(hz_quant_value(q, c, k));
                g_divisors[q][c].qval[k] = d.qval;
                g_divisors[q][c].recip[k] = d.recip;
                g_divisors[q][c].shift[k] = d.shift;
            }
}

const hz_divisor_table *hz_divisors(int quality, int chroma)
{
    pthread_once(&g_divisors_once, init_divisors);
    return &g_divisors[quality][chroma];
}

/* ---- geometry and scratch layout --------------------------------------- */

int hz_geometry(int height, int width, int channels, int h_samp, int v_samp, hz_component comps[3])
{
    int ncomp = channels == 1 ? 1 : 3;
    if (ncomp == 1) h_samp = v_samp = 1;
    for (int c = 0; c < ncomp; c++) {
        int hs = c == 0 ? h_samp : 1, vs = c == 0 ? v_samp : 1;
        comps[c].h_samp = hs;
        comps[c].v_samp = vs;
        comps[c].width = (width * hs + h_samp - 1) / h_samp;
        comps[c].height = (height * vs + v_samp - 1) / v_samp;
        comps[c].blocks_wide = (comps[c].width + 7) / 8;
        comps[c].blocks_high = (comps[c].height + 7) / 8;
    }
    return ncomp;
}

static size_t take(size_t *top, size_t bytes)
{
    size_t at = *top;
    *top += (bytes + 63) & ~(size_t)63; /* keep every buffer on its own cache lines */
    return at;
}

static void free_layout(hz_layout *L)
{
    free(L->blockpos[0]);
    free(L->blockpos[1]);
}

/* Returns HZ_OK or HZ_ERR_NOMEM; on success free_layout must be called. */
static int make_layout(hz_layout *L, int height, int width, int channels, int h_samp, int v_samp, int nq)
{
    memset(L, 0, sizeof(*L));
    L->height = height;
    L->width = width;
    L->channels = channels;
    L->ncomp = hz_geometry(height, width, channels, h_samp, v_samp, L->comp);
    L->h_samp = L->ncomp == 1 ? 1 : h_samp;
    L->v_samp = L->ncomp == 1 ? 1 : v_samp;
    L->image_bytes = (ptrdiff_t)height * width * channels;
    L->ext = L->comp[0].blocks_wide * 8;
    if (L->ncomp == 3 && L->h_samp == 2 && 16 * L->comp[1].blocks_wide > L->ext) L->ext = 16 * L->comp[1].blocks_wide;
    for (int c = 0; c < L->ncomp; c++) L->stride[c] = (ptrdiff_t)L->comp[c].blocks_wide * 8;
    /* Colour conversion writes ext luma samples per row: the luma plane must hold them. */
    L->stride[0] = L->ext;
    L->nblocks[0] = L->comp[0].blocks_wide * L->comp[0].blocks_high;
    L->nblocks[1] = L->ncomp == 1 ? 0 : 2 * L->comp[1].blocks_wide * L->comp[1].blocks_high;
    for (int k = 0; k < 2; k++) L->ngroups[k] = (L->nblocks[k] + 7) / 8;

    /* Per-thread row buffers first (local_bytes), then the image's planes. */
    size_t top = 0;
    L->off_rgb = take(&top, (size_t)L->ext * 3 + 32);
    for (int k = 0; k < 4; k++) L->off_crow[k] = take(&top, (size_t)L->ext + 32);
    L->off_ytmp = take(&top, (size_t)L->ext + 32);
    for (int k = 0; k < 3; k++) L->off_up[k] = take(&top, ((size_t)L->ext + 32) * sizeof(int32_t));
    L->local_bytes = top;
    for (int c = 0; c < L->ncomp; c++) {
        size_t plane = (size_t)L->stride[c] * L->comp[c].blocks_high * 8;
        L->off_plane[c] = take(&top, plane);
        L->off_recon[c] = take(&top, plane);
    }
    L->off_fdct = take(&top, nq > 1 ? (size_t)(L->ngroups[0] + L->ngroups[1]) * 512 * sizeof(int16_t) : 0);
    L->scratch_bytes = top;

    /* Block positions once per batch, so the per-image loops never divide. */
    for (int cls = 0; cls < 2; cls++) {
        L->blockpos[cls] = (uint16_t *)malloc(3 * sizeof(uint16_t) * (size_t)(L->nblocks[cls] > 0 ? L->nblocks[cls] : 1));
        if (!L->blockpos[cls]) {
            free_layout(L);
            return HZ_ERR_NOMEM;
        }
        uint16_t *p = L->blockpos[cls];
        for (int c = cls == 0 ? 0 : 1; c < (cls == 0 ? 1 : L->ncomp); c++)
            for (int bi = 0; bi < L->comp[c].blocks_high; bi++)
                for (int bj = 0; bj < L->comp[c].blocks_wide; bj++, p += 3) {
                    p[0] = (uint16_t)c;
                    p[1] = (uint16_t)bi;
                    p[2] = (uint16_t)bj;
                }
    }
    return HZ_OK;
}

/* ---- dispatch ----------------------------------------------------------- */

typedef void (*process_fn)(const hz_job *, const hz_layout *, int, uint8_t *);
typedef int (*reconstruct_fn)(const int16_t *const *, const uint16_t *, const hz_layout *, int, uint8_t *, uint8_t *);

static int use_avx2(void)
{
#ifdef HZ_HAVE_AVX2_KERNELS
    static int cached = -1;
    if (cached < 0) {
        const char *force = getenv("HELMHOLTZ_KERNELS");
        if (force && strcmp(force, "generic") == 0) cached = 0;
        else {
            __builtin_cpu_init();
            cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
        }
    }
    return cached;
#else
    return 0;
#endif
}

const char *hz_kernel_name(void) { return use_avx2() ? "avx2" : "generic"; }

static hz_band_fn pick_band(void)
{
#ifdef HZ_HAVE_AVX2_KERNELS
    if (use_avx2()) return hz_band_kernel_avx2();
#endif
    return hz_band_kernel_generic();
}

static process_fn pick_process(void)
{
#ifdef HZ_HAVE_AVX2_KERNELS
    if (use_avx2()) return hz_process_image_avx2;
#endif
    return hz_process_image_generic;
}

static reconstruct_fn pick_reconstruct(void)
{
#ifdef HZ_HAVE_AVX2_KERNELS
    if (use_avx2()) return hz_reconstruct_image_avx2;
#endif
    return hz_reconstruct_image_generic;
}

/* ---- batch entry points ------------------------------------------------- */

static int check_dims(int n, int height, int width, int channels, int h_samp, int v_samp)
{
    if (n < 1 || height < 1 || width < 1 || height > 65535 || width > 65535) return HZ_ERR_ARG;
    if (channels != 1 && channels != 3) return HZ_ERR_ARG;
    if (!((h_samp == 1 && v_samp == 1) || (h_samp == 2 && v_samp == 1) || (h_samp == 2 && v_samp == 2)))
        return HZ_ERR_ARG;
    return HZ_OK;
}

typedef struct {
    const hz_job *job;
    const hz_layout *layout;
    process_fn fn;
} run_ctx;

static void run_range(void *arg, int64_t begin, int64_t end, uint8_t *scratch)
{
    run_ctx *ctx = (run_ctx *)arg;
    for (int64_t i = begin; i < end; i++) ctx->fn(ctx->job, ctx->layout, (int)i, scratch);
}

/* Several threads on one image: each phase split into row or block-group
 * ranges, the phases separated by the joins of hz_parallel_for. */
typedef struct {
    const hz_job *job;
    const hz_layout *layout;
    hz_band_fn fn;
    int image, quality_row, phase;
} band_ctx;

static void band_range(void *arg, int64_t begin, int64_t end, uint8_t *scratch)
{
    band_ctx *c = (band_ctx *)arg;
    c->fn(c->job, c->layout, c->image, c->quality_row, c->phase, scratch, (int)begin, (int)end);
}

static int run_banded(const hz_job *job, hz_layout *L, int num_threads)
{
    size_t bytes = (L->scratch_bytes + 63) & ~(size_t)63;
    uint8_t *shared = (uint8_t *)aligned_alloc(64, bytes);
    if (!shared) return HZ_ERR_NOMEM;
    L->shared = shared;
    const int groups = L->ngroups[0] + L->ngroups[1];
    band_ctx c = {job, L, pick_band(), 0, 0, HZ_PHASE_ROWS};
    int st = HZ_OK;
#define HZ_PHASE(ph, count)                                                              \
    do {                                                                                 \
        c.phase = (ph);                                                                  \
        if (st == HZ_OK) st = hz_parallel_for((count), num_threads, L->local_bytes, band_range, &c); \
    } while (0)
    for (c.image = 0; c.image < job->n && st == HZ_OK; c.image++) {
        HZ_PHASE(HZ_PHASE_ROWS, hz_plane_units(L));
        hz_finish_planes(L, shared);
        if (job->nq > 1) HZ_PHASE(HZ_PHASE_FDCT, groups);
        for (c.quality_row = 0; c.quality_row < job->nq; c.quality_row++) {
            HZ_PHASE(HZ_PHASE_QUANT, groups);
            if (job->pixels) HZ_PHASE(HZ_PHASE_EMIT, L->height);
        }
    }
#undef HZ_PHASE
    free(shared);
    L->shared = NULL;
    return st;
}

int hz_run(const hz_job *job, int num_threads)
{
    int st = check_dims(job->n, job->height, job->width, job->channels, job->h_samp, job->v_samp);
    if (st != HZ_OK) return st;
    if (job->nq < 1 || !job->images || !job->qualities) return HZ_ERR_ARG;
    for (int64_t k = 0; k < (int64_t)job->nq * job->n; k++)
        if (job->qualities[k] < 1 || job->qualities[k] > 100) return HZ_ERR_ARG;
    hz_layout L;
    if ((st = make_layout(&L, job->height, job->width, job->channels, job->h_samp, job->v_samp, job->nq)) != HZ_OK)
        return st;
    /* Fewer images than threads: share each (large) image among the threads instead. */
    if (num_threads > 1 && job->n < num_threads && (int64_t)job->height * job->width >= (1 << 16)) {
        st = run_banded(job, &L, num_threads);
    } else {
        run_ctx ctx = {job, &L, pick_process()};
        st = hz_parallel_for(job->n, num_threads, L.scratch_bytes, run_range, &ctx);
    }
    free_layout(&L);
    return st;
}

typedef struct {
    const int16_t *const *coefs;
    const uint16_t *tables;
    const hz_layout *layout;
    uint8_t *pixels;
    reconstruct_fn fn;
    int status; /* first failure, atomically set */
} recon_ctx;

static void recon_range(void *arg, int64_t begin, int64_t end, uint8_t *scratch)
{
    recon_ctx *ctx = (recon_ctx *)arg;
    for (int64_t i = begin; i < end; i++) {
        int st = ctx->fn(ctx->coefs, ctx->tables, ctx->layout, (int)i, scratch, ctx->pixels);
        if (st != HZ_OK) __atomic_store_n(&ctx->status, st, __ATOMIC_RELAXED);
    }
}

int hz_reconstruct(const int16_t *const *coefs, const uint16_t *tables, int n, int height, int width, int channels,
                   int h_samp, int v_samp, uint8_t *pixels, int num_threads)
{
    int st = check_dims(n, height, width, channels, h_samp, v_samp);
    if (st != HZ_OK) return st;
    for (int64_t k = 0; k < (int64_t)n * 2 * 64; k++)
        if (tables[k] == 0) return HZ_ERR_ARG;
    hz_layout L;
    if ((st = make_layout(&L, height, width, channels, h_samp, v_samp, 1)) != HZ_OK) return st;
    recon_ctx ctx = {coefs, tables, &L, pixels, pick_reconstruct(), HZ_OK};
    st = hz_parallel_for(n, num_threads, L.scratch_bytes, recon_range, &ctx);
    free_layout(&L);
    return st != HZ_OK ? st : ctx.status;
}
