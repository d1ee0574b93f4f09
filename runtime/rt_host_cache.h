/* rt_host_cache.h — the CPU backend's raw memory: a caching allocator.
 *
 * A training step frees and allocates the same sizes every time (saved
 * tensors, gradients, workspace). Returning them to the C library means the
 * next step touches fresh pages: about 10% of a tiny-10m step went to page
 * faults and clearing pages. Like PyTorch's CUDA caching allocator, freed
 * blocks here wait in a list per exact size for the next request of that
 * size; a reused block is zeroed again (the contract of rt_backend.mem_alloc).
 * The tracked allocator above counts bytes in use; the cache's extra bytes
 * are what PyTorch calls reserved-but-unallocated (rt_host_cached_bytes).
 * Single-threaded: the executor allocates from one thread.
 */
#ifndef PS_RT_HOST_CACHE_H
#define PS_RT_HOST_CACHE_H

#include <stdint.h>

void *rt_host_alloc(int64_t bytes);           /* zero-filled, 64-byte aligned */
void rt_host_free(void *p, int64_t bytes);    /* bytes: what was asked for */
void rt_host_trim(void);                      /* return every cached block */
int64_t rt_host_cached_bytes(void);

#endif
