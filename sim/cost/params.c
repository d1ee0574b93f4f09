/* params.c — parameter counting (see params.h, docs/memory.md §1). */
#include "cost/params.h"

#include <string.h>

/* Multi-head latent attention on one tp rank (DeepSeek-V2 §2.1, eqs. 9-19;
 * Megatron-Core's MLASelfAttention layout): the down projections W^DQ (h x
 * q_lora) and W^DKV plus the shared rotary key W^KR (h x (kv_lora + rope)) and
 * their norms are replicated; the up projections W^UQ/W^QR (q_lora x heads *
 * (nope + rope)), W^UK/W^UV (kv_lora x heads * (nope + v)) and the output
 * (heads * v x h) split by heads. Without q_lora the query is h x heads *
 * (nope + rope). Returns weights; *norms gets the latent norms' elements. */
static int64_t mla_weights(const model_cfg *m, int64_t tp, int64_t *norms) {
    const int64_t h = m->hidden, nh = m->heads / tp;
    const int64_t qk = m->qk_nope_head_dim + m->qk_rope_head_dim;
    const int64_t q = m->q_lora_rank ? h * m->q_lora_rank + m->q_lora_rank * nh * qk : h * nh * qk;
    const int64_t kv = h * (m->kv_lora_rank + m->qk_rope_head_dim) +
                       m->kv_lora_rank * nh * (m->qk_nope_head_dim + m->v_head_dim);
    *norms = m->q_lora_rank + m->kv_lora_rank;
    return q + kv + nh * m->v_head_dim * h;
}

void params_count_rank(const model_cfg *m, int64_t tp, params_count *out) {
    memset(out, 0, sizeof *out);
    const int64_t h = m->hidden;
    const int64_t q = model_q_width(m) / tp, kv = model_kv_width(m) / tp;
    const int64_t f = m->ffn_hidden / tp;
    const int64_t vocab_rows = model_vocab_rows(m, tp);
    const int all_bias = m->bias == BIAS_ALL, qkv_bias = m->bias != BIAS_NONE;
    const int64_t norm_params = m->norm == NORM_LAYERNORM && all_bias ? 2 * h : h;

    /* attention: q, k, v column-parallel; o row-parallel (bias replicated) */
    int64_t attn_w = h * q + 2 * h * kv + q * h;
    int64_t attn_b = (qkv_bias ? q + 2 * kv : 0) + (all_bias ? h : 0);
    if (model_is_mla(m)) {
        int64_t latent_norms;
        attn_w = mla_weights(m, tp, &latent_norms);
        attn_b = latent_norms;
    }
    /* Qwen3's q_norm and k_norm: one RMSNorm of head_dim each, shared by the
     * heads, replicated across tp (transformers Qwen3Attention) */
    if (m->qk_norm) attn_b += 2 * m->head_dim;
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
    /* MTP module k (DeepSeek-V3 §2.2): norms of the hidden state and of the
     * next token's embedding (2 norms), the projection M_k (h x 2h), one
     * transformer layer (of the MoE kind in a MoE model), and the shared
     * head's norm; the embedding and the output head are the main model's */
    const int64_t mtp_extra = 3 * norm_params + 2 * h * h;
    if (!model_is_moe(m)) {
        out->activated = out->total;
        out->mtp = m->mtp_layers * (mtp_extra + out->layer);
        return;
    }
    /* MoE layers (docs/memory.md §1 "MoE"): each expert is an MLP of the
     * model's kind with expert_ffn_hidden features; shared experts split by tp
     * like the dense MLP, routed experts are counted whole (ep / etp split them) */
    const int64_t fe = m->expert_ffn_hidden;
    out->expert = up * h * fe + fe * h + (all_bias ? up * fe + h : 0);
    const int64_t fs = m->shared_experts * fe / tp;
    out->shared = fs ? up * h * fs + fs * h + (all_bias ? up * fs + h : 0) : 0;
    out->router = m->experts * h + (m->router_bias ? m->experts : 0);
    out->moe_layer = out->attn + out->norms + out->router + out->shared + m->experts * out->expert;
    const int64_t moe = model_moe_layers(m);
    out->total += moe * (out->moe_layer - out->layer);
    out->moe_matmul_active = attn_w + m->experts * h +
                             (m->shared_experts + m->experts_per_token) * (up * h * fe + fe * h);
    out->activated = out->total - moe * (m->experts - m->experts_per_token) * out->expert;
    out->mtp = m->mtp_layers * (mtp_extra + out->moe_layer);
}

int64_t params_layers(const model_cfg *m, const params_count *pc, int64_t first, int64_t n) {
    if (!model_is_moe(m)) return n * pc->layer;
    int64_t dense = m->dense_layers - first; /* of the n layers, those before the MoE ones */
    dense = dense < 0 ? 0 : dense > n ? n : dense;
    return dense * pc->layer + (n - dense) * pc->moe_layer;
}

int64_t params_total(const model_cfg *m) {
    params_count c;
    params_count_rank(m, 1, &c);
    return c.total;
}
