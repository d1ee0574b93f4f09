/* distill.c — distillation's memory, FLOPs and bytes (see distill.h,
 * docs/distillation.md "Planner"). */
#include "cost/distill.h"

#include "base/sat_int.h"
#include "cost/flops.h"
#include "cost/infer.h"

/* The inference configuration the teacher runs under on tp ranks: its
 * scheme and group, fp32 compute when the student's activations are fp32
 * (parasim's CPU runtime), else bf16 (docs/memory.md §8). */
static void teacher_infer_cfg(const plan_cfg *p, int64_t tp, infer_cfg *ic) {
    infer_cfg_init(ic);
    ic->tp = tp;
    ic->weights = (infer_weights)p->distill.weights;
    ic->group_size = p->distill.group_size;
    ic->compute = p->precision.activations == DT_FP32 ? DT_FP32 : DT_BF16;
}

static bool tp_splits(const model_cfg *t, const plan_cfg *p, int64_t tp) {
    infer_cfg ic;
    teacher_infer_cfg(p, tp, &ic);
    return !infer_tp_check(t, tp, NULL, NULL) && !infer_group_check(t, &ic, NULL);
}

int64_t distill_separate_tp(const model_cfg *t, const cluster_cfg *c, const plan_distill *d) {
    plan_cfg p = {0};
    p.distill = *d;
    p.precision.activations = DT_BF16; /* (the group check does not depend on it) */
    const int64_t most = d->gpus < c->gpus_per_node ? d->gpus : c->gpus_per_node;
    for (int64_t tp = most; tp >= 1; tp--)
        if (d->gpus % tp == 0 && tp_splits(t, &p, tp)) return tp;
    return 0;
}

void distill_layout_compute(const model_cfg *t, const cluster_cfg *c, const plan_cfg *p,
                            distill_layout *out) {
    const plan_distill *d = &p->distill;
    if (d->placement == DISTILL_SEPARATE) {
        out->tp = distill_separate_tp(t, c, d);
        if (out->tp < 1) out->tp = 1; /* (refused by distill_check_cfg) */
        out->pp = 1;
        out->dp = d->gpus / out->tp;
        out->gpus = d->gpus;
        out->tokens = p->micro_batch * p->seq;
    } else {
        out->tp = p->tp, out->pp = p->pp, out->dp = p->dp * p->cp;
        out->gpus = p->gpus;
        out->tokens = plan_tokens_per_rank(p);
    }
}

plan_reason distill_check_cfg(const model_cfg *t, const cluster_cfg *c, const plan_cfg *p) {
    const plan_distill *d = &p->distill;
    if (!d->set) return PLAN_OK;
    if (d->placement == DISTILL_SEPARATE) {
        if (distill_separate_tp(t, c, d) < 1) return PLAN_DISTILL_TP;
        if (p->gpus + d->gpus > cluster_gpus(c)) return PLAN_DISTILL_GPUS;
        return PLAN_OK;
    }
    if (!tp_splits(t, p, p->tp)) return PLAN_DISTILL_TP;
    if (t->layers % p->pp) return PLAN_DISTILL_PP;
    return PLAN_OK;
}

int64_t distill_kd_bytes(const model_cfg *student, const plan_cfg *p) {
    const int64_t n = plan_tokens_per_rank(p), rows = model_vocab_rows(student, p->tp);
    const int64_t qs = sat_mul(n, sat_mul(rows, 4));
    const int64_t qt = p->distill.top_k ? sat_mul(n, sat_mul(p->distill.top_k, 8)) : qs;
    return sat_add(qs, qt);
}

int64_t distill_topk_saving(const model_cfg *student, const plan_cfg *p) {
    if (!p->distill.top_k) return 0;
    const int64_t n = plan_tokens_per_rank(p), rows = model_vocab_rows(student, p->tp);
    return n * (rows * 4 - 8 * p->distill.top_k);
}

/* Weights (values + scales) of teacher t on a tp rank with `layers` layers. */
static int weights_at(const model_cfg *t, const infer_cfg *ic, int64_t layers, int64_t *out,
                      ps_err *err) {
    model_cfg m = *t;
    infer_mem mem;
    m.layers = layers;
    if (infer_memory_predict(&m, ic, NULL, 0, 0, 0, &mem, err)) return -1;
    *out = sat_add(mem.weights, mem.scales);
    return 0;
}

/* The teacher's stage `stage` of pp on a tp rank (docs/distillation.md
 * "Planner", weights): pp = 1, infer's whole-model weights W(L). Else the
 * stage's L/pp layers at infer's bytes per layer, (W(L) - W(L/pp)) /
 * (L - L/pp), and what is outside the layers, W(L) - L x that, less the
 * vocabulary matrices E = ceil(V/tp) h x (4 B under f32, else 2 B) it holds
 * (one tied, two untied), plus E on the first stage (the embedding) and E
 * on the last (the head, or a tied embedding's copy), as the student's
 * stages hold them (eval.c). Norms and a learned position table stay on
 * every stage (a small overcount). A MoE teacher's layers are averaged. */
static int stage_weights(const model_cfg *t, const infer_cfg *ic, int64_t pp, int64_t stage,
                         int64_t *out, ps_err *err) {
    int64_t whole, part;
    if (weights_at(t, ic, t->layers, &whole, err)) return -1;
    if (pp == 1) return *out = whole, 0;
    const int64_t ls = t->layers / pp;
    if (weights_at(t, ic, ls, &part, err)) return -1;
    const int64_t per_layer = (whole - part) / (t->layers - ls);
    const int64_t rest = whole - t->layers * per_layer;
    const int64_t e = model_vocab_rows(t, ic->tp) * t->hidden * (ic->weights == WQ_F32 ? 4 : 2);
    const int64_t held = (t->tied_embeddings ? 1 : 2) * e;
    *out = ls * per_layer + rest - held + (stage == 0 ? e : 0) + (stage == pp - 1 ? e : 0);
    return 0;
}

/* The teacher's forward on one rank: infer's activations for N tokens (its
 * live tensors, quantized input and dequantization buffer) and, on its last
 * stage, the fp32 logits of every token, N ceil(V/tp) 4 B. */
static int forward_bytes(const model_cfg *t, const infer_cfg *ic, int64_t tokens, bool last,
                         distill_mem *out, ps_err *err) {
    infer_mem mem;
    if (infer_memory_predict(t, ic, NULL, 0, 0, tokens, &mem, err)) return -1;
    out->logits = last ? sat_mul(tokens, sat_mul(model_vocab_rows(t, ic->tp), 4)) : 0;
    out->forward = sat_add(mem.activations, out->logits);
    return 0;
}

int distill_stage_memory(const model_cfg *student, const model_cfg *t, const plan_cfg *p,
                         int64_t stage, distill_mem *out, ps_err *err) {
    *out = (distill_mem){0};
    if (!p->distill.set) return 0;
    if (stage == p->pp - 1) out->kd_saved = distill_kd_bytes(student, p);
    if (p->distill.placement == DISTILL_SEPARATE) return 0;
    infer_cfg ic;
    teacher_infer_cfg(p, p->tp, &ic);
    return stage_weights(t, &ic, p->pp, stage, &out->weights, err) ||
           forward_bytes(t, &ic, plan_tokens_per_rank(p), stage == p->pp - 1, out, err);
}

int distill_teacher_memory(const model_cfg *t, const cluster_cfg *c, const plan_cfg *p,
                           distill_mem *out, ps_err *err) {
    distill_layout l;
    infer_cfg ic;
    *out = (distill_mem){0};
    distill_layout_compute(t, c, p, &l);
    teacher_infer_cfg(p, l.tp, &ic);
    return stage_weights(t, &ic, 1, 0, &out->weights, err) ||
           forward_bytes(t, &ic, l.tokens, true, out, err);
}

double distill_teacher_flops_per_token(const model_cfg *t, const plan_cfg *p, double *hardware) {
    flops_step f;
    plan_cfg q = *p;
    q.recompute = RECOMPUTE_NONE; /* (the forward does not depend on it) */
    flops_compute(t, &q, &f);
    *hardware = f.hardware_fwd_per_token;
    return f.model_fwd_per_token;
}

double distill_transfer_bytes(const model_cfg *student, const plan_cfg *p) {
    const plan_distill *d = &p->distill;
    if (!d->set || d->placement != DISTILL_SEPARATE) return 0;
    const double tokens = (double)p->global_batch * (double)p->seq;
    if (d->top_k) return tokens * (double)d->top_k * 8.0 * (double)p->tp;
    return tokens * (double)student->vocab * 4.0;
}

int distill_tp_calls(const model_cfg *student, const plan_cfg *p, comm_tp_call out[2]) {
    const plan_distill *d = &p->distill;
    if (!d->set || d->placement != DISTILL_SHARED || p->tp < 2) return 0;
    const int64_t n = plan_tokens_per_rank(p), rows = model_vocab_rows(student, p->tp);
    const int64_t soft = d->alpha == 1.0 ? 0 : 3;
    int k = 0;
    if (d->top_k)
        out[k++] = (comm_tp_call){.coll = COLL_ALL_GATHER, .calls = 1,
                                  .bytes_per_call = sat_mul(sat_mul(n, rows), sat_mul(p->tp, 4))};
    const int64_t ar = (d->top_k ? 0 : 2) + soft;
    if (ar) out[k++] = (comm_tp_call){.coll = COLL_ALL_REDUCE, .calls = ar, .bytes_per_call = n * 4};
    return k;
}
