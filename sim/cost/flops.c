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
    const double matmul = 6.0 * (L * layer_mm + head);
    const double model = matmul + 3.0 * L * attn_fwd;
    /* Executed attention: flash attention computes only the causal half of the
     * square, and its backward recomputes QK^T (2.5x its forward; Dao 2023);
     * standard attention multiplies the full square, forward and backward. */
    const int flash = m->attention == ATTN_FLASH;
    const double attn_once = flash ? 0.5 * attn_fwd : attn_fwd;
    double hardware = matmul + L * attn_once * (flash ? 3.5 : 3.0);
    if (p->recompute == RECOMPUTE_SELECTIVE && !flash) hardware += L * attn_once;
    if (p->recompute == RECOMPUTE_FULL) hardware += L * (2.0 * layer_mm + attn_once);
    out->tokens = (double)p->global_batch * s;
    out->model_per_token = model;
    out->model_per_step = model * out->tokens;
    out->hardware_per_step = hardware * out->tokens;
}
