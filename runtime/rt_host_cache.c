/* rt_host_cache.c — host memory through the block cache (see rt_host_cache.h). */
#include "rt_host_cache.h"

#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "rt_block_cache.h"

static void *host_alloc(void *ctx, size_t bytes) {
    (void)ctx;
    void *p = NULL;
    return posix_memalign(&p, 64, bytes) ? NULL : p;
}

static void host_free(void *ctx, void *p, size_t bytes) {
    (void)ctx, (void)bytes;
    free(p);
}

static int host_zero(void *ctx, void *p, size_t bytes) {
    (void)ctx;
    memset(p, 0, bytes);
    return 0;
}

static rt_block_cache cache;
static int ready;

static rt_block_cache *host(void) {
    if (!ready) {
        rt_block_cache_init(&cache, (rt_block_source){host_alloc, host_free, host_zero, NULL, 64});
        ready = 1;
    }
    return &cache;
}

void *rt_host_alloc(int64_t bytes) { return rt_block_alloc(host(), bytes); }
void rt_host_free(void *p, int64_t bytes) { rt_block_free(host(), p, bytes); }
void rt_host_trim(void) { rt_block_trim(host()); }
int64_t rt_host_cached_bytes(void) { return host()->cached; }

void rt_host_keep_heap(void) {
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 32 << 20); /* glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX) */
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}
