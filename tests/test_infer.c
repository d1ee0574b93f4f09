/* test_infer.c — serving memory: the "2x model size" rule of thumb, GQA KV
 * cache, quantization overheads, MoE weights, MLA's latent cache and the MoE
 * prefill working set (docs/memory.md §8). */
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

/* ---- Mixture of experts and multi-head latent attention (issue 12) ---- */

/* In bf16 a MoE model's weights are exactly 2 bytes per parameter of
 * params_count: the layer matrices infer.c enumerates (MLA's five
 * projections, the shared and every routed expert) plus the 16-bit rest
 * (router, norms, embeddings) add up to params.c's total. */
static void test_moe_weights_match_params(void **state) {
    (void)state;
    const char *names[] = {"deepseek-v3", "mixtral-8x7b", "qwen3-235b-a22b"};
    cluster_cfg c = h100();
    for (int i = 0; i < 3; i++) {
        model_spec m = tu_model(names[i]);
        infer_cfg ic = base();
        infer_result r;
        assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
        assert_int_equal(r.weights, 2 * params_total(&m.cfg));
        assert_int_equal(r.weight_scales, 0);
    }
    model_spec ds = tu_model("deepseek-v3"); /* the published 671B, MTP not served */
    infer_cfg ic = base();
    infer_result r;
    assert_int_equal(infer_compute(&ds.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.weights, 2 * 671026419200LL);
}

/* tp = 8 holds every routed expert split 8 ways (vLLM without expert
 * parallelism), by hand from the shapes. Mixtral 8x7B per rank: embedding
 * and head 32000/8 x 4096 each, final norm 4096; per layer q 4096x512,
 * k and v 4096x128, o 512x4096, 2 norms, the router 8x4096 and 8 experts of
 * 3 x 4096 x 14336/8. DeepSeek-V3 per rank: embedding and head 129280/8 x
 * 7168; MLA q_a 7168x1536 and kv_a 7168x576 whole, q_b 1536 x 16*192, kv_b
 * 512 x 16*(128+128), o 16*128 x 7168, latent norms 1536 + 512; 3 dense
 * layers of 3 x 7168 x 18432/8; 58 MoE layers with the router 256x7168 (+256
 * bias), one shared expert and 256 routed ones of 3 x 7168 x 2048/8. */
static void test_moe_weights_tp(void **state) {
    (void)state;
    cluster_cfg c = h100();
    infer_cfg ic = base();
    ic.tp = 8;
    infer_result r;
    model_spec mx = tu_model("mixtral-8x7b");
    assert_int_equal(infer_compute(&mx.cfg, &c, &ic, &r, NULL), 0);
    const int64_t mx_layer = 4096LL * (512 + 128 + 128) + 512LL * 4096 + 2 * 4096 + 8 * 4096 +
                             8 * 3 * 4096LL * 1792;
    assert_int_equal(r.weights, 2 * (2 * 4000LL * 4096 + 4096 + 32 * mx_layer));
    assert_int_equal(r.weights, 11677999104LL);

    model_spec ds = tu_model("deepseek-v3");
    assert_int_equal(infer_compute(&ds.cfg, &c, &ic, &r, NULL), 0);
    const int64_t mla = 7168LL * 1536 + 1536LL * 16 * 192 + 7168LL * 576 + 512LL * 16 * 256 +
                        16LL * 128 * 7168;
    const int64_t around = mla + 1536 + 512 + 2 * 7168; /* attention, its norms, layer norms */
    const int64_t dense = around + 3 * 7168LL * 2304;
    const int64_t router = 256 * 7168LL + 256;
    const int64_t moe = around + router + 3 * 7168LL * 256 + 256 * 3 * 7168LL * 256;
    const int64_t outside = 2 * 16160LL * 7168 + 7168;
    const int64_t all = outside + 3 * dense + 58 * moe;
    assert_int_equal(all, 84780357120LL);
    assert_int_equal(r.weights, 2 * all);
    /* fp8: 1 byte and one fp32 scale per matrix (5 MLA, 3 per MLP, the shared
     * expert one MLP); the router, norms and tables stay 16-bit */
    ic.weights = WQ_FP8;
    assert_int_equal(infer_compute(&ds.cfg, &c, &ic, &r, NULL), 0);
    const int64_t rest = outside + 61 * (1536 + 512 + 2 * 7168LL) + 58 * router;
    const int64_t scales = 4 * (61 * 5 + 3 * 3 + 58 * (3 + 256 * 3));
    assert_int_equal(r.weight_scales, scales);
    assert_int_equal(r.weights, (all - rest) + scales + 2 * rest);
}

/* int8 on Mixtral 8x7B (tp = 1): one fp32 scale per output row of every
 * attention and expert matrix; the router (8 x 4096) is not quantized. */
static void test_moe_quantized(void **state) {
    (void)state;
    model_spec m = tu_model("mixtral-8x7b");
    cluster_cfg c = h100();
    infer_cfg ic = base();
    ic.weights = WQ_INT8;
    infer_result r;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    const int64_t linear = 32LL * (4096LL * (4096 + 1024 + 1024 + 4096) + 8 * 3 * 4096LL * 14336);
    const int64_t rows = 32LL * (4096 + 1024 + 1024 + 4096 + 8 * (14336 + 14336 + 4096));
    assert_int_equal(r.weight_scales, 4 * rows);
    assert_int_equal(r.weights, linear + 4 * rows + 2 * (params_total(&m.cfg) - linear));
    /* the router among the 16-bit elements: 32 layers x 8 x 4096 */
    const int64_t rest = 32000LL * 4096 * 2 + 4096 + 32 * (2 * 4096 + 8 * 4096);
    assert_int_equal(params_total(&m.cfg) - linear, rest);
}

/* MLA caches the latent c_KV (kv_lora_rank) and the shared rotary key
 * (qk_rope_head_dim) per token and layer, on every tp rank (DeepSeek-V2
 * §2.1.2, Table 1). DeepSeek-V3: (512 + 64) x 61 x 2 B = 70,272 B per token,
 * where K and V of 128 heads of 192 gave 5.72 MiB. Qwen3's q/k norms do not
 * change its cache: 2 x 94 x 4 x 128 x 2 B. */
static void test_mla_kv_cache(void **state) {
    (void)state;
    model_spec m = tu_model("deepseek-v3");
    cluster_cfg c = h100();
    infer_cfg ic = base();
    ic.batch = 4;
    infer_result r;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_per_token, 70272);
    assert_int_equal(r.kv_cache, 70272LL * 4 * 8192);
    ic.tp = 8; /* replicated, not split */
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_per_token, 70272);
    ic.kv_dtype = DT_FP8;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_per_token, 35136);
    model_spec q = tu_model("qwen3-235b-a22b");
    ic = base();
    assert_int_equal(infer_compute(&q.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_per_token, 2 * 94 * 4 * 128 * 2);
}

/* Prefill working set per token, by hand (docs/memory.md §8), times a chunk of
 * 1024 tokens. Mixtral 8x7B, tp = 1: attention 2 x (2 x 4096 + 4096 + 2 x
 * 1024) bytes; the MoE MLP fp32 scores 4 x 8, top-2 ids and weights 8 x 2,
 * 2 rows of 2 x (2 x 4096 + 3 x 14336). DeepSeek-V3, tp = 8: attention 2 x
 * (2 x 7168 + 1536 + 512 + 64 + 16 x (2 x 192 + 128)); the MoE MLP 4 x 256 +
 * 8 x 8 + 2 x (8 x (2 x 7168 + 3 x 256) + 3 x 256), larger than the dense
 * layers' 2 x 3 x 2304. With top-1 at tp = 1 the dense MLP (2 x 3 x 18432)
 * is the larger. */
static void test_moe_activations(void **state) {
    (void)state;
    cluster_cfg c = h100();
    infer_cfg ic = base();
    ic.prefill_chunk = 1024;
    infer_result r;
    model_spec mx = tu_model("mixtral-8x7b");
    assert_int_equal(infer_compute(&mx.cfg, &c, &ic, &r, NULL), 0);
    const int64_t mx_attn = 2 * (2 * 4096 + 4096 + 2 * 1024);
    assert_int_equal(r.activations, 1024 * (mx_attn + 4 * 8 + 8 * 2 + 2 * 2 * (2 * 4096 + 3 * 14336)));

    model_spec ds = tu_model("deepseek-v3");
    ic.tp = 8;
    assert_int_equal(infer_compute(&ds.cfg, &c, &ic, &r, NULL), 0);
    const int64_t ds_attn = 2 * (2 * 7168 + 1536 + 512 + 64 + 16 * (2 * 192 + 128));
    const int64_t ds_moe = 4 * 256 + 8 * 8 + 2 * (8 * (2 * 7168 + 3 * 256) + 3 * 256);
    assert_int_equal(r.activations, 1024 * (ds_attn + ds_moe));
    assert_int_equal(ds_attn + ds_moe, 293568);
    ic.tp = 1;
    ds.cfg.experts_per_token = 1;
    assert_int_equal(infer_compute(&ds.cfg, &c, &ic, &r, NULL), 0);
    const int64_t ds_attn1 = 2 * (2 * 7168 + 1536 + 512 + 64 + 128 * (2 * 192 + 128));
    assert_int_equal(r.activations, 1024 * (ds_attn1 + 2 * 3 * 18432));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_bytes_per_param), cmocka_unit_test(test_kv_cache),
        cmocka_unit_test(test_quantized), cmocka_unit_test(test_max_batch),
        cmocka_unit_test(test_too_large), cmocka_unit_test(test_moe_weights_match_params),
        cmocka_unit_test(test_moe_weights_tp), cmocka_unit_test(test_moe_quantized),
        cmocka_unit_test(test_mla_kv_cache), cmocka_unit_test(test_moe_activations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
