/* infer.c — serving memory (see infer.h, docs/memory.md §8). */
#include "cost/infer.h"

#include <stdbool.h>
#include <stddef.h>

#include "cost/params.h"
#include "base/sat_int.h"

const char *const infer_weights_names[] = {"bf16", "fp16", "fp8", "int8", "int4", NULL};

/* Storage of one [out x in] linear weight:
 *   bf16/fp16: 2 bytes per element;
 *   fp8 (E4M3, per-tensor scale as in Transformer Engine / vLLM): 1 byte + one fp32 scale;
 *   int8 (LLM.int8() vector-wise, bitsandbytes): 1 byte + one fp32 scale per output row;
 *   int4 (GPTQ/AWQ group-wise): 4 bits + per group of g inputs an fp16 scale and
 *   a 4-bit zero point, per output row.
 * With scales = 0 only the elements themselves are counted. */
static int64_t linear_bytes(infer_weights w, int64_t out_f, int64_t in_f, int64_t g, int scales) {
    const int64_t n = out_f * in_f;
    const int64_t groups = out_f * ((in_f + g - 1) / g);
    switch (w) {
    case WQ_BF16:
    case WQ_FP16: return 2 * n;
    case WQ_FP8: return n + (scales ? 4 : 0);
    case WQ_INT8: return n + (scales ? 4 * out_f : 0);
    case WQ_INT4: return (n + 1) / 2 + (scales ? groups * 2 + (groups + 1) / 2 : 0);
    }
    return 0;
}

int64_t infer_linear_bytes(infer_weights w, int64_t out_f, int64_t in_f, int64_t g) {
    return linear_bytes(w, out_f, in_f, g, 1);
}

/* Linear weights of multi-head latent attention on one tp rank (DeepSeek-V2
 * §2.1; vLLM DeepseekV2MLAAttention): the down projections q_a (h -> r_q) and
 * kv_a (h -> r_kv + d_r, with the shared rotary key) replicated, the up
 * projections q_b and kv_b split by heads (column-parallel), the output o
 * split by heads (row-parallel). Without r_q the query is one h -> heads
 * projection. */
static int64_t mla_linear_bytes(const model_cfg *m, int64_t tp, infer_weights w, int64_t g,
                                int scales) {
    const int64_t h = m->hidden, nh = m->heads / tp, r_q = m->q_lora_rank;
    const int64_t qk = m->qk_nope_head_dim + m->qk_rope_head_dim;
    const int64_t q = r_q ? linear_bytes(w, r_q, h, g, scales) +
                                linear_bytes(w, nh * qk, r_q, g, scales)
                          : linear_bytes(w, nh * qk, h, g, scales);
    return q + linear_bytes(w, m->kv_lora_rank + m->qk_rope_head_dim, h, g, scales) +
           linear_bytes(w, nh * (m->qk_nope_head_dim + m->v_head_dim), m->kv_lora_rank, g,
                        scales) +
           linear_bytes(w, h, nh * m->v_head_dim, g, scales);
}

/* Attention's linear weights on one tp rank: q, k, v, o, or MLA's. When tp
 * exceeds kv_heads each rank keeps one whole key/value head (vLLM replicates). */
static int64_t attn_linear_bytes(const model_cfg *m, int64_t tp, infer_weights w, int64_t g,
                                 int scales) {
    if (model_is_mla(m)) return mla_linear_bytes(m, tp, w, g, scales);
    const int64_t h = m->hidden, q = model_q_width(m) / tp;
    const int64_t kv = m->kv_heads >= tp ? model_kv_width(m) / tp : m->head_dim;
    return linear_bytes(w, q, h, g, scales) + 2 * linear_bytes(w, kv, h, g, scales) +
           linear_bytes(w, h, q, g, scales);
}

/* One MLP of f features on a rank (f already split by tp): the up projections
 * (w1 and w3, or fc1) and the down projection. */
static int64_t mlp_linear_bytes(const model_cfg *m, int64_t f, infer_weights w, int64_t g,
                                int scales) {
    const int64_t ups = m->mlp == MLP_SWIGLU ? 2 : 1;
    return ups * linear_bytes(w, f, m->hidden, g, scales) + linear_bytes(w, m->hidden, f, g, scales);
}

/* Linear weights of one layer on one tp rank. A dense layer: attention and
 * its MLP of ffn_hidden / tp. A MoE layer (docs/memory.md §8): attention, the
 * shared experts as one MLP of shared_experts * expert_ffn_hidden / tp (vLLM's
 * DeepseekV2MoE.shared_experts), and every routed expert split by tp
 * (expert_ffn_hidden / tp features each: vLLM's FusedMoE without expert
 * parallelism). The router is not here: it stays 16-bit. */
static int64_t layer_linear_bytes(const model_cfg *m, int64_t tp, bool moe, infer_weights w,
                                  int64_t g, int scales) {
    const int64_t attn = attn_linear_bytes(m, tp, w, g, scales);
    if (!moe) return attn + mlp_linear_bytes(m, m->ffn_hidden / tp, w, g, scales);
    const int64_t fe = m->expert_ffn_hidden / tp;
    const int64_t shared =
        m->shared_experts ? mlp_linear_bytes(m, m->shared_experts * fe, w, g, scales) : 0;
    return attn + shared + m->experts * mlp_linear_bytes(m, fe, w, g, scales);
}

/* Bias elements of one MLP of f features on a rank (params.c's layout: the
 * up projections' biases split, the down projection's replicated). */
static int64_t mlp_bias(const model_cfg *m, int64_t f) {
    return m->bias == BIAS_ALL ? (m->mlp == MLP_SWIGLU ? 2 : 1) * f + m->hidden : 0;
}

/* Weights on one tp rank: the layers' linear weights in the chosen format,
 * every other element in 16 bits. The 16-bit elements are params_count's
 * less its matmul weights: outside the layers (embedding, position table,
 * final norm, head), and per layer its norms and biases; a MoE layer swaps
 * the dense MLP's biases for the router (kept 16-bit, as vLLM builds the gate
 * unquantized), the shared experts' biases and every routed expert's biases
 * split by tp. */
static void weights_rank(const model_cfg *m, const infer_cfg *ic, int64_t *bytes,
                         int64_t *scales) {
    const int64_t tp = ic->tp, g = ic->group_size;
    params_count pc;
    params_count_rank(m, tp, &pc);
    const int64_t moe = model_moe_layers(m), dense = m->layers - moe;
    const int64_t dense_rest = pc.layer - pc.matmul_per_layer;
    int64_t rest = pc.total - params_layers(m, &pc, 0, m->layers) + dense * dense_rest;
    if (moe) {
        const int64_t fe = m->expert_ffn_hidden / tp;
        rest += moe * (dense_rest - mlp_bias(m, m->ffn_hidden / tp) + pc.router +
                       (m->shared_experts ? mlp_bias(m, m->shared_experts * fe) : 0) +
                       m->experts * mlp_bias(m, fe));
    }
    int64_t lin = 0, lin_bare = 0;
    for (int k = 0; k < 2; k++) {
        const int64_t n = k ? moe : dense;
        if (!n) continue;
        lin += n * layer_linear_bytes(m, tp, k, ic->weights, g, 1);
        lin_bare += n * layer_linear_bytes(m, tp, k, ic->weights, g, 0);
    }
    *bytes = lin + 2 * rest;
    *scales = lin - lin_bare;
}

/* Prefill working set of one layer per token on one tp rank, in bytes
 * (docs/memory.md §8), all tensors live at once, bf16 unless said:
 *   attention: the residual and the norm output (2h), then q and k/v, or with
 *     MLA the latents c_Q (r_q) and c_KV + k^R (r_kv + d_r) and the per-head
 *     q, k (d_n + d_r each) and v (d_v) that prefill decompresses;
 *   a dense MLP: its two up projections and their product (3 f / tp);
 *   a MoE MLP: the router's scores (fp32, E) and the top-k ids and weights
 *     (int32 + fp32, k), k dispatched rows per token each holding its input
 *     copy (h), the expert's two up projections and their product
 *     (3 f_e / tp) and its output before the weighted combine (h), and the
 *     shared experts' MLP (3 S f_e / tp).
 * A layer is the larger of the MLP kinds the model has. */
static int64_t act_per_token(const model_cfg *m, int64_t tp) {
    const int64_t h = m->hidden;
    int64_t attn;
    if (model_is_mla(m)) {
        const int64_t qk = m->qk_nope_head_dim + m->qk_rope_head_dim;
        attn = m->q_lora_rank + m->kv_lora_rank + m->qk_rope_head_dim +
               m->heads / tp * (2 * qk + m->v_head_dim);
    } else {
        const int64_t kv_heads_rank = m->kv_heads >= tp ? m->kv_heads / tp : 1;
        attn = model_q_width(m) / tp + 2 * kv_heads_rank * m->head_dim;
    }
    const int64_t base = 2 * (2 * h + attn);
    const int64_t dense_mlp = 2 * 3 * (m->ffn_hidden / tp);
    if (!model_moe_layers(m)) return base + dense_mlp;
    const int64_t fe = m->expert_ffn_hidden / tp, k = m->experts_per_token;
    const int64_t moe_mlp = 4 * m->experts + 8 * k +
                            2 * (k * (2 * h + 3 * fe) + 3 * m->shared_experts * fe);
    return base + (m->dense_layers && dense_mlp > moe_mlp ? dense_mlp : moe_mlp);
}

int infer_compute(const model_cfg *m, const cluster_cfg *c, const infer_cfg *ic,
                  infer_result *out, ps_err *err) {
    const int64_t tp = ic->tp;
    weights_rank(m, ic, &out->weights, &out->weight_scales);
    /* KV cache per token (docs/memory.md §8): K and V of kv_heads / tp heads
     * (one whole head when tp exceeds kv_heads); with MLA the latent c_KV and
     * the shared rotary key k^R, replicated on every tp rank (DeepSeek-V2
     * §2.1.2, Table 1: (d_c + d_h^R) l elements per token). Within the model's
     * limits (2 * 2^16 layers * 2^20 wide * 4 B = 2^39). */
    const int64_t kv_heads_rank = m->kv_heads >= tp ? m->kv_heads / tp : 1;
    const int64_t kv_elems = model_is_mla(m) ? m->kv_lora_rank + m->qk_rope_head_dim
                                             : 2 * kv_heads_rank * m->head_dim;
    out->kv_per_token = m->layers * kv_elems * dtype_bytes(ic->kv_dtype);
    const int64_t kv_per_seq = sat_mul(out->kv_per_token, ic->context);
    out->kv_cache = sat_mul(kv_per_seq, ic->batch);
    if (out->kv_cache > INFER_BYTES_MAX)
        return ps_err_set(err,
                          "--batch, --context: KV cache too large: %lld bytes per token x batch "
                          "%lld x context %lld exceeds the limit of 2^60 bytes (1 EiB)",
                          (long long)out->kv_per_token, (long long)ic->batch,
                          (long long)ic->context);
    const int64_t chunk = ic->prefill_chunk < ic->context ? ic->prefill_chunk : ic->context;
    out->activations = sat_mul(chunk, act_per_token(m, tp));
    const int64_t logits_per_seq = model_vocab_rows(m, tp) * 4;
    out->logits = ic->batch * logits_per_seq;
    out->reserved = c->gpu_reserved_bytes;
    /* weights <= 2 B x 2^48 parameters, logits <= 2^51, activations < 2^63
     * (a MoE layer's k*h*chunk reaches 2^62): saturating sums */
    const int64_t fixed = sat_add(sat_add(out->weights, out->activations), out->reserved);
    out->total = sat_add(sat_add(fixed, out->logits), out->kv_cache);
    if (out->total > INFER_BYTES_MAX)
        return ps_err_set(err, "--batch, --context: memory too large: %lld bytes of KV cache and "
                               "%lld of the rest exceed the limit of 2^60 bytes (1 EiB)",
                          (long long)out->kv_cache, (long long)sat_add(fixed, out->logits));
    out->capacity = c->gpu_memory_bytes;
    out->fits = out->total <= out->capacity;
    const int64_t per_seq = kv_per_seq + logits_per_seq; /* both <= 2^60 */
    out->max_batch = fixed >= out->capacity ? 0 : (out->capacity - fixed) / per_seq;
    return 0;
}
