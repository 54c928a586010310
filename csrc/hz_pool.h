/* A small cache of large output buffers.
 *
 * Batch results (round-tripped pixels, coefficient grids) are large and are
 * usually dropped before the next batch arrives. Fresh memory from the OS
 * costs a page fault and a zeroing per 4 KiB page; a buffer kept from the
 * previous batch costs nothing. Freed buffers of at least HZ_POOL_MIN_BYTES
 * stay here (a few, up to a byte cap) for the next request of a similar size.
 */
#ifndef HZ_POOL_H
#define HZ_POOL_H

#include "hz_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HZ_POOL_MIN_BYTES ((size_t)1 << 20)

/* A 64-byte aligned buffer of at least `bytes` (contents undefined), or NULL. */
void *hz_pool_take(size_t bytes);
/* Return a buffer from hz_pool_take (bytes: the size asked for). */
void hz_pool_give(void *buffer, size_t bytes);
/* Set the most bytes the cache keeps (0 turns it off); returns the previous cap. */
size_t hz_pool_set_cap(size_t bytes);
/* Free every cached buffer. */
void hz_pool_clear(void);

#ifdef __cplusplus
}
#endif

#endif /* HZ_POOL_H */
