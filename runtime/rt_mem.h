/* rt_mem.h — the tracked allocator: every byte the runtime uses passes here.
 *
 * Like redis's zmalloc_used_memory and sqlite's memory highwater, one place
 * keeps the current and peak bytes, here per memory category of the
 * execution plan (program.h's mem_cat), so that the measured memory lines up
 * with the replay's prediction. The executor marks op boundaries
 * (rt_mem_op_begin): the peak inside each op and the current bytes after it
 * form the measured timeline. Blocks come from the backend's raw allocator
 * (host memory for the CPU backend, device memory for CUDA), so sizes and
 * categories live in a side table keyed by address, never in the block.
 */
#ifndef PS_RT_MEM_H
#define PS_RT_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "program/program.h"

/* Categories past the execution plan's (program.h mem_cat): those of the
 * inference engine (runtime/rt_gen.h; docs/runtime.md "Inference"), whose
 * weights are MEM_PARAMS and forward tensors MEM_ACTIVATIONS. */
enum {
    RT_MEM_SCALES = MEM_COUNT, /* quantization scales and zero points */
    RT_MEM_KV,                 /* KV cache blocks */
    RT_MEM_LOGITS,             /* logits of the tokens being sampled */
    RT_MEM_CATS
};
extern const char *const rt_mem_cat_names[RT_MEM_CATS]; /* mem_cat_names, then "scales", "kv_cache", "logits" */

typedef struct {
    void *ptr;
    int64_t bytes;
    int32_t cat;
} rt_mem_block;

typedef struct {
    void *(*raw_alloc)(int64_t bytes); /* zero-filled */
    void (*raw_free)(void *p, int64_t bytes);
    rt_mem_block *table; /* open addressing, power-of-two size */
    int64_t table_size, live;
    int64_t current[RT_MEM_CATS];
    int64_t peak[RT_MEM_CATS];      /* since start */
    int64_t op_peak[RT_MEM_CATS];   /* since the last rt_mem_op_begin */
    int64_t op_peak_total;        /* all categories together, since the op began */
    int64_t peak_total;
    int64_t allocs, frees;
    int64_t limit_bytes;          /* 0: none; an allocation over it fails (fault tests) */
} rt_mem;

/* raw_alloc/raw_free: the backend's memory (rt_backend.mem_alloc/mem_free). */
int rt_mem_init(rt_mem *m, void *(*raw_alloc)(int64_t), void (*raw_free)(void *, int64_t));
/* Free every live block (end of run) and the table. */
void rt_mem_release(rt_mem *m);
/* bytes in category cat (a mem_cat or an RT_MEM_* above), zero-filled; NULL when out of memory or over the limit. */
void *rt_mem_alloc(rt_mem *m, int cat, int64_t bytes);
void rt_mem_free(rt_mem *m, void *p);
/* Move a block to another category (a tensor a later op adopts, e.g. the
 * hidden state a layer's forward keeps as its saved input). */
void rt_mem_retag(rt_mem *m, void *p, int cat);
int64_t rt_mem_size(const rt_mem *m, const void *p);
void rt_mem_op_begin(rt_mem *m);
int64_t rt_mem_total(const rt_mem *m);

#endif
