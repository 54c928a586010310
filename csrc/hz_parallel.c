#include "hz_parallel.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t n, chunk;
    int64_t next; /* atomically advanced */
    size_t scratch_bytes;
    hz_range_fn body;
    void *ctx;
    int status;   /* first error, atomically set */
} pool;

static void *worker(void *arg)
{
    pool *p = (pool *)arg;
    uint8_t *scratch = NULL;
    if (p->scratch_bytes) {
        size_t bytes = (p->scratch_bytes + 63) & ~(size_t)63;
        if (!(scratch = (uint8_t *)aligned_alloc(64, bytes))) {
            __atomic_store_n(&p->status, HZ_ERR_NOMEM, __ATOMIC_RELAXED);
            return NULL;
        }
        memset(scratch, 0, bytes);
    }
    for (;;) {
        if (__atomic_load_n(&p->status, __ATOMIC_RELAXED) != HZ_OK) break;
        int64_t begin = __atomic_fetch_add(&p->next, p->chunk, __ATOMIC_RELAXED);
        if (begin >= p->n) break;
        int64_t end = begin + p->chunk < p->n ? begin + p->chunk : p->n;
        p->body(p->ctx, begin, end, scratch);
    }
    free(scratch);
    return NULL;
}

int hz_parallel_for(int64_t n, int num_threads, size_t scratch_bytes, hz_range_fn body, void *ctx)
{
    return hz_parallel_for_chunk(n, num_threads, 0, scratch_bytes, body, ctx);
}

int hz_parallel_for_chunk(int64_t n, int num_threads, int64_t chunk, size_t scratch_bytes, hz_range_fn body, void *ctx)
{
    if (n <= 0) return HZ_OK;
    if (num_threads < 1) num_threads = 1;
    if (num_threads > n) num_threads = (int)n;
    if (num_threads > 256) num_threads = 256;
    pool p = {n, chunk, 0, scratch_bytes, body, ctx, HZ_OK};
    if (chunk < 1) {
        /* Small chunks balance the load; at least 8 per thread keep the atomic cheap. */
        p.chunk = n / ((int64_t)num_threads * 8);
        if (p.chunk < 1) p.chunk = 1;
        if (p.chunk > 64) p.chunk = 64;
    }

    pthread_t tids[256];
    int started = 0;
    for (int t = 1; t < num_threads; t++) {
        if (pthread_create(&tids[started], NULL, worker, &p) != 0) break; /* fewer threads still finish the work */
        started++;
    }
    worker(&p);
    for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
    return p.status;
}
