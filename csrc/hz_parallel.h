/* A small parallel-for over plain pthreads.
 *
 * pthreads rather than OpenMP: a process that forks (PyTorch DataLoader
 * workers) must not inherit a busy OpenMP runtime, and each call sets its
 * own thread count. */
#ifndef HZ_PARALLEL_H
#define HZ_PARALLEL_H

#include "hz_common.h"

/* body(ctx, begin, end, scratch) processes items [begin, end); scratch is a
 * per-thread buffer of scratch_bytes (64-byte aligned, zeroed when the thread
 * starts) reused across that thread's calls of body. */
typedef void (*hz_range_fn)(void *ctx, int64_t begin, int64_t end, uint8_t *scratch);

/* Run body over [0, n) on up to num_threads threads (the caller included).
 * Returns HZ_OK, or HZ_ERR_NOMEM when scratch cannot be allocated. */
int hz_parallel_for(int64_t n, int num_threads, size_t scratch_bytes, hz_range_fn body, void *ctx);

/* The same with ranges of `chunk` items handed out in order (chunk < 1: the
 * default, n / (8 threads) clamped to 1..64). */
int hz_parallel_for_chunk(int64_t n, int num_threads, int64_t chunk, size_t scratch_bytes, hz_range_fn body, void *ctx);

#endif /* HZ_PARALLEL_H */
