/* Batch entropy coding of JPEG coefficients; see hz_entropy.h. */
#include "hz_entropy.h"
#include "hz_huffman.h"

#include <pthread.h>

#include "hz_parallel.h"
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* ---- nonzero mask of a natural-order block -------------------------------- */
static inline uint64_t nonzero_mask(const int16_t *b)
{
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    uint64_t m = 0;
    int j;
    for (j = 0; j < 4; j++) {
        __m128i lo = _mm_loadu_si128((const __m128i *)(b + 16 * j));
        __m128i hi = _mm_loadu_si128((const __m128i *)(b + 16 * j + 8));
        /* signed saturation keeps every nonzero int16 nonzero */
        __m128i packed = _mm_packs_epi16(lo, hi);
        uint32_t z = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(packed, zero));
        m |= (uint64_t)(~z & 0xFFFFu) << (16 * j);
    }
    return m;
#else
    return hz_nonzero_mask_portable(b);
#endif
}

/* ---- natural -> zigzag nonzero mask ------------------------------------------ */
/* ZZ_LUT[r][b]: the zigzag-position bits of the nonzero pattern b of row r. */
static uint64_t ZZ_LUT[8][256];
static pthread_once_t zz_once = PTHREAD_ONCE_INIT;

static void zz_build(void)
{
    int r, b, j;
    for (r = 0; r < 8; r++)
        for (b = 0; b < 256; b++) {
            uint64_t m = 0;
            for (j = 0; j < 8; j++)
                if ((b >> j) & 1) m |= (uint64_t)1 << HZ_UNZIGZAG[r * 8 + j];
            ZZ_LUT[r][b] = m;
        }
}

/* hz_zigzag_mask, by table for dense blocks (one lookup per row instead of one
 * step per nonzero coefficient). */
static inline uint64_t zigzag_mask(uint64_t natural)
{
    uint64_t fewer;
    natural &= ~(uint64_t)1;
    fewer = natural & (natural - 1);
    if ((fewer & (fewer - 1)) == 0) return hz_zigzag_mask(natural); /* at most 2 nonzero AC */
    return ZZ_LUT[0][natural & 0xFF] | ZZ_LUT[1][(natural >> 8) & 0xFF] | ZZ_LUT[2][(natural >> 16) & 0xFF] |
           ZZ_LUT[3][(natural >> 24) & 0xFF] | ZZ_LUT[4][(natural >> 32) & 0xFF] | ZZ_LUT[5][(natural >> 40) & 0xFF] |
           ZZ_LUT[6][(natural >> 48) & 0xFF] | ZZ_LUT[7][natural >> 56];
}

/* ---- geometry --------------------------------------------------------------- */
typedef struct {
    const int16_t *comps[3];
    int ncomp;
    int64_t n;
    int bh[3], bw[3];
    int hs, vs;         /* luma sampling factors */
    int mcus_w, mcus_h; /* interleaved scans */
    int64_t stride[3];  /* int16 elements per image, per component */
} geom_t;

static int geom_init(geom_t *g, const int16_t *const comps[3], int ncomp, int64_t n, const int *bh, const int *bw,
                     int hs, int vs)
{
    int c;
    if (n < 0 || (ncomp != 1 && ncomp != 3) || !comps || !bh || !bw) return HZ_ERR_ARG;
    if (hs < 1 || hs > 2 || vs < 1 || vs > 2) return HZ_ERR_ARG;
    memset(g, 0, sizeof(*g));
    g->ncomp = ncomp; g->n = n; g->hs = hs; g->vs = vs;
    for (c = 0; c < ncomp; c++) {
        if (bh[c] < 1 || bw[c] < 1 || (n > 0 && !comps[c])) return HZ_ERR_ARG;
        g->comps[c] = comps[c]; g->bh[c] = bh[c]; g->bw[c] = bw[c];
        g->stride[c] = (int64_t)bh[c] * bw[c] * 64;
    }
    if (ncomp == 3) {
        g->mcus_w = (bw[0] + hs - 1) / hs;
        g->mcus_h = (bh[0] + vs - 1) / vs;
        for (c = 1; c < 3; c++)
            if (bw[c] != g->mcus_w || bh[c] != g->mcus_h) return HZ_ERR_ARG;
    }
    return HZ_OK;
}

/* Visit every block of image i in scan order: fn(ctx, comp, block or NULL for a dummy). */
#define FOR_EACH_BLOCK(g, i, BODY)                                                                      \
    do {                                                                                                \
        if ((g)->ncomp == 1) {                                                                          \
            const int16_t *blk_ = (g)->comps[0] + (i) * (g)->stride[0];                                 \
            int64_t nb_ = (int64_t)(g)->bh[0] * (g)->bw[0], b_;                                         \
            for (b_ = 0; b_ < nb_; b_++) {                                                              \
                const int comp = 0;                                                                     \
                const int16_t *block = blk_ + b_ * 64;                                                  \
                BODY                                                                                    \
            }                                                                                           \
        } else {                                                                                        \
            int my_, mx_, c_, y_, x_;                                                                   \
            for (my_ = 0; my_ < (g)->mcus_h; my_++)                                                     \
                for (mx_ = 0; mx_ < (g)->mcus_w; mx_++)                                                 \
                    for (c_ = 0; c_ < 3; c_++) {                                                        \
                        int hs_ = c_ ? 1 : (g)->hs, vs_ = c_ ? 1 : (g)->vs;                             \
                        const int16_t *base_ = (g)->comps[c_] + (i) * (g)->stride[c_];                  \
                        for (y_ = 0; y_ < vs_; y_++) {                                                  \
                            int by_ = my_ * vs_ + y_;                                                   \
                            for (x_ = 0; x_ < hs_; x_++) {                                              \
                                int bx_ = mx_ * hs_ + x_;                                               \
                                const int comp = c_;                                                    \
                                const int16_t *block = (by_ < (g)->bh[c_] && bx_ < (g)->bw[c_])         \
                                                           ? base_ + ((int64_t)by_ * (g)->bw[c_] + bx_) * 64 \
                                                           : (const int16_t *)0;                        \
                                BODY                                                                    \
                            }                                                                           \
                        }                                                                               \
                    }                                                                                   \
        }                                                                                               \
    } while (0)

/* ---- standard tables -------------------------------------------------------- */
typedef struct {
    uint8_t len[4][256];
    uint16_t code[4][256];
    uint8_t bits[4][16];
    uint8_t huffval[4][256];
    int nvals[4];
} tables_t;

static void std_tables(tables_t *t)
{
    int s;
    for (s = 0; s < 4; s++) {
        const uint8_t *vals = hz_std_huffval(s);
        memcpy(t->bits[s], HZ_STD_BITS[s], 16);
        t->nvals[s] = hz_derive_table(HZ_STD_BITS[s], vals, t->len[s], t->code[s]);
        memcpy(t->huffval[s], vals, (size_t)t->nvals[s]);
    }
}

/* ---- jpeg_gen_optimal_table ----------------------------------------------- */
static inline int heap_less(const int64_t *f, int a, int b)
{
    return f[a] < f[b] || (f[a] == f[b] && a > b);
}

static void heap_down(int *h, int n, int i, const int64_t *f)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, s = i, t;
        if (l < n && heap_less(f, h[l], h[s])) s = l;
        if (r < n && heap_less(f, h[r], h[s])) s = r;
        if (s == i) return;
        t = h[i]; h[i] = h[s]; h[s] = t;
        i = s;
    }
}

static int heap_pop(int *h, int *n, const int64_t *f)
{
    int top = h[0];
    h[0] = h[--*n];
    heap_down(h, *n, 0, f);
    return top;
}

static void heap_push(int *h, int *n, int v, const int64_t *f)
{
    int i = (*n)++;
    h[i] = v;
    while (i > 0) {
        int parent = (i - 1) / 2, t;
        if (!heap_less(f, h[i], h[parent])) break;
        t = h[i]; h[i] = h[parent]; h[parent] = t;
        i = parent;
    }
}

int hz_optimal_table(const int64_t *freq_in, uint8_t *bits_out, uint8_t *huffval, int *nsymbols)
{
    /* Same procedure as jchuff.c, over the symbols present (ascending, with the
     * reserved pseudo-symbol 256 last). Ties pick the larger symbol, exactly
     * as the original's `<=` scans do. */
    int64_t f[257];
    int sym[257], codesize[257], others[257];
    int bits[33];
    int heap[257];
    int m = 0, i, j, p, hn;
    if (!freq_in || !bits_out || !huffval) return HZ_ERR_ARG;
    for (i = 0; i < 256; i++) {
        if (freq_in[i] < 0) return HZ_ERR_ARG;
        if (freq_in[i]) { sym[m] = i; f[m] = freq_in[i]; m++; }
    }
    sym[m] = 256; f[m] = 1; m++;
    for (i = 0; i < m; i++) { codesize[i] = 0; others[i] = -1; }
    /* A binary heap ordered by (frequency ascending, symbol descending) pops
     * exactly the c1, c2 that libjpeg's two linear scans find. */
    hn = m;
    for (i = 0; i < m; i++) heap[i] = i;
    for (i = m / 2 - 1; i >= 0; i--) heap_down(heap, hn, i, f);
    while (hn >= 2) {
        int c1 = heap_pop(heap, &hn, f);
        int c2 = heap_pop(heap, &hn, f);
        f[c1] += f[c2];
        f[c2] = 0;
        heap_push(heap, &hn, c1, f);
        codesize[c1]++;
        while (others[c1] >= 0) { c1 = others[c1]; codesize[c1]++; }
        others[c1] = c2;
        codesize[c2]++;
        while (others[c2] >= 0) { c2 = others[c2]; codesize[c2]++; }
    }
    memset(bits, 0, sizeof(bits));
    for (i = 0; i < m; i++) {
        if (codesize[i]) {
            if (codesize[i] > 32) return HZ_ERR_ARG;
            bits[codesize[i]]++;
        }
    }
    for (i = 32; i > 16; i--) {
        while (bits[i] > 0) {
            j = i - 2;
            while (bits[j] == 0) j--;
            bits[i] -= 2;
            bits[i - 1]++;
            bits[j + 1] += 2;
            bits[j]--;
        }
    }
    while (i > 0 && bits[i] == 0) i--;
    bits[i]--; /* drop the pseudo-symbol 256 */
    for (i = 1; i <= 16; i++) bits_out[i - 1] = (uint8_t)bits[i];
    { /* symbols by code size, then ascending (a counting sort); 256 (the last) excluded */
        int cnt[33], pos[33];
        memset(cnt, 0, sizeof(cnt));
        for (j = 0; j < m - 1; j++) cnt[codesize[j]]++;
        pos[1] = 0;
        for (j = 2; j <= 32; j++) pos[j] = pos[j - 1] + cnt[j - 1];
        p = pos[32] + cnt[32];
        for (j = 0; j < m - 1; j++)
            if (codesize[j]) huffval[pos[codesize[j]]++] = (uint8_t)sym[j];
    }
    if (nsymbols) *nsymbols = p;
    return HZ_OK;
}

/* ---- per-image work ---------------------------------------------------------- */

/* Bits with fixed tables (std); returns -1 on out-of-range coefficients. */
static int64_t image_bits_fixed(const geom_t *g, int64_t i, const tables_t *t)
{
    int64_t bits = 0;
    int prev[3] = {0, 0, 0}, bad = 0;
    FOR_EACH_BLOCK(g, i, {
        const int s = comp ? 2 : 0;
        if (block) {
            bits += hz_block_bits(block, zigzag_mask(nonzero_mask(block)), block[0] - prev[comp], t->len[s],
                                  t->len[s + 1], &bad);
            prev[comp] = block[0];
        } else { /* dummy: DC difference 0, all AC zero */
            bits += t->len[s][0] + t->len[s + 1][0];
        }
    });
    return bad ? -1 : bits;
}

/* Symbol counts freq[4][256]; returns the extra bits, or -1 when out of range. */
static int64_t image_gather(const geom_t *g, int64_t i, int64_t *freq)
{
    int64_t extra = 0;
    int prev[3] = {0, 0, 0}, bad = 0;
    memset(freq, 0, sizeof(int64_t) * 4 * 256);
    FOR_EACH_BLOCK(g, i, {
        const int s = comp ? 2 : 0;
        if (block) {
            extra += hz_block_gather(block, zigzag_mask(nonzero_mask(block)), block[0] - prev[comp],
                                     freq + s * 256, freq + (s + 1) * 256, &bad);
            prev[comp] = block[0];
        } else {
            freq[s * 256]++;
            freq[(s + 1) * 256]++;
        }
    });
    return bad ? -1 : extra;
}

static int optimal_tables(const int64_t *freq, int nslots, tables_t *t)
{
    int s, st;
    for (s = 0; s < nslots; s++) {
        st = hz_optimal_table(freq + s * 256, t->bits[s], t->huffval[s], &t->nvals[s]);
        if (st != HZ_OK) return st;
        hz_derive_table(t->bits[s], t->huffval[s], t->len[s], t->code[s]);
    }
    return HZ_OK;
}

static int64_t image_bits_optimal(const geom_t *g, int64_t i)
{
    int64_t freq[4 * 256], bits;
    uint8_t counts[16], vals[256];
    int s, k, l, nvals, nslots = g->ncomp == 1 ? 2 : 4;
    bits = image_gather(g, i, freq);
    if (bits < 0) return -1;
    for (s = 0; s < nslots; s++) {
        const int64_t *f = freq + s * 256;
        if (hz_optimal_table(f, counts, vals, &nvals) != HZ_OK) return -1;
        /* sum of frequency x code length, walking the symbols in code order */
        for (l = 1, k = 0; l <= 16; l++) {
            int end = k + counts[l - 1];
            for (; k < end; k++) bits += f[vals[k]] * l;
        }
    }
    return bits;
}

/* ---- header ---------------------------------------------------------------- */
typedef struct {
    uint8_t *buf;
    int64_t pos, cap;
} bytes_t;

static void put8(bytes_t *b, int v)
{
    if (b->pos < b->cap) b->buf[b->pos] = (uint8_t)v;
    b->pos++;
}
static void put16(bytes_t *b, int v) { put8(b, v >> 8); put8(b, v & 0xFF); }

static void write_header(bytes_t *b, const geom_t *g, int height, int width, const uint16_t *qt, const tables_t *t)
{
    static const uint8_t app0[16] = {0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0};
    int nc = g->ncomp, ntab = nc == 1 ? 1 : 2, k, c, s;
    put16(b, 0xFFD8);
    put16(b, 0xFFE0);
    for (k = 0; k < 16; k++) put8(b, app0[k]);
    for (c = 0; c < ntab; c++) { /* DQT, 8-bit, zigzag order */
        put16(b, 0xFFDB); put16(b, 67); put8(b, c);
        for (k = 0; k < 64; k++) put8(b, qt[c * 64 + HZ_ZIGZAG[k]]);
    }
    put16(b, 0xFFC0); put16(b, 8 + 3 * nc); put8(b, 8); put16(b, height); put16(b, width); put8(b, nc);
    for (c = 0; c < nc; c++) {
        put8(b, c + 1);
        put8(b, c ? 0x11 : (g->hs << 4) | g->vs);
        put8(b, c ? 1 : 0);
    }
    for (s = 0; s < 2 * ntab; s++) { /* DC0, AC0, DC1, AC1 */
        put16(b, 0xFFC4); put16(b, 2 + 1 + 16 + t->nvals[s]);
        put8(b, ((s & 1) << 4) | (s >> 1));
        for (k = 0; k < 16; k++) put8(b, t->bits[s][k]);
        for (k = 0; k < t->nvals[s]; k++) put8(b, t->huffval[s][k]);
    }
    put16(b, 0xFFDA); put16(b, 6 + 2 * nc); put8(b, nc);
    for (c = 0; c < nc; c++) { put8(b, c + 1); put8(b, c ? 0x11 : 0x00); }
    put8(b, 0); put8(b, 63); put8(b, 0);
}

/* The header of the last image coded with the standard tables, per thread:
 * consecutive images with the same quantisation tables share it. */
typedef struct {
    uint16_t qt[128];
    int height, width, ncomp;
    uint8_t bytes[HZ_MAX_HEADER_BYTES];
    int64_t len;
    int valid;
} header_cache_t;

/* Write image i at buf[0..cap); returns its size, -1 (bad coefficients) or -2 (no room). */
static int64_t image_encode(const geom_t *g, int64_t i, int height, int width, const uint16_t *qt, int optimize,
                            const tables_t *std, header_cache_t *cache, uint8_t *buf, int64_t cap)
{
    tables_t opt;
    const tables_t *t = std;
    hz_bitwriter w;
    int64_t hlen;
    int prev[3] = {0, 0, 0}, bad = 0;
    if (optimize) {
        int64_t freq[4 * 256];
        bytes_t b = {buf, 0, cap};
        if (image_gather(g, i, freq) < 0) return -1;
        if (optimal_tables(freq, g->ncomp == 1 ? 2 : 4, &opt) != HZ_OK) return -1;
        t = &opt;
        write_header(&b, g, height, width, qt, t);
        hlen = b.pos;
    } else {
        if (!cache->valid || memcmp(cache->qt, qt, sizeof(cache->qt)) != 0 || cache->height != height ||
            cache->width != width || cache->ncomp != g->ncomp) {
            bytes_t b = {cache->bytes, 0, HZ_MAX_HEADER_BYTES};
            write_header(&b, g, height, width, qt, t);
            memcpy(cache->qt, qt, sizeof(cache->qt));
            cache->height = height;
            cache->width = width;
            cache->ncomp = g->ncomp;
            cache->len = b.pos;
            cache->valid = 1;
        }
        hlen = cache->len;
        if (hlen > cap) return -2;
        memcpy(buf, cache->bytes, (size_t)hlen);
    }
    hz_bw_init(&w, buf, hlen, cap);
    FOR_EACH_BLOCK(g, i, {
        const int s = comp ? 2 : 0;
        if (block) {
            hz_block_encode(&w, block, zigzag_mask(nonzero_mask(block)), block[0] - prev[comp], t->len[s],
                            t->code[s], t->len[s + 1], t->code[s + 1], &bad);
            prev[comp] = block[0];
        } else {
            hz_bw_put(&w, t->code[s][0], t->len[s][0]);
            hz_bw_put(&w, t->code[s + 1][0], t->len[s + 1][0]);
        }
    });
    if (bad) return -1;
    hz_bw_flush(&w);
    hz_bw_byte(&w, 0xFF);
    hz_bw_byte(&w, 0xD9);
    if (w.overflow || hlen > cap) return -2;
    return w.pos;
}

/* ---- threading ---------------------------------------------------------------- */
enum { JOB_BITS, JOB_FREQ, JOB_BOUNDS, JOB_ENCODE };

typedef struct {
    const geom_t *g;
    int kind, optimize, height, width;
    const uint16_t *qtables;
    const tables_t *std;
    int64_t *out;   /* bits / bounds / sizes / extra */
    int64_t *freq;  /* JOB_FREQ */
    uint8_t *bytes; /* JOB_ENCODE */
    const int64_t *offsets;
    const int16_t *const *rcomps; /* ragged batches: per-image components and sizes */
    const int32_t *rdims;
    int hs, vs;         /* luma sampling factors of colour images */
    int ghs, gvs;       /* the factors a grayscale image's SOF names */
    int status;     /* first failure, atomically set */
} job_t;

/* The geometry of image i of a ragged batch, as a batch of one. */
static int ragged_geom(const job_t *j, int64_t i, geom_t *g)
{
    const int32_t *d = j->rdims + 3 * i;
    int ncomp = d[2] == 1 ? 1 : 3, bh[3], bw[3], c;
    int hs = ncomp == 1 ? 1 : j->hs, vs = ncomp == 1 ? 1 : j->vs;
    if (d[0] < 1 || d[1] < 1 || d[0] > 65535 || d[1] > 65535 || (d[2] != 1 && d[2] != 3)) return HZ_ERR_ARG;
    for (c = 0; c < ncomp; c++) {
        int ch = c ? 1 : hs, cv = c ? 1 : vs;
        int w = (d[1] * ch + hs - 1) / hs, h = (d[0] * cv + vs - 1) / vs;
        bw[c] = (w + 7) / 8;
        bh[c] = (h + 7) / 8;
    }
    /* the SOF of a grayscale file names its own factors: 1x1 for Pillow's default,
     * the requested ones for an explicit subsampling (Pillow) */
    int st = geom_init(g, j->rcomps + 3 * i, ncomp, 1, bh, bw, ncomp == 1 ? j->ghs : hs, ncomp == 1 ? j->gvs : vs);
    if (st == HZ_OK && ncomp == 1) g->mcus_w = g->mcus_h = 0;
    return st;
}

/* hz_parallel_for body: images [begin, end). The per-thread scratch (zeroed
 * by hz_parallel_for) holds the header cache of standard-table encodes. */
static void run_range(void *arg, int64_t begin, int64_t end, uint8_t *scratch)
{
    job_t *j = (job_t *)arg;
    header_cache_t *cache = (j->kind == JOB_ENCODE && !j->optimize) ? (header_cache_t *)scratch : NULL;
    for (int64_t i = begin; i < end; i++) {
        int64_t r;
        int fail = HZ_OK;
        geom_t one;
        const geom_t *g = j->g;
        int64_t at = i; /* the image's index in g */
        int height = j->height, width = j->width;
        if (j->rcomps) {
            if ((fail = ragged_geom(j, i, &one)) != HZ_OK) {
                __atomic_store_n(&j->status, fail, __ATOMIC_RELAXED);
                return;
            }
            g = &one;
            at = 0;
            height = j->rdims[3 * i];
            width = j->rdims[3 * i + 1];
        }
        switch (j->kind) {
        case JOB_BITS:
        case JOB_BOUNDS:
            r = j->optimize ? image_bits_optimal(g, at) : image_bits_fixed(g, at, j->std);
            if (r < 0) { fail = HZ_ERR_ARG; break; }
            j->out[i] = j->kind == JOB_BITS ? r : HZ_MAX_HEADER_BYTES + 2 * ((r + 7) / 8);
            break;
        case JOB_FREQ:
            r = image_gather(g, at, j->freq + i * 4 * 256);
            if (r < 0) { fail = HZ_ERR_ARG; break; }
            j->out[i] = r;
            break;
        default:
            r = image_encode(g, at, height, width, j->qtables + i * 128, j->optimize, j->std, cache,
                             j->bytes + j->offsets[i], j->offsets[i + 1] - j->offsets[i]);
            if (r < 0) { fail = r == -1 ? HZ_ERR_ARG : HZ_ERR_OVERFLOW; break; }
            j->out[i] = r;
        }
        if (fail != HZ_OK) {
            __atomic_store_n(&j->status, fail, __ATOMIC_RELAXED);
            return;
        }
    }
}

static int run_jobs(job_t *proto, int64_t n, int num_threads)
{
    if (num_threads < 1) return HZ_ERR_ARG;
    pthread_once(&zz_once, zz_build);
    proto->status = HZ_OK;
    size_t scratch = (proto->kind == JOB_ENCODE && !proto->optimize) ? sizeof(header_cache_t) : 0;
    int st = hz_parallel_for(n, num_threads, scratch, run_range, proto);
    return st != HZ_OK ? st : proto->status;
}

/* ---- public ---------------------------------------------------------------- */
int hz_bits(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high, const int *blocks_wide,
            int h_samp, int v_samp, int optimize, int64_t *out_bits, int num_threads)
{
    geom_t g;
    tables_t std;
    job_t j;
    int st = geom_init(&g, comps, ncomp, n, blocks_high, blocks_wide, h_samp, v_samp);
    if (st != HZ_OK) return st;
    if (!out_bits && n > 0) return HZ_ERR_ARG;
    std_tables(&std);
    memset(&j, 0, sizeof(j));
    j.g = &g; j.kind = JOB_BITS; j.optimize = optimize; j.std = &std; j.out = out_bits;
    return run_jobs(&j, n, num_threads);
}

int hz_frequencies(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high,
                   const int *blocks_wide, int h_samp, int v_samp, int64_t *out_freq, int64_t *out_extra,
                   int num_threads)
{
    geom_t g;
    job_t j;
    int st = geom_init(&g, comps, ncomp, n, blocks_high, blocks_wide, h_samp, v_samp);
    if (st != HZ_OK) return st;
    if ((!out_freq || !out_extra) && n > 0) return HZ_ERR_ARG;
    memset(&j, 0, sizeof(j));
    j.g = &g; j.kind = JOB_FREQ; j.out = out_extra; j.freq = out_freq;
    return run_jobs(&j, n, num_threads);
}

int hz_encode_bounds(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high,
                     const int *blocks_wide, int h_samp, int v_samp, int optimize, int64_t *out_bounds,
                     int num_threads)
{
    geom_t g;
    tables_t std;
    job_t j;
    int st = geom_init(&g, comps, ncomp, n, blocks_high, blocks_wide, h_samp, v_samp);
    if (st != HZ_OK) return st;
    if (!out_bounds && n > 0) return HZ_ERR_ARG;
    std_tables(&std);
    memset(&j, 0, sizeof(j));
    j.g = &g; j.kind = JOB_BOUNDS; j.optimize = optimize; j.std = &std; j.out = out_bounds;
    return run_jobs(&j, n, num_threads);
}

int hz_encode(const int16_t *const comps[3], int ncomp, int64_t n, const int *blocks_high, const int *blocks_wide,
              int h_samp, int v_samp, int height, int width, const uint16_t *qtables, int optimize, uint8_t *out,
              const int64_t *offsets, int64_t *out_sizes, int num_threads)
{
    geom_t g;
    tables_t std;
    job_t j;
    int64_t i;
    int st = geom_init(&g, comps, ncomp, n, blocks_high, blocks_wide, h_samp, v_samp);
    if (st != HZ_OK) return st;
    if (n > 0 && (!qtables || !out || !offsets || !out_sizes)) return HZ_ERR_ARG;
    if (height < 1 || width < 1 || height > 65535 || width > 65535) return HZ_ERR_ARG;
    for (i = 0; i < n; i++)
        if (offsets[i + 1] < offsets[i]) return HZ_ERR_ARG;
    for (i = 0; i < n * 128; i++)
        if (qtables[i] < 1 || qtables[i] > 255) return HZ_ERR_ARG;
    std_tables(&std);
    memset(&j, 0, sizeof(j));
    j.g = &g; j.kind = JOB_ENCODE; j.optimize = optimize; j.std = &std; j.out = out_sizes;
    j.height = height; j.width = width; j.qtables = qtables; j.bytes = out; j.offsets = offsets;
    return run_jobs(&j, n, num_threads);
}

int hz_encode_ragged(const int16_t *const *comps, const int32_t *dims, int64_t n, int h_samp, int v_samp,
                     int gray_h_samp, int gray_v_samp, const uint16_t *qtables, int optimize, uint8_t *out,
                     const int64_t *offsets, int64_t *out_sizes, int num_threads)
{
    tables_t std;
    job_t j;
    int64_t i;
    if (n < 0 || (n > 0 && (!comps || !dims || !out_sizes))) return HZ_ERR_ARG;
    if (h_samp < 1 || h_samp > 2 || v_samp < 1 || v_samp > 2) return HZ_ERR_ARG;
    if (gray_h_samp < 1 || gray_h_samp > 2 || gray_v_samp < 1 || gray_v_samp > 2) return HZ_ERR_ARG;
    if (out) {
        if (n > 0 && (!qtables || !offsets)) return HZ_ERR_ARG;
        for (i = 0; i < n; i++)
            if (offsets[i + 1] < offsets[i]) return HZ_ERR_ARG;
        for (i = 0; i < n * 128; i++)
            if (qtables[i] < 1 || qtables[i] > 255) return HZ_ERR_ARG;
    }
    std_tables(&std);
    memset(&j, 0, sizeof(j));
    j.kind = out ? JOB_ENCODE : JOB_BOUNDS;
    j.optimize = optimize; j.std = &std; j.out = out_sizes;
    j.qtables = qtables; j.bytes = out; j.offsets = offsets;
    j.rcomps = comps; j.rdims = dims; j.hs = h_samp; j.vs = v_samp; j.ghs = gray_h_samp; j.gvs = gray_v_samp;
    return run_jobs(&j, n, num_threads);
}
