/* test_errors.c — every class of bad input gets a message naming the place
 * (file:line:col or the --set argument), the field, what was expected and what
 * was found; never a crash (docs/specs.md §Errors). */
#define _DEFAULT_SOURCE /* mkstemps */
#include <unistd.h>

#include "tu.h"

/* Lines of a good plan; tests replace one line at a time. */
static const char *const good[] = {
    "model: llama3-8b",
    "cluster: dgx-h100",
    "gpus: 8",
    "parallel: {dp: 8, tp: 1, pp: 1, cp: 1, zero: 1}",
    "batch: {global: 64, micro: 1, seq: 4096}",
    "recompute: none",
    "precision: bf16-mixed",
    "optimizer: adamw",
    NULL};

/* The good plan with line `line` (1-based) replaced by `with` (NULL drops it),
 * and `extra` appended. */
static const char *variant(int line, const char *with, const char *extra) {
    static char buf[4096];
    int o = 0;
    for (int i = 0; good[i]; i++) {
        const char *l = i + 1 == line ? with : good[i];
        if (l) o += snprintf(buf + o, sizeof buf - (size_t)o, "%s\n", l);
    }
    if (extra) snprintf(buf + o, sizeof buf - (size_t)o, "%s\n", extra);
    return buf;
}

static void test_good_plan_loads(void **state) {
    (void)state;
    free(tu_plan(variant(0, NULL, NULL)));
}

static void test_unknown_keys(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(0, NULL, "optimiser: adamw")), "bad.yaml:9:1:", "optimiser",
                "unknown key", "expected one of", "did you mean 'optimizer'", NULL);
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 8, tpp: 1}", NULL)), "bad.yaml:4:19:",
                "parallel.tpp", "unknown key", "did you mean 'tp'", NULL);
}

static void test_wrong_types(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(5, "batch: {global: sixty-four, micro: 1, seq: 4096}", NULL)),
                "bad.yaml:5:17:", "batch.global", "expected a positive integer",
                "found \"sixty-four\"", NULL);
    tu_contains(tu_plan_error(variant(5, "batch: {global: \"64\", micro: 1, seq: 4096}", NULL)),
                "batch.global", "found the string \"64\"", NULL);
    tu_contains(tu_plan_error(variant(4, "parallel: 8", NULL)), "bad.yaml:4:11:", "parallel",
                "expected a mapping", "found \"8\"", NULL);
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 8, sp: maybe}", NULL)), "parallel.sp",
                "expected true or false", "found \"maybe\"", NULL);
    tu_contains(tu_plan_error(variant(6, "recompute: partial", NULL)), "bad.yaml:6:12:",
                "recompute", "expected one of none, selective, full", "found \"partial\"", NULL);
    tu_contains(tu_plan_error(variant(7, "precision: bf8", NULL)), "precision",
                "expected one of bf16-mixed", "found \"bf8\"", NULL);
}

static void test_missing_fields(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(5, "batch: {global: 64, micro: 1}", NULL)), "bad.yaml:5:8:",
                "batch.seq", "missing field", "expected a positive integer", NULL);
    tu_contains(tu_plan_error(variant(8, NULL, NULL)), "optimizer", "missing field", NULL);
    tu_contains(tu_plan_error(variant(1, NULL, NULL)), "model", "missing field", NULL);
    tu_contains(tu_plan_error(variant(4, "parallel: {tp: 1}", NULL)), "parallel.dp", "missing field",
                NULL);
}

static void test_non_positive(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(5, "batch: {global: 64, micro: 0, seq: 4096}", NULL)),
                "bad.yaml:5:28:", "batch.micro", "expected a positive integer", "found 0", NULL);
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: -8}", NULL)), "parallel.dp",
                "found -8", NULL);
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 8, zero: 4}", NULL)), "parallel.zero",
                "expected an integer from 0 to 3", "found 4", NULL);
}

/* The good plan with gpus and parallel replaced. */
static const char *degrees(const char *gpus, const char *parallel) {
    static char buf[4096];
    char l3[64], l4[128];
    snprintf(l3, sizeof l3, "gpus: %s", gpus);
    snprintf(l4, sizeof l4, "parallel: %s", parallel);
    int o = 0;
    for (int i = 0; good[i]; i++)
        o += snprintf(buf + o, sizeof buf - (size_t)o, "%s\n", i == 2 ? l3 : i == 3 ? l4 : good[i]);
    return buf;
}

static void test_degrees_that_do_not_divide(void **state) {
    (void)state;
    /* tp = 3 does not divide 32 heads: the message points at both files */
    tu_contains(tu_plan_error(degrees("24", "{dp: 8, tp: 3}")), "bad.yaml:4:23:", "parallel.tp",
                "expected a divisor of the model's heads = 32", "llama3-8b.yaml:6:8", "found 3",
                NULL);
    /* tp = 16 divides 32 heads but not 8 kv_heads */
    tu_contains(tu_plan_error(degrees("16", "{dp: 1, tp: 16}")), "parallel.tp", "kv_heads = 8",
                "llama3-8b.yaml:7:11", "found 16", NULL);
    /* pp = 3 does not divide 32 layers */
    tu_contains(tu_plan_error(degrees("6", "{dp: 2, pp: 3}")), "parallel.pp",
                "expected a divisor of the model's layers = 32", "llama3-8b.yaml:4:9", "found 3",
                "pipeline.layers", NULL);
    /* an explicit split must cover the layers */
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 1, pp: 8}",
                                      "pipeline: {layers: [4, 4, 4, 4, 4, 4, 4, 5]}")),
                "pipeline.layers", "summing to the model's layers = 32",
                "found 8 stages summing to 33", NULL);
    /* dp*tp*pp*cp != GPUs */
    tu_contains(tu_plan_error(degrees("8", "{dp: 4}")), "bad.yaml:4:11:", "parallel",
                "expected dp*tp*pp*cp to equal the 8 GPUs", "found 4*1*1*1 = 4", NULL);
    tu_contains(tu_plan_error(degrees("16", "{dp: 2, tp: 2, pp: 2, cp: 1}")),
                "found 2*2*2*1 = 8", NULL);
    /* batch not divisible by micro * dp */
    tu_contains(tu_plan_error(variant(5, "batch: {global: 60, micro: 1, seq: 4096}", NULL)),
                "bad.yaml:5:17:", "batch.global", "expected a multiple of micro*dp = 1*8 = 8",
                "found 60", NULL);
    /* more GPUs than the cluster has */
    tu_contains(tu_plan_error("model: tiny-1m\ncluster: local-cpu\ngpus: 16\nparallel: {dp: 16}\n"
                              "batch: {global: 16, micro: 1, seq: 64}\nrecompute: none\n"
                              "precision: fp32\noptimizer: adamw\n"),
                "bad.yaml:3:7:", "gpus", "expected at most the 8 GPUs of cluster local-cpu",
                "found 16", NULL);
}

static void test_other_impossible_plans(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 8, sp: true}", NULL)), "parallel.sp",
                "expected false with tp = 1", NULL);
    const char *gpt2 = "model: gpt2-124m\ncluster: dgx-h100\ngpus: 2\nparallel: {dp: 1, cp: 2}\n"
                       "batch: {global: 4, micro: 1, seq: 1024}\nrecompute: none\n"
                       "precision: bf16-mixed\noptimizer: adamw\n";
    tu_contains(tu_plan_error(gpt2), "parallel.cp", "attention: standard", "gpt2-124m.yaml", NULL);
    tu_contains(tu_plan_error("model: gpt2-124m\ncluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\n"
                              "batch: {global: 4, micro: 1, seq: 2048}\nrecompute: none\n"
                              "precision: bf16-mixed\noptimizer: adamw\n"),
                "batch.seq", "max_position = 1024", "found 2048", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "pipeline: {schedule: interleaved, virtual: 2}")),
                "pipeline.schedule", "pp >= 2", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "pipeline: {virtual: 2}")), "pipeline.virtual",
                "expected 1 unless pipeline.schedule is interleaved", NULL);
}

static void test_yaml_syntax_and_files(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 8", NULL)), "bad.yaml:", "not valid YAML",
                NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "model: llama3-70b")), "bad.yaml:9:1:", "model",
                "duplicate key (first given at bad.yaml:1:1)", NULL);
    tu_contains(tu_plan_error(""), "empty document", NULL);
    tu_contains(tu_plan_error(variant(1, "model: llama-9000", NULL)), "bad.yaml:1:8:", "model",
                "found \"llama-9000\"", "no readable file at", NULL);
    /* an error inside a model file names that file */
    char path[] = "/tmp/parasim-model-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    const char *model = "name: m\nlayers: 2\nhidden: 64\nheads: 4\nkv_heads: 3\nffn_hidden: 128\n"
                        "vocab: 10\ntied_embeddings: no\nnorm: rmsnorm\nmlp: swiglu\n"
                        "attention: flash\ndropout: 0\nposition: rope\nbias: false\n";
    assert_true(write(fd, model, strlen(model)) == (ssize_t)strlen(model));
    close(fd);
    char plan[512];
    snprintf(plan, sizeof plan, "model: %s\ncluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\n"
             "batch: {global: 1, micro: 1, seq: 16}\nrecompute: none\nprecision: fp32\n"
             "optimizer: sgd\n", path);
    char where[600];
    snprintf(where, sizeof where, "%s:5:11:", path);
    tu_contains(tu_plan_error(plan), where, "kv_heads", "expected a divisor of heads = 4",
                "found 3", NULL);
    unlink(path);
}

/* Values the YAML layer used to misread (issue 9): a second document, tags,
 * a quoted or !!str number, a NUL inside a string, a rate that is finite only
 * before its unit. */
static void test_misread_values(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(0, NULL, "---\nmodel: [")), "bad.yaml:9:1:",
                "expected one YAML document, found a second one", NULL);
    tu_contains(tu_plan_error(variant(3, "gpus: !custom 8", NULL)), "bad.yaml:3:7:",
                "found the tag \"!custom\"", NULL);
    tu_contains(tu_plan_error(variant(5, "batch: {global: !!str 64, micro: 1, seq: 4096}", NULL)),
                "bad.yaml:5:17:", "batch.global", "found the string \"64\"", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "memory: {fragmentation: \"0.1\"}")),
                "bad.yaml:9:", "memory.fragmentation",
                "expected a number, found the string \"0.1\"", NULL);
    const char *cl = "cluster: {name: c, gpus_per_node: 8, nodes: 1, "
                     "links: {intra_node: {bandwidth: 1 GB/s, latency: 1 us}, "
                     "inter_node: {bandwidth: 1 GB/s, latency: 1 us}}, "
                     "gpu: {name: g, memory: \"80 GiB\", hbm_bandwidth: 2 TB/s, "
                     "peak_flops: {bf16: 1e300 PFLOP/s, fp16: 1 TFLOP/s, fp32: 1 TFLOP/s}}}";
    tu_contains(tu_plan_error(variant(2, cl, NULL)), "bad.yaml:2:", "gpu.peak_flops.bf16",
                "found \"1e300 PFLOP/s\" (too large", NULL);
    /* an HF config.json: a NUL in model_type, a quoted number */
    char path[] = "/tmp/parasim-hf-XXXXXX.json";
    const char *cfgs[] = {
        "{\"model_type\": \"llama\\u0000x\", \"hidden_size\": 64}",
        "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": \"2\"}",
        "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 2,\n"
        " \"num_attention_heads\": 4, \"intermediate_size\": 128, \"vocab_size\": 10,\n"
        " \"attention_dropout\": \"0.1\"}"};
    const char *want[][2] = {{":1:16:", "found a NUL (\\u0000) after \"llama\""},
                             {":1:65:", "num_hidden_layers: expected an integer from 1 to 100000, "
                                        "found the string \"2\""},
                             {":3:23:", "attention_dropout: expected a number, "
                                        "found the string \"0.1\""}};
    for (int i = 0; i < 3; i++) {
        int fd = mkstemps(path, 5);
        assert_true(fd >= 0);
        assert_true(write(fd, cfgs[i], strlen(cfgs[i])) == (ssize_t)strlen(cfgs[i]));
        close(fd);
        model_spec m;
        ps_err err = {{0}};
        assert_int_not_equal(model_load_file(path, &m, &err), 0);
        tu_contains(err.msg, path, want[i][0], want[i][1], NULL);
        unlink(path);
        memcpy(path + strlen(path) - 11, "XXXXXX", 6);
    }
}

static void test_set_overrides(void **state) {
    (void)state;
    plan_spec *s = calloc(1, sizeof *s);
    ps_err err = {{0}};
    plan_override ok[] = {{"parallel.tp=2"}, {"parallel.dp=4"}, {"batch.micro=2"},
                          {"pipeline.schedule=afab"}};
    assert_int_equal(plan_load(NULL, ok, 4, s, &err), 0);
    assert_int_equal(s->cfg.tp, 2);
    assert_int_equal(s->cfg.dp, 4);
    assert_int_equal(s->cfg.micro_batch, 2);
    assert_int_equal(s->cfg.schedule, SCHED_AFAB);
    plan_override bad[] = {{"parallel.tp=x"}};
    assert_int_not_equal(plan_load(NULL, bad, 1, s, &err), 0);
    tu_contains(err.msg, "--set parallel.tp=x", "parallel.tp", "found \"x\"", NULL);
    plan_override odd[] = {{"parallel.tp=3"}, {"parallel.dp=auto"}};
    assert_int_not_equal(plan_load(NULL, odd, 2, s, &err), 0);
    tu_contains(err.msg, "parallel.dp", "dp: auto", NULL);
    plan_override noeq[] = {{"parallel.tp"}};
    assert_int_not_equal(plan_load(NULL, noeq, 1, s, &err), 0);
    tu_contains(err.msg, "expected --set key.path=value", NULL);
    plan_override into_scalar[] = {{"model.layers=4"}};
    assert_int_not_equal(plan_load(NULL, into_scalar, 1, s, &err), 0);
    tu_contains(err.msg, "model", "expected a mapping", "found \"llama3-8b\"", NULL);
    free(s);
}

/* Placement, overlap and the cluster's efficiency block (docs/specs.md). */
static void test_time_fields(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(0, NULL, "placement: [tp, cp, pp, tp]")), "bad.yaml:9:25:",
                "placement", "each of dp, tp, pp, cp exactly once", "a repeat", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "placement: [tp, pp, dp]")), "bad.yaml:9:12:",
                "placement", "innermost first", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "overlap: {dp: true, ep: false}")), "bad.yaml:9:",
                "overlap.ep", "unknown key", NULL);
    const char *cl = "cluster: {name: c, gpus_per_node: 8, nodes: 1, "
                     "links: {intra_node: {bandwidth: 1 GB/s, latency: 1 us}, "
                     "inter_node: {bandwidth: 1 GB/s, latency: 1 us%s}}, "
                     "gpu: {name: g, memory: 80 GiB, hbm_bandwidth: 2 TB/s, "
                     "peak_flops: {bf16: 1 TFLOP/s, fp16: 1 TFLOP/s, fp32: 1 TFLOP/s}%s}}";
    char line[1024];
    snprintf(line, sizeof line, cl, "", ", efficiency: {gemm: [[128, 0.5], [64, 0.6]]}");
    tu_contains(tu_plan_error(variant(2, line, NULL)), "bad.yaml:2:", "gpu.efficiency.gemm",
                "increasing", "[64, 0.6]", NULL);
    snprintf(line, sizeof line, cl, "", ", efficiency: {gemm: [[128, 1.5]]}");
    tu_contains(tu_plan_error(variant(2, line, NULL)), "gpu.efficiency.gemm", "(0, 1]", NULL);
    snprintf(line, sizeof line, cl, "", ", efficiency: {gemm: [128, 0.5]}");
    tu_contains(tu_plan_error(variant(2, line, NULL)), "gpu.efficiency.gemm", "expected a pair",
                NULL);
    snprintf(line, sizeof line, cl, ", efficiency: 1.2", "");
    tu_contains(tu_plan_error(variant(2, line, NULL)), "links.inter_node.efficiency",
                "expected a fraction", "found 1.2", NULL);
    snprintf(line, sizeof line, cl, "", ", efficiency: {overlap: 1.5, hbm: 0.8}");
    tu_contains(tu_plan_error(variant(2, line, NULL)), "gpu.efficiency.overlap",
                "expected a fraction", "[0, 1]", "found 1.5", NULL);
    snprintf(line, sizeof line, cl, "", ", efficiency: {hbm: 0}");
    tu_contains(tu_plan_error(variant(2, line, NULL)), "gpu.efficiency.hbm", "(0, 1]", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_plan_loads),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_non_positive),
        cmocka_unit_test(test_degrees_that_do_not_divide),
        cmocka_unit_test(test_other_impossible_plans),
        cmocka_unit_test(test_yaml_syntax_and_files),
        cmocka_unit_test(test_misread_values),
        cmocka_unit_test(test_set_overrides),
        cmocka_unit_test(test_time_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
