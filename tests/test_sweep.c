/* test_sweep.c — sweep specs, the walk, the ranking and the CSV rows. */
#include <stdio.h>

#include "report/report.h"
#include "sweep/sweep.h"
#include "sweep/sweep_csv.h"
#include "sweep/sweep_rank.h"
#include "tu.h"

static const char small[] =
    "name: small\nmodel: gpt-1.7b\ncluster: dgx-a100\ngpus: 16\n"
    "batch: {global: 64, seq: 2048}\nprecision: bf16-mixed\noptimizer: adamw\n"
    "space:\n  tp: auto\n  pp: [1, 2, 4]\n  zero: [0, 3]\n  micro: [1, 2, 4]\n"
    "  recompute: [none, full]\n  schedule: [1f1b, interleaved]\n  virtual: [2, 3]\n";

static sweep_spec *load(const char *text) {
    sweep_spec *s = calloc(1, sizeof *s);
    ps_err err = {{0}};
    assert_non_null(s);
    if (sweep_load_text(text, "sweep.yaml", s, &err)) fail_msg("%s", err.msg);
    return s;
}

static const char *load_error(const char *text) {
    static ps_err err;
    sweep_spec *s = calloc(1, sizeof *s);
    memset(&err, 0, sizeof err);
    int rc = sweep_load_text(text, "bad.yaml", s, &err);
    free(s);
    if (!rc) fail_msg("expected an error for:\n%s", text);
    return err.msg;
}

typedef struct {
    int64_t visits, ok, fit;
    sweep_entry all[4096];
    int n;
} collect;

static void visit(void *ctx, const sweep_point *pt) {
    collect *c = ctx;
    c->visits++;
    if (pt->reason != PLAN_OK) return;
    c->ok++;
    /* every point the walk evaluates is a valid plan with dp derived */
    assert_int_equal(pt->cfg->dp * pt->cfg->tp * pt->cfg->pp * pt->cfg->cp, pt->cfg->gpus);
    if (!pt->eval->fits) return;
    c->fit++;
    if (c->n < 4096)
        c->all[c->n++] = (sweep_entry){*pt->cfg, pt->eval->time, pt->eval->heavy.total,
                                        pt->eval->capacity_bytes, {0}};
}

static void rank_visit(void *ctx, const sweep_point *pt) { sweep_rank_add(ctx, pt); }
static void csv_visit(void *ctx, const sweep_point *pt) { sweep_csv_row(ctx, pt); }

static int by_tokens(const void *a, const void *b) {
    const sweep_entry *x = a, *y = b;
    if (x->time.tokens_per_s != y->time.tokens_per_s)
        return x->time.tokens_per_s > y->time.tokens_per_s ? -1 : 1;
    return (x->peak_bytes > y->peak_bytes) - (x->peak_bytes < y->peak_bytes);
}

/* Sort the collected fitting plans best first and keep the first of each prediction;
 * returns how many are left. */
static int distinct_best(collect *c) {
    qsort(c->all, (size_t)c->n, sizeof c->all[0], by_tokens);
    int k = 0;
    for (int i = 0; i < c->n; i++) {
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = sweep_same_prediction(&c->all[j], &c->all[i]);
        if (!seen) c->all[k++] = c->all[i];
    }
    return k;
}

/* Counting, tallies and the bounded ranking agree with a brute-force pass. */
static void test_walk_and_rank(void **state) {
    (void)state;
    sweep_spec *s = load(small);
    /* auto tp = divisors of 16 */
    assert_int_equal(s->space.tp.n, 5);
    assert_int_equal(s->space.tp.v[4], 16);
    collect *c = calloc(1, sizeof *c);
    sweep_run(s, visit, c);
    assert_int_equal(c->visits, sweep_count(s));
    /* by hand: per (tp, pp) with dp = 16/(tp pp) >= 1: zero varies only if dp > 1,
     * sp only if tp > 1 (space default: the base's false), schedules only if
     * pp > 1, virtual only for interleaved */
    int64_t expect = 0;
    for (int64_t tp = 1; tp <= 16; tp *= 2)
        for (int64_t pp = 1; pp <= 4; pp *= 2) {
            int64_t dp = 16 % (tp * pp) ? 0 : 16 / (tp * pp);
            int64_t zero = dp > 1 ? 2 : 1, sched = pp > 1 ? 1 + 2 : 1;
            expect += zero * 3 * 2 * sched;
        }
    assert_int_equal(c->visits, expect);
    sweep_rank r;
    assert_int_equal(sweep_rank_init(&r, 7), 0);
    sweep_spec *s2 = load(small);
    /* the ranking is fed by the same walk */
    sweep_run(s2, rank_visit, &r);
    sweep_rank_sort(&r);
    int64_t rejected = 0;
    for (int k = 0; k < PLAN_REASON_COUNT; k++) rejected += r.rejected[k];
    assert_int_equal(r.points, c->visits);
    assert_int_equal(r.evaluated, c->ok);
    assert_int_equal(r.fit, c->fit);
    assert_int_equal(r.points, r.evaluated + rejected);
    assert_int_equal(r.fit + r.no_fit, r.evaluated);
    assert_true(c->n < 4096);
    assert_true(distinct_best(c) >= 7);
    assert_int_equal(r.n, 7);
    for (int i = 0; i < r.n; i++) {
        assert_float_equal(r.e[i].time.tokens_per_s, c->all[i].time.tokens_per_s, 0);
        assert_int_equal(r.e[i].peak_bytes, c->all[i].peak_bytes);
    }
    char why[400];
    sweep_rank_why(&r.e[0], &r.e[1], why, sizeof why);
    assert_true(strstr(why, "less") || strstr(why, "identical") || strstr(why, "memory"));
    sweep_rank_free(&r);
    free(c);
    free(s);
    free(s2);
}

/* Plans whose predictions provably agree are ranked once, with their equivalents. Llama
 * uses flash attention, which keeps no score matrix: selective recomputation frees and
 * recomputes nothing (docs/memory.md). With pp = cp = 1 both placements lay the ranks out
 * as tp inside dp. So each prediction is made by exactly 4 plans. */
static const char equal_space[] =
    "model: llama3-8b\ncluster: dgx-h100\ngpus: 16\nbatch: {global: 64, seq: 4096}\n"
    "precision: bf16-mixed\noptimizer: adamw\n"
    "space: {tp: [1, 2, 4], pp: 1, zero: [0, 1, 3], micro: [1, 2], recompute: [none, selective],\n"
    "        placement: [[tp, cp, dp, pp], [cp, tp, pp, dp]]}\n";

static void test_equivalents(void **state) {
    (void)state;
    sweep_spec *s = load(equal_space);
    collect *c = calloc(1, sizeof *c);
    sweep_run(s, visit, c);
    assert_int_equal(c->fit % 4, 0);
    const int distinct = distinct_best(c);
    assert_int_equal(distinct, c->fit / 4);
    assert_true(distinct > 5);
    /* every prediction once, each with its 3 equivalents; the first plan visited is shown */
    for (int cap = 5; cap <= 1000; cap += 995) {
        sweep_rank r;
        assert_int_equal(sweep_rank_init(&r, cap), 0);
        sweep_run(s, rank_visit, &r);
        sweep_rank_sort(&r);
        assert_int_equal(r.n, cap < distinct ? cap : distinct);
        char eq[600];
        for (int i = 0; i < r.n; i++) {
            const sweep_entry *e = &r.e[i];
            assert_float_equal(e->time.tokens_per_s, c->all[i].time.tokens_per_s, 0);
            assert_int_equal(e->peak_bytes, c->all[i].peak_bytes);
            assert_int_equal(e->equiv.n, 3);
            assert_int_equal(e->cfg.recompute, RECOMPUTE_NONE);
            assert_string_equal(sweep_rank_equiv(e, eq, sizeof eq),
                                "recompute selective; placement cp-tp-pp-dp");
            for (int j = 0; j < i; j++) assert_false(sweep_same_prediction(&r.e[j], e));
        }
        /* the reports carry them */
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        report_sweep_table(f, s, &r, 1);
        report_sweep_csv(f, &r);
        report_sweep_json(f, s, &r, 1);
        fclose(f);
        tu_contains(text, "+3 equivalent: recompute selective; placement cp-tp-pp-dp\n",
                    ",equivalents,equivalent_values\n",
                    ",3,\"recompute selective; placement cp-tp-pp-dp\"\n", "\"equivalents\": 3",
                    "\"recompute\": [\n          \"selective\"\n        ]",
                    "\"equivalent_values_complete\": true", NULL);
        assert_null(strstr(text, "identical prediction"));
        free(text);
        sweep_rank_free(&r);
    }
    free(c);
    free(s);
}

/* A point merges into the kept plan it matches, even a hair below the worst kept one; a
 * plan pushed out takes its equivalents with it; field values past the kept few are
 * "more". */
static void test_equivalents_bounded(void **state) {
    (void)state;
    sweep_rank r;
    assert_int_equal(sweep_rank_init(&r, 2), 0);
    plan_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    plan_cfg_defaults(&cfg);
    cfg.dp = 8, cfg.micro_batch = 1;
    eval_result ev;
    memset(&ev, 0, sizeof ev);
    ev.fits = true, ev.capacity_bytes = 80, ev.heavy.total = 40;
    sweep_point pt = {&cfg, PLAN_OK, &ev};
    const double tps[] = {100, 90, 90 * (1 - 1e-12), 90 * (1 + 1e-12), 90 * (1 - 1e-6)};
    for (int i = 0; i < 5; i++) {
        cfg.micro_batch = i + 1;
        ev.time.tokens_per_s = tps[i];
        sweep_rank_add(&r, &pt);
    }
    /* the 90s are one prediction; 90 (1 - 1e-6) is not and is worse than both kept */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(r.e[r.heap[i]].equiv.n, r.e[r.heap[i]].time.tokens_per_s == 90 ? 2 : 0);
    }
    for (int m = 6; m <= 12; m++) { /* 7 more micro sizes for the 90 */
        cfg.micro_batch = m;
        ev.time.tokens_per_s = 90;
        sweep_rank_add(&r, &pt);
    }
    sweep_rank_sort(&r);
    char eq[200];
    assert_int_equal(r.e[1].equiv.n, 9);
    assert_string_equal(sweep_rank_equiv(&r.e[1], eq, sizeof eq), "micro 3, 4, 6, 7, …");
    sweep_rank_free(&r);
    /* pushed out: 90 and its equivalent go when 95 comes, and a later 90 stays out */
    assert_int_equal(sweep_rank_init(&r, 2), 0);
    const double later[] = {100, 90, 90, 95, 90};
    for (int i = 0; i < 5; i++) {
        cfg.micro_batch = i + 1;
        ev.time.tokens_per_s = later[i];
        sweep_rank_add(&r, &pt);
    }
    sweep_rank_sort(&r);
    assert_int_equal(r.n, 2);
    assert_float_equal(r.e[1].time.tokens_per_s, 95, 0);
    assert_int_equal(r.e[0].equiv.n + r.e[1].equiv.n, 0);
    assert_int_equal(r.fit, 5);
    sweep_rank_free(&r);
}

/* The explanation names the part that differs most and the fields. */
static void test_why(void **state) {
    (void)state;
    sweep_entry a, b;
    memset(&a, 0, sizeof a);
    plan_cfg_defaults(&a.cfg);
    a.cfg.dp = 8, a.cfg.micro_batch = 1;
    b = a;
    b.cfg.tp = 2, b.cfg.dp = 4;
    a.time.compute = 10, b.time.compute = 10.5;
    a.time.exposed[GROUP_TP] = 0, b.time.exposed[GROUP_TP] = 2;
    char buf[400];
    sweep_rank_why(&a, &b, buf, sizeof buf);
    tu_contains(buf, "2.000 s less exposed tp communication", "dp 8 vs 4", "tp 1 vs 2", NULL);
}

/* Every CSV row has as many fields as the header, invalid points included. */
static void test_csv(void **state) {
    (void)state;
    sweep_spec *s = load(small);
    FILE *f = tmpfile();
    assert_non_null(f);
    sweep_csv_header(f);
    sweep_run(s, csv_visit, f);
    rewind(f);
    char line[1024];
    int header_fields = -1, rows = 0, ok = 0;
    while (fgets(line, sizeof line, f)) {
        int fields = 1;
        for (char *p = line; *p; p++) fields += *p == ',';
        if (header_fields < 0)
            header_fields = fields;
        else
            assert_int_equal(fields, header_fields), rows++;
        if (strstr(line, ",ok,")) ok++;
    }
    fclose(f);
    assert_int_equal(rows, sweep_count(s));
    assert_true(ok > 0);
    free(s);
}

/* A CSV number survives a round trip to its printed precision. */
static void test_csv_numbers(void **state) {
    (void)state;
    plan_spec *p = tu_plan("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 8\nparallel: {dp: 8}\n"
                           "batch: {global: 64, micro: 2, seq: 2048}\nrecompute: none\n"
                           "precision: bf16-mixed\noptimizer: adamw\n");
    eval_result r;
    eval_plan(&p->model.cfg, &p->cluster.cfg, &p->cfg, &r, NULL);
    sweep_point pt = {&p->cfg, PLAN_OK, &r};
    char header[1024], line[1024];
    FILE *f = tmpfile();
    sweep_csv_header(f);
    sweep_csv_row(f, &pt);
    rewind(f);
    assert_non_null(fgets(header, sizeof header, f));
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    /* the field under a header name */
    const char *names[] = {"step_s", "tokens_per_s", "offload", "overlap", "status"};
    char fields[5][64];
    for (int k = 0; k < 5; k++) {
        int col = 0;
        for (char *h = header; h; h = strchr(h, ',') ? strchr(h, ',') + 1 : NULL, col++)
            if (!strncmp(h, names[k], strlen(names[k])) &&
                (h[strlen(names[k])] == ',' || h[strlen(names[k])] == '\n'))
                break;
        char *v = line;
        for (int i = 0; i < col; i++) v = strchr(v, ',') + 1;
        snprintf(fields[k], sizeof fields[k], "%.*s", (int)strcspn(v, ",\n"), v);
    }
    assert_float_equal(strtod(fields[0], NULL), r.time.step, 1e-6);
    assert_float_equal(strtod(fields[1], NULL), r.time.tokens_per_s, 0.05);
    assert_string_equal(fields[2], "none");
    assert_string_equal(fields[3], "dp+pp");
    assert_string_equal(fields[4], "ok");
    free(p);
}

static void test_errors(void **state) {
    (void)state;
    tu_contains(load_error("model: gpt-1.7b\ncluster: dgx-a100\nbatch: {global: 8, seq: 2048}\n"
                           "precision: fp32\noptimizer: adamw\n"),
                "bad.yaml:1:1", "gpus", "missing field", NULL);
    tu_contains(load_error("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 8\n"
                           "batch: {global: 8, seq: 2048}\nprecision: fp32\noptimizer: adamw\n"
                           "space: {tpp: [1, 2]}\n"),
                "bad.yaml:7", "space", "did you mean 'tp'", NULL);
    tu_contains(load_error("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 8\n"
                           "batch: {global: 8, seq: 2048}\nprecision: fp32\noptimizer: adamw\n"
                           "space: {recompute: [none, some]}\n"),
                "bad.yaml:7", "space.recompute", "expected one of none, selective, full",
                "\"some\"", NULL);
    tu_contains(load_error("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 8\n"
                           "batch: {global: 8, seq: 2048}\nprecision: fp32\noptimizer: adamw\n"
                           "space: {placement: [[tp, tp, pp, dp]]}\n"),
                "bad.yaml:7", "space.placement", "exactly once", NULL);
    tu_contains(load_error("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 8\n"
                           "batch: {global: 8, seq: 2048}\nprecision: fp32\noptimizer: adamw\n"
                           "space: {micro: [1, -2]}\n"),
                "bad.yaml:7", "space.micro", NULL);
    tu_contains(load_error("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 8\n"
                           "batch: {global: 8, seq: 2048}\nprecision: fp32\noptimizer: adamw\n"
                           "space: {tp: [0, 2]}\n"),
                "bad.yaml:7", "space.tp", "expected an integer from 1", "found 0", NULL);
    tu_contains(load_error("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 8\n"
                           "batch: {global: 8, seq: 2048}\nprecision: fp32\noptimizer: adamw\n"
                           "space: {zero: [1, 7]}\n"),
                "space.zero", "from 0 to 3", "found 7", NULL);
    tu_contains(load_error("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 8\n"
                           "batch: {global: 8, seq: 2048}\nprecision: fp32\noptimizer: adamw\n"
                           "space: {pp: [1, 512]}\n"),
                "space.pp", "from 1 to 256", "found 512", NULL);
}

/* The table recompute policies are sweep values; their CSV rows name them,
 * and each is evaluated as plan_load would (its own memory and time). A
 * custom list is the base plan's recompute:, not a space value. */
static void test_recompute_policies(void **state) {
    (void)state;
    sweep_spec *s = load("name: rc\nmodel: llama3-8b\ncluster: dgx-h100\ngpus: 8\n"
                         "batch: {global: 64, seq: 4096}\nprecision: bf16-mixed\n"
                         "space: {recompute: [none, op, gelu, gelu+norm]}\n");
    assert_int_equal(sweep_count(s), 4);
    collect *c = calloc(1, sizeof *c);
    assert_non_null(c);
    sweep_run(s, visit, c);
    assert_int_equal(c->ok, 4);
    FILE *f = tmpfile();
    assert_non_null(f);
    sweep_csv_header(f);
    sweep_run(s, csv_visit, f);
    rewind(f);
    char text[8192] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    tu_contains(text, ",1,none,1f1b,", ",1,op,1f1b,", ",1,gelu,1f1b,", ",1,gelu+norm,1f1b,", NULL);
    free(c);
    free(s);
    /* the base plan's custom list sweeps with the rest */
    s = load("name: rc\nmodel: llama3-8b\ncluster: dgx-h100\ngpus: 8\n"
             "batch: {global: 64, seq: 4096}\nprecision: bf16-mixed\nrecompute: [w3.out]\n"
             "space: {tp: [1, 2]}\n");
    assert_int_equal(s->base.cfg.recompute, RECOMPUTE_CUSTOM);
    assert_int_equal(s->space.recompute.n, 1);
    assert_int_equal(s->space.recompute.v[0], RECOMPUTE_CUSTOM);
    free(s);
    tu_contains(load_error("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 8\n"
                           "batch: {global: 8, seq: 2048}\nprecision: fp32\noptimizer: adamw\n"
                           "space: {recompute: [op, custom]}\n"),
                "bad.yaml:7:25", "space.recompute",
                "expected one of none, selective, full, op, gelu, gelu+norm", "\"custom\"", NULL);
}

/* Repeated values are kept once. */
static void test_dedupe(void **state) {
    (void)state;
    sweep_spec *s = load("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 8\n"
                         "batch: {global: 8, seq: 2048}\nprecision: fp32\noptimizer: adamw\n"
                         "space: {tp: [2, 2, 1], micro: [1, 1], "
                         "placement: [[tp, cp, dp, pp], [dp, cp, pp, tp], [tp, cp, dp, pp]]}\n");
    assert_int_equal(s->space.tp.n, 2);
    assert_int_equal(s->space.micro.n, 1);
    assert_int_equal(s->space.n_placement, 2);
    free(s);
}

/* The built-in default sweep loads and has plans that fit. */
static void test_default(void **state) {
    (void)state;
    sweep_spec *s = calloc(1, sizeof *s);
    ps_err err = {{0}};
    assert_int_equal(sweep_load(NULL, s, &err), 0);
    sweep_rank r;
    assert_int_equal(sweep_rank_init(&r, 3), 0);
    sweep_run(s, rank_visit, &r);
    assert_true(r.fit > 0);
    assert_int_equal(r.n, 3);
    sweep_rank_free(&r);
    free(s);
}

/* A sweep's base plan takes a framework profile's defaults (here FSDP2's
 * zero: 3 and precision), and its varied fields win over them. */
typedef struct {
    int64_t ok, zero_seen[4];
    bool all_transient;
} fw_collect;

static void fw_visit(void *ctx, const sweep_point *pt) {
    fw_collect *c = ctx;
    if (pt->reason != PLAN_OK) return;
    c->ok++;
    c->zero_seen[pt->cfg->zero]++;
    c->all_transient &= pt->cfg->framework.param_copy_transient && pt->eval->heavy.params == 0;
}

static void test_framework(void **state) {
    (void)state;
    const char *base = "name: fw\nmodel: llama3-8b\ncluster: dgx-h100\ngpus: 8\nframework: fsdp2\n"
                       "batch: {global: 64, seq: 4096}\nspace:\n  tp: [1]\n  pp: [1]\n";
    char text[512];
    snprintf(text, sizeof text, "%s", base);
    sweep_spec *s = load(text);
    assert_string_equal(s->base.framework_name, "fsdp2");
    assert_int_equal(s->base.cfg.zero, 3);
    assert_int_equal(s->base.cfg.precision.grads, DT_FP32);
    fw_collect c = {.all_transient = true};
    sweep_run(s, fw_visit, &c);
    assert_true(c.ok > 0);
    assert_int_equal(c.zero_seen[3], c.ok);
    assert_true(c.all_transient);
    free(s);
    snprintf(text, sizeof text, "%s  zero: [1, 3]\n", base);
    s = load(text);
    c = (fw_collect){.all_transient = true};
    sweep_run(s, fw_visit, &c);
    assert_true(c.zero_seen[1] > 0 && c.zero_seen[3] > 0);
    assert_int_equal(c.zero_seen[1] + c.zero_seen[3], c.ok);
    assert_true(c.all_transient);
    free(s);
}

/* DeepSeek-V3's published layout (pp 16, ep 64, ZeRO-1, dp 128, tp 1,
 * DualPipe) in a sweep of its expert layouts and two schedules
 * (plans/sweeps/deepseek-v3-2048xh800.yaml, full recompute, bf16): valid, but
 * under full recompute no DualPipe layout fits in 80 GB. A set between F and
 * B keeps only the layer input there, while each of the 8 chunk-micro-batches
 * whose W a middle rank queues in step 6 keeps its 4 MoE layers' linear
 * inputs and output gradients (docs/memory.md §4 "DualPipe: activations and
 * queued W's"; test_eval.c test_moe_deepseek_v3_dualpipe): 92 GiB on rank 7.
 * So every fitting plan is 1F1B, the published expert layout (ep 64, ZeRO-1)
 * fifth, behind ep 16, 4, 32 and 8, each of which sends fewer all-to-all
 * bytes over InfiniBand or computes fewer rows than ep 64; ep 256 does not
 * divide dp (ep-fold). node_limit 4 limits nothing for the ep groups of one or
 * two nodes (ep <= 16). A dense model's sweep does not vary ep. */
static void test_moe_published_layout(void **state) {
    (void)state;
    sweep_spec *s = calloc(1, sizeof *s);
    ps_err err = {{0}};
    assert_non_null(s);
    if (sweep_load("plans/sweeps/deepseek-v3-2048xh800.yaml", s, &err)) fail_msg("%s", err.msg);
    assert_int_equal(s->space.ep.n, 9); /* auto: the divisors of 256 experts */
    sweep_rank r;
    assert_int_equal(sweep_rank_init(&r, 100), 0);
    sweep_run(s, rank_visit, &r);
    sweep_rank_sort(&r);
    /* ep x zero x schedule; etp 0 and 1 are the same with tp 1: once */
    assert_int_equal(r.points, 9 * 2 * 2);
    assert_int_equal(r.rejected[PLAN_MOE_NODE_LIMIT], 0);
    assert_int_equal(r.rejected[PLAN_EP_FOLD], 2 * 2); /* ep 256 */
    int rank = -1;
    for (int i = 0; i < r.n; i++) {
        assert_int_equal(r.e[i].cfg.schedule, SCHED_1F1B); /* no DualPipe plan fits */
        if (r.e[i].cfg.ep == 64 && r.e[i].cfg.zero == 1 && r.e[i].cfg.pp == 16 &&
            r.e[i].cfg.dp == 128 && r.e[i].cfg.tp == 1)
            rank = i;
    }
    assert_int_equal(r.no_fit, 2 * 8 + 3); /* every DualPipe one (8 ep x 2 ZeRO), 3 of 1F1B */
    assert_int_equal(rank, 4);
    assert_true(r.e[rank].peak_bytes <= r.e[rank].capacity_bytes);
    assert_int_equal(r.e[0].cfg.ep, 16);
    char why[400];
    sweep_rank_why(&r.e[3], &r.e[4], why, sizeof why);
    tu_contains(why, "less exposed ep all-to-all", "(ep 8 vs 64)", NULL);
    sweep_rank_free(&r);
    free(s);
    /* dense: `ep: auto` keeps the plan's ep (1) and adds no point */
    sweep_spec *d = load("model: llama3-8b\ncluster: dgx-h100\ngpus: 8\n"
                         "batch: {global: 64, seq: 2048}\nprecision: bf16-mixed\n"
                         "space: {tp: [1, 2], ep: auto}\n");
    assert_int_equal(sweep_count(d), 2);
    free(d);
    /* a list of ep (or etp) for a dense model would be ignored: refused where written */
    tu_contains(load_error("model: llama3-8b\ncluster: dgx-h100\ngpus: 8\n"
                           "batch: {global: 64, seq: 2048}\nprecision: bf16-mixed\n"
                           "space:\n  ep: [2, 4]\n"),
                "bad.yaml:7:7:", "space.ep", "a dense model", NULL);
}


/* ---- Logit distillation in a sweep (docs/sweep.md) ---- */
static const char distill_sweep[] =
    "model: tiny-1m\ncluster: local-cpu\ngpus: 4\nbatch: {global: 16, seq: 256}\n"
    "precision: fp32\noptimizer: adamw\n"
    "distill: {teacher: tiny-10m, weights: f32, gpus: 4}\n"
    "space:\n  tp: [1, 2]\n  pp: [1, 2, 4]\n  micro: [4]\n  zero: [0]\n"
    "  distill_placement: auto\n  distill_top_k: [0, 8]\n";

typedef struct {
    const sweep_spec *s;
    int64_t visits, ok, pp_rejected, topk_pairs;
} distill_collect;

/* Every evaluated point carries the teacher and agrees with a plan evaluated
 * on its own (no cache); shared points with pp = 4 are refused (tiny-10m's 6
 * layers). */
static void distill_visit(void *ctx, const sweep_point *pt) {
    distill_collect *c = ctx;
    c->visits++;
    if (pt->reason == PLAN_DISTILL_PP) {
        assert_int_equal(pt->cfg->pp, 4);
        assert_int_equal(pt->cfg->distill.placement, DISTILL_SHARED);
        c->pp_rejected++;
    }
    if (pt->reason != PLAN_OK) return;
    c->ok++;
    assert_true(pt->eval->distill.set);
    assert_int_equal(pt->eval->distill.placement, pt->cfg->distill.placement);
    eval_result r;
    eval_cache k;
    k.valid = false;
    eval_plan_distill(&c->s->base.model.cfg, &c->s->base.teacher.cfg, &c->s->base.cluster.cfg,
                      pt->cfg, &r, NULL, &k);
    assert_int_equal(r.heavy.total, pt->eval->heavy.total);
    assert_float_equal(r.time.step, pt->eval->time.step, 0);
    /* top-k 8 against every logit: qt's 1024 x 256/tp x 4 B become 1024 x 8 x 8 B */
    if (pt->cfg->distill.top_k == 8)
        assert_int_equal(pt->eval->distill.topk_saving,
                         1024 * (256 / pt->cfg->tp * 4 - 64));
}

static void test_distill_sweep(void **state) {
    (void)state;
    sweep_spec *s = load(distill_sweep);
    assert_int_equal(s->space.distill_placement.n, 2); /* auto: shared, separate */
    assert_int_equal(s->space.distill_top_k.n, 2);
    distill_collect c = {.s = s};
    sweep_run(s, distill_visit, &c);
    /* (tp, pp) with 4 % (tp pp) == 0: (1,1) (1,2) (1,4) (2,1) (2,2) each once
     * (1f1b only), x 2 placements x 2 top-k; (2,4) is degrees-product */
    assert_int_equal(c.visits, sweep_count(s));
    assert_int_equal(c.visits, 6 * 2 * 2);
    /* shared with pp = 4: tp 1, two top-k values */
    assert_int_equal(c.pp_rejected, 2);
    assert_true(c.ok > 0);
    sweep_rank r;
    assert_int_equal(sweep_rank_init(&r, 8), 0);
    sweep_run(s, rank_visit, &r);
    assert_int_equal(r.rejected[PLAN_DISTILL_PP], 2);
    /* the CSV's strategy column names where the teacher runs and top-k */
    sweep_rank_sort(&r);
    char label[64];
    assert_non_null(strstr(sweep_strategy(&r.e[0].cfg, label, sizeof label), " kd-"));
    sweep_rank_free(&r);
    free(s);
    /* the axes need a teacher; separate needs its GPUs; top-k at most the vocabulary */
    tu_contains(load_error("model: tiny-1m\ncluster: local-cpu\ngpus: 4\nbatch: {global: 16, "
                           "seq: 256}\nprecision: fp32\noptimizer: adamw\nspace:\n  "
                           "distill_top_k: [0, 8]\n"),
                "bad.yaml:8:18:", "space.distill_top_k", "distill:", NULL);
    tu_contains(load_error("model: tiny-1m\ncluster: local-cpu\ngpus: 4\nbatch: {global: 16, "
                           "seq: 256}\nprecision: fp32\noptimizer: adamw\n"
                           "distill: {teacher: tiny-10m}\nspace:\n  distill_placement: auto\n"),
                "bad.yaml:9:22:", "space.distill_placement", "distill.gpus", NULL);
    tu_contains(load_error("model: tiny-1m\ncluster: local-cpu\ngpus: 4\nbatch: {global: 16, "
                           "seq: 256}\nprecision: fp32\noptimizer: adamw\n"
                           "distill: {teacher: tiny-10m}\nspace:\n  distill_top_k: [8, 300]\n"),
                "bad.yaml:9:22:", "space.distill_top_k", "300", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_and_rank), cmocka_unit_test(test_why),
        cmocka_unit_test(test_distill_sweep),
        cmocka_unit_test(test_csv),           cmocka_unit_test(test_csv_numbers),
        cmocka_unit_test(test_errors),        cmocka_unit_test(test_default), cmocka_unit_test(test_framework),
        cmocka_unit_test(test_recompute_policies),
        cmocka_unit_test(test_moe_published_layout),
        cmocka_unit_test(test_dedupe),        cmocka_unit_test(test_equivalents),
        cmocka_unit_test(test_equivalents_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
