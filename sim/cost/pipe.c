/* pipe.c — stage layer split and in-flight micro-batches (see pipe.h). */
#include "cost/pipe.h"

#include "spec/plan_check.h"

bool pipe_layout_given(const plan_cfg *p) {
    return p->stage_layers[0] || p->first_stage_layers || p->last_stage_layers ||
           p->account_for_embedding || p->account_for_loss;
}

int64_t pipe_account_layers(const model_cfg *m, const plan_cfg *p) {
    return m->layers + p->account_for_embedding + p->account_for_loss;
}

int64_t pipe_account_slots(const model_cfg *m, const plan_cfg *p) {
    const int64_t n = pipe_account_layers(m, p);
    return n % p->pp ? 0 : n / p->pp;
}

int64_t pipe_middle_split(const model_cfg *m, const plan_cfg *p, int64_t *rest) {
    const int64_t first = p->first_stage_layers, last = p->last_stage_layers;
    *rest = m->layers - first - last;
    return p->pp - (first > 0) - (last > 0);
}

/* Layers of pipeline stage `stage` of the split (a rank's, but under DualPipe
 * one of the rank's two stages). */
static int64_t split_layers(const model_cfg *m, const plan_cfg *p, int64_t stage) {
    const int64_t pp = p->pp;
    if (p->stage_layers[0]) return p->stage_layers[stage];
    if (p->first_stage_layers || p->last_stage_layers) {
        const int64_t first = p->first_stage_layers, last = p->last_stage_layers;
        if (stage == 0 && first) return first;
        if (stage == pp - 1 && last) return last;
        int64_t rest;
        const int64_t middle = pipe_middle_split(m, p, &rest);
        return middle > 0 ? rest / middle : 0;
    }
    if (p->account_for_embedding || p->account_for_loss)
        return pipe_account_slots(m, p) - (p->account_for_embedding && stage == 0) -
               (p->account_for_loss && stage == pp - 1);
    return m->layers / pp;
}

int64_t pipe_stage_layers(const model_cfg *m, const plan_cfg *p, int64_t stage) {
    /* DualPipe: rank s holds stage s and stage pp-1-s of the split */
    if (p->schedule == SCHED_DUALPIPE)
        return split_layers(m, p, stage) + split_layers(m, p, p->pp - 1 - stage);
    return split_layers(m, p, stage);
}

int64_t pipe_chunk_layers(const model_cfg *m, const plan_cfg *p, int64_t stage, int64_t chunk) {
    const int64_t v = p->virtual_stages;
    if (p->schedule == SCHED_DUALPIPE) return split_layers(m, p, chunk ? p->pp - 1 - stage : stage);
    if (!p->stage_layers[0] && !p->first_stage_layers && !p->last_stage_layers &&
        (p->account_for_embedding || p->account_for_loss))
        return pipe_account_slots(m, p) / v -
               (p->account_for_embedding && stage == 0 && chunk == 0) -
               (p->account_for_loss && stage == p->pp - 1 && chunk == v - 1);
    return pipe_stage_layers(m, p, stage) / v;
}

int64_t pipe_virtual_first_layer(const model_cfg *m, const plan_cfg *p, int64_t g) {
    int64_t n = 0;
    for (int64_t k = 0; k < g; k++) n += pipe_chunk_layers(m, p, k % p->pp, k / p->pp);
    return n;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

int64_t pipe_interleaved_warmup(int64_t pp, int64_t v, int64_t mb, int64_t s) {
    return min64(2 * (pp - s - 1) + (v - 1) * pp, mb * v);
}

int64_t pipe_op_chunk(int64_t pp, int64_t v, int64_t k, bool backward) {
    const int64_t c = (k % (pp * v)) / pp;
    return backward ? v - 1 - c : c;
}

/* Interleaved: the most layers' activations stage s holds at once, its
 * chunks' own layer counts added over Megatron-LM's op order (pipe_sched.c:
 * warm-up forwards, then one forward and one backward per step; forward k on
 * chunk (k mod pv) / p, backward k on the mirror chunk). Only chunk 0 and
 * chunk v-1 may differ from the others (pipe_chunk_layers), and equal chunks
 * give the peak count times L_chunk without walking the order. */
typedef struct {
    int64_t pp, v, first, mid, last;
} chunk_sizes;

static int64_t op_layers(const chunk_sizes *z, int64_t k, int backward) {
    const int64_t c = pipe_op_chunk(z->pp, z->v, k, backward);
    return c == 0 ? z->first : c == z->v - 1 ? z->last : z->mid;
}

static int64_t chunk_layer_peak(const model_cfg *m, const plan_cfg *p, int64_t s, int64_t mb) {
    const int64_t pp = p->pp, v = p->virtual_stages, total = mb * v;
    const int64_t warm = pipe_interleaved_warmup(pp, v, mb, s);
    chunk_sizes z = {pp, v, pipe_chunk_layers(m, p, s, 0), 0, pipe_chunk_layers(m, p, s, v - 1)};
    z.mid = v > 2 ? pipe_chunk_layers(m, p, s, 1) : z.first;
    if (z.first == z.mid && z.last == z.mid) return min64(warm + 1, total) * z.mid;
    int64_t live = 0, peak = 0, f = 0, b = 0;
    while (f < warm) live += op_layers(&z, f++, 0);
    peak = live;
    while (b < total) {
        if (f < total) live += op_layers(&z, f++, 0);
        if (live > peak) peak = live;
        live -= op_layers(&z, b++, 1);
    }
    return peak;
}

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
        int64_t peak = min64(pipe_interleaved_warmup(pp, v, mb, stage) + 1, mb * v);
        out->inflight = peak;
        out->layer_units = pipe_layout_given(p) ? chunk_layer_peak(m, p, stage, mb)
                                                : peak * (m->layers / (pp * v));
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
    case SCHED_DUALPIPE: { /* docs/schedule.md "DualPipe": walked from dualpipe.py's order */
        const int64_t c0 = pipe_chunk_layers(m, p, stage, 0), c1 = pipe_chunk_layers(m, p, stage, 1);
        /* chunk 0 peaks at pp - s sets, chunk 1 at s + 1, both at the rank's peak of pp + 1 */
        out->inflight = pp + 1;
        out->layer_units = (pp - stage) * c0 + (stage + 1) * c1;
        /* both end ranks: the embedding's chunk (0 on rank 0, 1 on rank pp-1)
         * holds pp micro-batches at its peak, the head's chunk 1 */
        const bool end = stage == 0 || stage == pp - 1;
        out->first_extra = end ? pp : 0;
        out->last_extra = end ? 1 : 0;
        /* zero-bubble B's (steps 3, 6, 7) queue their W's, at most
         * min(s, pp-1-s) + 1 at once, but not at this peak: stash_units stays
         * 0 and pipe_dualpipe_peak weighs the moments (eval.c) */
        return;
    }
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

/* One candidate moment of pipe_dualpipe_peak, in phase terms (phase f is chunk f ^ x). */
static void dual_consider(const int64_t set[2], const int64_t queued[2], int x, int64_t a0,
                          int64_t a1, int64_t q0, int64_t q1, int64_t *best,
                          pipe_dual_moment *at) {
    pipe_dual_moment d;
    d.sets[x] = a0, d.sets[x ^ 1] = a1, d.queued[x] = q0, d.queued[x ^ 1] = q1;
    const int64_t b = d.sets[0] * set[0] + d.sets[1] * set[1] + d.queued[0] * queued[0] +
                      d.queued[1] * queued[1];
    if (b > *best) *best = b, *at = d;
}

int64_t pipe_dualpipe_peak(int64_t pp, int64_t stage, const int64_t set_bytes[2],
                           const int64_t queued_bytes[2], pipe_dual_moment *at) {
    const int64_t P = pp / 2, h = min64(stage, pp - 1 - stage);
    const int x = stage >= P;
    int64_t best = -1, q[2] = {0, 0};
    /* step 4, first F0 of the main loop: pp + 1 sets, nothing queued */
    dual_consider(set_bytes, queued_bytes, x, pp - h, h + 1, 0, 0, &best, at);
    /* step 3: B1 with enable_zb, its W not yet popped */
    if (P - h - 1 > 0) dual_consider(set_bytes, queued_bytes, x, pp - h - 1, h, 0, 1, &best, at);
    /* step 6 starts with P sets of phase 0 and h + 1 of phase 1 and runs
     * B1 B0 B1 ... (2h + 2 B's, position j of phase 1 when j is even); the
     * last h + 1 run with enable_zb (dualpipe.py's switch at i = step_6 / 2) */
    for (int64_t j = h + 1; j <= 2 * h + 1; j++) {
        q[j % 2 ? 0 : 1]++;
        dual_consider(set_bytes, queued_bytes, x, P - (j + 1) / 2, h - j / 2, q[0], q[1], &best,
                      at);
    }
    /* step 7: W pops the oldest (step 6's in order, then step 7's own B0's),
     * B0 with enable_zb queues one more */
    for (int64_t i = 0; i < P - h - 1; i++) {
        const int64_t j = h + 1 + i; /* the popped W's step-6 position, while i <= h */
        q[i <= h && j % 2 == 0 ? 1 : 0]--;
        q[0]++;
        dual_consider(set_bytes, queued_bytes, x, P - h - 2 - i, 0, q[0], q[1], &best, at);
    }
    return best;
}
