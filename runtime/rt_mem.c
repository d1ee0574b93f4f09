/* rt_mem.c — tracked allocator (see rt_mem.h). Live blocks sit in an
 * open-addressing table keyed by address (linear probing, backward-shift
 * deletion), so a free finds its size and category in O(1). */
#include "rt_mem.h"

#include <stdlib.h>
#include <string.h>

static uint64_t slot_of(const rt_mem *m, const void *p) {
    uint64_t h = (uint64_t)(uintptr_t)p;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h & (uint64_t)(m->table_size - 1);
}

int rt_mem_init(rt_mem *m, void *(*raw_alloc)(int64_t), void (*raw_free)(void *, int64_t)) {
    memset(m, 0, sizeof *m);
    m->raw_alloc = raw_alloc;
    m->raw_free = raw_free;
    m->table_size = 1024;
    m->table = calloc((size_t)m->table_size, sizeof *m->table);
    return m->table ? 0 : -1;
}

_Static_assert(MEM_COUNT == 8, "rt_mem_cat_names lists program.h's mem_cat in order");
const char *const rt_mem_cat_names[RT_MEM_CATS] = {
    "params", "grads", "master", "optimizer", "activations", "buffers", "workspace", "teacher",
    "scales", "kv_cache", "logits"};

static int64_t find(const rt_mem *m, const void *p) {
    if (!p) return -1;
    for (uint64_t i = slot_of(m, p);; i = (i + 1) & (uint64_t)(m->table_size - 1)) {
        if (m->table[i].ptr == p) return (int64_t)i;
        if (!m->table[i].ptr) return -1;
    }
}

static void insert(rt_mem *m, rt_mem_block b) {
    uint64_t i = slot_of(m, b.ptr);
    while (m->table[i].ptr) i = (i + 1) & (uint64_t)(m->table_size - 1);
    m->table[i] = b;
    m->live++;
}

static int grow(rt_mem *m) {
    rt_mem_block *old = m->table;
    int64_t n = m->table_size;
    m->table = calloc((size_t)(2 * n), sizeof *m->table);
    if (!m->table) {
        m->table = old;
        return -1;
    }
    m->table_size = 2 * n;
    m->live = 0;
    for (int64_t i = 0; i < n; i++)
        if (old[i].ptr) insert(m, old[i]);
    free(old);
    return 0;
}

static void erase(rt_mem *m, int64_t i) {
    uint64_t mask = (uint64_t)(m->table_size - 1), hole = (uint64_t)i;
    m->table[hole].ptr = NULL;
    m->live--;
    for (uint64_t j = (hole + 1) & mask; m->table[j].ptr; j = (j + 1) & mask) {
        uint64_t home = slot_of(m, m->table[j].ptr);
        /* move j back into the hole unless its home lies cyclically in (hole, j] */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (stays) continue;
        m->table[hole] = m->table[j];
        m->table[j].ptr = NULL;
        hole = j;
    }
}

int64_t rt_mem_total(const rt_mem *m) {
    int64_t t = 0;
    for (int c = 0; c < RT_MEM_CATS; c++) t += m->current[c];
    return t;
}

static void account(rt_mem *m, int cat, int64_t delta) {
    m->current[cat] += delta;
    if (m->current[cat] > m->peak[cat]) m->peak[cat] = m->current[cat];
    if (m->current[cat] > m->op_peak[cat]) m->op_peak[cat] = m->current[cat];
    int64_t t = rt_mem_total(m);
    if (t > m->peak_total) m->peak_total = t;
    if (t > m->op_peak_total) m->op_peak_total = t;
}

void *rt_mem_alloc(rt_mem *m, int cat, int64_t bytes) {
    if (bytes < 0 || cat < 0 || cat >= RT_MEM_CATS) return NULL;
    if (m->limit_bytes > 0 && rt_mem_total(m) + bytes > m->limit_bytes) return NULL;
    if (2 * (m->live + 1) > m->table_size && grow(m) != 0) return NULL;
    void *p = m->raw_alloc(bytes);
    if (!p) return NULL;
    insert(m, (rt_mem_block){.ptr = p, .bytes = bytes, .cat = cat});
    m->allocs++;
    account(m, cat, bytes);
    return p;
}

void rt_mem_free(rt_mem *m, void *p) {
    if (!p) return;
    int64_t i = find(m, p);
    if (i < 0) abort(); /* not ours, or freed twice: a runtime bug, never input */
    const int64_t bytes = m->table[i].bytes;
    account(m, m->table[i].cat, -bytes);
    erase(m, i);
    m->frees++;
    m->raw_free(p, bytes);
}

void rt_mem_retag(rt_mem *m, void *p, int cat) {
    int64_t i = find(m, p);
    if (i < 0 || cat < 0 || cat >= RT_MEM_CATS) abort();
    if (m->table[i].cat == (int32_t)cat) return;
    account(m, m->table[i].cat, -m->table[i].bytes);
    m->table[i].cat = cat;
    account(m, cat, m->table[i].bytes);
}

int64_t rt_mem_size(const rt_mem *m, const void *p) {
    int64_t i = find(m, p);
    return i < 0 ? -1 : m->table[i].bytes;
}

void rt_mem_op_begin(rt_mem *m) {
    for (int c = 0; c < RT_MEM_CATS; c++) m->op_peak[c] = m->current[c];
    m->op_peak_total = rt_mem_total(m);
}

void rt_mem_release(rt_mem *m) {
    if (!m->table) return;
    for (int64_t i = 0; i < m->table_size; i++)
        if (m->table[i].ptr) {
            account(m, m->table[i].cat, -m->table[i].bytes);
            m->raw_free(m->table[i].ptr, m->table[i].bytes);
        }
    free(m->table);
    m->table = NULL;
    m->live = 0;
}
