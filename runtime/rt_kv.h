/* rt_kv.h — the inference engine's paged KV cache (vLLM's PagedAttention,
 * Kwon et al. 2023), with automatic prefix caching (vLLM's hash of the parent
 * block's hash and the block's tokens) and reference-counted blocks.
 *
 * A block holds block_size tokens of every layer in kern_infer.h's layout;
 * each is one rt_mem_alloc of RT_MEM_KV, taken when a sequence first needs it
 * and freed when the last sequence holding it lets go. A sequence of n tokens
 * holds ceil(n / block_size) blocks. A FULL block is entered in the prefix
 * cache under hash(parent hash, its tokens); a sequence whose tokens (all of
 * them up to a block's end) match a cached block takes that block instead of
 * a copy of its own (its reference count grows). The partial last block is
 * never shared. docs/runtime.md ("Inference") has the memory formula.
 */
#ifndef PS_RT_KV_H
#define PS_RT_KV_H

#include <stdbool.h>
#include <stdint.h>

#include "kern_infer.h"
#include "rt_mem.h"

typedef struct {
    void *data;       /* the block (tracked, RT_MEM_KV); NULL when the slot is free */
    int32_t ref;      /* sequences holding it */
    bool cached;      /* full and entered in the prefix cache */
    uint64_t hash;    /* hash(parent hash, tokens) when cached */
    int64_t parent;   /* the block before it in the sequence that filled it (-1: first) */
    int32_t *tokens;  /* [block_size] its tokens when cached (host bookkeeping) */
} rt_kv_block;

typedef struct {
    int64_t *table;   /* block ids in token order */
    void **ptrs;      /* their data pointers (kern_kv_view.blocks) */
    int64_t n_blocks, cap;
    int64_t len;      /* tokens written */
    int32_t *tokens;  /* [tok_cap] the sequence's tokens so far (hashing) */
    int64_t tok_cap;
} rt_kv_seq;

typedef struct {
    rt_mem *mem;
    kern_kv_dtype dt;
    int64_t L, KVH, D, block_size, block_bytes;
    bool prefix_cache;
    rt_kv_block *blocks; /* slots; ids index it */
    int64_t n_slots, cap_slots;
    int64_t live;        /* blocks allocated now */
} rt_kv;

/* Bytes of one block: L * 2 * block_size * KVH * D * elem (+ L * 2 * block_size * KVH * 4 for int8). */
int64_t rt_kv_block_bytes(kern_kv_dtype dt, int64_t L, int64_t KVH, int64_t D, int64_t block_size);

void rt_kv_init(rt_kv *kv, rt_mem *mem, kern_kv_dtype dt, int64_t L, int64_t KVH, int64_t D,
                int64_t block_size, bool prefix_cache);
/* Free every block and the bookkeeping. */
void rt_kv_free(rt_kv *kv);

/* Admit a sequence whose first tokens are tokens[0..n): take the cached blocks
 * matching its leading full blocks, at most (n - 1) / block_size of them (the
 * last token is always computed, for its logits). Returns the tokens covered
 * (a multiple of block_size), which the caller need not compute; -1 out of memory. */
int64_t rt_kv_seq_begin(rt_kv *kv, rt_kv_seq *s, const int32_t *tokens, int64_t n);
/* The blocks rt_kv_seq_begin would take from the prefix cache now for tokens[0..n),
 * taking nothing (0 without prefix caching). */
int64_t rt_kv_prefix_hits(const rt_kv *kv, const int32_t *tokens, int64_t n);
/* Make room for n more tokens (allocating blocks); 0 or -1 out of memory. */
int rt_kv_seq_reserve(rt_kv *kv, rt_kv_seq *s, int64_t n);
/* The caller wrote tokens[0..n) at positions len .. len + n - 1: advance len and
 * enter the blocks this completes in the prefix cache (a block equal to a cached
 * one is dropped for it). 0 or -1 out of host memory. */
int rt_kv_seq_commit(rt_kv *kv, rt_kv_seq *s, const int32_t *tokens, int64_t n);
/* Let go of the sequence's blocks. */
void rt_kv_seq_end(rt_kv *kv, rt_kv_seq *s);

/* Blocks held by more than one sequence now. */
int64_t rt_kv_shared_blocks(const rt_kv *kv);

#endif
