/* rt_host_cache.c — per-size free lists of host blocks (see rt_host_cache.h). */
#include "rt_host_cache.h"

#include <stdlib.h>
#include <string.h>

#define CLASSES 512

typedef struct node {
    struct node *next; /* kept inside the free block itself */
} node;

static struct {
    size_t size;
    node *head;
} lists[CLASSES];
static int n_lists;
static int64_t cached;

static size_t rounded(int64_t bytes) { return bytes > 0 ? ((size_t)bytes + 63) & ~(size_t)63 : 64; }

static int list_of(size_t size, int create) {
    for (int i = 0; i < n_lists; i++)
        if (lists[i].size == size) return i;
    if (!create || n_lists == CLASSES) return -1;
    lists[n_lists].size = size;
    lists[n_lists].head = NULL;
    return n_lists++;
}

void *rt_host_alloc(int64_t bytes) {
    const size_t n = rounded(bytes);
    int k = list_of(n, 0);
    if (k >= 0 && lists[k].head) {
        node *b = lists[k].head;
        lists[k].head = b->next;
        cached -= (int64_t)n;
        memset(b, 0, n);
        return b;
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, n) != 0) {
        rt_host_trim(); /* give the cache back and try once more */
        if (posix_memalign(&p, 64, n) != 0) return NULL;
    }
    memset(p, 0, n);
    return p;
}

void rt_host_free(void *p, int64_t bytes) {
    if (!p) return;
    const size_t n = rounded(bytes);
    int k = list_of(n, 1);
    if (k < 0) { /* too many distinct sizes: do not cache */
        free(p);
        return;
    }
    node *b = p;
    b->next = lists[k].head;
    lists[k].head = b;
    cached += (int64_t)n;
}

void rt_host_trim(void) {
    for (int i = 0; i < n_lists; i++)
        while (lists[i].head) {
            node *b = lists[i].head;
            lists[i].head = b->next;
            free(b);
        }
    n_lists = 0;
    cached = 0;
}

int64_t rt_host_cached_bytes(void) { return cached; }
