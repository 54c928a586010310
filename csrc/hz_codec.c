/* Batch driver of the C core: layout, threads, kernel-set dispatch, bit-count bookkeeping. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <x86intrin.h>
#endif

#include "hz_block.h"
#include "hz_codec_internal.h"
#include "hz_entropy.h"
#include "hz_huffman.h"
#include "hz_parallel.h"

/* ---- tables built once ---------------------------------------------------- */

static hz_divisor_table g_divisors[101][2];
static hz_code_lengths g_lengths;
static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;

static void init_tables(void)
{
    for (int q = 1; q <= 100; q++)
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 64; k++) {
                hz_divisor d = hz_make_divisor(hz_quant_value(q, c, k));
                g_divisors[q][c].qval[k] = d.qval;
                g_divisors[q][c].recip[k] = d.recip;
                g_divisors[q][c].shift[k] = d.shift;
            }
    for (int cls = 0; cls < 2; cls++) {
        uint8_t len[256];
        uint16_t code[256];
        hz_derive_table(HZ_STD_BITS[2 * cls], hz_std_huffval(2 * cls), len, code);
        memcpy(g_lengths.dc[cls], len, 16);
        hz_derive_table(HZ_STD_BITS[2 * cls + 1], hz_std_huffval(2 * cls + 1), g_lengths.ac[cls], code);
        for (int sym = 0; sym < 256; sym++) g_lengths.acx[cls][sym] = (uint8_t)(g_lengths.ac[cls][sym] + (sym & 15));
        for (int r = 0; r < 64; r++)
            for (int c = 0; c < 16; c++)
                g_lengths.run_cat[cls][(r << 4) | c] =
                    (uint8_t)((r >> 4) * g_lengths.ac[cls][0xF0] + g_lengths.acx[cls][((r & 15) << 4) | c]);
    }
}

const hz_divisor_table *hz_divisors(int quality, int chroma)
{
    pthread_once(&g_tables_once, init_tables);
    return &g_divisors[quality][chroma];
}

const hz_code_lengths *hz_std_code_lengths(void)
{
    pthread_once(&g_tables_once, init_tables);
    return &g_lengths;
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

void hz_make_layout(hz_layout *L, int height, int width, int channels, int h_samp, int v_samp, int nq, int lanes,
                    int flags)
{
    memset(L, 0, sizeof(*L));
    L->height = height;
    L->width = width;
    L->channels = channels;
    L->lanes = lanes;
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
    for (int k = 0; k < 2; k++) L->ngroups[k] = (L->nblocks[k] + lanes - 1) / lanes;
    const size_t groups = (size_t)(L->ngroups[0] + L->ngroups[1]);
    const int count = (flags & HZ_LAYOUT_COUNT) != 0;

    /* Per-thread row buffers first (local_bytes), then the image's planes. The
     * row buffers carry 64 spare bytes for whole-vector loads and stores. */
    size_t top = 0;
    L->off_rgb = take(&top, (size_t)L->ext * 3 + 64);
    for (int k = 0; k < 4; k++) L->off_crow[k] = take(&top, (size_t)L->ext + 64);
    L->off_ytmp = take(&top, (size_t)L->ext + 64);
    for (int k = 0; k < 3; k++) L->off_up[k] = take(&top, ((size_t)L->ext + 64) * sizeof(int32_t));
    L->off_hist = take(&top, count ? sizeof(hz_count_state) : 0);
    L->local_bytes = top;
    for (int c = 0; c < L->ncomp; c++) {
        size_t plane = (size_t)L->stride[c] * L->comp[c].blocks_high * 8;
        L->off_plane[c] = take(&top, plane + 64);
        L->off_recon[c] = take(&top, (flags & HZ_LAYOUT_RECON) ? plane + 64 : 0);
    }
    L->off_fdct = take(&top, nq > 1 ? groups * (size_t)lanes * 64 * sizeof(int32_t) : 0);
    /* DC values per block in lane order, one zero after them (the predecessor of first blocks) */
    L->off_dc = take(&top, count ? (groups * (size_t)lanes + 1) * sizeof(int32_t) : 0);
    L->off_prev = take(&top, count ? groups * (size_t)lanes * sizeof(int32_t) : 0);
    if (L->ncomp == 3)
        L->dummies = L->comp[1].blocks_wide * L->comp[1].blocks_high * L->h_samp * L->v_samp - L->nblocks[0];
    L->off_count = take(&top, count ? sizeof(hz_count_state) : 0);
    L->scratch_bytes = top;
}

/* ---- kernel sets ---------------------------------------------------------- */

enum { HZ_SET_PORTABLE, HZ_SET_AVX2, HZ_SET_AVX512, HZ_NSETS };
static const char *const g_set_names[HZ_NSETS] = {"portable", "avx2", "avx512"};

static const hz_kernel_set *set_of(int k)
{
    switch (k) {
#ifdef HZ_HAVE_X86_KERNELS
    case HZ_SET_AVX2: return &hz_kernels_avx2;
    case HZ_SET_AVX512: return &hz_kernels_avx512;
#endif
    case HZ_SET_PORTABLE: return &hz_kernels_portable;
    default: return NULL;
    }
}

static int cpu_runs(int k)
{
    if (k == HZ_SET_PORTABLE) return 1;
#ifdef HZ_HAVE_X86_KERNELS
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
                     __builtin_cpu_supports("bmi2");
    if (k == HZ_SET_AVX2) return avx2;
    if (k == HZ_SET_AVX512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512cd");
#endif
    return 0;
}

unsigned hz_kernels_supported(void)
{
    unsigned mask = 0;
    for (int k = 0; k < HZ_NSETS; k++)
        if (set_of(k) && cpu_runs(k)) mask |= 1u << k;
    return mask;
}

const char *hz_kernels_set_name(int k) { return k >= 0 && k < HZ_NSETS ? g_set_names[k] : NULL; }

static const hz_kernel_set *g_active;
static char g_request_error[64];
static pthread_once_t g_select_once = PTHREAD_ONCE_INIT;

static int find_set(const char *name)
{
    for (int k = 0; k < HZ_NSETS; k++)
        if (strcmp(name, g_set_names[k]) == 0) return k;
    return -1;
}

static void select_initial(void)
{
    const char *want = getenv("HELMHOLTZ_KERNELS");
    if (want && *want && strcmp(want, "auto") != 0) {
        int k = find_set(want);
        if (k >= 0 && set_of(k) && cpu_runs(k)) {
            __atomic_store_n(&g_active, set_of(k), __ATOMIC_RELEASE);
        } else {
            strncpy(g_request_error, want, sizeof(g_request_error) - 1);
        }
        return;
    }
    for (int k = HZ_NSETS - 1; k >= 0; k--)
        if (set_of(k) && cpu_runs(k)) {
            __atomic_store_n(&g_active, set_of(k), __ATOMIC_RELEASE);
            return;
        }
}

const hz_kernel_set *hz_active_kernels(void)
{
    pthread_once(&g_select_once, select_initial);
    return __atomic_load_n(&g_active, __ATOMIC_ACQUIRE);
}

const char *hz_kernels_active(void)
{
    const hz_kernel_set *k = hz_active_kernels();
    return k ? k->name : NULL;
}

const char *hz_kernels_request_error(void)
{
    pthread_once(&g_select_once, select_initial);
    return g_request_error[0] ? g_request_error : NULL;
}

int hz_kernels_select(const char *name)
{
    pthread_once(&g_select_once, select_initial);
    int k = name ? find_set(name) : -1;
    if (k < 0) return HZ_ERR_ARG;
    if (!set_of(k) || !cpu_runs(k)) return HZ_ERR_KERNELS;
    __atomic_store_n(&g_active, set_of(k), __ATOMIC_RELEASE);
    g_request_error[0] = 0;
    return HZ_OK;
}

/* ---- bit counting: the parts outside the block loop ------------------------ */

void hz_count_begin(const hz_job *job, const hz_layout *L, uint8_t *base)
{
    hz_count_state *st = (hz_count_state *)(base + L->off_count);
    st->ac_bits = 0;
    st->extra = 0;
    if (job->optimize) memset(st->hist, 0, sizeof(st->hist));
}

/* Where block (bi, bj) of component c keeps its DC value (the block loop's lane order). */
static inline int32_t dc_slot(const hz_layout *L, int c, int bi, int bj)
{
    int32_t at = bi * L->comp[c].blocks_wide + bj;
    if (c > 0) at += L->ngroups[0] * L->lanes;
    if (c > 1) at += L->comp[1].blocks_wide * L->comp[1].blocks_high;
    return at;
}

void hz_count_prepare(const hz_layout *L, uint8_t *base)
{
    int32_t *prev = (int32_t *)(base + L->off_prev), *dc = (int32_t *)(base + L->off_dc);
    const int32_t zero = (L->ngroups[0] + L->ngroups[1]) * L->lanes; /* the slot holding 0 */
    int32_t last[3] = {zero, zero, zero};
    dc[zero] = 0;
    if (L->ncomp == 1) { /* non-interleaved: raster order */
        for (int b = 0; b < L->nblocks[0]; b++) prev[b] = b ? b - 1 : zero;
        return;
    }
    const int hs = L->h_samp, vs = L->v_samp; /* interleaved MCUs */
    for (int my = 0; my < L->comp[1].blocks_high; my++)
        for (int mx = 0; mx < L->comp[1].blocks_wide; mx++)
            for (int c = 0; c < 3; c++) {
                const int ch = c ? 1 : hs, cv = c ? 1 : vs;
                for (int y = 0; y < cv; y++)
                    for (int x = 0; x < ch; x++) {
                        const int bi = my * cv + y, bj = mx * ch + x;
                        if (bi < L->comp[c].blocks_high && bj < L->comp[c].blocks_wide) {
                            const int32_t at = dc_slot(L, c, bi, bj);
                            prev[at] = last[c];
                            last[c] = at;
                        }
                    }
            }
}

/* Bit length of a (0 for 0) without a branch: most DC differences are 0 or small, unpredictably. */
static inline int nbits_branchless(uint32_t a) { return 31 - __builtin_clz(2 * a + 1); }

int64_t hz_count_finish(const hz_job *job, const hz_layout *L, uint8_t *base)
{
    hz_count_state *st = (hz_count_state *)(base + L->off_count);
    const int32_t *dc = (const int32_t *)(base + L->off_dc), *prev = (const int32_t *)(base + L->off_prev);
    const hz_code_lengths *lens = hz_std_code_lengths();
    int64_t bits = st->ac_bits;
    /* Each real block codes DC minus its scan-order predecessor's (the sum does not
     * care in which order the blocks are visited); a dummy block codes a zero
     * difference and an EOB. */
    for (int cls = 0; cls < 2; cls++) {
        const int32_t first = cls ? L->ngroups[0] * L->lanes : 0, end = first + L->nblocks[cls];
        if (job->optimize) {
            int64_t *hist = st->hist[2 * cls], extra = 0;
            for (int32_t b = first; b < end; b++) {
                const int32_t d = dc[b] - dc[prev[b]];
                const int nb = hz_nbits((uint32_t)(d < 0 ? -d : d));
                hist[nb]++;
                extra += nb;
            }
            st->extra += extra;
        } else {
            const uint8_t *len = lens->dc[cls];
            int64_t sum = 0;
            for (int32_t b = first; b < end; b++) {
                const int32_t d = dc[b] - dc[prev[b]];
                const int nb = nbits_branchless((uint32_t)(d < 0 ? -d : d));
                sum += len[nb] + nb;
            }
            bits += sum;
        }
    }
    if (job->optimize) {
        st->hist[0][0] += L->dummies;
        st->hist[1][0] += L->dummies;
    } else {
        bits += (int64_t)L->dummies * (lens->dc[0][0] + lens->ac[0][0]);
    }
    if (!job->optimize) return bits;
    /* Optimal tables from the symbol counts (jchuff.c), then count x code length. */
    bits = st->extra;
    for (int s = 0; s < (L->ncomp == 1 ? 2 : 4); s++) {
        uint8_t counts[16], vals[256];
        int nvals = 0;
        if (hz_optimal_table(st->hist[s], counts, vals, &nvals) != HZ_OK) return -1;
        for (int l = 1, k = 0; l <= 16; l++)
            for (int end = k + counts[l - 1]; k < end; k++) bits += st->hist[s][vals[k]] * l;
    }
    return bits;
}

/* ---- batch entry points ------------------------------------------------- */

static int check_sampling(int h_samp, int v_samp)
{
    return (h_samp == 1 && v_samp == 1) || (h_samp == 2 && v_samp == 1) || (h_samp == 2 && v_samp == 2);
}

static int check_image(int height, int width, int channels)
{
    return height >= 1 && width >= 1 && height <= 65535 && width <= 65535 && (channels == 1 || channels == 3);
}

typedef struct {
    const hz_job *job;
    const hz_kernel_set *K;
    const int32_t *order; /* images in this order, or NULL for 0..n-1 */
    int flags, stream;
} run_ctx;

static int same_dims(const int32_t *a, const int32_t *b) { return a[0] == b[0] && a[1] == b[1] && a[2] == b[2]; }

/* Images i and j use the same quality in every quality row. */
static int same_qualities(const hz_job *job, int i, int j)
{
    for (int q = 0; q < job->nq; q++)
        if (job->qualities[(ptrdiff_t)q * job->n + i] != job->qualities[(ptrdiff_t)q * job->n + j]) return 0;
    return 1;
}

static void run_range(void *arg, int64_t begin, int64_t end, uint8_t *scratch)
{
    run_ctx *ctx = (run_ctx *)arg;
    const hz_job *job = ctx->job;
    hz_layout L;
    const int32_t *have = NULL;
    for (int64_t k = begin; k < end; k++) {
        const int i = ctx->order ? ctx->order[k] : (int)k;
        const int32_t *d = job->dims + 3 * (ptrdiff_t)i;
        if (!have || !same_dims(have, d)) { /* uniform batches compute the layout once per range */
            hz_make_layout(&L, d[0], d[1], d[2], job->h_samp, job->v_samp, job->nq, ctx->K->lanes, ctx->flags);
            L.stream = ctx->stream;
            have = d;
        }
        if (k + 1 < end && hz_pairable(&L)) { /* small images two at a time: no idle chroma lanes */
            const int j = ctx->order ? ctx->order[k + 1] : (int)k + 1;
            if (same_dims(d, job->dims + 3 * (ptrdiff_t)j) && same_qualities(job, i, j)) {
                ctx->K->process_pair(job, &L, i, j, scratch);
                k++;
                continue;
            }
        }
        ctx->K->process_image(job, &L, i, scratch);
    }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (ctx->stream) __builtin_ia32_sfence(); /* the streaming stores are visible before the join */
#endif
}

/* Several threads on one image: each phase split into row or block-group
 * ranges, the phases separated by the joins of hz_parallel_for. */
typedef struct {
    const hz_job *job;
    const hz_layout *layout;
    const hz_kernel_set *K;
    int image, quality_row, phase;
} band_ctx;

static void band_range(void *arg, int64_t begin, int64_t end, uint8_t *scratch)
{
    band_ctx *c = (band_ctx *)arg;
    c->K->band(c->job, c->layout, c->image, c->quality_row, c->phase, scratch, (int)begin, (int)end);
}

static int run_banded(const hz_job *job, const hz_kernel_set *K, int i, int flags, int num_threads)
{
    const int32_t *d = job->dims + 3 * (ptrdiff_t)i;
    hz_layout L;
    hz_make_layout(&L, d[0], d[1], d[2], job->h_samp, job->v_samp, job->nq, K->lanes, flags);
    size_t bytes = (L.scratch_bytes + 63) & ~(size_t)63;
    uint8_t *shared = (uint8_t *)aligned_alloc(64, bytes);
    if (!shared) return HZ_ERR_NOMEM;
    memset(shared, 0, bytes);
    L.shared = shared;
    const int groups = L.ngroups[0] + L.ngroups[1];
    band_ctx c = {job, &L, K, i, 0, HZ_PHASE_ROWS};
    int st = HZ_OK;
#define HZ_PHASE(ph, count)                                                                          \
    do {                                                                                             \
        c.phase = (ph);                                                                              \
        if (st == HZ_OK) st = hz_parallel_for((count), num_threads, L.local_bytes, band_range, &c); \
    } while (0)
    HZ_PHASE(HZ_PHASE_ROWS, hz_plane_units(&L));
    hz_finish_planes(&L, shared);
    if (job->bits) hz_count_prepare(&L, shared);
    if (job->nq > 1) HZ_PHASE(HZ_PHASE_FDCT, groups);
    for (c.quality_row = 0; c.quality_row < job->nq && st == HZ_OK; c.quality_row++) {
        if (job->bits) hz_count_begin(job, &L, shared);
        HZ_PHASE(HZ_PHASE_QUANT, groups);
        if (job->bits && st == HZ_OK) job->bits[(ptrdiff_t)c.quality_row * job->n + i] = hz_count_finish(job, &L, shared);
        if (job->pixels) HZ_PHASE(HZ_PHASE_EMIT, L.height);
    }
#undef HZ_PHASE
    free(shared);
    return st;
}

/* Sort key for ragged batches: large images first, so the last ones to start are small. */
typedef struct {
    int64_t pixels;
    int32_t index;
} size_key;

static int larger_first(const void *a, const void *b)
{
    const size_key *x = (const size_key *)a, *y = (const size_key *)b;
    if (x->pixels != y->pixels) return x->pixels > y->pixels ? -1 : 1;
    return x->index - y->index;
}

int hz_run(const hz_job *job, int num_threads)
{
    const hz_kernel_set *K = hz_active_kernels();
    if (!K) return HZ_ERR_KERNELS;
    if (!job || job->n < 1 || !job->src || !job->dims || job->nq < 1 || !job->qualities) return HZ_ERR_ARG;
    if (!check_sampling(job->h_samp, job->v_samp)) return HZ_ERR_ARG;
    if (!job->pixels && !job->coefs && !job->bits) return HZ_ERR_ARG;
    if (num_threads < 1) num_threads = 1;
    const int n = job->n;
    for (int64_t k = 0; k < (int64_t)job->nq * n; k++)
        if (job->qualities[k] < 1 || job->qualities[k] > 100) return HZ_ERR_ARG;
    const int flags = (job->pixels ? HZ_LAYOUT_RECON : 0) | (job->bits ? HZ_LAYOUT_COUNT : 0);

    /* One pass over the sizes: validity, the largest scratch, the total work. */
    size_t scratch = 0;
    int64_t total = 0, largest = 0;
    int ragged = 0;
    for (int i = 0; i < n; i++) {
        const int32_t *d = job->dims + 3 * (ptrdiff_t)i;
        if (!job->src[i] || !check_image(d[0], d[1], d[2])) return HZ_ERR_ARG;
        const int64_t px = (int64_t)d[0] * d[1];
        total += px;
        if (px > largest) largest = px;
        if (i == 0 || !same_dims(d, d - 3)) {
            if (i > 0) ragged = 1;
            hz_layout L;
            hz_make_layout(&L, d[0], d[1], d[2], job->h_samp, job->v_samp, job->nq, K->lanes, flags);
            const size_t need = hz_pairable(&L) ? 2 * L.scratch_bytes - L.local_bytes : L.scratch_bytes;
            if (need > scratch) scratch = need;
        }
    }

    /* An image that alone outweighs a thread's share is shared by all threads;
     * the others are spread over the threads, one image per thread at a time. */
    int32_t *order = NULL;
    int rest = n, st = HZ_OK;
    const int share = num_threads > 1 && largest >= (1 << 16) && largest * num_threads > total;
    if (ragged || share) {
        size_key *keys = (size_key *)malloc(sizeof(size_key) * (size_t)n);
        order = (int32_t *)malloc(sizeof(int32_t) * (size_t)n);
        if (!keys || !order) {
            free(keys);
            free(order);
            return HZ_ERR_NOMEM;
        }
        for (int i = 0; i < n; i++) {
            keys[i].pixels = (int64_t)job->dims[3 * (ptrdiff_t)i] * job->dims[3 * (ptrdiff_t)i + 1];
            keys[i].index = i;
        }
        if (ragged) qsort(keys, (size_t)n, sizeof(size_key), larger_first);
        rest = 0;
        for (int k = 0; k < n && st == HZ_OK; k++) {
            if (share && keys[k].pixels >= (1 << 16) && keys[k].pixels * num_threads > total)
                st = run_banded(job, K, keys[k].index, flags, num_threads);
            else
                order[rest++] = keys[k].index;
        }
        free(keys);
    }
    /* Outputs much larger than the caches are streamed to memory. */
    const int stream = job->pixels && (int64_t)job->nq * total * 3 >= ((int64_t)16 << 20);
    if (st == HZ_OK && rest > 0) {
        run_ctx ctx = {job, K, order, flags, stream};
        st = hz_parallel_for_chunk(rest, num_threads, ragged ? 1 : 0, scratch, run_range, &ctx);
    }
    free(order);
    return st;
}

typedef struct {
    const int16_t *const *coefs;
    const uint16_t *tables;
    const hz_layout *layout;
    uint8_t *pixels;
    const hz_kernel_set *K;
    int status; /* first failure, atomically set */
} recon_ctx;

static void recon_range(void *arg, int64_t begin, int64_t end, uint8_t *scratch)
{
    recon_ctx *ctx = (recon_ctx *)arg;
    for (int64_t i = begin; i < end; i++) {
        int st = ctx->K->reconstruct_image(ctx->coefs, ctx->tables, ctx->layout, (int)i, scratch, ctx->pixels);
        if (st != HZ_OK) __atomic_store_n(&ctx->status, st, __ATOMIC_RELAXED);
    }
}

int hz_reconstruct(const int16_t *const *coefs, const uint16_t *tables, int n, int height, int width, int channels,
                   int h_samp, int v_samp, uint8_t *pixels, int num_threads)
{
    const hz_kernel_set *K = hz_active_kernels();
    if (!K) return HZ_ERR_KERNELS;
    if (n < 1 || !check_image(height, width, channels) || !check_sampling(h_samp, v_samp)) return HZ_ERR_ARG;
    for (int64_t k = 0; k < (int64_t)n * 2 * 64; k++)
        if (tables[k] == 0) return HZ_ERR_ARG;
    hz_layout L;
    hz_make_layout(&L, height, width, channels, h_samp, v_samp, 1, K->lanes, HZ_LAYOUT_RECON);
    recon_ctx ctx = {coefs, tables, &L, pixels, K, HZ_OK};
    int st = hz_parallel_for(n, num_threads, L.scratch_bytes, recon_range, &ctx);
    return st != HZ_OK ? st : ctx.status;
}

int hz_stage_ticks(const uint8_t *images, int n, int height, int width, int h_samp, int v_samp, int quality,
                   int repeats, uint64_t out[HZ_NSTAGES])
{
    const hz_kernel_set *K = hz_active_kernels();
    if (!K) return HZ_ERR_KERNELS;
    if (!images || n < 1 || repeats < 1 || !check_image(height, width, 3) || !check_sampling(h_samp, v_samp) ||
        quality < 1 || quality > 100)
        return HZ_ERR_ARG;
    hz_layout L;
    hz_make_layout(&L, height, width, 3, h_samp, v_samp, 2, K->lanes, HZ_LAYOUT_RECON | HZ_LAYOUT_COUNT);
    return K->stage_ticks(images, n, &L, quality, repeats, out);
}

double hz_cycles_per_tick(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    double best = 0;
    for (int trial = 0; trial < 50; trial++) { /* the fastest trial: the least disturbed by other work */
        const int64_t steps = 1 << 18;
        int64_t x = 0;
        _mm_lfence();
        uint64_t t0 = __rdtsc();
        for (int64_t k = 0; k < steps; k++) __asm__ volatile("add $1, %0" : "+r"(x)); /* one cycle each */
        _mm_lfence();
        uint64_t t1 = __rdtsc();
        double rate = (double)steps / (double)(t1 - t0);
        if (rate > best) best = rate;
    }
    return best;
#else
    return 0;
#endif
}
