/* test_infer.c — serving memory: the "2x model size" rule of thumb, GQA KV
 * cache, quantization overheads (docs/memory.md §8). */
#include "spec/cluster.h"
#include "cost/infer.h"
#include "cost/params.h"
#include "tu.h"

static cluster_cfg h100(void) {
    cluster_cfg c;
    memset(&c, 0, sizeof c);
    c.gpu_memory_bytes = 81559LL << 20;
    c.gpus_per_node = 8;
    c.nodes = 1;
    return c;
}

static infer_cfg base(void) {
    infer_cfg ic = {.batch = 1, .context = 8192, .tp = 1, .weights = WQ_BF16, .kv_dtype = DT_BF16,
                    .group_size = 128, .prefill_chunk = 8192};
    return ic;
}

/* bf16 weights are exactly 2 bytes per parameter: 8B -> 16 GB, 70B -> 141 GB,
 * 405B -> 812 GB, the lecture's "inference ~ 2x model size". */
static void test_two_bytes_per_param(void **state) {
    (void)state;
    const char *names[] = {"llama3-8b", "llama3-70b", "llama3-405b"};
    const double gb[] = {16.06, 141.11, 811.71};
    cluster_cfg c = h100();
    for (int i = 0; i < 3; i++) {
        model_spec m = tu_model(names[i]);
        infer_cfg ic = base();
        infer_result r;
        assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
        assert_int_equal(r.weights, 2 * params_total(&m.cfg));
        assert_int_equal(r.weight_scales, 0);
        double got = (double)r.weights / 1e9;
        if (got < gb[i] - 0.01 || got > gb[i] + 0.01) fail_msg("%s: %.2f GB", names[i], got);
    }
}

/* KV cache per token: 2 (K, V) x layers x kv_heads x head_dim x bytes. Llama 3
 * 8B: 2 * 32 * 8 * 128 * 2 = 128 KiB; with tp = 2 each GPU holds half. */
static void test_kv_cache(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    cluster_cfg c = h100();
    infer_cfg ic = base();
    ic.batch = 16;
    ic.context = 4096;
    infer_result r;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_per_token, 131072);
    assert_int_equal(r.kv_cache, 131072LL * 16 * 4096);
    ic.tp = 2;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_per_token, 65536);
    ic.tp = 16; /* more ranks than kv heads: each keeps one whole head */
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_per_token, 2 * 32 * 1 * 128 * 2);
    ic.tp = 1;
    ic.kv_dtype = DT_FP8;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_per_token, 65536);
}

/* Quantized linear weights: int8 one byte + an fp32 scale per output row;
 * int4 half a byte + per 128-input group an fp16 scale and a 4-bit zero. */
static void test_quantized(void **state) {
    (void)state;
    assert_int_equal(infer_linear_bytes(WQ_INT8, 4096, 4096, 128), 4096 * 4096 + 4 * 4096);
    assert_int_equal(infer_linear_bytes(WQ_INT4, 4096, 4096, 128),
                     4096 * 4096 / 2 + 4096 * 32 * 2 + 4096 * 32 / 2);
    assert_int_equal(infer_linear_bytes(WQ_FP8, 4096, 4096, 128), 4096 * 4096 + 4);

    model_spec m = tu_model("llama3-8b");
    cluster_cfg c = h100();
    infer_cfg ic = base();
    ic.weights = WQ_INT8;
    infer_result r;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    const int64_t linear = 32LL * (2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336);
    const int64_t rows = 32LL * (4096 + 1024 + 1024 + 4096 + 14336 + 14336 + 4096);
    assert_int_equal(r.weights, linear + 4 * rows + 2 * (params_total(&m.cfg) - linear));
    assert_int_equal(r.weight_scales, 4 * rows);
}

/* The largest batch is the last one whose total fits. */
static void test_max_batch(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    cluster_cfg c = h100();
    infer_cfg ic = base();
    infer_result r;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_true(r.max_batch > 1);
    ic.batch = r.max_batch;
    infer_result at;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &at, NULL), 0);
    assert_true(at.fits);
    ic.batch = r.max_batch + 1;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &at, NULL), 0);
    assert_false(at.fits);
}

/* Issue 9: --batch 2^32 --context 2^31 wrapped the KV cache to "0 B". Within
 * the inputs' limits the product can still pass 2^60 bytes: refused. */
static void test_too_large(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    cluster_cfg c = h100();
    infer_cfg ic = base();
    infer_result r;
    ps_err err = {{0}};
    ic.batch = INFER_BATCH_MAX;
    ic.context = INFER_CONTEXT_MAX;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, &err), -1);
    tu_contains(err.msg, "--batch, --context", "KV cache too large", "131072 bytes per token",
                "batch 16777216 x context 16777216", "2^60", NULL);
    /* just under: 2^17 B/token * 2^24 * 2^18 = 2^59 */
    ic.context = 1LL << 18;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, &err), 0);
    assert_int_equal(r.kv_cache, 1LL << 59);
    assert_false(r.fits);
    assert_true(r.total > r.kv_cache);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_bytes_per_param), cmocka_unit_test(test_kv_cache),
        cmocka_unit_test(test_quantized), cmocka_unit_test(test_max_batch),
        cmocka_unit_test(test_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
