/* program_emit.c — lower a checked plan to an execution plan: the flat
 * parameter space, the buffers and the ordered ops of K training steps for
 * each rank role (see program.h; docs/plan-format.md §2–§3 give the layout
 * and the op order per ZeRO stage).
 *
 * Every number on an op comes from the module that owns its formula: buffer
 * sizes from states.c (program_buf_bytes), activation bytes from act.c,
 * compute seconds and FLOPs from kernel_time.c (through step_time's
 * time_ctx), collective sizes from comm.c and their seconds from coll_time.c.
 *
 * Scope: data parallelism with ZeRO 0-3, tensor parallelism (with or without
 * sequence parallelism: each role holds its tp rank's shard of every unit,
 * params.c's counts, and its fwd/bwd ops carry the tp collectives that run
 * inside them), gradient accumulation, recompute none/selective/full (op, gelu,
 * gelu+norm and custom lists are refused: cost model only), fp32
 * and bf16-mixed, AdamW, the Llama-style block.
 * Roles are one per (pipeline stage x tp rank x cp rank), their ranks laid
 * out by the plan's placement (program_ranks.c); with tp = pp = cp = 1 there
 * is one. Context parallelism: every cp rank's role runs the same ops on its
 * seq/cp tokens (the zig-zag chunks), its layers' fwd/bwd ops carrying the
 * ring's passes and buffers, gradients reduced over dp x cp. Pipeline
 * parallelism: each stage's ops in its schedule's order (emit_pipe.c). What
 * only the cost model evaluates is refused with where it was written
 * (refuse_training).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost/act.h"
#include "time/coll_time.h"
#include "cost/comm.h"
#include "cost/distill.h"
#include "time/distill_time.h"
#include "cost/infer.h"
#include "cost/moe.h"
#include "cost/params.h"
#include "spec/plan_check.h"
#include "program/emit_pipe.h"
#include "program/program_int.h"
#include "cost/states.h"
#include "cost/workspace.h"
#include "time/step_time.h"

typedef enum { UK_EMBED, UK_LAYER, UK_HEAD, UK_COUNT } unit_kind;

/* The load-balancing loss's weight: Switch Transformers' alpha = 10^-2 (Fedus et al.
 * 2021 §2.2), Megatron-LM's --moe-aux-loss-coeff in its MoE examples. */
#define MOE_AUX_ALPHA 0.01

/* What one op of a unit kind carries, per micro-batch. */
typedef struct {
    double fwd_s, bwd_s, fwd_flops, bwd_flops;
    double bwd_w_s, bwd_w_flops; /* the weight-gradient part (zero-bubble W), in bwd_s too */
    int64_t saved, transient, ws_fwd, ws_bwd; /* ws: workspace.c's op working set */
    int64_t ws_bwd_w, stash; /* zero-bubble: a layer's W working set, the stash B leaves it */
    bool recompute;
    /* context parallelism: ring passes and buffers of the fwd / bwd op ([0] / [1]) */
    int32_t ring_passes[2];
    int64_t ring_bytes, ring_buffers[2];
    double ring_s[2];
    prog_op tp[2]; /* the tensor-parallel collectives (tp_* fields) of the fwd, the bwd */
    prog_op ep[2]; /* a MoE layer's expert-parallel all-to-alls (ep_* fields) */
} unit_cost;

typedef struct {
    int64_t lo, hi; /* under ep within one segment: emit_coll picks dp or edp */
} range;

typedef struct {
    const plan_spec *s;
    const model_cfg *m;
    const cluster_cfg *c;
    const plan_cfg *p;
    const program *prog;
    prog_role *r;
    const distill_mem *dm; /* distillation's sizes (zero without) */
    int32_t cap;
    bool oom;
    bool too_long; /* PROGRAM_MAX_OPS reached */
    prog_op scratch;  /* written to when the op array cannot grow (oom is set) */
    int64_t d, mbs;   /* ZeRO's group (dp x cp), micro-batches per step */
    bool gather;      /* ZeRO-3 over d > 1: a unit's parameters are gathered for use */
    bool unit_grads;  /* ZeRO-2/3 over d > 1: a unit's gradient is reduce-scattered */
    unit_cost cost[UK_COUNT];
    ws_bytes ws;        /* workspace.c: each op's working set, the gradient stream */
    int64_t stream;     /* of it, what is live now (between the ops being emitted) */
    coll_link link;   /* the data-parallel group's */
    coll_link edp_link; /* the expert-data-parallel group's (ep < dp) */
    range *buckets;   /* ZeRO-0/1 gradient buckets, the top of the flat space first */
    int32_t n_buckets;
    double optim_s;
    int64_t optim_elems;
    emit_pipe pipe;   /* the stage's units and schedule (emit_pipe.h) */
    int64_t p2p_bytes; /* one activation (or its gradient) between stages */
    double p2p_s;
    prog_bwd_part layer_part; /* what emit_backward runs of each layer (zero-bubble: B or W) */
} emit_ctx;

/* ---- what the execution plan cannot express yet (tp, pp and cp all lower) ---------- */

static int not_llama(const model_spec *ms, const ps_loc *loc, const char *field,
                     const char *expected, const char *found, ps_err *err) {
    return ps_err_at(err, loc, field,
                     "the execution plan builds only the Llama-style block (untied embeddings, "
                     "RMSNorm, SwiGLU, flash attention, RoPE, no biases, no dropout): expected "
                     "%s, found %s (model %s)",
                     expected, found, ms->name);
}

/* The runtime's MoE layer (docs/plan-format.md "Mixture of experts"): every layer a
 * MoE layer with at least one shared expert, softmax top-k routing without a bias,
 * standard attention, no multi-token prediction. */
static int refuse_moe(const model_spec *ms, ps_err *err) {
    const model_cfg *m = &ms->cfg;
    const model_locs *l = &ms->locs;
    char found[32];
    const struct {
        bool bad;
        const ps_loc *loc;
        const char *field, *expected;
        int64_t v;
    } r[] = {
        {m->experts > 0 && m->dense_layers > 0, &l->dense_layers, "dense_layers", "0", m->dense_layers},
        {m->experts > 0 && m->shared_experts < 1, &l->shared_experts, "shared_experts", "at least 1",
         m->shared_experts},
        {m->router_bias, &l->router_bias, "router_bias", "false", 1},
        {m->qk_norm, &l->qk_norm, "qk_norm", "false", 1},
        {model_is_mla(m), &l->kv_lora_rank, "kv_lora_rank", "0 (standard attention)", m->kv_lora_rank},
        {m->mtp_layers > 0, &l->mtp_layers, "mtp_layers", "0", m->mtp_layers},
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (r[i].bad) {
            snprintf(found, sizeof found, "%lld", (long long)r[i].v);
            return ps_err_at(err, r[i].loc, r[i].field,
                             "the execution plan builds a MoE model whose every layer has softmax "
                             "top-k routing and shared experts: expected %s, found %s (model %s)",
                             r[i].expected, found, ms->name);
        }
    return 0;
}

static int refuse_model(const model_spec *ms, ps_err *err) {
    const model_cfg *m = &ms->cfg;
    const model_locs *l = &ms->locs;
    char found[32];
    if (m->tied_embeddings)
        return not_llama(ms, &l->tied_embeddings, "tied_embeddings", "false", "true", err);
    if (m->norm != NORM_RMSNORM)
        return not_llama(ms, &l->norm, "norm", "rmsnorm", model_norm_names[m->norm], err);
    if (m->mlp != MLP_SWIGLU)
        return not_llama(ms, &l->mlp, "mlp", "swiglu", model_mlp_names[m->mlp], err);
    if (m->attention != ATTN_FLASH)
        return not_llama(ms, &l->attention, "attention", "flash",
                         model_attn_names[m->attention], err);
    if (m->position != POS_ROPE)
        return not_llama(ms, &l->position, "position", "rope", model_pos_names[m->position], err);
    if (m->bias != BIAS_NONE)
        return not_llama(ms, &l->bias, "bias", "false", model_bias_names[m->bias], err);
    snprintf(found, sizeof found, "%g", m->dropout);
    if (m->dropout > 0) return not_llama(ms, &l->dropout, "dropout", "0", found, err);
    return refuse_moe(ms, err);
}

/* Where a refused field was written, else the plan itself (a default, a profile). */
static const ps_loc *field_loc(const plan_spec *s, const ps_loc *field) {
    return field->file[0] ? field : &s->locs.self;
}

/* Logit distillation (docs/distillation.md "Running it"): the runtime runs the
 * teacher with the inference engine (runtime/rt_gen.h) on the student's last
 * stage, sharded over tp only, from a checkpoint the runtime saved. */
static int refuse_distill(const plan_spec *s, ps_err *err) {
    const plan_cfg *p = &s->cfg;
    const plan_distill *d = &p->distill;
    static const char *const why = "the runtime runs the teacher on the student's last stage "
                                   "with tp only";
    if (d->placement != DISTILL_SHARED)
        return ps_err_at(err, field_loc(s, &s->distill_locs.placement), "distill.placement",
                         "%s; expected shared, found %s, which only the cost model (plan, sweep) "
                         "evaluates", why, plan_distill_placement_names[d->placement]);
    if (p->pp > 1 || p->cp > 1)
        return ps_err_at(err, &s->distill_locs.self, p->pp > 1 ? "parallel.pp" : "parallel.cp",
                         "%s; expected pp 1 and cp 1 with a distill: section, found pp %lld, "
                         "cp %lld, which only the cost model (plan, sweep) evaluates", why,
                         (long long)p->pp, (long long)p->cp);
    if (model_is_moe(&s->model.cfg))
        return ps_err_at(err, &s->distill_locs.self, "model",
                         "%s, for a dense student; found a mixture-of-experts student (%s), "
                         "which only the cost model (plan, sweep) distills", why, s->model.name);
    const char *scheme = infer_weights_names[d->weights];
    bool runs = false;
    for (int i = 0; program_teacher_schemes[i]; i++) runs |= !strcmp(program_teacher_schemes[i], scheme);
    if (!runs) {
        char list[256] = "";
        for (int i = 0; program_teacher_schemes[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     program_teacher_schemes[i]);
        return ps_err_at(err, field_loc(s, &s->distill_locs.weights), "distill.weights",
                         "the runtime's teacher runs the inference engine's schemes (%s); found "
                         "%s, which only the cost model (plan, sweep) evaluates", list, scheme);
    }
    if (!s->distill_checkpoint[0])
        return ps_err_at(err, &s->distill_locs.self, "distill.checkpoint",
                         "missing field (expected the teacher's weights for the runtime: a "
                         "checkpoint written by parasim run --save-weights)");
    return 0;
}

static int refuse_training(const plan_spec *s, ps_err *err) {
    const plan_cfg *p = &s->cfg;
    plan_precision bf16, fp32;
    plan_precision_preset("bf16-mixed", &bf16);
    plan_precision_preset("fp32", &fp32);
    if (memcmp(&p->precision, &bf16, sizeof bf16) && memcmp(&p->precision, &fp32, sizeof fp32))
        return ps_err_at(err, &s->locs.precision, "precision",
                         "the execution plan supports bf16-mixed and fp32 for now, found %s",
                         s->precision_name);
    if (p->distill.set && refuse_distill(s, err)) return -1;
    if (p->optimizer != OPT_ADAMW)
        return ps_err_at(err, &s->locs.self, "optimizer",
                         "the execution plan supports adamw for now, found %s",
                         plan_optimizer_names[p->optimizer]);
    if (p->offload_optimizer || p->offload_activations)
        return ps_err_at(err, &s->locs.self, "offload",
                         "the execution plan has no offload yet, found %s", plan_offload_name(p));
    /* the runtime replays a whole layer or nothing (rt_model.c); the table
     * policies exist in the cost model only (docs/memory.md §3) */
    if (p->recompute > RECOMPUTE_FULL)
        return ps_err_at(err, field_loc(s, &s->locs.recompute), "recompute",
                         "the execution plan runs recompute none, selective or full; found %s, "
                         "which only the cost model (plan, sweep) evaluates",
                         plan_recompute_names[p->recompute]);
    /* the runtime frees a send's block when a later op finds it done (rt_pipe.c) */
    if (p->pp > 1 && p->deallocate_outputs)
        return ps_err_at(err, field_loc(s, &s->locs.deallocate_outputs),
                         "pipeline.deallocate_outputs",
                         "the execution plan frees a send's block when a later send or receive "
                         "finds it complete; found true, which only the cost model (plan, "
                         "sweep) evaluates");
    /* the runtime sends whole messages (rt_pipe.c) */
    if (p->pp > 1 && p->tp > 1 && !p->sp && p->partition_messages)
        return ps_err_at(err, field_loc(s, &s->locs.partition_messages),
                         "pipeline.partition_messages",
                         "the execution plan sends whole stage-boundary messages; found true "
                         "(DeepSpeed's partitioned messages, which only the cost model evaluates; "
                         "set it to false to emit)");
    /* a framework profile describes another implementation's buffers, loss and
     * kernels (docs/memory.md §6a): the runtime is parasim's own */
    if (s->framework_name[0])
        return ps_err_at(err, &s->locs.self, "framework",
                         "the execution plan runs parasim's own implementation (its buffers, "
                         "loss and kernels); found framework %s, whose profile only the cost "
                         "model (plan, sweep) evaluates: leave framework out to emit",
                         s->framework_name);
    /* the runtime's tensor-parallel collectives block the compute that needs
     * them (rt_tp.c), and its ZeRO-3 gathers one unit at a time, again in
     * backward (rt_exec.c): the cost model's other choices are its own */
    if (p->tp > 1 && p->overlap_tp)
        return ps_err_at(err, &s->locs.self, "overlap.tp",
                         "the execution plan blocks compute on its tensor-parallel collectives; "
                         "found overlap.tp true, which only the cost model (plan, sweep) "
                         "evaluates: set it to false to emit");
    if (p->zero == 3 && p->zero3.set && p->dp * p->cp > 1)
        return ps_err_at(err, &s->locs.self, "zero3",
                         "the execution plan gathers each unit before its forward and again "
                         "before its backward; found a zero3: section (unit %s, prefetch %lld), "
                         "which only the cost model (plan, sweep) evaluates: leave it out to emit",
                         plan_zero3_unit_names[p->zero3.unit], (long long)p->zero3.prefetch);
    /* DualPipe (helper dualpipe): two copies of each stage per rank and F&B
     * pairs the runtime's pipeline (rt_pipe.c) does not execute */
    if (p->pp > 1 && p->schedule == SCHED_DUALPIPE)
        return ps_err_at(err, field_loc(s, &s->locs.schedule), "pipeline.schedule",
                         "the execution plan runs afab, 1f1b, interleaved and zero-bubble; found "
                         "dualpipe, which only the cost model (plan, sweep) evaluates: the "
                         "runtime does not hold a rank's second, mirrored stage or run its "
                         "forward-and-backward pairs");
    /* the runtime pads every expert's input to its capacity: the closed form
     * counts the same bytes only when the plan says so */
    if (model_is_moe(&s->model.cfg) && !p->moe_pad)
        return ps_err_at(err, field_loc(s, &s->locs.moe_pad), "moe.pad_to_capacity",
                         "expected true for the execution plan of a MoE model: the runtime pads "
                         "each expert's input to its capacity (Megatron-LM "
                         "--moe-pad-expert-input-to-capacity; dropless pads to the micro-batch's "
                         "tokens), so that every all-to-all has a size known before the run, and "
                         "`parasim plan` counts the same bytes only with pad_to_capacity; found "
                         "false (or absent)");
    /* the runtime's MoE layer runs with data, expert and pipeline parallelism
     * (rt_model.c), its backward whole (not zero-bubble's parts) */
    if (model_is_moe(&s->model.cfg) && (p->tp > 1 || p->cp > 1))
        return ps_err_at(err, &s->locs.self, p->tp > 1 ? "parallel.tp" : "parallel.cp",
                         "the execution plan runs a MoE model with data, expert and pipeline "
                         "parallelism only; found tp %lld, cp %lld", (long long)p->tp,
                         (long long)p->cp);
    if (model_is_moe(&s->model.cfg) && p->pp > 1 && p->schedule == SCHED_ZERO_BUBBLE)
        return ps_err_at(err, field_loc(s, &s->locs.schedule), "pipeline.schedule",
                         "the execution plan runs a MoE layer's backward whole; found "
                         "zero-bubble, whose split backward only the cost model evaluates with "
                         "experts");
    if (p->ep > 1 && (!model_is_moe(&s->model.cfg) || p->dp % p->ep || s->model.cfg.experts % p->ep ||
                      plan_etp(p) != 1))
        return ps_err_at(err, field_loc(s, &s->locs.ep), "parallel.ep",
                         "the execution plan splits the experts over ep consecutive data-parallel "
                         "ranks: expected a MoE model, ep dividing dp (%lld) and experts (%lld) and "
                         "etp 1; found ep %lld",
                         (long long)p->dp, (long long)s->model.cfg.experts, (long long)p->ep);
    /* ZeRO with ep: the experts' states sharded over edp apart (program_role_spaces).
     * ZeRO-3 with ep is costed by the closed form (per MoE layer, experts over
     * edp) but not yet held to it by a test of the program, so it is not emitted */
    if (p->ep > 1 && p->zero > 2)
        return ps_err_at(err, field_loc(s, &s->locs.ep), "parallel.ep",
                         "the execution plan runs expert parallelism with ZeRO-0, 1 or 2 (ZeRO-3 "
                         "with ep is costed by `parasim plan` but its program is not yet held to "
                         "that prediction by a test); found ep %lld, zero %d",
                         (long long)p->ep, p->zero);
    /* the runtime runs ring attention (rt_cp); the all-gather algorithm is cost model only */
    if (p->cp > 1 && p->cp_algorithm != CP_RING)
        return ps_err_at(err, field_loc(s, &s->locs.cp_algorithm), "cp_algorithm",
                         "the execution plan runs context parallelism as ring attention; found "
                         "%s, which only the cost model (plan, sweep) evaluates",
                         plan_cp_algorithm_names[p->cp_algorithm]);
    return 0;
}

/* ---- op construction ------------------------------------------------------------ */

static prog_op *push(emit_ctx *x, prog_kind kind, int32_t step) {
    prog_role *r = x->r;
    if (r->n_ops == PROGRAM_MAX_OPS) { /* too long to write, replay or run sensibly */
        x->too_long = true;
        prog_op_init(&x->scratch, kind, step);
        return &x->scratch;
    }
    if (r->n_ops == x->cap) {
        int32_t cap = x->cap ? 2 * x->cap : 1024;
        prog_op *ops = cap > x->cap ? realloc(r->ops, (size_t)cap * sizeof *ops) : NULL;
        if (!ops) {
            x->oom = true;
            prog_op_init(&x->scratch, kind, step);
            return &x->scratch;
        }
        r->ops = ops;
        x->cap = cap;
    }
    prog_op *o = &r->ops[r->n_ops++];
    prog_op_init(o, kind, step);
    return o;
}

static void emit_alloc(emit_ctx *x, int32_t step, prog_buf b, int32_t unit, mem_cat cat) {
    prog_op *o = push(x, OP_ALLOC, step);
    o->buf = b;
    o->unit = unit;
    o->cat = cat;
    o->bytes = program_buf_bytes(x->prog, x->r, b, unit);
}

static void emit_free(emit_ctx *x, int32_t step, prog_buf b, int32_t unit) {
    prog_op *o = push(x, OP_FREE, step);
    o->buf = b;
    o->unit = unit;
    o->bytes = program_buf_bytes(x->prog, x->r, b, unit);
}

/* The receive workspace of a reduce-scatter of [off, off + elems): on the
 * rank whose part is largest (the first or last shard it touches, or a whole
 * shard in between), since one op list stands for every dp rank. */
static int64_t rs_workspace(const emit_ctx *x, int64_t off, int64_t elems, int64_t ranks) {
    if (x->r->unit_experts) { /* expert parallelism: the largest part, rank by rank */
        int64_t most = 0;
        for (int64_t q = 0; q < ranks; q++) {
            const int64_t part = program_shard_part(x->r, off, elems, (int32_t)q, NULL);
            if (part > most) most = part;
        }
        return ws_reduce_scatter_bytes(x->p, x->c->kernels_fp32, most);
    }
    const int64_t sh = x->r->shard_elems, q0 = off / sh, q1 = (off + elems - 1) / sh;
    int64_t part = program_shard_part(x->r, off, elems, (int32_t)q0, NULL);
    const int64_t last = program_shard_part(x->r, off, elems, (int32_t)q1, NULL);
    if (last > part) part = last;
    if (q1 - q0 >= 2) part = sh;
    return ws_reduce_scatter_bytes(x->p, x->c->kernels_fp32, part);
}

/* A data-parallel collective on [off, off + elems) of the flat space: over dp x cp,
 * or within a layer's held routed experts over the expert-data-parallel group (the
 * ranks holding the same experts, dp/ep of them). */
static prog_op *emit_coll(emit_ctx *x, int32_t step, int32_t mb, int32_t unit, comm_coll coll,
                          comm_phase phase, prog_buf src, prog_buf dst, int64_t off,
                          int64_t elems, ps_dtype dt) {
    bool experts;
    program_segment_end(x->r, off, &experts);
    const int64_t n = experts ? x->d / x->prog->ep : x->d;
    prog_op *o = push(x, OP_COLL, step);
    o->mb = mb;
    o->unit = unit;
    o->coll = coll;
    o->group = experts ? GROUP_EDP : GROUP_DP;
    o->phase = phase;
    o->src = src;
    o->dst = dst;
    o->offset = off;
    o->elems = elems;
    o->bytes = elems * dtype_bytes(dt);
    if (coll == COLL_REDUCE_SCATTER) o->workspace_bytes = rs_workspace(x, off, elems, n) + x->stream;
    o->sent_bytes = comm_bytes_sent(coll, n, o->bytes);
    o->seconds = coll_time(coll, n, o->bytes, experts ? &x->edp_link : &x->link);
    return o;
}

static unit_kind kind_of(const emit_ctx *x, int32_t u) {
    const int32_t g = x->pipe.global[u];
    return g == 0 ? UK_EMBED : g == x->m->layers + 1 ? UK_HEAD : UK_LAYER;
}

/* The parts of unit u that separate collectives cover under expert parallelism: a
 * layer's dense part and its held routed experts (reduced and gathered over edp); the
 * whole unit otherwise. Returns the count, their ranges in lo[] / n[]. */
static int unit_parts(const emit_ctx *x, int32_t u, int64_t lo[2], int64_t n[2]) {
    const prog_unit *un = &x->r->units[u];
    const int64_t ex = kind_of(x, u) == UK_LAYER ? x->r->unit_experts : 0;
    lo[0] = un->offset, n[0] = un->elems - ex;
    lo[1] = un->offset + un->elems - ex, n[1] = ex;
    return ex ? 2 : 1;
}

static void tp_copy(prog_op *o, const prog_op *from) {
    memcpy(o->tp_calls, from->tp_calls, sizeof o->tp_calls);
    memcpy(o->tp_bytes, from->tp_bytes, sizeof o->tp_bytes);
    memcpy(o->tp_sent, from->tp_sent, sizeof o->tp_sent);
    memcpy(o->tp_seconds, from->tp_seconds, sizeof o->tp_seconds);
}

static void emit_compute(emit_ctx *x, prog_kind kind, prog_bwd_part part, int32_t step,
                         int32_t mb, int32_t u) {
    const unit_cost *k = &x->cost[kind_of(x, u)];
    prog_op *o = push(x, kind, step);
    o->mb = mb;
    o->unit = u;
    o->src = x->gather ? BUF_UNIT_PARAMS : BUF_PARAMS;
    o->bytes = k->saved;
    o->workspace_bytes = kind == OP_FWD ? k->ws_fwd : k->ws_bwd;
    o->ring_passes = k->ring_passes[kind == OP_BWD];
    o->ring_bytes = o->ring_passes ? k->ring_bytes : 0;
    o->buffer_bytes = k->ring_buffers[kind == OP_BWD];
    o->ring_seconds = k->ring_s[kind == OP_BWD];
    tp_copy(o, &k->tp[kind == OP_BWD]);
    const prog_op *ep = &k->ep[kind == OP_BWD];
    o->ep_calls = ep->ep_calls, o->ep_bytes = ep->ep_bytes, o->ep_sent = ep->ep_sent;
    o->ep_seconds = ep->ep_seconds;
    if (kind == OP_FWD) {
        o->flops = k->fwd_flops;
        o->seconds = k->fwd_s;
    } else {
        o->dst = x->unit_grads ? BUF_UNIT_GRADS : BUF_GRADS;
        o->transient_bytes = k->transient;
        o->recompute = k->recompute;
        o->flops = k->bwd_flops;
        o->seconds = k->bwd_s;
        o->part = part;
        if (part == BWD_INPUT) { /* the weight part frees the activations, and does its GEMMs */
            o->bytes = 0;
            o->stash_bytes = k->stash;
            o->flops -= k->bwd_w_flops, o->seconds -= k->bwd_w_s;
        } else if (part == BWD_WEIGHT) {
            o->transient_bytes = 0;
            o->workspace_bytes = k->ws_bwd_w;
            o->stash_bytes = k->stash;
            o->recompute = false;
            o->flops = k->bwd_w_flops, o->seconds = k->bwd_w_s;
        }
    }
}

/* ---- one step ------------------------------------------------------------------- */

static void emit_gather(emit_ctx *x, int32_t step, int32_t mb, int32_t u, comm_phase ph) {
    int64_t lo[2], n[2];
    const int parts = unit_parts(x, u, lo, n);
    emit_alloc(x, step, BUF_UNIT_PARAMS, u, MEM_BUFFERS);
    for (int k = 0; k < parts; k++)
        emit_coll(x, step, mb, u, COLL_ALL_GATHER, ph, BUF_PARAMS, BUF_UNIT_PARAMS, lo[k], n[k],
                  x->p->precision.params);
}

/* The forward of units [lo, hi) (a pipeline chunk; all units without pp). */
static void emit_forward(emit_ctx *x, int32_t step, int32_t mb, int32_t lo, int32_t hi) {
    for (int32_t u = lo; u < hi; u++) {
        if (x->gather) emit_gather(x, step, mb, u, COMM_FWD);
        emit_compute(x, OP_FWD, BWD_ALL, step, mb, u);
        if (x->gather) emit_free(x, step, BUF_UNIT_PARAMS, u);
    }
}

/* Backward in reverse unit order. In the step's last micro-batch, ZeRO-0/1
 * reduce each gradient bucket as soon as the units it covers are done, as
 * PyTorch DDP and Megatron-LM do (earlier micro-batches accumulate without
 * communicating). */
static void emit_backward(emit_ctx *x, int32_t step, int32_t mb, int32_t lo, int32_t hi,
                          bool last) {
    const prog_role *r = x->r;
    const ps_dtype gt = x->p->precision.grads;
    int32_t next = 0;
    for (int32_t u = hi - 1; u >= lo; u--) {
        const prog_unit *un = &r->units[u];
        int64_t plo[2], pn[2];
        const int parts = unit_parts(x, u, plo, pn);
        /* zero-bubble splits the layers' backwards; the embedding's and head's run whole in B */
        const prog_bwd_part part = kind_of(x, u) == UK_LAYER ? x->layer_part : BWD_ALL;
        const bool run = x->layer_part != BWD_WEIGHT || part == BWD_WEIGHT;
        if (x->gather && run) emit_gather(x, step, mb, u, COMM_BWD);
        if (x->unit_grads && run) emit_alloc(x, step, BUF_UNIT_GRADS, u, MEM_BUFFERS);
        if (run) emit_compute(x, OP_BWD, part, step, mb, u);
        /* the embedding's bwd frees the gradient stream */
        if (run) x->stream = kind_of(x, u) != UK_EMBED ? x->ws.stream_bwd : 0;
        if (x->unit_grads && run) {
            for (int k = 0; k < parts; k++)
                emit_coll(x, step, mb, u, COLL_REDUCE_SCATTER, COMM_BWD, BUF_UNIT_GRADS,
                          BUF_GRADS, plo[k], pn[k], gt);
            emit_free(x, step, BUF_UNIT_GRADS, u);
        }
        if (x->gather && run) emit_free(x, step, BUF_UNIT_PARAMS, u);
        /* a bucket of a layer's experts goes over the edp group (emit_coll) */
        for (; last && next < x->n_buckets && x->buckets[next].lo >= un->offset; next++)
            emit_coll(x, step, mb, -1, x->p->zero == 0 ? COLL_ALL_REDUCE : COLL_REDUCE_SCATTER,
                      COMM_GRADS, BUF_GRADS, BUF_GRADS, x->buckets[next].lo,
                      x->buckets[next].hi - x->buckets[next].lo, gt);
    }
}

/* A pipeline send or receive of micro-batch mb's activation (phase fwd) or
 * its gradient (phase bwd) to or from the stage of virtual stage g; unit is
 * the local unit that produces or consumes it. */
static void emit_p2p(emit_ctx *x, prog_kind kind, int32_t step, int32_t mb, int32_t unit,
                     comm_phase phase, int64_t g) {
    prog_op *o = push(x, kind, step);
    o->mb = mb;
    o->unit = unit;
    o->group = GROUP_PP;
    o->phase = phase;
    o->peer = (int32_t)(g % x->pipe.p);
    o->bytes = x->p2p_bytes;
    o->workspace_bytes = ws_p2p_bytes(&x->ws, o->bytes, phase == COMM_BWD);
    o->sent_bytes = kind == OP_SEND ? comm_bytes_sent(COLL_SEND, 2, o->bytes) : 0;
    o->seconds = x->p2p_s;
}

/* One op of the stage's schedule: F receives its chunk's input from the
 * virtual stage before (none on the first), runs the chunk's forward and
 * sends the output on (none from the last); B mirrors it with gradients.
 * The step's last B reduces the gradient buckets (ZeRO-0/1): every unit's
 * backward is done by then. */
static void emit_sched_op(emit_ctx *x, int32_t step, const sched_op *so, bool last) {
    const emit_pipe *e = &x->pipe;
    const int64_t g = emit_pipe_virtual(e, so->chunk), pv = e->p * e->v;
    const int32_t lo = e->chunk_lo[so->chunk], hi = e->chunk_lo[so->chunk + 1], mb = so->mb;
    if (so->kind == SCHED_OP_F) {
        if (g > 0) emit_p2p(x, OP_RECV, step, mb, lo, COMM_FWD, g - 1);
        emit_forward(x, step, mb, lo, hi);
        if (g < pv - 1) emit_p2p(x, OP_SEND, step, mb, hi - 1, COMM_FWD, g + 1);
    } else if (so->kind == SCHED_OP_B) {
        if (g < pv - 1) emit_p2p(x, OP_RECV, step, mb, hi - 1, COMM_BWD, g + 1);
        x->layer_part = e->zero_bubble ? BWD_INPUT : BWD_ALL;
        emit_backward(x, step, mb, lo, hi, last);
        if (g > 0) emit_p2p(x, OP_SEND, step, mb, lo, COMM_BWD, g - 1);
    } else { /* zero-bubble W: the layers' weight gradients, in a bubble */
        x->layer_part = BWD_WEIGHT;
        emit_backward(x, step, mb, lo, hi, last);
    }
}

/* ZeRO-1/2's parameter all-gather after the optimizer goes segment by segment (a
 * single call without ep; under ep the experts over edp, none when each rank of an
 * ep group holds its own, edp = 1): the segment from lo, its end in *hi, and whether
 * it is gathered. */
static bool gathered_segment(const emit_ctx *x, int64_t lo, int64_t *hi) {
    bool experts;
    *hi = program_segment_end(x->r, lo, &experts);
    return !experts || x->d / x->prog->ep > 1;
}

static void emit_step(emit_ctx *x, int32_t step) {
    const plan_cfg *p = x->p;
    if (step == 0) {
        if (x->prog->distill.on) emit_alloc(x, step, BUF_TEACHER, -1, MEM_TEACHER);
        emit_alloc(x, step, BUF_PARAMS, -1, MEM_PARAMS);
        emit_alloc(x, step, BUF_GRADS, -1, MEM_GRADS);
        if (p->precision.master != DT_NONE) emit_alloc(x, step, BUF_MASTER, -1, MEM_MASTER);
    }
    push(x, OP_ZERO_GRAD, step); /* its memory pass is in the optimizer's (kernel_time.c) */
    for (int64_t k = 0; k < x->pipe.n_ops; k++) emit_sched_op(x, step, &x->pipe.ops[k],
                                                               k == x->pipe.n_ops - 1);
    if (step == 0) { /* created by the first step, as torch.optim does */
        emit_alloc(x, step, BUF_ADAM_M, -1, MEM_OPTIMIZER);
        emit_alloc(x, step, BUF_ADAM_V, -1, MEM_OPTIMIZER);
    }
    prog_op *o = push(x, OP_OPTIM, step);
    o->offset = 0;
    o->elems = x->optim_elems;
    o->workspace_bytes = ws_optimizer_bytes(p, o->elems);
    o->seconds = x->optim_s;
    if (x->d > 1 && (p->zero == 1 || p->zero == 2))
        for (int64_t lo = 0, hi; lo < x->r->flat_elems; lo = hi)
            if (gathered_segment(x, lo, &hi))
                emit_coll(x, step, -1, -1, COLL_ALL_GATHER, COMM_PARAMS, BUF_PARAMS, BUF_PARAMS,
                          lo, hi - lo, p->precision.params);
}

/* The parameter all-gathers emit_step issues after the optimizer (ZeRO-1/2). */
static int64_t param_gathers(const emit_ctx *x) {
    int64_t n = 0;
    if (x->d <= 1 || (x->p->zero != 1 && x->p->zero != 2)) return 0;
    for (int64_t lo = 0, hi; lo < x->r->flat_elems; lo = hi) n += gathered_segment(x, lo, &hi);
    return n;
}

/* ---- layout and costs ------------------------------------------------------------ */

static int layout_units(emit_ctx *x, ps_err *err) {
    const model_cfg *m = x->m;
    prog_role *r = x->r;
    /* one tp rank's shard of each unit (params.c: Megatron-LM's split; the
     * tensors of docs/plan-format.md §2) */
    params_count pc;
    params_count_rank(m, x->p->tp, &pc);
    /* a MoE layer: the layer with its shared experts' MLP, then the router and this
     * rank's experts / ep routed experts (docs/plan-format.md §2) */
    const program *pg = x->prog;
    const int64_t moe = program_is_moe(pg)
                            ? pg->experts * pg->hidden + pg->experts / pg->ep * program_expert_elems(pg)
                            : 0;
    const int64_t elems[UK_COUNT] = {pc.embedding + pc.position, pc.layer + moe,
                                     pc.final_norm + pc.output};
    r->n_units = x->pipe.n_units;
    r->units = calloc((size_t)r->n_units, sizeof *r->units);
    if (!r->units) return ps_err_set(err, "out of memory");
    int64_t off = 0, n_kind[UK_COUNT] = {0};
    for (int32_t u = 0; u < r->n_units; u++) {
        prog_unit *un = &r->units[u];
        const unit_kind k = kind_of(x, u);
        n_kind[k]++;
        if (k == UK_LAYER) /* global names: "layer.7" on whichever stage holds it */
            snprintf(un->name, sizeof un->name, "layer.%d", (int)(x->pipe.global[u] - 1));
        else
            snprintf(un->name, sizeof un->name, "%s", k == UK_EMBED ? "embed" : "head");
        un->offset = off;
        un->elems = elems[k];
        off += un->elems;
    }
    const int64_t stage_total = n_kind[UK_EMBED] * (pc.embedding + pc.position) +
                                n_kind[UK_LAYER] * (pc.layer + moe) +
                                n_kind[UK_HEAD] * (pc.final_norm + pc.output);
    if (off != stage_total)
        return ps_err_set(err, "internal error: the flat parameter space holds %lld elements, "
                               "params.c counts %lld for the stage",
                          (long long)off, (long long)stage_total);
    r->flat_elems = off;
    /* the dense space over dp x cp, the experts over edp (program_role_spaces) */
    if (program_role_spaces(pg, r))
        return ps_err_set(err, "internal error: a layer unit is smaller than its experts");
    return 0;
}

/* FLOPs of one unit's forward and backward: kernel_time's per-op counts
 * (its rules), plus the replayed forward under full recompute. */
static void part_flops(const kt_part *k, bool replay, double *fwd, double *bwd) {
    *fwd = *bwd = 0;
    for (int i = 0; i < k->n; i++) {
        *fwd += k->op[i].flops_fwd;
        *bwd += k->op[i].flops_bwd;
    }
    if (replay) *bwd += *fwd;
}

/* Context parallelism: a layer's attention passes K/V (and in backward dK/dV)
 * blocks around the cp ring inside its fwd / bwd op (comm.c's passes, act.c's
 * block and buffers; docs/plan-format.md §3). The passes hide behind the
 * attention core as step_time.c's settle() hides them (the forward's core
 * once, the backward's twice, three times under full recompute; the share
 * `overlap` of what overlaps): the rest adds to the op's seconds. */
static void cp_costs(const emit_ctx *x, const time_ctx *tc, unit_cost *c) {
    const double core = tc->layer.attn_core_fwd;
    for (int bwd = 0; bwd < 2; bwd++) {
        c->ring_passes[bwd] = (int32_t)comm_cp_passes(x->p, bwd);
        c->ring_buffers[bwd] = act_cp_buffer_bytes(x->m, x->p, bwd);
    }
    c->ring_bytes = act_kv_block_bytes(x->m, x->p);
    if (x->p->cp <= 1) return;
    const double pass = coll_time(COLL_SEND, x->p->cp, c->ring_bytes, &tc->link[GROUP_CP]);
    double *secs[2] = {&c->fwd_s, &c->bwd_s};
    for (int bwd = 0; bwd < 2; bwd++) {
        const double ring = c->ring_s[bwd] = (double)c->ring_passes[bwd] * pass;
        const double over =
            step_cp_overlap(ring, step_cp_attn_budget(x->p, core, bwd), *secs[bwd]);
        *secs[bwd] += ring - tc->overlap * over;
    }
}

/* Add n tensor-parallel calls to unit kind k's fwd (b 0) or bwd (b 1) op. */
static void tp_add(emit_ctx *x, int k, int b, const comm_tp_call *calls, int n,
                   const coll_link *link) {
    prog_op *o = &x->cost[k].tp[b];
    for (int i = 0; i < n; i++) {
        const int c = calls[i].coll;
        const double t = (double)calls[i].calls *
                         coll_time(calls[i].coll, x->p->tp, calls[i].bytes_per_call, link);
        o->tp_calls[c] += calls[i].calls;
        o->tp_bytes[c] += calls[i].calls * calls[i].bytes_per_call;
        o->tp_sent[c] += calls[i].calls * comm_bytes_sent(calls[i].coll, x->p->tp, calls[i].bytes_per_call);
        o->tp_seconds[c] += t;
        *(b ? &x->cost[k].bwd_s : &x->cost[k].fwd_s) += t;
    }
}

/* The tensor-parallel collectives of each unit kind's fwd and bwd (comm.c:
 * comm_tp_unit), their bytes sent (comm_bytes_sent) and seconds (coll_time on
 * the tp group's link), added to the op's seconds: Megatron-LM's tensor-
 * parallel collectives block the compute that needs their result. */
static void tp_costs(emit_ctx *x, const coll_link *link) {
    static const comm_unit cu[UK_COUNT] = {COMM_UNIT_EMBED, COMM_UNIT_LAYER, COMM_UNIT_HEAD};
    for (int k = 0; k < UK_COUNT; k++)
        for (int b = 0; b < 2; b++) {
            comm_tp_call calls[COMM_TP_UNIT_MAX];
            tp_add(x, k, b, calls, comm_tp_unit(x->m, x->p, cu[k], b, calls), link);
        }
    /* distillation: the KD loss's collectives in the head's forward (cost/distill.h) */
    comm_tp_call kd[2];
    tp_add(x, UK_HEAD, 0, kd, distill_tp_calls(&x->s->model.cfg, x->p, kd), link);
}

/* A MoE layer on top of its shared-expert layer (x->m is that layer's dense view):
 * the saved tensors of program_moe_saved_bytes (under full recompute rebuilt by the
 * backward instead),
 * the router GEMM (N x hidden x experts) and the experts' three GEMMs on their
 * experts x capacity rows, forward once and backward twice (kernel_time.c's kt_gemm,
 * fp32 as the runtime computes), and under ep > 1 the all-to-alls: dispatch and
 * combine in the forward, their gradients in the backward (and the forward's again
 * under full recompute), each of program_moe_a2a_bytes, sending comm_bytes_sent's
 * (ep-1)/ep of it, timed by coll_time on the ep group's link. */
static void moe_costs(emit_ctx *x, unit_cost *c) {
    const program *pg = x->prog;
    const int64_t N = pg->micro_batch * pg->seq, R = pg->experts * pg->expert_capacity;
    const int64_t h = pg->hidden, fe = pg->expert_ffn, E = pg->experts;
    const int64_t saved = program_moe_saved_bytes(pg);
    /* the routed part's temporaries (exact in fp32 without recompute; a lower bound
     * otherwise: docs/runtime.md §3d) */
    const int64_t wf = program_moe_workspace_bytes(pg, false), wb = program_moe_workspace_bytes(pg, true);
    if (wf > c->ws_fwd) c->ws_fwd = wf;
    if (wb > c->ws_bwd) c->ws_bwd = wb;
    if (c->recompute) /* the forward keeps the layer input only; the backward rebuilds */
        c->transient += saved;
    else
        c->saved += saved;
    const double fl = 2.0 * (double)N * (double)h * (double)E + 6.0 * (double)R * (double)h * (double)fe;
    const double t = kt_gemm(x->c, x->p, 1, (double)N, (double)E, (double)h) +
                     2 * kt_gemm(x->c, x->p, (double)E, (double)pg->expert_capacity, (double)fe, (double)h) +
                     kt_gemm(x->c, x->p, (double)E, (double)pg->expert_capacity, (double)h, (double)fe);
    c->fwd_flops += fl, c->fwd_s += t;
    c->bwd_flops += 2 * fl + (c->recompute ? fl : 0);
    c->bwd_s += 2 * t + (c->recompute ? t : 0);
    c->bwd_w_flops += fl, c->bwd_w_s += t;
    if (pg->ep < 2) return;
    const int64_t S = program_moe_a2a_bytes(pg);
    coll_link link;
    coll_group_link(x->c, x->p, GROUP_EP, &link);
    for (int b = 0; b < 2; b++) {
        prog_op *o = &c->ep[b];
        o->ep_calls = moe_a2a_calls(x->p, b); /* cost/moe.c: 2, + 2 in a recomputed bwd */
        o->ep_bytes = o->ep_calls * S;
        o->ep_sent = o->ep_calls * comm_bytes_sent(COLL_ALL_TO_ALL, pg->ep, S);
        o->ep_seconds = (double)o->ep_calls * coll_time(COLL_ALL_TO_ALL, pg->ep, S, &link);
        *(b ? &c->bwd_s : &c->fwd_s) += o->ep_seconds;
    }
}

static void unit_costs(emit_ctx *x) {
    time_ctx tc;
    act_bytes ab;
    time_ctx_init(x->m, x->c, x->p, &tc);
    act_compute(x->m, x->p, &ab);
    const kt_part *parts[UK_COUNT] = {&tc.first, &tc.layer, &tc.last};
    for (int k = 0; k < UK_COUNT; k++) {
        unit_cost *c = &x->cost[k];
        c->recompute = k == UK_LAYER && x->p->recompute == RECOMPUTE_FULL;
        c->fwd_s = parts[k]->fwd;
        c->bwd_s = parts[k]->bwd_in + parts[k]->recompute + parts[k]->bwd_w;
        part_flops(parts[k], c->recompute, &c->fwd_flops, &c->bwd_flops);
        c->bwd_w_s = parts[k]->bwd_w;
        for (int i = 0; i < parts[k]->n; i++) /* a weight's gradient: one more GEMM */
            if (parts[k]->op[i].kind == KT_GEMM && parts[k]->op[i].weights > 0)
                c->bwd_w_flops += parts[k]->op[i].flops_fwd;
    }
    x->cost[UK_EMBED].saved = ab.first_stage;
    x->cost[UK_LAYER].saved = ab.layer_saved;
    x->cost[UK_LAYER].transient = ab.layer_working;
    x->cost[UK_HEAD].saved = ab.last_stage;
    cp_costs(x, &tc, &x->cost[UK_LAYER]); /* before tp's: its budget is the compute */
    tp_costs(x, &tc.link[GROUP_TP]);
    ws_compute(x->m, x->p, x->c->kernels_fp32, &x->ws);
    const ws_bytes ws = x->ws;
    x->cost[UK_EMBED].ws_fwd = ws.embed_fwd, x->cost[UK_EMBED].ws_bwd = ws.embed_bwd;
    x->cost[UK_LAYER].ws_fwd = ws.layer_fwd, x->cost[UK_LAYER].ws_bwd = ws.layer_bwd;
    x->cost[UK_HEAD].ws_fwd = ws.head_fwd, x->cost[UK_HEAD].ws_bwd = ws.head_bwd;
    x->cost[UK_LAYER].ws_bwd_w = ws.layer_bwd_w, x->cost[UK_LAYER].stash = ws.zb_stash;
    /* distillation: the head's forward saves the KD tensors and runs the teacher
     * first, whose live tensors and logits are gone before the student's head
     * allocates its own (runtime/rt_model.c head_fwd) */
    x->cost[UK_HEAD].saved += x->dm->kd_saved;
    if (x->dm->forward > x->cost[UK_HEAD].ws_fwd) x->cost[UK_HEAD].ws_fwd = x->dm->forward;
    if (x->prog->distill.on) { /* and its time and FLOPs (time/distill_time.h, cost/distill.h) */
        const model_cfg *t = &x->s->teacher.cfg;
        distill_time_ctx dt;
        double hardware;
        distill_time_init(t, x->c, x->p, &dt);
        x->cost[UK_HEAD].fwd_s += distill_fwd_s(&dt, &tc.link[GROUP_TP], t->layers, true, true);
        distill_teacher_flops_per_token(t, x->p, &hardware);
        x->cost[UK_HEAD].fwd_flops += hardware * (double)plan_tokens_per_rank(x->p);
    }
    if (program_is_moe(x->prog)) moe_costs(x, &x->cost[UK_LAYER]); /* no cp, tp: refused */
    x->link = tc.link[GROUP_DP];
    x->edp_link = tc.link[GROUP_EDP];
    x->p2p_bytes = comm_p2p_bytes(x->m, x->p);
    x->p2p_s = coll_time(COLL_SEND, 2, x->p2p_bytes, &tc.link[GROUP_PP]);
    int64_t first;
    x->optim_elems = program_buf_held(x->prog, x->r, BUF_ADAM_M, -1, 0, &first);
    x->optim_s = kt_optimizer(x->c, x->p, x->optim_elems);
}

/* ZeRO-0/1 gradient buckets: ranges of B elements (memory.bucket bytes of
 * gradients, rounded down to a multiple of the group size) aligned at
 * multiples of B from the bottom of the flat space, listed from the top (the
 * head's gradients are produced first), the top one ending at flat_elems.
 * Every bucket but the top one is a multiple of the group size, so per-call
 * chunking adds no bytes to comm.c's volume but in the top bucket. */
static int64_t bucket_elems(const emit_ctx *x) {
    const int64_t n = x->r->flat_elems, e = dtype_bytes(x->p->precision.grads);
    int64_t B = x->p->bucket_bytes / e / x->d * x->d;
    if (x->p->bucket_bytes <= 0 || B >= n) B = n; /* memory.bucket 0: one bucket */
    if (B < x->d) B = x->d;
    return B;
}

/* Expert parallelism (ep = dp): the segments of the flat space whose gradients are
 * reduced (all but each layer's held routed experts: the embedding and layer 0 up to
 * its experts, layer 1 up to its experts, ..., the head), into seg[0 .. *ns) unless
 * seg is NULL; returns the buckets of B elements they take. */
static int64_t ep_segments(const emit_ctx *x, int64_t B, range *seg, int32_t *ns) {
    const prog_role *r = x->r;
    const int64_t ex = x->prog->experts / x->prog->ep * program_expert_elems(x->prog);
    const bool edp = x->d / x->prog->ep > 1; /* the experts' copies are reduced too */
    int64_t nb = 0, lo = 0;
    int32_t n = 0;
    for (int32_t u = 0; u <= r->n_units; u++) {
        if (u < r->n_units && kind_of(x, u) != UK_LAYER) continue;
        const int64_t hi = u < r->n_units ? r->units[u].offset + r->units[u].elems - ex
                                          : r->flat_elems;
        nb += (hi - lo + B - 1) / B;
        if (seg) seg[n++] = (range){lo, hi};
        if (u == r->n_units) break;
        lo = r->units[u].offset + r->units[u].elems;
        if (edp) {
            nb += (ex + B - 1) / B;
            if (seg) seg[n++] = (range){hi, lo};
        }
    }
    if (ns) *ns = n;
    return nb;
}

static int64_t bucket_count(const emit_ctx *x) {
    if (x->d <= 1 || x->p->zero >= 2) return 0;
    const int64_t B = bucket_elems(x);
    if (x->prog->ep > 1) return ep_segments(x, B, NULL, NULL);
    return (x->r->flat_elems + B - 1) / B;
}

/* Expert parallelism (ep = dp): each rank's routed experts are its own, so their
 * gradients are not reduced; buckets of B elements cover the rest, segment by
 * segment (the embedding and layer 0 up to its experts, layer 1 up to its experts,
 * ..., the head), listed from the top. */
static int layout_buckets_ep(emit_ctx *x, ps_err *err) {
    const int64_t B = bucket_elems(x), nb = bucket_count(x);
    range *seg = calloc(2 * (size_t)x->r->n_units + 1, sizeof *seg);
    if (!seg) return ps_err_set(err, "out of memory");
    int32_t ns = 0;
    ep_segments(x, B, seg, &ns);
    x->buckets = calloc((size_t)nb, sizeof *x->buckets);
    if (!x->buckets) {
        free(seg);
        return ps_err_set(err, "out of memory");
    }
    for (int32_t k = ns - 1; k >= 0; k--)
        for (int64_t hi = seg[k].hi; hi > seg[k].lo; hi -= B)
            x->buckets[x->n_buckets++] =
                (range){hi - B > seg[k].lo ? hi - B : seg[k].lo, hi};
    free(seg);
    return 0;
}

static int layout_buckets(emit_ctx *x, ps_err *err) {
    const int64_t n = x->r->flat_elems;
    if (x->d <= 1 || x->p->zero >= 2) return 0;
    if (x->prog->ep > 1) return layout_buckets_ep(x, err);
    const int64_t B = bucket_elems(x), nb = bucket_count(x);
    x->buckets = calloc((size_t)nb, sizeof *x->buckets);
    if (!x->buckets) return ps_err_set(err, "out of memory");
    for (int64_t i = 0; i < nb; i++) {
        const int64_t k = nb - 1 - i;
        x->buckets[i] = (range){k * B, (k + 1) * B < n ? (k + 1) * B : n};
    }
    x->n_buckets = (int32_t)nb;
    return 0;
}

/* ---- the program ------------------------------------------------------------------ */

static void fill_header(const plan_spec *s, int steps, program *out) {
    const model_cfg *m = &s->model.cfg;
    const plan_cfg *p = &s->cfg;
    const plan_train *t = &s->train;
    out->layers = m->layers, out->hidden = m->hidden, out->heads = m->heads;
    out->kv_heads = m->kv_heads, out->head_dim = m->head_dim, out->ffn_hidden = m->ffn_hidden;
    out->vocab = m->vocab;
    out->tied_embeddings = m->tied_embeddings;
    out->norm_eps = s->model.norm_eps, out->rope_theta = s->model.rope_theta;
    out->ep = 1;
    if (model_is_moe(m)) { /* docs/plan-format.md "Mixture of experts" */
        const int64_t N = p->micro_batch * p->seq, E = m->experts, K = m->experts_per_token;
        out->experts = E, out->top_k = K, out->expert_ffn = m->expert_ffn_hidden;
        out->ffn_hidden = m->shared_experts * m->expert_ffn_hidden; /* the shared experts' MLP */
        /* capacity ceil(cf N K / E) (GShard); dropless (cf 0, or cf >= E / K): N, every
         * token's choice fits, since a token picks an expert at most once (cost/moe.c,
         * which the closed form's padded all-to-all uses too) */
        out->expert_capacity = moe_capacity(m, p, N);
        (void)K;
        out->ep = p->ep > 1 ? p->ep : 1;
        out->aux_alpha = p->moe_aux_loss ? MOE_AUX_ALPHA : 0;
    }
    out->seq = p->seq, out->micro_batch = p->micro_batch;
    out->micro_batches = plan_micro_batches(p), out->global_batch = p->global_batch;
    out->world = p->gpus, out->dp = p->dp, out->tp = p->tp, out->pp = p->pp, out->cp = p->cp;
    out->sp = p->sp;
    out->zero = p->zero;
    out->recompute = p->recompute;
    out->precision = p->precision;
    out->steps = steps;
    out->seed = t->seed;
    out->lr = t->lr, out->beta1 = t->beta1, out->beta2 = t->beta2;
    out->eps = t->eps, out->weight_decay = t->weight_decay;
    out->data = strcmp(t->data, "synthetic") ? DATA_TEXT : DATA_SYNTHETIC;
    snprintf(out->data_path, sizeof out->data_path, "%s", out->data == DATA_TEXT ? t->data : "");
    out->bucket_bytes = p->bucket_bytes;
    out->overlap_dp = p->overlap_dp;
    out->overlap_pp = p->overlap_pp;
    snprintf(out->plan_name, sizeof out->plan_name, "%s", s->name);
    snprintf(out->model_name, sizeof out->model_name, "%s", s->model.name);
    snprintf(out->cluster_name, sizeof out->cluster_name, "%s", s->cluster.name);
    if (p->distill.set) { /* refuse_distill passed */
        const plan_distill *d = &p->distill;
        const model_cfg *t = &s->teacher.cfg;
        prog_distill *o = &out->distill;
        infer_cfg ic;
        infer_cfg_init(&ic);
        ic.weights = (infer_weights)d->weights;
        ic.group_size = d->group_size;
        o->on = true;
        snprintf(o->teacher_name, sizeof o->teacher_name, "%s", s->teacher.name);
        o->layers = t->layers, o->hidden = t->hidden, o->heads = t->heads;
        o->kv_heads = t->kv_heads, o->head_dim = t->head_dim, o->ffn_hidden = t->ffn_hidden;
        o->vocab = t->vocab;
        o->norm_eps = s->teacher.norm_eps, o->rope_theta = s->teacher.rope_theta;
        snprintf(o->weights, sizeof o->weights, "%s", infer_weights_names[d->weights]);
        o->group_size = infer_group_size(&ic);
        o->temperature = d->temperature, o->alpha = d->alpha, o->top_k = d->top_k;
        snprintf(o->checkpoint, sizeof o->checkpoint, "%s", s->distill_checkpoint);
    }
}

/* Distillation (shared, pp 1): the teacher's weights on each tp rank, the KD
 * loss's saved tensors and the teacher's forward (cost/distill.h, the one owner
 * of these sizes). A CPU cluster (kernels_fp32) runs the teacher in fp32, as
 * the runtime's inference engine computes. */
static int distill_costs(const plan_spec *s, program *out, distill_mem *dm, ps_err *err) {
    *dm = (distill_mem){0};
    if (!out->distill.on) return 0;
    plan_cfg q = s->cfg;
    if (s->cluster.cfg.kernels_fp32) q.precision.activations = DT_FP32;
    if (distill_stage_memory(&s->model.cfg, &s->teacher.cfg, &q, s->cfg.pp - 1, dm, err))
        return -1;
    out->distill.teacher_bytes = dm->weights;
    return 0;
}

/* The ops emit_step pushes in `steps` steps, counted in closed form so that a
 * program over PROGRAM_MAX_OPS is refused before anything is built: per step a
 * zero-grad, the optimizer (and ZeRO-1/2's parameter all-gather), the last
 * micro-batch's bucket reductions, the pipeline's sends and receives
 * (emit_pipe_p2p_per_step), and per micro-batch and unit a forward and
 * a backward (ZeRO-3: alloc, gather, free around each; ZeRO-2/3: alloc,
 * reduce-scatter, free of the unit's gradient); the first step adds the
 * parameter, gradient, master and Adam allocations. Saturates at INT64_MAX. */
static int64_t emit_op_count(const emit_ctx *x, int64_t n_buckets, int steps) {
    const plan_cfg *p = x->p;
    const int64_t per_unit = 2 + (x->gather ? 6 : 0) + (x->unit_grads ? 3 : 0);
    const int64_t gather_params = param_gathers(x);
    /* under ep a layer's experts take a collective of their own in each gather and
     * reduce-scatter of the unit (unit_parts) */
    const int64_t expert_colls =
        x->r->unit_experts ? x->pipe.n_layers * ((x->gather ? 2 : 0) + (x->unit_grads ? 1 : 0)) : 0;
    int64_t per_step, total;
    if (__builtin_mul_overflow(x->mbs, x->r->n_units * per_unit + expert_colls, &per_step) ||
        __builtin_add_overflow(per_step, 2 + gather_params + n_buckets, &per_step) ||
        __builtin_add_overflow(per_step, emit_pipe_p2p_per_step(&x->pipe), &per_step) ||
        __builtin_add_overflow(per_step, x->pipe.zero_bubble ? x->mbs * x->pipe.n_layers : 0,
                               &per_step) ||
        __builtin_mul_overflow(per_step, (int64_t)steps, &total) ||
        __builtin_add_overflow(total, 4 + (p->precision.master != DT_NONE ? 1 : 0) +
                                          (x->prog->distill.on ? 1 : 0), &total))
        return INT64_MAX;
    return total;
}

static int emit_role(emit_ctx *x, int steps, ps_err *err) {
    prog_role *r = x->r;
    r->n_ranks = (int32_t)x->p->dp;
    r->ranks = calloc((size_t)r->n_ranks, sizeof *r->ranks);
    if (!r->ranks) return ps_err_set(err, "out of memory");
    for (int32_t i = 0; i < r->n_ranks; i++)
        r->ranks[i] = (int32_t)program_world_rank(x->p, i, r->tp_rank, r->stage, r->cp_rank);
    if (layout_units(x, err)) return -1;
    const int64_t n_ops = emit_op_count(x, bucket_count(x), steps);
    if (n_ops > PROGRAM_MAX_OPS)
        return ps_err_set(err,
                          "the execution plan would have %s%lld ops per rank role (%d steps x "
                          "%lld micro-batches x %d units, plus %lld gradient buckets per step), "
                          "more than the limit of %d; emit fewer steps (--steps) or micro-batches "
                          "(batch.global / (batch.micro * dp)), or use larger buckets "
                          "(memory.bucket)",
                          n_ops == INT64_MAX ? "more than " : "", (long long)n_ops, steps,
                          (long long)x->mbs, (int)r->n_units, (long long)bucket_count(x),
                          PROGRAM_MAX_OPS);
    if (layout_buckets(x, err)) return -1;
    unit_costs(x);
    for (int32_t step = 0; step < steps && !x->oom && !x->too_long; step++) emit_step(x, step);
    if (x->too_long)
        return ps_err_set(err, "the execution plan would exceed %d ops per rank role (%d steps); "
                               "emit fewer steps (--steps) or use larger buckets (memory.bucket)",
                          PROGRAM_MAX_OPS, steps);
    if (x->oom) return ps_err_set(err, "out of memory for %d ops", (int)r->n_ops);
    if (r->n_ops != n_ops)
        return ps_err_set(err, "internal error: %lld ops emitted, %lld counted",
                          (long long)r->n_ops, (long long)n_ops);
    return 0;
}

int program_emit(const plan_spec *plan, int steps, program *out, ps_err *err) {
    memset(out, 0, sizeof *out);
    if (refuse_model(&plan->model, err) ||
        refuse_training(plan, err))
        return -1;
    if (steps < 1) return ps_err_set(err, "steps: expected at least 1, found %d", steps);
    fill_header(plan, steps, out);
    distill_mem dm;
    if (distill_costs(plan, out, &dm, err)) return -1;
    const plan_cfg *p = &plan->cfg;
    /* a MoE model's layers are costed as the layer with its shared experts' MLP
     * (ffn_hidden = their width), and the routed part added (moe_costs) */
    model_cfg view = plan->model.cfg;
    if (model_is_moe(&view)) {
        view.ffn_hidden = out->ffn_hidden;
        view.experts = view.experts_per_token = view.shared_experts = 0;
        view.expert_ffn_hidden = view.dense_layers = 0;
    }
    const int64_t n_roles = p->pp * p->tp * p->cp; /* <= 2^24: plan_check */
    out->roles = calloc((size_t)n_roles, sizeof *out->roles);
    if (!out->roles) return ps_err_set(err, "out of memory");
    out->n_roles = (int32_t)n_roles;
    int rc = 0;
    for (int64_t s = 0; s < p->pp && !rc; s++)
        for (int64_t t = 0; t < p->tp && !rc; t++)
            for (int64_t c = 0; c < p->cp && !rc; c++) {
                prog_role *r = &out->roles[program_role_index(out, s, t, c)];
                r->stage = (int32_t)s, r->tp_rank = (int32_t)t, r->cp_rank = (int32_t)c;
                emit_ctx x;
                memset(&x, 0, sizeof x);
                x.s = plan, x.m = &view, x.c = &plan->cluster.cfg, x.p = p;
                x.prog = out;
                x.r = r;
                x.dm = &dm;
                x.d = p->dp * p->cp;
                x.mbs = plan_micro_batches(p);
                x.gather = p->zero == 3 && x.d > 1;
                x.unit_grads = p->zero >= 2 && x.d > 1;
                rc = emit_pipe_init(plan, s, &x.pipe, err);
                if (!rc) rc = emit_role(&x, steps, err);
                free(x.buckets);
                emit_pipe_free(&x.pipe);
            }
    if (rc) program_free(out);
    return rc;
}
