/* pipe.c — stage layer split and in-flight micro-batches (see pipe.h). */
#include "cost/pipe.h"

#include "spec/plan_check.h"

int64_t pipe_stage_layers(const model_cfg *m, const plan_cfg *p, int64_t stage) {
    if (p->stage_layers[0]) return p->stage_layers[stage];
    return m->layers / p->pp;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

void pipe_stage_inflight(const model_cfg *m, const plan_cfg *p, int64_t stage,
                         pipe_inflight *out) {
    const int64_t mb = plan_micro_batches(p);
    const int64_t layers = pipe_stage_layers(m, p, stage);
    const int64_t pp = p->pp, v = p->virtual_stages;
    out->stash_units = 0;
    if (pp == 1) {
        out->inflight = out->first_extra = out->last_extra = 1;
        out->layer_units = layers;
        return;
    }
    switch (p->schedule) {
    case SCHED_AFAB: out->inflight = mb; break;
    case SCHED_INTERLEAVED: {
        int64_t peak = min64(2 * (pp - stage - 1) + (v - 1) * pp + 1, mb * v);
        out->inflight = peak;
        out->layer_units = peak * (m->layers / (pp * v));
        /* Megatron runs groups of p micro-batches through chunks 0..v-1 in turn.
         * Stage 0's chunk 0 (the embedding) has its first group and all but
         * one of its second group live at the end of warm-up; the first
         * steady-state step adds that one more before any chunk-0 backward
         * (those start at backward (v-1)p): min(m, 2p). The last stage's last
         * chunk (the head) runs each micro-batch's backward right after its
         * forward: 1. */
        out->first_extra = stage == 0 ? min64(mb, 2 * pp) : 0;
        out->last_extra = stage == pp - 1 ? 1 : 0;
        return;
    }
    case SCHED_1F1B: out->inflight = min64(pp - stage, mb); break;
    case SCHED_ZERO_BUBBLE: /* layers until W: min(p, m); embedding and head as 1F1B */
        out->inflight = min64(pp, mb);
        out->layer_units = out->inflight * layers;
        out->first_extra = stage == 0 ? min64(pp, mb) : 0;
        out->last_extra = stage == pp - 1 ? 1 : 0;
        out->stash_units = min64(stage + 1, mb) * layers;
        return;
    }
    out->layer_units = out->inflight * layers;
    out->first_extra = stage == 0 ? out->inflight : 0;
    out->last_extra = stage == pp - 1 ? out->inflight : 0;
}
