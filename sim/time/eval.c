/* eval.c — combine the formula modules into one plan's numbers (see eval.h). */
#include "time/eval.h"

#include <math.h>
#include <string.h>

#include "base/sat_int.h"
#include "cost/act.h"
#include "cost/distill.h"
#include "cost/flops.h"
#include "cost/moe.h"
#include "cost/params.h"
#include "cost/pipe.h"
#include "spec/plan_check.h"
#include "cost/states.h"
#include "time/kernel_time.h"

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

typedef eval_cache eval_shared;

/* Field by field: the struct has padding. */
static bool fw_matches(const plan_framework *a, const plan_framework *b) {
    return a->grad_bucket_none == b->grad_bucket_none &&
           a->param_copy_transient == b->param_copy_transient &&
           a->optimizer_grad_copy_none == b->optimizer_grad_copy_none && a->loss == b->loss &&
           a->loss_chunks == b->loss_chunks && a->attention == b->attention &&
           a->no_dropout == b->no_dropout;
}

static int cache_matches(const eval_cache *k, const model_cfg *m, const model_cfg *t,
                         const cluster_cfg *c, const plan_cfg *p) {
    return k->valid && k->m == m && k->teacher == t && k->c == c && k->tp == p->tp &&
           k->cp == p->cp &&
           k->seq == p->seq && k->micro == p->micro_batch && k->sp == p->sp &&
           k->recompute == p->recompute && k->recompute_tensors == p->recompute_tensors &&
           !memcmp(&k->precision, &p->precision, sizeof k->precision) &&
           fw_matches(&k->framework, &p->framework) && k->attn_kernel == p->attn_kernel &&
           k->grad_acc_unfused == p->grad_acc_unfused &&
           k->eager_elementwise == p->eager_elementwise;
}

static void cache_fill(eval_cache *k, const model_cfg *m, const model_cfg *t, const cluster_cfg *c,
                       const plan_cfg *p) {
    if (cache_matches(k, m, t, c, p)) {
        time_ctx_links(c, p, &k->time);
        if (model_is_moe(m)) time_ctx_moe(m, c, p, &k->time); /* ep, etp, routing vary */
        return;
    }
    k->m = m, k->c = c, k->tp = p->tp, k->cp = p->cp, k->seq = p->seq;
    k->teacher = t; /* the teacher's forward on the student's ranks (shared placement) */
    if (t) distill_time_init(t, c, p, &k->teacher_time);
    k->micro = p->micro_batch, k->sp = p->sp, k->recompute = p->recompute;
    k->recompute_tensors = p->recompute_tensors;
    k->precision = p->precision;
    k->framework = p->framework;
    k->attn_kernel = p->attn_kernel, k->grad_acc_unfused = p->grad_acc_unfused;
    k->eager_elementwise = p->eager_elementwise;
    params_count pc1; /* the whole model: its total and FLOPs */
    params_count_rank(m, 1, &pc1);
    if (p->tp == 1) k->pc = pc1;
    else params_count_rank(m, p->tp, &k->pc);
    k->model_params = pc1.total;
    flops_compute_pc(m, p, &pc1, &k->flops); /* per token for this seq and recompute; eval_plan_cached
                                       scales them by each plan's tokens */
    act_compute(m, p, &k->act);
    ws_compute(m, p, c->kernels_fp32, &k->ws);
    time_ctx_init(m, c, p, &k->time);
    if (model_is_moe(m)) { /* the MoE layer's attention block: the layer less its dense MLP */
        model_cfg attn = *m;
        attn.ffn_hidden = 0;
        act_compute(&attn, p, &k->act_attn);
    }
    k->valid = true;
}

/* Parameters a stage holds on one tp rank before ZeRO sharding. */
static int64_t stage_param_elems(const model_cfg *m, const plan_cfg *p, const params_count *pc,
                                 int64_t s, int64_t layers) {
    const int first = pipe_stage_has_embedding(p, s), last = pipe_stage_has_head(p, s);
    /* the last stage keeps its own copy of a tied word embedding (Megatron-LM) */
    const int64_t head = m->tied_embeddings ? (p->pp > 1 ? pc->embedding : 0) : pc->output;
    return layers * pc->layer + (first ? pc->embedding + pc->position : 0) +
           (last ? pc->final_norm + head : 0);
}

/* A MoE model's stage (docs/memory.md §10): dense layers hold pc->layer, MoE
 * layers their attention, norms, router and shared experts (pc->moe_layer
 * less the routed experts) plus the rank's experts/ep experts split etp ways
 * (*expert, sharded over edp); the last stage adds the MTP modules (their
 * projections and norms, and one MoE layer each, counted in `moe`). Returns
 * the non-expert elements. */
static int64_t moe_stage_elems(const model_cfg *m, const plan_cfg *p, const params_count *pc,
                               const moe_layout *l, int64_t s, int64_t dense, int64_t moe,
                               int64_t *expert) {
    const bool head = pipe_stage_has_head(p, s);
    const int64_t main_moe = moe - (head ? m->mtp_layers : 0);
    const int64_t routed = m->experts * pc->expert;
    *expert = moe * l->expert_elems;
    /* the MTP modules embed the next tokens: a head stage without the
     * embedding holds a copy of it (Megatron-Core gpt_model.py: the embedding
     * is built where pre_process or mtp_process; its gradients are summed
     * with the first stage's, comm.c) */
    const bool mtp_embedding = head && m->mtp_layers > 0 && !pipe_stage_has_embedding(p, s);
    return stage_param_elems(m, p, pc, s, dense) + main_moe * (pc->moe_layer - routed) +
           (head ? pc->mtp - m->mtp_layers * routed : 0) +
           (mtp_embedding ? pc->embedding + pc->position : 0);
}

/* Activations one micro-batch sends to the host and back under activation
 * offload, consistent with the memory model (eval_stage_one keeps
 * ACT_OFFLOAD_ON_DEVICE layer sets on the device in all): with one micro-batch
 * in flight, all but those last layers go out; with several, every layer does. */
static int64_t offload_bytes(const model_cfg *m, const plan_cfg *p, const eval_shared *sh,
                             int64_t s, int64_t layers) {
    if (!p->offload_activations) return 0;
    pipe_inflight in;
    pipe_stage_inflight(m, p, s, &in);
    return sh->act.layer_saved *
           (in.layer_units > layers ? layers : max64(0, layers - ACT_OFFLOAD_ON_DEVICE));
}

/* ZeRO-3's gathered parameters and one unit's gradient buffer (docs/memory.md
 * §2, docs/time.md §4.1): the unit computing and the `prefetch` units gathered
 * ahead of it (default 1: 2 units), or, when the forward's gathers stay for
 * the backward (reshard_after_forward: false), the whole stage. A unit is the
 * largest layer or embedding/head (`largest`, `edge` the latter alone); with
 * unit: param the largest weight matrix on a tp rank (fused QKV, attention
 * output, MLP up (x2 gated), MLP down) or the edge; with unit: bucket at most
 * a bucket. */
static int64_t zero3_buffer_bytes(const model_cfg *m, const plan_cfg *p, int64_t largest,
                                  int64_t edge, int64_t stage_elems, int64_t expert_mat) {
    const int64_t pb = dtype_bytes(p->precision.params), gb = dtype_bytes(p->precision.grads);
    const plan_zero3 *z = &p->zero3;
    if (!z->set) return largest * (2 * pb + gb);
    if (z->unit == ZERO3_UNIT_PARAM) { /* the largest weight matrix on a tp rank, or the edge unit */
        const int64_t t = p->tp, h = m->hidden, f = m->ffn_hidden * (m->mlp == MLP_SWIGLU ? 2 : 1);
        const int64_t qkv = h * (model_q_width(m) + 2 * model_kv_width(m)) / t;
        /* the MLP's down projection (ffn/t x h) is never larger than its up projection */
        const int64_t mat = max64(max64(qkv, model_q_width(m) / t * h), h * f / t);
        largest = max64(max64(mat, expert_mat), edge);
    } else if (z->unit == ZERO3_UNIT_BUCKET) {
        largest = min64(largest, max64(1, z->bucket_bytes / pb));
    }
    if (!z->reshard_after_forward) return stage_elems * pb + largest * gb;
    return largest * ((1 + z->prefetch) * pb + gb);
}

/* ZeRO-3 of a MoE model (docs/memory.md §10): the largest unit a stage
 * gathers, in elements, and (*gathered) its parameters gathered when the
 * forward's gathers stay (reshard_after_forward: false). A MoE layer's unit
 * is its dense part (attention, norms, router, shared experts) with the
 * rank's routed experts of the layer, which gather over edp in the same
 * block (FSDP2: AutoModel fully_shard(block.mlp.experts) nested in the
 * block's unit; torchtitan one unit with an edp mesh for the experts). The
 * experts are gathered only where they are sharded (edp > 1) or held as
 * fp32 master weights whose 16-bit copies are transient (param_copy_transient:
 * FSDP2 casts them in its all-gather even on one rank); with edp = 1 and
 * 16-bit parameters they stay resident (AutoModel leaves them out of FSDP:
 * ignored_params) and only the dense part is gathered. *expert_mat: the
 * grouped up projection of the rank's experts of one layer (unit: param), 0
 * where the experts are not gathered. */
static int64_t moe_zero3_unit(const model_cfg *m, const plan_cfg *p, const params_count *pc,
                              const moe_layout *l, const eval_stage *st, int64_t edge,
                              int64_t dense_elems, int64_t *gathered, int64_t *expert_mat) {
    const bool experts = l->edp > 1 ||
                         (p->framework.param_copy_transient && p->precision.master != DT_NONE);
    const int64_t unit_experts = experts ? l->expert_elems : 0;
    int64_t u = max64(st->dense_layers > 0 ? pc->layer : 0, edge);
    if (st->moe_layers > 0) u = max64(u, pc->moe_layer - m->experts * pc->expert + unit_experts);
    *gathered = dense_elems + (experts ? st->expert_elems : 0);
    const int64_t up = m->mlp == MLP_SWIGLU ? 2 : 1;
    *expert_mat = experts && st->moe_layers > 0
                      ? l->experts_per_rank * up * (m->expert_ffn_hidden / l->etp) * m->hidden
                      : 0;
    return u;
}

/* A stage's collectives and its time (step_time.h). */
static void stage_comm_time(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                            const eval_shared *sh, int64_t s, int64_t layers, int64_t elems,
                            int64_t expert, int64_t moe_layers, comm_list *comm,
                            stage_time *out) {
    const int first = pipe_stage_has_embedding(p, s), last = pipe_stage_has_head(p, s);
    comm_stage_info ci = {.stage = s,
                          .layers = layers,
                          .rank_params = elems,
                          .units = p->zero == 3 ? comm_zero3_units(p, layers, first, last,
                                                      elems * dtype_bytes(p->precision.params))
                                                : 0, /* used by ZeRO-3 only */
                          .tied_rows_params = sh->pc.embedding,
                          .offload_bytes = offload_bytes(m, p, sh, s, layers),
                          .expert_units = p->zero == 3 ? comm_zero3_expert_units(p, moe_layers,
                                                      expert * dtype_bytes(p->precision.params))
                                                       : 0,
                          .expert_params = expert,
                          .moe_layers = moe_layers,
                          .moe = sh->time.moe ? &sh->time.moe_l : NULL};
    comm_stage(m, p, &ci, comm);
    const int64_t d = p->dp * p->cp;
    int64_t opt_elems = p->zero >= 1 ? states_shard(elems, d) : elems;
    if (expert) opt_elems += p->zero >= 1 ? states_shard(expert, sh->time.moe_l.edp) : expert;
    stage_time_compute(&sh->time, c, p, s, layers, opt_elems, comm, out);
    if (p->pp > 1 && p->schedule == SCHED_INTERLEAVED && pipe_layout_given(p)) {
        const int64_t v = p->virtual_stages;
        const int64_t chunk[3] = {pipe_chunk_layers(m, p, s, 0),
                                  pipe_chunk_layers(m, p, s, v > 2 ? 1 : 0),
                                  pipe_chunk_layers(m, p, s, v - 1)};
        stage_time_chunks(&sh->time, p, s, chunk, out);
    }
    /* distillation, shared: each micro-batch's forward runs the teacher's
     * stage first (time/distill_time.h), spread over the stage's chunks */
    if (sh->teacher && p->distill.placement == DISTILL_SHARED) {
        const double tf = distill_fwd_s(&sh->teacher_time, &sh->time.link[GROUP_TP],
                                        sh->teacher->layers / p->pp, first, last);
        const double per_chunk = tf / (double)pipe_chunks(p);
        out->f += per_chunk;
        out->compute += per_chunk;
        for (int i = 0; i < 3; i++) out->chunk[i].f += per_chunk;
    }
}

/* The op temporaries counted on top of a stage's activation peak
 * (docs/memory.md §6): the largest working set of the stage's compute ops;
 * under ZeRO >= 1 over d > 1 a reduce-scatter's receive buffer for the
 * largest part one rank receives (a unit under ZeRO-2/3, a bucket under
 * ZeRO-1; at most a shard), with the gradient stream live beside it; the
 * optimizer's gradient copy only where it exceeds the activations, since it
 * runs when none are live. `pipe`: what a pipeline stage holds beside its
 * compute ops (pipe_workspace). */
static int64_t stage_temps(const cluster_cfg *c, const plan_cfg *p, const eval_shared *sh, const eval_stage *st,
                           int first, int last, int64_t largest_unit, int64_t pipe) {
    const int64_t d = p->dp * p->cp;
    const int64_t shard = states_shard(st->param_elems, d);
    /* a recompute's working set (act_working, counted in the activations)
     * is live only inside a layer's backward, so every other op's working
     * set counts only beyond it (ops run one at a time; under full recompute
     * the forward's transient tensors are the very ones the backward
     * rebuilds) */
    int64_t t = max64(st->layers > 0 ? sh->ws.layer_bwd : 0,
                      ws_stage_other_ops(&sh->ws, first, st->layers, last) - st->act_working) +
                pipe;
    /* a framework whose reduce-scatter works in place on the gradient buffer
     * (grad_bucket none: Megatron-LM's distributed optimizer, llm.c's ZeRO-1)
     * receives into no separate buffer */
    const bool in_place = p->framework.grad_bucket_none && p->zero <= 1;
    if (d > 1 && p->zero >= 1 && !in_place) {
        const int64_t gb = dtype_bytes(p->precision.grads);
        int64_t part = largest_unit; /* ZeRO-2/3 */
        if (p->zero == 1) /* a bucket of at least d elements; memory.bucket 0: one bucket */
            part = p->bucket_bytes > 0 ? max64(p->bucket_bytes / gb, d) : st->param_elems;
        t = max64(t, ws_reduce_scatter_bytes(p, c->kernels_fp32, min64(part, shard)) + sh->ws.stream_bwd);
    }
    const int64_t opt_elems = p->zero >= 1 ? shard : st->param_elems;
    return max64(t, ws_optimizer_bytes(p, opt_elems) - st->activations);
}

/* Workspace a pipeline stage holds beside its compute ops (docs/memory.md
 * §6, "Pipelines"): zero-bubble's stashes from B to W (pipe.c's count), and
 * the blocks of sends not complete yet (runtime/rt_pipe.c frees one when a
 * later send or receive finds it done): one message per micro-batch in
 * flight (a forward's block can wait until its gradient comes back). With
 * pipeline.deallocate_outputs a block is freed when its send completes
 * (Megatron-LM deallocate_output_tensor; Llama 3 §3.3.2): only the messages
 * in transit, one per direction, at most one per micro-batch in flight. */
static int64_t pipe_workspace(const model_cfg *m, const plan_cfg *p, const pipe_inflight *in,
                              int64_t stash) {
    if (p->pp == 1) return 0;
    const int64_t pending = p->deallocate_outputs ? min64(in->inflight, 2) : in->inflight;
    return stash + pending * comm_p2p_bytes(m, p);
}

/* Zero-bubble's stashes of stage s (docs/memory.md §6 "Zero-bubble's
 * stash"): each of the min(s + 1, m) micro-batches between B and W keeps
 * every layer's GEMM output gradients. A dense standard-attention model's
 * layers keep zb_stash each; a MoE or MLA model's layers theirs at their own
 * widths, the queued-W gradient fields (workspace.c zb_queued: multi-head
 * latent attention's five projections; moe_zb_queued_bytes: a MoE layer's
 * router, shared and routed experts), the MTP modules' layers among the MoE
 * ones (moe_stage_layers). */
static int64_t zb_stash_bytes(const model_cfg *m, const plan_cfg *p, const eval_shared *sh,
                              const pipe_inflight *in, const eval_stage *st) {
    const ws_bytes *w = &sh->ws;
    if ((!sh->time.moe && !model_is_mla(m)) || in->stash_units == 0)
        return in->stash_units * w->zb_stash;
    const int64_t sets = in->stash_units / st->layers; /* micro-batches between B and W */
    const int64_t g_d = w->zb_attn_grads + w->zb_mlp_grads;
    if (!sh->time.moe) return sets * st->layers * g_d;
    int64_t moe_in, moe_g;
    moe_zb_queued_bytes(m, p, &sh->time.moe_l, w->grad_elem, &moe_in, &moe_g);
    return sets * (st->dense_layers * g_d + st->moe_layers * (w->zb_attn_grads + moe_g));
}

/* DualPipe (docs/memory.md §4 "DualPipe: activations and queued W's"): the
 * rank's saved tensors at the moment of its step where they and the queued
 * W's weigh most (pipe_dualpipe_peak). A chunk-micro-batch between F and B
 * holds its layers' saved tensors (`saved` dense, `moe_saved` MoE) and the
 * embedding's or head's when the chunk holds them; one whose W is queued its
 * layers' linear inputs and output gradients (workspace.c zb_queued,
 * moe_zb_queued_bytes). Returns the layers' saved bytes then (queued
 * inputs included); *extras the embedding's and head's, *stash the queued
 * output gradients (op temporaries). */
static int64_t dual_layer_bytes(const model_cfg *m, const plan_cfg *p, const eval_shared *sh,
                                int64_t s, int64_t saved, int64_t moe_saved, int64_t *extras,
                                int64_t *stash) {
    const ws_bytes *w = &sh->ws;
    int64_t moe_in = 0, moe_g = 0;
    if (sh->time.moe) moe_zb_queued_bytes(m, p, &sh->time.moe_l, w->grad_elem, &moe_in, &moe_g);
    const int64_t in_d = w->zb_attn_inputs + w->zb_mlp_inputs, g_d = w->zb_attn_grads + w->zb_mlp_grads;
    const int64_t in_e = w->zb_attn_inputs + moe_in, g_e = w->zb_attn_grads + moe_g;
    int64_t lay[2], ext[2], set[2], qin[2], qg[2], queued[2];
    for (int c = 0; c < 2; c++) {
        int64_t d = pipe_chunk_layers(m, p, s, c), e = 0;
        if (sh->time.moe) moe_chunk_layers(m, p, s, c, &d, &e);
        /* the embedding on chunk 0 of rank 0 and chunk 1 of rank pp-1, the head on the other */
        const bool end = s == (c ? p->pp - 1 : 0), other_end = s == (c ? 0 : p->pp - 1);
        lay[c] = d * saved + e * moe_saved;
        ext[c] = (end ? sh->act.first_stage : 0) + (other_end ? sh->act.last_stage : 0);
        qin[c] = d * in_d + e * in_e;
        qg[c] = d * g_d + e * g_e;
        set[c] = lay[c] + ext[c];
        queued[c] = qin[c] + qg[c];
    }
    pipe_dual_moment at;
    pipe_dualpipe_peak(p->pp, s, set, queued, &at);
    *extras = at.sets[0] * ext[0] + at.sets[1] * ext[1];
    *stash = at.queued[0] * qg[0] + at.queued[1] * qg[1];
    return at.sets[0] * lay[0] + at.sets[1] * lay[1] + at.queued[0] * qin[0] + at.queued[1] * qin[1];
}

static void eval_stage_one(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                           const eval_shared *sh, int64_t s, eval_stage *st, comm_list *comm) {
    const params_count *pc = &sh->pc;
    const act_bytes *ab = &sh->act;
    const int first = pipe_stage_has_embedding(p, s), last = pipe_stage_has_head(p, s);
    const int64_t head = m->tied_embeddings ? (p->pp > 1 ? pc->embedding : 0) : pc->output;
    memset(st, 0, sizeof *st);
    st->stage = s;
    st->layers = pipe_stage_layers(m, p, s);
    int64_t dense_elems;
    if (sh->time.moe) {
        moe_stage_layers(m, p, s, &st->dense_layers, &st->moe_layers);
        dense_elems = moe_stage_elems(m, p, pc, &sh->time.moe_l, s, st->dense_layers,
                                      st->moe_layers, &st->expert_elems);
    } else {
        dense_elems = stage_param_elems(m, p, pc, s, st->layers);
    }
    st->param_elems = dense_elems + st->expert_elems;

    states_bytes sb;
    states_compute_moe(dense_elems, st->expert_elems, sh->time.moe ? sh->time.moe_l.edp : 1, p,
                       &sb);
    st->params = sb.params;
    st->grads = sb.grads;
    st->master = sb.master;
    st->optimizer = sb.optimizer;
    st->host = sb.host;

    pipe_inflight in;
    pipe_stage_inflight(m, p, s, &in);
    st->inflight = in.inflight;
    int64_t layer_act = in.layer_units * ab->layer_saved;
    int64_t working = ab->layer_working, moe_saved = ab->layer_saved;
    if (sh->time.moe && st->layers > 0) {
        /* MoE layers save their attention block and the MoE MLP's tensors
         * (moe_act_mlp_bytes); full recompute keeps only the layer input,
         * the same as a dense layer's, and rebuilds the whole layer */
        const int64_t mlp = moe_act_mlp_bytes(m, p, &sh->time.moe_l);
        const bool full = p->recompute == RECOMPUTE_FULL;
        moe_saved = full ? ab->layer_saved : sh->act_attn.layer_saved + mlp;
        const double per = (double)in.layer_units / (double)st->layers; /* sets per layer */
        layer_act = (int64_t)(per * (double)(st->dense_layers * ab->layer_saved +
                                             st->moe_layers * moe_saved));
        if (full) working = max64(working, sh->act_attn.layer_full + mlp);
    }
    int64_t extras = in.first_extra * ab->first_stage + in.last_extra * ab->last_stage;
    int64_t stash = zb_stash_bytes(m, p, sh, &in, st);
    if (p->schedule == SCHED_DUALPIPE && p->pp > 1)
        layer_act = dual_layer_bytes(m, p, sh, s, ab->layer_saved, moe_saved, &extras, &stash);
    if (p->offload_activations) { /* keep the layer computing and the one in transfer */
        int64_t on_device = min64(layer_act, ACT_OFFLOAD_ON_DEVICE * ab->layer_saved);
        st->host += layer_act - on_device;
        layer_act = on_device;
    }
    st->act_saved = layer_act + extras;
    st->act_working = st->layers ? working : 0;
    st->activations = st->act_saved + st->act_working;

    const int64_t d = p->dp * p->cp;
    const int64_t edge = max64(first ? pc->embedding + pc->position : 0,
                               last ? pc->final_norm + head : 0);
    int64_t largest = max64(pc->layer, edge);
    /* framework profile: buckets that are views of the gradient buffer
     * (Megatron-LM, llm.c) or FSDP2's per-unit gradients (counted in the
     * ZeRO-3 buffers) take no bytes of their own (docs/memory.md "Framework
     * profiles") */
    st->buf_comm = d > 1 && !p->framework.grad_bucket_none ? p->bucket_bytes : 0;
    if (p->zero == 3 && sh->time.moe && (d > 1 || sh->time.moe_l.edp > 1)) {
        int64_t gathered, expert_mat;
        const int64_t unit = moe_zero3_unit(m, p, pc, &sh->time.moe_l, st, edge, dense_elems,
                                            &gathered, &expert_mat);
        st->buf_zero3 = zero3_buffer_bytes(m, p, unit, edge, gathered, expert_mat);
    } else {
        st->buf_zero3 =
            p->zero == 3 && d > 1 ? zero3_buffer_bytes(m, p, largest, edge, st->param_elems, 0) : 0;
    }
    st->buf_temps = stage_temps(c, p, sh, st, first, last, largest, pipe_workspace(m, p, &in, stash));
    st->buf_cp = act_cp_buffer_bytes(m, p, true); /* K/V and dK/dV, double-buffered */
    st->buf_workspace = p->workspace_bytes;
    st->reserved = c->gpu_reserved_bytes;
    if (sh->teacher) { /* distillation (cost/distill.h): the KD tensors of the head's in-flight sets */
        distill_mem dm;
        ps_err ignored; /* (the plan passed distill_check_cfg: tp and the group are valid) */
        distill_stage_memory(m, sh->teacher, p, s, &dm, &ignored);
        st->teacher_weights = dm.weights;
        st->teacher_forward = dm.forward;
        st->kd_saved = sat_mul(in.last_extra, dm.kd_saved);
    }
    int64_t allocated = st->params + st->grads + st->master + st->optimizer + st->activations +
                        st->buf_comm + st->buf_zero3 + st->buf_temps + st->buf_cp +
                        st->buf_workspace;
    /* (the teacher's parts are not in plan_check's size bound: saturating) */
    if (sh->teacher)
        allocated = sat_add(allocated, sat_add(sat_add(st->teacher_weights, st->teacher_forward),
                                               st->kd_saved));
    st->fragmentation = (int64_t)(p->fragmentation * (double)allocated);
    st->other = st->buf_comm + st->buf_zero3 + st->buf_temps + st->buf_cp + st->buf_workspace +
                st->reserved + st->fragmentation;
    st->total = sat_add(sat_add(allocated, st->reserved), st->fragmentation);

    stage_comm_time(m, c, p, sh, s, st->layers, dense_elems, st->expert_elems, st->moe_layers,
                    comm, &st->time);
    if (sh->teacher && p->distill.placement == DISTILL_SHARED)
        st->teacher_fwd_s = distill_fwd_s(&sh->teacher_time, &sh->time.link[GROUP_TP],
                                          sh->teacher->layers / p->pp, first, last);
    for (int g = 0; g < GROUP_COUNT; g++) st->comm_bytes[g] = comm->group_bytes[g];
}

void eval_plan(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, eval_result *out,
               eval_stage *stages) {
    eval_cache k;
    k.valid = false;
    eval_plan_cached(m, c, p, out, stages, &k);
}

void eval_plan_cached(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                      eval_result *out, eval_stage *stages, eval_cache *cache) {
    eval_plan_distill(m, NULL, c, p, out, stages, cache);
}

void eval_plan_spec(const plan_spec *s, eval_result *out, eval_stage *stages) {
    eval_cache k;
    k.valid = false;
    eval_plan_distill(&s->model.cfg, &s->teacher.cfg, &s->cluster.cfg, &s->cfg, out, stages, &k);
}

/* What the teacher adds beyond the stages (docs/distillation.md "Planner"):
 * its FLOPs (HFU), and under separate its own GPUs' memory and the step as
 * the longest of the student's step, the teacher's forwards and the
 * transfer. MFU stays on the student's model FLOPs. */
static void distill_finish(const model_cfg *m, const model_cfg *t, const cluster_cfg *c,
                           const plan_cfg *p, eval_result *out) {
    eval_distill *d = &out->distill;
    ps_err ignored;
    d->set = true;
    d->placement = p->distill.placement;
    distill_layout_compute(t, c, p, &d->layout);
    d->kd_per_micro = distill_kd_bytes(m, p);
    d->topk_saving = distill_topk_saving(m, p);
    double hw_per_token;
    d->flops_teacher_per_step = distill_teacher_flops_per_token(t, p, &hw_per_token) *
                                out->tokens_per_step;
    d->flops_teacher_hardware_per_step = hw_per_token * out->tokens_per_step;
    step_time *st = &out->time;
    d->student_step_s = st->step;
    const double peak = kt_peak(c, p);
    if (p->distill.placement != DISTILL_SEPARATE) {
        out->flops_hardware_per_step += d->flops_teacher_hardware_per_step;
        st->hfu = out->flops_hardware_per_step / (st->step * peak * (double)p->gpus);
        return;
    }
    distill_mem dm;
    distill_teacher_memory(t, c, p, &dm, &ignored);
    d->teacher_weights = dm.weights;
    d->teacher_forward = dm.forward;
    d->teacher_logits = dm.logits;
    d->teacher_total = sat_add(sat_add(dm.weights, dm.forward),
                               sat_add(p->workspace_bytes, c->gpu_reserved_bytes));
    d->teacher_fits = d->teacher_total <= c->gpu_memory_bytes;
    out->fits = out->fits && d->teacher_fits;
    distill_separate_time dt;
    distill_separate_compute(m, t, c, p, &dt);
    d->teacher_s = dt.teacher_s;
    d->transfer_s = dt.transfer_s;
    d->teacher_micro_batches = dt.micro_batches;
    d->inter_node = dt.inter_node;
    d->transfer_bytes_per_step = distill_transfer_bytes(m, p);
    const double step = fmax(st->step, fmax(dt.teacher_s, dt.transfer_s));
    d->exposed_s = step - st->step;
    st->step = step;
    st->tokens_per_s = out->tokens_per_step / step;
    st->mfu = out->flops_model_per_step / (step * peak * (double)p->gpus);
    out->flops_hardware_per_step += d->flops_teacher_hardware_per_step;
    st->hfu = out->flops_hardware_per_step / (step * peak * (double)(p->gpus + p->distill.gpus));
}

void eval_plan_distill(const model_cfg *m, const model_cfg *t, const cluster_cfg *c,
                       const plan_cfg *p, eval_result *out, eval_stage *stages,
                       eval_cache *cache) {
    if (!p->distill.set) t = NULL;
    cache_fill(cache, m, t, c, p);
    const eval_shared *sh = cache;
    out->model_params = sh->model_params;
    out->micro_batches = plan_micro_batches(p);
    out->stages = p->pp;
    out->heaviest = -1;
    /* With an even split, a middle stage holds the same parameters and buffers
     * as any other middle stage and never more live micro-batches than stage 0
     * (every schedule's in-flight count is non-increasing in the stage index),
     * while stage 0 adds the embedding: so the heaviest stage is 0 or the last.
     * Middle stages also take the same time. (A layout of the plan's own,
     * pipe_layout_given, may make a middle stage the heaviest: all are
     * evaluated.) When the caller does not ask for
     * every stage, only stages 0 and p-1 are evaluated, plus the time of stage
     * 1 standing for the middle (tests hold this equal to the full scan). */
    const int shortcut = !stages && !pipe_layout_given(p) && p->pp > 2 && !model_is_moe(m);
    /* DualPipe: ranks s and pp-1-s mirror each other and the middle ranks take
     * the same time, but a rank's zero-bubble stashes grow towards the middle
     * (pipe_stage_inflight): the shortcut evaluates 0, pp/2 - 1 and pp - 1 */
    const int64_t mid = p->schedule == SCHED_DUALPIPE ? p->pp / 2 - 1 : 0;
    stage_time times[PLAN_MAX_STAGES];
    const stage_time *by_stage[PLAN_MAX_STAGES];
    if (shortcut) { /* a middle stage: time only */
        comm_list comm;
        const int64_t layers = pipe_stage_layers(m, p, 1);
        stage_comm_time(m, c, p, sh, 1, layers, stage_param_elems(m, p, &sh->pc, 1, layers), 0, 0,
                        &comm, &times[1]);
    }
    /* two buffers each: the heaviest stage so far stays in one while the next
     * stage is evaluated into the other (sweeps call this millions of times,
     * and a comm_list is 2 KiB) */
    eval_stage st_buf[2];
    comm_list comm_buf[2];
    int cur = 0, heavy = -1;
    for (int64_t s = 0; s < p->pp; s++) {
        if (shortcut && s > 0 && s != mid && s < p->pp - 1) s = s < mid ? mid : p->pp - 1;
        eval_stage *st = &st_buf[cur];
        eval_stage_one(m, c, p, sh, s, st, &comm_buf[cur]);
        if (stages) stages[s] = *st;
        times[s] = st->time;
        if (heavy < 0 || st->total > st_buf[heavy].total) {
            heavy = cur;
            cur ^= 1;
        }
    }
    out->heaviest = st_buf[heavy].stage;
    out->heavy = st_buf[heavy];
    comm_list_copy(&out->comm, &comm_buf[heavy]);
    for (int64_t s = 0; s < p->pp; s++)
        by_stage[s] = &times[shortcut && s > 0 && s < p->pp - 1 ? 1 : s];
    /* FLOPs per token depend on the cached shape (seq, recompute); a step
     * multiplies them by its tokens, as flops_compute does */
    flops_step f = sh->flops;
    f.tokens = (double)p->global_batch * (double)p->seq;
    f.model_per_step = f.model_per_token * f.tokens;
    f.hardware_per_step = f.hardware_per_token * f.tokens;
    out->tokens_per_step = f.tokens;
    out->flops_model_per_step = f.model_per_step;
    out->flops_hardware_per_step = f.hardware_per_step;
    out->capacity_bytes = c->gpu_memory_bytes;
    out->fits = out->heavy.total <= c->gpu_memory_bytes;
    step_time_combine(c, p, by_stage, f.tokens, f.model_per_step, f.hardware_per_step,
                      &out->time);
    memset(&out->distill, 0, sizeof out->distill);
    if (t) distill_finish(m, t, c, p, out);
}

int eval_check_finite(const eval_result *r, ps_err *err) {
    const step_time *t = &r->time;
    const struct {
        const char *name;
        double v;
    } parts[] = {{"step time", t->step},
                 {"pipeline time", t->pipeline},
                 {"compute time", t->compute},
                 {"pipeline bubble", t->bubble},
                 {"optimizer time", t->optimizer},
                 {"exposed dp communication", t->exposed[GROUP_DP]},
                 {"exposed tp communication", t->exposed[GROUP_TP]},
                 {"exposed pp communication", t->exposed[GROUP_PP]},
                 {"exposed cp communication", t->exposed[GROUP_CP]},
                 {"exposed host transfers", t->exposed[GROUP_HOST]},
                 {"hidden dp communication", t->hidden[GROUP_DP]},
                 {"hidden tp communication", t->hidden[GROUP_TP]},
                 {"hidden pp communication", t->hidden[GROUP_PP]},
                 {"hidden cp communication", t->hidden[GROUP_CP]},
                 {"hidden host transfers", t->hidden[GROUP_HOST]},
                 {"exposed ep all-to-all", t->exposed[GROUP_EP]},
                 {"exposed edp communication", t->exposed[GROUP_EDP]},
                 {"tokens per second", t->tokens_per_s},
                 {"MFU", t->mfu},
                 {"HFU", t->hfu},
                 {"model FLOPs per step", r->flops_model_per_step},
                 {"hardware FLOPs per step", r->flops_hardware_per_step}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (!isfinite(parts[i].v) || parts[i].v < 0)
            return ps_err_set(err,
                              "the time model computed %g for the %s of this plan (expected a "
                              "finite number >= 0): a spec value lies outside the ranges the "
                              "model holds (docs/specs.md \"Limits\")",
                              parts[i].v, parts[i].name);
    if (!(t->step > 0))
        return ps_err_set(err, "the time model computed a step time of %g s for this plan "
                               "(expected > 0)", t->step);
    return 0;
}
