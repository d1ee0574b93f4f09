/* test_program.c — the execution plan (program_emit), its JSON (write, load,
 * errors) and its replay, held against the closed form (eval.c) over a grid
 * of plans, and against numbers worked out by hand for one small plan
 * (docs/plan-format.md). */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "cost/act.h"
#include "cost/comm.h"
#include "cost/params.h"
#include "cost/pipe.h"
#include "time/eval.h"
#include "time/pipe_sched.h"
#include "spec/plan_check.h"
#include "program/program.h"
#include "program/replay.h"
#include "cost/states.h"
#include "cost/workspace.h"
#include "tu.h"
#include "spec/yget.h"
#include "spec/ynode.h"

/* ---- helpers ----------------------------------------------------------------------- */

typedef struct {
    const char *model;
    int64_t dp, zero, mbs, seq;
    const char *recompute, *precision;
    const char *extra; /* appended YAML */
} grid_plan;

static plan_spec *load_grid(const grid_plan *g) {
    char text[2048];
    snprintf(text, sizeof text,
             "model: %s\ncluster: dgx-h100\ngpus: %lld\n"
             "parallel: {dp: %lld, zero: %lld}\n"
             "batch: {global: %lld, micro: 1, seq: %lld}\n"
             "recompute: %s\nprecision: %s\noptimizer: adamw\n%s\n",
             g->model, (long long)g->dp, (long long)g->dp, (long long)g->zero,
             (long long)(g->mbs * g->dp), (long long)g->seq, g->recompute, g->precision,
             g->extra ? g->extra : "");
    return tu_plan(text);
}

static void emit_ok(const plan_spec *s, int steps, program *p) {
    ps_err err = {{0}};
    if (program_emit(s, steps, p, &err)) fail_msg("emit: %s", err.msg);
}

/* An emitted program passes the loader's checks. */
static void check_ok(const program *p) {
    ps_err err = {{0}};
    int32_t role = -1, op = -1;
    if (program_check(p, &role, &op, &err)) fail_msg("check: role %d op %d: %s", role, op, err.msg);
}

static void replay_ok(const program *p, replay_result *r) {
    ps_err err = {{0}};
    if (replay_program(p, r, &err)) fail_msg("replay: %s", err.msg);
}

static const char *emit_error(const char *yaml) {
    static ps_err err;
    plan_spec *s = tu_plan(yaml);
    program p;
    memset(&err, 0, sizeof err);
    int rc = program_emit(s, 1, &p, &err);
    free(s);
    if (!rc) {
        program_free(&p);
        fail_msg("expected program_emit to refuse:\n%s", yaml);
    }
    return err.msg;
}

static int64_t largest_unit(const prog_role *r) {
    int64_t m = 0;
    for (int32_t u = 0; u < r->n_units; u++)
        if (r->units[u].elems > m) m = r->units[u].elems;
    return m;
}

/* ---- the closed form and the replay agree ------------------------------------------- */

/* Model states at the end of step 0 equal eval's heavy stage, to the byte. */
static void check_states(const program *p, const replay_result *rr, const eval_result *e) {
    const int64_t *end = rr->roles[0].steps[0].end_bytes;
    assert_int_equal(end[MEM_PARAMS], e->heavy.params);
    assert_int_equal(end[MEM_GRADS], e->heavy.grads);
    assert_int_equal(end[MEM_MASTER], e->heavy.master);
    assert_int_equal(end[MEM_OPTIMIZER], e->heavy.optimizer);
    /* the flat space is params.c's count */
    assert_int_equal(p->roles[0].flat_elems, e->heavy.param_elems);
}

/* Workspace (docs/memory.md §6): every compute op carries workspace.c's
 * working set, so the replay's peak is at least the stage's largest; with
 * one rank (no reduce-scatter) it is that or the optimizer's gradient copy,
 * exactly. eval counts the compute ops' working set (and a bound on the
 * reduce-scatters') on top of the activations, the optimizer's beyond them.
 * So the closed form never predicts less than the replay: at every op the
 * replay's activations, workspace and buffers are within eval's. */
static void check_workspace(const plan_spec *s, const program *p, const replay_result *rr,
                            const eval_result *e) {
    ws_bytes ws;
    ws_compute(&s->model.cfg, &s->cfg, s->cluster.cfg.kernels_fp32, &ws);
    const replay_role *r = &rr->roles[0];
    const int64_t compute = ws_stage_compute(&ws, true, s->model.cfg.layers, true);
    const int64_t opt = ws_optimizer_bytes(&s->cfg, p->roles[0].shard_elems);
    /* eval: a recompute's working set is live beside a layer's backward
     * only, so every other op's working set counts only beyond it */
    const int64_t bwd = ws.layer_bwd;
    const int64_t fwd = ws_stage_other_ops(&ws, true, s->model.cfg.layers, true) - e->heavy.act_working;
    const int64_t closed = bwd > fwd ? bwd : fwd;
    assert_true(r->peak[MEM_WORKSPACE].bytes >= compute);
    assert_true(e->heavy.buf_temps >= closed);
    if (s->cfg.dp == 1) {
        assert_int_equal(r->peak[MEM_WORKSPACE].bytes, compute > opt ? compute : opt);
        assert_int_equal(e->heavy.activations + e->heavy.buf_temps,
                         e->heavy.activations + closed > opt ? e->heavy.activations + closed : opt);
    }
    assert_true(r->peak[MEM_WORKSPACE].bytes <= e->heavy.activations + e->heavy.buf_temps);
    /* eval counts no unit-gradient buffer under ZeRO-2 (see check_activations) */
    const int64_t gb = dtype_bytes(s->cfg.precision.grads);
    const int64_t unit_grads =
        s->cfg.dp > 1 && s->cfg.zero == 2 ? largest_unit(&p->roles[0]) * gb : 0;
    const int64_t eval_allocated = e->heavy.total - e->heavy.reserved - e->heavy.fragmentation -
                                   e->heavy.buf_workspace + unit_grads;
    if (r->peak_total.bytes > eval_allocated)
        fail_msg("%s dp %lld zero %d: replay peak %lld > closed form %lld", s->model.name,
                 (long long)s->cfg.dp, s->cfg.zero, (long long)r->peak_total.bytes,
                 (long long)eval_allocated);
}

/* Peak activations: eval adds one layer's recompute working set on top of
 * everything kept at the peak; in the op order the head's saved tensors are
 * freed (its bwd) before any layer rebuilds its tensors, so the replay's peak
 * is eval's minus min(last_stage, layer_working): equal with no recompute. */
static void check_activations(const plan_spec *s, const program *p, const replay_result *rr,
                              const eval_result *e) {
    act_bytes ab;
    act_compute(&s->model.cfg, &s->cfg, &ab);
    const int64_t overlap = ab.last_stage < ab.layer_working ? ab.last_stage : ab.layer_working;
    const replay_role *r = &rr->roles[0];
    assert_int_equal(r->peak[MEM_ACTIVATIONS].bytes, e->heavy.act_saved + e->heavy.act_working - overlap);
    if (s->cfg.recompute == RECOMPUTE_NONE)
        assert_int_equal(r->peak[MEM_ACTIVATIONS].bytes, e->heavy.activations);
    check_workspace(s, p, rr, e);
    /* nothing stays behind after a step */
    assert_int_equal(r->steps[0].end_bytes[MEM_ACTIVATIONS], 0);
    assert_int_equal(r->steps[0].end_bytes[MEM_BUFFERS], 0);
    /* buffers: one gathered unit and one unit gradient (eval adds a prefetched
     * unit, which this op order does not have) */
    const int64_t d = s->cfg.dp, big = largest_unit(&p->roles[0]);
    const int64_t pb = dtype_bytes(s->cfg.precision.params), gb = dtype_bytes(s->cfg.precision.grads);
    int64_t want = 0;
    if (d > 1 && s->cfg.zero == 3) want = big * (pb + gb);
    if (d > 1 && s->cfg.zero == 2) want = big * gb;
    assert_int_equal(r->peak[MEM_BUFFERS].bytes, want);
    if (d > 1 && s->cfg.zero == 3) assert_int_equal(e->heavy.buf_zero3 - big * pb, want);
}

/* Bytes sent per step per group: comm.c's group_bytes, up to the per-call
 * chunking. A call of S bytes over d ranks sends (d-1) ceil(S/d); comm.c
 * counts one pass over the padded flat space. Per pass (one collective kind
 * over the whole space, or over every unit once), the difference is below
 * (d-1) max(U, e) bytes, U the units and e the element size: each unit call
 * rounds up by less than 1 byte per rank, and the padding (< d elements) is
 * never sent. Exact for ZeRO-0/1 when d divides the flat space. */
static void check_comm(const plan_spec *s, const program *p, const replay_result *rr,
                       const eval_result *e) {
    const replay_role *r = &rr->roles[0];
    const int64_t d = s->cfg.dp, U = p->roles[0].n_units, m = plan_micro_batches(&s->cfg);
    const int64_t pb = dtype_bytes(s->cfg.precision.params), gb = dtype_bytes(s->cfg.precision.grads);
    const int64_t wide = U > 4 ? U : 4;
    int64_t passes = 0;
    switch (s->cfg.zero) {
    case 0: passes = 1; break;
    case 1: passes = 2; break;
    case 2: passes = m + 1; break;
    default: passes = 3 * m; break;
    }
    const int64_t bound = passes * (d - 1) * wide;
    (void)pb, (void)gb;
    for (int32_t k = 0; k < r->n_steps; k++)
        for (int g = 0; g < GROUP_COUNT; g++) {
            const int64_t got = r->steps[k].sent_bytes[g], want = e->heavy.comm_bytes[g];
            if (llabs(got - want) > bound)
                fail_msg("step %d group %s: replay %lld, comm.c %lld, bound %lld", (int)k,
                         comm_group_names[g], (long long)got, (long long)want, (long long)bound);
            if (s->cfg.zero <= 1 && p->roles[0].flat_elems % d == 0) assert_int_equal(got, want);
        }
    if (d == 1) {
        assert_int_equal(r->n_colls, 0);
        for (int32_t i = 0; i < p->roles[0].n_ops; i++) assert_int_not_equal(p->roles[0].ops[i].kind, OP_COLL);
    }
    /* ZeRO-3: comm.c's calls, unit by unit */
    if (d > 1 && s->cfg.zero == 3) {
        int64_t calls = 0;
        for (int i = 0; i < r->n_colls; i++) calls += r->colls[i].calls;
        assert_int_equal(calls, 3 * m * U * r->n_steps);
    }
}

/* AdamW's m and v appear right before step 0's optimizer step, not before,
 * and later steps allocate no model state. */
static void check_adam(const program *p, const replay_result *rr) {
    const prog_role *r = &p->roles[0];
    const replay_role *rp = &rr->roles[0];
    int32_t first = -1, optim = -1;
    for (int32_t i = 0; i < r->n_ops; i++) {
        if (first < 0 && rp->ops[i].bytes[MEM_OPTIMIZER] > 0) first = i;
        if (optim < 0 && r->ops[i].kind == OP_OPTIM) optim = i;
    }
    assert_true(first > 0);
    assert_int_equal(r->ops[first].kind, OP_ALLOC);
    assert_int_equal(r->ops[first].buf, BUF_ADAM_M);
    assert_int_equal(r->ops[first + 1].buf, BUF_ADAM_V);
    assert_int_equal(optim, first + 2);
    assert_int_equal(r->ops[optim].step, 0);
    for (int32_t i = 0; i < r->n_ops; i++) {
        const prog_op *o = &r->ops[i];
        if (o->step > 0 && (o->kind == OP_ALLOC || o->kind == OP_FREE))
            assert_true(o->buf == BUF_UNIT_PARAMS || o->buf == BUF_UNIT_GRADS);
    }
    for (int32_t k = 1; k < rp->n_steps; k++)
        assert_memory_equal(rp->steps[k].end_bytes, rp->steps[0].end_bytes, sizeof rp->steps[0].end_bytes);
}

/* With dp = 1 there is no communication: the replay is the sum of the op
 * times, which are eval's per-layer times, so it equals eval's step time up
 * to the order of floating-point additions (relative 1e-9 is far above that
 * rounding, ~n_ops x 1e-16, and far below any modelling difference). */
static void check_time(const plan_spec *s, const replay_result *rr, const eval_result *e) {
    const replay_role *r = &rr->roles[0];
    for (int32_t k = 0; k < r->n_steps; k++) {
        const replay_step *st = &r->steps[k];
        assert_true(st->seconds >= st->compute_s * (1 - 1e-12));
        assert_true(st->seconds <= (st->compute_s + st->comm_s) * (1 + 1e-12));
        if (s->cfg.dp == 1 && fabs(st->seconds - e->time.step) > 1e-9 * e->time.step)
            fail_msg("step %d: replay %.12g s, eval %.12g s", (int)k, st->seconds, e->time.step);
    }
}

/* The same plan on the other kind of kernels (gpu.kernel_dtype: fp32 or
 * absent): the op working set changes (docs/memory.md §6), and the replay
 * still stays within the closed form, both reading the cluster's field. */
static void check_other_kernels(plan_spec *s) {
    s->cluster.cfg.kernels_fp32 = !s->cluster.cfg.kernels_fp32;
    program p;
    replay_result rr;
    eval_result e;
    emit_ok(s, 2, &p);
    replay_ok(&p, &rr);
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &e, NULL);
    check_activations(s, &p, &rr, &e);
    replay_free(&rr);
    program_free(&p);
    s->cluster.cfg.kernels_fp32 = !s->cluster.cfg.kernels_fp32;
}

static void test_grid_agrees_with_closed_form(void **state) {
    (void)state;
    const char *models[] = {"tiny-1m", "llama3-8b"};
    const int64_t seqs[] = {256, 1024};
    const int64_t dps[] = {1, 2, 4}, mbs[] = {1, 3};
    const char *recomputes[] = {"none", "full"}, *precisions[] = {"bf16-mixed", "fp32"};
    int n = 0;
    for (int mi = 0; mi < 2; mi++)
        for (int di = 0; di < 3; di++)
            for (int64_t z = 0; z <= 3; z++)
                for (int bi = 0; bi < 2; bi++)
                    for (int ri = 0; ri < 2; ri++)
                        for (int pi = 0; pi < 2; pi++) {
                            grid_plan g = {models[mi], dps[di], z, mbs[bi], seqs[mi],
                                           recomputes[ri], precisions[pi], NULL};
                            plan_spec *s = load_grid(&g);
                            program p;
                            replay_result rr;
                            eval_result e;
                            emit_ok(s, 2, &p);
                            check_ok(&p);
                            replay_ok(&p, &rr);
                            eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &e, NULL);
                            check_states(&p, &rr, &e);
                            check_activations(s, &p, &rr, &e);
                            check_comm(s, &p, &rr, &e);
                            check_adam(&p, &rr);
                            check_time(s, &rr, &e);
                            check_other_kernels(s);
                            replay_free(&rr);
                            program_free(&p);
                            free(s);
                            n++;
                        }
    assert_int_equal(n, 192);
}

/* Without overlap every collective blocks the compute stream: a step is the
 * sum of all its op times. */
static void test_no_overlap_serialises(void **state) {
    (void)state;
    grid_plan g = {"tiny-1m", 4, 3, 2, 256, "none", "bf16-mixed", "overlap: {dp: false}"};
    plan_spec *s = load_grid(&g);
    program p;
    replay_result rr;
    emit_ok(s, 2, &p);
    assert_false(p.overlap_dp);
    replay_ok(&p, &rr);
    for (int32_t k = 0; k < 2; k++) {
        const replay_step *st = &rr.roles[0].steps[k];
        assert_true(fabs(st->seconds - (st->compute_s + st->comm_s)) <= 1e-12 * st->seconds);
    }
    replay_free(&rr);
    program_free(&p);
    free(s);
    /* with overlap a ZeRO-0 bucket hides behind the backward that follows it */
    grid_plan o = {"llama3-8b", 4, 0, 1, 1024, "none", "bf16-mixed", NULL};
    s = load_grid(&o);
    emit_ok(s, 1, &p);
    replay_ok(&p, &rr);
    const replay_step *st = &rr.roles[0].steps[0];
    assert_true(st->seconds < st->compute_s + st->comm_s - 0.5 * st->comm_s);
    replay_free(&rr);
    program_free(&p);
    free(s);
}

/* ---- one plan worked out by hand ----------------------------------------------------- */

/* plans/tiny-1m-cpu.yaml: tiny-1m (L 4, h 128, 4 heads, 2 kv heads of 32, f 512,
 * V 256), dp 2, ZeRO-2, fp32, 16 sequences of 256 tokens in micro-batches of 4:
 * 2 micro-batches of 1,024 tokens per rank. */
static void test_tiny_zero2_by_hand(void **state) {
    (void)state;
    plan_spec *s = calloc(1, sizeof *s);
    ps_err err = {{0}};
    if (plan_load("plans/tiny-1m-cpu.yaml", NULL, 0, s, &err)) fail_msg("%s", err.msg);
    program p;
    emit_ok(s, 2, &p);
    const prog_role *r = &p.roles[0];
    /* units: embed V h = 32,768; a layer 2h + 2qh + 2kvh + 3fh = 128 + 128 + 16,384 x 2
     * + 8,192 x 2 + 65,536 x 3 = 246,016; head h + V h = 32,896 */
    const char *names[] = {"embed", "layer.0", "layer.1", "layer.2", "layer.3", "head"};
    const int64_t offs[] = {0, 32768, 278784, 524800, 770816, 1016832};
    const int64_t elems[] = {32768, 246016, 246016, 246016, 246016, 32896};
    assert_int_equal(r->n_units, 6);
    for (int u = 0; u < 6; u++) {
        assert_string_equal(r->units[u].name, names[u]);
        assert_int_equal(r->units[u].offset, offs[u]);
        assert_int_equal(r->units[u].elems, elems[u]);
    }
    assert_int_equal(r->flat_elems, 1049728); /* the spec's 1,049,728 parameters */
    assert_int_equal(r->shard_elems, 524864);
    assert_int_equal(r->flat_padded, 1049728);
    assert_int_equal(r->n_ranks, 2);
    /* layer.2 straddles the shard boundary at 524,864: 64 elements on rank 0,
     * 245,952 on rank 1 */
    int64_t first = -1;
    assert_int_equal(program_shard_part(r, 524800, 246016, 0, &first), 64);
    assert_int_equal(first, 524800);
    assert_int_equal(program_shard_part(r, 524800, 246016, 1, &first), 245952);
    assert_int_equal(first, 524864);
    assert_int_equal(program_shard_part(r, 0, 32768, 1, NULL), 0);
    /* buffers (fp32, no master): params whole, grads and Adam states the shard */
    assert_int_equal(program_buf_bytes(&p, r, BUF_PARAMS, -1), 1049728 * 4);
    assert_int_equal(program_buf_bytes(&p, r, BUF_GRADS, -1), 524864 * 4);
    assert_int_equal(program_buf_bytes(&p, r, BUF_MASTER, -1), 0);
    assert_int_equal(program_buf_bytes(&p, r, BUF_ADAM_M, -1), 524864 * 4);
    assert_int_equal(program_buf_bytes(&p, r, BUF_UNIT_GRADS, 3), 246016 * 4);
    /* what each buffer holds on dp rank 1: params all of it, grads and Adam
     * states the second half, no master, a unit buffer its unit */
    assert_int_equal(program_buf_held(&p, r, BUF_PARAMS, -1, 1, &first), 1049728);
    assert_int_equal(first, 0);
    assert_int_equal(program_buf_held(&p, r, BUF_GRADS, -1, 1, &first), 524864);
    assert_int_equal(first, 524864);
    assert_int_equal(program_buf_held(&p, r, BUF_ADAM_V, -1, 1, &first), 524864);
    assert_int_equal(first, 524864);
    assert_int_equal(program_buf_held(&p, r, BUF_MASTER, -1, 1, &first), 0);
    assert_int_equal(program_buf_held(&p, r, BUF_UNIT_GRADS, 3, 1, &first), 246016);
    assert_int_equal(first, 32768 + 2 * 246016);
    /* ops: step 0 = 2 allocs + zero_grad + 2 x (6 fwd + 6 x (alloc, bwd, coll, free))
     * + 2 allocs + optim + all-gather = 67; step 1 = 63 */
    assert_int_equal(r->n_ops, 130);
    assert_int_equal(r->ops[0].kind, OP_ALLOC);
    assert_int_equal(r->ops[0].bytes, 4198912);
    assert_int_equal(r->ops[2].kind, OP_ZERO_GRAD);
    /* the first backward: the head's, then its reduce-scatter on its range */
    const prog_op *o = &r->ops[3 + 6 + 1];
    assert_int_equal(o->kind, OP_BWD);
    assert_int_equal(o->unit, 5);
    assert_int_equal(o->dst, BUF_UNIT_GRADS);
    /* head saves per token: final norm input 4h + 1/rms 4 + head input 4h + fp32 softmax 4V
     * + int64 label 8 = 2,060 bytes; x 1,024 tokens */
    assert_int_equal(o->bytes, 2060 * 1024);
    /* its working set (fp32): int32 labels, the logits' gradient, the normed
     * input's gradient and the hidden gradient it passes on */
    assert_int_equal(o->workspace_bytes, 1024 * 4 + 1024 * 256 * 4 + 2 * 1024 * 128 * 4);
    /* layer.2's reduce-scatter: S = 246,016 x 4, each rank sends one of two chunks */
    const prog_op *rs = NULL;
    for (int32_t i = 0; i < r->n_ops && !rs; i++)
        if (r->ops[i].kind == OP_COLL && r->ops[i].unit == 3) rs = &r->ops[i];
    assert_non_null(rs);
    assert_int_equal(rs->coll, COLL_REDUCE_SCATTER);
    assert_int_equal(rs->offset, 524800);
    assert_int_equal(rs->elems, 246016);
    assert_int_equal(rs->bytes, 984064);
    assert_int_equal(rs->sent_bytes, 492032);
    /* its receive buffer on the rank that gets the most (rank 1: 245,952
     * elements), beside the hidden gradient passed to layer.1's bwd */
    assert_int_equal(rs->workspace_bytes, 245952 * 4 + 1024 * 128 * 4);
    /* a layer saves 4(4h + 2q + 2kv + 3f) + 4 + 4 + 4 heads = 9,752 bytes per token */
    const prog_op *fwd = &r->ops[3 + 1];
    assert_int_equal(fwd->kind, OP_FWD);
    assert_int_equal(fwd->bytes, 9752 * 1024);
    replay_result rr;
    replay_ok(&p, &rr);
    const replay_role *x = &rr.roles[0];
    assert_int_equal(x->steps[0].end_bytes[MEM_PARAMS], 4198912);
    assert_int_equal(x->steps[0].end_bytes[MEM_GRADS], 2099456);
    assert_int_equal(x->steps[0].end_bytes[MEM_OPTIMIZER], 2 * 2099456);
    assert_int_equal(x->peak[MEM_ACTIVATIONS].bytes, 4 * 9752 * 1024 + 8 * 1024 + 2060 * 1024);
    assert_int_equal(x->peak[MEM_BUFFERS].bytes, 246016 * 4);
    /* per step: reduce-scatter 2 x 1,049,728 x 4 / 2 + all-gather 1,049,728 x 4 / 2 */
    assert_int_equal(x->steps[0].sent_bytes[GROUP_DP], 3 * 2099456);
    assert_int_equal(x->steps[1].sent_bytes[GROUP_DP], 3 * 2099456);
    replay_free(&rr);
    program_free(&p);
    free(s);
}

/* ---- JSON round trip and errors ------------------------------------------------------ */

static void compare_programs(const program *a, const program *b) {
#define EQ(f) assert_true(a->f == b->f)
    EQ(layers), EQ(hidden), EQ(heads), EQ(kv_heads), EQ(head_dim), EQ(ffn_hidden), EQ(vocab);
    EQ(tied_embeddings), EQ(norm_eps), EQ(rope_theta), EQ(seq), EQ(micro_batch);
    EQ(micro_batches), EQ(global_batch), EQ(world), EQ(dp), EQ(tp), EQ(pp), EQ(cp), EQ(sp), EQ(zero);
    EQ(recompute), EQ(precision.params), EQ(precision.grads), EQ(precision.master);
    EQ(precision.optimizer), EQ(precision.activations), EQ(steps), EQ(seed), EQ(lr), EQ(beta1);
    EQ(beta2), EQ(eps), EQ(weight_decay), EQ(data), EQ(bucket_bytes), EQ(overlap_dp), EQ(n_roles);
#undef EQ
    assert_string_equal(a->data_path, b->data_path);
    assert_string_equal(a->plan_name, b->plan_name);
    assert_string_equal(a->model_name, b->model_name);
    assert_string_equal(a->cluster_name, b->cluster_name);
    for (int32_t i = 0; i < a->n_roles; i++) {
        const prog_role *x = &a->roles[i], *y = &b->roles[i];
#define EQ(f) assert_true(x->f == y->f)
        EQ(stage), EQ(tp_rank), EQ(cp_rank), EQ(n_ranks), EQ(n_units), EQ(flat_elems);
        EQ(flat_padded), EQ(shard_elems), EQ(n_ops);
#undef EQ
        assert_memory_equal(x->ranks, y->ranks, (size_t)x->n_ranks * sizeof *x->ranks);
        for (int32_t u = 0; u < x->n_units; u++) {
            assert_string_equal(x->units[u].name, y->units[u].name);
            assert_int_equal(x->units[u].offset, y->units[u].offset);
            assert_int_equal(x->units[u].elems, y->units[u].elems);
        }
        for (int32_t k = 0; k < x->n_ops; k++) {
            const prog_op *o = &x->ops[k], *q = &y->ops[k];
#define EQ(f) if (o->f != q->f) fail_msg("role %d op %d: field " #f " differs", (int)i, (int)k)
            EQ(kind); EQ(step); EQ(mb); EQ(unit); EQ(buf); EQ(src); EQ(dst); EQ(cat); EQ(coll);
            EQ(group); EQ(phase); EQ(peer); EQ(recompute); EQ(offset); EQ(elems); EQ(bytes);
            EQ(transient_bytes); EQ(workspace_bytes); EQ(sent_bytes); EQ(flops); EQ(seconds);
            EQ(ring_passes); EQ(ring_bytes); EQ(buffer_bytes); EQ(ring_seconds); EQ(part);
            EQ(stash_bytes);
            for (int c = 0; c < PROG_TP_COLLS; c++) {
                EQ(tp_calls[c]); EQ(tp_bytes[c]); EQ(tp_sent[c]); EQ(tp_seconds[c]);
            }
#undef EQ
        }
    }
}

static char tmpdir[64];

static const char *tmp_path(const char *name) {
    static char buf[256];
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/test_program.XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
    }
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static void test_json_round_trip(void **state) {
    (void)state;
    const grid_plan plans[] = {
        {"tiny-1m", 2, 0, 3, 256, "none", "bf16-mixed", "memory: {bucket: 1 MiB}"},
        {"tiny-1m", 2, 1, 1, 256, "full", "fp32", "train: {data: corpus/, lr: 3.0e-4, seed: 7}"},
        {"tiny-1m", 4, 2, 3, 256, "selective", "bf16-mixed", NULL},
        {"tiny-1m", 4, 3, 3, 256, "full", "bf16-mixed", "overlap: {dp: false}"},
        {"llama3-8b", 4, 3, 1, 1024, "none", "bf16-mixed", NULL},
    };
    for (size_t i = 0; i < sizeof plans / sizeof plans[0]; i++) {
        plan_spec *s = load_grid(&plans[i]);
        program a, b;
        ps_err err = {{0}};
        emit_ok(s, 3, &a);
        const char *path = tmp_path("p.json");
        if (program_write_json(&a, path, &err)) fail_msg("write: %s", err.msg);
        if (program_load_json(path, &b, &err)) fail_msg("load: %s", err.msg);
        compare_programs(&a, &b);
        program_free(&a);
        program_free(&b);
        free(s);
    }
}

/* Replace the first occurrence of `from` in file path by `to`. */
static void edit_file(const char *path, const char *from, const char *to) {
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[1 << 20], out[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *at = strstr(text, from);
    assert_non_null(at);
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    f = fopen(path, "w");
    fputs(out, f);
    fclose(f);
}

static const char *load_error(const program *p, const char *from, const char *to) {
    static ps_err err;
    program q;
    const char *path = tmp_path("bad.json");
    memset(&err, 0, sizeof err);
    if (program_write_json(p, path, &err)) fail_msg("%s", err.msg);
    edit_file(path, from, to);
    if (!program_load_json(path, &q, &err)) {
        program_free(&q);
        fail_msg("expected an error after replacing %s by %s", from, to);
    }
    return err.msg;
}

static void test_json_errors(void **state) {
    (void)state;
    grid_plan g = {"tiny-1m", 2, 3, 1, 256, "none", "bf16-mixed", NULL};
    plan_spec *s = load_grid(&g);
    program p;
    emit_ok(s, 1, &p);
    tu_contains(load_error(&p, "\"buf\": \"params\"", "\"buf\": \"paramz\""), "bad.json:",
                "roles[0].ops[0].buf", "expected one of params, grads", "found \"paramz\"", NULL);
    tu_contains(load_error(&p, "\"op\": \"zero_grad\", \"step\": 0",
                           "\"op\": \"zero_grad\", \"step\": 4"),
                "roles[0].ops[", "step", "below header.train.steps = 1, found 4", NULL);
    tu_contains(load_error(&p, "\"unit\": \"layer.1\"", "\"unit\": \"layer.9\""),
                "expected a unit of this role (embed ... head), found \"layer.9\"", NULL);
    tu_contains(load_error(&p, "\"saves\": ", "\"bytes\": "), "unknown key for a fwd op", NULL);
    tu_contains(load_error(&p, "\"mb\": 0", "\"mb\": 5"), ".mb: ",
                "expected a micro-batch below header.batch.micro_batches = 1, found 5", NULL);
    tu_contains(load_error(&p, "\"offset\": 1016832, \"elems\": 32896, \"bytes\"",
                           "\"offset\": 1016832, \"elems\": 32897, \"bytes\""), ".elems: ",
                "expected the range to lie within its unit [1016832, 1049728)", NULL);
    /* the loader also holds the header together and every range in bounds */
    tu_contains(load_error(&p, "\"world\": 2", "\"world\": 3"), "header.parallel.world",
                "expected dp*tp*pp*cp = 2, found 3", NULL);
    tu_contains(load_error(&p, "\"ranks\": [0, 1]", "\"ranks\": [0, 0]"), "expected distinct ranks",
                NULL);
    tu_contains(load_error(&p, "\"ranks\": [0, 1]", "\"ranks\": [0]"), "expected dp = 2 ranks, found 1",
                NULL);
    tu_contains(load_error(&p, "\"step\": 0, \"mb\": 0", "\"step\": -1, \"mb\": 0"),
                "expected a step of 0 or more, found -1", NULL);
    tu_contains(load_error(&p, "\"offset\": 1016832, \"elems\": 32896, \"bytes\"",
                           "\"offset\": 9000000000000000000, \"elems\": 32896, \"bytes\""),
                ".offset: ", NULL);
    tu_contains(load_error(&p, "\"shard_elems\": 524864", "\"shard_elems\": 524865"),
                "roles[0].shard_elems", "expected ceil(flat_elems / (dp*cp)) = 524864", NULL);
    tu_contains(load_error(&p, "\"version\": 1", "\"version\": 2"), "version",
                "expected an integer from 1 to 1, found 2", NULL);
    tu_contains(load_error(&p, "\"offset\": 32768", "\"offset\": 32769"), "units[1].offset",
                "expected 32768", NULL);
    /* the line is named: the first op's line */
    const char *msg = load_error(&p, "\"buf\": \"params\"", "\"buf\": 7");
    char want[64];
    FILE *f = fopen(tmp_path("bad.json"), "r");
    char line[4096];
    int ln = 0, found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        ln++;
        found = strstr(line, "\"buf\": 7") != NULL;
    }
    fclose(f);
    snprintf(want, sizeof want, "bad.json:%d:", ln);
    tu_contains(msg, want, NULL);
    program_free(&p);
    free(s);
}

/* The replay refuses an inconsistent program, naming the op. */
static void test_replay_checks(void **state) {
    (void)state;
    grid_plan g = {"tiny-1m", 2, 3, 1, 256, "none", "bf16-mixed", NULL};
    plan_spec *s = load_grid(&g);
    program p;
    replay_result rr;
    ps_err err = {{0}};
    emit_ok(s, 2, &p);
    prog_role *r = &p.roles[0];
    /* drop the first free: the next step's alloc of that unit finds it live */
    int32_t i = 0;
    while (r->ops[i].kind != OP_FREE) i++;
    memmove(&r->ops[i], &r->ops[i + 1], (size_t)(r->n_ops - i - 1) * sizeof *r->ops);
    r->n_ops--;
    assert_int_equal(replay_program(&p, &rr, &err), -1);
    tu_contains(err.msg, "alloc unit_params", "unit embed", "already allocated", NULL);
    program_free(&p);
    /* a backward that frees other bytes than its forward saved */
    emit_ok(s, 1, &p);
    r = &p.roles[0];
    for (i = 0; r->ops[i].kind != OP_BWD; i++) {}
    r->ops[i].bytes++;
    assert_int_equal(replay_program(&p, &rr, &err), -1);
    tu_contains(err.msg, "bwd", "unit head", "frees other bytes", NULL);
    program_free(&p);
    free(s);
}

/* The event rules on a program built by hand: two units of 10 elements, two
 * micro-batches. A collective on u1's gradient range starts when the op
 * before it ends; a fwd reading u1's parameters (another buffer) and a bwd
 * writing u0's gradients (another range) run beside it; the bwd writing
 * u1's gradients waits for it; the optimizer waits for every collective. */
static void test_replay_events_by_hand(void **state) {
    (void)state;
    prog_unit units[2] = {{"embed", 0, 10}, {"head", 10, 10}};
    prog_op ops[7];
    const struct {
        prog_kind kind;
        int32_t mb, unit;
        double seconds;
    } list[7] = {{OP_FWD, 0, 0, 0.5}, {OP_FWD, 0, 1, 1},   {OP_COLL, -1, -1, 2},
                 {OP_FWD, 1, 1, 0.5}, {OP_BWD, 0, 0, 1},   {OP_BWD, 0, 1, 1},
                 {OP_OPTIM, -1, -1, 0.25}};
    for (int i = 0; i < 7; i++) {
        memset(&ops[i], 0, sizeof ops[i]);
        ops[i].kind = list[i].kind, ops[i].mb = list[i].mb, ops[i].unit = list[i].unit;
        ops[i].seconds = list[i].seconds;
        ops[i].src = BUF_PARAMS, ops[i].dst = BUF_GRADS;
    }
    ops[2].src = BUF_GRADS, ops[2].offset = 10, ops[2].elems = 10;
    ops[2].bytes = 40, ops[2].sent_bytes = 20;
    int32_t ranks[2] = {0, 1};
    prog_role role = {.n_ranks = 2, .ranks = ranks, .n_units = 2, .units = units,
                      .flat_elems = 20, .flat_padded = 20, .shard_elems = 10, .n_ops = 7, .ops = ops};
    program p = {.micro_batches = 2, .dp = 2, .tp = 1, .pp = 1, .cp = 1, .steps = 1,
                 .overlap_dp = true, .n_roles = 1, .roles = &role};
    replay_result rr;
    replay_ok(&p, &rr);
    const replay_op *t = rr.roles[0].ops;
    const double want[7][2] = {{0, 0.5}, {0.5, 1.5}, {1.5, 3.5}, {1.5, 2},
                               {2, 3},   {3.5, 4.5}, {4.5, 4.75}};
    for (int i = 0; i < 7; i++)
        if (t[i].start_s != want[i][0] || t[i].end_s != want[i][1])
            fail_msg("op %d: %g..%g, expected %g..%g", i, t[i].start_s, t[i].end_s, want[i][0],
                     want[i][1]);
    assert_true(rr.roles[0].steps[0].seconds == 4.75);
    assert_true(rr.roles[0].steps[0].compute_s == 4.25 && rr.roles[0].steps[0].comm_s == 2);
    assert_int_equal(rr.roles[0].steps[0].sent_bytes[GROUP_DP], 20);
    replay_free(&rr);
    /* without overlap the collective holds the compute stream */
    p.overlap_dp = false;
    replay_ok(&p, &rr);
    assert_true(rr.roles[0].ops[3].start_s == 3.5);
    assert_true(rr.roles[0].steps[0].seconds == 6.25);
    replay_free(&rr);
    /* the optimizer touches every buffer: it waits for a collective no op used */
    p.overlap_dp = true;
    ops[3] = ops[6];
    role.n_ops = 4;
    replay_ok(&p, &rr);
    assert_true(rr.roles[0].ops[3].start_s == 3.5);
    replay_free(&rr);
    /* in an emitted ZeRO-3 program every fwd/bwd starts after its unit's gather */
    grid_plan g = {"tiny-1m", 4, 3, 2, 256, "none", "bf16-mixed", NULL};
    plan_spec *s = load_grid(&g);
    program q;
    emit_ok(s, 1, &q);
    replay_ok(&q, &rr);
    const prog_role *r = &q.roles[0];
    int checked = 0;
    for (int32_t i = 0; i < r->n_ops; i++) {
        if (r->ops[i].kind != OP_FWD && r->ops[i].kind != OP_BWD) continue;
        int32_t k = i - 1;
        while (!(r->ops[k].kind == OP_COLL && r->ops[k].dst == BUF_UNIT_PARAMS)) k--;
        assert_int_equal(r->ops[k].unit, r->ops[i].unit);
        assert_true(rr.roles[0].ops[i].start_s >= rr.roles[0].ops[k].end_s);
        checked++;
    }
    assert_int_equal(checked, 2 * 2 * r->n_units);
    replay_free(&rr);
    program_free(&q);
    free(s);
}

/* ---- the loader's checks: broken op lists (issue 9) ------------------------------------ */

static int32_t find_op(const prog_role *r, int32_t from, prog_kind kind, int32_t unit, int32_t mb) {
    for (int32_t i = from; i < r->n_ops; i++)
        if (r->ops[i].kind == kind && (unit < -1 || r->ops[i].unit == unit) &&
            (mb < -1 || r->ops[i].mb == mb))
            return i;
    fail_msg("no %s op (unit %d, mb %d) from op %d", prog_kind_names[kind], unit, mb, from);
    return -1;
}

static void drop_op(prog_role *r, int32_t i) {
    memmove(&r->ops[i], &r->ops[i + 1], (size_t)(r->n_ops - i - 1) * sizeof *r->ops);
    r->n_ops--;
}

/* Insert a copy of op `from` before position `to` (the array has room: emitted
 * programs grow by doubling; checked here). */
static void dup_op(prog_role *r, int32_t from, int32_t to) {
    prog_op o = r->ops[from];
    prog_op *ops = realloc(r->ops, (size_t)(r->n_ops + 1) * sizeof *ops);
    assert_non_null(ops);
    r->ops = ops;
    memmove(&ops[to + 1], &ops[to], (size_t)(r->n_ops - to) * sizeof *ops);
    ops[to] = o;
    r->n_ops++;
}

/* Move op `from` to position `to` (before the op now at `to`). */
static void move_op(prog_role *r, int32_t from, int32_t to) {
    prog_op o = r->ops[from];
    drop_op(r, from);
    if (to > from) to--;
    memmove(&r->ops[to + 1], &r->ops[to], (size_t)(r->n_ops - to) * sizeof *r->ops);
    r->ops[to] = o;
    r->n_ops++;
}

/* Write p (mutated in memory), load it back: the error, which must name the
 * op's line and field roles[0].ops[want_op] (want_op -1: the ops list). */
static const char *mutated_error(const program *p, int32_t want_op) {
    static ps_err err;
    program q;
    char field[64];
    const char *path = tmp_path("mut.json");
    memset(&err, 0, sizeof err);
    if (program_write_json(p, path, &err)) fail_msg("%s", err.msg);
    if (!program_load_json(path, &q, &err)) {
        program_free(&q);
        fail_msg("expected the loader to refuse the mutated program");
    }
    if (want_op >= 0) snprintf(field, sizeof field, "roles[0].ops[%d]: ", (int)want_op);
    else snprintf(field, sizeof field, "roles[0].ops: ");
    tu_contains(err.msg, "mut.json:", field, NULL);
    return err.msg;
}

static program emit_grid(const grid_plan *g, int steps) {
    plan_spec *s = load_grid(g);
    program p;
    emit_ok(s, steps, &p);
    free(s);
    return p;
}

static void test_load_checks_ops(void **state) {
    (void)state;
    /* ZeRO-2 over 2 ranks, 2 micro-batches (tiny-1m: embed, layer.0-3, head) */
    const grid_plan z2 = {"tiny-1m", 2, 2, 2, 256, "none", "fp32", NULL};
    program p = emit_grid(&z2, 1);
    prog_role *r = &p.roles[0];
    /* no alloc params: the first forward reads a buffer that does not exist */
    drop_op(r, 0);
    tu_contains(mutated_error(&p, 2), "fwd embed (step 0, mb 0): params is not allocated", NULL);
    program_free(&p);
    /* a deleted reduce-scatter: layer.2's gradient of micro-batch 0 is never reduced */
    p = emit_grid(&z2, 1), r = &p.roles[0];
    int32_t i = find_op(r, 0, OP_COLL, 3, 0);
    drop_op(r, i);
    tu_contains(mutated_error(&p, i), "free unit_grads layer.2 (step 0): the gradient in "
                "unit_grads[layer.2] is not reduce-scattered into grads ([524800, 770816) missing) "
                "before it is freed", NULL);
    program_free(&p);
    /* a reduce-scatter done twice */
    p = emit_grid(&z2, 1), r = &p.roles[0];
    i = find_op(r, 0, OP_COLL, 3, 0);
    dup_op(r, i, i + 1);
    tu_contains(mutated_error(&p, i + 1), "coll layer.2 (step 0, mb 0): reduce-scatters elements "
                "of unit_grads[layer.2] a second time for the same backward", NULL);
    program_free(&p);
    /* a duplicated optim */
    p = emit_grid(&z2, 1), r = &p.roles[0];
    i = find_op(r, 0, OP_OPTIM, -2, -2);
    dup_op(r, i, i + 1);
    tu_contains(mutated_error(&p, i + 1), "optim (step 0): a second optim in step 0", NULL);
    program_free(&p);
    /* an early optim: before the last micro-batch's backward (Adam's allocs moved along) */
    p = emit_grid(&z2, 1), r = &p.roles[0];
    i = find_op(r, 0, OP_OPTIM, -2, -2);
    const int32_t fwd1 = find_op(r, 0, OP_FWD, 0, 1);
    move_op(r, i - 2, fwd1), move_op(r, i - 1, fwd1 + 1), move_op(r, i, fwd1 + 2);
    tu_contains(mutated_error(&p, fwd1 + 2), "optim (step 0): before micro-batch 1's backward "
                "finished", NULL);
    program_free(&p);
    /* backward ops out of order: layer.1's before layer.2's */
    p = emit_grid(&z2, 1), r = &p.roles[0];
    const int32_t b2 = find_op(r, 0, OP_BWD, 3, 0), b1 = find_op(r, 0, OP_BWD, 2, 0);
    r->ops[b1].unit = 3, r->ops[b2].unit = 2; /* each keeps its buffers' unit: swap the units */
    tu_contains(mutated_error(&p, b2), "bwd layer.1 (step 0, mb 0): expected the backward of "
                "layer.2 next in micro-batch 0 (units in reverse order), found layer.1", NULL);
    program_free(&p);
    /* a backward before its forward */
    p = emit_grid(&z2, 1), r = &p.roles[0];
    i = find_op(r, 0, OP_FWD, 5, 0);
    move_op(r, find_op(r, 0, OP_BWD, 5, 0) - 1, i); /* the alloc of unit_grads[head] and ... */
    move_op(r, find_op(r, 0, OP_BWD, 5, 0), i + 1); /* ... the bwd, before the head's fwd */
    tu_contains(mutated_error(&p, i + 1), "bwd head (step 0, mb 0): before micro-batch 0's forward "
                "finished (the forward of head is next)", NULL);
    program_free(&p);
    /* no zero_grad */
    p = emit_grid(&z2, 1), r = &p.roles[0];
    drop_op(r, find_op(r, 0, OP_ZERO_GRAD, -2, -2));
    i = find_op(r, 0, OP_BWD, 5, 0);
    tu_contains(mutated_error(&p, i), "before the step's zero_grad", NULL);
    program_free(&p);
    /* an alloc of another size than the header implies; a free twice */
    p = emit_grid(&z2, 1), r = &p.roles[0];
    r->ops[1].bytes += 4;
    tu_contains(mutated_error(&p, 1), "alloc grads (step 0): expected 2099456 bytes (what the "
                "header and the role imply), found 2099460", NULL);
    program_free(&p);
    p = emit_grid(&z2, 1), r = &p.roles[0];
    i = find_op(r, 0, OP_FREE, -2, -2);
    dup_op(r, i, i + 1);
    tu_contains(mutated_error(&p, i + 1), "free unit_grads head (step 0): the buffer is not "
                "allocated", NULL);
    program_free(&p);
    /* a collective's size and what it sends follow from its range */
    p = emit_grid(&z2, 1), r = &p.roles[0];
    i = find_op(r, 0, OP_COLL, 5, 0);
    r->ops[i].bytes /= 2;
    tu_contains(mutated_error(&p, i), "expected bytes = elems x fp32 bytes = 131584, found 65792",
                NULL);
    r->ops[i].bytes *= 2, r->ops[i].sent_bytes = 1;
    tu_contains(mutated_error(&p, i), "expected sent = 65792", "found 1", NULL);
    program_free(&p);

    /* ZeRO-1, one bucket per 1 MiB: a deleted bucket reduce-scatter is missed at the optim;
     * the updated parameters must be gathered before the next step reads them */
    const grid_plan z1 = {"tiny-1m", 2, 1, 1, 256, "none", "fp32", "memory: {bucket: 1 MiB}"};
    p = emit_grid(&z1, 2), r = &p.roles[0];
    i = find_op(r, 0, OP_COLL, -1, -2);
    assert_int_equal(r->ops[i].coll, COLL_REDUCE_SCATTER);
    const int64_t lo = r->ops[i].offset, hi = lo + r->ops[i].elems;
    drop_op(r, i);
    char want[256];
    snprintf(want, sizeof want, "optim (step 0): the gradients of [%lld, %lld) (head) are not "
             "reduced before the optimizer step (dp*cp = 2 ranks: every element once per step)",
             (long long)lo, (long long)hi);
    tu_contains(mutated_error(&p, find_op(r, 0, OP_OPTIM, -2, -2)), want, NULL);
    program_free(&p);
    p = emit_grid(&z1, 2), r = &p.roles[0];
    i = find_op(r, find_op(r, 0, OP_OPTIM, -2, -2), OP_COLL, -2, -2);
    assert_int_equal(r->ops[i].coll, COLL_ALL_GATHER);
    drop_op(r, i);
    tu_contains(mutated_error(&p, i + 1), "fwd embed (step 1, mb 0): reads params before the "
                "all-gather of what the optimizer updated ([0, 1049728) missing)", NULL);
    program_free(&p);
    /* ZeRO-0: an all-reduce done twice; a reduce-scatter where every rank needs every sum */
    const grid_plan z0 = {"tiny-1m", 2, 0, 1, 256, "none", "fp32", NULL};
    p = emit_grid(&z0, 1), r = &p.roles[0];
    i = find_op(r, 0, OP_COLL, -2, -2);
    dup_op(r, i, i + 1);
    tu_contains(mutated_error(&p, i + 1), "coll (step 0, mb 0): reduces gradient elements already "
                "reduced in step 0", NULL);
    program_free(&p);
    p = emit_grid(&z0, 1), r = &p.roles[0];
    i = find_op(r, 0, OP_COLL, -2, -2);
    r->ops[i].coll = COLL_REDUCE_SCATTER;
    r->ops[i].sent_bytes = comm_bytes_sent(COLL_REDUCE_SCATTER, 2, r->ops[i].bytes);
    tu_contains(mutated_error(&p, i), "expected all-reduce", NULL);
    program_free(&p);
    /* ZeRO-3: a forward of a unit nobody gathered */
    const grid_plan z3 = {"tiny-1m", 2, 3, 1, 256, "none", "bf16-mixed", NULL};
    p = emit_grid(&z3, 1), r = &p.roles[0];
    i = find_op(r, 0, OP_COLL, 1, 0);
    drop_op(r, i);
    tu_contains(mutated_error(&p, i), "fwd layer.0 (step 0, mb 0): reads unit_params[layer.0] "
                "before an all-gather filled it ([32768, 278784) missing)", NULL);
    program_free(&p);
    /* a forward that names params while its unit's gathered buffer exists */
    p = emit_grid(&z3, 1), r = &p.roles[0];
    i = find_op(r, 0, OP_FWD, 0, 0);
    r->ops[i].src = BUF_PARAMS;
    tu_contains(mutated_error(&p, i), "fwd embed (step 0, mb 0): reads params while "
                "unit_params[embed] is allocated: expected src unit_params", NULL);
    program_free(&p);
    /* a step without its ops, located at the list */
    p = emit_grid(&z3, 2), r = &p.roles[0];
    r->n_ops = find_op(r, 0, OP_ZERO_GRAD, -2, -2) + 1;
    while (r->ops[r->n_ops - 1].step == 0) r->n_ops++;
    r->n_ops--;
    tu_contains(mutated_error(&p, -1), "expected ops for steps 0 to 1 (header.train.steps), found "
                "none after step 0", NULL);
    program_free(&p);
}

/* Valid programs the emitter does not write still load: micro-batches
 * interleaved (all forwards, then all backwards: GPipe's order), a bucket
 * reduced in two halves, the optimizer's parameter gather split in two. */
static void test_load_accepts_other_orders(void **state) {
    (void)state;
    const grid_plan z1 = {"tiny-1m", 2, 1, 2, 256, "none", "fp32", NULL};
    program p = emit_grid(&z1, 1), q;
    prog_role *r = &p.roles[0];
    ps_err err = {{0}};
    /* mb 1's forwards right after mb 0's */
    const int32_t U = r->n_units, f1 = find_op(r, 0, OP_FWD, 0, 1), b0 = find_op(r, 0, OP_BWD, -2, 0);
    for (int32_t k = 0; k < U; k++) move_op(r, f1 + k, b0 + k);
    /* the one bucket's reduce-scatter in two halves */
    int32_t i = find_op(r, 0, OP_COLL, -1, -2);
    dup_op(r, i, i + 1);
    const int64_t half = r->ops[i].elems / 2;
    r->ops[i].elems = half;
    r->ops[i + 1].offset = half, r->ops[i + 1].elems -= half;
    for (int k = 0; k < 2; k++) {
        prog_op *o = &r->ops[i + k];
        o->bytes = o->elems * 4;
        o->sent_bytes = comm_bytes_sent(o->coll, 2, o->bytes);
    }
    /* the parameter gather in two pieces, the second first */
    i = find_op(r, find_op(r, 0, OP_OPTIM, -2, -2), OP_COLL, -2, -2);
    dup_op(r, i, i);
    r->ops[i + 1].elems = half, r->ops[i].offset = half, r->ops[i].elems -= half;
    for (int k = 0; k < 2; k++) {
        prog_op *o = &r->ops[i + k];
        o->bytes = o->elems * 4;
        o->sent_bytes = comm_bytes_sent(o->coll, 2, o->bytes);
    }
    check_ok(&p);
    const char *path = tmp_path("other.json");
    if (program_write_json(&p, path, &err) || program_load_json(path, &q, &err))
        fail_msg("%s", err.msg);
    replay_result rr;
    replay_ok(&q, &rr);
    /* both micro-batches' activations are live at once */
    const prog_op *fwd = &r->ops[find_op(r, 0, OP_FWD, 1, 0)];
    assert_true(rr.roles[0].peak[MEM_ACTIVATIONS].bytes > 2 * 4 * fwd->bytes);
    replay_free(&rr);
    program_free(&q);
    program_free(&p);
}

/* Replace the value of the first "key": in the JSON text by `value`. */
static const char *header_error(const program *p, const char *key, const char *value) {
    static ps_err err;
    static char text[1 << 20], out[1 << 20];
    char k[64];
    const char *path = tmp_path("hdr.json");
    program q;
    memset(&err, 0, sizeof err);
    if (program_write_json(p, path, &err)) fail_msg("%s", err.msg);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    snprintf(k, sizeof k, "\"%s\": ", key);
    char *at = strstr(text, k);
    assert_non_null(at);
    at += strlen(k);
    const char *end = at + strcspn(at, ",\n}");
    snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, value, end);
    if (!program_load_text(out, strlen(out), "hdr.json", &q, &err)) {
        program_free(&q);
        fail_msg("expected an error for %s: %s", key, value);
    }
    return err.msg;
}

/* Distillation's header (docs/plan-format.md "header.distill"): it round-trips, the
 * teacher's alloc carries header.distill.teacher_bytes in category teacher before the
 * head's forward, and every field is held to its range. */
static void test_load_distill_header(void **state) {
    (void)state;
    program p, q;
    ps_err err = {{0}};
    if (program_load_json("tests/fuzz/corpus/program/one-layer-distill.json", &p, &err))
        fail_msg("%s", err.msg);
    const prog_distill *d = &p.distill;
    assert_true(d->on);
    assert_string_equal(d->weights, "f32");
    assert_string_equal(d->checkpoint, "teacher.ckpt");
    assert_int_equal(d->layers, 1), assert_int_equal(d->vocab, 256), assert_int_equal(d->top_k, 4);
    /* the test model's f32 teacher with one layer: 4 B x (2 x 256 x 64 + 64 + one layer) */
    const int64_t layer = 64 + 64 * 64 + 2 * 32 * 64 + 64 * 64 + 64 + 3 * 160 * 64;
    assert_int_equal(d->teacher_bytes, 4 * (2 * 256 * 64 + 64 + layer));
    const prog_op *o = &p.roles[0].ops[0];
    assert_int_equal(o->kind, OP_ALLOC), assert_int_equal(o->buf, BUF_TEACHER);
    assert_int_equal(o->cat, MEM_TEACHER), assert_int_equal(o->bytes, d->teacher_bytes);
    const char *path = tmp_path("distill.json");
    if (program_write_json(&p, path, &err) || program_load_json(path, &q, &err))
        fail_msg("%s", err.msg);
    assert_memory_equal(&q.distill, &p.distill, sizeof p.distill);
    program_free(&q);
    const struct {
        const char *key, *value, *msg;
    } bad[] = {
        {"weights", "\"int8\"", "header.distill.weights: expected one of f32, bf16, int8-tensor"},
        {"alpha", "1.5", "header.distill.alpha: expected a number in [0, 1], found 1.5"},
        {"temperature", "0", "header.distill.temperature: expected a number in (0, 1000], found 0"},
        {"checkpoint", "\"\"", "header.distill.checkpoint: expected the teacher checkpoint's path, found an empty string"},
        {"vocab", "300", /* the student's (the first "vocab"): the teacher's differs */
         "header.distill.teacher: expected a teacher over the student's vocabulary, found vocab "
         "256 (the student's: 300)"},
        {"top_k", "300", "header.distill.top_k: expected 0 or at most the vocabulary, found 300"},
        {"teacher_bytes", "5", "expected 5 bytes (what the header and the role imply)"},
        {"tp", "2", "header.parallel.world"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        tu_contains(header_error(&p, bad[k].key, bad[k].value), bad[k].msg, NULL);
    program_free(&p);
}

static void test_load_header_ranges(void **state) {
    (void)state;
    const grid_plan g = {"tiny-1m", 2, 2, 1, 256, "none", "fp32", NULL};
    program p = emit_grid(&g, 1);
    const struct {
        const char *key, *value, *msg;
    } bad[] = {
        {"beta1", "1.5", "header.train.beta1: expected a number in [0, 1), found 1.5"},
        {"beta2", "1", "header.train.beta2: expected a number in [0, 1), found 1"},
        {"eps", "1e308", "header.train.eps: expected a number in (0, 1], found 1e308"},
        {"eps", "0", "header.train.eps: expected a number in (0, 1], found 0"},
        {"norm_eps", "0", "header.model.norm_eps: expected a number in (0, 1], found 0"},
        {"rope_theta", "0", "header.model.rope_theta: expected a number in (0, 1e+12], found 0"},
        {"lr", "0", "header.train.lr: expected a number in (0, 1000], found 0"},
        {"lr", "1e4", "header.train.lr: expected a number in (0, 1000], found 1e4"},
        {"weight_decay", "-0.1", "header.train.weight_decay: expected a number in [0, 1], found -0.1"},
        {"lr", "nan", "header.train.lr: expected a number"},
        {"seed", "-1", "header.train.seed: expected an integer >= 0, found -1"},
        {"steps", "1000001", "header.train.steps: expected an integer from 1 to 1000000"},
        {"kv_heads", "3", "header.model.kv_heads: expected a divisor of heads = 4, found 3"},
        {"hidden", "2147483648", "header.model.hidden: expected an integer from 1 to 16777216"},
        {"tp", "65536", "header.parallel.tp: expected an integer from 1 to 1024"},
        {"micro", "16777216", "header.batch.micro: expected micro * seq at most 16777216 tokens"},
        {"bucket_bytes", "9000000000000000000", "header.parallel.bucket_bytes: expected an integer"},
        {"seconds", "1e300", ".seconds: expected a number in [0, 1e+06], found 1e300"},
        {"flops", "-1", ".flops: expected a number in [0, 1e+24], found -1"},
        /* sizes are bounded before anything is allocated for them */
        {"micro_batches", "1048576", "header.batch.global: expected micro * micro_batches * dp"},
        {"steps", "1000000", "roles[0].ops: expected at least steps x micro_batches x 2 x units "
                             "= 12000000 ops (a forward and a backward of every unit per "
                             "micro-batch and step), found 37"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        tu_contains(header_error(&p, bad[i].key, bad[i].value), "hdr.json:", bad[i].msg, NULL);
    program_free(&p);
}

/* A quoted number ("7") is a string, not a number (yget's number readers). */
static void test_load_header_quoted_number(void **state) {
    (void)state;
    const grid_plan g = {"tiny-1m", 2, 2, 1, 256, "none", "fp32", NULL};
    program p = emit_grid(&g, 1);
    tu_contains(header_error(&p, "rope_theta", "\"7\""), "hdr.json:", "header.model.rope_theta",
                NULL);
    program_free(&p);
}

/* No input crashes or hangs the loader or the replay: program_load_text on
 * a NUL byte, on every prefix of a program (at a stride) and on single-byte
 * edits; whatever loads also replays. */
static void test_load_text_robust(void **state) {
    (void)state;
    const grid_plan g = {"tiny-1m", 2, 3, 1, 256, "none", "bf16-mixed", NULL};
    program p = emit_grid(&g, 1), q;
    ps_err err = {{0}};
    const char *path = tmp_path("text.json");
    if (program_write_json(&p, path, &err)) fail_msg("%s", err.msg);
    program_free(&p);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[1 << 20], buf[1 << 20];
    const size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    /* the whole text loads; with a NUL inside it is refused at its line */
    if (program_load_text(text, n, "mem", &q, &err)) fail_msg("%s", err.msg);
    program_free(&q);
    memcpy(buf, text, n);
    buf[40] = 0;
    assert_int_equal(program_load_text(buf, n, "mem", &q, &err), -1);
    tu_contains(err.msg, "mem:3:", "control characters are not allowed 0x00", NULL);
    int loaded = 0;
    for (size_t len = 0; len < n; len += 37)
        if (!program_load_text(text, len, "mem", &q, &err)) loaded++, program_free(&q);
    assert_int_equal(loaded, 0);
    const char edits[] = {'0', '9', '-', '"', '}', ']', ',', ' ', 'e', '1'};
    for (size_t at = 0; at < n; at += 13) {
        memcpy(buf, text, n);
        buf[at] = edits[at % sizeof edits];
        if (program_load_text(buf, n, "mem", &q, &err)) continue;
        replay_result rr;
        if (!replay_program(&q, &rr, &err)) replay_free(&rr);
        program_free(&q);
    }
}

/* ---- where roles sit in the world ------------------------------------------------------- */

/* Mixed radix by placement, innermost first: Megatron's default tp, cp, dp,
 * pp puts a tp group on consecutive ranks; a custom order moves it. Every
 * coordinate maps to a distinct rank in [0, world). */
static void test_world_rank(void **state) {
    (void)state;
    plan_cfg c;
    memset(&c, 0, sizeof c);
    plan_cfg_defaults(&c);
    c.dp = 2, c.tp = 2, c.pp = 2, c.cp = 3;
    /* tp stride 1, cp stride 2, dp stride 6, pp stride 12 */
    assert_int_equal(program_world_rank(&c, 0, 1, 0, 0), 1);
    assert_int_equal(program_world_rank(&c, 0, 0, 0, 2), 4);
    assert_int_equal(program_world_rank(&c, 1, 1, 1, 2), 1 + 4 + 6 + 12);
    const uint8_t order[PLAN_GROUPS] = {GROUP_DP, GROUP_PP, GROUP_CP, GROUP_TP};
    memcpy(c.placement, order, sizeof order);
    /* dp stride 1, pp stride 2, cp stride 4, tp stride 12 */
    assert_int_equal(program_world_rank(&c, 1, 0, 1, 0), 3);
    assert_int_equal(program_world_rank(&c, 0, 1, 0, 2), 12 + 8);
    unsigned char seen[24] = {0};
    for (int d = 0; d < 2; d++)
        for (int t = 0; t < 2; t++)
            for (int s = 0; s < 2; s++)
                for (int k = 0; k < 3; k++) seen[program_world_rank(&c, d, t, s, k)]++;
    for (int i = 0; i < 24; i++) assert_int_equal(seen[i], 1);
}

/* ---- what the execution plan refuses ---------------------------------------------------- */

static void test_refusals(void **state) {
    (void)state;
    tu_contains(emit_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 2\nparallel: {dp: 1, pp: 2}\n"
                           "batch: {global: 2, micro: 1, seq: 64}\nrecompute: full\n"
                           "pipeline: {schedule: zero-bubble}\n"
                           "precision: bf16-mixed\noptimizer: adamw\n"),
                "recompute: ", "zero-bubble schedule keeps a layer's activations", "found full",
                NULL);
    tu_contains(emit_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 4\n"
                           "parallel: {dp: 2, pp: 2, zero: 2}\n"
                           "batch: {global: 4, micro: 1, seq: 64}\nrecompute: none\n"
                           "pipeline: {schedule: zero-bubble}\n"
                           "precision: bf16-mixed\noptimizer: adamw\n"),
                "test.yaml:4:", "parallel.zero: ", "runs with ZeRO-0 or ZeRO-1",
                "found ZeRO-2 over dp*cp = 2", NULL);
    /* freeing sent blocks at once is cost model only (the runtime frees them later) */
    tu_contains(emit_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 2\nparallel: {dp: 1, pp: 2}\n"
                           "batch: {global: 2, micro: 1, seq: 64}\nrecompute: none\n"
                           "pipeline: {schedule: 1f1b, deallocate_outputs: true}\n"
                           "precision: bf16-mixed\noptimizer: adamw\n"),
                "test.yaml:7:", "pipeline.deallocate_outputs: ", "found true",
                "only the cost model", NULL);
    /* DeepSpeed's partitioned pipeline messages are cost model only */
    tu_contains(emit_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 4\nparallel: {dp: 1, tp: 2, pp: 2}\n"
                           "batch: {global: 2, micro: 1, seq: 64}\nrecompute: none\n"
                           "pipeline: {schedule: 1f1b, partition_messages: true}\n"
                           "precision: bf16-mixed\noptimizer: adamw\n"),
                "test.yaml:7:", "pipeline.partition_messages: ", "found true", "set it to false",
                NULL);
    /* overlapped tp collectives and a zero3: section are cost model only */
    tu_contains(emit_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 2\nparallel: {dp: 1, tp: 2}\n"
                           "batch: {global: 1, micro: 1, seq: 64}\nrecompute: none\n"
                           "overlap: {tp: true}\nprecision: bf16-mixed\noptimizer: adamw\n"),
                "overlap.tp: ", "found overlap.tp true", "set it to false", NULL);
    tu_contains(emit_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 2\nparallel: {dp: 2, zero: 3}\n"
                           "batch: {global: 2, micro: 1, seq: 64}\nrecompute: none\n"
                           "zero3: {unit: param}\nprecision: bf16-mixed\noptimizer: adamw\n"),
                "zero3: ", "found a zero3: section (unit param, prefetch 1)", "leave it out", NULL);
    /* a framework profile describes another implementation: cost model only */
    tu_contains(emit_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\n"
                           "batch: {global: 1, micro: 1, seq: 64}\nrecompute: none\n"
                           "framework: megatron\nprecision: bf16-mixed\noptimizer: adamw\n"),
                "test.yaml:1:", "framework: ", "found framework megatron", "leave framework out",
                NULL);
    /* DualPipe is cost model only (the runtime holds no mirrored stage, runs no F&B pairs):
     * pipeline.schedule is located (tiny-1m has 4 layers: 2 per stage, 4 micro-batches) */
    tu_contains(emit_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 2\nparallel: {dp: 1, pp: 2}\n"
                           "batch: {global: 4, micro: 1, seq: 64}\nrecompute: none\n"
                           "pipeline: {schedule: dualpipe}\n"
                           "precision: bf16-mixed\noptimizer: adamw\n"),
                "test.yaml:7:", "pipeline.schedule: ", "found dualpipe", "only the cost model",
                NULL);
    /* Llama 3's all-gather context parallelism is cost model only: the field is located */
    tu_contains(emit_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 2\n"
                           "parallel: {dp: 1, cp: 2, cp_algorithm: all-gather}\n"
                           "batch: {global: 1, micro: 1, seq: 64}\nrecompute: none\n"
                           "precision: bf16-mixed\noptimizer: adamw\n"),
                "test.yaml:4:", "cp_algorithm: ", "runs context parallelism as ring attention",
                "found all-gather", "only the cost model", NULL);
    /* Llama 3.2 1B ties its embeddings: the model file and the field are named */
    tu_contains(emit_error("model: llama3.2-1b\ncluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\n"
                           "batch: {global: 1, micro: 1, seq: 64}\nrecompute: none\n"
                           "precision: bf16-mixed\noptimizer: adamw\n"),
                "models/llama3.2-1b.yaml:", "tied_embeddings: ", "the execution plan builds only "
                "the Llama-style block", "expected false, found true", NULL);
    const char *inline_model =
        "model: {name: m, layers: 2, hidden: 64, heads: 4, kv_heads: 4, ffn_hidden: 128,\n"
        "        vocab: 256, tied_embeddings: false, norm: %s, mlp: %s, attention: %s,\n"
        "        dropout: %s, position: rope, bias: %s}\n"
        "cluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\nbatch: {global: 1, micro: 1, seq: 64}\n"
        "recompute: none\nprecision: %s\noptimizer: %s\n";
    char text[1024];
    snprintf(text, sizeof text, inline_model, "layernorm", "swiglu", "flash", "0", "false",
             "bf16-mixed", "adamw");
    tu_contains(emit_error(text), "test.yaml:2:", "norm: ", "expected rmsnorm, found layernorm", NULL);
    snprintf(text, sizeof text, inline_model, "rmsnorm", "gelu", "flash", "0", "false",
             "bf16-mixed", "adamw");
    tu_contains(emit_error(text), "mlp: ", "expected swiglu, found gelu", NULL);
    snprintf(text, sizeof text, inline_model, "rmsnorm", "swiglu", "standard", "0", "false",
             "bf16-mixed", "adamw");
    tu_contains(emit_error(text), "attention: ", "expected flash, found standard", NULL);
    snprintf(text, sizeof text, inline_model, "rmsnorm", "swiglu", "flash", "0.1", "false",
             "bf16-mixed", "adamw");
    tu_contains(emit_error(text), "test.yaml:3:18: dropout: ", "expected 0, found 0.1", NULL);
    snprintf(text, sizeof text, inline_model, "rmsnorm", "swiglu", "flash", "0", "qkv",
             "bf16-mixed", "adamw");
    tu_contains(emit_error(text), "bias: ", "expected false, found qkv", NULL);
    snprintf(text, sizeof text, inline_model, "rmsnorm", "swiglu", "flash", "0", "false",
             "fp16-mixed", "adamw");
    tu_contains(emit_error(text), "precision: ", "bf16-mixed and fp32", "found fp16-mixed", NULL);
    snprintf(text, sizeof text, inline_model, "rmsnorm", "swiglu", "flash", "0", "false",
             "bf16-mixed", "sgd");
    tu_contains(emit_error(text), "optimizer: ", "adamw", "found sgd", NULL);
    /* the table recompute policies exist in the cost model only */
    tu_contains(emit_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\n"
                           "batch: {global: 1, micro: 1, seq: 64}\nrecompute: op\n"
                           "precision: bf16-mixed\noptimizer: adamw\n"),
                "test.yaml:6:12: recompute: ", "the execution plan runs recompute none, "
                "selective or full; found op", NULL);
    tu_contains(emit_error("model: tiny-1m\ncluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\n"
                           "batch: {global: 1, micro: 1, seq: 64}\nrecompute: [w3.out]\n"
                           "precision: bf16-mixed\noptimizer: adamw\n"),
                "test.yaml:6:12: recompute: ", "found custom", NULL);
}

/* ---- pipeline parallelism ------------------------------------------------------------ */

/* tiny-1m (4 layers) over pp stages with m micro-batches; extra: pipeline: etc. */
static plan_spec *pipe_plan(int64_t dp, int64_t pp, int64_t m, int zero, const char *extra) {
    char text[1024];
    snprintf(text, sizeof text,
             "model: tiny-1m\ncluster: dgx-h100\ngpus: %lld\n"
             "parallel: {dp: %lld, pp: %lld, zero: %d}\n"
             "batch: {global: %lld, micro: 1, seq: 64}\nrecompute: none\n"
             "precision: fp32\noptimizer: adamw\nmemory: {bucket: 64KiB}\n%s\n",
             (long long)(dp * pp), (long long)dp, (long long)pp, zero, (long long)(m * dp),
             extra);
    return tu_plan(text);
}

/* Stage s's forwards and backwards of the units named, as "F<i>.<mb>" /
 * "B<i>.<mb>" (i: the unit's place in names), in program order. */
static void stage_order(const prog_role *r, const char *const *names, int n_names, char *out,
                        size_t len) {
    size_t at = 0;
    out[0] = 0;
    for (int32_t i = 0; i < r->n_ops; i++) {
        const prog_op *o = &r->ops[i];
        if ((o->kind != OP_FWD && o->kind != OP_BWD) || o->step != 0) continue;
        for (int k = 0; k < n_names; k++)
            if (!strcmp(r->units[o->unit].name, names[k]))
                at += (size_t)snprintf(out + at, len - at, "%s%c%d.%d", at ? " " : "",
                                       o->kind == OP_FWD         ? 'F'
                                       : o->part == BWD_WEIGHT ? 'W'
                                                               : 'B',
                                       k, (int)o->mb);
    }
}

/* The op orders are the schedules' (worked out by hand from Megatron-LM's
 * definitions, docs/schedule.md), each stage holds its layers with global
 * names, and every send has its receive on the peer, in order, same bytes. */
static void test_pipe_emit_order(void **state) {
    (void)state;
    static const struct {
        const char *extra;
        const char *units[2];
        int n_units;
        const char *stage0;
    } cases[] = {
        {"pipeline: {schedule: afab}", {"embed"}, 1, "F0.0 F0.1 F0.2 F0.3 B0.0 B0.1 B0.2 B0.3"},
        {"pipeline: {schedule: 1f1b}", {"embed"}, 1, "F0.0 F0.1 B0.0 F0.2 B0.1 F0.3 B0.2 B0.3"},
        /* v = 2: stage 0 holds embed + layer.0 (virtual stage 0) and layer.2 (virtual 2) */
        {"pipeline: {schedule: interleaved, virtual: 2}", {"embed", "layer.2"}, 2,
         "F0.0 F0.1 F1.0 F1.1 F0.2 B1.0 F0.3 B1.1 F1.2 B0.0 F1.3 B0.1 B1.2 B1.3 B0.2 B0.3"},
        /* ZB-H1: stage 0's W's follow its B's at once (s = 0 places behind) */
        {"pipeline: {schedule: zero-bubble}", {"layer.0"}, 1,
         "F0.0 F0.1 B0.0 W0.0 F0.2 B0.1 W0.1 F0.3 B0.2 W0.2 B0.3 W0.3"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        plan_spec *s = pipe_plan(1, 2, 4, 0, cases[c].extra);
        program p;
        emit_ok(s, 2, &p);
        check_ok(&p);
        char got[512];
        stage_order(&p.roles[0], cases[c].units, cases[c].n_units, got, sizeof got);
        if (strcmp(got, cases[c].stage0))
            fail_msg("%s: stage 0 runs %s, expected %s", cases[c].extra, got, cases[c].stage0);
        assert_int_equal(p.n_roles, 2);
        if (c != 2) { /* stage 0: embed, layer.0, layer.1; stage 1: layer.2, layer.3, head */
            assert_int_equal(p.roles[0].n_units, 3);
            assert_string_equal(p.roles[1].units[0].name, "layer.2");
            assert_string_equal(p.roles[1].units[2].name, "head");
        } else { /* virtual stages 0..3 hold layer 0..3: stage 1 has layer.1, layer.3, head */
            assert_string_equal(p.roles[1].units[0].name, "layer.1");
            assert_string_equal(p.roles[1].units[1].name, "layer.3");
        }
        /* sends match receives between each pair of stages, in order */
        const int64_t P = comm_p2p_bytes(&s->model.cfg, &s->cfg);
        assert_int_equal(P, 64 * 128 * 4); /* micro 1 x seq 64 x hidden 128, fp32 */
        for (int a = 0; a < 2; a++) {
            const prog_role *from = &p.roles[a], *to = &p.roles[1 - a];
            int32_t j = 0, sends = 0;
            for (int32_t i = 0; i < from->n_ops; i++) {
                const prog_op *o = &from->ops[i];
                if (o->kind != OP_SEND) continue;
                sends++;
                while (j < to->n_ops && to->ops[j].kind != OP_RECV) j++;
                assert_true(j < to->n_ops);
                const prog_op *q = &to->ops[j++];
                assert_int_equal(o->peer, 1 - a);
                assert_int_equal(q->peer, a);
                assert_int_equal(o->mb, q->mb);
                assert_int_equal(o->phase, q->phase);
                assert_int_equal(o->bytes, P);
                assert_int_equal(q->bytes, P);
                assert_int_equal(o->sent_bytes, P);
                assert_int_equal(q->sent_bytes, 0);
            }
            /* 2 steps x 4 micro-batches x (v chunks' activations and gradients) */
            assert_int_equal(sends, 2 * 4 * (c != 2 ? 1 : 3));
        }
        /* the bytes each stage sends per step are comm.c's pipeline volume */
        replay_result rr;
        replay_ok(&p, &rr);
        for (int st = 0; st < 2; st++) {
            comm_list l;
            comm_stage_info si = {.stage = st, .layers = 2};
            comm_stage(&s->model.cfg, &s->cfg, &si, &l);
            assert_int_equal(rr.roles[st].steps[1].sent_bytes[GROUP_PP], l.group_bytes[GROUP_PP]);
        }
        replay_free(&rr);
        program_free(&p);
        free(s);
    }
}

/* The replay's peak activations per stage follow the schedule: pipe.c's
 * in-flight micro-batches (AFAB m, 1F1B p - s, interleaved
 * 2(p-s-1)+(v-1)p+1 chunks, zero-bubble
 * min(p, m) until W) times act.c's per-micro-batch bytes, plus the
 * embedding's and the head's extras. */
static void test_pipe_inflight_matches_closed_form(void **state) {
    (void)state;
    static const struct {
        int64_t pp, m;
        const char *extra;
    } cases[] = {
        {2, 4, "pipeline: {schedule: afab}"},
        {2, 4, "pipeline: {schedule: 1f1b}"},
        {4, 8, "pipeline: {schedule: 1f1b}"},
        {2, 2, "pipeline: {schedule: 1f1b}"},
        {2, 8, "pipeline: {schedule: interleaved, virtual: 2}"},
        {2, 4, "pipeline: {schedule: 1f1b, layers: [3, 1]}"},
        {2, 4, "pipeline: {schedule: afab, layers: [1, 3]}"},
        {2, 4, "pipeline: {schedule: zero-bubble}"},
        {4, 8, "pipeline: {schedule: zero-bubble}"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int zero = 0; zero <= 3; zero += 3) {
            const bool zb = strstr(cases[c].extra, "zero-bubble") != NULL;
            if (zb && zero == 3) continue; /* refused (test_refusals) */
            plan_spec *s = pipe_plan(2, cases[c].pp, cases[c].m, zero, cases[c].extra);
            program p;
            replay_result rr;
            emit_ok(s, 1, &p);
            check_ok(&p);
            replay_ok(&p, &rr);
            act_bytes ab;
            act_compute(&s->model.cfg, &s->cfg, &ab);
            /* zero-bubble keeps a micro-batch's layer activations until its W: min(p, m)
             * on every stage (test_pipe.c holds it to pipe_sched.c's peak_until_w) */
            for (int64_t st = 0; st < cases[c].pp; st++) {
                pipe_inflight in;
                pipe_stage_inflight(&s->model.cfg, &s->cfg, st, &in);
                if (zb) assert_int_equal(in.inflight, cases[c].pp < cases[c].m ? cases[c].pp : cases[c].m);
                const int64_t want = in.layer_units * ab.layer_saved +
                                     in.first_extra * ab.first_stage +
                                     in.last_extra * ab.last_stage;
                const int64_t got = rr.roles[st].peak[MEM_ACTIVATIONS].bytes;
                if (got != want)
                    fail_msg("%s, pp %lld, m %lld, stage %lld: replay peak activations %lld, "
                             "pipe.c's in-flight count gives %lld", cases[c].extra,
                             (long long)cases[c].pp, (long long)cases[c].m, (long long)st,
                             (long long)got, (long long)want);
            }
            replay_free(&rr);
            program_free(&p);
            free(s);
        }
}

/* Pipeline workspace (docs/memory.md §6, "Pipelines"): on top of the compute
 * ops' working set a stage holds zero-bubble's stashes from B to W (pipe.c's
 * stash_units of workspace.c's zb_stash: the replay's peak is at least the
 * last B of the (s+1)-th micro-batch with them all live), the message blocks
 * inside a send or receive, and the blocks of sends not yet complete; the
 * closed form counts the stashes and one message, and never predicts less
 * than the replay. */
static void test_pipe_workspace(void **state) {
    (void)state;
    static const struct {
        int64_t pp, m;
        const char *extra;
    } cases[] = {
        {2, 4, "pipeline: {schedule: afab}"},
        {2, 4, "pipeline: {schedule: 1f1b}"},
        {4, 8, "pipeline: {schedule: 1f1b}"},
        {2, 8, "pipeline: {schedule: interleaved, virtual: 2}"},
        {2, 4, "pipeline: {schedule: 1f1b, layers: [3, 1]}"},
        {2, 4, "pipeline: {schedule: zero-bubble}"},
        {4, 8, "pipeline: {schedule: zero-bubble}"},
        {2, 2, "pipeline: {schedule: zero-bubble}"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        plan_spec *s = pipe_plan(1, cases[c].pp, cases[c].m, 0, cases[c].extra);
        const bool zb = strstr(cases[c].extra, "zero-bubble") != NULL;
        program p;
        replay_result rr;
        emit_ok(s, 2, &p);
        check_ok(&p);
        replay_ok(&p, &rr);
        ws_bytes ws;
        ws_compute(&s->model.cfg, &s->cfg, s->cluster.cfg.kernels_fp32, &ws);
        eval_result e;
        eval_stage es[PLAN_MAX_STAGES];
        eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &e, es);
        const int64_t msg = comm_p2p_bytes(&s->model.cfg, &s->cfg);
        for (int64_t st = 0; st < cases[c].pp; st++) {
            const replay_role *r = &rr.roles[st];
            pipe_inflight in;
            pipe_stage_inflight(&s->model.cfg, &s->cfg, st, &in);
            const int64_t L = pipe_stage_layers(&s->model.cfg, &s->cfg, st);
            const int64_t compute = ws_stage_compute(&ws, st == 0, L, st == cases[c].pp - 1);
            const int64_t stash = zb ? ws.layer_bwd + in.stash_units * ws.zb_stash : 0;
            const int64_t low = compute > stash ? compute : stash;
            const int64_t got = r->peak[MEM_WORKSPACE].bytes;
            const int64_t allocated = es[st].total - es[st].reserved - es[st].fragmentation -
                                      es[st].buf_workspace;
            if (got < low || got > es[st].buf_temps || r->peak_total.bytes > allocated)
                fail_msg("%s, pp %lld, stage %lld: replay workspace %lld (at least %lld), total "
                         "%lld; closed form %lld and %lld", cases[c].extra, (long long)cases[c].pp,
                         (long long)st, (long long)got, (long long)low,
                         (long long)r->peak_total.bytes, (long long)es[st].buf_temps,
                         (long long)allocated);
            assert_int_equal(es[st].buf_temps, low + in.inflight * msg);
            /* nothing stays after a step: sends are done, every W has run */
            assert_int_equal(r->steps[0].end_bytes[MEM_WORKSPACE], 0);
        }
        if (c == 1) { /* 1f1b, pp 2: the last stage's pending gradient sends */
            const prog_role *r = &p.roles[1];
            const replay_op *t = rr.roles[1].ops;
            int32_t p2p[4], n = 0;
            for (int32_t i = 0; i < r->n_ops && n < 4; i++)
                if (r->ops[i].kind == OP_SEND || r->ops[i].kind == OP_RECV) p2p[n++] = i;
            /* recv F0, send B0, recv F1, send B1: B0's block is still in flight when recv F1
             * starts (at once), so it stays through micro-batch 1's ops until send B1, which
             * finds it done (stage 0 posted its receive long before) */
            assert_int_equal(n, 4);
            assert_int_equal(r->ops[p2p[1]].kind, OP_SEND);
            assert_int_equal(r->ops[p2p[2]].kind, OP_RECV);
            assert_int_equal(r->ops[p2p[2]].mb, 1);
            assert_true(t[p2p[2]].start_s < t[p2p[1]].end_s);
            for (int32_t i = p2p[1]; i < p2p[3]; i++)
                assert_int_equal(t[i].bytes[MEM_WORKSPACE], msg);
            assert_int_equal(t[p2p[3]].bytes[MEM_WORKSPACE], msg); /* B1's own */
            /* inside a receive: its message (fp32: one block), on top of what is live */
            assert_int_equal(r->ops[p2p[0]].workspace_bytes, msg);
            int64_t live = 0;
            for (int k = 0; k < MEM_COUNT; k++) live += t[p2p[0]].bytes[k];
            assert_int_equal(t[p2p[0]].peak_total, live + msg);
        }
        replay_free(&rr);
        program_free(&p);
        free(s);
    }
}

/* The replay is the pipeline's event simulation: a receive waits for its
 * send, so with stage times taken from the program's ops the replayed span
 * of a step's forwards and backwards is pipe_sched.c's simulated step time
 * (the closed forms' reference), bubble included. Interleaved too: there each
 * chunk's times are its own (the embedding rides on stage 0's chunk 0, the
 * head on stage p-1's chunk v-1: sched_in's t_first / t_last), and the chunk
 * of a layer unit is its virtual stage over p. This is what holds `parasim
 * plan`'s schedule simulation (pipe_sched.c, which also serves the plans the
 * emitter cannot lower: GPT-style blocks, DualPipe) to the replay. With
 * overlap.pp false a receive holds its stage for the transfer (t_recv): the
 * same there too, and not the span without it. */
static void test_pipe_replay_is_the_schedule(void **state) {
    (void)state;
    static const struct {
        int64_t pp, m, v;
        const char *extra;
        plan_schedule kind;
    } cases[] = {
        {2, 4, 1, "pipeline: {schedule: afab}", SCHED_AFAB},
        {2, 4, 1, "pipeline: {schedule: 1f1b}", SCHED_1F1B},
        {4, 8, 1, "pipeline: {schedule: 1f1b}", SCHED_1F1B},
        {2, 8, 1, "pipeline: {schedule: 1f1b, layers: [3, 1]}", SCHED_1F1B},
        {2, 4, 1, "pipeline: {schedule: zero-bubble}", SCHED_ZERO_BUBBLE},
        {4, 8, 1, "pipeline: {schedule: zero-bubble}", SCHED_ZERO_BUBBLE},
        {2, 4, 2, "pipeline: {schedule: interleaved, virtual: 2}", SCHED_INTERLEAVED},
        {2, 8, 2, "pipeline: {schedule: interleaved, virtual: 2}", SCHED_INTERLEAVED},
        {2, 4, 1, "pipeline: {schedule: 1f1b}\noverlap: {pp: false}", SCHED_1F1B},
        {4, 8, 1, "pipeline: {schedule: zero-bubble}\noverlap: {pp: false}", SCHED_ZERO_BUBBLE},
        {2, 8, 2, "pipeline: {schedule: interleaved, virtual: 2}\noverlap: {pp: false}",
         SCHED_INTERLEAVED},
        {4, 8, 1, "pipeline: {schedule: afab}\noverlap: {pp: false}", SCHED_AFAB},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        plan_spec *s = pipe_plan(1, cases[c].pp, cases[c].m, 0, cases[c].extra);
        const int64_t pp = cases[c].pp, v = cases[c].v;
        program p;
        replay_result rr;
        emit_ok(s, 1, &p);
        replay_ok(&p, &rr);
        /* [3 (stage * v + chunk) + 0..2]: forward, backward (input part), weight part */
        double t[3 * PLAN_MAX_STAGES * 2] = {0};
        double t_f[PLAN_MAX_STAGES], t_b[PLAN_MAX_STAGES], t_w[PLAN_MAX_STAGES];
        double t_first[3 * PLAN_MAX_STAGES], t_last[3 * PLAN_MAX_STAGES];
        double t_p2p = 0, span = 0;
        assert_int_equal(p.n_roles, pp);
        for (int32_t r = 0; r < p.n_roles; r++)
            for (int32_t i = 0; i < p.roles[r].n_ops; i++) {
                const prog_op *o = &p.roles[r].ops[i];
                if ((o->kind == OP_FWD || o->kind == OP_BWD) && o->mb == 0) {
                    const char *name = p.roles[r].units[o->unit].name;
                    /* tiny-1m's 4 layers: one per virtual stage when v = 2 */
                    int64_t chunk = v == 1 || !strcmp(name, "embed") ? 0
                                    : !strcmp(name, "head")          ? v - 1
                                                                     : atoll(name + 6) / pp;
                    /* zero-bubble: B and W apart */
                    const int part = o->kind == OP_FWD ? 0 : o->part == BWD_WEIGHT ? 2 : 1;
                    assert_true(chunk >= 0 && chunk < v);
                    t[3 * (r * v + chunk) + part] += o->seconds;
                }
                if (o->kind == OP_SEND) t_p2p = o->seconds;
                if ((o->kind == OP_FWD || o->kind == OP_BWD) && rr.roles[r].ops[i].end_s > span)
                    span = rr.roles[r].ops[i].end_s;
            }
        for (int64_t r = 0; r < pp; r++) {
            t_f[r] = t[3 * r * v], t_b[r] = t[3 * r * v + 1], t_w[r] = t[3 * r * v + 2];
            for (int i = 0; i < 3; i++) {
                t_first[3 * r + i] = t[3 * r * v + i];
                t_last[3 * r + i] = t[3 * (r * v + v - 1) + i];
            }
        }
        const bool hidden = p.overlap_pp;
        assert_int_equal(hidden, strstr(cases[c].extra, "overlap") == NULL);
        sched_in in = {.kind = cases[c].kind, .p = pp, .m = cases[c].m, .v = v,
                       .t_f = t_f, .t_b = t_b, .t_w = t_w, .t_p2p = hidden ? t_p2p : 0,
                       .t_first = v > 1 ? t_first : NULL, .t_last = v > 1 ? t_last : NULL,
                       .t_recv = hidden ? 0 : t_p2p};
        sched_out so;
        if (!hidden) { /* the receives count: without them the span is shorter */
            sched_in bare = in;
            bare.t_recv = 0;
            assert_int_equal(sched_simulate(&bare, NULL, &so), 0);
            assert_true(so.step_time < span - 1e-9 * span);
        }
        assert_int_equal(sched_simulate(&in, NULL, &so), 0);
        if (fabs(span - so.step_time) > 1e-9 * so.step_time)
            fail_msg("%s, pp %lld, m %lld: replayed span %.12g s, schedule simulation %.12g s",
                     cases[c].extra, (long long)cases[c].pp, (long long)cases[c].m, span,
                     so.step_time);
        assert_true(t_p2p > 0);
        replay_free(&rr);
        program_free(&p);
        free(s);
    }
}

/* Sends and receives that do not pair up are replay errors naming the op. */
static void test_pipe_replay_pairs(void **state) {
    (void)state;
    plan_spec *s = pipe_plan(1, 2, 4, 0, "pipeline: {schedule: 1f1b}");
    program p;
    replay_result rr;
    ps_err err = {{0}};
    emit_ok(s, 1, &p);
    prog_op *first_send = NULL;
    for (int32_t i = 0; i < p.roles[0].n_ops && !first_send; i++)
        if (p.roles[0].ops[i].kind == OP_SEND) first_send = &p.roles[0].ops[i];
    assert_non_null(first_send);
    first_send->mb = 1; /* stage 0 sends micro-batch 1 where stage 1 expects 0 */
    assert_int_equal(replay_program(&p, &rr, &err), -1);
    tu_contains(err.msg, "receives micro-batch 0 where stage 0's next send of that kind carries "
                         "micro-batch 1", NULL);
    /* stage 0 waits for micro-batch 0's gradient before sending its activation: both wait */
    first_send->mb = 0;
    first_send->kind = OP_RECV;
    first_send->phase = COMM_BWD;
    memset(&err, 0, sizeof err);
    assert_int_equal(replay_program(&p, &rr, &err), -1);
    tu_contains(err.msg, "recv", "waits for a send that never comes", NULL);
    /* a send nobody receives (the runtime would wait for it at the end of the step) */
    first_send->kind = OP_SEND;
    first_send->phase = COMM_FWD;
    prog_role *r1 = &p.roles[1];
    for (int32_t i = 0; i < r1->n_ops; i++)
        if (r1->ops[i].kind == OP_RECV && r1->ops[i].phase == COMM_FWD && r1->ops[i].mb == 3) {
            memmove(&r1->ops[i], &r1->ops[i + 1], (size_t)(r1->n_ops - i - 1) * sizeof *r1->ops);
            r1->n_ops--;
            break;
        }
    memset(&err, 0, sizeof err);
    assert_int_equal(replay_program(&p, &rr, &err), -1);
    tu_contains(err.msg, "role 0 (stage 0): 1 of its 4 pipeline sends have no receive", NULL);
    program_free(&p);
    free(s);
}

/* Zero-bubble's split backward: the loader's rules (a W after its B, every B's W
 * before the optimizer) and the JSON's `part`. */
static void test_pipe_zero_bubble_parts(void **state) {
    (void)state;
    plan_spec *s = pipe_plan(1, 2, 4, 0, "pipeline: {schedule: zero-bubble}");
    program p, q;
    ps_err err = {{0}};
    int32_t role = -1, op = -1;
    emit_ok(s, 1, &p);
    check_ok(&p);
    prog_role *r = &p.roles[1];
    int32_t b = -1, w = -1;
    for (int32_t i = 0; i < r->n_ops; i++) {
        if (b < 0 && r->ops[i].kind == OP_BWD && r->ops[i].part == BWD_INPUT) b = i;
        if (w < 0 && r->ops[i].kind == OP_BWD && r->ops[i].part == BWD_WEIGHT) w = i;
    }
    assert_true(b >= 0 && w > b);
    assert_int_equal(r->ops[b].bytes, 0);
    assert_true(r->ops[w].bytes > 0); /* what its forward saved */
    /* the stash B keeps for W: on both, workspace.c's zb_stash */
    ws_bytes ws;
    ws_compute(&s->model.cfg, &s->cfg, s->cluster.cfg.kernels_fp32, &ws);
    assert_true(ws.zb_stash > 0);
    assert_int_equal(r->ops[b].stash_bytes, ws.zb_stash);
    assert_int_equal(r->ops[w].stash_bytes, ws.zb_stash);
    assert_int_equal(r->ops[w].workspace_bytes, ws.layer_bwd_w);
    replay_result rr;
    r->ops[w].stash_bytes--; /* W frees another stash than B kept */
    assert_int_equal(replay_program(&p, &rr, &err), -1);
    tu_contains(err.msg, "frees another stash than its input part kept", NULL);
    r->ops[w].stash_bytes++;
    for (int32_t i = 0; i < r->n_ops; i++) /* a whole backward (the head's) keeps none */
        if (r->ops[i].kind == OP_BWD && r->ops[i].part == BWD_ALL) {
            r->ops[i].stash_bytes = 64;
            memset(&err, 0, sizeof err);
            assert_int_equal(program_check(&p, &role, &op, &err), -1);
            tu_contains(err.msg, "a whole backward keeps no stash", NULL);
            r->ops[i].stash_bytes = 0;
            break;
        }
    memset(&err, 0, sizeof err);
    /* a W before its B */
    r->ops[b].part = BWD_WEIGHT;
    assert_int_equal(program_check(&p, &role, &op, &err), -1);
    tu_contains(err.msg, "bwd layer.3 (step 0, mb 0): no input-gradient part of layer.3's backward "
                         "in micro-batch 0 waits for this weight part", NULL);
    r->ops[b].part = BWD_INPUT;
    /* a B whose W never comes: the optimizer is too early */
    memmove(&r->ops[w], &r->ops[w + 1], (size_t)(r->n_ops - w - 1) * sizeof *r->ops);
    r->n_ops--;
    memset(&err, 0, sizeof err);
    assert_int_equal(program_check(&p, &role, &op, &err), -1);
    tu_contains(err.msg, "optim (step 0): before the weight-gradient part of 1 backwards", NULL);
    program_free(&p);
    emit_ok(s, 1, &p);
    /* the parts survive the JSON */
    char dir[] = "/tmp/parasim-zb-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/p.json", dir);
    if (program_write_json(&p, path, &err) || program_load_json(path, &q, &err))
        fail_msg("%s", err.msg);
    for (int k = 0; k < 2; k++)
        for (int32_t i = 0; i < p.roles[k].n_ops; i++)
            assert_int_equal(p.roles[k].ops[i].part, q.roles[k].ops[i].part);
    remove(path);
    rmdir(dir);
    program_free(&q);
    program_free(&p);
    free(s);
}

/* A pipeline program survives its JSON (write, load, check) unchanged; a
 * zero-bubble one too (its parts, stashes and the sends' workspace). */
static void pipe_round_trip(const char *extra);

static void test_pipe_json_round_trip(void **state) {
    (void)state;
    pipe_round_trip("pipeline: {schedule: interleaved, virtual: 2}");
    pipe_round_trip("pipeline: {schedule: zero-bubble}");
    pipe_round_trip("pipeline: {schedule: 1f1b}\noverlap: {pp: false}");
}

static void pipe_round_trip(const char *extra) {
    plan_spec *s = pipe_plan(2, 2, 4, 1, extra);
    program p, q;
    ps_err err = {{0}};
    emit_ok(s, 2, &p);
    char dir[] = "/tmp/parasim-pipe-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/p.json", dir);
    if (program_write_json(&p, path, &err) || program_load_json(path, &q, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(q.n_roles, 2);
    assert_int_equal(q.overlap_pp, strstr(extra, "overlap: {pp: false}") == NULL);
    assert_int_equal(q.overlap_pp, p.overlap_pp);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(q.roles[r].n_ops, p.roles[r].n_ops);
        assert_int_equal(q.roles[r].stage, r);
        for (int32_t i = 0; i < p.roles[r].n_ops; i++) {
            const prog_op *a = &p.roles[r].ops[i], *b = &q.roles[r].ops[i];
            assert_int_equal(a->kind, b->kind);
            assert_int_equal(a->peer, b->peer);
            assert_int_equal(a->phase, b->phase);
            assert_int_equal(a->bytes, b->bytes);
            assert_int_equal(a->part, b->part);
            assert_int_equal(a->stash_bytes, b->stash_bytes);
            assert_int_equal(a->workspace_bytes, b->workspace_bytes);
        }
    }
    remove(path);
    rmdir(dir);
    program_free(&q);
    program_free(&p);
    free(s);
}

/* ---- context parallelism ------------------------------------------------------------ */

/* tiny-1m (L 4, h 128, 2 kv heads of 32) over dp 2 x cp 2, one sequence of 256
 * tokens per micro-batch, 2 micro-batches per rank: each cp rank holds 128
 * tokens, so one K/V block is 2 x 128 x 64 x a bytes (a = 4 in fp32, 2 in
 * bf16): 65,536 / 32,768 bytes. A layer's forward passes it cp - 1 = 1 time,
 * its backward 2 times (K/V, then dK/dV) and 3 under full recompute; the
 * buffers are 2 blocks in forward, 4 in backward. */
static plan_spec *cp_plan(const char *recompute, const char *precision, int zero) {
    char text[1024];
    snprintf(text, sizeof text,
             "model: tiny-1m\ncluster: dgx-h100\ngpus: 4\nparallel: {dp: 2, cp: 2, zero: %d}\n"
             "batch: {global: 4, micro: 1, seq: 256}\nrecompute: %s\nprecision: %s\n"
             "optimizer: adamw\n", zero, recompute, precision);
    return tu_plan(text);
}

static void test_cp_emit_and_replay(void **state) {
    (void)state;
    const struct {
        const char *recompute, *precision;
        int zero;
        int64_t block, bwd_passes;
    } cases[] = {{"none", "fp32", 1, 65536, 2}, {"full", "bf16-mixed", 3, 32768, 3},
                 {"selective", "fp32", 0, 65536, 2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        plan_spec *s = cp_plan(cases[i].recompute, cases[i].precision, cases[i].zero);
        program p;
        replay_result rr;
        eval_result e;
        emit_ok(s, 2, &p);
        check_ok(&p);
        replay_ok(&p, &rr);
        eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &e, NULL);
        assert_int_equal(p.n_roles, 2);
        const int64_t blk = cases[i].block;
        assert_int_equal(act_kv_block_bytes(&s->model.cfg, &s->cfg), blk);
        for (int32_t c = 0; c < 2; c++) {
            const prog_role *r = &p.roles[c];
            const replay_role *rp = &rr.roles[c];
            assert_int_equal(r->cp_rank, c);
            /* placement tp, cp, dp, pp: cp innermost after tp, so world rank c + 2 k */
            assert_int_equal(r->ranks[0], c);
            assert_int_equal(r->ranks[1], c + 2);
            int64_t passes = 0;
            double fwd_s = 0, bwd_s = 0; /* step 0, micro-batch 0 */
            for (int32_t k = 0; k < r->n_ops; k++) {
                const prog_op *o = &r->ops[k];
                const bool layer = o->unit > 0 && o->unit < r->n_units - 1;
                if (o->kind != OP_FWD && o->kind != OP_BWD) continue;
                const bool bwd = o->kind == OP_BWD;
                assert_int_equal(o->ring_passes, layer ? (bwd ? cases[i].bwd_passes : 1) : 0);
                assert_int_equal(o->ring_bytes, layer ? blk : 0);
                assert_int_equal(o->buffer_bytes, layer ? (bwd ? 4 : 2) * blk : 0);
                passes += o->ring_passes;
                if (o->step == 0 && o->mb == 0) *(bwd ? &bwd_s : &fwd_s) += o->seconds;
            }
            /* the ring's passes hide behind the attention core as in the closed form: with
             * no data-parallel traffic inside the micro-batches (ZeRO-0/1), a micro-batch's
             * fwd and bwd ops take eval's per-micro-batch times, exposed cp time included */
            if (cases[i].zero <= 1) {
                assert_true(e.heavy.time.exposed[GROUP_CP] > 0);
                if (fabs(fwd_s - e.heavy.time.f) > 1e-9 * e.heavy.time.f ||
                    fabs(bwd_s - e.heavy.time.b - e.heavy.time.w) > 1e-9 * bwd_s)
                    fail_msg("cp: fwd %.12g s, bwd %.12g s; eval %.12g, %.12g", fwd_s, bwd_s,
                             e.heavy.time.f, e.heavy.time.b + e.heavy.time.w);
            }
            /* 2 steps x 2 micro-batches x 4 layers x (1 + bwd) passes */
            assert_int_equal(passes, 2 * 2 * 4 * (1 + cases[i].bwd_passes));
            /* the replay counts them as the cp group's sends, as comm.c does per step */
            for (int32_t k = 0; k < rp->n_steps; k++)
                assert_int_equal(rp->steps[k].sent_bytes[GROUP_CP], e.heavy.comm_bytes[GROUP_CP]);
            assert_int_equal(e.heavy.comm_bytes[GROUP_CP], passes / 2 * blk);
            int64_t calls = 0, bytes = 0;
            double secs = 0;
            for (int k = 0; k < rp->n_colls; k++)
                if (rp->colls[k].group == GROUP_CP) {
                    assert_int_equal(rp->colls[k].coll, COLL_SEND);
                    calls += rp->colls[k].calls, bytes += rp->colls[k].bytes;
                    secs += rp->colls[k].seconds;
                }
            assert_int_equal(calls, passes);
            assert_int_equal(bytes, passes * blk);
            /* the passes' seconds: eval's cp time (exposed + hidden) per micro-batch, x 2 x 2 */
            const double cp_s = 4 * (e.heavy.time.exposed[GROUP_CP] + e.heavy.time.hidden[GROUP_CP]);
            if (!(secs > 0) || fabs(secs - cp_s) > 1e-9 * cp_s)
                fail_msg("cp: the ring's seconds %.12g, eval %.12g", secs, cp_s);
            /* the states are sharded over dp x cp = 4, as eval's; activations of 128 tokens */
            assert_int_equal(rp->steps[0].end_bytes[MEM_PARAMS], e.heavy.params);
            assert_int_equal(rp->steps[0].end_bytes[MEM_OPTIMIZER], e.heavy.optimizer);
            if (!strcmp(cases[i].recompute, "none"))
                assert_int_equal(rp->peak[MEM_ACTIVATIONS].bytes, e.heavy.activations);
            /* the ring's 4 blocks in a backward (ZeRO-3 adds a gathered unit and its gradient) */
            const int64_t unit = r->units[1].elems * (2 + 2);
            assert_int_equal(rp->peak[MEM_BUFFERS].bytes,
                             4 * blk + (cases[i].zero == 3 ? unit : 0));
        }
        /* the JSON keeps the ring's fields */
        program b;
        ps_err err = {{0}};
        const char *path = tmp_path("cp.json");
        if (program_write_json(&p, path, &err)) fail_msg("write: %s", err.msg);
        if (program_load_json(path, &b, &err)) fail_msg("load: %s", err.msg);
        compare_programs(&p, &b);
        program_free(&b);
        if (i == 0) { /* passes beyond 3 (cp - 1), or passes without bytes, are refused */
            tu_contains(load_error(&p, "\"passes\": 1", "\"passes\": 4"),
                        "expected passes in [0, 3] (3 x (cp - 1), cp = 2), found 4", NULL);
            tu_contains(load_error(&p, "\"ring\": 65536", "\"ring\": 0"),
                        "expected ring bytes exactly with ring passes", NULL);
        }
        replay_free(&rr);
        program_free(&p);
        free(s);
    }
}

/* ---- the train: section and the runtime's model fields ----------------------------------- */

static void test_train_section(void **state) {
    (void)state;
    const char *base = "model: tiny-1m\ncluster: local-cpu\ngpus: 1\nparallel: {dp: 1}\n"
                       "batch: {global: 1, micro: 1, seq: 64}\nrecompute: none\n"
                       "precision: fp32\noptimizer: adamw\n";
    char text[1024];
    plan_spec *s = tu_plan(base);
    assert_int_equal(s->train.steps, 10);
    assert_int_equal(s->train.seed, 1234);
    assert_true(s->train.lr == 1.0e-3 && s->train.beta1 == 0.9 && s->train.beta2 == 0.95);
    assert_true(s->train.eps == 1.0e-8 && s->train.weight_decay == 0.1);
    assert_string_equal(s->train.data, "synthetic");
    assert_true(s->model.norm_eps == 1e-5 && s->model.rope_theta == 10000);
    program p;
    emit_ok(s, 4, &p); /* the argument wins over train.steps */
    assert_int_equal(p.steps, 4);
    assert_int_equal(p.data, DATA_SYNTHETIC);
    assert_true(p.norm_eps == 1e-5 && p.rope_theta == 10000);
    program_free(&p);
    free(s);
    snprintf(text, sizeof text, "%strain: {steps: 3, seed: 9, lr: 3.0e-4, betas: [0.8, 0.99], "
                                "eps: 1.0e-6, weight_decay: 0, data: no/such/dir}\n", base);
    s = tu_plan(text); /* the data path need not exist at plan load */
    assert_int_equal(s->train.steps, 3);
    assert_true(s->train.lr == 3.0e-4 && s->train.beta1 == 0.8 && s->train.beta2 == 0.99);
    assert_true(s->train.eps == 1.0e-6 && s->train.weight_decay == 0);
    emit_ok(s, s->train.steps, &p);
    assert_int_equal(p.data, DATA_TEXT);
    assert_string_equal(p.data_path, "no/such/dir");
    assert_int_equal(p.seed, 9);
    program_free(&p);
    free(s);
    const struct {
        const char *train, *frags[3];
    } bad[] = {
        {"{lr: -1}", {"bad.yaml:9:13: train.lr: ", "expected a number in (0, 1000], found -1", NULL}},
        {"{lr: 1e4}", {"train.lr: ", "expected a number in (0, 1000], found 1e4", NULL}},
        {"{weight_decay: 2}", {"train.weight_decay: ", "expected a number in [0, 1], found 2", NULL}},
        {"{betas: [0.9, 1.0]}", {"train.betas[1]", "expected a number in [0, 1), found \"1.0\"", NULL}},
        {"{betas: 0.9}", {"train.betas", "expected two numbers", NULL}},
        {"{steps: 0}", {"train.steps", "expected an integer from 1", NULL}},
        {"{eps: 0}", {"train.eps", "expected a number in (0, 1], found 0", NULL}},
        {"{data: \"\"}", {"train.data", "found an empty value", NULL}},
        {"{data: }", {"train.data", "found an empty value", NULL}},
        {"{lrr: 1}", {"bad.yaml:9:9: train.lrr: unknown key", "did you mean 'lr'?", NULL}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "%strain: %s\n", base, bad[i].train);
        const char *msg = tu_plan_error(text);
        for (int k = 0; bad[i].frags[k]; k++) tu_contains(msg, bad[i].frags[k], NULL);
    }
}

static void test_model_runtime_fields(void **state) {
    (void)state;
    plan_spec *s = tu_plan(
        "model: {name: m, layers: 2, hidden: 64, heads: 4, kv_heads: 2, ffn_hidden: 128,\n"
        "        vocab: 256, tied_embeddings: false, norm: rmsnorm, mlp: swiglu,\n"
        "        attention: flash, dropout: 0, position: rope, bias: false,\n"
        "        norm_eps: 1.0e-6, rope_theta: 500000}\n"
        "cluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\nbatch: {global: 1, micro: 1, seq: 64}\n"
        "recompute: none\nprecision: bf16-mixed\noptimizer: adamw\n");
    assert_true(s->model.norm_eps == 1.0e-6 && s->model.rope_theta == 500000);
    free(s);
    model_spec m;
    ps_err err = {{0}};
    if (model_load_file("tests/data/hf/llama3-8b/config.json", &m, &err)) fail_msg("%s", err.msg);
    assert_true(m.norm_eps == 1e-5 && m.rope_theta == 500000.0);
    tu_contains(tu_plan_error("model: {name: m, layers: 2, hidden: 64, heads: 4, kv_heads: 2,\n"
                              "  ffn_hidden: 128, vocab: 256, tied_embeddings: false,\n"
                              "  norm: rmsnorm, mlp: swiglu, attention: flash, dropout: 0,\n"
                              "  position: rope, bias: false, norm_eps: 0}\n"
                              "cluster: dgx-h100\nparallel: {dp: 1}\n"
                              "batch: {global: 1, micro: 1, seq: 64}\nrecompute: none\n"
                              "precision: bf16-mixed\noptimizer: adamw\n"),
                "bad.yaml:4:42: norm_eps: expected a positive number, found 0", NULL);
}

/* ---- tensor and sequence parallelism -------------------------------------------------- */

/* The replay's count of one (group tp, collective, phase): calls and sum of S. */
static void tp_colls(const replay_role *r, comm_coll c, comm_phase ph, int64_t *calls,
                     int64_t *bytes) {
    *calls = *bytes = 0;
    for (int i = 0; i < r->n_colls; i++)
        if (r->colls[i].group == GROUP_TP && r->colls[i].coll == c && r->colls[i].phase == ph)
            *calls += r->colls[i].calls, *bytes += r->colls[i].bytes;
}

/* tiny-1m (L 4, h 128, 4 heads and 2 kv heads of 32, f 512, V 256) on tp 2,
 * fp32, one micro-batch of 256 tokens, worked out by hand: each tp rank's
 * units (Megatron-LM's split), and per step the tp collectives the replay
 * counts (T = 256 x 128 x 4 = 131,072 bytes; the cross-entropy's per-token
 * fp32 statistics 1,024; sp's norm gradients 2 x 128 x 4 per layer, 128 x 4
 * for the head). comm.c's closed form sends the same bytes per step. */
static void test_tp_by_hand(void **state) {
    (void)state;
    const int64_t T = 131072;
    for (int sp = 0; sp < 2; sp++) {
        char text[512];
        snprintf(text, sizeof text,
                 "model: tiny-1m\ncluster: dgx-h100\ngpus: 2\n"
                 "parallel: {dp: 1, tp: 2, sp: %s}\nbatch: {global: 1, micro: 1, seq: 256}\n"
                 "recompute: none\nprecision: fp32\noptimizer: adamw\n", sp ? "true" : "false");
        plan_spec *s = tu_plan(text);
        program p;
        replay_result rr;
        eval_result e;
        emit_ok(s, 2, &p);
        check_ok(&p);
        replay_ok(&p, &rr);
        eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &e, NULL);
        assert_int_equal(p.n_roles, 2);
        for (int32_t k = 0; k < 2; k++) {
            const prog_role *r = &p.roles[k];
            assert_int_equal(r->tp_rank, k);
            assert_int_equal(r->ranks[0], k); /* placement tp innermost */
            /* embed 128 rows x 128; a layer: 2 norms, q 64 + k 32 + v 32 rows and o 64
             * columns of 128, w1, w3 256 rows and w2 256 columns of 128; head: norm + 128 rows */
            assert_int_equal(r->units[0].elems, 16384);
            for (int u = 1; u <= 4; u++) assert_int_equal(r->units[u].elems, 123136);
            assert_int_equal(r->units[5].elems, 16512);
            assert_int_equal(r->flat_elems, 525440);
            const replay_role *rp = &rr.roles[k];
            int64_t n, b;
            if (!sp) {
                tp_colls(rp, COLL_ALL_REDUCE, COMM_FWD, &n, &b); /* embed 1, layers 2 each, loss 3 */
                assert_int_equal(n, 2 * 12), assert_int_equal(b, 2 * (9 * T + 3 * 1024));
                tp_colls(rp, COLL_ALL_REDUCE, COMM_BWD, &n, &b); /* layers 2 each, head 1 */
                assert_int_equal(n, 2 * 9), assert_int_equal(b, 2 * 9 * T);
                assert_int_equal(rp->steps[0].sent_bytes[GROUP_TP], 18 * T + 3 * 1024);
            } else {
                tp_colls(rp, COLL_ALL_GATHER, COMM_FWD, &n, &b); /* layers 2 each, head 1 */
                assert_int_equal(n, 2 * 9), assert_int_equal(b, 2 * 9 * T);
                tp_colls(rp, COLL_REDUCE_SCATTER, COMM_FWD, &n, &b); /* embed 1, layers 2 each */
                assert_int_equal(n, 2 * 9), assert_int_equal(b, 2 * 9 * T);
                tp_colls(rp, COLL_ALL_REDUCE, COMM_FWD, &n, &b);
                assert_int_equal(n, 2 * 3), assert_int_equal(b, 2 * 3 * 1024);
                /* layers: 2 output-gradient gathers, 2 input re-gathers; head 1, embed 1 */
                tp_colls(rp, COLL_ALL_GATHER, COMM_BWD, &n, &b);
                assert_int_equal(n, 2 * 18), assert_int_equal(b, 2 * 18 * T);
                tp_colls(rp, COLL_REDUCE_SCATTER, COMM_BWD, &n, &b);
                assert_int_equal(n, 2 * 9), assert_int_equal(b, 2 * 9 * T);
                tp_colls(rp, COLL_ALL_REDUCE, COMM_BWD, &n, &b);
                assert_int_equal(n, 2 * 5), assert_int_equal(b, 2 * (4 * 1024 + 512));
                /* a ring all-gather / reduce-scatter on 2 ranks sends S / 2 */
                assert_int_equal(rp->steps[0].sent_bytes[GROUP_TP],
                                 45 * T / 2 + 3 * 1024 + 4 * 1024 + 512);
            }
            assert_int_equal(rp->steps[0].sent_bytes[GROUP_TP], e.heavy.comm_bytes[GROUP_TP]);
            /* the tp seconds are part of the op's */
            for (int32_t i = 0; i < r->n_ops; i++) {
                const prog_op *o = &r->ops[i];
                double t = 0;
                for (int c = 0; c < PROG_TP_COLLS; c++) t += o->tp_seconds[c];
                assert_true(t <= o->seconds);
                if (o->kind == OP_FWD && o->unit == 1) assert_true(t > 0);
            }
        }
        /* the closed form's parameter count per tp rank (params.c) */
        params_count pc;
        params_count_rank(&s->model.cfg, 2, &pc);
        assert_int_equal(p.roles[0].flat_elems, pc.total);
        replay_free(&rr);
        program_free(&p);
        free(s);
    }
}

/* tp 2 over a grid (dp 1/2, ZeRO 0-3, sp, recompute none/full, both
 * precisions, 2 micro-batches): the states, activations and Adam states of
 * the closed form, every role the same; with dp 1 the step time too (the tp
 * collectives block compute in both); tp bytes per step comm.c's. */
static void test_tp_grid_agrees_with_closed_form(void **state) {
    (void)state;
    int n = 0;
    for (int64_t dp = 1; dp <= 2; dp++)
        for (int64_t z = 0; z <= 3; z++)
            for (int sp = 0; sp < 2; sp++)
                for (int ri = 0; ri < 2; ri++)
                    for (int pi = 0; pi < 2; pi++) {
                        char text[512];
                        snprintf(text, sizeof text,
                                 "model: tiny-1m\ncluster: dgx-h100\ngpus: %lld\n"
                                 "parallel: {dp: %lld, tp: 2, sp: %s, zero: %lld}\n"
                                 "batch: {global: %lld, micro: 1, seq: 256}\nrecompute: %s\n"
                                 "precision: %s\noptimizer: adamw\n",
                                 (long long)(2 * dp), (long long)dp, sp ? "true" : "false",
                                 (long long)z, (long long)(2 * dp), ri ? "full" : "none",
                                 pi ? "fp32" : "bf16-mixed");
                        plan_spec *s = tu_plan(text);
                        program p;
                        replay_result rr;
                        eval_result e;
                        emit_ok(s, 2, &p);
                        check_ok(&p);
                        replay_ok(&p, &rr);
                        eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &e, NULL);
                        check_states(&p, &rr, &e);
                        check_activations(s, &p, &rr, &e);
                        check_adam(&p, &rr);
                        check_time(s, &rr, &e);
                        check_other_kernels(s);
                        for (int32_t k = 0; k < rr.roles[0].n_steps; k++)
                            assert_int_equal(rr.roles[0].steps[k].sent_bytes[GROUP_TP],
                                             e.heavy.comm_bytes[GROUP_TP]);
                        assert_int_equal(rr.roles[1].steps[0].end_bytes[MEM_PARAMS],
                                         rr.roles[0].steps[0].end_bytes[MEM_PARAMS]);
                        assert_int_equal(rr.roles[1].peak_total.bytes, rr.roles[0].peak_total.bytes);
                        replay_free(&rr);
                        program_free(&p);
                        free(s);
                        n++;
                    }
    assert_int_equal(n, 64);
}

/* The loader's tp rules: tp divides heads, kv heads and the MLP width
 * (and micro * seq under sp), sp needs tp > 1, and tp collectives appear
 * only with tp > 1; the JSON round trip keeps the tp fields. */
static void test_tp_load(void **state) {
    (void)state;
    plan_spec *s = tu_plan("model: tiny-1m\ncluster: dgx-h100\ngpus: 2\n"
                           "parallel: {dp: 1, tp: 2, sp: true}\n"
                           "batch: {global: 1, micro: 1, seq: 256}\n"
                           "recompute: full\nprecision: bf16-mixed\noptimizer: adamw\n");
    program p, q;
    ps_err err = {{0}};
    emit_ok(s, 1, &p);
    const char *path = tmp_path("tp.json");
    if (program_write_json(&p, path, &err) || program_load_json(path, &q, &err))
        fail_msg("%s", err.msg);
    compare_programs(&p, &q);
    assert_true(q.sp);
    program_free(&q);
    tu_contains(header_error(&p, "tp", "3"), "header.parallel.world", NULL);
    program_free(&p);
    free(s);
    /* kv_heads 2 on tp 4: world and roles agree, the split does not */
    s = tu_plan("model: tiny-1m\ncluster: dgx-h100\ngpus: 2\nparallel: {dp: 1, tp: 2}\n"
                "batch: {global: 1, micro: 1, seq: 256}\nrecompute: none\nprecision: fp32\n"
                "optimizer: adamw\n");
    emit_ok(s, 1, &p);
    tu_contains(header_error(&p, "kv_heads", "1"),
                "header.parallel.tp: expected a divisor of the model's kv_heads (1), found 2", NULL);
    tu_contains(header_error(&p, "ffn_hidden", "511"),
                "header.parallel.tp: expected a divisor of the model's ffn_hidden (511), found 2",
                NULL);
    /* a tp collective on a tp = 1 program */
    free(s);
    program_free(&p);
    s = tu_plan("model: tiny-1m\ncluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\n"
                "batch: {global: 1, micro: 1, seq: 256}\nrecompute: none\nprecision: fp32\n"
                "optimizer: adamw\n");
    emit_ok(s, 1, &p);
    for (int32_t i = 0; i < p.roles[0].n_ops; i++)
        if (p.roles[0].ops[i].kind == OP_FWD) {
            p.roles[0].ops[i].tp_calls[COLL_ALL_REDUCE] = 1;
            p.roles[0].ops[i].tp_bytes[COLL_ALL_REDUCE] = 4;
            break;
        }
    int32_t role, op;
    assert_int_equal(program_check(&p, &role, &op, &err), -1);
    tu_contains(err.msg, "expected no tensor-parallel collectives with tp = 1, found tp_all-reduce",
                NULL);
    program_free(&p);
    free(s);
}

/* Mixture of experts: tiny-moe's flat space, saved bytes and all-to-alls by hand
 * (docs/plan-format.md "Mixture of experts"), and what the loader refuses. */
static void test_moe_emit_by_hand(void **state) {
    (void)state;
    const char *yaml = "model: tiny-moe\ncluster: local-cpu\ngpus: %d\n"
                       "parallel: {dp: %d, ep: %d}\nbatch: {global: 8, micro: 2, seq: 32}\n"
                       "recompute: %s\nprecision: fp32\noptimizer: adamw\n"
                       "moe: {pad_to_capacity: true}\n";
    char text[512];
    for (int ep = 1; ep <= 2; ep++) {
        snprintf(text, sizeof text, yaml, ep, ep, ep, "none");
        plan_spec *s = tu_plan(text);
        program p;
        emit_ok(s, 1, &p);
        check_ok(&p);
        const prog_role *r = &p.roles[0];
        /* layer: norms 2 x 64, wq 64x64, wk, wv 32x64, wo 64x64, shared 3 x 32x64,
         * router 8x64, then 8 / ep experts of 3 x 32x64 */
        const int64_t layer = 128 + 4096 + 2048 + 2048 + 4096 + 6144 + 512 + 8 / ep * 6144;
        assert_int_equal(r->units[1].elems, layer);
        assert_int_equal(r->flat_elems, 256 * 64 + 2 * layer + 64 + 256 * 64);
        assert_int_equal(p.expert_capacity, 64); /* dropless: the micro-batch's tokens */
        /* saved on top of the dense layer: probs 64x8x4, gates 64x2x4, ids and slots
         * 2 x 64x2x4, counts 8x8, experts' in/out 2 x 512x64x4, a/b/g 3 x 512x32x4 */
        const int64_t extra = 2048 + 512 + 1024 + 64 + 2 * 131072 + 3 * 65536;
        assert_int_equal(program_moe_saved_bytes(&p), extra);
        /* temporaries: forward y 64x64, logits 64x8, dispatch 512x64 (fp32); backward
         * dy, dx, dxn 3 x 64x64, gates' gradient 64x2, then outputs' gradients sent and
         * received 2 x 512x64 with SwiGLU gradients 3 x 512x32 (the largest) */
        assert_int_equal(program_moe_workspace_bytes(&p, false), 4 * (4096 + 512 + 32768));
        assert_int_equal(program_moe_workspace_bytes(&p, true),
                         4 * (3 * 4096 + 128 + 2 * 32768 + 3 * 16384));
        int64_t calls = 0, bytes = 0, sent = 0;
        for (int32_t i = 0; i < r->n_ops; i++) {
            const prog_op *o = &r->ops[i];
            calls += o->ep_calls, bytes += o->ep_bytes, sent += o->ep_sent;
            /* no dp reduction touches a layer's experts under ep */
            if (ep > 1 && o->kind == OP_COLL)
                for (int u = 1; u <= 2; u++) {
                    const int64_t hi = r->units[u].offset + r->units[u].elems, lo = hi - 4 * 6144;
                    assert_true(o->offset + o->elems <= lo || o->offset >= hi);
                }
        }
        /* 2 micro-batches a rank x 2 layers x (2 + 2), each of 8 x 64 x 64 x 4 bytes, half
         * of it sent */
        assert_int_equal(calls, ep > 1 ? 16 : 0);
        assert_int_equal(bytes, ep > 1 ? 16 * 131072 : 0);
        assert_int_equal(sent, ep > 1 ? 16 * 65536 : 0);
        replay_result rr;
        replay_ok(&p, &rr);
        int64_t a2a = 0;
        for (int i = 0; i < rr.roles[0].n_colls; i++)
            if (rr.roles[0].colls[i].group == GROUP_EP &&
                rr.roles[0].colls[i].coll == COLL_ALL_TO_ALL)
                a2a += rr.roles[0].colls[i].bytes;
        assert_int_equal(a2a, bytes);
        if (ep > 1) { /* the closed form counts the same padded all-to-alls (cost/moe.c) */
            eval_result er;
            eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &er, NULL);
            int64_t cf_calls = 0, cf_sent = 0;
            for (int i = 0; i < er.comm.n; i++)
                if (er.comm.e[i].group == GROUP_EP) {
                    assert_int_equal(er.comm.e[i].bytes_per_call, 131072);
                    cf_calls += er.comm.e[i].calls, cf_sent += er.comm.e[i].bytes_sent;
                }
            assert_int_equal(cf_calls, calls);
            assert_int_equal(cf_sent, sent);
        }
        if (ep > 1) {
            /* a dp reduction over the experts is refused */
            prog_op *o = NULL;
            for (int32_t i = 0; i < r->n_ops && !o; i++)
                if (r->ops[i].kind == OP_COLL) o = &r->ops[i];
            assert_non_null(o);
            o->offset = r->units[2].offset + r->units[2].elems - 10, o->elems = 10;
            o->bytes = 40, o->sent_bytes = comm_bytes_sent(o->coll, 2, 40);
            ps_err err = {{0}};
            int32_t role, op;
            assert_int_equal(program_check(&p, &role, &op, &err), -1);
            tu_contains(err.msg, "reduces the routed experts' gradients of layer.1 over dp", NULL);
            tu_contains(header_error(&p, "ep", "4"),
                        "header.parallel.ep: expected a divisor of dp (2) and of experts (8)", NULL);
        }
        replay_free(&rr);
        program_free(&p);
        free(s);
    }
    /* full recompute: two more all-to-alls in each layer's backward */
    snprintf(text, sizeof text, yaml, 2, 2, 2, "full");
    plan_spec *s = tu_plan(text);
    program p;
    emit_ok(s, 1, &p);
    check_ok(&p);
    for (int32_t i = 0; i < p.roles[0].n_ops; i++)
        if (p.roles[0].ops[i].kind == OP_BWD && p.roles[0].ops[i].unit == 1)
            assert_int_equal(p.roles[0].ops[i].ep_calls, 4);
    program_free(&p);
    free(s);
    /* a MoE model the runtime does not build, named with its field */
    tu_contains(emit_error("model:\n  name: m\n  layers: 2\n  hidden: 64\n  heads: 4\n"
                           "  kv_heads: 2\n  ffn_hidden: 128\n  vocab: 256\n"
                           "  tied_embeddings: false\n  norm: rmsnorm\n  mlp: swiglu\n"
                           "  attention: flash\n  position: rope\n  bias: false\n  dropout: 0.0\n"
                           "  experts: 8\n  experts_per_token: 2\n  shared_experts: 1\n"
                           "  expert_ffn_hidden: 32\n  dense_layers: 1\n"
                           "cluster: local-cpu\ngpus: 1\nparallel: {dp: 1}\n"
                           "batch: {global: 2, micro: 2, seq: 32}\nrecompute: none\n"
                           "precision: fp32\noptimizer: adamw\nmoe: {pad_to_capacity: true}\n"),
                "dense_layers", "expected 0, found 1 (model m)", NULL);
    tu_contains(emit_error("model: tiny-moe\ncluster: local-cpu\ngpus: 2\n"
                           "parallel: {dp: 1, pp: 2}\npipeline: {schedule: zero-bubble}\n"
                           "batch: {global: 8, micro: 2, seq: 32}\n"
                           "recompute: none\nprecision: fp32\noptimizer: adamw\nmoe: {pad_to_capacity: true}\n"),
                "pipeline.schedule", "zero-bubble", NULL);
    /* the runtime pads to capacity: a plan that does not say so is refused */
    tu_contains(emit_error("model: tiny-moe\ncluster: local-cpu\ngpus: 2\n"
                           "parallel: {dp: 2, ep: 2}\nbatch: {global: 8, micro: 2, seq: 32}\n"
                           "recompute: none\nprecision: fp32\noptimizer: adamw\n"),
                "moe.pad_to_capacity", "expected true", "found false", NULL);
    /* ep 2 of dp 4: each layer's experts are all-reduced over the edp group of 2 */
    snprintf(text, sizeof text, yaml, 4, 4, 2, "none");
    s = tu_plan(text);
    emit_ok(s, 1, &p);
    check_ok(&p);
    int64_t edp_bytes = 0;
    for (int32_t i = 0; i < p.roles[0].n_ops; i++) {
        const prog_op *o = &p.roles[0].ops[i];
        if (o->kind != OP_COLL || o->group != GROUP_EDP) continue;
        assert_int_equal(o->coll, COLL_ALL_REDUCE);
        assert_int_equal(o->sent_bytes, o->bytes); /* 2 (n-1)/n of S over 2 ranks */
        edp_bytes += o->bytes;
    }
    assert_int_equal(edp_bytes, 2 * 4 * 6144 * 4); /* 2 layers x 4 held experts, fp32 */
    program_free(&p);
    free(s);
}

/* ZeRO-1 and ZeRO-2 with ep 2 of dp 4 (edp 2): the dense part's states sharded over dp,
 * the held experts' over edp (Megatron-Core's distributed optimizer), as the closed form
 * (states_compute_moe, comm.c's dp_comm over GROUP_EDP) predicts, byte for byte. */
static void test_moe_zero_by_hand(void **state) {
    (void)state;
    const char *yaml = "model: tiny-moe\ncluster: local-cpu\ngpus: 4\n"
                       "parallel: {dp: 4, ep: 2, zero: %d}\nbatch: {global: 16, micro: 2, seq: 32}\n"
                       "recompute: none\nprecision: fp32\noptimizer: adamw\n"
                       "moe: {pad_to_capacity: true}\n";
    /* ep 2: a layer 43,648 elements, 4 held experts of 6,144 at its end */
    const int64_t flat = 16384 + 2 * 43648 + 16448, experts = 2 * 4 * 6144;
    const int64_t dense = flat - experts, dsh = dense / 4, esh = experts / 2;
    assert_int_equal(dense % 4, 0);
    for (int zero = 1; zero <= 2; zero++) {
        char text[512];
        snprintf(text, sizeof text, yaml, zero);
        plan_spec *s = tu_plan(text);
        program p;
        emit_ok(s, 1, &p);
        check_ok(&p);
        const prog_role *r = &p.roles[0];
        assert_int_equal(r->flat_elems, flat);
        assert_int_equal(r->unit_experts, 4 * 6144);
        assert_int_equal(r->shard_elems, dsh);
        assert_int_equal(r->expert_shard, esh);
        /* dp rank 3 (edp rank 1): its dense shard first, then edp rank 1's experts */
        assert_int_equal(program_shard_index(&p, r, 3, flat - 1), dsh - 1); /* the head's last */
        assert_int_equal(program_shard_index(&p, r, 0, dsh - 1), dsh - 1); /* before layer.0's experts */
        const int64_t e1 = r->units[2].offset + r->units[2].elems - 4 * 6144; /* layer.1's */
        assert_int_equal(program_shard_index(&p, r, 3, e1), dsh);
        assert_int_equal(program_shard_index(&p, r, 1, e1), -1);
        assert_int_equal(program_shard_index(&p, r, 2, e1), dsh); /* edp rank 1 too */
        replay_result rr;
        replay_ok(&p, &rr);
        eval_result er;
        eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &er, NULL);
        const int64_t *end = rr.roles[0].steps[0].end_bytes;
        assert_int_equal(end[MEM_PARAMS], flat * 4);
        assert_int_equal(end[MEM_GRADS], zero == 2 ? (dsh + esh) * 4 : flat * 4);
        assert_int_equal(end[MEM_OPTIMIZER], 2 * (dsh + esh) * 4);
        assert_int_equal(end[MEM_PARAMS], er.heavy.params);
        assert_int_equal(end[MEM_GRADS], er.heavy.grads);
        assert_int_equal(end[MEM_MASTER], er.heavy.master);
        assert_int_equal(end[MEM_OPTIMIZER], er.heavy.optimizer);
        /* every dp and edp collective: the bytes (S) and what a rank sends, as the
         * closed form's; the calls by hand (a bucket or a unit part each) */
        for (int g = GROUP_DP; g <= GROUP_EDP; g += GROUP_EDP - GROUP_DP)
            for (int c = COLL_ALL_REDUCE; c <= COLL_ALL_GATHER; c++) {
                int64_t calls = 0, bytes = 0, sent = 0, cf_bytes = 0, cf_sent = 0;
                for (int i = 0; i < rr.roles[0].n_colls; i++) {
                    const replay_coll *k = &rr.roles[0].colls[i];
                    if ((int)k->group == g && (int)k->coll == c)
                        calls += k->calls, bytes += k->bytes, sent += k->sent_bytes;
                }
                for (int i = 0; i < er.comm.n; i++) {
                    const comm_entry *e = &er.comm.e[i];
                    if ((int)e->group == g && (int)e->coll == c)
                        cf_bytes += e->calls * e->bytes_per_call, cf_sent += e->bytes_sent;
                }
                assert_int_equal(bytes, cf_bytes);
                assert_int_equal(sent, cf_sent);
                const bool edp = g == GROUP_EDP;
                /* ZeRO-1: a bucket per segment (embed + layer.0's dense part, layer.1's,
                 * the head's; each layer's experts); ZeRO-2: each micro-batch (2) a
                 * reduce-scatter per unit part; both gather the segments once */
                const int64_t want = c == COLL_ALL_REDUCE   ? 0
                                     : c == COLL_ALL_GATHER ? (edp ? 2 : 3)
                                     : zero == 1            ? (edp ? 2 : 3)
                                                            : 2 * (edp ? 2 : 4);
                assert_int_equal(calls, want);
                if (c == COLL_REDUCE_SCATTER)
                    assert_int_equal(bytes, (zero == 2 ? 2 : 1) * (edp ? experts : dense) * 4);
            }
        /* the loader derives the two spaces again (emit -> write -> load is lossless) */
        program q;
        ps_err err = {{0}};
        const char *path = tmp_path("moe-zero.json");
        if (program_write_json(&p, path, &err)) fail_msg("write: %s", err.msg);
        if (program_load_json(path, &q, &err)) fail_msg("load: %s", err.msg);
        compare_programs(&p, &q);
        assert_int_equal(q.roles[0].expert_shard, esh);
        program_free(&q);
        /* ZeRO-3 with experts is not run: the loader refuses it at the header's ep */
        tu_contains(header_error(&p, "zero", "3"), "header.parallel.ep",
                    "with zero 0, 1 or 2", "found 2 with zero 3", NULL);
        char from[64], to[64];
        snprintf(from, sizeof from, "\"shard_elems\": %lld", (long long)dsh);
        snprintf(to, sizeof to, "\"shard_elems\": %lld", (long long)(flat / 4));
        tu_contains(load_error(&p, from, to), "roles[0].shard_elems",
                    "expected ceil(flat_elems less the routed experts / (dp*cp))", NULL);
        /* the parameter all-gather of layer.1's experts goes over edp; over dp it is refused */
        bool refused = false;
        for (int32_t i = 0; i < r->n_ops && !refused; i++) {
            prog_op *o = &r->ops[i];
            if (o->kind != OP_COLL || o->coll != COLL_ALL_GATHER || o->group != GROUP_EDP ||
                o->offset != e1)
                continue;
            o->group = GROUP_DP, o->sent_bytes = comm_bytes_sent(o->coll, 4, o->bytes);
            int32_t role, op;
            assert_int_equal(program_check(&p, &role, &op, &err), -1);
            tu_contains(err.msg, "gathers the routed experts' parameters of layer.1 over dp",
                        "expected group edp", NULL);
            refused = true;
        }
        assert_true(refused);
        replay_free(&rr);
        program_free(&p);
        free(s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moe_emit_by_hand),
        cmocka_unit_test(test_moe_zero_by_hand),
        cmocka_unit_test(test_grid_agrees_with_closed_form),
        cmocka_unit_test(test_no_overlap_serialises),
        cmocka_unit_test(test_tiny_zero2_by_hand),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_replay_checks),
        cmocka_unit_test(test_load_checks_ops),
        cmocka_unit_test(test_load_accepts_other_orders),
        cmocka_unit_test(test_load_header_ranges), cmocka_unit_test(test_load_distill_header),
        cmocka_unit_test(test_load_header_quoted_number),
        cmocka_unit_test(test_load_text_robust),
        cmocka_unit_test(test_replay_events_by_hand),
        cmocka_unit_test(test_world_rank), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_train_section),
        cmocka_unit_test(test_model_runtime_fields),
        cmocka_unit_test(test_pipe_emit_order),
        cmocka_unit_test(test_pipe_inflight_matches_closed_form), cmocka_unit_test(test_pipe_workspace),
        cmocka_unit_test(test_pipe_json_round_trip),
        cmocka_unit_test(test_pipe_replay_is_the_schedule),
        cmocka_unit_test(test_pipe_replay_pairs),
        cmocka_unit_test(test_pipe_zero_bubble_parts),
        cmocka_unit_test(test_tp_by_hand), cmocka_unit_test(test_tp_load),
        cmocka_unit_test(test_tp_grid_agrees_with_closed_form),
        cmocka_unit_test(test_cp_emit_and_replay),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (tmpdir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
        if (system(cmd)) rc = rc ? rc : 1;
    }
    return rc;
}
