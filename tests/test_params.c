/* test_params.c — parameter counts against published totals and closed forms
 * computed here by hand (docs/memory.md §1). */
#include "cost/params.h"
#include "tu.h"

/* Totals published with the checkpoints (Hugging Face model cards / configs). */
static void test_published_totals(void **state) {
    (void)state;
    struct {
        const char *name;
        int64_t params;
    } cases[] = {
        {"llama3-8b", 8030261248LL},    {"llama3-70b", 70553706496LL},
        {"llama3-405b", 405853388800LL}, {"llama3.2-1b", 1235814400LL},
        {"gpt2-124m", 124439808LL},     {"gpt2-350m", 354823168LL},
        {"gpt2-774m", 774030080LL},     {"gpt2-1.5b", 1557611200LL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        model_spec m = tu_model(cases[i].name);
        if (params_total(&m.cfg) != cases[i].params)
            fail_msg("%s: %lld parameters, published %lld", cases[i].name,
                     (long long)params_total(&m.cfg), (long long)cases[i].params);
    }
}

/* Narayanan et al. 2021 §5.1: P = 12 l h^2 (1 + 13/(12h) + (V + s)/(12 l h)), which
 * omits the final LayerNorm (2h). Table 1 rounds P to 0.1 B. */
static void test_narayanan_table1(void **state) {
    (void)state;
    struct {
        const char *name;
        int64_t l, h;
        double billions;
    } t[] = {{"gpt-1.7b", 24, 2304, 1.7},      {"gpt-3.6b", 30, 3072, 3.6},
             {"gpt-7.5b", 36, 4096, 7.5},      {"gpt-18.4b", 40, 6144, 18.4},
             {"gpt-39.1b", 48, 8192, 39.1},    {"gpt-76.1b", 60, 10240, 76.1},
             {"gpt-145.6b", 80, 12288, 145.6}, {"gpt-310.1b", 96, 16384, 310.1},
             {"gpt-529.6b", 105, 20480, 529.6}, {"gpt-1t", 128, 25600, 1008.0}};
    const int64_t V = 51200, s = 2048;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        model_spec m = tu_model(t[i].name);
        int64_t l = t[i].l, h = t[i].h;
        int64_t formula = 12 * l * h * h + 13 * l * h + (V + s) * h;
        assert_int_equal(params_total(&m.cfg), formula + 2 * h);
        double b = (double)params_total(&m.cfg) / 1e9;
        if (b < t[i].billions - 0.05 || b >= t[i].billions + 0.05)
            fail_msg("%s: %.3f B does not round to Table 1's %.1f B", t[i].name, b, t[i].billions);
    }
}

/* GPT-3 175B (Brown et al. 2020): same closed form with V = 50257, s = 2048. */
static void test_gpt3(void **state) {
    (void)state;
    model_spec m = tu_model("gpt3-175b");
    const int64_t l = 96, h = 12288;
    assert_int_equal(params_total(&m.cfg), 12 * l * h * h + 13 * l * h + (50257 + 2048) * h + 2 * h);
}

/* Per component for Llama 3 8B, by hand. */
static void test_llama_components(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    params_count c;
    params_count_rank(&m.cfg, 1, &c);
    assert_int_equal(c.embedding, 128256LL * 4096);
    assert_int_equal(c.output, 128256LL * 4096);
    assert_int_equal(c.attn, 4096LL * 4096 * 2 + 2 * 4096LL * 1024);
    assert_int_equal(c.mlp, 3 * 4096LL * 14336);
    assert_int_equal(c.norms, 2 * 4096);
    assert_int_equal(c.final_norm, 4096);
    assert_int_equal(c.position, 0);
}

/* Megatron layout per TP rank: column/row-parallel weights split, norms
 * replicated, vocab-parallel tables padded to a multiple of tp. */
static void test_tp_rank(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    params_count c;
    params_count_rank(&m.cfg, 8, &c);
    assert_int_equal(c.attn, (4096LL * 4096 * 2 + 2 * 4096LL * 1024) / 8);
    assert_int_equal(c.mlp, 3 * 4096LL * 14336 / 8);
    assert_int_equal(c.norms, 2 * 4096);
    assert_int_equal(c.embedding, 128256LL / 8 * 4096);

    model_spec g = tu_model("gpt2-124m"); /* biases: column split, row replicated */
    params_count_rank(&g.cfg, 2, &c);
    const int64_t h = 768;
    assert_int_equal(c.attn, (3 * h * h + 3 * h) / 2 + (h * h) / 2 + h);
    assert_int_equal(c.mlp, (4 * h * h + 4 * h) / 2 + (4 * h * h) / 2 + h);
    assert_int_equal(c.norms, 4 * h);
    assert_int_equal(c.embedding, (50257 + 1) / 2 * h); /* 50257 rows padded to 50258 */
    assert_int_equal(c.position, 1024 * h);             /* replicated */
}

/* DeepSeek-V3 per component by hand (DeepSeek-V2 §2.1 eqs. 9-19 for MLA; V3
 * §2.1.2 for the MoE layer, §2.2 for MTP), whole and per tp rank. */
static void test_deepseek_v3_components(void **state) {
    (void)state;
    model_spec m = tu_model("deepseek-v3");
    params_count c;
    const int64_t h = 7168, nh = 128, ql = 1536, kl = 512, nope = 128, rope = 64, v = 128;
    const int64_t mla = h * ql + ql * nh * (nope + rope) + h * (kl + rope) + kl * nh * (nope + v) +
                        nh * v * h;
    params_count_rank(&m.cfg, 1, &c);
    assert_int_equal(c.attn, mla + ql + kl); /* + q_a_layernorm, kv_a_layernorm */
    assert_int_equal(c.attn, 187107328LL);
    assert_int_equal(c.expert, 3 * h * 2048);
    assert_int_equal(c.router, 256 * h + 256);
    assert_int_equal(c.shared, 3 * h * 2048);
    assert_int_equal(c.mlp, 3 * h * 18432);
    assert_int_equal(c.moe_layer, c.attn + 2 * h + c.router + 257 * c.expert);
    assert_int_equal(c.total, 2 * 129280 * h + h + 3 * c.layer + 58 * c.moe_layer);
    assert_int_equal(c.activated, c.total - 58 * 248 * c.expert);
    assert_int_equal(c.mtp, 2 * h + 2 * h * h + h + c.moe_layer);
    assert_int_equal(c.moe_matmul_active, mla + 256 * h + 9 * 3 * h * 2048);
    assert_int_equal(params_layers(&m.cfg, &c, 0, 61), 3 * c.layer + 58 * c.moe_layer);
    assert_int_equal(params_layers(&m.cfg, &c, 2, 4), c.layer + 3 * c.moe_layer);
    /* tp = 8: up projections and o by heads, latent down projections and norms
     * replicated, shared expert split, routed experts whole */
    params_count_rank(&m.cfg, 8, &c);
    assert_int_equal(c.attn, h * ql + ql * 16 * (nope + rope) + h * (kl + rope) +
                                 kl * 16 * (nope + v) + 16 * v * h + ql + kl);
    assert_int_equal(c.shared, 3 * h * 256);
    assert_int_equal(c.expert, 3 * h * 2048);
}

/* Qwen3's q_norm / k_norm (head_dim each, replicated across tp), and an MTP
 * module on a dense model (a dense layer, not an empty MoE one). */
static void test_qk_norm_and_dense_mtp(void **state) {
    (void)state;
    model_spec m = tu_model("qwen3-30b-a3b");
    params_count c, d;
    params_count_rank(&m.cfg, 4, &c);
    m.cfg.qk_norm = false;
    params_count_rank(&m.cfg, 4, &d);
    assert_int_equal(c.attn - d.attn, 2 * 128);
    assert_int_equal(c.moe_layer - d.moe_layer, 2 * 128);

    model_spec l = tu_model("llama3-8b");
    params_count_rank(&l.cfg, 1, &d);
    assert_int_equal(d.mtp, 0);
    l.cfg.mtp_layers = 2;
    params_count_rank(&l.cfg, 1, &c);
    assert_int_equal(c.total, d.total);
    assert_int_equal(c.mtp, 2 * (3 * 4096 + 2 * 4096LL * 4096 + d.layer));
    assert_int_equal(c.activated, c.total);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_totals), cmocka_unit_test(test_narayanan_table1),
        cmocka_unit_test(test_gpt3), cmocka_unit_test(test_llama_components),
        cmocka_unit_test(test_tp_rank), cmocka_unit_test(test_deepseek_v3_components),
        cmocka_unit_test(test_qk_norm_and_dense_mtp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
