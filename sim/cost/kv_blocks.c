/* kv_blocks.c — paged KV cache blocks with prefix caching (see kv_blocks.h). */
#include "cost/kv_blocks.h"

#include "base/sat_int.h"

static int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

int64_t kv_blocks_held(const int64_t *n, int64_t seqs, int64_t prefix, int64_t block_size) {
    if (seqs <= 0) return 0;
    const int64_t shared = prefix / block_size;
    int64_t blocks = shared;
    for (int64_t i = 0; i < seqs; i++) blocks = sat_add(blocks, ceil_div(n[i], block_size) - shared);
    return blocks;
}

int64_t kv_blocks_uniform(int64_t seqs, int64_t n, int64_t prefix, int64_t block_size) {
    if (seqs <= 0) return 0;
    const int64_t shared = prefix / block_size;
    return sat_add(sat_mul(seqs, ceil_div(n, block_size) - shared), shared);
}

int64_t kv_blocks_max_batch(int64_t budget_blocks, int64_t n, int64_t prefix, int64_t block_size) {
    const int64_t shared = prefix / block_size, per = ceil_div(n, block_size) - shared;
    if (budget_blocks < shared + per) return 0;
    return per ? (budget_blocks - shared) / per : INT64_MAX;
}
