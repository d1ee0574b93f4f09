/* flops.c — model and hardware FLOPs per step (see flops.h, docs/memory.md §7). */
#include "cost/flops.h"

#include "cost/params.h"

void flops_compute(const model_cfg *m, const plan_cfg *p, flops_step *out) {
    params_count pc;
    params_count_rank(m, 1, &pc);
    const double L = (double)m->layers, s = (double)p->seq;
    const double qw = (double)model_q_width(m);
    const double head = (double)m->vocab * (double)m->hidden;
    const double layer_mm = (double)pc.matmul_per_layer;
    const double attn_fwd = 4.0 * s * qw; /* QK^T and PV, 2 FLOPs per multiply-add */
    double model = 6.0 * (L * layer_mm + head) + 3.0 * L * attn_fwd;
    double extra = 0;
    if (m->attention == ATTN_FLASH) extra += L * 0.5 * attn_fwd; /* QK^T again in backward */
    if (p->recompute == RECOMPUTE_SELECTIVE && m->attention == ATTN_STANDARD)
        extra += L * attn_fwd;
    if (p->recompute == RECOMPUTE_FULL) extra += L * (2.0 * layer_mm + attn_fwd);
    out->tokens = (double)p->global_batch * s;
    out->model_per_token = model;
    out->model_per_step = model * out->tokens;
    out->hardware_per_step = (model + extra) * out->tokens;
}
