/* kv_blocks.h — blocks a paged KV cache holds (vLLM's PagedAttention, Kwon et
 * al. 2023; docs/memory.md §8 "KV cache"): a block holds block_size tokens of
 * every layer, a sequence of n tokens ceil(n / bs) blocks, allocated on
 * demand. With prefix caching, the full blocks of a prefix that every sequence
 * shares are held once (vLLM hashes a block by its parent's hash and its own
 * tokens, so equal prefixes map to the same blocks); the partial last block
 * is never shared:
 *     blocks = floor(P/bs) + sum_i (ceil(n_i/bs) - floor(P/bs)).
 */
#ifndef PS_KV_BLOCKS_H
#define PS_KV_BLOCKS_H

#include <stdint.h>

/* Blocks of seqs sequences of n[i] >= prefix tokens sharing prefix tokens,
 * block_size >= 1. Saturates at INT64_MAX. */
int64_t kv_blocks_held(const int64_t *n, int64_t seqs, int64_t prefix, int64_t block_size);

/* The same for seqs sequences of n >= prefix tokens each:
 * seqs ceil(n/bs) - (seqs - 1) floor(P/bs) (0 for no sequence). */
int64_t kv_blocks_uniform(int64_t seqs, int64_t n, int64_t prefix, int64_t block_size);

/* The largest batch of equal sequences of n >= prefix tokens sharing prefix
 * tokens (0: no prefix caching) whose blocks fit in budget_blocks >= 0
 * (docs/memory.md §8 "A KV budget"), the inverse of kv_blocks_uniform:
 *     shared = floor(P/bs), per = ceil(n/bs) - shared,
 *     batch = floor((budget - shared) / per), 0 when not even one fits;
 * INT64_MAX when per is 0 (n = P, a multiple of bs) and shared fits. */
int64_t kv_blocks_max_batch(int64_t budget_blocks, int64_t n, int64_t prefix, int64_t block_size);

#endif
