/* pipe.c — stage layer split and in-flight micro-batches (see pipe.h). */
#include "pipe.h"

#include "plan_check.h"

int64_t pipe_stage_layers(const model_cfg *m, const plan_cfg *p, int64_t stage) {
    if (p->stage_layers[0]) return p->stage_layers[stage];
    return m->layers / p->pp;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Among the first n forward chunk-micro-batches of Megatron's interleaved
 * order (groups of p micro-batches cycle through chunks 0..v-1), how many
 * belong to chunk c. */
static int64_t chunk_count(int64_t n, int64_t p, int64_t v, int64_t c) {
    int64_t cycle = p * v;
    int64_t rem = n % cycle - c * p;
    return n / cycle * p + (rem < 0 ? 0 : rem > p ? p : rem);
}

void pipe_stage_inflight(const model_cfg *m, const plan_cfg *p, int64_t stage,
                         pipe_inflight *out) {
    const int64_t mb = plan_micro_batches(p);
    const int64_t layers = pipe_stage_layers(m, p, stage);
    const int64_t pp = p->pp, v = p->virtual_stages;
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
        out->first_extra = stage == 0 ? chunk_count(peak, pp, v, 0) : 0;
        out->last_extra = stage == pp - 1 ? chunk_count(peak, pp, v, v - 1) : 0;
        return;
    }
    case SCHED_1F1B:
    case SCHED_ZERO_BUBBLE: out->inflight = min64(pp - stage, mb); break;
    }
    out->layer_units = out->inflight * layers;
    out->first_extra = stage == 0 ? out->inflight : 0;
    out->last_extra = stage == pp - 1 ? out->inflight : 0;
}
