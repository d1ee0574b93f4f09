/* rt_block_cache.c — per-size free lists over a raw allocator (see rt_block_cache.h). */
#include "rt_block_cache.h"

#include <stdlib.h>
#include <string.h>

void rt_block_cache_init(rt_block_cache *c, rt_block_source src) {
    memset(c, 0, sizeof *c);
    c->src = src;
    if (!c->src.align) c->src.align = 1;
}

size_t rt_block_rounded(const rt_block_cache *c, int64_t bytes) {
    const size_t a = c->src.align;
    return bytes > 0 ? ((size_t)bytes + a - 1) & ~(a - 1) : a;
}

/* The list of blocks of size, or -1; created when asked and there is room. */
static int list_of(rt_block_cache *c, size_t size, int create) {
    for (int i = 0; i < c->n_lists; i++)
        if (c->lists[i].size == size) return i;
    if (!create || c->n_lists == RT_BLOCK_CACHE_SIZES) return -1;
    if (c->n_lists == c->cap_lists) {
        int32_t cap = c->cap_lists ? 2 * c->cap_lists : 16;
        rt_block_list *l = realloc(c->lists, (size_t)cap * sizeof *l);
        if (!l) return -1;
        c->lists = l, c->cap_lists = cap;
    }
    c->lists[c->n_lists] = (rt_block_list){size, NULL, 0, 0};
    return c->n_lists++;
}

static void note_reserved(rt_block_cache *c) {
    if (c->in_use + c->cached > c->peak_reserved) c->peak_reserved = c->in_use + c->cached;
}

static void give_back(rt_block_cache *c, void *p, size_t n) {
    c->src.raw_free(c->src.ctx, p, n);
    c->raw_frees++;
}

void *rt_block_alloc(rt_block_cache *c, int64_t bytes) {
    if (bytes < 0) return NULL;
    const size_t n = rt_block_rounded(c, bytes);
    const int k = list_of(c, n, 0);
    void *p = NULL;
    if (k >= 0 && c->lists[k].n > 0) {
        p = c->lists[k].blocks[--c->lists[k].n];
        c->cached -= (int64_t)n;
        c->reuses++;
    } else {
        p = c->src.raw_alloc(c->src.ctx, n);
        if (!p && c->cached > 0) { /* give the cache back and try once more */
            rt_block_trim(c);
            c->retries++;
            p = c->src.raw_alloc(c->src.ctx, n);
        }
        if (!p) return NULL;
        c->raw_allocs++;
    }
    if (c->src.zero && c->src.zero(c->src.ctx, p, n)) {
        give_back(c, p, n);
        return NULL;
    }
    c->in_use += (int64_t)n;
    note_reserved(c);
    return p;
}

void rt_block_free(rt_block_cache *c, void *p, int64_t bytes) {
    if (!p) return;
    const size_t n = rt_block_rounded(c, bytes);
    c->in_use -= (int64_t)n;
    const int k = list_of(c, n, 1);
    rt_block_list *l = k >= 0 ? &c->lists[k] : NULL;
    if (l && l->n == l->cap) {
        int32_t cap = l->cap ? 2 * l->cap : 4;
        void **b = realloc(l->blocks, (size_t)cap * sizeof *b);
        if (b) l->blocks = b, l->cap = cap;
    }
    if (!l || l->n == l->cap) { /* too many distinct sizes, or no memory: not cached */
        give_back(c, p, n);
        return;
    }
    l->blocks[l->n++] = p;
    c->cached += (int64_t)n;
}

void rt_block_trim(rt_block_cache *c) {
    for (int i = 0; i < c->n_lists; i++) {
        rt_block_list *l = &c->lists[i];
        while (l->n > 0) give_back(c, l->blocks[--l->n], l->size);
    }
    c->cached = 0;
}

void rt_block_cache_release(rt_block_cache *c) {
    rt_block_trim(c);
    for (int i = 0; i < c->n_lists; i++) free(c->lists[i].blocks);
    free(c->lists);
    c->lists = NULL;
    c->n_lists = c->cap_lists = 0;
}
