/* moe.c — MoE layout, all-to-all volumes and activations (see moe.h,
 * docs/memory.md §10). */
#include "cost/moe.h"

#include <math.h>

#include "base/dtype.h"
#include "cost/act.h"
#include "cost/pipe.h"

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Share of the token copies an expert keeps under a capacity factor cf < 1
 * with uniform routing: cf (Megatron-Core drops the rest from the routing map
 * before the permute, moe_utils.py apply_router_token_dropping), else 1. */
static double moe_kept_share(const plan_cfg *p) {
    return p->moe_capacity_factor > 0 && p->moe_capacity_factor < 1 ? p->moe_capacity_factor : 1;
}

int64_t moe_capacity(const model_cfg *m, const plan_cfg *p, int64_t tokens) {
    if (p->moe_capacity_factor <= 0) return tokens;
    const double c = ceil(p->moe_capacity_factor * (double)tokens * (double)m->experts_per_token /
                          (double)m->experts);
    return c < (double)tokens ? (int64_t)c : tokens;
}

double moe_nodes_per_token(int64_t n, int64_t k) {
    if (n <= 1) return 1;
    return (double)n * (1.0 - pow(1.0 - 1.0 / (double)n, (double)k));
}

/* Bytes of one all-to-all per rank, split by link (docs/memory.md §10):
 * - plain (node_limit 0, NCCL's all-to-all): each of the k T_d copies goes
 *   straight to the rank of its expert; of the ep ranks, g share the sender's
 *   node: (g-1)/ep of the copies cross NVLink, (ep-g)/ep the network.
 * - node-limited routing (DeepSeek-V3 §2.1.2 and §3.2.2), or DeepEP's
 *   kernels without a limit (M = N): a token's experts
 *   lie on at most M of the N nodes; it crosses IB once per target node other
 *   than its own (to the GPU of the same in-node index), then NVLink forwards
 *   each copy to its expert's GPU unless that GPU received it: per token
 *   D (N-1)/N IB sends, D = moe_nodes_per_token(min(M, N), k) distinct nodes,
 *   and k (g-1)/g NVLink sends.
 * - DeepEP sends a token once per destination rank, however many of its
 *   experts that rank holds (csrc/kernels/intranode.cu dispatch: one copy per
 *   rank whose is_token_in_rank is set; internode.cu forwards over NVLink the
 *   same way): R = moe_nodes_per_token(ep, k) distinct ranks per token in
 *   place of its k copies, on one node R (ep-1)/ep NVLink sends, across nodes
 *   R (g-1)/g. */
static void a2a_split(const model_cfg *m, const plan_cfg *p, moe_layout *o) {
    const double unit = (double)m->hidden * (double)dtype_bytes(p->precision.activations);
    /* padded: every expert's C slots, full or not, go to its rank */
    const double copies = p->moe_pad ? (double)m->experts * (double)moe_capacity(m, p, o->tokens)
                                     : (double)o->tokens * (double)m->experts_per_token *
                                           moe_kept_share(p);
    const double ep = (double)o->ep, g = (double)o->ep_per_node, n = (double)o->ep_nodes;
    o->a2a_bytes = p->moe_pad ? moe_padded_a2a_bytes(m->experts, moe_capacity(m, p, o->tokens),
                                                     m->hidden,
                                                     dtype_bytes(p->precision.activations))
                              : (int64_t)(copies * unit);
    if (o->ep <= 1) {
        o->a2a_intra = o->a2a_inter = 0;
        return;
    }
    /* DeepEP's normal kernels forward the same way with or without a node
     * limit (Megatron-Core moe/README.md: the flex dispatcher with DeepEP
     * "removes redundant tokens during cross-node communication"): M' = N */
    const bool deepep = p->moe_dispatcher == MOE_DISPATCHER_DEEPEP;
    /* DeepEP: the token copies that reach distinct ranks (not padded: capacity slots are
     * per expert) */
    const double sent = deepep && !p->moe_pad
                            ? (double)o->tokens * moe_kept_share(p) *
                                  moe_nodes_per_token(o->ep, m->experts_per_token)
                            : copies;
    if ((p->moe_node_limit > 0 || deepep) && o->ep_nodes > 1 && !p->moe_pad) {
        const int64_t nodes = p->moe_node_limit > 0 ? min64(p->moe_node_limit, o->ep_nodes)
                                                    : o->ep_nodes;
        const double d = moe_nodes_per_token(nodes, m->experts_per_token);
        o->a2a_inter = llround((double)o->tokens * d * (n - 1) / n * unit);
        o->a2a_intra = llround(sent * (g - 1) / g * unit);
        return;
    }
    if (deepep && !p->moe_pad) { /* one node: every send on NVLink */
        o->a2a_intra = llround(sent * (ep - 1) / ep * unit);
        o->a2a_inter = 0;
        return;
    }
    o->a2a_intra = llround(copies * (g - 1) / ep * unit);
    o->a2a_inter = llround(copies * (ep - g) / ep * unit);
}

void moe_layout_compute(const model_cfg *m, const plan_cfg *p, int64_t gpus_per_node,
                        moe_layout *o) {
    const int64_t etp = plan_etp(p), ep = p->ep;
    o->ep = ep;
    o->etp = etp;
    o->edp = p->tp * p->cp * p->dp / (etp * ep);
    o->experts_per_rank = m->experts / ep;
    /* under sequence parallelism each tp rank routes its 1/tp of the tokens */
    o->tokens = plan_tokens_per_rank(p) / (p->sp ? p->tp : 1);
    /* a capacity factor drops what exceeds it (and pads up to it when the
     * experts run padded: Megatron-LM --moe-pad-expert-input-to-capacity) */
    /* the busiest of ep ranks takes at most every token: imbalance <= ep */
    o->factor = p->moe_imbalance < (double)ep ? p->moe_imbalance : (double)ep;
    if (p->moe_capacity_factor > 0 && p->moe_capacity_factor < o->factor)
        o->factor = p->moe_capacity_factor;
    o->rows = llround((double)o->tokens * (double)m->experts_per_token * o->factor * (double)etp);
    o->a2a_factor = o->factor / moe_kept_share(p);
    if (p->moe_pad) { /* each local expert computes its C slots from each of the ep ranks */
        o->rows = o->experts_per_rank * moe_capacity(m, p, o->tokens) * ep * etp;
        o->factor = (double)o->rows / ((double)o->tokens * (double)m->experts_per_token * (double)etp);
        o->a2a_factor = 1; /* every rank sends its full padded buffer */
    }
    /* expert ranks: etp innermost, then ep (Megatron-Core's order tp-ep-dp-pp
     * for the expert layers); an ep group's neighbours are etp ranks apart */
    int64_t per = ep;
    if (p->gpus > gpus_per_node) per = gpus_per_node % etp ? 1 : min64(ep, gpus_per_node / etp);
    if (per < 1) per = 1;
    o->ep_per_node = per;
    o->ep_nodes = (ep + per - 1) / per;
    a2a_split(m, p, o);
    /* the etp group gathers the copies its ranks received (uniform routing) */
    o->etp_bytes = etp > 1 ? o->a2a_bytes * etp : 0;
    /* one routed expert split etp ways: up (x2 gated) and down weights by
     * the hidden features, biases of the up projections too; the down
     * projection's bias replicated (Megatron's row-parallel layout) */
    const int64_t up = m->mlp == MLP_SWIGLU ? 2 : 1, fe = m->expert_ffn_hidden / etp;
    const int64_t bias = m->bias == BIAS_ALL ? up * fe + m->hidden : 0;
    o->expert_elems = o->experts_per_rank * ((up + 1) * m->hidden * fe + bias);
}

int64_t moe_a2a_calls(const plan_cfg *p, bool backward) {
    return backward ? (p->recompute == RECOMPUTE_FULL ? 4 : 2) : 2;
}

int64_t moe_act_mlp_bytes(const model_cfg *m, const plan_cfg *p, const moe_layout *l) {
    const int64_t a = dtype_bytes(p->precision.activations), h = m->hidden;
    const int64_t E = m->experts, k = m->experts_per_token, T = l->tokens;
    const int64_t up = m->mlp == MLP_SWIGLU ? 2 : 1, fe = m->expert_ffn_hidden / l->etp;
    /* router (router.py TopKRouter, moe_utils.py topk_routing_with_score_function):
     * the scores in fp32 (softmax / sigmoid save their output), the routing
     * map (bool, T x E) and the top-k probabilities (fp32) */
    int64_t b = T * E * 4 + T * E + T * k * 4;
    /* permutations (moe_utils.py permute): sorted indices (int64) of the k T
     * copies, then of the rows sorted by local expert */
    b += T * k * 8 + l->rows * 8;
    /* experts (experts.py TEGroupedMLP, Megatron-Core main since 2659630721,
     * 9 Apr 2025, and core_v0.12.1): fc1's input, the dispatched tokens
     * (rows x h); its output (rows x up*fe), which the probability-weighted
     * activation (fused_bias_swiglu.py weighted_bias_swiglu_impl) saves with
     * the per-row probabilities (fp32); fc2's input (rows x fe). The combine's
     * unpermute then carries no probabilities and saves nothing of fc2's
     * output. A policy that replays the activation (Megatron-LM
     * --recompute-modules moe_act: CheckpointWithoutOutput around it) drops
     * fc2's input, the routed and the shared experts' alike. */
    const bool act_dropped = (act_replay_ops(m, p) & (1u << ACT_OP_ACT)) != 0;
    const int64_t kept_out = act_dropped ? 0 : 1;
    b += l->rows * (h + up * fe + kept_out * fe) * a + l->rows * 4;
    /* shared experts (shared_experts.py): a dense MLP of shared_experts *
     * expert_ffn_hidden features, split by tp, on every token */
    const int64_t fs = m->shared_experts * m->expert_ffn_hidden / p->tp;
    b += plan_tokens_per_rank(p) * (up * fs + kept_out * fs) * a;
    return b;
}

void moe_layer_split(const model_cfg *m, int64_t first, int64_t n, int64_t *dense,
                     int64_t *moe) {
    int64_t d = model_is_moe(m) ? m->dense_layers - first : n;
    d = d < 0 ? 0 : d > n ? n : d;
    *dense = d;
    *moe = n - d;
}

void moe_chunk_layers(const model_cfg *m, const plan_cfg *p, int64_t stage, int64_t chunk,
                      int64_t *dense, int64_t *moe) {
    /* DualPipe: chunk 1 of rank s is stage pp-1-s of the split */
    const bool dual = p->schedule == SCHED_DUALPIPE;
    const int64_t g = dual ? (chunk ? p->pp - 1 - stage : stage) : chunk * p->pp + stage;
    moe_layer_split(m, pipe_virtual_first_layer(m, p, g), pipe_chunk_layers(m, p, stage, chunk),
                    dense, moe);
    /* the multi-token-prediction modules follow the output head (DeepSeek-V3 §2.2) */
    if (g == (dual ? p->pp - 1 : p->pp * pipe_chunks(p) - 1)) *moe += m->mtp_layers;
}

void moe_stage_layers(const model_cfg *m, const plan_cfg *p, int64_t stage, int64_t *dense,
                      int64_t *moe) {
    *dense = *moe = 0;
    for (int64_t c = 0; c < pipe_chunks(p); c++) {
        int64_t d, e;
        moe_chunk_layers(m, p, stage, c, &d, &e);
        *dense += d;
        *moe += e;
    }
}

void moe_zb_queued_bytes(const model_cfg *m, const plan_cfg *p, const moe_layout *l,
                         int64_t grad_elem, int64_t *inputs, int64_t *grads) {
    const int64_t a = dtype_bytes(p->precision.activations), h = m->hidden, T = l->tokens;
    const int64_t up = m->mlp == MLP_SWIGLU ? 2 : 1, fe = m->expert_ffn_hidden / l->etp;
    const int64_t N = plan_tokens_per_rank(p), fs = m->shared_experts * m->expert_ffn_hidden / p->tp;
    *inputs = a * (T * h + l->rows * (h + fe) + N * fs);
    *grads = grad_elem * (T * m->experts + l->rows * (up * fe + h) +
                          (fs ? N * (up * fs + h) : 0));
}
