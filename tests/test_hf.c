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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
