/* rt_host_cache.h — the CPU backend's raw memory: host blocks through a
 * caching allocator (rt_block_cache.h: per-size free lists, 64-byte aligned,
 * zero-filled), so that a step's tensors reuse the last step's pages. The
 * tracked allocator above counts bytes in use; the cache's extra bytes are
 * what PyTorch calls reserved-but-unallocated (rt_host_cached_bytes).
 */
#ifndef PS_RT_HOST_CACHE_H
#define PS_RT_HOST_CACHE_H

#include <stdint.h>

void *rt_host_alloc(int64_t bytes);           /* zero-filled, 64-byte aligned */
void rt_host_free(void *p, int64_t bytes);    /* bytes: what was asked for */
void rt_host_trim(void);                      /* return every cached block */
int64_t rt_host_cached_bytes(void);
/* The process's C heap keeps what is freed below 32 MiB instead of returning it to the
 * kernel (glibc's mmap and trim thresholds; elsewhere nothing): Open MPI's reduce-scatter
 * ring allocates two buffers the size of its input per call, and with glibc's defaults
 * each call mapped fresh pages and took their faults (a 1 MiB reduce-scatter ran 3x
 * slower inside a step than alone). Called once, before MPI_Init, by the commands that
 * run ranks. */
void rt_host_keep_heap(void);

#endif
