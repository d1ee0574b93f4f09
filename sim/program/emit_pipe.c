/* emit_pipe.c — a pipeline stage's units and op order (see emit_pipe.h). */
#include "program/emit_pipe.h"

#include <stdlib.h>
#include <string.h>

#include "cost/pipe.h"
#include "spec/plan_check.h"

/* First layer (0-based) and count of virtual stage g (g = chunk pp + stage;
 * pipe.c's split, uneven chunks included). */
static void virtual_layers(const plan_spec *s, int64_t g, int64_t *first, int64_t *n) {
    const model_cfg *m = &s->model.cfg;
    const plan_cfg *p = &s->cfg;
    *first = pipe_virtual_first_layer(m, p, g);
    *n = pipe_chunk_layers(m, p, g % p->pp, g / p->pp);
}

int64_t emit_pipe_virtual(const emit_pipe *e, int64_t chunk) {
    return chunk * e->p + e->stage;
}

int64_t emit_pipe_p2p_per_step(const emit_pipe *e) {
    int64_t n = 0;
    for (int64_t c = 0; c < e->v; c++) {
        const int64_t g = emit_pipe_virtual(e, c);
        n += 2 * ((g > 0) + (g < e->p * e->v - 1)); /* F: recv, send; B: recv, send */
    }
    return n * e->m;
}

int emit_pipe_init(const plan_spec *s, int64_t stage, emit_pipe *e, ps_err *err) {
    const plan_cfg *p = &s->cfg;
    const int64_t L = s->model.cfg.layers;
    memset(e, 0, sizeof *e);
    e->p = p->pp, e->v = p->virtual_stages, e->m = plan_micro_batches(p), e->stage = stage;
    e->zero_bubble = p->pp > 1 && p->schedule == SCHED_ZERO_BUBBLE;
    if (e->zero_bubble && p->recompute == RECOMPUTE_FULL)
        return ps_err_at(err, &s->locs.recompute, "recompute",
                         "the execution plan's zero-bubble schedule keeps a layer's activations "
                         "from its input-gradient part B to its weight-gradient part W; with full "
                         "recompute they are rebuilt in B and gone by W: use 1f1b, or recompute "
                         "none or selective (found full)");
    if (e->zero_bubble && p->sp)
        return ps_err_at(err, &s->locs.sp, "parallel.sp",
                         "the execution plan's zero-bubble schedule runs without sequence "
                         "parallelism: a layer's weight-gradient part W would gather its "
                         "sequence-sharded inputs again (found sp: true)");
    if (e->zero_bubble && p->zero >= 2 && p->dp * p->cp > 1)
        return ps_err_at(err, &s->locs.zero, "parallel.zero",
                         "the execution plan's zero-bubble schedule runs with ZeRO-0 or ZeRO-1 "
                         "(DeepSpeed too refuses ZeRO-2/3 with pipelines): a unit's gradient "
                         "buffer would be reduce-scattered between its B and W parts; found "
                         "ZeRO-%d over dp*cp = %lld",
                         p->zero, (long long)(p->dp * p->cp));
    const int64_t pv = e->p * e->v;
    e->chunk_lo = calloc((size_t)e->v + 1, sizeof *e->chunk_lo);
    e->global = calloc((size_t)(L + 2), sizeof *e->global);
    if (!e->chunk_lo || !e->global) return emit_pipe_free(e), ps_err_set(err, "out of memory");
    for (int64_t c = 0; c < e->v; c++) {
        const int64_t g = emit_pipe_virtual(e, c);
        int64_t first, n;
        virtual_layers(s, g, &first, &n);
        e->chunk_lo[c] = e->n_units;
        if (g == 0) e->global[e->n_units++] = 0;
        for (int64_t l = 0; l < n; l++)
            e->global[e->n_units++] = (int32_t)(1 + first + l);
        if (g == pv - 1) e->global[e->n_units++] = (int32_t)(L + 1);
        if (e->n_units == e->chunk_lo[c]) {
            emit_pipe_free(e);
            return ps_err_at(err, &s->locs.stage_layers, "pipeline.layers",
                             "stage %lld (chunk %lld) holds no layer, embedding or head",
                             (long long)stage, (long long)c);
        }
    }
    e->chunk_lo[e->v] = e->n_units;
    /* one stage: any schedule is gradient accumulation (pipe_sched.c's warm-up 0) */
    sched_in in = {.kind = p->pp > 1 ? p->schedule : SCHED_AFAB, .p = e->p, .m = e->m, .v = e->v};
    for (int32_t u = 0; u < e->n_units; u++)
        e->n_layers += e->global[u] >= 1 && e->global[u] <= L;
    e->n_ops = e->m * e->v * (e->zero_bubble ? 3 : 2);
    e->ops = calloc((size_t)e->n_ops, sizeof *e->ops);
    if (!e->ops) return emit_pipe_free(e), ps_err_set(err, "out of memory");
    if (sched_stage_order(&in, stage, e->ops)) {
        emit_pipe_free(e);
        return ps_err_set(err,
                          "internal error: no %s schedule for pp = %lld, %lld micro-batches, "
                          "v = %lld",
                          plan_schedule_names[in.kind], (long long)e->p, (long long)e->m,
                          (long long)e->v);
    }
    return 0;
}

void emit_pipe_free(emit_pipe *e) {
    free(e->global);
    free(e->chunk_lo);
    free(e->ops);
    memset(e, 0, sizeof *e);
}
