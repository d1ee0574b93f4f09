/* test_gen.c — the inference engine (runtime/rt_gen.h) in one process (tp 1):
 *  - greedy and seeded decoding with the paged KV cache give exactly the tokens
 *    of recomputing every sequence without a cache (fp32 weights and cache,
 *    requests of different lengths, prefill in chunks);
 *  - prefix caching: requests sharing a 40-token prefix with 16-token blocks hold
 *    its 2 full blocks once; the measured KV bytes equal the contract's block
 *    formula, and the saving (B - 1) * 2 blocks;
 *  - the measured weights, scales, activations and logits bytes equal the
 *    contract's values computed by hand (docs/runtime.md "Inference");
 *  - a KV budget: requests wait until their blocks fit, the cache never passes
 *    it, the tokens do not change; a request larger than it is refused;
 *  - outlier injection leaves the fp32 logits unchanged;
 *  - eval: random weights have perplexity near the vocabulary size, and the KL
 *    of the fp32 model to itself is 0.
 * tp 2 is tested end to end under mpirun (tests/test_run.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rt_backend.h"
#include "rt_gen.h"

/* tiny-1m (models/tiny-1m.yaml): head_dim = 128 / 4 */
static const rt_ckpt_model TINY = {.model = "tiny-1m", .layers = 4, .hidden = 128, .heads = 4,
                                   .kv_heads = 2, .head_dim = 32, .ffn_hidden = 512,
                                   .vocab = 256, .seq_len = 256, .norm_eps = 1e-5,
                                   .rope_theta = 10000.0};

static rt_gen_cfg cfg_default(void) {
    return (rt_gen_cfg){.weights = RT_W_F32, .group = 32, .kv = KERN_KV_F32, .block_size = 16,
                        .prefill_chunk = 8, .batch = 3, .prefix_cache = true};
}

typedef struct {
    rt_mem mem;
    rt_ckpt ck;
    rt_gen g;
} fixture;

static void setup(fixture *f, const rt_gen_cfg *cfg, uint64_t seed) {
    ps_err err = {{0}};
    memset(f, 0, sizeof *f);
    assert_int_equal(rt_mem_init(&f->mem, rt_backend_cpu.mem_alloc, rt_backend_cpu.mem_free), 0);
    assert_int_equal(rt_gen_ckpt_random(&f->ck, &TINY, seed), 0);
    if (rt_gen_init(&f->g, &f->ck, cfg, &rt_backend_cpu, &f->mem, NULL, 1, 0, &err))
        fail_msg("%s", err.msg);
}

static void teardown(fixture *f) {
    rt_gen_free(&f->g);
    free(f->ck.data);
    rt_mem_release(&f->mem);
}

enum { NREQ = 4 };

/* Requests of different lengths: random bytes after an optional shared prefix. */
typedef struct {
    int32_t tok[NREQ][128];
    int32_t out[NREQ][32];
    rt_gen_request r[NREQ];
} requests;

static void make_requests(requests *q, int64_t prefix, const int64_t *len, const int64_t *max_new) {
    uint64_t s = 12345;
    memset(q, 0, sizeof *q);
    for (int i = 0; i < NREQ; i++) {
        for (int64_t t = 0; t < prefix + len[i]; t++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            q->tok[i][t] = t < prefix ? (int32_t)(t * 7 % 256) : (int32_t)((s >> 33) % 256);
        }
        q->r[i] = (rt_gen_request){.tokens = q->tok[i], .n = prefix + len[i],
                                   .max_new = max_new[i], .out = q->out[i]};
    }
}

static void serve(const rt_gen_cfg *cfg, requests *q, rt_gen_stats *st, rt_mem *mem_out) {
    fixture f;
    ps_err err = {{0}};
    setup(&f, cfg, 7);
    if (rt_gen_run(&f.g, q->r, NREQ, &err)) fail_msg("%s", err.msg);
    if (st) *st = f.g.st;
    if (mem_out) *mem_out = f.mem;
    assert_int_equal(f.mem.current[RT_MEM_KV], 0); /* every block given back */
    teardown(&f);
}

/* The engine's scheme names are the program's teacher schemes, one per
 * rt_wscheme in order: every scheme parses back to itself, and the list ends there. */
static void test_scheme_names(void **state) {
    (void)state;
    for (int i = 0; i < RT_W_COUNT; i++) {
        assert_non_null(rt_wscheme_names[i]);
        assert_int_equal(rt_wscheme_parse(rt_wscheme_names[i]), i);
    }
    assert_null(rt_wscheme_names[RT_W_COUNT]);
    assert_string_equal(rt_wscheme_names[RT_W_I8_DECOMP], "int8-decomp");
    assert_int_equal(rt_wscheme_parse("fp8"), -1); /* a planner-only scheme */
}

static void test_cache_equals_recompute(void **state) {
    (void)state;
    const int64_t len[NREQ] = {5, 23, 40, 17}, max_new[NREQ] = {12, 7, 20, 3};
    for (int temp = 0; temp < 2; temp++) {
        rt_gen_cfg cfg = cfg_default();
        cfg.temperature = temp ? 0.8 : 0.0, cfg.seed = 99;
        requests a, b;
        make_requests(&a, 0, len, max_new);
        make_requests(&b, 0, len, max_new);
        serve(&cfg, &a, NULL, NULL);
        cfg.no_cache = true;
        serve(&cfg, &b, NULL, NULL);
        int distinct = 0;
        for (int i = 0; i < NREQ; i++)
            for (int64_t t = 0; t < max_new[i]; t++) {
                if (a.out[i][t] != b.out[i][t])
                    fail_msg("temperature %g: request %d token %lld: %d with the cache, %d "
                             "recomputed", cfg.temperature, i, (long long)t, a.out[i][t],
                             b.out[i][t]);
                distinct += t && a.out[i][t] != a.out[i][0];
            }
        assert_true(distinct > 0); /* not one token repeated: the test can fail */
    }
}

static void test_prefix_cache_blocks(void **state) {
    (void)state;
    const int64_t P = 40, bs = 16, gen = 6;
    const int64_t len[NREQ] = {5, 9, 13, 20}, max_new[NREQ] = {gen, gen, gen, gen};
    rt_gen_cfg cfg = cfg_default();
    cfg.batch = NREQ;
    int64_t blocks = P / bs, unshared = 0;
    for (int i = 0; i < NREQ; i++) {
        const int64_t n = P + len[i] + gen - 1; /* the last token is never fed back */
        blocks += (n + bs - 1) / bs - P / bs;
        unshared += (n + bs - 1) / bs;
    }
    for (int kv = 0; kv < 2; kv++) {
        /* a block: layers x K,V x block x kv heads x (head_dim values (+ an fp32 scale)) */
        cfg.kv = kv ? KERN_KV_I8 : KERN_KV_F32;
        const int64_t block_bytes = kv ? 4 * 2 * bs * 2 * (32 + 4) : 4 * 2 * bs * 2 * 32 * 4;
        for (int share = 0; share < 2; share++) {
            cfg.prefix_cache = share;
            requests q;
            make_requests(&q, P, len, max_new);
            rt_gen_stats st;
            rt_mem mem;
            serve(&cfg, &q, &st, &mem);
            assert_int_equal(st.kv_block_bytes, block_bytes);
            assert_int_equal(mem.peak[RT_MEM_KV], (share ? blocks : unshared) * block_bytes);
            assert_int_equal(st.kv_blocks, share ? blocks : unshared);
            assert_int_equal(st.kv_logical_blocks - st.kv_blocks, share ? (NREQ - 1) * 2 : 0);
            assert_int_equal(st.kv_shared_blocks, share ? 2 : 0);
            assert_int_equal(st.cached_tokens, share ? (NREQ - 1) * 2 * bs : 0);
        }
    }
}

/* A KV budget of 5 blocks (32 KiB each, f32) over requests whose lives hold 1, 2, 4
 * and 2 blocks (5+12-1 = 16, 23+7-1 = 29, 40+20-1 = 59, 17+3-1 = 19 tokens), --batch 3:
 * requests 0 and 1 start (1 + 2 blocks reserved), 2 waits until 1 ends (1 + 4 = 5),
 * 3 until 2 ends (4 + 2 > 5): never more than 2 live. The cache holds at most 4
 * blocks (0's one beside 2's first 3 of 40 + 5 tokens; 0 ends before 2 takes its
 * 4th), within the budget, and the tokens are those of the unbudgeted run. A budget of 3 blocks refuses request 2
 * before any work. */
static void test_kv_budget_schedule(void **state) {
    (void)state;
    const int64_t len[NREQ] = {5, 23, 40, 17}, max_new[NREQ] = {12, 7, 20, 3}, block = 32768;
    rt_gen_cfg cfg = cfg_default();
    requests a, b;
    make_requests(&a, 0, len, max_new);
    make_requests(&b, 0, len, max_new);
    rt_gen_stats st;
    serve(&cfg, &a, &st, NULL);
    assert_int_equal(st.max_live, 3);
    assert_int_equal(st.kv_budget_blocks, 0);
    cfg.kv_budget_bytes = 5 * block + block / 2; /* floor: 5 blocks */
    rt_mem mem;
    serve(&cfg, &b, &st, &mem);
    assert_int_equal(st.kv_budget_blocks, 5);
    assert_int_equal(st.max_live, 2);
    assert_int_equal(st.kv_blocks, 4);
    assert_int_equal(mem.peak[RT_MEM_KV], 4 * block);
    for (int i = 0; i < NREQ; i++)
        for (int64_t t = 0; t < max_new[i]; t++)
            if (a.out[i][t] != b.out[i][t])
                fail_msg("request %d token %lld: %d without a budget, %d with", i, (long long)t,
                         a.out[i][t], b.out[i][t]);
    /* request 2 alone needs 4 blocks */
    cfg.kv_budget_bytes = 3 * block;
    fixture f;
    ps_err err = {{0}};
    setup(&f, &cfg, 7);
    assert_int_equal(rt_gen_run(&f.g, b.r, NREQ, &err), -1);
    assert_non_null(strstr(err.msg, "request 2: expected at most the KV budget's 3 blocks"));
    assert_non_null(strstr(err.msg, "found 4 blocks (40 prompt + 20 new - 1 tokens"));
    assert_int_equal(f.g.st.prefill_tokens, 0);
    assert_int_equal(f.mem.peak[RT_MEM_KV], 0);
    teardown(&f);
}

/* The contract's bytes per category for tiny-1m at tp 1 (docs/runtime.md "Inference"). */
static void test_memory_by_hand(void **state) {
    (void)state;
    const int64_t h = 128, qw = 128, kvw = 64, f = 512, V = 256, L = 4;
    const int64_t lin_elems = qw * h + 2 * kvw * h + h * qw + 3 * f * h;
    const int64_t rest = V * h * 2 + (2 * L + 1) * h;
    const int64_t len[NREQ] = {5, 23, 40, 17}, max_new[NREQ] = {12, 7, 20, 3};
    for (int s = 0; s < 2; s++) {
        rt_gen_cfg cfg = cfg_default();
        cfg.weights = s ? RT_W_BF16 : RT_W_F32;
        requests q;
        make_requests(&q, 0, len, max_new);
        rt_mem mem;
        serve(&cfg, &q, NULL, &mem);
        assert_int_equal(mem.peak[MEM_PARAMS], (L * lin_elems + rest) * (s ? 2 : 4));
        assert_int_equal(mem.peak[RT_MEM_SCALES], 0);
        /* the largest forward: a prefill chunk of 8 tokens (batch 3) */
        const int64_t n = 8, deq = s ? f * h * 4 : 0;
        assert_int_equal(mem.peak[MEM_ACTIVATIONS], 4 * n * (3 * h + 2 * qw + 2 * kvw + 2 * f) + deq);
        assert_int_equal(mem.peak[RT_MEM_LOGITS], 3 * V * 4); /* 3 sequences decode together */
    }
}

/* The same for two quantized schemes: int8-vector (1 byte per weight, one fp32 scale per
 * output row, the input quantized per token: n * C_max int8 + a scale and a zero per row,
 * the bf16 lm_head dequantized) and int4-block with groups of 32 (half a byte per weight,
 * a scale per 32, weight-only: the largest linear, w1 [512][128], dequantized). */
static void test_memory_quantized_by_hand(void **state) {
    (void)state;
    const int64_t h = 128, qw = 128, kvw = 64, f = 512, V = 256, L = 4, n = 8;
    const int64_t lin_elems = qw * h + 2 * kvw * h + h * qw + 3 * f * h;
    const int64_t lin_rows = qw + 2 * kvw + h + 2 * f + h;
    const int64_t rest = (V * h * 2 + (2 * L + 1) * h) * 2;
    const int64_t act = 4 * n * (3 * h + 2 * qw + 2 * kvw + 2 * f);
    const int64_t len[NREQ] = {5, 23, 40, 17}, max_new[NREQ] = {12, 7, 20, 3};
    for (int s = 0; s < 2; s++) {
        rt_gen_cfg cfg = cfg_default();
        cfg.weights = s ? RT_W_I4_BLOCK : RT_W_I8_VECTOR;
        requests q;
        make_requests(&q, 0, len, max_new);
        rt_mem mem;
        serve(&cfg, &q, NULL, &mem);
        if (!s) {
            assert_int_equal(mem.peak[MEM_PARAMS], L * lin_elems + rest);
            assert_int_equal(mem.peak[RT_MEM_SCALES], L * lin_rows * 4);
            assert_int_equal(mem.peak[MEM_ACTIVATIONS], act + n * f + 8 * n + V * h * 4);
        } else {
            assert_int_equal(mem.peak[MEM_PARAMS], L * lin_elems / 2 + rest);
            assert_int_equal(mem.peak[RT_MEM_SCALES], L * lin_elems / 32 * 4);
            assert_int_equal(mem.peak[MEM_ACTIVATIONS], act + f * h * 4);
        }
        assert_int_equal(mem.peak[RT_MEM_LOGITS], 3 * V * 4);
    }
}

static void test_outliers_preserve_f32(void **state) {
    (void)state;
    rt_gen_cfg cfg = cfg_default();
    cfg.prefill_chunk = 64;
    float *z[2];
    int32_t tok[30];
    for (int i = 0; i < 30; i++)
        tok[i] = (i * 37 + 11) % 256;
    fixture fx[2];
    for (int k = 0; k < 2; k++) {
        ps_err err = {{0}};
        memset(&fx[k], 0, sizeof fx[k]);
        assert_int_equal(rt_mem_init(&fx[k].mem, rt_backend_cpu.mem_alloc, rt_backend_cpu.mem_free), 0);
        assert_int_equal(rt_gen_ckpt_random(&fx[k].ck, &TINY, 3), 0);
        if (k) rt_gen_inject_outliers(&fx[k].ck, 4, 50.0);
        if (rt_gen_init(&fx[k].g, &fx[k].ck, &cfg, &rt_backend_cpu, &fx[k].mem, NULL, 1, 0, &err))
            fail_msg("%s", err.msg);
        const rt_gen_seg seg = {.seq = NULL, .row = 0, .p0 = 0, .n = 30};
        int64_t rows[30];
        for (int i = 0; i < 30; i++)
            rows[i] = i;
        if (rt_gen_fwd(&fx[k].g, tok, 30, &seg, 1, rows, 30, &z[k], &err)) fail_msg("%s", err.msg);
    }
    int changed = 0;
    for (int64_t i = 0; i < 30 * 256; i++) {
        if (fabsf(z[1][i] - z[0][i]) > 1e-4f * fmaxf(1.0f, fabsf(z[0][i])))
            fail_msg("logit %lld: %.8g with outliers, %.8g without", (long long)i, z[1][i], z[0][i]);
    }
    for (int64_t i = 0; i < fx[0].ck.elems; i++)
        changed += fx[0].ck.data[i] != fx[1].ck.data[i];
    assert_true(changed > 4 * 4 * 640); /* the weights did change */
    for (int k = 0; k < 2; k++) {
        rt_mem_free(&fx[k].mem, z[k]);
        teardown(&fx[k]);
    }
}

static void test_eval_random(void **state) {
    (void)state;
    rt_gen_cfg cfg = cfg_default();
    cfg.prefill_chunk = 64;
    fixture a, b;
    setup(&a, &cfg, 5);
    setup(&b, &cfg, 5);
    int32_t text[600];
    for (int i = 0; i < 600; i++)
        text[i] = (int32_t)((i * 2654435761u) >> 7) % 256;
    double nll, kl;
    int64_t count;
    ps_err err = {{0}};
    if (rt_gen_eval(&a.g, &b.g, text, 600, 256, &nll, &kl, &count, &err)) fail_msg("%s", err.msg);
    assert_int_equal(count, 255 + 255 + 87); /* windows of 256, 256 and 88 tokens */
    const double ppl = exp(nll / (double)count);
    if (!(ppl > 200 && ppl < 330)) fail_msg("perplexity %g, expected about 256", ppl);
    assert_true(kl == 0.0);
    teardown(&a);
    teardown(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scheme_names),
        cmocka_unit_test(test_cache_equals_recompute),
        cmocka_unit_test(test_prefix_cache_blocks),
        cmocka_unit_test(test_kv_budget_schedule),
        cmocka_unit_test(test_memory_by_hand),
        cmocka_unit_test(test_memory_quantized_by_hand),
        cmocka_unit_test(test_outliers_preserve_f32),
        cmocka_unit_test(test_eval_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
