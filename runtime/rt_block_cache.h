/* rt_block_cache.h — a caching allocator over a raw one, for host or device memory.
 *
 * A training step frees and allocates the same sizes every time (saved
 * tensors, gradients, workspace). Going back to the raw allocator each time
 * costs page faults on the host (about 10% of a tiny-10m step went to faulting
 * and clearing fresh pages) and a device synchronisation per cudaFree on a
 * GPU. Like PyTorch's CUDA caching allocator (c10/cuda/CUDACachingAllocator.cpp),
 * a freed block waits for the next request of its size instead:
 *
 *  - sizes are rounded up to the source's alignment (64 B on the host; 512 B
 *    on a GPU, PyTorch's kMinBlockSize);
 *  - a request takes the most recently freed block of its rounded size, else
 *    a new raw block; blocks are never split or merged (a step repeats its
 *    sizes, so exact sizes reuse; PyTorch splits segments, which this does not);
 *  - when the raw allocator fails, every cached block is given back and the
 *    request tried once more (PyTorch's free_cached_blocks and retry on OOM);
 *  - every block handed out is zero-filled, reused or new (the contract of
 *    rt_backend.mem_alloc).
 *
 * Reserved bytes = in use + cached: what PyTorch's memory_reserved() reports,
 * next to memory_allocated() (the tracked allocator above counts that, per
 * category). The free lists live outside the blocks, so device memory, which
 * the host cannot write, works the same. Single-threaded: the executor
 * allocates from one thread.
 */
#ifndef PS_RT_BLOCK_CACHE_H
#define PS_RT_BLOCK_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct rt_block_source {
    void *(*raw_alloc)(void *ctx, size_t bytes); /* NULL when out of memory */
    void (*raw_free)(void *ctx, void *p, size_t bytes);
    int (*zero)(void *ctx, void *p, size_t bytes); /* 0, or -1 (the block is given back) */
    void *ctx;
    size_t align; /* a power of two */
} rt_block_source;

typedef struct {
    size_t size;
    void **blocks;
    int32_t n, cap;
} rt_block_list;

typedef struct {
    rt_block_source src;
    rt_block_list *lists; /* one per rounded size seen, at most RT_BLOCK_CACHE_SIZES */
    int32_t n_lists, cap_lists;
    int64_t in_use, cached; /* bytes, rounded */
    int64_t peak_reserved;  /* the most in_use + cached at once */
    int64_t raw_allocs, raw_frees, reuses, retries;
} rt_block_cache;

/* Distinct sizes kept; blocks of further sizes go straight back to the source. */
#define RT_BLOCK_CACHE_SIZES 512

void rt_block_cache_init(rt_block_cache *c, rt_block_source src);
/* bytes (>= 0; 0 is one aligned unit), zero-filled; NULL when the source has no more. */
void *rt_block_alloc(rt_block_cache *c, int64_t bytes);
/* p from rt_block_alloc with the same bytes; NULL is ignored. */
void rt_block_free(rt_block_cache *c, void *p, int64_t bytes);
/* Give every cached block back to the source. */
void rt_block_trim(rt_block_cache *c);
/* Trim and free the lists; blocks still in use stay the caller's. */
void rt_block_cache_release(rt_block_cache *c);
/* The size a request of bytes occupies. */
size_t rt_block_rounded(const rt_block_cache *c, int64_t bytes);

#endif
