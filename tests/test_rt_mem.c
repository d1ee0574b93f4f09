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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
