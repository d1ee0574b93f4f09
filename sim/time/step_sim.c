/* step_sim.c — event-simulated step from per-stage times (see step_sim.h). */
#include "time/step_sim.h"

#include "cost/pipe.h"
#include "spec/plan_check.h"

static plan_schedule sim_kind(const plan_cfg *p) { return p->pp > 1 ? p->schedule : SCHED_1F1B; }
static int64_t sim_chunks(const plan_cfg *p) {
    return p->pp > 1 ? pipe_chunks(p) : 1; /* v interleaved, 2 DualPipe */
}

int64_t step_sim_ops(const plan_cfg *p) {
    return sched_ops_total(sim_kind(p), p->pp, plan_micro_batches(p), sim_chunks(p));
}

void step_sim_prepare(const plan_cfg *p, const eval_stage *stages, step_sim_input *o) {
    /* interleaved with a layout of its own: each chunk its own time (step_time.h) */
    const bool chunks = sim_chunks(p) > 1 && p->schedule == SCHED_INTERLEAVED && pipe_layout_given(p);
    /* without overlap.pp the stage times hold one receive per chunk forward and backward
     * (step_time.c, for the closed forms); the simulation charges it where a chunk
     * receives (t_recv) instead, as the replay does */
    const double hop = stages[0].time.recv;
    for (int64_t s = 0; s < p->pp; s++) {
        const stage_time *t = &stages[s].time;
        const chunk_time *mid = chunks ? &t->chunk[1] : NULL;
        o->t_f[s] = (mid ? mid->f : t->f) - hop;
        o->t_b[s] = (mid ? mid->b : t->b) - hop;
        o->t_w[s] = mid ? mid->w : t->w;
        for (int i = 0; i < 3; i++) {
            const double *first = &t->chunk[0].f, *last = &t->chunk[2].f;
            o->t_first[3 * s + i] = first[i] - (i < 2 ? hop : 0);
            o->t_last[3 * s + i] = last[i] - (i < 2 ? hop : 0);
        }
    }
    o->in = (sched_in){.kind = sim_kind(p),
                       .p = p->pp,
                       .m = plan_micro_batches(p),
                       .v = sim_chunks(p),
                       .t_f = o->t_f,
                       .t_b = o->t_b,
                       .t_w = o->t_w,
                       .t_p2p = stages[0].time.p2p - hop,
                       .t_recv = hop,
                       .t_first = chunks ? o->t_first : NULL,
                       .t_last = chunks ? o->t_last : NULL};
}

int step_sim_run(const plan_cfg *p, const eval_stage *stages, const step_time *closed,
                 sched_op *ops, step_sim_input *in, step_sim *out) {
    step_sim_prepare(p, stages, in);
    if (sched_simulate(&in->in, ops, &out->sched)) return -1;
    out->pipeline = out->sched.step_time;
    out->step = out->pipeline + (closed->step - closed->pipeline);
    out->bubble_fraction = out->sched.bubble_fraction;
    return 0;
}
