/* test_time.c — the step-time model against hand-computed values
 * (docs/time.md): GEMM efficiency interpolation, per-layer FLOPs and bytes,
 * alpha-beta collective costs, placement, the pipeline closed forms against
 * the event simulation, conservation of communication time, and the known
 * rank orders. */
#include <math.h>

#include "coll_time.h"
#include "kernel_time.h"
#include "published.h"
#include "pipe_sched.h"
#include "step_sim.h"
#include "step_time.h"
#include "tu.h"

static cluster_cfg flat_cluster(void) {
    cluster_cfg c;
    memset(&c, 0, sizeof c);
    cluster_eff_default(&c.eff);
    c.eff.gemm_n = 1, c.eff.gemm_dim[0] = 1, c.eff.gemm_frac[0] = 0.5;
    cluster_eff_prepare(&c.eff);
    c.eff.hbm = 0.5, c.eff.intra = c.eff.inter = 1.0;
    c.peak_flops_per_s[DT_BF16] = 100e12;
    c.hbm_bytes_per_s = 2e12;
    c.gpus_per_node = 8, c.nodes = 16;
    c.intra_bytes_per_s = 100e9, c.intra_latency_s = 5e-6;
    c.inter_bytes_per_s = 10e9, c.inter_latency_s = 20e-6;
    return c;
}

/* Log-log interpolation: halfway (in log) between two points is the
 * geometric mean of their fractions. */
static void test_gemm_curve(void **state) {
    (void)state;
    cluster_eff e;
    cluster_eff_default(&e);
    e.gemm_n = 2;
    e.gemm_dim[0] = 64, e.gemm_frac[0] = 0.2;
    e.gemm_dim[1] = 256, e.gemm_frac[1] = 0.5;
    cluster_eff_prepare(&e);
    assert_float_equal(kt_gemm_efficiency(&e, 128), sqrt(0.2 * 0.5), 1e-12);
    assert_float_equal(kt_gemm_efficiency(&e, 64), 0.2, 1e-12);
    assert_float_equal(kt_gemm_efficiency(&e, 32), 0.1, 1e-12);  /* proportional below */
    assert_float_equal(kt_gemm_efficiency(&e, 4096), 0.5, 1e-12); /* flat above */
    cluster_cfg c = flat_cluster();
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    /* 2 x 1024 x 512 x 256 FLOPs at 50% of 100 TFLOP/s */
    assert_float_equal(kt_gemm(&c, &p, 1, 1024, 512, 256), 2.0 * 1024 * 512 * 256 / 50e12, 1e-18);
}

/* A GPT layer's matmul FLOPs are Narayanan et al. 2021's 24 b s h^2 + 4 b s^2 h
 * (forward, full attention square), split over tp; flash attention computes
 * the causal half of the square. */
static void test_layer_flops(void **state) {
    (void)state;
    model_spec ms = tu_model("gpt3-175b");
    cluster_cfg c = flat_cluster();
    for (int64_t tp = 1; tp <= 8; tp *= 2) {
        plan_cfg p = tu_cfg(1, tp, 1, 1);
        p.micro_batch = 2;
        kt_part k;
        kt_layer(&ms.cfg, &c, &p, &k);
        double flops = 0;
        for (int i = 0; i < k.n; i++) flops += k.op[i].flops_fwd;
        const double b = 2, s = 2048, h = 12288;
        assert_float_equal(flops, (24 * b * s * h * h + 4 * b * s * s * h) / (double)tp, 1.0);
        ms.cfg.attention = ATTN_FLASH;
        kt_layer(&ms.cfg, &c, &p, &k);
        flops = 0;
        for (int i = 0; i < k.n; i++) flops += k.op[i].flops_fwd;
        assert_float_equal(flops, (24 * b * s * h * h + 2 * b * s * s * h) / (double)tp, 1.0);
        ms.cfg.attention = ATTN_STANDARD;
    }
}

/* Memory-bound bytes of a GPT layer without dropout, tp = 1: norms 2 x 2h,
 * residual adds 2 x 3h, GeLU 2 x 4h per token, softmax 2 bytes per score
 * element read and written. */
static void test_layer_bytes(void **state) {
    (void)state;
    model_spec ms = tu_model("gpt3-175b");
    ms.cfg.dropout = 0;
    cluster_cfg c = flat_cluster();
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    kt_part k;
    kt_layer(&ms.cfg, &c, &p, &k);
    double bytes = 0, t_mem = 0;
    for (int i = 0; i < k.n; i++)
        if (k.op[i].kind == KT_MEM) bytes += k.op[i].bytes_fwd, t_mem += k.op[i].fwd;
    const double T = 2048, h = 12288, a = 2, heads = 96, s = 2048;
    const double expect = T * h * a * (4 + 6 + 8) + 2 * a * heads * s * s;
    assert_float_equal(bytes, expect, 1.0);
    assert_float_equal(t_mem, expect / (2e12 * 0.5), 1e-15);
    /* backward of a weight matmul: input and weight gradients, each = forward */
    for (int i = 0; i < k.n; i++)
        if (!strcmp(k.op[i].name, "qkv")) {
            assert_float_equal(k.op[i].bwd_in, k.op[i].fwd, 1e-18);
            assert_float_equal(k.op[i].bwd_w, k.op[i].fwd, 1e-18);
        }
}

/* Alpha-beta costs, computed by hand. */
static void test_coll_time(void **state) {
    (void)state;
    coll_link l = {100e9, 5e-6, false, 1};
    /* ring all-reduce: 2(n-1) steps, 2(n-1)/n S */
    assert_float_equal(coll_time(COLL_ALL_REDUCE, 8, 800000000, &l),
                       14 * 5e-6 + 2.0 * 7 / 8 * 8e8 / 100e9, 1e-12);
    /* reduce-scatter: n-1 steps, (n-1)/n S */
    assert_float_equal(coll_time(COLL_REDUCE_SCATTER, 4, 400000000, &l),
                       3 * 5e-6 + 0.75 * 4e8 / 100e9, 1e-12);
    assert_float_equal(coll_time(COLL_SEND, 2, 1000000, &l), 5e-6 + 1e6 / 100e9, 1e-15);
    /* tiny all-reduce on 64 ranks: the tree's 2 log2(64) latencies beat 126 */
    assert_float_equal(coll_time(COLL_ALL_REDUCE, 64, 64, &l), 12 * 5e-6 + 128 / 100e9, 1e-15);
    assert_float_equal(coll_time(COLL_ALL_REDUCE, 1, 1 << 20, &l), 0, 0);
}

/* Placement: tp innermost stays in the node; moved outermost it crosses. */
static void test_placement(void **state) {
    (void)state;
    cluster_cfg c = flat_cluster();
    plan_cfg p = tu_cfg(2, 8, 4, 1);
    coll_link l;
    coll_group_link(&c, &p, GROUP_TP, &l);
    assert_false(l.inter_node);
    assert_int_equal(l.stride, 1);
    assert_float_equal(l.bytes_per_s, 100e9, 1);
    coll_group_link(&c, &p, GROUP_PP, &l);
    assert_true(l.inter_node);
    assert_int_equal(l.stride, 8);
    coll_group_link(&c, &p, GROUP_DP, &l);
    assert_int_equal(l.stride, 32);
    const uint8_t outer[PLAN_GROUPS] = {GROUP_DP, GROUP_CP, GROUP_PP, GROUP_TP};
    memcpy(p.placement, outer, sizeof outer);
    coll_group_link(&c, &p, GROUP_TP, &l);
    assert_true(l.inter_node);
    assert_int_equal(l.stride, 8);
    assert_float_equal(l.bytes_per_s, 10e9, 1);
    plan_cfg q = tu_cfg(4, 2, 1, 1); /* 2 x 4 = 8: both inside one node */
    coll_group_link(&c, &q, GROUP_DP, &l);
    assert_false(l.inter_node);
    assert_int_equal(l.stride, 2);
}

/* Uniform stages: the closed form equals the event simulation and the
 * textbook (m + p - 1) t, (m v + p - 1) t_chunk and ZB-H1 values. */
static void check_pipeline(plan_schedule kind, int64_t p, int64_t m, int64_t v, double f, double b,
                           double w, double expect) {
    plan_cfg cfg = tu_cfg(1, 1, p, 1);
    cfg.schedule = kind;
    cfg.virtual_stages = v;
    cfg.micro_batch = 1;
    cfg.global_batch = m;
    cfg.gpus = p;
    stage_time st;
    memset(&st, 0, sizeof st);
    st.f = f, st.b = b, st.w = w, st.compute = f + b + w;
    const stage_time *by[PLAN_MAX_STAGES];
    for (int64_t s = 0; s < p; s++) by[s] = &st;
    cluster_cfg c = flat_cluster();
    step_time t;
    step_time_combine(&c, &cfg, by, 1000, 1e15, 1e15, &t);
    assert_float_equal(t.pipeline, expect, 1e-9);
    assert_float_equal(t.step, expect, 1e-9);
    assert_float_equal(t.bubble, expect - (double)(m * v) * (f + b + w), 1e-9);
    double tf[PLAN_MAX_STAGES], tb[PLAN_MAX_STAGES], tw[PLAN_MAX_STAGES];
    for (int64_t s = 0; s < p; s++) tf[s] = f, tb[s] = b, tw[s] = w;
    sched_in in = {kind, p, m, v, tf, tb, tw, 0};
    sched_out out;
    assert_int_equal(sched_simulate(&in, NULL, &out), 0);
    assert_float_equal(out.step_time, expect, 1e-9);
    /* MFU = model FLOPs / (step x GPUs x peak) */
    assert_float_equal(t.mfu, 1e15 / (expect * (double)p * 100e12), 1e-12);
}

static void test_pipeline_closed_forms(void **state) {
    (void)state;
    check_pipeline(SCHED_1F1B, 4, 8, 1, 1, 2, 0, (8 + 3) * 3.0);
    check_pipeline(SCHED_AFAB, 8, 16, 1, 1, 2, 0, (16 + 7) * 3.0);
    check_pipeline(SCHED_INTERLEAVED, 4, 8, 2, 0.5, 1, 0, (16 + 3) * 1.5);
    check_pipeline(SCHED_INTERLEAVED, 2, 4, 3, 1, 2, 0, (12 + 1) * 3.0);
    /* ZB-H1 with f = b = w: m (f+b+w) + (p-1)(f+b) - (min(m,p)-1) w */
    check_pipeline(SCHED_ZERO_BUBBLE, 4, 8, 1, 1, 1, 1, 24 + 6 - 3);
    check_pipeline(SCHED_ZERO_BUBBLE, 8, 8, 1, 1, 1.5, 0.5, 8 * 3 + 7 * 2.5 - 7 * 0.5);
}

/* The parts of a step add up to it; hidden + exposed communication equals the
 * collectives' alpha-beta time; the shortcut and the cache change nothing. */
static void test_conservation(void **state) {
    (void)state;
    plan_spec *s = tu_plan("model: gpt3-175b\ncluster: dgx-a100\ngpus: 256\n"
                           "parallel: {dp: 4, tp: 8, pp: 8, zero: 1, sp: true}\n"
                           "batch: {global: 64, micro: 1, seq: 2048}\n"
                           "pipeline: {schedule: interleaved, virtual: 2}\n"
                           "recompute: selective\nprecision: bf16-mixed\noptimizer: adamw\n");
    const model_cfg *m = &s->model.cfg;
    const cluster_cfg *c = &s->cluster.cfg;
    eval_stage *stages = calloc(PLAN_MAX_STAGES, sizeof *stages);
    eval_result full, quick, cached;
    eval_plan(m, c, &s->cfg, &full, stages);
    eval_plan(m, c, &s->cfg, &quick, NULL);
    eval_cache k = {0};
    eval_plan_cached(m, c, &s->cfg, &cached, NULL, &k);
    eval_plan_cached(m, c, &s->cfg, &cached, NULL, &k); /* second call hits the cache */
    assert_float_equal(quick.time.step, full.time.step, 1e-12 * full.time.step);
    assert_float_equal(cached.time.step, full.time.step, 1e-12 * full.time.step);
    const step_time *t = &full.time;
    double sum = t->compute + t->bubble + t->optimizer;
    for (int g = 0; g < GROUP_COUNT; g++) sum += t->exposed[g];
    assert_float_equal(sum, t->step, 1e-9 * t->step);
    /* the slowest stage's communication: exposed + hidden = alpha-beta time */
    const eval_stage *st = &stages[t->slowest];
    comm_list l;
    comm_stage_info ci = {st->stage, st->layers, st->param_elems,
                          st->layers + (st->stage == 0) + (st->stage == 7), 0};
    params_count pc;
    params_count_rank(m, 8, &pc);
    ci.tied_rows_params = pc.embedding;
    comm_stage(m, &s->cfg, &ci, &l);
    time_ctx x;
    time_ctx_init(m, c, &s->cfg, &x);
    double tp_total = 0;
    for (int i = 0; i < l.n; i++)
        if (l.e[i].group == GROUP_TP)
            tp_total += (double)l.e[i].calls *
                        coll_time(l.e[i].coll, l.e[i].group_size, l.e[i].bytes_per_call,
                                  &x.link[GROUP_TP]);
    assert_float_equal(t->exposed[GROUP_TP] + t->hidden[GROUP_TP], tp_total, 1e-9 * tp_total);
    assert_float_equal(t->hidden[GROUP_TP], 0, 0); /* overlap.tp is off by default */
    /* the event simulation of the same stage times agrees with the closed form
     * to within the first/last-stage imbalance */
    step_sim_input *in = malloc(sizeof *in);
    step_sim sim;
    assert_int_equal(step_sim_run(&s->cfg, stages, t, NULL, in, &sim), 0);
    assert_true(fabs(sim.pipeline / t->pipeline - 1) < 0.02);
    free(in);
    free(stages);
    free(s);
}

/* Tensor parallelism across nodes loses to tensor parallelism inside one
 * (Narayanan et al. 2021 §3.3, Figure 13). */
static void test_tp_inside_node_wins(void **state) {
    (void)state;
    const char *base = "model: gpt3-175b\ncluster: dgx-a100\ngpus: 64\n"
                       "parallel: {dp: 1, tp: 8, pp: 8}\nbatch: {global: 64, micro: 1, seq: 2048}\n"
                       "recompute: selective\nprecision: bf16-mixed\noptimizer: adamw\n";
    char text[1024];
    plan_spec *in = tu_plan(base);
    snprintf(text, sizeof text, "%splacement: [pp, cp, dp, tp]\n", base);
    plan_spec *across = tu_plan(text);
    eval_result a, b;
    eval_plan(&in->model.cfg, &in->cluster.cfg, &in->cfg, &a, NULL);
    eval_plan(&across->model.cfg, &across->cluster.cfg, &across->cfg, &b, NULL);
    assert_true(a.time.tokens_per_s > 1.5 * b.time.tokens_per_s);
    assert_true(b.time.exposed[GROUP_TP] > 5 * a.time.exposed[GROUP_TP]);
    free(in);
    free(across);
}

/* Call fn for every case of a published file with its evaluation. */
typedef void (*case_fn)(void *ctx, const published_case *info, const eval_result *r);

static void each_case(const char *path, case_fn fn, void *ctx) {
    ynode *root = NULL;
    ps_err err = {{0}};
    int n = 0;
    if (ynode_load_file(path, &root, &err)) fail_msg("%s", err.msg);
    const ynode *cases = published_cases(root, &n, &err);
    assert_non_null(cases);
    plan_spec *s = calloc(1, sizeof *s);
    for (int i = 0; i < n; i++) {
        published_case info;
        if (published_plan(root, cases->items[i], path, s, &info, &err)) fail_msg("%s", err.msg);
        eval_result r;
        eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r, NULL);
        fn(ctx, &info, &r);
    }
    free(s);
    ynode_free(root);
}

typedef struct {
    double zero3[4], ptdp[4];
} table2;

static const char *const t2_zero3[] = {"zero3-175b-768", "zero3-175b-1536", "zero3-530b-1120",
                                       "zero3-530b-2240"};
static const char *const t2_ptdp[] = {"ptdp-175b-768", "ptdp-175b-1536", "ptdp-530b-1120",
                                      "ptdp-530b-2240"};

static void table2_case(void *ctx, const published_case *info, const eval_result *r) {
    table2 *t = ctx;
    for (int k = 0; k < 4; k++) {
        if (!strcmp(info->name, t2_zero3[k])) t->zero3[k] = r->time.tokens_per_s;
        if (!strcmp(info->name, t2_ptdp[k])) t->ptdp[k] = r->time.tokens_per_s;
    }
}

/* Narayanan et al. 2021 Table 2: with twice the GPUs at the same batch,
 * PTD-P beats ZeRO-3 for both models (the paper: by 70%; the model predicts
 * 20-130%, and gets the 384-GPU row wrong: docs/accuracy.md §3). */
static void test_ptdp_beats_zero3(void **state) {
    (void)state;
    table2 t = {{0}, {0}};
    each_case("bench/published/narayanan2021-table2.yaml", table2_case, &t);
    for (int k = 0; k < 4; k++) {
        assert_true(t.zero3[k] > 0 && t.ptdp[k] > 0);
        if (t.ptdp[k] <= t.zero3[k])
            fail_msg("%s: PTD-P %.0f vs ZeRO-3 %.0f tokens/s", t2_ptdp[k], t.ptdp[k], t.zero3[k]);
    }
}

typedef struct {
    double sum, max;
    int n;
} errors;

static void error_case(void *ctx, const published_case *info, const eval_result *r) {
    errors *e = ctx;
    double x = info->kind == PUB_MFU ? r->time.mfu / info->value - 1 : r->time.step / info->step_s - 1;
    e->sum += fabs(x);
    e->n++;
    if (fabs(x) > e->max) e->max = fabs(x);
}

/* The calibration holds (issue 3's bar: mean <= 5%, max <= 10% on Narayanan
 * et al. 2021 Table 1 and Korthikanti et al. 2022 Table 5; the same bar for
 * the H100 cases, fitted and held out). A change to the
 * model that breaks it must refit (bench/fit_efficiency.py) and say so. */
static void test_published_accuracy(void **state) {
    (void)state;
    const char *files[] = {"bench/published/narayanan2021-table1.yaml",
                           "bench/published/korthikanti2022-table5.yaml",
                           "bench/published/dgxc-h100-fit.yaml",
                           "bench/published/dgxc-h100-scale.yaml"};
    for (int i = 0; i < 4; i++) {
        errors e = {0, 0, 0};
        each_case(files[i], error_case, &e);
        assert_true(e.n > 0);
        if (e.sum / e.n > 0.05 || e.max > 0.10)
            fail_msg("%s: mean |error| %.1f%%, max %.1f%%", files[i], 100 * e.sum / e.n, 100 * e.max);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_curve),         cmocka_unit_test(test_layer_flops),
        cmocka_unit_test(test_layer_bytes),        cmocka_unit_test(test_coll_time),
        cmocka_unit_test(test_placement),          cmocka_unit_test(test_pipeline_closed_forms),
        cmocka_unit_test(test_conservation),       cmocka_unit_test(test_tp_inside_node_wins),
        cmocka_unit_test(test_ptdp_beats_zero3),   cmocka_unit_test(test_published_accuracy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
