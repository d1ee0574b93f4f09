/* sweep.c — walk a sweep's space point by point (see sweep.h, docs/sweep.md). */
#include "sweep/sweep.h"

#include <string.h>

#include "cost/distill.h"
#include "cost/params.h"

/* An etp value that gives the same expert tensor-parallel degree as an
 * earlier one of the list (0 is "as tp"): skipped, a repeat. */
static bool etp_repeat(const sweep_list *l, int y, int64_t tp) {
    const int64_t e = l->v[y] ? l->v[y] : tp;
    for (int i = 0; i < y; i++)
        if ((l->v[i] ? l->v[i] : tp) == e) return true;
    return false;
}

/* The loops, shared by counting and running: visit == NULL only counts. */
static int64_t walk(const sweep_spec *s, sweep_visit visit, void *ctx) {
    const sweep_space *sp = &s->space;
    const model_cfg *m = &s->base.model.cfg;
    const cluster_cfg *c = &s->base.cluster.cfg;
    plan_cfg p = s->base.cfg;
    const bool moe = model_is_moe(m); /* the expert layout varies only for a MoE model */
    const int64_t params = params_total(m); /* once for every plan's size bound */
    /* logit distillation: the teacher of every point (cost/distill.h) */
    const model_cfg *t = s->base.cfg.distill.set ? &s->base.teacher.cfg : NULL;
    const int n_dpl = t ? sp->distill_placement.n : 1, n_dk = t ? sp->distill_top_k.n : 1;
    eval_result r;
    eval_cache cache;
    int64_t n = 0;
    cache.valid = false;
    for (int a = 0; a < sp->tp.n; a++)
    for (int b = 0; b < sp->pp.n; b++)
    for (int d = 0; d < sp->cp.n; d++) {
        p.tp = sp->tp.v[a], p.pp = sp->pp.v[b], p.cp = sp->cp.v[d];
        const int64_t inner = p.tp * p.pp * p.cp;
        p.dp = p.gpus % inner ? 0 : p.gpus / inner; /* 0: rejected as degrees-product */
        for (int x = 0; x < (moe ? sp->ep.n : 1); x++)
        for (int y = 0; y < (moe ? sp->etp.n : 1); y++)
        if (!moe || !etp_repeat(&sp->etp, y, p.tp))
        for (int e = 0; e < sp->n_placement; e++)
        for (int z = 0; z < (p.dp * p.cp > 1 ? sp->zero.n : 1); z++)
        for (int mi = 0; mi < sp->micro.n; mi++)
        for (int rc = 0; rc < sp->recompute.n; rc++)
        for (int q = 0; q < (p.tp > 1 ? sp->sp.n : 1); q++)
        for (int o = 0; o < sp->offload.n; o++)
        for (int od = 0; od < (p.dp * p.cp > 1 ? sp->overlap_dp.n : 1); od++)
        for (int ot = 0; ot < (p.tp > 1 ? sp->overlap_tp.n : 1); ot++)
        for (int h = 0; h < (p.pp > 1 ? sp->schedule.n : 1); h++) {
            const plan_schedule sched =
                p.pp > 1 ? (plan_schedule)sp->schedule.v[h] : SCHED_1F1B;
            const int nv = sched == SCHED_INTERLEAVED ? sp->virt.n : 1;
            for (int v = 0; v < nv; v++)
            for (int dpl = 0; dpl < n_dpl; dpl++)
            for (int dk = 0; dk < n_dk; dk++) {
                n++;
                if (!visit) continue;
                if (t) {
                    p.distill.placement = (uint8_t)sp->distill_placement.v[dpl];
                    p.distill.top_k = sp->distill_top_k.v[dk];
                }
                memcpy(p.placement, sp->placement[e], PLAN_GROUPS);
                if (moe) p.ep = sp->ep.v[x], p.etp = sp->etp.v[y];
                p.zero = (int)sp->zero.v[z];
                p.micro_batch = sp->micro.v[mi];
                p.recompute = (plan_recompute)sp->recompute.v[rc];
                p.sp = p.tp > 1 ? sp->sp.v[q] != 0 : false;
                p.offload_optimizer = sp->offload.v[o] & 1;
                p.offload_activations = (sp->offload.v[o] & 2) != 0;
                p.overlap_dp = sp->overlap_dp.v[od] != 0;
                p.overlap_tp = sp->overlap_tp.v[ot] != 0;
                p.schedule = sched;
                p.virtual_stages = sched == SCHED_INTERLEAVED ? sp->virt.v[v] : 1;
                sweep_point pt = {&p, PLAN_OK, NULL};
                pt.reason = plan_check_cfg_n(m, c, &p, params);
                if (pt.reason == PLAN_OK && t) pt.reason = distill_check_cfg(t, c, &p);
                if (pt.reason == PLAN_OK) {
                    eval_plan_distill(m, t, c, &p, &r, NULL, &cache);
                    pt.eval = &r;
                }
                visit(ctx, &pt);
            }
        }
    }
    return n;
}

int64_t sweep_count(const sweep_spec *s) { return walk(s, NULL, NULL); }

void sweep_run(const sweep_spec *s, sweep_visit visit, void *ctx) { walk(s, visit, ctx); }
