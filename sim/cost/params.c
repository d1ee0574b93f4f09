/* params.c — parameter counting (see params.h, docs/memory.md §1). */
#include "cost/params.h"

void params_count_rank(const model_cfg *m, int64_t tp, params_count *out) {
    const int64_t h = m->hidden;
    const int64_t q = model_q_width(m) / tp, kv = model_kv_width(m) / tp;
    const int64_t f = m->ffn_hidden / tp;
    const int64_t vocab_rows = model_vocab_rows(m, tp);
    const int all_bias = m->bias == BIAS_ALL, qkv_bias = m->bias != BIAS_NONE;
    const int64_t norm_params = m->norm == NORM_LAYERNORM && all_bias ? 2 * h : h;

    /* attention: q, k, v column-parallel; o row-parallel (bias replicated) */
    int64_t attn_w = h * q + 2 * h * kv + q * h;
    int64_t attn_b = (qkv_bias ? q + 2 * kv : 0) + (all_bias ? h : 0);
    /* MLP: SwiGLU has w1, w3 (column) and w2 (row); GeLU has fc1 and fc2 */
    int64_t up = m->mlp == MLP_SWIGLU ? 2 : 1;
    int64_t mlp_w = up * h * f + f * h;
    int64_t mlp_b = all_bias ? up * f + h : 0;

    out->embedding = vocab_rows * h;
    out->position = m->position == POS_LEARNED ? m->max_position * h : 0;
    out->attn = attn_w + attn_b;
    out->mlp = mlp_w + mlp_b;
    out->norms = 2 * norm_params;
    out->layer = out->attn + out->mlp + out->norms;
    out->final_norm = norm_params;
    out->output = m->tied_embeddings ? 0 : vocab_rows * h;
    out->matmul_per_layer = attn_w + mlp_w;
    out->total = out->embedding + out->position + m->layers * out->layer + out->final_norm +
                 out->output;
}

int64_t params_total(const model_cfg *m) {
    params_count c;
    params_count_rank(m, 1, &c);
    return c.total;
}
