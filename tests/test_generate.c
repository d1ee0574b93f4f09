/* test_generate.c — `parasim generate` end to end (alone and under mpirun):
 *  - tp 2 produces exactly the tokens of one rank (fp32; greedy and sampled);
 *  - the measured memory per category at tp 2 equals the contract's values by
 *    hand, and parasim infer's prediction exactly for every scheme and KV element, and the prefix cache saves (B - 1) * 2 blocks of a 40-token prefix;
 *  - under a KV budget the most requests live at once equal the planner's largest
 *    batch (prefix cached and not), with the unbudgeted run's tokens; a request
 *    larger than the budget is refused;
 *  - the same with weights trained here and read from a checkpoint;
 *  - --write-text: the corpus holds each request's prefix, prompt and the tokens the
 *    report gives (greedy, one rank and tp 2; seeded sampling reproducible), and
 *    parasim run trains on it;
 *  - eval mode reports perplexity, kl, tokens and weights (KL of f32 to itself 0: the
 *    cache is fp32 by default in eval);
 *  - bad input stops with one located message, exit 1 or 2, never a crash.
 * argv[1] = the parasim binary, argv[2] = mpirun. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tu_sh.h"

#include "spec/ynode.h"

static const char *parasim, *mpirun;
static char out[1 << 17];
static char dir[] = "/tmp/parasim-gen-XXXXXX";

static int sh(const char *cmd) { return tu_sh(out, sizeof out, cmd); }

/* parasim generate ARGS on np ranks (np 0: without mpirun); its stdout+stderr in out. */
static int gen(int np, const char *args) {
    char cmd[4096];
    if (np) snprintf(cmd, sizeof cmd, "%s -np %d --oversubscribe %s generate --threads 1 %s",
                     mpirun, np, parasim, args);
    else snprintf(cmd, sizeof cmd, "%s generate --threads 1 %s", parasim, args);
    return sh(cmd);
}

/* The "tokens": [...] lines of a JSON report, concatenated. */
static void token_lines(const char *json, char *dst, size_t len) {
    dst[0] = 0;
    for (const char *p = strstr(json, "\"tokens\": ["); p; p = strstr(p + 1, "\"tokens\": [")) {
        const char *e = strchr(p, '\n');
        strncat(dst, p, e ? (size_t)(e - p + 1) : strlen(p));
        if (strlen(dst) + 1 >= len) fail_msg("too many tokens");
    }
}

static ynode *load_json(const char *path) {
    ynode *root = NULL;
    ps_err err = {{0}};
    if (ynode_load_file(path, &root, &err)) fail_msg("%s", err.msg);
    return root;
}

static double num(const ynode *n, const char *dotted) {
    char path[256], *save = NULL;
    snprintf(path, sizeof path, "%s", dotted);
    for (char *k = strtok_r(path, ".", &save); k && n; k = strtok_r(NULL, ".", &save))
        n = ynode_get(n, k);
    if (!n || n->kind != YN_SCALAR) fail_msg("report lacks %s", dotted);
    return strtod(n->str, NULL);
}

static const char *str(const ynode *n, const char *dotted) {
    char path[256], *save = NULL;
    snprintf(path, sizeof path, "%s", dotted);
    for (char *k = strtok_r(path, ".", &save); k && n; k = strtok_r(NULL, ".", &save))
        n = ynode_get(n, k);
    if (!n || n->kind != YN_SCALAR) fail_msg("report lacks %s", dotted);
    return n->str;
}

#define PROMPTS "--prompts tests/data/gen-prompts.txt --max-new 9,4,12,6 --batch 3 --prefill-chunk 8"

static void test_tp2_tokens(void **state) {
    (void)state;
    static char one[1 << 14], two[1 << 14];
    const char *modes[2] = {"", "--temperature 0.9 --sample-seed 5"};
    for (int m = 0; m < 2; m++) {
        char args[1024];
        snprintf(args, sizeof args, "--weights f32 --kv-cache f32 " PROMPTS " %s --format json",
                 modes[m]);
        if (gen(0, args)) fail_msg("one rank: %s", out);
        token_lines(out, one, sizeof one);
        if (gen(2, args)) fail_msg("two ranks: %s", out);
        token_lines(out, two, sizeof two);
        assert_true(strlen(one) > 40);
        if (strcmp(one, two)) fail_msg("%s: one rank\n%s\ntwo ranks\n%s", modes[m], one, two);
    }
}

/* tiny-1m at tp 2, fp32: h 128, q width 64, kv width 32, ffn 256, vocab rows 128 per rank. */
static void test_tp2_memory_by_hand(void **state) {
    (void)state;
    char args[1024], path[128];
    snprintf(path, sizeof path, "%s/mem.json", dir);
    snprintf(args, sizeof args, "--weights f32 --kv-cache f32 " PROMPTS " --format json -o %s", path);
    if (gen(2, args)) fail_msg("%s", out);
    ynode *r = load_json(path);
    const int64_t h = 128, qw = 64, kvw = 32, f = 256, Vr = 128, L = 4;
    const int64_t weights = 4 * (L * (2 * qw * h + 2 * kvw * h + 3 * f * h + 2 * h) + 2 * Vr * h + h);
    assert_int_equal((int64_t)num(r, "memory.weights.measured"), weights);
    assert_int_equal((int64_t)num(r, "memory.scales.measured"), 0);
    assert_int_equal((int64_t)num(r, "memory.activations.measured"),
                     4 * 8 * (3 * h + 2 * qw + 2 * kvw + 2 * f));
    assert_int_equal((int64_t)num(r, "memory.logits.measured"), 3 * Vr * 4);
    ynode_free(r);
    /* int8-vector and int4-block (group 32): per layer 122880 weights in 896 rows */
    const int64_t elems = 2 * qw * h + 2 * kvw * h + 3 * f * h, rows = qw + 2 * kvw + 2 * f + 2 * h;
    const int64_t rest = (2 * Vr * h + (2 * L + 1) * h) * 2, act = 4 * 8 * (3 * h + 2 * qw + 2 * kvw + 2 * f);
    for (int s = 0; s < 2; s++) {
        snprintf(args, sizeof args, "--weights %s --kv-cache f32 " PROMPTS " --format json -o %s",
                 s ? "int4-block" : "int8-vector", path);
        if (gen(2, args)) fail_msg("%s", out);
        r = load_json(path);
        assert_int_equal((int64_t)num(r, "memory.weights.measured"),
                         L * (s ? elems / 2 : elems) + rest);
        assert_int_equal((int64_t)num(r, "memory.scales.measured"),
                         L * (s ? elems / 32 : rows) * 4);
        /* int8-vector: C_max = f, the bf16 lm_head [128][128] dequantized; int4-block: the
         * largest shard, w1 [256][128] */
        assert_int_equal((int64_t)num(r, "memory.activations.measured"),
                         act + (s ? f * h * 4 : 8 * f + 64 + Vr * h * 4));
        ynode_free(r);
    }
}

static void test_prefix_saving(void **state) {
    (void)state;
    char args[1024], path[128];
    snprintf(path, sizeof path, "%s/prefix.json", dir);
    /* a 40-byte prefix, 4 prompts, blocks of 16: 2 shared full blocks */
    snprintf(args, sizeof args, "--weights f32 --kv-cache bf16 --prompts tests/data/gen-prompts.txt "
             "--prefix 0123456789012345678901234567890123456789 --max-new 5 --batch 4 "
             "--format json -o %s", path);
    if (gen(0, args)) fail_msg("%s", out);
    ynode *r = load_json(path);
    const double block = num(r, "kv_blocks.block_bytes");
    assert_true(block == 4 * 2 * 16 * 2 * 32 * 2);
    assert_true(num(r, "kv_blocks.saved_bytes") == 3 * 2 * block);
    assert_true(num(r, "kv_blocks.shared") == 2);
    assert_true(num(r, "memory.kv_cache.measured") == num(r, "kv_blocks.allocated") * block);
    ynode_free(r);
}

/* Measured bytes per category equal parasim infer's prediction (cost/infer.h) exactly, for
 * every weight scheme and KV element, one rank and two, with a shared prefix. */
static void test_measured_equals_predicted(void **state) {
    (void)state;
    static const char *const schemes[] = {"f32", "bf16", "int8-tensor", "int8-zeropoint",
                                          "int8-row", "int8-vector", "int8-decomp",
                                          "int8-block", "int4-block"};
    static const char *const kv[] = {"f32", "bf16", "int8"};
    static const char *const cat[] = {"weights", "scales", "kv_cache", "activations", "logits"};
    char args[1024], path[128];
    snprintf(path, sizeof path, "%s/pred.json", dir);
    for (int s = 0; s < 9; s++) {
        const int np = s % 2 ? 2 : 0;
        snprintf(args, sizeof args, "--weights %s --kv-cache %s --prompts tests/data/gen-prompts.txt "
                 "--prefix 0123456789012345678901234567890123456789 --max-new 7 --batch 4 "
                 "--prefill-chunk 32 --format json -o %s", schemes[s], kv[s % 3], path);
        if (gen(np, args)) fail_msg("%s", out);
        ynode *r = load_json(path);
        for (int c = 0; c < 5; c++) {
            char m[64], p[64];
            snprintf(m, sizeof m, "memory.%s.measured", cat[c]);
            snprintf(p, sizeof p, "memory.%s.predicted", cat[c]);
            if (num(r, m) != num(r, p))
                fail_msg("%s, kv %s, %d ranks: %s measured %.0f, predicted %.0f", schemes[s],
                         kv[s % 3], np ? np : 1, cat[c], num(r, m), num(r, p));
        }
        assert_string_equal(str(r, "memory.kv_cache.predicted_is_bound"), "false");
        ynode_free(r);
    }
}

/* Requests that end at different steps (max_new 9, 4, 12, 6; batch 3): the short ones
 * leave before the long ones peak, so the planner's answer for batch 3 at full length
 * (the 3 longest lives) bounds the measured peak from above and says so. */
static void test_kv_prediction_bound(void **state) {
    (void)state;
    char args[1024], path[128];
    snprintf(path, sizeof path, "%s/bound.json", dir);
    snprintf(args, sizeof args, "--weights f32 --kv-cache f32 " PROMPTS " --format json -o %s", path);
    if (gen(0, args)) fail_msg("%s", out);
    ynode *r = load_json(path);
    const double m = num(r, "memory.kv_cache.measured"), p = num(r, "memory.kv_cache.predicted");
    if (!(m < p)) fail_msg("KV measured %.0f, predicted bound %.0f: expected measured below", m, p);
    assert_string_equal(str(r, "memory.kv_cache.predicted_is_bound"), "true");
    ynode_free(r);
    if (gen(0, "--weights f32 --kv-cache f32 " PROMPTS)) fail_msg("%s", out);
    assert_non_null(strstr(out, "(at most: requests end at different steps)"));
}

/* A KV budget (docs/runtime.md §10): 12 prompts of 8 bytes after a 40-byte prefix,
 * 9 new tokens: each holds ceil((48 + 9 - 1) / 16) = 4 blocks of 32 KiB (f32), 2 of
 * them the shared prefix. A budget of 9 blocks holds 2 + 3 x 2 = 8 blocks of 3 live
 * requests with prefix caching, 2 x 4 = 8 of 2 without (kv_blocks_max_batch); the
 * measured most-live equals the planner's, the cache stays within the budget, and
 * the tokens (greedy, f32) are those of the unbudgeted run. A request of 4 blocks under a budget
 * of 3 is refused before any work. */
#define BUDGET_RUN "--weights f32 --kv-cache f32 --prefix 0123456789012345678901234567890123456789 " \
                   "--max-new 9 --format json"
static void test_kv_budget(void **state) {
    (void)state;
    static char free_run[1 << 14], budget_run[1 << 14];
    char args[1024], path[128];
    snprintf(path, sizeof path, "%s/budget.json", dir);
    snprintf(args, sizeof args, "--prompts %s/twelve.txt " BUDGET_RUN " -o %s", dir, path);
    if (gen(0, args)) fail_msg("%s", out);
    ynode *r = load_json(path);
    assert_true(num(r, "concurrency.max_live") == 8); /* --batch 8, no budget */
    ynode_free(r);
    snprintf(args, sizeof args, "cat %s", path);
    sh(args);
    token_lines(out, free_run, sizeof free_run);
    assert_true(strlen(free_run) > 100);
    const char *modes[2] = {"", "--no-prefix-cache"};
    const int64_t live[2] = {3, 2};
    for (int m = 0; m < 2; m++) {
        snprintf(args, sizeof args, "--prompts %s/twelve.txt " BUDGET_RUN " --kv-budget 294912 %s -o %s",
                 dir, modes[m], path);
        if (gen(0, args)) fail_msg("%s", out);
        r = load_json(path);
        assert_true(num(r, "kv_blocks.block_bytes") == 32768);
        assert_true(num(r, "concurrency.kv_budget_blocks") == 9);
        assert_true(num(r, "concurrency.predicted_max_batch") == 3);
        assert_true(num(r, "concurrency.predicted_max_batch_unshared") == 2);
        if (num(r, "concurrency.max_live") != (double)live[m])
            fail_msg("%s: most live %.0f, expected %lld", modes[m], num(r, "concurrency.max_live"),
                     (long long)live[m]);
        assert_true(num(r, "kv_blocks.allocated") == 8);
        assert_true(num(r, "memory.kv_cache.measured") <= 294912);
        assert_true(num(r, "memory.kv_cache.measured") == num(r, "memory.kv_cache.predicted"));
        ynode_free(r);
        snprintf(args, sizeof args, "cat %s", path);
        sh(args);
        token_lines(out, budget_run, sizeof budget_run);
        if (strcmp(free_run, budget_run))
            fail_msg("%s: without a budget\n%s\nwith\n%s", modes[m], free_run, budget_run);
    }
    /* the table says it too */
    snprintf(args, sizeof args, "--prompts %s/twelve.txt --weights f32 --kv-cache f32 --prefix "
             "0123456789012345678901234567890123456789 --max-new 9 --kv-budget \"288 KiB\"", dir);
    if (gen(0, args)) fail_msg("%s", out);
    if (!strstr(out, "most requests live at once: 3 (--batch 8); KV budget 288.00 KiB = 9 blocks, "
                     "largest batch predicted 3 with prefix caching, 2 without"))
        fail_msg("%s", out);
    /* 3 blocks cannot hold one request of 4 */
    snprintf(args, sizeof args, "--prompts %s/twelve.txt " BUDGET_RUN " --kv-budget \"96 KiB\"", dir);
    assert_int_equal(gen(0, args), 1);
    if (!strstr(out, "request 0: expected at most the KV budget's 3 blocks (98304 bytes in blocks "
                     "of 16 tokens, 32768 bytes each), found 4 blocks (48 prompt + 9 new - 1 "
                     "tokens, 131072 bytes)") || strstr(out, "\"tokens\""))
        fail_msg("%s", out);
}

static void test_eval_json(void **state) {
    (void)state;
    char path[128], args[512];
    snprintf(path, sizeof path, "%s/eval.json", dir);
    snprintf(args, sizeof args, "--weights f32 --eval tests/data/gen-prompts.txt --format json -o %s",
             path);
    if (gen(0, args)) fail_msg("%s", out);
    ynode *r = load_json(path);
    assert_true(num(r, "tokens") > 10);
    const double ppl = num(r, "perplexity");
    assert_true(ppl > 150 && ppl < 400);
    assert_true(num(r, "kl") == 0.0);
    assert_non_null(ynode_get(r, "weights"));
    ynode_free(r);
}

/* Weights trained here (parasim run --save-weights, 2 ranks, a few steps on the fortunes
 * text): with the KV cache the tokens equal recomputation, and tp 2 equals one rank. */
static void test_checkpoint(void **state) {
    (void)state;
    char cmd[2048], ck[128], args[1024];
    static char a[1 << 14], b[1 << 14];
    snprintf(ck, sizeof ck, "%s/tiny.ckpt", dir);
    snprintf(cmd, sizeof cmd, "%s -np 2 --oversubscribe %s run plans/tiny-1m-cpu.yaml --steps 4 "
             "--threads 1 --quiet --save-weights %s", mpirun, parasim, ck);
    if (sh(cmd)) fail_msg("%s", out);
    snprintf(args, sizeof args, "--checkpoint %s --weights f32 --kv-cache f32 " PROMPTS
             " --format json", ck);
    if (gen(0, args)) fail_msg("%s", out);
    token_lines(out, a, sizeof a);
    if (gen(2, args)) fail_msg("%s", out);
    token_lines(out, b, sizeof b);
    if (strcmp(a, b)) fail_msg("one rank\n%s\ntwo ranks\n%s", a, b);
    snprintf(args, sizeof args, "--checkpoint %s --weights f32 --kv-cache f32 " PROMPTS
             " --no-cache --format json", ck);
    if (gen(0, args)) fail_msg("%s", out);
    token_lines(out, b, sizeof b);
    if (strcmp(a, b)) fail_msg("with the cache\n%s\nrecomputed\n%s", a, b);
    assert_non_null(strstr(out, "\"checkpoint\": \""));
}

/* The whole of a file (at most cap - 1 bytes), its length in *n. */
static char *slurp(const char *path, size_t cap, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    char *b = malloc(cap);
    assert_non_null(b);
    *n = fread(b, 1, cap - 1, f);
    fclose(f);
    b[*n] = 0;
    return b;
}

/* What --write-text must have written for the JSON report at json: per request
 * the prefix, the prompt (the line of the prompts file) and the report's tokens,
 * then "\n%\n". */
static char *expected_text(const char *json, const char *prefix, const char *prompts, size_t *n) {
    size_t np = 0;
    char *lines = slurp(prompts, 1 << 16, &np), *save = NULL;
    char *e = malloc(1 << 16);
    assert_non_null(e);
    ynode *r = load_json(json);
    const ynode *req = ynode_get(r, "requests");
    assert_non_null(req);
    size_t k = 0;
    char *line = strtok_r(lines, "\n", &save);
    for (int i = 0; i < req->n; i++, line = strtok_r(NULL, "\n", &save)) {
        assert_non_null(line);
        k += (size_t)sprintf(e + k, "%s%s", prefix, line);
        const ynode *tok = ynode_get(req->items[i], "tokens");
        assert_true(tok && tok->kind == YN_SEQ && tok->n == (int)num(req->items[i], "new_tokens"));
        for (int t = 0; t < tok->n; t++)
            e[k++] = (char)strtol(tok->items[t]->str, NULL, 10);
        k += (size_t)sprintf(e + k, "\n%%\n");
    }
    ynode_free(r);
    free(lines);
    *n = k;
    return e;
}

/* The corpus file at path equals the one expected from the report at json. */
static void check_text(const char *path, const char *json, const char *prefix) {
    size_t n = 0, m = 0;
    char *got = slurp(path, 1 << 16, &n), *want = expected_text(json, prefix, "tests/data/gen-prompts.txt", &m);
    if (n != m || memcmp(got, want, n)) fail_msg("%s: %zu bytes, expected %zu:\n%s\nexpected\n%s", path, n, m, got, want);
    free(got), free(want);
}

static int same_file_bytes(const char *a, const char *b) {
    size_t n = 0, m = 0;
    char *x = slurp(a, 1 << 16, &n), *y = slurp(b, 1 << 16, &m);
    const int same = n == m && !memcmp(x, y, n);
    free(x), free(y);
    return same;
}

#define TEXT_ARGS "--weights f32 --kv-cache f32 --prompts tests/data/gen-prompts.txt " \
                  "--max-new 40,30,50,20 --batch 3 --prefill-chunk 8 --prefix 'SYS: ' --format json"

static void test_write_text(void **state) {
    (void)state;
    char args[1024], cmd[2048], json[4][128], text[4][128];
    for (int i = 0; i < 4; i++) {
        snprintf(json[i], sizeof json[i], "%s/text%d.json", dir, i);
        snprintf(text[i], sizeof text[i], "%s/text%d.txt", dir, i);
    }
    /* greedy, one rank and tp 2 */
    snprintf(args, sizeof args, TEXT_ARGS " -o %s --write-text %s", json[0], text[0]);
    if (gen(0, args)) fail_msg("%s", out);
    check_text(text[0], json[0], "SYS: ");
    snprintf(args, sizeof args, TEXT_ARGS " -o %s --write-text %s", json[1], text[1]);
    if (gen(2, args)) fail_msg("%s", out);
    check_text(text[1], json[1], "SYS: ");
    assert_true(same_file_bytes(text[0], text[1]));
    /* seeded sampling: the same seed the same file, another seed another */
    for (int i = 2; i < 4; i++) {
        snprintf(args, sizeof args, TEXT_ARGS " --temperature 0.9 --sample-seed 5 -o %s "
                 "--write-text %s", json[i], text[i]);
        if (gen(0, args)) fail_msg("%s", out);
        check_text(text[i], json[i], "SYS: ");
    }
    assert_true(same_file_bytes(text[2], text[3]));
    assert_false(same_file_bytes(text[0], text[2]));
    snprintf(args, sizeof args, TEXT_ARGS " --temperature 0.9 --sample-seed 6 -o %s "
             "--write-text %s", json[3], text[3]);
    if (gen(0, args)) fail_msg("%s", out);
    check_text(text[3], json[3], "SYS: ");
    assert_false(same_file_bytes(text[2], text[3]));
    /* a corpus parasim run trains on (sequence-level KD's student) */
    snprintf(cmd, sizeof cmd, "%s -np 2 --oversubscribe %s run plans/tiny-1m-cpu.yaml --steps 2 "
             "--threads 1 --quiet --set train.data=%s", mpirun, parasim, text[0]);
    if (sh(cmd)) fail_msg("run on the generated corpus: %s", out);
}

static void expect_fail(int np, const char *args, int code, const char *msg) {
    int rc = gen(np, args);
    if (rc != code || !strstr(out, msg))
        fail_msg("generate %s: exit %d (expected %d), output:\n%s\nexpected to contain: %s", args,
                 rc, code, out, msg);
    if (strstr(out, "Sanitizer") || strstr(out, "runtime error"))
        fail_msg("generate %s: %s", args, out);
}

static void test_bad_input(void **state) {
    (void)state;
    char args[512];
    expect_fail(0, "--weights int9", 2, "--weights: expected one of f32, bf16");
    expect_fail(0, "--group-size 48", 2, "--group-size: expected 32, 64 or 128, found 48");
    expect_fail(0, "--kv-cache fp8", 2, "--kv-cache: expected one of f32, bf16, int8");
    expect_fail(0, "--batch 0", 2, "--batch");
    expect_fail(0, "--temperature -1", 2, "--temperature: expected a number from 0");
    expect_fail(0, "--inject-outliers 4", 2, "--inject-outliers: expected K:SCALE");
    expect_fail(0, "--inject-outliers 999:20", 1, "expected K at most hidden = 128");
    expect_fail(0, "--prompts /nonexistent/p.txt", 1, "--prompts /nonexistent/p.txt: cannot open");
    expect_fail(0, "--prompts /tmp", 1, "expected a regular file");
    expect_fail(0, "--prompts tests/data/gen-prompts.txt --max-new 1,2", 1,
                "--max-new: expected one count or one per request (4), found 2");
    expect_fail(0, "--max-new 0", 1, "--max-new: expected a count from 1");
    snprintf(args, sizeof args, "--prompts %s/empty-line.txt", dir);
    expect_fail(0, args, 1, "empty-line.txt:2:1: prompt: expected at least one byte");
    expect_fail(0, "--model tiny-moe", 1, "mixture-of-experts model; the inference engine serves dense");
    expect_fail(0, "--model gpt2-124m", 1, "expected the Llama shape");
    expect_fail(0, "--model no-such-model", 1, "no-such-model");
    expect_fail(0, "--model llama3-8b", 1, "expected at most 1073741824 parameters for random weights");
    expect_fail(0, "--weights int4-block --group-size 128 --model tiny-1m", 0, "");
    expect_fail(2, "--weights int4-block --group-size 128", 1,
                "--group-size 128: expected a divisor of every linear's input width");
    expect_fail(3, "--weights f32", 1, "tp 3 (the ranks): expected a divisor of heads = 4");
    expect_fail(0, "--eval tests/data/gen-prompts.txt --prompts tests/data/gen-prompts.txt", 2,
                "--eval: expected no --prompts");
    expect_fail(0, "--checkpoint a --model tiny-1m", 2, "expected one source of weights");
    expect_fail(0, "--checkpoint /nonexistent/ck.bin", 1, "/nonexistent/ck.bin");
    expect_fail(0, "--checkpoint tests/data/gen-prompts.txt", 1, "tests/data/gen-prompts.txt");
    expect_fail(0, "--frobnicate", 2, "unknown option \"--frobnicate\"");
    expect_fail(0, "--kv-budget 1MiB --no-cache", 2, "--kv-budget: expected a KV cache to budget, found --no-cache");
    expect_fail(0, "--kv-budget 0", 2, "--kv-budget: expected a size from 1 B to 1 PiB, found \"0\"");
    expect_fail(0, "--kv-budget 3x", 2, "--kv-budget: expected a size");
    expect_fail(0, "--eval tests/data/gen-prompts.txt --kv-budget 1MiB", 2, "--eval: expected no");
    /* byte tokens need 256 vocabulary rows; the int8 GEMM's int32 sums bound its inputs */
    snprintf(args, sizeof args, "--model %s/vocab128.yaml", dir);
    expect_fail(0, args, 1, "byte tokens need a vocabulary of at least 256 tokens; the model has "
                            "vocab = 128");
    snprintf(args, sizeof args, "--model %s/wide.yaml --weights int8-vector", dir);
    expect_fail(0, args, 1, "reads 131072");
    /* --write-text: outputs as -o (a link or device refused and left alone), never an input */
    snprintf(args, sizeof args, "--write-text %s/link.txt", dir);
    expect_fail(0, args, 1, "--write-text /tmp/parasim-gen-");
    expect_fail(0, args, 1, "link.txt: is a symbolic link, not a regular file");
    char link_to[160];
    snprintf(args, sizeof args, "%s/link.txt", dir);
    const ssize_t nl = readlink(args, link_to, sizeof link_to - 1);
    assert_true(nl > 0);
    link_to[nl] = 0;
    assert_string_equal(link_to, "/dev/null");
    expect_fail(0, "--write-text /dev/null", 1,
                "--write-text /dev/null: is a character device, not a regular file");
    expect_fail(0, "--prompts tests/data/gen-prompts.txt --write-text tests/data/gen-prompts.txt", 2,
                "the output tests/data/gen-prompts.txt would replace the input");
    snprintf(args, sizeof args, "--write-text %s/x.txt -o %s/x.txt", dir, dir);
    expect_fail(0, args, 2, "x.txt name the same file");
    expect_fail(0, "--eval tests/data/gen-prompts.txt --write-text x.txt", 2,
                "--eval: expected no --prompts");
    snprintf(args, sizeof args, "--model %s/vocab512.yaml --write-text %s/v.txt", dir, dir);
    expect_fail(0, args, 1, "--write-text");
    expect_fail(0, args, 1, "expected a byte-level model (vocab = 256) whose tokens are bytes, "
                            "found vocab = 512");
}

/* A model spec in the test directory: tiny-1m's shape with one field changed. */
static int write_model(const char *name, const char *changed) {
    char path[160];
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "name: %s\nlayers: 1\nhidden: 64\nheads: 2\nkv_heads: 1\nnorm: rmsnorm\n"
               "mlp: swiglu\nattention: flash\nposition: rope\nbias: false\n"
               "tied_embeddings: false\ndropout: 0.0\n%s\n", name, changed);
    return fclose(f);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_generate PARASIM MPIRUN\n");
        return 2;
    }
    parasim = argv[1], mpirun = argv[2];
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    char path[128];
    snprintf(path, sizeof path, "%s/empty-line.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fputs("first\n\nthird\n", f);
    fclose(f);
    if (write_model("vocab128", "ffn_hidden: 128\nvocab: 128") ||
        write_model("wide", "ffn_hidden: 131072\nvocab: 256") ||
        write_model("vocab512", "ffn_hidden: 128\nvocab: 512"))
        return 1;
    snprintf(path, sizeof path, "%s/link.txt", dir);
    if (symlink("/dev/null", path)) return perror("symlink"), 1;
    snprintf(path, sizeof path, "%s/twelve.txt", dir); /* 12 prompts of 8 bytes */
    if (!(f = fopen(path, "w"))) return 1;
    for (int i = 0; i < 12; i++)
        fprintf(f, "query %02d\n", i);
    fclose(f);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tp2_tokens),
        cmocka_unit_test(test_tp2_memory_by_hand),
        cmocka_unit_test(test_prefix_saving),
        cmocka_unit_test(test_measured_equals_predicted),
        cmocka_unit_test(test_kv_prediction_bound),
        cmocka_unit_test(test_kv_budget),
        cmocka_unit_test(test_eval_json),
        cmocka_unit_test(test_checkpoint),
        cmocka_unit_test(test_write_text),
        cmocka_unit_test(test_bad_input),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) rc = rc ? rc : 1;
    return rc;
}
