/* test_sched.c — explicit pipeline op orders and their event simulation
 * (docs/schedule.md): bubbles against the closed forms, peaks against
 * sim/cost/pipe.c, dependencies, and hand-computed timelines. */
#include <math.h>
#include <time.h>

#include "cost/pipe.h"
#include "time/pipe_sched.h"
#include "tu.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

typedef struct {
    double f[PLAN_MAX_STAGES], b[PLAN_MAX_STAGES], w[PLAN_MAX_STAGES];
    sched_in in;
} setup;

/* Uniform times on every stage. */
static void uniform(setup *u, plan_schedule kind, int64_t p, int64_t m, int64_t v, double t_f,
                    double t_b, double t_w) {
    for (int64_t s = 0; s < p; s++) u->f[s] = t_f, u->b[s] = t_b, u->w[s] = t_w;
    u->in = (sched_in){.kind = kind, .p = p, .m = m, .v = v, .t_f = u->f, .t_b = u->b,
                       .t_w = u->w};
}

static double op_time(const sched_in *in, int64_t s, int kind) {
    if (kind == SCHED_OP_F) return in->t_f[s];
    if (kind == SCHED_OP_W) return in->t_w[s];
    return in->kind == SCHED_ZERO_BUBBLE ? in->t_b[s] : in->t_b[s] + in->t_w[s];
}

/* Every stage runs each (kind, chunk, mb) exactly once, one op at a time in
 * list order, with each op's duration, and no op starts before its inputs
 * (and, across stages, the send) are done. */
static void check_ops(const sched_in *in, const sched_op *ops, const sched_out *out) {
    const int64_t p = in->p, m = in->m, v = in->v, g_n = p * v, n = sched_ops_per_stage(in);
    const int kinds = in->kind == SCHED_ZERO_BUBBLE ? 3 : 2;
    const double hop = p > 1 ? in->t_p2p : 0;
    assert_int_equal(n, m * v * kinds);
    double *end = malloc(sizeof(double) * (size_t)(3 * g_n * m));
    assert_non_null(end);
    for (int64_t i = 0; i < 3 * g_n * m; i++) end[i] = NAN;
#define END(kind, g, mb) end[((kind) * g_n + (g)) * m + (mb)]
    double last = 0;
    for (int64_t s = 0; s < p; s++)
        for (int64_t i = 0; i < n; i++) {
            const sched_op *o = &ops[s * n + i];
            assert_true(o->kind < kinds && o->chunk >= 0 && o->chunk < v && o->mb >= 0 &&
                        o->mb < m);
            const int64_t g = o->chunk * p + s;
            assert_true(isnan(END(o->kind, g, o->mb))); /* not seen before */
            END(o->kind, g, o->mb) = o->end;
            assert_true(fabs(o->end - o->start - op_time(in, s, o->kind)) < 1e-12);
            assert_true(o->start >= 0);
            if (i) assert_true(o->start >= ops[s * n + i - 1].end);
            if (o->end > last) last = o->end;
        }
    for (int64_t s = 0; s < p; s++)
        for (int64_t i = 0; i < n; i++) {
            const sched_op *o = &ops[s * n + i];
            const int64_t g = o->chunk * p + s;
            if (o->kind == SCHED_OP_F && g > 0) assert_true(o->start >= END(0, g - 1, o->mb) + hop);
            if (o->kind == SCHED_OP_B) {
                assert_true(o->start >= END(0, g, o->mb));
                if (g < g_n - 1) assert_true(o->start >= END(1, g + 1, o->mb) + hop);
            }
            if (o->kind == SCHED_OP_W) assert_true(o->start >= END(1, g, o->mb));
        }
#undef END
    assert_true(out->step_time == last);
    free(end);
}

/* Simulate, check the ops, and return the bubble fraction. */
static double simulate(const sched_in *in, sched_out *out) {
    const int64_t n = sched_ops_per_stage(in);
    assert_true(n > 0);
    sched_op *ops = malloc(sizeof *ops * (size_t)(in->p * n));
    assert_non_null(ops);
    assert_int_equal(sched_simulate(in, ops, out), 0);
    check_ops(in, ops, out);
    free(ops);
    return out->bubble_fraction;
}

static const int64_t stages[] = {1, 2, 4, 8};

/* AFAB and 1F1B: (p-1)/m for every m, including m < p, whatever the F:B ratio. */
static void test_afab_1f1b_closed_form(void **state) {
    (void)state;
    const double times[][3] = {{1, 1, 1}, {1, 2, 0}, {0.3, 0.7, 0.2}};
    const plan_schedule kinds[] = {SCHED_AFAB, SCHED_1F1B};
    setup u;
    sched_out out;
    int checked = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++)
            for (int64_t m = 1; m <= 16; m++)
                for (int t = 0; t < 3; t++) {
                    const int64_t p = stages[i];
                    uniform(&u, kinds[k], p, m, 1, times[t][0], times[t][1], times[t][2]);
                    const double sim = simulate(&u.in, &out);
                    const double cf = sched_bubble_closed_form(kinds[k], p, m, 1, times[t][0],
                                                               times[t][1], times[t][2]);
                    assert_true(fabs(cf - (double)(p - 1) / (double)m) < 1e-15);
                    assert_true(fabs(sim - cf) < 1e-12);
                    checked++;
                }
    assert_int_equal(checked, 2 * 4 * 16 * 3);
}

/* Interleaved: (p-1)/(v m) for m a multiple of p (so m >= p), v = 1..4. */
static void test_interleaved_closed_form(void **state) {
    (void)state;
    const double times[][3] = {{1, 1, 0}, {1, 2, 0}, {1, 1, 1}, {2, 1, 0}};
    setup u;
    sched_out out;
    int checked = 0;
    for (int i = 0; i < 4; i++)
        for (int64_t v = 1; v <= 4; v++)
            for (int64_t m = stages[i]; m <= 16; m += stages[i])
                for (int t = 0; t < 4; t++) {
                    const int64_t p = stages[i];
                    uniform(&u, SCHED_INTERLEAVED, p, m, v, times[t][0], times[t][1], times[t][2]);
                    const double sim = simulate(&u.in, &out);
                    const double cf = sched_bubble_closed_form(SCHED_INTERLEAVED, p, m, v, 1, 1, 0);
                    assert_true(fabs(cf - (double)(p - 1) / (double)(v * m)) < 1e-15);
                    assert_true(fabs(sim - cf) < 1e-12);
                    checked++;
                }
    assert_true(checked > 300);
}

/* ZB-H1. The paper's (p-1)(t_f+t_b-t_w) idle time holds exactly when m >= p and
 * t_w <= min(t_f, t_b); everywhere the simulation gives
 * (p-1)(t_f+t_b) - (min(m,p)-1) min(t_w, t_f, t_b), which
 * sched_bubble_closed_form returns. */
static void test_zero_bubble_closed_form(void **state) {
    (void)state;
    const double times[][3] = {{1, 1, 1},       {1, 2, 1},   {2, 1.5, 0.5}, {1, 1, 0.25},
                               {0.3, 0.7, 0.2}, {1, 2, 0.5}, {1, 1, 2},     {0.5, 1, 1},
                               {1, 0.5, 0.75},  {1, 1, 0}};
    setup u;
    sched_out out;
    int in_domain = 0, outside = 0;
    for (int i = 0; i < 4; i++)
        for (int64_t m = 1; m <= 16; m++)
            for (int t = 0; t < 10; t++) {
                const int64_t p = stages[i];
                const double tf = times[t][0], tb = times[t][1], tw = times[t][2];
                uniform(&u, SCHED_ZERO_BUBBLE, p, m, 1, tf, tb, tw);
                const double sim = simulate(&u.in, &out);
                assert_true(
                    fabs(sim - sched_bubble_closed_form(SCHED_ZERO_BUBBLE, p, m, 1, tf, tb, tw)) <
                    1e-12);
                const double paper =
                    (double)(p - 1) * (tf + tb - tw) / ((double)m * (tf + tb + tw));
                if (m >= p && tw <= tf && tw <= tb) {
                    assert_true(fabs(sim - paper) < 1e-12);
                    in_domain++;
                } else if (p > 1 && tw > 0) {
                    assert_true(sim > paper + 1e-9); /* outside it the paper's form is too low */
                    outside++;
                }
            }
    assert_true(in_domain > 100 && outside > 100);
    /* T_F = T_B = T_W: a third of 1F1B's bubble (Qi et al. 2023 §3.1) */
    const double zb = sched_bubble_closed_form(SCHED_ZERO_BUBBLE, 8, 16, 1, 1, 1, 1);
    assert_true(fabs(3 * zb - sched_bubble_closed_form(SCHED_1F1B, 8, 16, 1, 1, 2, 0)) < 1e-15);
}

/* Peak live chunk-micro-batches of one chunk on one stage (released at B). */
static int64_t chunk_peak(const sched_op *o, int64_t n, int64_t chunk) {
    int64_t live = 0, peak = 0;
    for (int64_t i = 0; i < n; i++) {
        if (o[i].chunk != chunk) continue;
        live += o[i].kind == SCHED_OP_F ? 1 : o[i].kind == SCHED_OP_B ? -1 : 0;
        if (live > peak) peak = live;
    }
    return peak;
}

/* Peak activation sets per stage equal sim/cost/pipe.c's in-flight counts for the
 * same plan, and so do the embedding chunk's (stage 0, chunk 0) and the head
 * chunk's (stage p-1, chunk v-1) peaks. Interleaving needs p >= 2 and v >= 2 to
 * be a valid plan: with p = 1 it is skipped, with v = 1 only the stage totals
 * are compared. */
static void test_peaks_match_pipe(void **state) {
    (void)state;
    model_spec model = tu_model("llama3-8b");
    static sched_op ops[8 * 16 * 4 * 3];
    setup u;
    sched_out out;
    int checked = 0;
    for (int kind = 0; kind < 4; kind++)
        for (int i = 0; i < 4; i++)
            for (int64_t v = 1; v <= (kind == SCHED_INTERLEAVED ? 4 : 1); v++)
                for (int64_t m = 1; m <= 16; m++) {
                    const int64_t p = stages[i];
                    if (kind == SCHED_INTERLEAVED && (m % p || p == 1)) continue;
                    uniform(&u, (plan_schedule)kind, p, m, v, 1, 2, 1);
                    const int64_t n = sched_ops_per_stage(&u.in);
                    assert_int_equal(sched_simulate(&u.in, ops, &out), 0);
                    check_ops(&u.in, ops, &out);
                    plan_cfg plan = tu_cfg(1, 1, p, 1);
                    plan.schedule = (plan_schedule)kind;
                    plan.virtual_stages = v;
                    plan.global_batch = m;
                    for (int64_t s = 0; s < p; s++) {
                        pipe_inflight pi;
                        pipe_stage_inflight(&model.cfg, &plan, s, &pi);
                        /* ZB-H1 stage s also keeps s deferred W's: (p - s) + s, capped by
                         * m, pipe.c's count for it (its layers' activations live until W) */
                        const int64_t until_b = kind == SCHED_ZERO_BUBBLE
                                                    ? (m < p - s ? m : p - s)
                                                    : pi.inflight;
                        assert_int_equal(out.peak_inflight[s], until_b);
                        assert_int_equal(out.peak_until_w[s], pi.inflight);
                        if (kind == SCHED_ZERO_BUBBLE)
                            assert_int_equal(out.peak_until_w[s], m < p ? m : p);
                        if (kind == SCHED_INTERLEAVED && v == 1) continue; /* not a valid plan */
                        if (s == 0) assert_int_equal(chunk_peak(ops, n, 0), pi.first_extra);
                        if (s == p - 1)
                            assert_int_equal(chunk_peak(ops + s * n, n, v - 1), pi.last_extra);
                        checked++;
                    }
                }
    assert_true(checked > 500);
}

/* Interleaved chunks of their own times, by hand: p 2, v 2, m 2; on both stages chunk 0
 * takes f 1, b 2 and chunk 1 f 2, b 4 (t_f, t_b, the middle chunks', are unused with v 2).
 * Virtual stages g = chunk 2 + stage. Stage 0 warms up with all four forwards: F(c0) 0-1,
 * 1-2, F(c1, mb0) waits for g 1's mb 0 (stage 1, 1-2): 2-4, F(c1, mb1) 4-6. Stage 1: F(c0)
 * 1-2, 2-3, F(c1, mb0) after g 2 at 4: 4-6, its backward (the loss) 6-10, F(c1, mb1) 10-12,
 * B 12-16, then B(c0, mb0) after stage 0's B(c1, mb0) (10-14): 16-18, B(c0, mb1) after
 * stage 0's B(c1, mb1) (16-20): 20-22. Stage 0 ends with B(c0) 20-22 (after 18) and 22-24
 * (after 22): step 24, busy 2 (1 + 2 + 2 + 4) = 18 per stage. */
static void test_uneven_chunks_by_hand(void **state) {
    (void)state;
    const double unused[] = {99, 99}, first[] = {1, 2, 0, 1, 2, 0}, last[] = {2, 4, 0, 2, 4, 0};
    sched_in in = {.kind = SCHED_INTERLEAVED,
                   .p = 2,
                   .m = 2,
                   .v = 2,
                   .t_f = unused,
                   .t_b = unused,
                   .t_first = first,
                   .t_last = last};
    sched_op ops[16];
    sched_out out;
    assert_int_equal(sched_simulate(&in, ops, &out), 0);
    static const double s0[8][2] = {{0, 1},   {1, 2},   {2, 4},   {4, 6},
                                    {10, 14}, {16, 20}, {20, 22}, {22, 24}};
    static const double s1[8][2] = {{1, 2},   {2, 3},   {4, 6},   {6, 10},
                                    {10, 12}, {12, 16}, {16, 18}, {20, 22}};
    for (int i = 0; i < 8; i++) {
        assert_true(ops[i].start == s0[i][0] && ops[i].end == s0[i][1]);
        assert_true(ops[8 + i].start == s1[i][0] && ops[8 + i].end == s1[i][1]);
    }
    assert_true(out.step_time == 24);
    assert_true(out.busy_max == 18);
    assert_true(fabs(out.bubble_fraction - 6.0 / 18.0) < 1e-15);
    /* equal chunks (both f 1.5, b 3) give the closed form (m v + p - 1) t = 5 x 4.5 */
    const double even[] = {1.5, 3, 0, 1.5, 3, 0};
    in.t_first = even, in.t_last = even;
    assert_int_equal(sched_simulate(&in, ops, &out), 0);
    assert_true(fabs(out.step_time - 22.5) < 1e-12);
    /* chunk times only where chunks exist: refused outside the interleaved schedule, or with
     * one of the two tables missing */
    in.t_last = NULL;
    assert_int_equal(sched_simulate(&in, ops, &out), -1);
    in.t_last = even, in.kind = SCHED_1F1B, in.v = 1;
    assert_int_equal(sched_simulate(&in, ops, &out), -1);
}

/* 1F1B, p = 2, m = 2, stage 1 three times slower, B = 2 F. Stage 0: F0 F1 B0 B1,
 * stage 1: F0 B0 F1 B1. By hand: s0 F0 [0,1] F1 [1,2]; s1 F0 [1,4] B0 [4,10]
 * F1 [10,13] B1 [13,19]; s0 B0 [10,12] B1 [19,21]. Step 21 = t_f0 + m(t_f1 +
 * t_b1) + t_b0: the slow stage runs without a gap. A send of 0.5 delays s1 F0,
 * and s0 B1, by one send each: 22. */
static void test_slow_stage_by_hand(void **state) {
    (void)state;
    const double t_f[] = {1, 3}, t_b[] = {2, 6}, t_w[] = {0, 0};
    sched_in in = {.kind = SCHED_1F1B, .p = 2, .m = 2, .v = 1, .t_f = t_f, .t_b = t_b, .t_w = t_w};
    sched_op ops[8];
    sched_out out;
    assert_int_equal(sched_simulate(&in, ops, &out), 0);
    check_ops(&in, ops, &out);
    const double expect[8][2] = {{0, 1}, {1, 2},  {10, 12}, {19, 21},
                                 {1, 4}, {4, 10}, {10, 13}, {13, 19}};
    const char kinds[] = "FFBBFBFB";
    for (int i = 0; i < 8; i++) {
        assert_int_equal(ops[i].kind, kinds[i] == 'F' ? SCHED_OP_F : SCHED_OP_B);
        assert_true(ops[i].start == expect[i][0] && ops[i].end == expect[i][1]);
    }
    assert_true(out.step_time == 21);
    assert_true(out.busy_max == 18);
    assert_true(fabs(out.bubble_fraction - 3.0 / 18.0) < 1e-15);
    in.t_p2p = 0.5;
    assert_int_equal(sched_simulate(&in, NULL, &out), 0);
    assert_true(out.step_time == 22);

    /* p = 3, m = 3, middle stage slow (t_f 4, t_b 8, others 1 and 2). By hand the
     * middle stage runs F0 [1,5] F1 [5,9] B0 [9,17] F2 [17,21] B1 [21,29] B2 [29,37]
     * back to back, and stage 0's last B is [37,39]: 39 = 1 + 3 (4 + 8) + 2. */
    const double f3[] = {1, 4, 1}, b3[] = {2, 8, 2}, w3[] = {0, 0, 0};
    sched_in in3 = {.kind = SCHED_1F1B, .p = 3, .m = 3, .v = 1, .t_f = f3, .t_b = b3, .t_w = w3};
    sched_op ops3[18];
    assert_int_equal(sched_simulate(&in3, ops3, &out), 0);
    check_ops(&in3, ops3, &out);
    const double mid[6] = {1, 5, 9, 17, 21, 29};
    for (int i = 0; i < 6; i++) assert_true(ops3[6 + i].start == mid[i]);
    assert_true(out.step_time == 39);
}

/* ZB-H1, p = 2, m = 2, unit times. Stage 0 (no deferred W): F0 F1 B0 W0 B1 W1;
 * stage 1 (one deferred W): F0 B0 F1 B1 W0 W1. By hand: s1 F0 [1,2] B0 [2,3]
 * F1 [3,4] B1 [4,5] W0 [5,6] W1 [6,7]; s0 F0 [0,1] F1 [1,2] B0 [3,4] W0 [4,5]
 * B1 [5,6] W1 [6,7]. Step 7, busy 6: bubble 1/6 = (p-1)(1+1-1)/(2*3). */
static void test_zero_bubble_by_hand(void **state) {
    (void)state;
    setup u;
    uniform(&u, SCHED_ZERO_BUBBLE, 2, 2, 1, 1, 1, 1);
    sched_op ops[12];
    sched_out out;
    assert_int_equal(sched_simulate(&u.in, ops, &out), 0);
    check_ops(&u.in, ops, &out);
    const char *order[2] = {"F0F1B0W0B1W1", "F0B0F1B1W0W1"};
    const double start[2][6] = {{0, 1, 3, 4, 5, 6}, {1, 2, 3, 4, 5, 6}};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 6; i++) {
            const sched_op *o = &ops[s * 6 + i];
            assert_int_equal("FBW"[o->kind], order[s][2 * i]);
            assert_int_equal(o->mb, order[s][2 * i + 1] - '0');
            assert_true(o->start == start[s][i]);
        }
    assert_true(out.step_time == 7 && out.busy_max == 6);
    assert_int_equal(out.peak_inflight[0], 2);
    assert_int_equal(out.peak_inflight[1], 1);
    assert_int_equal(out.peak_until_w[1], 2);
}

/* Interleaved p = 2, v = 2, m = 4, stage 0, written out from Megatron-LM's rules:
 * warm-up 2(p-1) + (v-1)p = 4 forwards; forward k on chunk (k mod 4) / 2, backward
 * k on chunk 1 - (k mod 4) / 2, micro-batch (k / 4) 2 + k mod 2. */
static void test_interleaved_order(void **state) {
    (void)state;
    setup u;
    uniform(&u, SCHED_INTERLEAVED, 2, 4, 2, 1, 2, 0);
    sched_op ops[32];
    sched_out out;
    assert_int_equal(sched_simulate(&u.in, ops, &out), 0);
    const char *expect[16] = {"F00", "F01", "F10", "F11", "F02", "B10", "F03", "B11",
                              "F12", "B00", "F13", "B01", "B12", "B13", "B02", "B03"};
    for (int i = 0; i < 16; i++) {
        assert_int_equal("FBW"[ops[i].kind], expect[i][0]);
        assert_int_equal(ops[i].chunk, expect[i][1] - '0');
        assert_int_equal(ops[i].mb, expect[i][2] - '0');
    }
    assert_int_equal(out.peak_inflight[0], 5); /* warm-up + 1 */
    assert_int_equal(out.peak_inflight[1], 3); /* (v-1)p + 1 */
}

/* ---- DualPipe (docs/schedule.md "DualPipe") ---- */

/* Every DualPipe stage runs F, B and W of each of its chunk-micro-batches once
 * (chunk 0: micro-batches 0..m/2-1, chunk 1: m/2..m-1), one op at a time, each
 * for its time, an F&B pair's F starting only once its B's inputs are ready,
 * and no op before its inputs: chunk 0 flows from stage s-1 to s, chunk 1 from
 * s+1 to s. */
static void check_dualpipe(const sched_in *in, const sched_op *ops, const sched_out *out) {
    const int64_t p = in->p, m = in->m, n = sched_ops_per_stage(in);
    assert_int_equal(n, 3 * m);
    double *end = malloc(sizeof(double) * (size_t)(3 * 2 * p * m));
    assert_non_null(end);
    for (int64_t i = 0; i < 3 * 2 * p * m; i++) end[i] = NAN;
#define END(kind, c, s, mb) end[(((kind) * 2 + (c)) * p + (s)) * m + (mb)]
    double last = 0;
    for (int64_t s = 0; s < p; s++)
        for (int64_t i = 0; i < n; i++) {
            const sched_op *o = &ops[s * n + i];
            assert_true(o->kind < 3 && o->chunk >= 0 && o->chunk < 2);
            assert_true(o->mb >= o->chunk * m / 2 && o->mb < (o->chunk + 1) * m / 2);
            assert_true(isnan(END(o->kind, o->chunk, s, o->mb)));
            END(o->kind, o->chunk, s, o->mb) = o->end;
            const double t = o->kind == SCHED_OP_F ? in->t_f[s]
                             : o->kind == SCHED_OP_B ? in->t_b[s] : in->t_w[s];
            assert_true(fabs(o->end - o->start - t) < 1e-12);
            if (i) assert_true(o->start >= ops[s * n + i - 1].end - 1e-12);
            if (o->flags & SCHED_OP_PAIRED)
                assert_true(i + 1 < n && o[1].kind == SCHED_OP_B && o[1].start == o->end);
            if (o->kind == SCHED_OP_B && (o->flags & SCHED_OP_WHOLE)) /* its W follows */
                assert_true(i + 1 < n && o[1].kind == SCHED_OP_W && o[1].mb == o->mb &&
                            o[1].start == o->end && (o[1].flags & SCHED_OP_WHOLE));
            if (o->end > last) last = o->end;
        }
    for (int64_t s = 0; s < p; s++)
        for (int64_t i = 0; i < n; i++) {
            const sched_op *o = &ops[s * n + i];
            const int64_t c = o->chunk, prev = c ? s + 1 : s - 1, next = c ? s - 1 : s + 1;
            if (o->kind == SCHED_OP_F && prev >= 0 && prev < p)
                assert_true(o->start >= END(0, c, prev, o->mb) + in->t_p2p - 1e-12);
            if (o->kind == SCHED_OP_B) {
                assert_true(o->start >= END(0, c, s, o->mb));
                if (next >= 0 && next < p)
                    assert_true(o->start >= END(1, c, next, o->mb) + in->t_p2p - 1e-12);
            }
            if (o->kind == SCHED_OP_W) assert_true(o->start >= END(1, c, s, o->mb));
            /* a whole backward's gradient leaves after its W */
            if (o->kind == SCHED_OP_B && next >= 0 && next < p) {
                const sched_op *up = ops + next * n;
                int64_t k = 0;
                while (!(up[k].kind == SCHED_OP_B && up[k].chunk == c && up[k].mb == o->mb)) k++;
                if (up[k].flags & SCHED_OP_WHOLE)
                    assert_true(o->start >= END(2, c, next, o->mb) + in->t_p2p - 1e-12);
            }
        }
#undef END
    assert_true(out->step_time == last);
    free(end);
}

static double simulate_dualpipe(const sched_in *in, sched_out *out, sched_op *keep) {
    const int64_t n = sched_ops_per_stage(in);
    assert_true(n > 0);
    sched_op *ops = keep ? keep : malloc(sizeof *ops * (size_t)(in->p * n));
    assert_non_null(ops);
    assert_int_equal(sched_simulate(in, ops, out), 0);
    check_dualpipe(in, ops, out);
    if (!keep) free(ops);
    return out->bubble_fraction;
}

/* The op order of dualpipe.py (DualPipe.step) for p 2, m 4, written out by
 * hand from its eight steps (h = 0 on both ranks, M = 2 per direction; "B" a
 * full backward, here B then W, "b" one holding its W back): rank 0 runs
 * F0.0 F1.2 F0.1 B1.2 (F1.3 & B0.0) B1.3 b0.1 W0.1, rank 1 the mirror
 * F1.2 F0.0 F1.3 B0.0 (F0.1 & B1.2) B0.1 b1.3 W1.3 (chunk.micro-batch). */
static void test_dualpipe_order(void **state) {
    (void)state;
    setup u;
    uniform(&u, SCHED_DUALPIPE, 2, 4, 2, 1, 1, 1);
    sched_op o[12];
    static const struct {
        char kind;
        int chunk, mb, fb;
    } want[2][12] = {{{'F', 0, 0, 0}, {'F', 1, 2, 0}, {'F', 0, 1, 0}, {'B', 1, 2, 0},
                      {'W', 1, 2, 0}, {'F', 1, 3, 1}, {'B', 0, 0, 0}, {'W', 0, 0, 0},
                      {'B', 1, 3, 0}, {'W', 1, 3, 0}, {'B', 0, 1, 0}, {'W', 0, 1, 0}},
                     {{'F', 1, 2, 0}, {'F', 0, 0, 0}, {'F', 1, 3, 0}, {'B', 0, 0, 0},
                      {'W', 0, 0, 0}, {'F', 0, 1, 1}, {'B', 1, 2, 0}, {'W', 1, 2, 0},
                      {'B', 0, 1, 0}, {'W', 0, 1, 0}, {'B', 1, 3, 0}, {'W', 1, 3, 0}}};
    for (int s = 0; s < 2; s++) {
        assert_int_equal(sched_stage_order(&u.in, s, o), 0);
        for (int i = 0; i < 12; i++) {
            assert_int_equal("FBW"[o[i].kind], want[s][i].kind);
            assert_int_equal(o[i].chunk, want[s][i].chunk);
            assert_int_equal(o[i].mb, want[s][i].mb);
            assert_int_equal(o[i].flags & SCHED_OP_PAIRED, want[s][i].fb);
        }
    }
}

/* The bubble against the README of deepseek-ai/DualPipe: (PP/2 - 1)(F&B + B - 3W)
 * with B = t_b + t_w the full backward and F&B = t_f + B (the pair runs back to
 * back). By hand, p 4, m 8, t_f = t_b = t_w = 1: (2 - 1)(3 + 2 - 3) = 2 on a busy
 * time of 8 (1 + 1 + 1) = 24 per rank, a step of 26 (the simulation's timeline,
 * docs/schedule.md). The simulation equals the README exactly when t_f = t_b
 * (for every p, m and t_w tried); elsewhere it is (PP/2 - 1)(2 t_f + t_b - t_w)
 * while b <= f: p 4, m 8, t_f 2, t_b 1, t_w 1 idles 4 where the README says 3. */
static void test_dualpipe_closed_form(void **state) {
    (void)state;
    setup u;
    sched_out out;
    uniform(&u, SCHED_DUALPIPE, 4, 8, 2, 1, 1, 1);
    simulate_dualpipe(&u.in, &out, NULL);
    assert_true(fabs(out.step_time - 26) < 1e-12);
    assert_true(fabs(out.busy_max - 24) < 1e-12);
    assert_true(fabs(sched_bubble_closed_form(SCHED_DUALPIPE, 4, 8, 2, 1, 1, 1) - 2.0 / 24) <
                1e-15);
    const double times[][3] = {{1, 1, 1}, {1, 1, 0.5}, {1, 1, 0}, {2, 2, 1}, {0.5, 0.5, 0.25},
                               {3, 3, 0.5}};
    const int64_t ps[] = {2, 4, 6, 8, 16};
    int checked = 0;
    for (int i = 0; i < 5; i++)
        for (int64_t m = 2 * ps[i]; m <= 4 * ps[i]; m += 2)
            for (int t = 0; t < 6; t++) {
                const int64_t p = ps[i];
                const double f = times[t][0], b = times[t][1], w = times[t][2];
                uniform(&u, SCHED_DUALPIPE, p, m, 2, f, b, w);
                const double sim = simulate_dualpipe(&u.in, &out, NULL);
                const double readme = (double)(p / 2 - 1) * ((f + b + w) + (b + w) - 3 * w);
                assert_true(fabs(out.step_time - out.busy_max - readme) < 1e-9);
                assert_true(fabs(sim - sched_bubble_closed_form(SCHED_DUALPIPE, p, m, 2, f, b, w)) <
                            1e-12);
                checked++;
            }
    assert_true(checked == 246);
    uniform(&u, SCHED_DUALPIPE, 4, 8, 2, 2, 1, 1);
    simulate_dualpipe(&u.in, &out, NULL);
    assert_true(fabs(out.step_time - out.busy_max - 4) < 1e-12);
    assert_true(fabs(sched_bubble_closed_form(SCHED_DUALPIPE, 4, 8, 2, 2, 1, 1) * out.busy_max -
                     3) < 1e-12);
}

/* DualPipe's memory moments against a walk of pipe_sched.c's op order: an F
 * adds a set of its chunk, a B with its W held back (no SCHED_OP_WHOLE) turns
 * one into a queued W, a whole B drops it, a held-back W drops the queued one.
 * The walk's largest weighted sum after any op equals pipe_dualpipe_peak's
 * for many weights (the candidates are a superset of the walk's maximal
 * states), and the moment it names is one the walk passes through. */
static void walk_dual(const sched_op *o, int64_t n, const int64_t set[2], const int64_t q[2],
                      int64_t *best, pipe_dual_moment *seen, int64_t *n_seen) {
    pipe_dual_moment d = {{0, 0}, {0, 0}};
    *best = 0, *n_seen = 0;
    for (int64_t i = 0; i < n; i++) {
        const int c = o[i].chunk;
        if (o[i].kind == SCHED_OP_F) d.sets[c]++;
        if (o[i].kind == SCHED_OP_B) d.sets[c]--, d.queued[c] += !(o[i].flags & SCHED_OP_WHOLE);
        if (o[i].kind == SCHED_OP_W && !(o[i].flags & SCHED_OP_WHOLE)) d.queued[c]--;
        const int64_t b = d.sets[0] * set[0] + d.sets[1] * set[1] + d.queued[0] * q[0] +
                          d.queued[1] * q[1];
        if (b > *best) *best = b;
        seen[(*n_seen)++] = d;
    }
}

static void test_dualpipe_peak_walk(void **state) {
    (void)state;
    static sched_op ops[32 * 128 * 3];
    static pipe_dual_moment seen[128 * 3];
    const int64_t ps[] = {2, 4, 6, 8, 16, 32};
    uint64_t rng = 12345;
    setup u;
    sched_out out;
    for (int i = 0; i < 6; i++)
        for (int64_t m = 2 * ps[i]; m <= 4 * ps[i]; m += ps[i]) {
            const int64_t p = ps[i], n = 3 * m;
            if (m % 2) continue;
            uniform(&u, SCHED_DUALPIPE, p, m, 2, 1, 2, 1);
            simulate_dualpipe(&u.in, &out, ops);
            for (int64_t s = 0; s < p; s++)
                for (int k = 0; k < 60; k++) {
                    int64_t set[2], q[2];
                    for (int j = 0; j < 4; j++) {
                        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                        (j < 2 ? set : q)[j % 2] = (int64_t)(rng >> 40) % 1000;
                    }
                    int64_t walk, n_seen;
                    walk_dual(ops + s * n, n, set, q, &walk, seen, &n_seen);
                    pipe_dual_moment at;
                    assert_int_equal(pipe_dualpipe_peak(p, s, set, q, &at), walk);
                    bool found = false;
                    for (int64_t j = 0; j < n_seen && !found; j++)
                        found = !memcmp(&seen[j], &at, sizeof at);
                    assert_true(found);
                }
        }
    /* by hand, pp 4 (P = 2), from dualpipe.py's steps. Rank 0 (h = 0; phase f
     * is chunk f): step 2 leaves F0 F0 F0 | F1 live; step 3 (P - h - 1 = 1
     * iteration) runs B1 with its W held: 3 sets of chunk 0, W1 queued; step 4
     * opens with F0: 4 + 1 sets; step 6 (h + 1 = 1 iteration) runs B1 whole
     * and B0 holding its W, after P = 2 chunk-0 sets and 1 chunk-1 set: 1 set
     * of chunk 0 beside W0; step 7's W then B0 leaves only W0. Sets of 10
     * bytes and W's of 1: step 4, 50. Sets of 1, W's of 10: step 3, 3 + 10 =
     * 13 (step 6: 1 + 10, step 4: 5). Sets of 1, W0 30, W1 1: step 6, 31. */
    pipe_dual_moment at;
    assert_int_equal(pipe_dualpipe_peak(4, 0, (int64_t[]){10, 10}, (int64_t[]){1, 1}, &at), 50);
    assert_true(at.sets[0] == 4 && at.sets[1] == 1 && !at.queued[0] && !at.queued[1]);
    assert_int_equal(pipe_dualpipe_peak(4, 0, (int64_t[]){1, 1}, (int64_t[]){10, 10}, &at), 13);
    assert_true(at.sets[0] == 3 && at.sets[1] == 0 && !at.queued[0] && at.queued[1] == 1);
    assert_int_equal(pipe_dualpipe_peak(4, 0, (int64_t[]){1, 1}, (int64_t[]){30, 1}, &at), 31);
    assert_true(at.sets[0] == 1 && at.sets[1] == 0 && at.queued[0] == 1 && !at.queued[1]);
    /* rank 3 mirrors rank 0: its phase 0 is chunk 1 */
    assert_int_equal(pipe_dualpipe_peak(4, 3, (int64_t[]){1, 1}, (int64_t[]){1, 30}, &at), 31);
    assert_true(at.sets[1] == 1 && at.sets[0] == 0 && at.queued[1] == 1 && !at.queued[0]);
    /* rank 1 (h = 1, no step 3): step 6 runs B1 B0 whole, then B1 and B0
     * holding their W's: at its end W0 and W1 queued and no set. W's of 10,
     * sets of 1: 20 (step 4's 3 + 2 = 5 sets: 5) */
    assert_int_equal(pipe_dualpipe_peak(4, 1, (int64_t[]){1, 1}, (int64_t[]){10, 10}, &at), 20);
    assert_true(!at.sets[0] && !at.sets[1] && at.queued[0] == 1 && at.queued[1] == 1);
}

/* In flight: pp + 1 chunk-micro-batches on every rank, the README's "PP+1"
 * (released at W or at B alike), chunk 0 up to pp - s and chunk 1 up to s + 1:
 * what pipe_stage_inflight gives (its first/last extras on the end ranks). */
static void test_dualpipe_inflight(void **state) {
    (void)state;
    model_spec model = tu_model("llama3-8b"); /* 32 layers */
    static sched_op ops[16 * 64 * 3];
    setup u;
    sched_out out;
    const int64_t ps[] = {2, 4, 8, 16};
    for (int i = 0; i < 4; i++)
        for (int64_t m = 2 * ps[i]; m <= 4 * ps[i]; m += 2 * ps[i]) {
            const int64_t p = ps[i], n = 3 * m;
            uniform(&u, SCHED_DUALPIPE, p, m, 2, 1, 2, 1);
            simulate_dualpipe(&u.in, &out, ops);
            plan_cfg plan = tu_cfg(1, 1, p, 1);
            plan.schedule = SCHED_DUALPIPE;
            plan.global_batch = m;
            for (int64_t s = 0; s < p; s++) {
                pipe_inflight pi;
                pipe_stage_inflight(&model.cfg, &plan, s, &pi);
                assert_int_equal(pi.inflight, p + 1);
                assert_int_equal(out.peak_inflight[s], p + 1);
                assert_int_equal(out.peak_until_w[s], p + 1);
                assert_int_equal(pi.layer_units, (p + 1) * (32 / p));
                assert_int_equal(chunk_peak(ops + s * n, n, 0), p - s);
                assert_int_equal(chunk_peak(ops + s * n, n, 1), s + 1);
                /* the queued W's do not coincide with this peak (pipe_dualpipe_peak) */
                assert_int_equal(pi.stash_units, 0);
                if (s == 0) { /* embedding on chunk 0, head on chunk 1 */
                    assert_int_equal(chunk_peak(ops, n, 0), pi.first_extra);
                    assert_int_equal(chunk_peak(ops, n, 1), pi.last_extra);
                }
                if (s == p - 1) { /* the mirror: embedding on chunk 1, head on chunk 0 */
                    assert_int_equal(chunk_peak(ops + s * n, n, 1), pi.first_extra);
                    assert_int_equal(chunk_peak(ops + s * n, n, 0), pi.last_extra);
                }
                if (s > 0 && s < p - 1) assert_int_equal(pi.first_extra + pi.last_extra, 0);
            }
        }
    /* invalid shapes: odd p, odd m, m < 2p, v != 2 */
    const int64_t bad[][3] = {{3, 6, 2}, {4, 9, 2}, {4, 6, 2}, {4, 8, 1}};
    for (int i = 0; i < 4; i++) {
        uniform(&u, SCHED_DUALPIPE, bad[i][0], bad[i][1], bad[i][2], 1, 1, 1);
        assert_int_equal(sched_simulate(&u.in, NULL, &out), -1);
    }
    assert_int_equal(sched_ops_total(SCHED_DUALPIPE, 4, 8, 2), 96);
}

static void test_invalid(void **state) {
    (void)state;
    setup u;
    sched_out out;
    struct {
        plan_schedule kind;
        int64_t p, m, v;
    } bad[] = {
        {SCHED_INTERLEAVED, 4, 6, 2}, /* m % p != 0 */
        {SCHED_1F1B, PLAN_MAX_STAGES + 1, 8, 1},
        {SCHED_1F1B, 0, 8, 1},
        {SCHED_1F1B, 4, 0, 1},
        {SCHED_INTERLEAVED, 4, 8, 0},
        {SCHED_1F1B, 4, 8, 2}, /* chunks without interleaving */
        {(plan_schedule)7, 4, 8, 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const int64_t p = bad[i].p > 0 && bad[i].p <= PLAN_MAX_STAGES ? bad[i].p : 1;
        uniform(&u, bad[i].kind, p, bad[i].m, bad[i].v, 1, 2, 0);
        u.in.p = bad[i].p;
        assert_int_equal(sched_simulate(&u.in, NULL, &out), -1);
        assert_int_equal(sched_ops_per_stage(&u.in), -1);
    }
    uniform(&u, SCHED_1F1B, 4, 8, 1, 1, 2, 0);
    assert_int_equal(sched_simulate(&u.in, NULL, &out), 0);
    u.f[2] = -1; /* negative time */
    assert_int_equal(sched_simulate(&u.in, NULL, &out), -1);
    u.f[2] = NAN;
    assert_int_equal(sched_simulate(&u.in, NULL, &out), -1);
    u.f[2] = 1;
    u.in.t_p2p = -0.1;
    assert_int_equal(sched_simulate(&u.in, NULL, &out), -1);
    u.in.t_p2p = 0;
    u.in.t_b = NULL;
    assert_int_equal(sched_simulate(&u.in, NULL, &out), -1);
    u.in.t_b = u.b;
    u.in.t_w = NULL; /* allowed: no weight-grad time */
    assert_int_equal(sched_simulate(&u.in, NULL, &out), 0);
    assert_int_equal(sched_simulate(&u.in, NULL, NULL), -1);
    /* Issue 9: 2^31 micro-batches made this allocate 96 GiB; over
     * SCHED_MAX_OPS ops it is refused before allocating */
    assert_int_equal(sched_ops_total(SCHED_1F1B, 4, SCHED_MAX_OPS / 8, 1), SCHED_MAX_OPS);
    assert_int_equal(sched_ops_total(SCHED_ZERO_BUBBLE, 4, 8, 1), 96);
    assert_int_equal(sched_ops_total(SCHED_INTERLEAVED, 256, INT64_MAX / 2, 4), INT64_MAX);
    uniform(&u, SCHED_1F1B, 4, SCHED_MAX_OPS / 8 + 1, 1, 1, 2, 0);
    assert_int_equal(sched_simulate(&u.in, NULL, &out), -1);
    uniform(&u, SCHED_1F1B, 4, INT32_MAX, 1, 1, 2, 0);
    assert_int_equal(sched_simulate(&u.in, NULL, &out), -1);
    assert_true(isnan(sched_bubble_closed_form(SCHED_1F1B, 0, 8, 1, 1, 1, 1)));
    assert_true(isnan(sched_bubble_closed_form(SCHED_ZERO_BUBBLE, 4, 8, 1, 0, 0, 0)));
}

/* The Gantt table has a '#' header and one line per op, matching the ops. */
static void test_gantt(void **state) {
    (void)state;
    setup u;
    uniform(&u, SCHED_ZERO_BUBBLE, 4, 8, 1, 1, 1, 0.5);
    const int64_t n = sched_ops_per_stage(&u.in);
    sched_op *ops = malloc(sizeof *ops * (size_t)(4 * n));
    assert_non_null(ops);
    sched_out out;
    assert_int_equal(sched_simulate(&u.in, ops, &out), 0);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(sched_write_gantt(f, &u.in, ops), 0);
    rewind(f);
    char line[256];
    int64_t rows = 0, headers = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') {
            headers++;
            continue;
        }
        long long s;
        char kind;
        int chunk;
        long mb;
        double start, end;
        assert_int_equal(sscanf(line, "%lld %c %d %ld %lf %lf", &s, &kind, &chunk, &mb, &start,
                                &end),
                         6);
        const sched_op *o = &ops[rows];
        assert_int_equal(s, rows / n);
        assert_int_equal(kind, "FBW"[o->kind]);
        assert_int_equal(mb, o->mb);
        assert_true(fabs(start - o->start) < 1e-6 && fabs(end - o->end) < 1e-6);
        rows++;
    }
    fclose(f);
    assert_int_equal(rows, 4 * n);
    assert_true(headers >= 1);
    assert_int_equal(sched_write_gantt(NULL, &u.in, ops), -1);
    free(ops);
}

/* p = 64, m = 512, v = 2 (131,072 ops) in well under 10 ms: best of five. */
static void test_speed(void **state) {
    (void)state;
    static setup u;
    uniform(&u, SCHED_INTERLEAVED, 64, 512, 2, 1, 2, 0);
    u.in.t_p2p = 0.01;
    double best = 1e9;
    sched_out out;
    for (int rep = 0; rep < 5; rep++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(sched_simulate(&u.in, NULL, &out), 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        const double ms =
            (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        if (ms < best) best = ms;
    }
    print_message("p=64 m=512 v=2: %.2f ms\n", best);
#ifdef SANITIZED
    assert_true(best < 100); /* sanitizers slow every access */
#else
    assert_true(best < 10);
#endif
    assert_true(out.bubble_fraction > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_afab_1f1b_closed_form),
        cmocka_unit_test(test_interleaved_closed_form),
        cmocka_unit_test(test_zero_bubble_closed_form),
        cmocka_unit_test(test_peaks_match_pipe),
        cmocka_unit_test(test_slow_stage_by_hand),
        cmocka_unit_test(test_uneven_chunks_by_hand),
        cmocka_unit_test(test_zero_bubble_by_hand),
        cmocka_unit_test(test_interleaved_order),
        cmocka_unit_test(test_dualpipe_order),
        cmocka_unit_test(test_dualpipe_closed_form),
        cmocka_unit_test(test_dualpipe_inflight),
        cmocka_unit_test(test_dualpipe_peak_walk),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_gantt),
        cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
