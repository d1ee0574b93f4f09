/* test_rt_mem.c — the tracked allocator: current and peak per category,
 * per-op peaks, retagging, the address table under churn, and the limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rt_backend.h"
#include "rt_block_cache.h"
#include "rt_host_cache.h"
#include "rt_mem.h"

static void *raw_alloc(int64_t n) { return calloc(1, n ? (size_t)n : 1); }
static int raw_frees;
static void raw_free(void *p, int64_t bytes) {
    (void)bytes;
    raw_frees++;
    free(p);
}

static void test_current_and_peak(void **state) {
    (void)state;
    rt_mem m;
    assert_int_equal(rt_mem_init(&m, raw_alloc, raw_free), 0);
    void *a = rt_mem_alloc(&m, MEM_PARAMS, 1000);
    void *b = rt_mem_alloc(&m, MEM_ACTIVATIONS, 300);
    void *c = rt_mem_alloc(&m, MEM_ACTIVATIONS, 200);
    assert_int_equal(m.current[MEM_PARAMS], 1000);
    assert_int_equal(m.current[MEM_ACTIVATIONS], 500);
    rt_mem_free(&m, b);
    assert_int_equal(m.current[MEM_ACTIVATIONS], 200);
    assert_int_equal(m.peak[MEM_ACTIVATIONS], 500);
    assert_int_equal(m.peak_total, 1500);
    /* a peak inside an op is seen even when the op frees what it took */
    rt_mem_op_begin(&m);
    assert_int_equal(m.op_peak[MEM_WORKSPACE], 0);
    void *w = rt_mem_alloc(&m, MEM_WORKSPACE, 4096);
    rt_mem_free(&m, w);
    assert_int_equal(m.op_peak[MEM_WORKSPACE], 4096);
    assert_int_equal(m.op_peak_total, 1200 + 4096);
    assert_int_equal(m.current[MEM_WORKSPACE], 0);
    /* retag moves the bytes, not the total */
    rt_mem_retag(&m, c, MEM_WORKSPACE);
    assert_int_equal(m.current[MEM_ACTIVATIONS], 0);
    assert_int_equal(m.current[MEM_WORKSPACE], 200);
    assert_int_equal(rt_mem_size(&m, c), 200);
    assert_int_equal(rt_mem_total(&m), 1200);
    rt_mem_free(&m, a);
    rt_mem_free(&m, c);
    assert_int_equal(rt_mem_total(&m), 0);
    assert_int_equal(m.allocs, 4);
    assert_int_equal(m.frees, 4);
    rt_mem_release(&m);
}

/* Thousands of blocks freed in a scrambled order: every size is found
 * (the table grows and deletes with backward shifts). */
static void test_table_churn(void **state) {
    (void)state;
    enum { N = 5000 };
    rt_mem m;
    void **p = calloc(N, sizeof *p);
    assert_int_equal(rt_mem_init(&m, raw_alloc, raw_free), 0);
    int64_t expect = 0;
    for (int i = 0; i < N; i++) {
        p[i] = rt_mem_alloc(&m, (mem_cat)(i % MEM_COUNT), 16 + i);
        assert_non_null(p[i]);
        expect += 16 + i;
    }
    assert_int_equal(rt_mem_total(&m), expect);
    for (int k = 0; k < N; k++) {
        int i = (int)(((int64_t)k * 2654435761LL) % N); /* a permutation: 2654435761 is prime to N */
        assert_int_equal(rt_mem_size(&m, p[i]), 16 + i);
        rt_mem_free(&m, p[i]);
        expect -= 16 + i;
        assert_int_equal(rt_mem_total(&m), expect);
    }
    assert_int_equal(m.live, 0);
    rt_mem_release(&m);
    free(p);
}

static void test_limit_and_release(void **state) {
    (void)state;
    rt_mem m;
    raw_frees = 0;
    assert_int_equal(rt_mem_init(&m, raw_alloc, raw_free), 0);
    m.limit_bytes = 1000;
    assert_non_null(rt_mem_alloc(&m, MEM_GRADS, 600));
    assert_null(rt_mem_alloc(&m, MEM_GRADS, 600)); /* over the limit: refused, not counted */
    assert_int_equal(m.current[MEM_GRADS], 600);
    assert_non_null(rt_mem_alloc(&m, MEM_GRADS, 400));
    rt_mem_release(&m); /* frees the live blocks */
    assert_int_equal(raw_frees, 2);
    assert_int_equal(rt_mem_total(&m), 0);
}

/* The host cache hands a freed block back for the same size, zeroed again,
 * and keeps count of what it holds. */
static void test_host_cache_reuse(void **state) {
    (void)state;
    rt_host_trim();
    unsigned char *a = rt_host_alloc(1000);
    memset(a, 0xab, 1000);
    rt_host_free(a, 1000);
    assert_int_equal(rt_host_cached_bytes(), 1024); /* rounded to 64 bytes */
    unsigned char *b = rt_host_alloc(1000);
    assert_ptr_equal(a, b);
    for (int i = 0; i < 1000; i++) assert_int_equal(b[i], 0);
    assert_int_equal(rt_host_cached_bytes(), 0);
    unsigned char *c = rt_host_alloc(5000); /* another size: a new block */
    assert_ptr_not_equal(b, c);
    rt_host_free(b, 1000);
    rt_host_free(c, 5000);
    assert_int_equal(rt_host_cached_bytes(), 1024 + 5056);
    rt_host_trim();
    assert_int_equal(rt_host_cached_bytes(), 0);
}

/* A device-like source: 512-byte units, a capacity in bytes, memory the
 * cache must not write (each block is host memory here, poisoned until the
 * source's zero clears it), and counts of what was asked. */
typedef struct {
    int64_t capacity, held, allocs, frees, zeroes;
} fake_dev;

static void *fake_alloc(void *ctx, size_t n) {
    fake_dev *d = ctx;
    assert_int_equal(n % 512, 0);
    if (d->held + (int64_t)n > d->capacity) return NULL;
    unsigned char *p = malloc(n);
    memset(p, 0xcd, n);
    d->held += (int64_t)n, d->allocs++;
    return p;
}

static void fake_free(void *ctx, void *p, size_t n) {
    fake_dev *d = ctx;
    d->held -= (int64_t)n, d->frees++;
    free(p);
}

static int fake_zero(void *ctx, void *p, size_t n) {
    ((fake_dev *)ctx)->zeroes++;
    memset(p, 0, n);
    return 0;
}

/* Sizes round to the source's unit; a freed block serves the next request of
 * its rounded size (no raw call); reserved = in use + cached, its peak kept;
 * a request the source refuses gives the cache back and succeeds on retry. */
static void test_block_cache(void **state) {
    (void)state;
    fake_dev d = {.capacity = 8192};
    rt_block_cache c;
    rt_block_cache_init(&c, (rt_block_source){fake_alloc, fake_free, fake_zero, &d, 512});
    assert_int_equal(rt_block_rounded(&c, 1), 512);
    assert_int_equal(rt_block_rounded(&c, 512), 512);
    assert_int_equal(rt_block_rounded(&c, 513), 1024);
    assert_int_equal(rt_block_rounded(&c, 0), 512);
    unsigned char *a = rt_block_alloc(&c, 1000), *b = rt_block_alloc(&c, 3000);
    assert_non_null(a), assert_non_null(b);
    assert_int_equal(c.in_use, 1024 + 3072);
    assert_int_equal(d.held, 1024 + 3072);
    memset(a, 0xab, 1000);
    rt_block_free(&c, a, 1000);
    assert_int_equal(c.cached, 1024);
    assert_int_equal(c.in_use, 3072);
    unsigned char *a2 = rt_block_alloc(&c, 600); /* rounds to 1024 as well: reused */
    assert_ptr_equal(a2, a);
    assert_int_equal(d.allocs, 2);
    assert_int_equal(c.reuses, 1);
    for (int i = 0; i < 1024; i++) assert_int_equal(a2[i], 0);
    assert_int_equal(d.zeroes, 3);
    /* 8192 capacity: 4096 held by a2 and b; free b (cached), then ask 5000 -> 5120: the
     * source refuses until the cached 3072 go back */
    rt_block_free(&c, b, 3000);
    assert_int_equal(c.in_use + c.cached, 4096);
    void *e = rt_block_alloc(&c, 5000);
    assert_non_null(e);
    assert_int_equal(c.retries, 1);
    assert_int_equal(c.cached, 0);
    assert_int_equal(d.frees, 1);
    assert_int_equal(c.in_use, 1024 + 5120);
    assert_int_equal(c.peak_reserved, 1024 + 5120);
    /* over the capacity with nothing cached: NULL, nothing changes */
    assert_null(rt_block_alloc(&c, 4096));
    assert_int_equal(c.in_use, 1024 + 5120);
    assert_null(rt_block_alloc(&c, -1));
    rt_block_free(&c, a2, 600);
    rt_block_free(&c, e, 5000);
    assert_int_equal(c.in_use, 0);
    assert_int_equal(c.cached, 1024 + 5120);
    assert_int_equal(d.held, 1024 + 5120);
    rt_block_cache_release(&c);
    assert_int_equal(d.held, 0);
    assert_int_equal(d.allocs, d.frees);
}

/* Past RT_BLOCK_CACHE_SIZES distinct sizes a freed block goes straight back. */
static void test_block_cache_sizes(void **state) {
    (void)state;
    fake_dev d = {.capacity = INT64_MAX / 2};
    rt_block_cache c;
    rt_block_cache_init(&c, (rt_block_source){fake_alloc, fake_free, fake_zero, &d, 512});
    for (int i = 1; i <= RT_BLOCK_CACHE_SIZES + 3; i++) {
        void *p = rt_block_alloc(&c, 512 * i);
        assert_non_null(p);
        rt_block_free(&c, p, 512 * i);
    }
    assert_int_equal(c.n_lists, RT_BLOCK_CACHE_SIZES);
    assert_int_equal(d.frees, 3);
    assert_int_equal(c.in_use, 0);
    rt_block_cache_release(&c);
    assert_int_equal(d.held, 0);
}

/* The CPU backend's raw memory is zeroed and 64-byte aligned. */
static void test_cpu_backend_memory(void **state) {
    (void)state;
    rt_mem m;
    assert_int_equal(rt_mem_init(&m, rt_backend_cpu.mem_alloc, rt_backend_cpu.mem_free), 0);
    unsigned char *p = rt_mem_alloc(&m, MEM_BUFFERS, 1000);
    assert_int_equal((uintptr_t)p % 64, 0);
    for (int i = 0; i < 1000; i++) assert_int_equal(p[i], 0);
    rt_mem_free(&m, p);
    rt_mem_release(&m);
    rt_backend_cpu.mem_trim();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_current_and_peak),
        cmocka_unit_test(test_table_churn),
        cmocka_unit_test(test_limit_and_release),
        cmocka_unit_test(test_cpu_backend_memory),
        cmocka_unit_test(test_host_cache_reuse),
        cmocka_unit_test(test_block_cache),
        cmocka_unit_test(test_block_cache_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
