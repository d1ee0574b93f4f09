/* distill_time.c — the teacher's forward and the logits' transfer in
 * seconds (see distill_time.h, docs/distillation.md "Planner"). */
#include "time/distill_time.h"

#include "cost/distill.h"
#include "time/kernel_time.h"

void distill_time_init(const model_cfg *t, const cluster_cfg *c, const plan_cfg *q,
                       distill_time_ctx *out) {
    kt_part part;
    kt_layer(t, c, q, &part);
    out->layer_f = part.fwd;
    kt_first(t, c, q, &part);
    out->first_f = part.fwd;
    kt_last(t, c, q, &part); /* its loss op stands for the teacher's tempered softmax */
    out->last_f = part.fwd;
    out->tp = q->tp;
    const comm_unit units[3] = {COMM_UNIT_EMBED, COMM_UNIT_LAYER, COMM_UNIT_HEAD};
    for (int u = 0; u < 3; u++)
        out->n_calls[u] = q->tp > 1 ? comm_tp_unit(t, q, units[u], false, out->calls[u]) : 0;
}

static double calls_s(const distill_time_ctx *x, int u, const coll_link *l) {
    double s = 0;
    for (int i = 0; i < x->n_calls[u]; i++)
        s += (double)x->calls[u][i].calls *
             coll_time(x->calls[u][i].coll, x->tp, x->calls[u][i].bytes_per_call, l);
    return s;
}

double distill_fwd_s(const distill_time_ctx *x, const coll_link *tp_link, int64_t layers,
                     bool first, bool last) {
    double s = (double)layers * (x->layer_f + calls_s(x, 1, tp_link));
    if (first) s += x->first_f + calls_s(x, 0, tp_link);
    if (last) s += x->last_f + calls_s(x, 2, tp_link);
    return s;
}

void distill_teacher_plan(const model_cfg *t, const cluster_cfg *c, const plan_cfg *p,
                          plan_cfg *out) {
    distill_layout l;
    distill_layout_compute(t, c, p, &l);
    *out = *p;
    out->tp = l.tp, out->pp = 1, out->cp = 1, out->dp = l.dp, out->gpus = l.gpus;
    out->sp = false;
    out->schedule = SCHED_1F1B, out->virtual_stages = 1;
    out->ep = 1, out->etp = 0;
    out->zero = 0;
    const uint8_t order[PLAN_GROUPS] = {GROUP_ORDER_TP, GROUP_ORDER_CP, GROUP_ORDER_DP,
                                        GROUP_ORDER_PP};
    for (int i = 0; i < PLAN_GROUPS; i++) out->placement[i] = order[i];
    for (int i = 0; i < PLAN_MAX_STAGES; i++) out->stage_layers[i] = 0;
    out->first_stage_layers = out->last_stage_layers = 0;
    out->account_for_embedding = out->account_for_loss = false;
}

void distill_separate_compute(const model_cfg *student, const model_cfg *t,
                              const cluster_cfg *c, const plan_cfg *p,
                              distill_separate_time *out) {
    plan_cfg q;
    distill_time_ctx x;
    coll_link tp_link;
    distill_teacher_plan(t, c, p, &q);
    distill_time_init(t, c, &q, &x);
    coll_group_link(c, &q, GROUP_TP, &tp_link);
    out->fwd_s = distill_fwd_s(&x, &tp_link, t->layers, true, true);
    const int64_t per = p->micro_batch * q.dp;
    out->micro_batches = (p->global_batch + per - 1) / per;
    out->teacher_s = (double)out->micro_batches * out->fwd_s;
    /* the link between the two groups: one node holds both, or the NIC */
    out->inter_node = p->gpus + p->distill.gpus > c->gpus_per_node;
    coll_link l;
    coll_pair_link(c, out->inter_node, &l);
    const double bytes = distill_transfer_bytes(student, p);
    const int64_t receivers = p->tp * p->dp * p->cp; /* the student's last stage */
    const int64_t streams = p->distill.gpus < receivers ? p->distill.gpus : receivers;
    const double each = bytes / (double)(streams > 0 ? streams : 1);
    out->transfer_s = coll_time(COLL_SEND, 2, (int64_t)(each + 0.5), &l);
}
