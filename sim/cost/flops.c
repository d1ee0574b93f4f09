/* flops.c — model and hardware FLOPs per step (see flops.h, docs/memory.md §7). */
#include "cost/flops.h"

#include "cost/act.h"
#include "cost/params.h"

/* Forward FLOPs per token of the layer ops a table policy replays (act.h's
 * act_replay_ops): 2 per weight of each replayed linear (q: h x q, k and v:
 * h x kv, o: q x h, w1/fc1, w3, w2/fc2: h x f), the attention kernel as
 * executed (attn_once); norms, RoPE, softmax and elementwise ops count none.
 * Multi-head latent attention (DeepSeek-V2 §2.1; params.c mla_weights): q is
 * the query up-projection, q_lora x heads (nope + rope) (without q_lora the
 * h x heads (nope + rope) query), k and v the two halves of kv_up, kv_lora x
 * heads nope and kv_lora x heads v, o heads v x h; the down projections make
 * the latents, which no table tensor is, and are not replayed. A MoE layer's
 * MLP ops (moe != 0) are its shared and experts_per_token routed experts',
 * (shared + k) expert_ffn_hidden wide (the router is not replayed). */
static double replay_flops(const model_cfg *m, uint32_t ops, double attn_once, int moe) {
    const double h = (double)m->hidden;
    double qw = (double)model_q_width(m), kvw = (double)model_kv_width(m);
    double q = 2 * h * qw, k = 2 * h * kvw, v = k, o = 2 * qw * h;
    if (model_is_mla(m)) {
        const double nh = (double)m->heads, kl = (double)m->kv_lora_rank;
        const double qk = (double)(m->qk_nope_head_dim + m->qk_rope_head_dim);
        q = 2 * (m->q_lora_rank ? (double)m->q_lora_rank : h) * nh * qk;
        k = 2 * kl * nh * (double)m->qk_nope_head_dim;
        v = 2 * kl * nh * (double)m->v_head_dim;
        o = 2 * nh * (double)m->v_head_dim * h;
    }
    const double f = moe ? (double)((m->experts_per_token + m->shared_experts) *
                                    m->expert_ffn_hidden)
                         : (double)m->ffn_hidden;
    const double per_op[ACT_OP_COUNT] = {[ACT_OP_Q] = q,          [ACT_OP_K] = k,
                                         [ACT_OP_V] = v,          [ACT_OP_ATTN] = attn_once,
                                         [ACT_OP_O] = o,          [ACT_OP_UP] = 2 * h * f,
                                         [ACT_OP_GATE] = 2 * h * f, [ACT_OP_DOWN] = 2 * f * h};
    double sum = 0;
    for (int i = 0; i < ACT_OP_COUNT; i++)
        if (ops >> i & 1u) sum += per_op[i];
    return sum;
}

void flops_compute(const model_cfg *m, const plan_cfg *p, flops_step *out) {
    params_count pc;
    params_count_rank(m, 1, &pc);
    flops_compute_pc(m, p, &pc, out);
}

void flops_compute_pc(const model_cfg *m, const plan_cfg *p, const params_count *pcp,
                      flops_step *out) {
    const params_count pc = *pcp;
    const double L = (double)m->layers, s = (double)p->seq;
    const double qw = (double)model_q_width(m);
    const double head = (double)m->vocab * (double)m->hidden;
    const double layer_mm = (double)pc.matmul_per_layer;
    double attn_fwd = 4.0 * s * qw; /* QK^T and PV, 2 FLOPs per multiply-add */
    /* multi-head latent attention (DeepSeek-V2 §2.1): QK^T over heads x
     * (nope + rope) wide queries and keys, PV over heads x v_head_dim */
    if (model_is_mla(m))
        attn_fwd = 2.0 * s * (double)m->heads *
                   (double)(m->qk_nope_head_dim + m->qk_rope_head_dim + m->v_head_dim);
    /* a MoE layer multiplies only the weights its tokens use: attention, the
     * router, the shared experts and experts_per_token routed experts
     * (params_count.moe_matmul_active), so MFU is on activated parameters,
     * as DeepSeek-V3 and Megatron-Core report it (docs/memory.md §7). Each
     * multi-token-prediction module (DeepSeek-V3 §2.2) adds one MoE layer,
     * its 2h x h projection and a pass through the shared output head, as
     * Megatron-LM's num_floating_point_operations counts them (training.py,
     * mtp_num_layers); the step time charges them on a MoE model's last
     * stage only (kt_mtp), and so do these. */
    const double Lm = model_is_moe(m) ? (double)m->mtp_layers : 0;
    const double h = (double)m->hidden;
    const double Le = (double)model_moe_layers(m) + Lm, Ld = L - (Le - Lm), La = L + Lm;
    const double moe_mm = (double)pc.moe_matmul_active;
    const double layers_mm = Ld * layer_mm + Le * moe_mm;
    const double heads_mm = Lm > 0 ? (1 + Lm) * head + Lm * 2 * h * h : head;
    const double matmul = 6.0 * (layers_mm + heads_mm);
    const double model = matmul + 3.0 * La * attn_fwd;
    /* Executed attention: flash attention computes only the causal half of the
     * square, and its backward recomputes QK^T (2.5x its forward; Dao 2023);
     * standard attention multiplies the full square, forward and backward. */
    const int flash = m->attention == ATTN_FLASH;
    const double attn_once = flash ? 0.5 * attn_fwd : attn_fwd;
    double hardware = matmul + La * attn_once * (flash ? 3.5 : 3.0);
    if (p->recompute == RECOMPUTE_SELECTIVE && !flash) hardware += La * attn_once;
    if (p->recompute == RECOMPUTE_FULL) /* (a dense model's sum kept in its own order) */
        hardware += Le > 0 ? 2.0 * layers_mm + La * attn_once : L * (2.0 * layer_mm + attn_once);
    /* table policies (op, gelu, gelu+norm, custom): the producers of the
     * dropped tensors, in dense and MoE layers each at its own width */
    if (p->recompute > RECOMPUTE_FULL) {
        const uint32_t ops = act_replay_ops(m, p);
        hardware += Ld * replay_flops(m, ops, attn_once, 0);
        if (Le > 0) hardware += Le * replay_flops(m, ops, attn_once, 1);
    }
    out->model_fwd_per_token = matmul / 3.0 + La * attn_fwd;
    out->hardware_fwd_per_token = matmul / 3.0 + La * attn_once;
    out->tokens = (double)p->global_batch * s;
    out->model_per_token = model;
    out->hardware_per_token = hardware;
    out->model_per_step = model * out->tokens;
    out->hardware_per_step = hardware * out->tokens;
}
