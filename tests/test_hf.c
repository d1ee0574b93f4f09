/* test_hf.c — Hugging Face config.json files read as model specs give the same
 * model as parasim's own YAML (copies of the public configs in tests/data/hf). */
#include "cost/params.h"
#include "tu.h"

static model_spec load(const char *rel) {
    model_spec m;
    char path[1024];
    ps_err err = {{0}};
    snprintf(path, sizeof path, "%s/tests/data/hf/%s", spec_path_data_dir(), rel);
    if (model_load_file(path, &m, &err)) fail_msg("%s", err.msg);
    return m;
}

static void test_llama_config(void **state) {
    (void)state;
    model_spec hf = load("llama3-8b/config.json"), own = tu_model("llama3-8b");
    assert_int_equal(params_total(&hf.cfg), 8030261248LL);
    assert_memory_equal(&hf.cfg, &own.cfg, sizeof hf.cfg);
    assert_string_equal(hf.name, "llama3-8b");
}

static void test_gpt2_config(void **state) {
    (void)state;
    model_spec hf = load("gpt2/config.json"), own = tu_model("gpt2-124m");
    assert_int_equal(params_total(&hf.cfg), 124439808LL);
    assert_int_equal(hf.cfg.ffn_hidden, 4 * 768); /* n_inner absent: 4h */
    assert_memory_equal(&hf.cfg, &own.cfg, sizeof hf.cfg);
}

/* ---- Mixture-of-experts configs: an independent count from the config.json's
 * tensor shapes, enumerated the way the Hugging Face state dict names them
 * (modeling_deepseek.py / transformers Mixtral and Qwen3-MoE), not by calling
 * params.c. `activated` keeps experts_per_token of each layer's routed experts
 * and every other tensor, both embedding tables included (docs/memory.md §1). */

typedef struct {
    int64_t total, activated;
} hf_count;

/* An integer key of the config.json, read here without model_hf.c. */
static int64_t cfg_int(const ynode *root, const char *key) {
    const ynode *n = ynode_get(root, key);
    if (!n || n->kind != YN_SCALAR) fail_msg("config.json has no %s", key);
    return strtoll(n->str, NULL, 10);
}

/* One tensor of rows x cols elements (cols 1 for a vector), repeated n times,
 * of which `used` take part in one token's forward pass. */
static void tensor(hf_count *c, int64_t n, int64_t used, int64_t rows, int64_t cols) {
    c->total += n * rows * cols;
    c->activated += used * rows * cols;
}

/* A SwiGLU MLP (gate_proj, up_proj, down_proj or w1, w3, w2) of width f. */
static void swiglu(hf_count *c, int64_t n, int64_t used, int64_t h, int64_t f) {
    tensor(c, n, used, f, h); /* gate_proj / w1 */
    tensor(c, n, used, f, h); /* up_proj / w3 */
    tensor(c, n, used, h, f); /* down_proj / w2 */
}

/* model.layers.i of DeepSeek-V3 (modeling_deepseek.py DeepseekV3DecoderLayer). */
static void deepseek_layer(hf_count *c, const ynode *r, bool moe) {
    const int64_t h = cfg_int(r, "hidden_size"), nh = cfg_int(r, "num_attention_heads");
    const int64_t ql = cfg_int(r, "q_lora_rank"), kl = cfg_int(r, "kv_lora_rank");
    const int64_t nope = cfg_int(r, "qk_nope_head_dim"), rope = cfg_int(r, "qk_rope_head_dim");
    const int64_t v = cfg_int(r, "v_head_dim");
    tensor(c, 1, 1, h, 1);                          /* input_layernorm */
    tensor(c, 1, 1, h, 1);                          /* post_attention_layernorm */
    tensor(c, 1, 1, ql, h);                         /* self_attn.q_a_proj */
    tensor(c, 1, 1, ql, 1);                         /* self_attn.q_a_layernorm */
    tensor(c, 1, 1, nh * (nope + rope), ql);        /* self_attn.q_b_proj */
    tensor(c, 1, 1, kl + rope, h);                  /* self_attn.kv_a_proj_with_mqa */
    tensor(c, 1, 1, kl, 1);                         /* self_attn.kv_a_layernorm */
    tensor(c, 1, 1, nh * (nope + v), kl);           /* self_attn.kv_b_proj */
    tensor(c, 1, 1, h, nh * v);                     /* self_attn.o_proj */
    if (!moe) {
        swiglu(c, 1, 1, h, cfg_int(r, "intermediate_size")); /* mlp.*_proj */
        return;
    }
    const int64_t e = cfg_int(r, "n_routed_experts"), k = cfg_int(r, "num_experts_per_tok");
    const int64_t fe = cfg_int(r, "moe_intermediate_size");
    tensor(c, 1, 1, e, h);                                      /* mlp.gate.weight */
    tensor(c, 1, 1, e, 1);                                      /* mlp.gate.e_score_correction_bias */
    swiglu(c, e, k, h, fe);                                     /* mlp.experts.j.*_proj */
    swiglu(c, 1, 1, h, cfg_int(r, "n_shared_experts") * fe);    /* mlp.shared_experts.*_proj */
}

/* Mixtral (block_sparse_moe) and Qwen3-MoE (mlp.gate, mlp.experts, q_norm/k_norm). */
static void gqa_moe_layer(hf_count *c, const ynode *r, const char *experts_key,
                          const char *ffn_key, bool qk_norm) {
    const int64_t h = cfg_int(r, "hidden_size"), nh = cfg_int(r, "num_attention_heads");
    const int64_t kv = cfg_int(r, "num_key_value_heads");
    const int64_t hd = ynode_get(r, "head_dim") ? cfg_int(r, "head_dim") : h / nh;
    const int64_t e = cfg_int(r, experts_key), k = cfg_int(r, "num_experts_per_tok");
    tensor(c, 1, 1, h, 1);            /* input_layernorm */
    tensor(c, 1, 1, h, 1);            /* post_attention_layernorm */
    tensor(c, 1, 1, nh * hd, h);      /* self_attn.q_proj */
    tensor(c, 1, 1, kv * hd, h);      /* self_attn.k_proj */
    tensor(c, 1, 1, kv * hd, h);      /* self_attn.v_proj */
    tensor(c, 1, 1, h, nh * hd);      /* self_attn.o_proj */
    if (qk_norm) {
        tensor(c, 1, 1, hd, 1);       /* self_attn.q_norm */
        tensor(c, 1, 1, hd, 1);       /* self_attn.k_norm */
    }
    tensor(c, 1, 1, e, h);            /* router: block_sparse_moe.gate / mlp.gate */
    swiglu(c, e, k, h, cfg_int(r, ffn_key)); /* experts.j.{w1,w3,w2} / *_proj */
}

/* The whole checkpoint: embed_tokens, the layers, model.norm, lm_head; for
 * DeepSeek-V3 also the MTP layers apart (*mtp, with their own copies of the
 * embedding and head as the checkpoint stores them). */
static hf_count hf_enumerate(const ynode *r, hf_count *mtp) {
    hf_count c = {0, 0};
    const char *type = ynode_get(r, "model_type")->str;
    const int64_t h = cfg_int(r, "hidden_size"), V = cfg_int(r, "vocab_size");
    const int64_t layers = cfg_int(r, "num_hidden_layers");
    tensor(&c, 1, 1, V, h); /* model.embed_tokens */
    for (int64_t i = 0; i < layers; i++) {
        if (!strcmp(type, "deepseek_v3"))
            deepseek_layer(&c, r, i >= cfg_int(r, "first_k_dense_replace"));
        else if (!strcmp(type, "mixtral"))
            gqa_moe_layer(&c, r, "num_local_experts", "intermediate_size", false);
        else
            gqa_moe_layer(&c, r, "num_experts", "moe_intermediate_size", true);
    }
    tensor(&c, 1, 1, h, 1); /* model.norm */
    tensor(&c, 1, 1, V, h); /* lm_head */
    *mtp = (hf_count){0, 0};
    if (!strcmp(type, "deepseek_v3"))
        for (int64_t i = 0; i < cfg_int(r, "num_nextn_predict_layers"); i++) {
            tensor(mtp, 1, 1, V, h);     /* model.layers.61.embed_tokens */
            tensor(mtp, 1, 1, h, 1);     /* enorm */
            tensor(mtp, 1, 1, h, 1);     /* hnorm */
            tensor(mtp, 1, 1, h, 2 * h); /* eh_proj */
            tensor(mtp, 1, 1, h, 1);     /* shared_head.norm */
            tensor(mtp, 1, 1, V, h);     /* shared_head.head */
            deepseek_layer(mtp, r, true);
        }
    return c;
}

/* A published figure in billions, rounded (Mistral) or truncated (DeepSeek,
 * Qwen) to its digits: `digits` decimals. */
static void assert_published(const char *what, int64_t n, double billions, int digits,
                             bool truncated) {
    const double unit = digits ? 0.1 : 1.0, b = (double)n / 1e9;
    const bool ok = truncated ? b >= billions && b < billions + unit
                              : b >= billions - unit / 2 && b < billions + unit / 2;
    if (!ok)
        fail_msg("%s: %.4f B is not %.*f B %s", what, b, digits, billions,
                 truncated ? "truncated" : "rounded");
}

static void test_moe_configs(void **state) {
    (void)state;
    struct {
        const char *dir, *yaml;
        int64_t total, activated;
        double pub_total, pub_active;
        int digits;
        bool total_truncated, active_truncated;
    } t[] = {
        /* DeepSeek-V3 Technical Report: "671B total parameters, 37B activated" */
        {"deepseek-v3", "deepseek-v3", 671026419200LL, 37552297472LL, 671, 37, 0, false, true},
        /* Mistral, Mixtral of experts: 46.7B total, 12.9B active */
        {"mixtral-8x7b", "mixtral-8x7b", 46702792704LL, 12879925248LL, 46.7, 12.9, 1, false,
         false},
        /* Mistral, Mixtral 8x22B: 141B total, 39B active */
        {"mixtral-8x22b", "mixtral-8x22b", 140620634112LL, 39152031744LL, 141, 39, 0, false,
         false},
        /* Qwen3-30B-A3B model card: 30.5B in total and 3.3B activated */
        {"qwen3-30b-a3b", "qwen3-30b-a3b", 30532122624LL, 3353032704LL, 30.5, 3.3, 1, false,
         true},
        /* Qwen3-235B-A22B model card: 235B in total and 22B activated */
        {"qwen3-235b-a22b", "qwen3-235b-a22b", 235093634560LL, 22190763520LL, 235, 22, 0,
         false, true},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        char rel[128], path[1024];
        snprintf(rel, sizeof rel, "%s/config.json", t[i].dir);
        model_spec hf = load(rel), own = tu_model(t[i].yaml);
        assert_memory_equal(&hf.cfg, &own.cfg, sizeof hf.cfg);

        ynode *root = NULL;
        ps_err err = {{0}};
        snprintf(path, sizeof path, "%s/tests/data/hf/%s", spec_path_data_dir(), rel);
        assert_int_equal(ynode_load_file(path, &root, &err), 0);
        hf_count mtp, n = hf_enumerate(root, &mtp);
        params_count pc;
        params_count_rank(&hf.cfg, 1, &pc);
        if (pc.total != n.total || pc.activated != n.activated)
            fail_msg("%s: parasim %lld total / %lld activated, the state dict %lld / %lld",
                     t[i].dir, (long long)pc.total, (long long)pc.activated,
                     (long long)n.total, (long long)n.activated);
        assert_int_equal(pc.total, t[i].total);
        assert_int_equal(pc.activated, t[i].activated);
        assert_published(t[i].dir, pc.total, t[i].pub_total, t[i].digits, t[i].total_truncated);
        assert_published(t[i].dir, pc.activated, t[i].pub_active, t[i].digits,
                         t[i].active_truncated);
        /* the MTP modules: the checkpoint stores them with their own embedding
         * and head (DeepSeek-V3's 685B = 671B + 14B); parasim counts them without */
        const int64_t V = cfg_int(root, "vocab_size"), h = cfg_int(root, "hidden_size");
        const int64_t copies = hf.cfg.mtp_layers * 2 * V * h;
        assert_int_equal(pc.mtp + copies, mtp.total);
        ynode_free(root);
    }
}

/* DeepSeek-V3's checkpoint: main model, MTP module and its copies of the
 * embedding and head sum to 684,489,845,504 parameters (bf16 equivalents;
 * the "685B" Hugging Face shows adds the FP8 weight_scale_inv tensors). */
static void test_deepseek_v3_checkpoint(void **state) {
    (void)state;
    model_spec m = load("deepseek-v3/config.json");
    params_count pc;
    params_count_rank(&m.cfg, 1, &pc);
    assert_int_equal(pc.mtp, 11610068224LL);
    assert_int_equal(pc.total + pc.mtp + 2 * 129280LL * 7168, 684489845504LL);
    assert_true(m.cfg.router_bias && m.cfg.dense_layers == 3 && m.cfg.q_lora_rank == 1536);
    assert_int_equal(m.cfg.head_dim, 192); /* qk_nope + qk_rope, not HF's head_dim (rope) */
}

/* A config.json given as text; returns 0 or -1 with the message in *err. */
static int hf_text(const char *text, model_spec *m, ps_err *err) {
    ynode *root = NULL;
    assert_int_equal(ynode_load_string(text, "x/config.json", &root, err), 0);
    int rc = model_from_hf(root, "x/config.json", m, err);
    ynode_free(root);
    return rc;
}

/* Qwen3 dense (Qwen/Qwen3-8B config.json's shape keys): per-head q/k norms,
 * no q/k/v biases (unlike qwen2); the model card's 8.2B. */
static void test_qwen3_dense(void **state) {
    (void)state;
    model_spec m;
    ps_err err = {{0}};
    assert_int_equal(hf_text("{\"model_type\": \"qwen3\", \"attention_bias\": false,\n"
                             " \"head_dim\": 128, \"hidden_act\": \"silu\", \"hidden_size\": 4096,\n"
                             " \"intermediate_size\": 12288, \"num_attention_heads\": 32,\n"
                             " \"num_hidden_layers\": 36, \"num_key_value_heads\": 8,\n"
                             " \"tie_word_embeddings\": false, \"vocab_size\": 151936}",
                             &m, &err),
                     0);
    assert_true(m.cfg.qk_norm && m.cfg.bias == BIAS_NONE && !model_is_moe(&m.cfg));
    const int64_t h = 4096, layer = 2 * h * 4096 + 2 * h * 1024 + 2 * 128 + 2 * h + 3 * h * 12288;
    assert_int_equal(params_total(&m.cfg), 2 * 151936 * h + 36 * layer + h);
    assert_int_equal(params_total(&m.cfg), 8190735360LL);
}

/* MoE layouts parasim cannot express are refused at the key that makes them so. */
static void test_hf_moe_errors(void **state) {
    (void)state;
    model_spec m;
    ps_err err = {{0}};
    static const char qwen3_moe[] =
        "{\"model_type\": \"qwen3_moe\", \"hidden_size\": 64, \"num_hidden_layers\": 4,\n"
        " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 16,\n"
        " \"intermediate_size\": 128, \"moe_intermediate_size\": 32, \"vocab_size\": 100,\n"
        " \"num_experts\": 8, \"num_experts_per_tok\": 2,\n"
        " \"decoder_sparse_step\": STEP, \"mlp_only_layers\": ONLY}";
    char text[1024];
    const struct {
        const char *step, *only;
        int64_t dense; /* -1: refused */
        const char *frag1, *frag2;
    } q[] = {
        {"1", "[]", 0, NULL, NULL},
        {"1", "[1, 0]", 2, NULL, NULL},
        {"1", "[0, 7]", 1, NULL, NULL}, /* layer 7 does not exist: never asked about */
        {"2", "[]", -1, "x/config.json:5:25: decoder_sparse_step",
         "expected 1 (parasim's dense layers are only the first dense_layers"},
        {"1", "[0, 2]", -1, "x/config.json:5:51: mlp_only_layers",
         "found layer 2 listed but not layer 1"},
        {"1", "[0, \"1\"]", -1, "mlp_only_layers", "found the string \"1\""},
        {"1", "3", -1, "x/config.json:5:47: mlp_only_layers", "expected a list of layer indices"},
    };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++) {
        snprintf(text, sizeof text, "%s", qwen3_moe);
        char *at = strstr(text, "STEP");
        char tail[1024];
        snprintf(tail, sizeof tail, "%s%s", q[i].step, at + 4);
        snprintf(at, sizeof text - (size_t)(at - text), "%s", tail);
        at = strstr(text, "ONLY");
        snprintf(tail, sizeof tail, "%s%s", q[i].only, at + 4);
        snprintf(at, sizeof text - (size_t)(at - text), "%s", tail);
        int rc = hf_text(text, &m, &err);
        if (q[i].dense >= 0) {
            if (rc) fail_msg("%s: %s", q[i].only, err.msg);
            assert_int_equal(m.cfg.dense_layers, q[i].dense);
            assert_true(m.cfg.qk_norm && m.cfg.experts == 8 && m.cfg.expert_ffn_hidden == 32);
        } else {
            assert_int_not_equal(rc, 0);
            tu_contains(err.msg, q[i].frag1, q[i].frag2, NULL);
        }
    }
    /* qwen2_moe: a gated shared expert of its own width */
    assert_int_not_equal(hf_text("{\"model_type\": \"qwen2_moe\"}", &m, &err), 0);
    tu_contains(err.msg, "x/config.json:1:16: model_type", "\"qwen2_moe\" is not supported",
                "shared_expert_gate", NULL);
    /* DeepSeek: MoE every moe_layer_freq-th layer; q_lora_rank null (V2-Lite) */
    static const char ds_format[] =
        "{\"model_type\": \"deepseek_v2\", \"hidden_size\": 64, \"num_hidden_layers\": 4,\n"
        " \"num_attention_heads\": 4, \"num_key_value_heads\": 4, \"intermediate_size\": 128,\n"
        " \"vocab_size\": 100, \"n_routed_experts\": 8, \"num_experts_per_tok\": 2,\n"
        " \"n_shared_experts\": 2, \"moe_intermediate_size\": 32, \"first_k_dense_replace\": 1,\n"
        " \"q_lora_rank\": null, \"kv_lora_rank\": 16, \"qk_nope_head_dim\": 16,\n"
        " \"qk_rope_head_dim\": 8, \"v_head_dim\": 16, \"moe_layer_freq\": %d}";
    snprintf(text, sizeof text, ds_format, 1);
    if (hf_text(text, &m, &err)) fail_msg("%s\n%s", err.msg, text);
    assert_true(m.cfg.q_lora_rank == 0 && m.cfg.kv_lora_rank == 16 && !m.cfg.router_bias &&
                m.cfg.head_dim == 24 && m.cfg.shared_experts == 2 && m.cfg.dense_layers == 1);
    /* by hand: q_proj h x heads*(nope+rope) when q_lora_rank is null */
    params_count pc;
    params_count_rank(&m.cfg, 1, &pc);
    assert_int_equal(pc.attn, 64 * 4 * 24 + 64 * (16 + 8) + 16 + 16 * 4 * (16 + 16) + 4 * 16 * 64);
    snprintf(text, sizeof text, ds_format, 2);
    assert_int_not_equal(hf_text(text, &m, &err), 0);
    tu_contains(err.msg, "x/config.json:6:61: moe_layer_freq", "expected 1", "found 2", NULL);
}

static void test_hf_errors(void **state) {
    (void)state;
    ynode *root = NULL;
    ps_err err = {{0}};
    model_spec m;
    assert_int_equal(ynode_load_string("{\"model_type\": \"llama\", \"hidden_size\": 64,\n"
                                       " \"num_hidden_layers\": 2, \"num_attention_heads\": 4,\n"
                                       " \"intermediate_size\": 128, \"vocab_size\": 10,\n"
                                       " \"hidden_act\": \"gelu\"}",
                                       "cfg/config.json", &root, &err),
                     0);
    assert_int_not_equal(model_from_hf(root, "cfg/config.json", &m, &err), 0);
    tu_contains(err.msg, "cfg/config.json:4:16:", "hidden_act", "expected silu", "found \"gelu\"",
                NULL);
    ynode_free(root);
    assert_int_equal(ynode_load_string("{\"model_type\": \"t5\"}", "c.json", &root, &err), 0);
    assert_int_not_equal(model_from_hf(root, "c.json", &m, &err), 0);
    tu_contains(err.msg, "model_type", "expected one of llama, mistral, qwen2, gpt2", "found \"t5\"",
                NULL);
    ynode_free(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_config),
        cmocka_unit_test(test_gpt2_config),
        cmocka_unit_test(test_hf_errors),
        cmocka_unit_test(test_moe_configs),
        cmocka_unit_test(test_qwen3_dense),
        cmocka_unit_test(test_hf_moe_errors),
        cmocka_unit_test(test_deepseek_v3_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
