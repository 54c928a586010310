/* The cache of large output buffers; see hz_pool.h. */
#include "hz_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#define HZ_POOL_SLOTS 8
#define HZ_HUGE ((size_t)2 << 20)

typedef struct {
    void *ptr;
    size_t capacity;
} slot;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static slot g_slots[HZ_POOL_SLOTS];
static size_t g_cached, g_cap = (size_t)1 << 30; /* 1 GiB */

/* Large buffers are rounded up to whole 2 MiB pages and offered to the
 * kernel as huge pages: one fault per 2 MiB the first time they are touched. */
static size_t capacity_for(size_t bytes)
{
    if (bytes < HZ_POOL_MIN_BYTES) return (bytes + 63) & ~(size_t)63;
    return (bytes + HZ_HUGE - 1) & ~(HZ_HUGE - 1);
}

static void *fresh(size_t capacity)
{
    void *p = aligned_alloc(capacity >= HZ_POOL_MIN_BYTES ? HZ_HUGE : 64, capacity ? capacity : 64);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p && capacity >= HZ_POOL_MIN_BYTES) madvise(p, capacity, MADV_HUGEPAGE);
#endif
    return p;
}

void *hz_pool_take(size_t bytes)
{
    const size_t want = capacity_for(bytes);
    if (want >= HZ_POOL_MIN_BYTES) {
        pthread_mutex_lock(&g_lock);
        int best = -1;
        for (int k = 0; k < HZ_POOL_SLOTS; k++) /* the smallest that fits, wasting at most half */
            if (g_slots[k].ptr && g_slots[k].capacity >= want && g_slots[k].capacity / 2 <= want &&
                (best < 0 || g_slots[k].capacity < g_slots[best].capacity))
                best = k;
        void *p = NULL;
        if (best >= 0) {
            p = g_slots[best].ptr;
            g_cached -= g_slots[best].capacity;
            g_slots[best].ptr = NULL;
        }
        pthread_mutex_unlock(&g_lock);
        if (p) return p;
    }
    return fresh(want);
}

void hz_pool_give(void *buffer, size_t bytes)
{
    if (!buffer) return;
    const size_t capacity = capacity_for(bytes);
    if (capacity < HZ_POOL_MIN_BYTES) {
        free(buffer);
        return;
    }
    void *drop[HZ_POOL_SLOTS + 1];
    int ndrop = 0;
    pthread_mutex_lock(&g_lock);
    if (capacity > g_cap) {
        drop[ndrop++] = buffer;
    } else {
        /* make room: evict the largest cached buffers until this one fits */
        for (;;) {
            int free_slot = -1, largest = -1;
            for (int k = 0; k < HZ_POOL_SLOTS; k++) {
                if (!g_slots[k].ptr) {
                    if (free_slot < 0) free_slot = k;
                } else if (largest < 0 || g_slots[k].capacity > g_slots[largest].capacity) {
                    largest = k;
                }
            }
            if (free_slot >= 0 && g_cached + capacity <= g_cap) {
                g_slots[free_slot].ptr = buffer;
                g_slots[free_slot].capacity = capacity;
                g_cached += capacity;
                break;
            }
            drop[ndrop++] = g_slots[largest].ptr;
            g_cached -= g_slots[largest].capacity;
            g_slots[largest].ptr = NULL;
        }
    }
    pthread_mutex_unlock(&g_lock);
    for (int k = 0; k < ndrop; k++) free(drop[k]);
}

size_t hz_pool_set_cap(size_t bytes)
{
    pthread_mutex_lock(&g_lock);
    size_t old = g_cap;
    g_cap = bytes;
    pthread_mutex_unlock(&g_lock);
    if (bytes < old) { /* shrink by dropping everything; the next batches refill */
        hz_pool_clear();
    }
    return old;
}

void hz_pool_clear(void)
{
    void *drop[HZ_POOL_SLOTS];
    int ndrop = 0;
    pthread_mutex_lock(&g_lock);
    for (int k = 0; k < HZ_POOL_SLOTS; k++)
        if (g_slots[k].ptr) {
            drop[ndrop++] = g_slots[k].ptr;
            g_slots[k].ptr = NULL;
        }
    g_cached = 0;
    pthread_mutex_unlock(&g_lock);
    for (int k = 0; k < ndrop; k++) free(drop[k]);
}
