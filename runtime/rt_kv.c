/* rt_kv.c — the paged KV cache with prefix caching (rt_kv.h).
 *
 * Why this way: vLLM's block manager (vllm/core/block_manager, and v1's
 * KVCacheManager with automatic prefix caching): a block's identity is the
 * hash of its parent block's hash and its own tokens, so a block is shared
 * exactly when its tokens and every token before it agree. Here a hit is also
 * checked exactly (the same parent block and the same tokens), so a hash
 * collision can never share wrong keys. Blocks are freed at reference count 0
 * (vLLM keeps them evictable; the engine reports memory held by live requests).
 * The lookup scans the blocks: caches here hold thousands of blocks at most.
 */
#include <stdlib.h>
#include <string.h>

#include "rt_hash.h"
#include "rt_kv.h"

int64_t rt_kv_block_bytes(kern_kv_dtype dt, int64_t L, int64_t KVH, int64_t D, int64_t block_size) {
    const int64_t vals = L * 2 * block_size * KVH;
    return vals * D * kern_kv_elem_bytes(dt) + (dt == KERN_KV_I8 ? vals * 4 : 0);
}

void rt_kv_init(rt_kv *kv, rt_mem *mem, kern_kv_dtype dt, int64_t L, int64_t KVH, int64_t D,
                int64_t block_size, bool prefix_cache) {
    memset(kv, 0, sizeof *kv);
    kv->mem = mem, kv->dt = dt, kv->L = L, kv->KVH = KVH, kv->D = D;
    kv->block_size = block_size, kv->prefix_cache = prefix_cache;
    kv->block_bytes = rt_kv_block_bytes(dt, L, KVH, D, block_size);
}

static void block_release(rt_kv *kv, int64_t id) {
    rt_kv_block *b = &kv->blocks[id];
    if (--b->ref > 0) return;
    rt_mem_free(kv->mem, b->data);
    free(b->tokens);
    memset(b, 0, sizeof *b);
    kv->live--;
}

void rt_kv_free(rt_kv *kv) {
    for (int64_t i = 0; i < kv->n_slots; i++)
        if (kv->blocks[i].data) {
            kv->blocks[i].ref = 1;
            block_release(kv, i);
        }
    free(kv->blocks);
    memset(kv, 0, sizeof *kv);
}

/* A free slot's id (growing the table), or -1. */
static int64_t slot_new(rt_kv *kv) {
    for (int64_t i = 0; i < kv->n_slots; i++)
        if (!kv->blocks[i].data) return i;
    if (kv->n_slots == kv->cap_slots) {
        int64_t cap = kv->cap_slots ? 2 * kv->cap_slots : 64;
        rt_kv_block *nb = realloc(kv->blocks, (size_t)cap * sizeof *nb);
        if (!nb) return -1;
        kv->blocks = nb, kv->cap_slots = cap;
    }
    memset(&kv->blocks[kv->n_slots], 0, sizeof kv->blocks[0]);
    return kv->n_slots++;
}

static int seq_push(rt_kv_seq *s, int64_t id, void *data) {
    if (s->n_blocks == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 8;
        int64_t *t = realloc(s->table, (size_t)cap * sizeof *t);
        if (!t) return -1;
        s->table = t;
        void **p = realloc(s->ptrs, (size_t)cap * sizeof *p);
        if (!p) return -1;
        s->ptrs = p, s->cap = cap;
    }
    s->table[s->n_blocks] = id, s->ptrs[s->n_blocks++] = data;
    return 0;
}

static int seq_tokens(rt_kv_seq *s, const int32_t *tokens, int64_t at, int64_t n) {
    if (at + n > s->tok_cap) {
        int64_t cap = s->tok_cap ? s->tok_cap : 64;
        while (cap < at + n)
            cap *= 2;
        int32_t *t = realloc(s->tokens, (size_t)cap * sizeof *t);
        if (!t) return -1;
        s->tokens = t, s->tok_cap = cap;
    }
    memcpy(s->tokens + at, tokens, (size_t)n * sizeof *tokens);
    return 0;
}

static uint64_t block_hash(const rt_kv *kv, int64_t parent, const int32_t *tokens) {
    uint64_t h = parent < 0 ? 0x5053434b56ULL : kv->blocks[parent].hash;
    for (int64_t i = 0; i < kv->block_size; i++)
        h = rt_mix64(h ^ ((uint64_t)(uint32_t)tokens[i] + 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1)));
    return h;
}

/* The cached block after `parent` holding `tokens`, or -1. */
static int64_t cache_find(const rt_kv *kv, int64_t parent, const int32_t *tokens, uint64_t h) {
    for (int64_t i = 0; i < kv->n_slots; i++) {
        const rt_kv_block *b = &kv->blocks[i];
        if (b->data && b->cached && b->hash == h && b->parent == parent &&
            !memcmp(b->tokens, tokens, (size_t)kv->block_size * sizeof *tokens))
            return i;
    }
    return -1;
}

int64_t rt_kv_seq_begin(rt_kv *kv, rt_kv_seq *s, const int32_t *tokens, int64_t n) {
    memset(s, 0, sizeof *s);
    if (!kv->prefix_cache) return 0;
    const int64_t bs = kv->block_size, most = n > 0 ? (n - 1) / bs : 0;
    for (int64_t b = 0; b < most; b++) {
        const int64_t parent = b ? s->table[b - 1] : -1;
        const int64_t id = cache_find(kv, parent, tokens + b * bs,
                                      block_hash(kv, parent, tokens + b * bs));
        if (id < 0) break;
        if (seq_push(s, id, kv->blocks[id].data)) return -1;
        kv->blocks[id].ref++; /* counted as soon as the table holds it: rt_kv_seq_end releases it */
        if (seq_tokens(s, tokens + b * bs, b * bs, bs)) return -1;
        s->len += bs;
    }
    return s->len;
}

int64_t rt_kv_prefix_hits(const rt_kv *kv, const int32_t *tokens, int64_t n) {
    if (!kv->prefix_cache) return 0;
    const int64_t bs = kv->block_size, most = n > 0 ? (n - 1) / bs : 0;
    int64_t b = 0;
    for (int64_t parent = -1; b < most; b++) {
        parent = cache_find(kv, parent, tokens + b * bs, block_hash(kv, parent, tokens + b * bs));
        if (parent < 0) break;
    }
    return b;
}

int rt_kv_seq_reserve(rt_kv *kv, rt_kv_seq *s, int64_t n) {
    const int64_t need = (s->len + n + kv->block_size - 1) / kv->block_size;
    while (s->n_blocks < need) {
        const int64_t id = slot_new(kv);
        if (id < 0) return -1;
        void *data = rt_mem_alloc(kv->mem, RT_MEM_KV, kv->block_bytes);
        if (!data) return -1;
        kv->blocks[id] = (rt_kv_block){.data = data, .ref = 1, .parent = -1};
        kv->live++;
        if (seq_push(s, id, data)) return -1;
    }
    return 0;
}

int rt_kv_seq_commit(rt_kv *kv, rt_kv_seq *s, const int32_t *tokens, int64_t n) {
    const int64_t bs = kv->block_size, from = s->len / bs;
    if (seq_tokens(s, tokens, s->len, n)) return -1;
    s->len += n;
    if (!kv->prefix_cache) return 0;
    for (int64_t b = from; (b + 1) * bs <= s->len; b++) {
        const int64_t parent = b ? s->table[b - 1] : -1, own = s->table[b];
        if (parent >= 0 && !kv->blocks[parent].cached) continue; /* not reachable by a hash */
        const int32_t *t = s->tokens + b * bs;
        const uint64_t h = block_hash(kv, parent, t);
        const int64_t hit = cache_find(kv, parent, t, h);
        if (hit >= 0 && hit != own) { /* the same tokens after the same prefix: share it */
            kv->blocks[hit].ref++;
            s->table[b] = hit, s->ptrs[b] = kv->blocks[hit].data;
            block_release(kv, own);
        } else if (hit < 0) {
            rt_kv_block *o = &kv->blocks[own];
            if (!(o->tokens = malloc((size_t)bs * sizeof *o->tokens))) return -1;
            memcpy(o->tokens, t, (size_t)bs * sizeof *t);
            o->cached = true, o->hash = h, o->parent = parent;
        }
    }
    return 0;
}

void rt_kv_seq_end(rt_kv *kv, rt_kv_seq *s) {
    for (int64_t b = 0; b < s->n_blocks; b++)
        block_release(kv, s->table[b]);
    free(s->table);
    free(s->ptrs);
    free(s->tokens);
    memset(s, 0, sizeof *s);
}

int64_t rt_kv_shared_blocks(const rt_kv *kv) {
    int64_t n = 0;
    for (int64_t i = 0; i < kv->n_slots; i++)
        n += kv->blocks[i].data && kv->blocks[i].ref > 1;
    return n;
}
