/* test_infer.c — serving memory: the "2x model size" rule of thumb, GQA KV
 * cache, quantization overheads, MoE weights, MLA's latent cache and the MoE
 * prefill working set (docs/memory.md §8). */
#include <math.h>

#include "spec/cluster.h"
#include "cost/infer.h"
#include "cost/kv_blocks.h"
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
    infer_cfg ic;
    infer_cfg_init(&ic);
    return ic;
}

/* The source's table (docs/memory.md §8): Llama 3 8B / 70B / 405B at bf16
 * need ~16 / 140 / 810 GB of weights. bf16 weights are exactly 2 bytes per
 * parameter at tp 1: 2 x 8,030,261,248 = 16,060,522,496 B, 2 x 70,553,706,496
 * = 141,107,412,992 B, 2 x 405,853,388,800 = 811,706,777,600 B, which to two
 * significant figures (decimal GB) are the table's 16, 140 and 810. */
static void test_two_bytes_per_param(void **state) {
    (void)state;
    const char *names[] = {"llama3-8b", "llama3-70b", "llama3-405b"};
    const int64_t bytes[] = {16060522496LL, 141107412992LL, 811706777600LL};
    const double table_gb[] = {16, 140, 810}, step_gb[] = {1, 10, 10};
    cluster_cfg c = h100();
    for (int i = 0; i < 3; i++) {
        model_spec m = tu_model(names[i]);
        infer_cfg ic = base();
        infer_result r;
        assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
        assert_int_equal(r.weights, bytes[i]);
        assert_int_equal(r.weights, 2 * params_total(&m.cfg));
        assert_int_equal(r.weight_scales, 0);
        const double rounded = round((double)r.weights / 1e9 / step_gb[i]) * step_gb[i];
        if (rounded != table_gb[i]) fail_msg("%s: %.2f GB rounds to %.0f", names[i],
                                             (double)r.weights / 1e9, rounded);
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
    ic.kv_cache = KV_FP8;
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
    ic.kv_cache = KV_FP8;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_per_token, 35136);
    ic.kv_cache = KV_INT8; /* 576 B of latent + one fp32 absmax, per layer */
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_per_token, (576 + 4) * 61);
    model_spec q = tu_model("qwen3-235b-a22b");
    ic = base();
    assert_int_equal(infer_compute(&q.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_per_token, 2 * 94 * 4 * 128 * 2);
}

/* Forward bytes per token, by hand (docs/memory.md §8 "Activations"), bf16
 * compute, a chunk of 1024 tokens (batch 1). Mixtral 8x7B, tp = 1: x, xn, o
 * 3 x 4096, q and att 2 x 4096, k and v 2 x 1024; the MoE MLP fp32 scores
 * 4 x 8, top-2 ids and weights 8 x 2, 2 rows of 2 x 4096 + 2 x 14336, all
 * elements x 2 B. DeepSeek-V3, tp = 8: 3 x 7168, the latents 1536 + 512 +
 * 64, 16 heads of q and k (192 each), v and att (128 each); the MoE MLP
 * 4 x 256 + 8 x 8 + 2 x (8 x (2 x 7168 + 2 x 256) + 2 x 256), larger than the
 * dense layers' 2 x 2 x 2304: 2 x (21,504 + 2112 + 10,240) = 67,712 B of
 * attention and 1088 + 2 x (118,784 + 512) = 239,680 B of MoE MLP. With top-1 at tp = 1 the dense MLP
 * (2 x 2 x 18432 = 73,728 B) is the larger (MoE: 1032 + 2 x (14336 + 4096 +
 * 4096) = 46,088 B). */
static void test_moe_activations(void **state) {
    (void)state;
    cluster_cfg c = h100();
    infer_cfg ic = base();
    ic.prefill_chunk = 1024;
    infer_result r;
    model_spec mx = tu_model("mixtral-8x7b");
    assert_int_equal(infer_compute(&mx.cfg, &c, &ic, &r, NULL), 0);
    const int64_t mx_attn = 2 * (3 * 4096 + 2 * 4096 + 2 * 1024);
    assert_int_equal(r.fwd_tokens, 1024);
    assert_int_equal(r.activations,
                     1024 * (mx_attn + 4 * 8 + 8 * 2 + 2 * 2 * (2 * 4096 + 2 * 14336)));
    assert_int_equal(r.act_dequant + r.act_quant_input, 0);

    model_spec ds = tu_model("deepseek-v3");
    ic.tp = 8;
    assert_int_equal(infer_compute(&ds.cfg, &c, &ic, &r, NULL), 0);
    const int64_t ds_attn = 2 * (3 * 7168 + 1536 + 512 + 64 + 16 * (2 * 192 + 2 * 128));
    const int64_t ds_moe = 4 * 256 + 8 * 8 + 2 * (8 * (2 * 7168 + 2 * 256) + 2 * 256);
    assert_int_equal(r.activations, 1024 * (ds_attn + ds_moe));
    assert_int_equal(ds_attn + ds_moe, 67712 + 239680);
    ic.tp = 1;
    ds.cfg.experts_per_token = 1;
    assert_int_equal(infer_compute(&ds.cfg, &c, &ic, &r, NULL), 0);
    const int64_t ds_attn1 = 2 * (3 * 7168 + 1536 + 512 + 64 + 128 * (2 * 192 + 2 * 128));
    assert_int_equal(r.activations, 1024 * (ds_attn1 + 2 * 2 * 18432));
}

/* The runtime's schemes on MoE and MLA models follow the same per-matrix
 * rules. Mixtral 8x7B, int8-row at tp 8, one fp32 scale per row of each
 * shard: q 512, k and v 128, o all 4096 rows, 8 experts of w1 and w3 1792
 * and w2 4096 rows: 4864 + 8 x 7680 = 66,304 rows per layer x 32 x 4 B =
 * 8,486,912 B. DeepSeek-V3, int8-block of 128 at tp 8: every shard's inputs
 * (7168, 1536, 512, 16 x 128, 2304, 256) divide by 128, so one 4 B scale per
 * 128 linear elements: the linears are test_moe_weights_tp's all - rest. */
static void test_moe_runtime_schemes(void **state) {
    (void)state;
    cluster_cfg c = h100();
    infer_cfg ic = base();
    ic.tp = 8;
    infer_result r;
    model_spec mx = tu_model("mixtral-8x7b");
    ic.weights = WQ_INT8_ROW;
    assert_int_equal(infer_compute(&mx.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.weight_scales, 8486912);
    model_spec ds = tu_model("deepseek-v3");
    ic.weights = WQ_INT8_BLOCK;
    ic.group_size = 128;
    assert_int_equal(infer_compute(&ds.cfg, &c, &ic, &r, NULL), 0);
    const int64_t router = 256 * 7168LL + 256;
    const int64_t rest = 2 * 16160LL * 7168 + 7168 + 61 * (1536 + 512 + 2 * 7168LL) + 58 * router;
    const int64_t linear = 84780357120LL - rest;
    assert_int_equal(linear % 128, 0);
    assert_int_equal(r.weight_scales, 4 * (linear / 128));
    assert_int_equal(r.weights, linear + 4 * (linear / 128) + 2 * rest);
}

/* ---- The runtime's schemes, the paged KV cache, prefix caching and the
 * questions (issue 13), on tiny-1m: 4 layers, h 128, 4 heads and 2 kv heads
 * of 32, SwiGLU f 512, vocabulary 256, untied. Per layer at tp 1: q 128x128,
 * k and v 64x128, o 128x128, w1 and w3 512x128, w2 128x512 = 245,760
 * elements, 983,040 in 4 layers; the rest: embedding and head 256 x 128 each,
 * the final norm 128, 2 norms of 128 per layer: 66,688. (983,040 + 66,688 =
 * 1,049,728, the model's parameter count.) ---- */

/* Weights and scales per scheme at tp 1 (docs/memory.md §8 "Weights"):
 *   f32      4 x 1,049,728 = 4,198,912; bf16 2 x 1,049,728 = 2,099,456;
 *   int8-*   values 983,040 + 2 x 66,688 = 1,116,416;
 *   tensor   7 matrices x 4 layers x 4 B = 112; zeropoint x 8 B = 224;
 *   row, vector, decomp: rows 128+64+64+128+512+512+128 = 1536 per layer,
 *            x 4 layers x 4 B = 24,576;
 *   int8-block (32): 983,040 / 32 = 30,720 blocks x 4 B = 122,880;
 *   int4-block (32): values 983,040 / 2 + 133,376 = 624,896, scales 122,880. */
static void test_runtime_schemes(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    cluster_cfg c = h100();
    infer_cfg ic = base();
    infer_result r;
    const struct {
        infer_weights w;
        int64_t values, scales;
    } want[] = {
        {WQ_F32, 4198912, 0},
        {WQ_BF16, 2099456, 0},
        {WQ_INT8_TENSOR, 1116416, 112},
        {WQ_INT8_ZEROPOINT, 1116416, 224},
        {WQ_INT8_ROW, 1116416, 24576},
        {WQ_INT8_VECTOR, 1116416, 24576},
        {WQ_INT8_DECOMP, 1116416, 24576},
        {WQ_INT8_BLOCK, 1116416, 122880},
        {WQ_INT4_BLOCK, 624896, 122880},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ic.weights = want[i].w;
        assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
        assert_int_equal(r.weight_scales, want[i].scales);
        assert_int_equal(r.weights - r.weight_scales, want[i].values);
    }
    assert_int_equal(infer_group_size(&ic), 32); /* int4-block's default */
    ic.weights = WQ_INT4;
    assert_int_equal(infer_group_size(&ic), 128); /* GPTQ's */
}

/* Scales on a tp rank follow the shard (docs/memory.md §8): at tp 2 a rank
 * holds q 64x128, k and v 32x128, w1 and w3 256x128 (column-parallel: half
 * the rows) and o 128x64, w2 128x256 (row-parallel: every row). Per-tensor
 * scales are replicated: still 112 B. Per-row: 64+32+32+128+256+256+128 = 896
 * rows per layer x 4 x 4 B = 14,336 (not 24,576 / 2). Blocks split with the
 * columns: q 64x4, k, v 32x4, o 128x2, w1, w3 256x4, w2 128x8 = 3840 blocks
 * per layer x 4 x 4 B = 61,440, half of tp 1. A block of 128 does not divide
 * o's 64 columns: refused. */
static void test_scales_follow_tp(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    cluster_cfg c = h100();
    infer_cfg ic = base();
    ic.tp = 2;
    infer_result r;
    ic.weights = WQ_INT8_TENSOR;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.weight_scales, 112);
    ic.weights = WQ_INT8_ROW;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.weight_scales, 14336);
    ic.weights = WQ_INT8_BLOCK;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.weight_scales, 61440);
    ps_err err = {{0}};
    ic.group_size = 128;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, &err), -1);
    tu_contains(err.msg, "--group-size", "found 128, which does not divide 64",
                "a 128 x 64 shard at tp 2", NULL);
    ic.group_size = 48;
    assert_int_equal(infer_group_check(&m.cfg, &ic, &err), -1);
    tu_contains(err.msg, "--group-size: expected 32, 64 or 128 for --weights int8-block",
                "found 48", NULL);
}

/* KV cache per token (docs/memory.md §8): 4 layers x K,V x 2 kv heads x 32
 * x 2 B = 1024 B (bf16); f32 2048; int8 4 x 2 x 2 x (32 + a 4 B scale) = 576.
 * Paged in blocks of 16: a sequence of 100 tokens holds ceil(100/16) = 7
 * blocks of 16 x 1024 B; batch 4 x 7 = 28 blocks. Sharing a 40-token prefix
 * holds its floor(40/16) = 2 full blocks once: 28 - 3 x 2 = 22 blocks, saving
 * 6 x 16,384 = 98,304 B. Unpaged (block 1): 400 tokens, shared 4 x 100 -
 * 3 x 40 = 280. */
static void test_paged_kv_prefix(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    cluster_cfg c = h100();
    infer_cfg ic = base();
    infer_result r;
    const struct {
        infer_kv kv;
        int64_t per_token;
    } kinds[] = {{KV_BF16, 1024}, {KV_FP16, 1024}, {KV_FP8, 512}, {KV_F32, 2048}, {KV_INT8, 576}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        ic.kv_cache = kinds[i].kv;
        assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
        assert_int_equal(r.kv_per_token, kinds[i].per_token);
    }
    ic.kv_cache = KV_BF16;
    ic.batch = 4;
    ic.context = 100;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_block, 16384);
    assert_int_equal(r.kv_blocks, 28);
    assert_int_equal(r.kv_cache, 28 * 16384);
    assert_int_equal(r.prefix_saved, 0);
    ic.prefix = 40;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_blocks, 22);
    assert_int_equal(r.kv_cache, 22 * 16384);
    assert_int_equal(r.prefix_saved, 98304);
    ic.block_size = 1;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_cache, 280 * 1024);
    assert_int_equal(r.prefix_saved, 120 * 1024);
    ic.prefix = 0;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.kv_cache, 400 * 1024); /* today's per-token size x batch x context */
}

/* The largest batch a block budget holds (docs/memory.md §8 "A KV budget"), by
 * hand: sequences of 56 tokens (48 of prompt + 9 new - 1) in blocks of 16 take
 * 4 blocks each; a 40-token prefix shares 2 of them, so after the first each
 * takes 2 more. Budget 9: 2 + 3 x 2 = 8 <= 9 < 10 holds 3 sharing, 2 x 4 = 8 <= 9
 * < 12 holds 2 without. Budget 3 holds none (one needs 4); 4 holds exactly one.
 * A sequence that is all shared prefix (40 of 40, bs 8: 5 shared, 0 more) is
 * never the bound once its prefix fits. */
static void test_kv_budget_batch(void **state) {
    (void)state;
    assert_int_equal(kv_blocks_max_batch(9, 56, 40, 16), 3);
    assert_int_equal(kv_blocks_max_batch(9, 56, 0, 16), 2);
    assert_int_equal(kv_blocks_max_batch(10, 56, 40, 16), 4);
    assert_int_equal(kv_blocks_max_batch(12, 56, 0, 16), 3);
    assert_int_equal(kv_blocks_max_batch(3, 56, 40, 16), 0);
    assert_int_equal(kv_blocks_max_batch(4, 56, 40, 16), 1);
    assert_int_equal(kv_blocks_max_batch(0, 56, 0, 16), 0);
    assert_int_equal(kv_blocks_max_batch(5, 40, 40, 8), INT64_MAX);
    assert_int_equal(kv_blocks_max_batch(4, 40, 40, 8), 0);
    /* the inverse of kv_blocks_uniform: the batch fits, one more does not */
    for (int64_t budget = 4; budget < 40; budget++) {
        const int64_t b = kv_blocks_max_batch(budget, 100, 40, 16);
        assert_true(kv_blocks_uniform(b, 100, 40, 16) <= budget);
        assert_true(kv_blocks_uniform(b + 1, 100, 40, 16) > budget);
    }
}

/* The forward's live tensors (docs/memory.md §8 "Activations"), n tokens at
 * tp 1: x, xn, o 3 x 128, q, att 2 x 128, k, v 2 x 64, a, b 2 x 512 = 1792
 * elements per token, in f32 4 n 1792 = 7168 n B (bf16: 3584 n). On top:
 *   int8 GEMM schemes: the quantized input n (C_max + 8), C_max = f = 512,
 *     and the bf16 head dequantized under f32, 256 x 128 x 4 = 131,072 B;
 *   bf16 under f32 compute, int8-decomp, int8-block: the largest matrix that
 *     needs it, w1 512 x 128 x 4 = 262,144 B (the head's 32,768 is smaller);
 *   f32: nothing.
 * The forward is the larger of the prefill chunk (here 64 of a context of
 * 100) and the batch (decode: one token per sequence). */
static void test_activations(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    cluster_cfg c = h100();
    infer_cfg ic = base();
    ic.context = 100;
    ic.prefill_chunk = 64;
    ic.compute = DT_FP32;
    infer_result r;
    const struct {
        infer_weights w;
        int64_t qin, dequant;
    } want[] = {
        {WQ_F32, 0, 0},
        {WQ_BF16, 0, 262144},
        {WQ_INT8_TENSOR, 64 * 520, 131072},
        {WQ_INT8_VECTOR, 64 * 520, 131072},
        {WQ_INT8_DECOMP, 0, 262144},
        {WQ_INT8_BLOCK, 0, 262144},
        {WQ_INT4_BLOCK, 0, 262144},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ic.weights = want[i].w;
        assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
        assert_int_equal(r.fwd_tokens, 64);
        assert_int_equal(r.act_quant_input, want[i].qin);
        assert_int_equal(r.act_dequant, want[i].dequant);
        assert_int_equal(r.activations, 7168 * 64 + want[i].qin + want[i].dequant);
    }
    /* bf16 compute: bf16 weights and head need no buffer */
    ic.compute = DT_BF16;
    ic.weights = WQ_BF16;
    ic.batch = 80; /* decode of 80 sequences is the larger forward */
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.fwd_tokens, 80);
    assert_int_equal(r.activations, 3584 * 80);
    assert_int_equal(r.logits, 80 * 256 * 4);
}

/* The runtime comparison's prediction (infer_memory_predict), by hand:
 * tiny-1m, int8-row, int8 KV cache, tp 2, blocks of 16, f32 compute,
 * sequences of 100, 47 and 64 tokens sharing 40, a largest forward of 64.
 *   weights: the linears at tp 2, 122,880 elements per layer x 4 = 491,520 B,
 *     the rest in bf16: 2 x (128 x 128 x 2 + 128 + 4 x 256) = 67,840 B;
 *   scales: 14,336 B (test_scales_follow_tp);
 *   KV: one kv head per rank, 4 x 2 x (32 + 4) = 288 B per token, 4608 per
 *     block; blocks floor(40/16) = 2 + (7 - 2) + (3 - 2) + (4 - 2) = 10;
 *   activations: q 64, k v 32, f 256: 4 x 64 x (384 + 128 + 64 + 512) =
 *     278,528, the int8 input 64 x (256 + 8) = 16,896, the head's 128 x 128
 *     x 4 = 65,536: 360,960;
 *   logits: 3 x 128 x 4 = 1536. */
static void test_memory_predict(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    infer_cfg ic = base();
    ic.weights = WQ_INT8_ROW;
    ic.kv_cache = KV_INT8;
    ic.tp = 2;
    ic.compute = DT_FP32;
    const int64_t n[] = {100, 47, 64};
    infer_mem mem;
    ps_err err = {{0}};
    assert_int_equal(infer_memory_predict(&m.cfg, &ic, n, 3, 40, 64, &mem, &err), 0);
    assert_int_equal(mem.weights, 491520 + 67840);
    assert_int_equal(mem.scales, 14336);
    assert_int_equal(mem.kv_cache, 10 * 4608);
    assert_int_equal(mem.activations, 360960);
    assert_int_equal(mem.logits, 1536);
    /* no prefix: 7 + 3 + 4 blocks; unpaged: 211 tokens */
    assert_int_equal(infer_memory_predict(&m.cfg, &ic, n, 3, 0, 64, &mem, &err), 0);
    assert_int_equal(mem.kv_cache, 14 * 4608);
    ic.block_size = 1;
    assert_int_equal(infer_memory_predict(&m.cfg, &ic, n, 3, 0, 64, &mem, &err), 0);
    assert_int_equal(mem.kv_cache, 211 * 288);
    /* agrees with infer_compute for equal sequences */
    ic.block_size = 16;
    const int64_t same[] = {100, 100, 100, 100};
    assert_int_equal(infer_memory_predict(&m.cfg, &ic, same, 4, 40, 64, &mem, &err), 0);
    cluster_cfg c = h100();
    infer_result r;
    ic.batch = 4;
    ic.context = 100;
    ic.prefix = 40;
    ic.prefill_chunk = 64;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(mem.weights + mem.scales, r.weights);
    assert_int_equal(mem.scales, r.weight_scales);
    assert_int_equal(mem.kv_cache, r.kv_cache);
    assert_int_equal(mem.activations, r.activations);
    assert_int_equal(mem.logits, r.logits);
}

/* The questions on a small GPU, by hand. tiny-1m, bf16, unpaged (block 1),
 * bf16 compute, capacity 6,708,480 B, nothing reserved. At batch 1 and
 * context S (S <= the chunk): weights 2,099,456 + KV 1024 S + activations
 * 3584 S + logits 1024 = 2,100,480 + 4608 S, which is the capacity at S =
 * 1000: the longest context is 1000.
 * At context 100 and batch B <= 100: 2,099,456 + B (100 x 1024 + 1024) +
 * 100 x 3584 <= capacity gives B = 41 (4,250,624 / 103,424 = 41.1). Sharing
 * a 64-token prefix: 65,536 + B (36 x 1024 + 1024) and, past B = 100, the
 * decode forward 3584 B: 2,164,992 + 41,472 B gives B = 109.
 * The fewest GPUs at batch 1 x context 1001: tp 1 needs 6,713,088 B, tp 2
 * (valid: it divides the 4 heads, f = 512 and the 2 kv heads) holds
 * weights 2 x (491,520 + 33,920), KV 512 B and activations 2 x 1088 B per
 * token, logits 512: 3,742,080 B — fits; on a single-GPU cluster, none. */
static void test_questions(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    cluster_cfg c = h100();
    c.gpu_memory_bytes = 6708480;
    infer_cfg ic = base();
    ic.block_size = 1;
    ic.context = 1000;
    infer_result r;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.total, 6708480);
    assert_true(r.fits);
    assert_int_equal(r.max_context, 1000);
    assert_int_equal(r.min_tp, 1);
    ic.context = 100;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.max_batch, 41);
    assert_int_equal(r.max_batch_unshared, 41);
    ic.prefix = 64;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.max_batch, 109);
    assert_int_equal(r.max_batch_unshared, 41);
    ic.batch = 109; /* the boundary */
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_true(r.fits);
    ic.batch = 110;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_false(r.fits);
    ic.batch = 1;
    ic.prefix = 0;
    ic.context = 1001;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_false(r.fits);
    assert_int_equal(r.min_tp, 2);
    ic.tp = 2;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.total, 3742080);
    c.gpus_per_node = 1;
    ic.tp = 1;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.min_tp, 0);
    /* nothing fits: no batch, no context */
    c.gpu_memory_bytes = 1000000;
    assert_int_equal(infer_compute(&m.cfg, &c, &ic, &r, NULL), 0);
    assert_int_equal(r.max_batch, 0);
    assert_int_equal(r.max_context, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_bytes_per_param), cmocka_unit_test(test_kv_cache),
        cmocka_unit_test(test_quantized), cmocka_unit_test(test_max_batch),
        cmocka_unit_test(test_too_large), cmocka_unit_test(test_moe_weights_match_params),
        cmocka_unit_test(test_moe_weights_tp), cmocka_unit_test(test_moe_quantized),
        cmocka_unit_test(test_mla_kv_cache), cmocka_unit_test(test_moe_activations),
        cmocka_unit_test(test_moe_runtime_schemes), cmocka_unit_test(test_runtime_schemes), cmocka_unit_test(test_scales_follow_tp),
        cmocka_unit_test(test_paged_kv_prefix), cmocka_unit_test(test_kv_budget_batch), cmocka_unit_test(test_activations),
        cmocka_unit_test(test_memory_predict), cmocka_unit_test(test_questions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
