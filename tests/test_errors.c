/* test_errors.c — every class of bad input gets a message naming the place
 * (file:line:col or the --set argument), the field, what was expected and what
 * was found; never a crash (docs/specs.md §Errors). */
#define _DEFAULT_SOURCE /* mkstemps */
#include <unistd.h>

#include <math.h>

#include "cost/act.h"
#include "cost/infer.h"
#include "spec/plan_check.h"
#include "spec/published.h"
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
                "bad.yaml:5:17:", "batch.global", "expected an integer from 1 to 16777216",
                "found \"sixty-four\"", NULL);
    tu_contains(tu_plan_error(variant(5, "batch: {global: \"64\", micro: 1, seq: 4096}", NULL)),
                "batch.global", "found the string \"64\"", NULL);
    tu_contains(tu_plan_error(variant(4, "parallel: 8", NULL)), "bad.yaml:4:11:", "parallel",
                "expected a mapping", "found \"8\"", NULL);
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 8, sp: maybe}", NULL)), "parallel.sp",
                "expected true or false", "found \"maybe\"", NULL);
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 8, cp_algorithm: ulysses}", NULL)),
                "bad.yaml:4:", "parallel.cp_algorithm", "expected one of ring, all-gather",
                "found \"ulysses\"", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "pipeline: {deallocate_outputs: sometimes}")),
                "bad.yaml:9:", "pipeline.deallocate_outputs", "expected true or false",
                "found \"sometimes\"", NULL);
    tu_contains(tu_plan_error(variant(6, "recompute: partial", NULL)), "bad.yaml:6:12:",
                "recompute", "expected one of none, selective, full", "found \"partial\"", NULL);
    tu_contains(tu_plan_error(variant(7, "precision: bf8", NULL)), "precision",
                "expected one of bf16-mixed", "found \"bf8\"", NULL);
}

/* recompute: a policy name or a list of saved-tensor names (docs/specs.md):
 * each bad entry is located, and the valid names are listed. */
static void test_recompute_names(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(6, "recompute: custom", NULL)), "bad.yaml:6:12:",
                "recompute", "expected one of none, selective, full, op, gelu, gelu+norm, or a "
                "list of saved-tensor names to recompute", "found \"custom\"", NULL);
    tu_contains(tu_plan_error(variant(6, "recompute: []", NULL)), "bad.yaml:6:12:", "recompute",
                "found an empty list", NULL);
    tu_contains(tu_plan_error(variant(6, "recompute: [w3.out, w4.out]", NULL)), "bad.yaml:6:21:",
                "recompute", "expected the name of a saved tensor (attn_norm.input, ",
                "mlp.resid_dropout.mask)", "found \"w4.out\"", NULL);
    tu_contains(tu_plan_error(variant(6, "recompute: [attn_norm.input]", NULL)), "bad.yaml:6:13:",
                "recompute", "found attn_norm.input, the layer input that every policy keeps",
                NULL);
    tu_contains(tu_plan_error(variant(6, "recompute: {w3.out: true}", NULL)), "bad.yaml:6:12:",
                "recompute", "or a list of saved-tensor names", NULL);
    /* a name of another block shape: GPT-2's GeLU input is not in Llama's layer */
    tu_contains(tu_plan_error(variant(6, "recompute:\n  - w3.out\n  - gelu.input", NULL)),
                "bad.yaml:8:5:", "recompute", "expected a tensor that a layer of Llama-3-8B saves "
                "(attn_norm.input, attn_norm.stats, qkv.input, attn.q, attn.k, attn.v, "
                "attn.out=o.input, attn.lse, mlp_norm.input, mlp_norm.stats, w1w3.input, w1.out, "
                "w3.out, w2.input)", "found gelu.input", NULL);
    /* good ones load as their policy */
    plan_spec *s = tu_plan(variant(6, "recompute: [w3.out, w2.input, w3.out]", NULL));
    assert_int_equal(s->cfg.recompute, RECOMPUTE_CUSTOM);
    assert_int_equal(s->cfg.recompute_tensors, 1u << AN_W3_OUT | 1u << AN_W2_INPUT);
    free(s);
    s = tu_plan(variant(6, "recompute: gelu+norm", NULL));
    assert_int_equal(s->cfg.recompute, RECOMPUTE_GELU_NORM);
    free(s);
}

static void test_missing_fields(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(5, "batch: {global: 64, micro: 1}", NULL)), "bad.yaml:5:8:",
                "batch.seq", "missing field", "expected a positive integer", NULL);
    tu_contains(tu_plan_error(variant(1, NULL, NULL)), "model", "missing field", NULL);
    tu_contains(tu_plan_error(variant(4, "parallel: {tp: 1}", NULL)), "parallel.dp", "missing field",
                NULL);
}

static void test_non_positive(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(5, "batch: {global: 64, micro: 0, seq: 4096}", NULL)),
                "bad.yaml:5:28:", "batch.micro", "expected an integer from 1 to 16777216",
                "found 0", NULL);
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
    /* context parallelism cuts the sequence into 2*cp equal chunks (the zig-zag layout) */
    tu_contains(tu_plan_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 3\n"
                              "parallel: {dp: 1, cp: 3}\nbatch: {global: 1, micro: 1, seq: 256}\n"
                              "recompute: none\nprecision: fp32\noptimizer: adamw\n"),
                "bad.yaml:5:35: batch.seq: expected a multiple of 2*cp = 6", "found 256", NULL);
    tu_contains(tu_plan_error("model: gpt2-124m\ncluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\n"
                              "batch: {global: 4, micro: 1, seq: 2048}\nrecompute: none\n"
                              "precision: bf16-mixed\noptimizer: adamw\n"),
                "batch.seq", "max_position = 1024", "found 2048", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "pipeline: {schedule: interleaved, virtual: 2}")),
                "pipeline.schedule", "pp >= 2", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "pipeline: {virtual: 2}")), "pipeline.virtual",
                "expected 1 unless pipeline.schedule is interleaved", NULL);
}

/* Megatron-LM's uneven split options (pipeline.first_stage_layers, last_stage_layers,
 * account_for_embedding, account_for_loss) and pipeline.layers with interleaving: each
 * refusal names the field, Megatron's rule and what was found (issue 11). */
static void test_uneven_split_refusals(void **state) {
    (void)state;
    const char *pp4 = "parallel: {dp: 2, pp: 4}";
    /* first/last and account_for together: Megatron-LM refuses them */
    tu_contains(tu_plan_error(variant(4, pp4,
                                      "pipeline: {first_stage_layers: 7, "
                                      "account_for_loss: true}")),
                "bad.yaml:9:32:", "pipeline.first_stage_layers",
                "Megatron-LM refuses them together",
                "found pipeline.account_for_loss: true as well (bad.yaml:9:53)", NULL);
    /* pipeline.layers with a split option */
    tu_contains(tu_plan_error(variant(4, pp4,
                                      "pipeline: {layers: [8, 8, 8, 8], "
                                      "last_stage_layers: 8}")),
                "pipeline.layers", "not both", "pipeline.last_stage_layers is also given", NULL);
    /* first stage of its own without a pipeline */
    tu_contains(tu_plan_error(variant(0, NULL, "pipeline: {first_stage_layers: 4}")),
                "pipeline.first_stage_layers", "expected pp >= 2", "found pp = 1", NULL);
    /* 32 - 7 - 7 = 18 layers over 2 middle stages is fine; 32 - 6 - 7 = 19 is not */
    free(tu_plan(variant(4, pp4, "pipeline: {first_stage_layers: 7, last_stage_layers: 7}")));
    tu_contains(tu_plan_error(variant(4, pp4,
                                      "pipeline: {first_stage_layers: 6, "
                                      "last_stage_layers: 7}")),
                "pipeline.first_stage_layers",
                "less first_stage_layers = 6 and last_stage_layers = 7",
                "split evenly over the 2 middle stage(s)", "found 19 layers left", NULL);
    /* pp = 2 with both given: no middle stage, so nothing may be left */
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 4, pp: 2}",
                                      "pipeline: {first_stage_layers: 10, last_stage_layers: 10}")),
                "over the 0 middle stage(s)", "found 12 layers left", NULL);
    /* account_for: 32 + 1 = 33 layer slots over pp = 4 */
    tu_contains(tu_plan_error(variant(4, pp4, "pipeline: {account_for_embedding: true}")),
                "pipeline.account_for_embedding",
                "expected pp = 4 to divide the model's layers = 32",
                "plus 1 for the embedding and the loss", "found 33, remainder 1", NULL);
    /* interleaved: 126 layers as [7, 8 x 14, 7] over v = 8 chunks (Meta's stage counts, given
     * as pipeline.layers) cannot split stage 0 */
    tu_contains(
        tu_plan_error("model: llama3-405b\ncluster: dgx-h100\ngpus: 16\n"
                      "parallel: {dp: 1, pp: 16}\nbatch: {global: 16, micro: 1, seq: 4096}\n"
                      "pipeline: {schedule: interleaved, virtual: 8, layers: [7, 8, 8, 8, 8, "
                      "8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 7]}\n"
                      "recompute: full\nprecision: bf16-mixed\noptimizer: adamw\n"),
        "pipeline.virtual", "every stage's layers to split evenly over its 8 chunks",
        "found stage 0 with 7 (pipeline.layers[0])", NULL);
    /* first_stage_layers not a multiple of v (Megatron's "must be divisible by virtual
     * pipeline parallel degree") */
    tu_contains(tu_plan_error(variant(4, pp4,
                                      "pipeline: {schedule: interleaved, virtual: 2, "
                                      "first_stage_layers: 8, last_stage_layers: 6}")),
                "found stage 1 with 9 (the middle stages' even share)", NULL);
    tu_contains(tu_plan_error(variant(4, pp4,
                                      "pipeline: {schedule: interleaved, virtual: 2, "
                                      "first_stage_layers: 5, last_stage_layers: 9}")),
                "found stage 0 with 5 (pipeline.first_stage_layers)", NULL);
    /* account_for with interleaving: 34 slots over pp = 2 leave 17 per stage, not even over v = 2
     */
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 4, pp: 2}",
                                      "pipeline: {schedule: interleaved, virtual: 2, "
                                      "account_for_embedding: true, account_for_loss: true}")),
                "found stage 0 with 17 ((layers + embedding + loss) / pp", NULL);
    /* the even case still points at pipeline.virtual, now naming the uneven options */
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 2, pp: 4}",
                                      "pipeline: {schedule: interleaved, virtual: 3}")),
                "expected pp*virtual to divide the model's layers = 32", "first_stage_layers",
                "found 4*3", NULL);
}

/* DualPipe's refusals (docs/schedule.md "DualPipe"): an odd pp, micro-batches odd or
 * fewer than 2 pp (dualpipe.py's assert), a bad split, interleaved-only fields; each
 * names the field, the rule and what was found. */
static void test_dualpipe_refusals(void **state) {
    (void)state;
    const char *dual = "pipeline: {schedule: dualpipe}";
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 8, pp: 1}", dual)),
                "bad.yaml:4:", "parallel.pp", "expected an even pp >= 2", "dualpipe.py",
                "found 1", NULL);
    /* llama3-8b's 32 layers do not split over pp 3 anyway: use 6 layers' worth of pp */
    tu_contains(tu_plan_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 3\n"
                              "parallel: {dp: 1, pp: 3}\nbatch: {global: 6, micro: 1, seq: 64}\n"
                              "pipeline: {schedule: dualpipe}\n"
                              "recompute: none\nprecision: fp32\noptimizer: adamw\n"),
                "bad.yaml:4:", "parallel.pp", "expected an even pp >= 2", "found 3", NULL);
    /* 12 / (1 x 2) = 6 micro-batches over pp = 4: fewer than 2 pp; 18 / 2 = 9: odd */
    static const char *const batch[] = {"12", "18"}, *const found[] = {"= 6,", "= 9,"};
    for (int i = 0; i < 2; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "model: llama3-8b\ncluster: dgx-h100\ngpus: 8\nparallel: {dp: 2, pp: 4}\n"
                 "batch: {global: %s, micro: 1, seq: 4096}\npipeline: {schedule: dualpipe}\n"
                 "recompute: none\nprecision: bf16-mixed\noptimizer: adamw\n",
                 batch[i]);
        tu_contains(tu_plan_error(text), "bad.yaml:5:", "batch.global", found[i],
                    "to be even and at least 2*pp = 8", "num_chunks >= 2 num_ranks", NULL);
    }
    /* the layer split is checked as for any schedule: 8 + 8 + 8 + 9 is not 32 */
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 2, pp: 4}",
                                      "pipeline: {schedule: dualpipe, layers: [8, 8, 8, 9]}")),
                "bad.yaml:9:", "pipeline.layers", "summing to the model's layers = 32",
                "found 4 stages summing to 33", NULL);
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 2, pp: 4}",
                                      "pipeline: {schedule: dualpipe, virtual: 2}")),
                "pipeline.virtual", "expected 1 unless pipeline.schedule is interleaved",
                "found 2", NULL);
    /* valid: 64 / 2 = 32 micro-batches over pp = 4, evenly or as given */
    free(tu_plan(variant(4, "parallel: {dp: 2, pp: 4}", dual)));
    free(tu_plan(variant(4, "parallel: {dp: 2, pp: 4}",
                         "pipeline: {schedule: dualpipe, layers: [7, 9, 9, 7]}")));
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
    tu_contains(tu_plan_error(variant(0, NULL, "train: {betas: [\"0.9\", 0.95]}")), "bad.yaml:9:",
                "train.betas[0]", "expected a number, found the string \"0.9\"", NULL);
    const char *gemm = "cluster: {name: c, gpus_per_node: 8, nodes: 1, "
                       "links: {intra_node: {bandwidth: 1 GB/s, latency: 1 us}, "
                       "inter_node: {bandwidth: 1 GB/s, latency: 1 us}}, "
                       "gpu: {name: g, memory: 80 GiB, hbm_bandwidth: 2 TB/s, "
                       "peak_flops: {bf16: 1 PFLOP/s, fp16: 1 TFLOP/s, fp32: 1 TFLOP/s}, "
                       "efficiency: {gemm: [[\"64\", 0.5]]}}}";
    tu_contains(tu_plan_error(variant(2, gemm, NULL)), "bad.yaml:2:", "gpu.efficiency.gemm",
                "expected a number, found the string \"64\"", NULL);
    /* an HF config.json: a NUL in model_type, a quoted number */
    char path[] = "/tmp/parasim-hf-XXXXXX.json";
    const char *cfgs[] = {
        "{\"model_type\": \"llama\\u0000x\", \"hidden_size\": 64}",
        "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": \"2\"}",
        "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 2,\n"
        " \"num_attention_heads\": 4, \"intermediate_size\": 128, \"vocab_size\": 10,\n"
        " \"attention_dropout\": \"0.1\"}"};
    const char *want[][2] = {{":1:16:", "found a NUL (\\u0000) after \"llama\""},
                             {":1:65:", "num_hidden_layers: expected an integer from 1 to 65536, "
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
    /* the name says what --set changed; a --set name= replaces it; a long list is cut */
    assert_string_equal(s->name, "built-in default (llama3-8b, 8x H100, ZeRO-1) (--set "
                                 "parallel.tp=2, parallel.dp=4, batch.micro=2, "
                                 "pipeline.schedule=afab)");
    plan_override named[] = {{"parallel.zero=2"}, {"name=mine"}};
    assert_int_equal(plan_load(NULL, named, 2, s, &err), 0);
    assert_string_equal(s->name, "mine");
    plan_override many[12];
    for (int i = 0; i < 12; i++) many[i].text = "train.seed=1234567";
    assert_int_equal(plan_load(NULL, many, 12, s, &err), 0);
    assert_int_equal(strlen(s->name), sizeof s->name - 1);
    assert_string_equal(s->name + sizeof s->name - 5, "...)");
    assert_int_equal(plan_load(NULL, NULL, 0, s, &err), 0);
    assert_string_equal(s->name, "built-in default (llama3-8b, 8x H100, ZeRO-1)");
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
    snprintf(line, sizeof line, cl, "", ", efficiency: {optimizer: 0}");
    tu_contains(tu_plan_error(variant(2, line, NULL)), "gpu.efficiency.optimizer", "(0, 1]",
                "found 0", NULL);
    /* links.collectives: each a fraction, the seven names only */
    snprintf(line, sizeof line, cl, "}, collectives: {all_gather: 0.5, all_reduce: 1.5", "");
    tu_contains(tu_plan_error(variant(2, line, NULL)), "links.collectives.all_reduce",
                "expected a fraction", "found 1.5", NULL);
    snprintf(line, sizeof line, cl, "}, collectives: {alltoall: 0.5", "");
    tu_contains(tu_plan_error(variant(2, line, NULL)), "links.collectives", "alltoall", NULL);
    snprintf(line, sizeof line, cl, "}, collectives: {send_recv: [0.5]", "");
    tu_contains(tu_plan_error(variant(2, line, NULL)), "links.collectives.send_recv", NULL);
}


/* A plan around an inline model whose line `line` (1-based, "name: t" is line
 * 2 of the file) is replaced by `with`; the model's fields start at column 3. */
static const char *const tiny_model[] = {
    "name: t",    "layers: 4",          "hidden: 128",   "heads: 4",        "kv_heads: 2",
    "ffn_hidden: 512", "vocab: 256",    "tied_embeddings: false", "norm: rmsnorm",
    "mlp: swiglu", "attention: flash",  "dropout: 0",    "position: rope",  "bias: false",
    NULL};

/* Replace the first `from` in buf (of sizeof 4096) by `to`. */
static void subst(char *buf, const char *from, const char *to) {
    char tail[4096];
    char *at = strstr(buf, from);
    assert_non_null(at);
    snprintf(tail, sizeof tail, "%s", at + strlen(from));
    snprintf(at, 4096 - (size_t)(at - buf), "%s%s", to, tail);
}

static const char *model_variant(int line, const char *with, const char *batch) {
    static char buf[4096];
    int o = snprintf(buf, sizeof buf, "model:\n");
    for (int i = 0; tiny_model[i]; i++)
        o += snprintf(buf + o, sizeof buf - (size_t)o, "  %s\n",
                      i + 2 == line ? with : tiny_model[i]);
    snprintf(buf + o, sizeof buf - (size_t)o,
             "cluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\nbatch: %s\nrecompute: none\n"
             "precision: bf16-mixed\n",
             batch ? batch : "{global: 8, micro: 1, seq: 256}");
    return buf;
}

/* Issue 9: values the loader used to accept overflowed the formulas ("model
 * -29 YFLOP"); every shape field now has a limit, and what the limits still
 * allow to overflow is refused with the numbers. */
static void test_model_limits(void **state) {
    (void)state;
    free(tu_plan(model_variant(0, NULL, NULL)));
    tu_contains(tu_plan_error(model_variant(4, "hidden: 2147483648", NULL)), "bad.yaml:4:11:",
                "hidden", "expected an integer from 1 to 1048576", "found 2147483648", NULL);
    tu_contains(tu_plan_error(model_variant(3, "layers: 100000", NULL)), "bad.yaml:3:11:",
                "layers", "expected an integer from 1 to 65536", NULL);
    tu_contains(tu_plan_error(model_variant(8, "vocab: 33554432", NULL)), "bad.yaml:8:10:",
                "vocab", "expected an integer from 1 to 16777216", NULL);
    tu_contains(tu_plan_error(model_variant(7, "ffn_hidden: 1e12", NULL)), "ffn_hidden", NULL);
    /* heads * head_dim past the width limit */
    tu_contains(tu_plan_error(model_variant(5, "heads: 32\n  head_dim: 65536", NULL)),
                "bad.yaml:5:10:", "heads", "model too large", "heads*head_dim = 32*65536",
                "exceeds the limit of 1048576", NULL);
    /* every field within its limit, the parameter count past 2^48: 65536
     * layers of 3*h*2^24-parameter MLPs is 2^47.6 at h = 64, 2^48.6 at 128 */
    char huge[4096];
    snprintf(huge, sizeof huge, "%s", model_variant(7, "ffn_hidden: 16777216", NULL));
    subst(huge, "layers: 4", "layers: 65536");
    subst(huge, "hidden: 128", "hidden: 64");
    free(tu_plan(huge));
    subst(huge, "hidden: 64", "hidden: 128");
    tu_contains(tu_plan_error(huge), "bad.yaml:2:3:", "model", "model too large",
                "parameters (layers = 65536, hidden = 128, ffn_hidden = 16777216",
                "exceeds the limit of 281474976710656", NULL);
    tu_contains(tu_plan_error(model_variant(15, "bias: false\n  rope_theta: 1e300", NULL)),
                "bad.yaml:16:15:", "rope_theta", "expected a positive number up to 1e+12", NULL);
    tu_contains(tu_plan_error(model_variant(15, "bias: false\n  norm_eps: 2", NULL)),
                "bad.yaml:16:13:", "norm_eps", "expected a positive number up to 1", NULL);
}

/* ---- Issue 12: mixture-of-experts, MLA and MTP model fields (helper moespec).
 * A small model spec with `extra` appended from line 15; the message of the
 * load that must fail. */
static const char *moe_model_error(const char *extra, const char *from, const char *to) {
    static char text[4096];
    static ps_err err;
    snprintf(text, sizeof text,
             "name: m\nlayers: 4\nhidden: 128\nheads: 4\nkv_heads: 4\nffn_hidden: 256\n"
             "vocab: 1000\ntied_embeddings: false\nnorm: rmsnorm\nmlp: swiglu\n"
             "attention: flash\ndropout: 0\nposition: rope\nbias: false\n%s\n",
             extra);
    if (from) subst(text, from, to);
    ynode *root = NULL;
    model_spec m;
    memset(&err, 0, sizeof err);
    assert_int_equal(ynode_load_string(text, "moe.yaml", &root, &err), 0);
    int rc = model_from_node(root, "moe.yaml", &m, &err);
    ynode_free(root);
    if (!rc) fail_msg("expected an error for:\n%s", text);
    return err.msg;
}

static void test_moe_model_fields(void **state) {
    (void)state;
    const char *moe = "experts: 8\nexperts_per_token: 2\nexpert_ffn_hidden: 64\n";
    char text[512];
    /* MoE fields without experts */
    tu_contains(moe_model_error("experts_per_token: 2", NULL, NULL), "moe.yaml:15:20:",
                "experts_per_token", "expected no experts_per_token on a model without experts",
                "found 2", NULL);
    tu_contains(moe_model_error("router_bias: true", NULL, NULL), "moe.yaml:15:14:",
                "router_bias", "without experts", "found true", NULL);
    tu_contains(moe_model_error("dense_layers: 1", NULL, NULL), "moe.yaml:15:15:",
                "dense_layers", "without experts", NULL);
    /* multi-token prediction is costed for MoE models only */
    tu_contains(moe_model_error("mtp_layers: 1", NULL, NULL), "moe.yaml:15:13:", "mtp_layers",
                "expected no mtp_layers on a model without experts", "found 1", NULL);
    /* top-k within the experts; required fields */
    tu_contains(moe_model_error(moe, "experts_per_token: 2", "experts_per_token: 9"),
                "moe.yaml:16:20:", "experts_per_token", "from 1 to experts = 8, found 9", NULL);
    tu_contains(moe_model_error(moe, "experts_per_token: 2", "experts_per_token: 0"),
                "moe.yaml:16:20:", "experts_per_token", "expected an integer from 1 to", NULL);
    tu_contains(moe_model_error(moe, "experts_per_token: 2\n", ""), "moe.yaml:1:1:",
                "experts_per_token", "missing field", NULL);
    tu_contains(moe_model_error(moe, "expert_ffn_hidden: 64\n", ""), "moe.yaml:1:1:",
                "expert_ffn_hidden", "missing field", "required with experts = 8", NULL);
    snprintf(text, sizeof text, "%sdense_layers: 5", moe);
    tu_contains(moe_model_error(text, NULL, NULL), "moe.yaml:18:15:", "dense_layers",
                "expected at most layers = 4", "found 5", NULL);
    /* a layer's experts together within the MLP width limit (2^24) */
    tu_contains(moe_model_error("experts: 4096\nexperts_per_token: 2\nexpert_ffn_hidden: 8192",
                                NULL, NULL),
                "moe.yaml:15:10:", "experts", "model too large",
                "experts*expert_ffn_hidden = 4096*8192",
                "exceeds the limit of 16777216", NULL);
    /* the parameter limit holds with experts: 65536 layers of 256 experts of
     * 65536 (2^24 wide) is 2^47.6 parameters at hidden 64, 2^48.6 at 128 */
    snprintf(text, sizeof text, "experts: 256\nexperts_per_token: 2\nexpert_ffn_hidden: 65536");
    tu_contains(moe_model_error(text, "layers: 4", "layers: 65536"), "moe.yaml:1:1:", "model",
                "model too large", "experts = 256, expert_ffn_hidden = 65536",
                "exceeds the limit of 281474976710656", NULL);
    /* multi-head latent attention */
    const char *mla = "kv_lora_rank: 64\nqk_nope_head_dim: 32\nqk_rope_head_dim: 16\n"
                      "v_head_dim: 32\n";
    tu_contains(moe_model_error("qk_rope_head_dim: 64", NULL, NULL), "moe.yaml:15:19:",
                "qk_rope_head_dim", "expected no qk_rope_head_dim on a model without kv_lora_rank",
                NULL);
    tu_contains(moe_model_error("q_lora_rank: 64", NULL, NULL), "moe.yaml:15:14:", "q_lora_rank",
                "without kv_lora_rank", NULL);
    tu_contains(moe_model_error(mla, "v_head_dim: 32\n", ""), "moe.yaml:1:1:", "v_head_dim",
                "missing field", "required with kv_lora_rank = 64", NULL);
    tu_contains(moe_model_error(mla, "kv_heads: 4", "kv_heads: 2"), "moe.yaml:5:11:", "kv_heads",
                "expected kv_heads = heads = 4 with multi-head latent attention", NULL);
    tu_contains(moe_model_error(mla, "bias: false", "bias: qkv"), "moe.yaml:14:7:", "bias",
                "expected false with multi-head latent attention", "found qkv", NULL);
    snprintf(text, sizeof text, "%shead_dim: 32", mla);
    tu_contains(moe_model_error(text, NULL, NULL), "head_dim",
                "expected qk_nope_head_dim + qk_rope_head_dim = 48", "found 32", NULL);
    snprintf(text, sizeof text, "%sqk_norm: true", mla);
    tu_contains(moe_model_error(text, NULL, NULL), "moe.yaml:19:10:", "qk_norm",
                "expected false with multi-head latent attention", NULL);
    /* MTP modules: a small count */
    tu_contains(moe_model_error("mtp_layers: 65", NULL, NULL), "moe.yaml:15:13:", "mtp_layers",
                "expected an integer from 0 to 64", NULL);
}

/* Issue 9: an out-of-range dropout was located at 1:1 (the model's start). */
static void test_dropout_located(void **state) {
    (void)state;
    tu_contains(tu_plan_error(model_variant(13, "dropout: 1.5", NULL)), "bad.yaml:13:12:",
                "dropout", "expected a probability in [0, 1), found 1.5", NULL);
    ynode *root = NULL;
    ps_err err = {{0}};
    model_spec m;
    assert_int_equal(ynode_load_string("{\"model_type\": \"llama\", \"hidden_size\": 64,\n"
                                       " \"num_hidden_layers\": 2, \"num_attention_heads\": 4,\n"
                                       " \"intermediate_size\": 128, \"vocab_size\": 10,\n"
                                       " \"attention_dropout\": 1.0}",
                                       "cfg/config.json", &root, &err),
                     0);
    assert_int_not_equal(model_from_hf(root, "cfg/config.json", &m, &err), 0);
    tu_contains(err.msg, "cfg/config.json:4:23:", "dropout", "found 1", NULL);
    ynode_free(root);
}

/* Issue 9: batch.global = 2^31 made the event simulation allocate 96 GiB;
 * sizes now have limits, and a plan whose memory or communication bound
 * passes 2^60 bytes is too large (its 64-bit sizes would overflow). */
static void test_plan_limits(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(5, "batch: {global: 2147483648, micro: 1, seq: 4096}", NULL)),
                "bad.yaml:5:17:", "batch.global", "expected an integer from 1 to 16777216",
                "found 2147483648", NULL);
    tu_contains(tu_plan_error(variant(5, "batch: {global: 64, micro: 1, seq: 33554432}", NULL)),
                "batch.seq", "expected an integer from 1 to 16777216", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "memory: {bucket: 2 TiB}")), "bad.yaml:9:18:",
                "memory.bucket", "expected a bucket of at most 1 TiB", NULL);
    /* standard attention keeps micro*heads*seq^2 scores per layer */
    tu_contains(tu_plan_error(model_variant(12, "attention: standard",
                                            "{global: 1024, micro: 1024, seq: 16777216}")),
                "batch.micro", "plan too large: its memory per GPU",
                "1024*16777216 tokens per micro-batch", "exceeds the limit of 2^60 bytes", NULL);
    /* ZeRO-3 gathers the model every micro-batch: 2^23 of them */
    tu_contains(tu_plan_error("model: llama3-8b\ncluster: dgx-h100\nparallel: {dp: 2, zero: 3}\n"
                              "batch: {global: 16777216, micro: 1, seq: 4096}\n"
                              "recompute: none\nprecision: bf16-mixed\n"),
                "bad.yaml:4:17:", "batch.global", "plan too large: its communication", NULL);
    /* degrees whose product does not fit in 64 bits */
    tu_contains(tu_plan_error(variant(4, "parallel: {dp: 16777216, tp: 65536, pp: 256, cp: 65536}",
                                      NULL)),
                "parallel", "more than 2^63", NULL);
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    plan_size size;
    const model_spec m = tu_model("llama3-8b");
    cluster_spec c;
    ps_err err = {{0}};
    char path[1024];
    ps_loc loc;
    ps_loc_set(&loc, "test", 0, 0);
    assert_int_equal(spec_path_resolve("dgx-h100", "plans/clusters", NULL, &loc, "cluster", path,
                                       sizeof path, &err), 0);
    assert_int_equal(cluster_load_file(path, &c, &err), 0);
    plan_size_bound(&m.cfg, &c.cfg, &p, &size);
    assert_true(size.memory > 0 && size.memory < PLAN_SIZE_MAX);
    assert_true(size.comm > 0 && size.comm < PLAN_SIZE_MAX);
    /* the bound holds the evaluated plan */
    eval_result r;
    eval_plan(&m.cfg, &c.cfg, &p, &r, NULL);
    assert_true(r.heavy.total <= size.memory);
    int64_t sent = 0;
    for (int g = 0; g < GROUP_COUNT; g++) sent += r.heavy.comm_bytes[g];
    assert_true(sent <= size.comm);
}

/* A plan around an inline cluster with one link line replaced. */
static const char *cluster_variant(const char *gpu_extra, const char *inter) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "model: tiny-1m\ncluster:\n  name: c\n  gpu:\n    name: g\n    memory: 80 GiB\n"
             "    peak_flops: {bf16: 989 TFLOP/s, fp16: 989 TFLOP/s, fp32: 67 TFLOP/s}\n"
             "    hbm_bandwidth: 3.35 TB/s\n%s  gpus_per_node: 8\n  nodes: 2\n  links:\n"
             "    intra_node: {bandwidth: 450 GB/s, latency: 3 us}\n"
             "    inter_node: %s\n"
             "parallel: {dp: 16}\nbatch: {global: 16, micro: 1, seq: 64}\nrecompute: none\n"
             "precision: bf16-mixed\n",
             gpu_extra, inter);
    return buf;
}

/* Issue 9: latency 1e308 gave a step shorter than its compute, "-nan"
 * exposed communication and 87.9% MFU. Physical quantities have ranges. */
static void test_cluster_limits(void **state) {
    (void)state;
    const char *ok = "{bandwidth: 400 Gbit/s, latency: 5 us}";
    free(tu_plan(cluster_variant("", ok)));
    tu_contains(tu_plan_error(cluster_variant("", "{bandwidth: 400 Gbit/s, latency: 1e308}")),
                "bad.yaml:13:50:", "links.inter_node.latency",
                "expected a latency from 0 to 1 s", "1e308", NULL);
    tu_contains(tu_plan_error(cluster_variant("", "{bandwidth: 1000 TB/s, latency: 5 us}")),
                "bad.yaml:13:29:", "links.inter_node.bandwidth",
                "expected a link bandwidth from 1 MB/s to 100 TB/s", NULL);
    tu_contains(tu_plan_error(cluster_variant("", "{bandwidth: 1 kB/s, latency: 5 us}")),
                "links.inter_node.bandwidth", "from 1 MB/s", NULL);
    char text[4096];
    snprintf(text, sizeof text, "%s", cluster_variant("", ok));
    subst(text, "80 GiB", "2048 TiB");
    tu_contains(tu_plan_error(text), "bad.yaml:6:13:", "gpu.memory",
                "expected a device memory from 1 MiB to 1 PiB", NULL);
    snprintf(text, sizeof text, "%s", cluster_variant("", ok));
    subst(text, "fp32: 67 TFLOP/s", "fp32: 6700 PFLOP/s");
    tu_contains(tu_plan_error(text), "gpu.peak_flops.fp32",
                "expected a peak from 1 MFLOP/s to 1 EFLOP/s", NULL);
    snprintf(text, sizeof text, "%s", cluster_variant("", ok));
    subst(text, "3.35 TB/s", "3350 TB/s");
    tu_contains(tu_plan_error(text), "gpu.hbm_bandwidth", "from 1 MB/s to 1 PB/s", NULL);
    /* the 1e300 PFLOP/s: past any range (and past a double after the unit) */
    snprintf(text, sizeof text, "%s", cluster_variant("", ok));
    subst(text, "bf16: 989 TFLOP/s", "bf16: 1e300 PFLOP/s");
    tu_contains(tu_plan_error(text), "gpu.peak_flops.bf16", NULL);
    /* within the ranges the time model stays finite: the slowest links */
    plan_spec *s = tu_plan(cluster_variant("", "{bandwidth: 1 MB/s, latency: 1 s}"));
    eval_result r;
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r, NULL);
    ps_err err = {{0}};
    assert_int_equal(eval_check_finite(&r, &err), 0);
    assert_true(r.time.step > r.time.compute);
    r.time.exposed[GROUP_DP] = NAN;
    assert_int_equal(eval_check_finite(&r, &err), -1);
    tu_contains(err.msg, "exposed dp communication", "nan", NULL);
    free(s);
}

/* gpu.kernel_dtype (docs/specs.md): fp32, or absent; anything else is
 * refused where it stands. local-cpu (parasim's CPU runtime) sets it. */
static void test_cluster_kernel_dtype(void **state) {
    (void)state;
    const char *ok = "{bandwidth: 400 Gbit/s, latency: 5 us}";
    plan_spec *s = tu_plan(cluster_variant("", ok));
    assert_false(s->cluster.cfg.kernels_fp32);
    free(s);
    s = tu_plan(cluster_variant("    kernel_dtype: fp32\n", ok));
    assert_true(s->cluster.cfg.kernels_fp32);
    free(s);
    tu_contains(tu_plan_error(cluster_variant("    kernel_dtype: bf16\n", ok)),
                "bad.yaml:9:19:", "gpu.kernel_dtype", "expected fp32", "found 'bf16'", NULL);
    tu_contains(tu_plan_error(cluster_variant("    kernel_dtype: [fp32]\n", ok)),
                "bad.yaml:9:19:", "gpu.kernel_dtype", NULL);
    s = tu_plan("model: tiny-1m\ncluster: local-cpu\nparallel: {dp: 1}\n"
                "batch: {global: 1, micro: 1, seq: 64}\nprecision: bf16-mixed\n");
    assert_true(s->cluster.cfg.kernels_fp32);
    free(s);
    s = tu_plan("model: tiny-1m\ncluster: dgx-a100\nparallel: {dp: 1}\n"
                "batch: {global: 1, micro: 1, seq: 64}\nprecision: bf16-mixed\n");
    assert_false(s->cluster.cfg.kernels_fp32);
    free(s);
}

/* kernels.attention names one of the cluster's attention_kernels; the
 * kernel curves are checked where they stand (docs/specs.md). */
static void test_attention_kernels(void **state) {
    (void)state;
    const char *ok = "{bandwidth: 400 Gbit/s, latency: 5 us}";
    const char *eff = "    efficiency: {attention_kernels: {fa2: {forward: [[512, 0.2], [2048, 0.3]], "
                      "backward: [[512, 0.2]]}}}\n";
    char text[4096];
    snprintf(text, sizeof text, "%skernels: {attention: fa2}\n", cluster_variant(eff, ok));
    plan_spec *s = tu_plan(text);
    assert_int_equal(s->cfg.attn_kernel, 1);
    assert_int_equal(s->cluster.cfg.eff.attn_kernel[0].fwd_n, 2);
    free(s);
    snprintf(text, sizeof text, "%skernels: {attention: fa3}\n", cluster_variant(eff, ok));
    tu_contains(tu_plan_error(text), "bad.yaml:19:22:", "kernels.attention",
                "cluster 'c' measures", "fa2", "found 'fa3'", NULL);
    snprintf(text, sizeof text, "%skernels: {attention: fa2}\n", cluster_variant("", ok));
    tu_contains(tu_plan_error(text), "kernels.attention", "attention_kernels: none", NULL);
    snprintf(text, sizeof text, "%skernels: {grad_accumulation_fusion: maybe}\n",
             cluster_variant(eff, ok));
    tu_contains(tu_plan_error(text), "bad.yaml:19:", "kernels.grad_accumulation_fusion", "maybe",
                NULL);
    snprintf(text, sizeof text, "%skernels: {elementwise: lazy}\n", cluster_variant(eff, ok));
    tu_contains(tu_plan_error(text), "bad.yaml:19:", "kernels.elementwise", "fused or eager",
                "found 'lazy'", NULL);
    snprintf(text, sizeof text, "%skernels: {softmax: fa2}\n", cluster_variant(eff, ok));
    tu_contains(tu_plan_error(text), "kernels.softmax", "unknown key", NULL);
    tu_contains(tu_plan_error(cluster_variant("    efficiency: {attention_kernels: {fa2: "
                                              "{forward: [[2048, 0.3], [512, 0.2]], backward: "
                                              "[[512, 0.2]]}}}\n", ok)),
                "bad.yaml:9:", "gpu.efficiency.attention_kernels.fa2.forward",
                "sequence lengths", "increasing", "[512, 0.2]", NULL);
    tu_contains(tu_plan_error(cluster_variant("    efficiency: {attention_kernels: {fa2: "
                                              "{forward: [[512, 0.3]]}}}\n", ok)),
                "gpu.efficiency.attention_kernels.fa2.backward", "missing field", NULL);
    tu_contains(tu_plan_error(cluster_variant("    efficiency: {attention_kernels: {fa2: "
                                              "{forward: [[512, 1.3]], backward: [[512, 0.2]]}}}\n",
                                              ok)),
                "gpu.efficiency.attention_kernels.fa2.forward", "(0, 1]", "[512, 1.3]", NULL);
}

/* Issue 9 (newcomer friction): gpus defaults to dp*tp*pp*cp, not the whole
 * cluster; optimizer to AdamW. */
static void test_plan_defaults(void **state) {
    (void)state;
    plan_spec *s = tu_plan(variant(3, NULL, NULL));
    assert_int_equal(s->cfg.gpus, 8);
    free(s);
    s = tu_plan(variant(8, NULL, NULL));
    assert_int_equal(s->cfg.optimizer, OPT_ADAMW);
    free(s);
    /* no gpus, dp: 2, tp: 4 -> 8 GPUs; no optimizer, no recompute: AdamW, none */
    s = tu_plan("model: llama3-8b\ncluster: dgx-h100\nparallel: {dp: 2, tp: 4}\n"
                "batch: {global: 64, micro: 1, seq: 4096}\nprecision: bf16-mixed\n");
    assert_int_equal(s->cfg.gpus, 8);
    assert_int_equal(s->cfg.optimizer, OPT_ADAMW);
    assert_int_equal(s->cfg.recompute, RECOMPUTE_NONE);
    free(s);
    /* dp: auto without gpus: the whole cluster, as before */
    s = tu_plan("model: tiny-1m\ncluster: local-cpu\nparallel: {dp: auto}\n"
                "batch: {global: 16, micro: 1, seq: 64}\nrecompute: none\nprecision: fp32\n");
    assert_int_equal(s->cfg.gpus, 8);
    assert_int_equal(s->cfg.dp, 8);
    free(s);
    /* more than the cluster: the error points at the degrees */
    tu_contains(tu_plan_error("model: tiny-1m\ncluster: local-cpu\nparallel: {dp: 16}\n"
                              "batch: {global: 16, micro: 1, seq: 64}\nrecompute: none\n"
                              "precision: fp32\n"),
                "bad.yaml:3:11:", "gpus", "expected at most the 8 GPUs of cluster local-cpu",
                "found dp*tp*pp*cp = 16", NULL);
}

/* framework: (framework_load.c): a name no profile has, a value of the wrong
 * kind, and errors inside a profile, each at the profile's file:line:col. */
static const char *framework_error(const char *profile, char *where, size_t where_len) {
    static char path[] = "/tmp/parasim-fw-XXXXXX.yaml";
    memcpy(path + strlen(path) - 11, "XXXXXX", 6);
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    assert_true(write(fd, profile, strlen(profile)) == (ssize_t)strlen(profile));
    close(fd);
    char extra[256];
    snprintf(extra, sizeof extra, "framework: %s", path);
    const char *msg = tu_plan_error(variant(0, NULL, extra));
    snprintf(where, where_len, "%s", path);
    unlink(path);
    return msg;
}

static void test_framework_errors(void **state) {
    (void)state;
    tu_contains(tu_plan_error(variant(0, NULL, "framework: pytorch-lightning")), "bad.yaml:9:12:",
                "framework", "expected the name of a spec in plans/frameworks/",
                "found \"pytorch-lightning\"", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "framework: [megatron]")), "bad.yaml:9:12:",
                "framework", "expected megatron, deepspeed, fsdp2, llmc or the path of a profile",
                "found a list", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "framework: ''")), "bad.yaml:9:12:",
                "found an empty value", NULL);
    char path[128], at[160];
    const struct {
        const char *profile, *where, *frags[3];
    } cases[] = {
        {"name: t\nsource: s\nmemory:\n  grad_buckets: none\n", ":4:3:",
         {"memory.grad_buckets", "unknown key", "did you mean 'grad_bucket'"}},
        {"name: t\nsource: s\nmemory: {loss: fp16}\n", ":3:16:",
         {"memory.loss", "fp32-softmax", "\"fp16\""}},
        {"name: t\nsource: s\nmemory: {loss: fused, loss_chunks: 4}\n", ":3:36:",
         {"memory.loss_chunks", "unless memory.loss is chunked", "found 4"}},
        {"name: t\nmemory: {loss: fused}\n", ":1:1:", {"source", "missing field", NULL}},
        {"name: t\nsource: s\nkernels: {attention: fast}\n", ":3:22:",
         {"kernels.attention", "model, standard, flash", "\"fast\""}},
        {"name: t\nsource: s\nkernels: {dropouts: none}\n", ":3:11:",
         {"kernels.dropouts", "unknown key", "did you mean 'dropout'"}},
        {"name: t\nsource: s\nplan:\n  model: llama3-70b\n", ":4:3:",
         {"plan.model", "expected a default a framework decides", "which the plan itself gives"}},
        {"name: t\nsource: s\nplan:\n  parallel: {zero: 1, dp: 2}\n", ":4:23:",
         {"plan.parallel", "expected only zero", "found dp"}},
        /* a default the plan decoder refuses is located in the profile */
        {"name: t\nsource: s\nplan:\n  memory: {fragmentation: 2}\n", ":4:27:",
         {"memory.fragmentation", "expected a fraction in [0, 1)", NULL}},
        {"name: t\nsource: s\nplan:\n  overlap: {dp: maybe}\n", ":4:17:",
         {"overlap.dp", "\"maybe\"", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *msg = framework_error(cases[i].profile, path, sizeof path);
        snprintf(at, sizeof at, "%s%s", path, cases[i].where);
        tu_contains(msg, at, NULL);
        for (int k = 0; k < 3 && cases[i].frags[k]; k++) tu_contains(msg, cases[i].frags[k], NULL);
    }
}

/* --- helper "published" (issue 11): a published case's `use:` and `family:`,
 * declared in the case or as the file's default, are checked where written. */
static void test_published_use_family(void **state) {
    (void)state;
    const char *tail = "    model: gpt-1.7b\n    seq: 2048\n    parallel: {dp: 8}\n    gpus: 8\n"
                       "    global_batch: 8\n    recompute: full\n    published: %s\n";
    const char *ok = "cluster: dgx-a100\nuse: fit\nfamily: nemo\ncases:\n  - name: x\n";
    struct {
        const char *head, *published, *frags[4];
    } bad[] = {
        {"cluster: dgx-a100\nfamily: nemo\ncases:\n  - name: x\n", NULL,
         {"pub.yaml:4:5", "case.use", "missing field", "fit or held_out"}},
        {"cluster: dgx-a100\nuse: fitted\nfamily: nemo\ncases:\n  - name: x\n", NULL,
         {"pub.yaml:2:6", "use", "expected one of fit, held_out", "found \"fitted\""}},
        {"cluster: dgx-a100\nuse: fit\ncases:\n  - name: x\n    family: megatron\n", NULL,
         {"pub.yaml:5:13", "case.family", "megatron-ptdp", "found \"megatron\""}},
        {"cluster: dgx-a100\nuse: fit\ncases:\n  - name: x\n", NULL,
         {"pub.yaml:4:5", "case.family", "missing field", "file's default"}},
        {"cluster: dgx-a100\nuse: fit\nfamily: nemo\ncases:\n  - name: x\n    use: [fit]\n", NULL,
         {"pub.yaml:6:10", "case.use", "found a list", NULL}},
        /* a peak memory says how it was read, and on which GPU if not the heaviest */
        {ok, "{peak_memory: 1 GiB}",
         {"pub.yaml:12:16", "published.measured_by", "missing field", "max_memory_reserved"}},
        {ok, "{peak_memory: 1 GiB, measured_by: max_memory_allocated, memory_stage: first}",
         {"pub.yaml:12:86", "published.memory_stage", "heaviest, last", "found \"first\""}},
        {ok, "{peak_memory: 1 GiB, measured_by: smi}",
         {"pub.yaml:12:50", "published.measured_by", "nvidia-smi", "found \"smi\""}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024], t[512];
        snprintf(t, sizeof t, tail, bad[i].published ? bad[i].published : "{step_time_s: 1}");
        snprintf(text, sizeof text, "%s%s", bad[i].head, t);
        ynode *root = NULL;
        ps_err err = {{0}};
        int n = 0;
        assert_int_equal(ynode_load_string(text, "pub.yaml", &root, &err), 0);
        const ynode *cases = published_cases(root, &n, &err);
        assert_non_null(cases);
        plan_spec *s = calloc(1, sizeof *s);
        published_case info;
        assert_int_equal(published_plan(root, cases->items[0], "pub.yaml", s, &info, &err), -1);
        tu_contains(err.msg, bad[i].frags[0], bad[i].frags[1], bad[i].frags[2], bad[i].frags[3], NULL);
        free(s);
        ynode_free(root);
    }
}

/* ---- zero3: section and links.nics_per_node / ring_latency (helper zero3) ---- */

/* The zero3: section (docs/specs.md): every field read, each bad value
 * refused where it stands. */
static void test_zero3_fields(void **state) {
    (void)state;
    plan_spec *s = tu_plan(variant(0, NULL, "zero3: {unit: param, prefetch: 2, "
                                            "reshard_after_forward: false, recompute_gather: true, "
                                            "launch: 20 us, launch_per_rank: 3 us, "
                                            "copy_out: true}"));
    const plan_zero3 *z = &s->cfg.zero3;
    assert_true(z->set);
    assert_int_equal(z->unit, ZERO3_UNIT_PARAM);
    assert_int_equal(z->prefetch, 2);
    assert_false(z->reshard_after_forward);
    assert_true(z->recompute_gather);
    assert_float_equal(z->launch_s, 20e-6, 1e-15);
    assert_float_equal(z->launch_per_rank_s, 3e-6, 1e-15);
    assert_true(z->copy_out);
    free(s);
    s = tu_plan(variant(0, NULL, NULL)); /* absent: today's model */
    assert_false(s->cfg.zero3.set);
    assert_int_equal(s->cfg.zero3.prefetch, 1);
    assert_true(s->cfg.zero3.reshard_after_forward);
    free(s);
    s = tu_plan(variant(0, NULL, "zero3: {unit: bucket, bucket: 50 MB}"));
    assert_int_equal(s->cfg.zero3.bucket_bytes, 50000000);
    free(s);
    tu_contains(tu_plan_error(variant(0, NULL, "zero3: {unit: module}")), "bad.yaml:9:15:",
                "zero3.unit", "layer", "param", "bucket", "module", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "zero3: {unit: bucket}")), "bad.yaml:9:8:",
                "zero3.bucket", "expected a bucket size", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "zero3: {bucket: 50 MB}")), "bad.yaml:9:17:",
                "zero3.bucket", "unless unit: bucket", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "zero3: {prefetch: -1}")), "zero3.prefetch", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "zero3: {prefetch: 65}")), "zero3.prefetch", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "zero3: {launch: 2 s}")), "zero3.launch",
                "from 0 to 1 s", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "zero3: {launch_per_rank: 1 s}")),
                "zero3.launch_per_rank", "from 0 to 1 ms", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "zero3: {prefech: 2}")), "zero3", "prefech",
                "prefetch", NULL);
    tu_contains(tu_plan_error(variant(0, NULL, "zero3: {reshard_after_forward: maybe}")),
                "zero3.reshard_after_forward", NULL);
}

/* links.nics_per_node and links.ring_latency (docs/specs.md). */
static void test_cluster_nics(void **state) {
    (void)state;
    const char *ok = "{bandwidth: 400 Gbit/s, latency: 5 us}";
    char inter[256];
    plan_spec *s = tu_plan(cluster_variant("", ok));
    assert_int_equal(s->cluster.cfg.nics_per_node, 0);
    assert_false(s->cluster.cfg.ring_latency_nccl);
    free(s);
    snprintf(inter, sizeof inter, "%s\n    nics_per_node: 4\n    ring_latency: nccl", ok);
    s = tu_plan(cluster_variant("", inter));
    assert_int_equal(s->cluster.cfg.nics_per_node, 4);
    assert_true(s->cluster.cfg.ring_latency_nccl);
    free(s);
    snprintf(inter, sizeof inter, "%s\n    nics_per_node: 0", ok);
    tu_contains(tu_plan_error(cluster_variant("", inter)), "bad.yaml:14:20:",
                "links.nics_per_node", NULL);
    snprintf(inter, sizeof inter, "%s\n    ring_latency: tree", ok);
    tu_contains(tu_plan_error(cluster_variant("", inter)), "bad.yaml:14:19:",
                "links.ring_latency", "per_step", "nccl", "tree", NULL);
}

/* Expert layouts parasim refuses, each at its field with the reason
 * (docs/specs.md "Expert parallelism"). */
static const char *moe_plan(const char *model, int64_t gpus, const char *parallel,
                            const char *moe) {
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "model: %s\ncluster: h800\ngpus: %lld\nparallel: %s\n"
             "batch: {global: %lld, micro: 1, seq: 4096}\nprecision: bf16-mixed\n%s\n",
             model, (long long)gpus, parallel, (long long)gpus, moe ? moe : "");
    return buf;
}

static void test_moe_layout_errors(void **state) {
    (void)state;
    /* ep with pp inside the placement: the expert groups would not be the
     * consecutive ranks the ep-group span assumes */
    tu_contains(tu_plan_error(moe_plan("mixtral-8x7b", 16, "{dp: 8, pp: 2, ep: 8}",
                                       "placement: [pp, tp, cp, dp]")),
                "bad.yaml:7:", "placement", "expected pp outermost", "found pp-tp-cp-dp", NULL);
    /* ep must divide the experts (Mixtral: 8) */
    tu_contains(tu_plan_error(moe_plan("mixtral-8x7b", 16, "{dp: 8, tp: 2, sp: true, ep: 3}", NULL)),
                "bad.yaml:4:", "parallel.ep", "divisor of the model's experts = 8",
                "mixtral-8x7b.yaml:", "found 3", NULL);
    /* etp*ep must divide tp*cp*dp (MoE parallel folding) */
    tu_contains(tu_plan_error(moe_plan("mixtral-8x7b", 16, "{dp: 8, tp: 2, sp: true, ep: 8, etp: 4}",
                                       NULL)),
                "bad.yaml:4:", "parallel.ep", "etp*ep = 4*8 to divide tp*cp*dp = 2*1*8 = 16",
                "folding", NULL);
    /* etp must divide the experts' hidden size (Qwen3-30B-A3B: 768) */
    tu_contains(tu_plan_error(moe_plan("qwen3-30b-a3b", 512, "{dp: 512, ep: 1, etp: 512}", NULL)),
                "bad.yaml:4:", "parallel.etp", "expert_ffn_hidden = 768", "found 512", NULL);
    /* tp > 1 without sequence parallelism (Megatron-Core refuses it for MoE) */
    tu_contains(tu_plan_error(moe_plan("mixtral-8x7b", 16, "{dp: 8, tp: 2, ep: 8}", NULL)),
                "parallel.sp", "expected true for a MoE model with tp = 2", "moe_layer.py", NULL);
    /* node_limit above the nodes the plan fills: 16 GPUs are 2 nodes of 8 */
    tu_contains(tu_plan_error(moe_plan("deepseek-v3", 16, "{dp: 16, ep: 8}",
                                       "moe: {node_limit: 4}")),
                "bad.yaml:7:", "moe.node_limit", "at most the 2 node(s) the plan's 16 GPUs fill",
                "ep = 8 spans limits nothing", "found 4", NULL);
    /* ZeRO-3 of a MoE model loads (helper moez3: experts gather over edp,
     * the rest over dp; docs/memory.md §10), with ep = 8 (edp 1) and ep = 2
     * (edp 4) alike */
    plan_spec *z3 = tu_plan(moe_plan("mixtral-8x7b", 8, "{dp: 8, zero: 3, ep: 8}", NULL));
    assert_int_equal(z3->cfg.zero, 3);
    free(z3);
    z3 = tu_plan(moe_plan("mixtral-8x7b", 8, "{dp: 8, zero: 3, ep: 2}", "zero3: {unit: param}"));
    assert_int_equal(z3->cfg.ep, 2);
    free(z3);
    /* ep on a dense model */
    tu_contains(tu_plan_error(moe_plan("llama3-8b", 8, "{dp: 8, ep: 2}", NULL)), "bad.yaml:4:",
                "parallel.ep", "dense model", "found 2", NULL);
    /* the moe: section's ranges and keys */
    tu_contains(tu_plan_error(moe_plan("mixtral-8x7b", 8, "{dp: 8, ep: 8}", "moe: {imbalance: 0.5}")),
                "bad.yaml:7:", "moe.imbalance", "0.5", NULL);
    tu_contains(tu_plan_error(moe_plan("mixtral-8x7b", 8, "{dp: 8, ep: 8}",
                                       "moe: {capacity_factor: 5000}")),
                "bad.yaml:7:", "moe.capacity_factor", "1024", NULL);
    tu_contains(tu_plan_error(moe_plan("mixtral-8x7b", 8, "{dp: 8, ep: 8}", "moe: {capacity: 1}")),
                "bad.yaml:7:", "capacity", NULL);
    tu_contains(tu_plan_error(moe_plan("mixtral-8x7b", 8, "{dp: 8, ep: 0}", NULL)), "bad.yaml:4:",
                "parallel.ep", NULL);
    /* the token dispatcher by name (helper moeacc) */
    tu_contains(tu_plan_error(moe_plan("mixtral-8x7b", 8, "{dp: 8, ep: 8}",
                                       "moe: {dispatcher: flex}")),
                "bad.yaml:7:", "moe.dispatcher", "one of alltoall, deepep", "found \"flex\"", NULL);
    /* and a good one loads, with its defaults */
    plan_spec *s = tu_plan(moe_plan("mixtral-8x7b", 16, "{dp: 8, tp: 2, sp: true, ep: 8, etp: 1}",
                                    "moe: {capacity_factor: 1.25, node_limit: 1, aux_loss: false}"));
    assert_int_equal(s->cfg.ep, 8);
    assert_int_equal(plan_etp(&s->cfg), 1);
    assert_true(s->cfg.moe_capacity_factor == 1.25 && s->cfg.moe_imbalance == 1.0);
    assert_int_equal(s->cfg.moe_node_limit, 1);
    assert_false(s->cfg.moe_aux_loss);
    free(s);
}

/* infer_memory_predict (the runtime comparison's prediction) refuses what it
 * cannot size, naming the argument, what was expected and what was found. */
static void test_infer_predict_errors(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    infer_cfg ic;
    infer_cfg_init(&ic);
    infer_mem mem;
    ps_err err = {{0}};
    const int64_t n[] = {100, 30};
    assert_int_equal(infer_memory_predict(&m.cfg, &ic, n, 2, 40, 64, &mem, &err), -1);
    tu_contains(err.msg, "sequence 1: expected at least the 40 shared prefix tokens, found 30", NULL);
    assert_int_equal(infer_memory_predict(&m.cfg, &ic, n, -1, 0, 64, &mem, &err), -1);
    tu_contains(err.msg, "expected counts >= 0", "found -1, 0 and 64", NULL);
    ic.tp = 3;
    assert_int_equal(infer_memory_predict(&m.cfg, &ic, n, 2, 0, 64, &mem, &err), -1);
    tu_contains(err.msg, "--tp: expected a divisor of heads = 4 and ffn_hidden = 512",
                "kv_heads = 2", "found 3", NULL);
    ic.tp = 1;
    ic.block_size = 0;
    assert_int_equal(infer_memory_predict(&m.cfg, &ic, n, 2, 0, 64, &mem, &err), -1);
    tu_contains(err.msg, "--block-size: expected an integer from 1 to 65536, found 0", NULL);
    ic.block_size = 16;
    ic.compute = DT_NONE; /* a zero-filled infer_cfg, not infer_cfg_init's */
    assert_int_equal(infer_memory_predict(&m.cfg, &ic, n, 2, 0, 64, &mem, &err), -1);
    tu_contains(err.msg, "--compute: expected f32 or bf16, found none", NULL);
    ic.compute = DT_FP32;
    ic.weights = WQ_INT8_BLOCK;
    ic.group_size = 256;
    assert_int_equal(infer_memory_predict(&m.cfg, &ic, n, 2, 0, 64, &mem, &err), -1);
    tu_contains(err.msg, "--group-size: expected 32, 64 or 128 for --weights int8-block",
                "found 256", NULL);
}


/* ---- Logit distillation: the distill: section (docs/specs.md "distill") ----
 * A good student plan (lines 1-6), `distill:` on line 7 and its fields one a
 * line from line 8. */
static const char *distill_variant(const char *parallel, const char *fields) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "model: tiny-1m\ncluster: local-cpu\nparallel: %s\n"
             "batch: {global: 16, micro: 4, seq: 256}\nprecision: fp32\noptimizer: adamw\n"
             "distill:\n%s\n",
             parallel, fields);
    return buf;
}
#define DV(fields) distill_variant("{dp: 2}", fields)
/* A 3-layer teacher of 3 heads: tp 2 and pp 2 do not split it. */
#define T3 "  teacher: {name: t3, layers: 3, hidden: 96, heads: 3, kv_heads: 3, ffn_hidden: 256, " \
           "vocab: 256, tied_embeddings: false, norm: rmsnorm, mlp: swiglu, attention: flash, " \
           "dropout: 0.0, position: rope, bias: false}"

static void test_distill_errors(void **state) {
    (void)state;
    /* the good one, and its defaults: f32 weights for an fp32 plan (else bf16),
     * shared, T 1, alpha 0.5, every logit, no checkpoint */
    plan_spec *s = tu_plan(DV("  teacher: tiny-10m"));
    assert_true(s->cfg.distill.set);
    assert_int_equal(s->cfg.distill.weights, WQ_F32);
    assert_int_equal(s->cfg.distill.placement, DISTILL_SHARED);
    assert_float_equal(s->cfg.distill.temperature, 1.0, 0);
    assert_float_equal(s->cfg.distill.alpha, 0.5, 0);
    assert_int_equal(s->cfg.distill.top_k, 0);
    assert_string_equal(s->teacher.name, "tiny-10m");
    assert_string_equal(s->distill_checkpoint, "");
    free(s);
    s = tu_plan(DV("  teacher: tiny-10m\n  checkpoint: teacher.ckpt\n  temperature: 4\n  alpha: 0\n"
                   "  top_k: 256\n  weights: int4-block\n  group_size: 64"));
    assert_string_equal(s->distill_checkpoint, "teacher.ckpt");
    assert_int_equal(s->cfg.distill.weights, WQ_INT4_BLOCK);
    assert_int_equal(s->cfg.distill.top_k, 256);
    free(s);
    /* the section, its keys, the teacher */
    tu_contains(tu_plan_error(DV("  5")), "bad.yaml:8:3:", "distill", "mapping", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  tempreature: 2")), "bad.yaml:9:3:",
                "tempreature", "temperature", NULL);
    tu_contains(tu_plan_error(DV("  weights: f32")), "bad.yaml:8:3:", "distill.teacher",
                "missing field", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-999")), "bad.yaml:8:12:", "distill.teacher",
                "tiny-999", NULL);
    tu_contains(tu_plan_error(DV("  teacher: [tiny-10m]")), "bad.yaml:8:12:", "distill.teacher",
                "expected a model name, path or mapping", NULL);
    tu_contains(tu_plan_error(DV("  teacher: llama3-8b")), "bad.yaml:8:12:", "distill.teacher",
                "vocabulary of 256 tokens", "vocab 128256", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-moe")), "bad.yaml:8:12:", "distill.teacher",
                "dense teacher", "8 experts", NULL);
    /* each field: where, what was expected, what was found */
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  weights: int3")), "bad.yaml:9:12:",
                "distill.weights", "int8-row", "int3", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  group_size: -1")), "bad.yaml:9:15:",
                "distill.group_size", "-1", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  weights: int8-block\n  group_size: 48")),
                "bad.yaml:10:15:", "distill.group_size", "32, 64 or 128", "48", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  placement: elsewhere")), "bad.yaml:9:14:",
                "distill.placement", "shared, separate", "elsewhere", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  placement: separate")), "bad.yaml:8:3:",
                "distill.gpus", "placement: separate", "found none", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  placement: separate\n  gpus: 0")),
                "bad.yaml:10:9:", "distill.gpus", "found 0", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  gpus: -2")), "bad.yaml:9:9:",
                "distill.gpus", "-2", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  temperature: 0")), "bad.yaml:9:16:",
                "distill.temperature", "(0, 1000]", "found 0", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  temperature: 1e9")), "bad.yaml:9:16:",
                "distill.temperature", "(0, 1000]", "1e9", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  temperature: hot")), "bad.yaml:9:16:",
                "distill.temperature", "hot", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  alpha: 1.5")), "bad.yaml:9:10:",
                "distill.alpha", "[0, 1]", "1.5", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  top_k: 257")), "bad.yaml:9:10:",
                "distill.top_k", "256", "257", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  checkpoint: ''")), "bad.yaml:9:15:",
                "distill.checkpoint", "an empty value", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  checkpoint: [a, b]")), "bad.yaml:9:15:",
                "distill.checkpoint", "expected the path", NULL);
    /* the plan's degrees split the teacher too (shared), its GPUs fit the cluster (separate) */
    tu_contains(tu_plan_error(distill_variant("{dp: 1, tp: 2}", T3)), "bad.yaml:3:23:",
                "parallel.tp", "splits the teacher t3", "heads = 3", "found 2", NULL);
    tu_contains(tu_plan_error(distill_variant("{dp: 1, pp: 2}", T3)), "bad.yaml:3:23:",
                "parallel.pp", "teacher's layers = 3", "found 2", NULL);
    tu_contains(tu_plan_error(DV("  teacher: tiny-10m\n  placement: separate\n  gpus: 7")),
                "bad.yaml:10:9:", "distill.gpus", "student's 2 GPUs", "8 GPUs of cluster local-cpu",
                "found 7 teacher GPUs (9 in all)", NULL);
    /* the same teachers elsewhere are fine: separate leaves the plan's tp and pp alone */
    free(tu_plan(distill_variant("{dp: 1, tp: 2}", T3 "\n  placement: separate\n  gpus: 2")));
    free(tu_plan(DV("  teacher: tiny-10m\n  placement: separate\n  gpus: 6")));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infer_predict_errors),
        cmocka_unit_test(test_distill_errors),
        cmocka_unit_test(test_moe_layout_errors),
        cmocka_unit_test(test_good_plan_loads),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_recompute_names),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_non_positive),
        cmocka_unit_test(test_degrees_that_do_not_divide),
        cmocka_unit_test(test_other_impossible_plans),
        cmocka_unit_test(test_uneven_split_refusals),
        cmocka_unit_test(test_yaml_syntax_and_files),
        cmocka_unit_test(test_misread_values),
        cmocka_unit_test(test_set_overrides),
        cmocka_unit_test(test_time_fields),
        cmocka_unit_test(test_model_limits),
        cmocka_unit_test(test_moe_model_fields),
        cmocka_unit_test(test_dropout_located),
        cmocka_unit_test(test_plan_limits),
        cmocka_unit_test(test_cluster_limits), cmocka_unit_test(test_cluster_kernel_dtype),
        cmocka_unit_test(test_attention_kernels),
        cmocka_unit_test(test_plan_defaults),
        cmocka_unit_test(test_framework_errors),
        cmocka_unit_test(test_published_use_family),
        cmocka_unit_test(test_zero3_fields), cmocka_unit_test(test_cluster_nics),
        cmocka_unit_test(test_dualpipe_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
