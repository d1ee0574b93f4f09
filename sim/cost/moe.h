/* moe.h — mixture-of-experts layout, all-to-all volumes and activations of
 * one MoE layer on one rank (docs/memory.md §10 "Mixture of experts").
 *
 * Megatron-Core's MoE parallel folding (megatron/core/parallel_state.py,
 * expert_decoder_rank_generator): within a pipeline stage the expert layers
 * lay the same tp*cp*dp ranks out as etp (innermost) x ep x edp. A rank holds
 * experts/ep routed experts, each split etp ways; expert weights are
 * replicated over edp = tp*cp*dp / (etp*ep) ranks, which reduce (and under
 * ZeRO shard) their gradients.
 *
 * Token flow per MoE layer and micro-batch (megatron/core/transformer/moe/
 * token_dispatcher.py MoEAlltoAllTokenDispatcher): a rank routes its T_d
 * tokens (b*s/cp, divided by tp under sequence parallelism); each picks
 * experts_per_token (k) experts, so k*T_d token copies of h activations are
 * permuted, all-to-all'd over ep (dispatch), all-gathered over etp, run
 * through the local experts' MLPs, reduce-scattered over etp and all-to-all'd
 * back (combine). Under uniform routing 1/ep of the copies stay on the rank.
 */
#ifndef PS_MOE_H
#define PS_MOE_H

#include <stdint.h>

#include "spec/model.h"
#include "spec/plan.h"

typedef struct moe_layout_s {
    int64_t ep, etp, edp;
    int64_t experts_per_rank; /* experts / ep */
    int64_t tokens;       /* T_d: tokens one rank routes per micro-batch */
    double factor;        /* busiest expert rank's tokens over the mean: the imbalance,
                             capped by the capacity factor when one is set */
    double a2a_factor;    /* the busiest rank's all-to-all over a2a_bytes' mean (factor,
                             over the kept share min(1, cf) that a2a_bytes counts) */
    int64_t rows;         /* token copies the busiest rank's experts compute per
                             micro-batch: T_d * k * factor * etp (after the etp gather) */
    int64_t ep_per_node;  /* ranks of one ep group in a node */
    int64_t ep_nodes;     /* nodes one ep group spans */
    int64_t a2a_bytes;    /* S: one rank's dispatch (or combine) buffer, k*T_d*h*a */
    int64_t a2a_intra;    /* bytes one rank sends per all-to-all inside its node */
    int64_t a2a_inter;    /* bytes one rank sends per all-to-all to other nodes */
    int64_t etp_bytes;    /* S of the etp all-gather / reduce-scatter (0 when etp = 1) */
    int64_t expert_elems; /* routed-expert parameters one rank holds per MoE layer */
} moe_layout;

/* The layout of a checked plan of a MoE model on nodes of gpus_per_node GPUs. */
void moe_layout_compute(const model_cfg *m, const plan_cfg *p, int64_t gpus_per_node,
                        moe_layout *out);

/* Slots one expert takes from one rank per micro-batch when inputs are padded
 * to capacity (moe.pad_to_capacity): ceil(cf * tokens * k / experts) (GShard,
 * Lepikhin et al. 2020 §2.2; Megatron-LM moe_utils.py get_capacity), at most
 * `tokens`; dropless (cf 0) pads to `tokens`, which no routing can exceed. */
int64_t moe_capacity(const model_cfg *m, const plan_cfg *p, int64_t tokens);

/* Bytes of one rank's padded dispatch (or combine) buffer: every one of the
 * experts' `capacity` slots, `hidden` wide, whatever the routing (S of each
 * padded all-to-all; the closed form's moe.pad_to_capacity and the execution
 * plan's all-to-all ops both use it). */
static inline int64_t moe_padded_a2a_bytes(int64_t experts, int64_t capacity, int64_t hidden,
                                           int64_t dtype_bytes) {
    return experts * capacity * hidden * dtype_bytes;
}

/* Expected distinct nodes (or ranks) one token's k experts land on when they are
 * spread uniformly over n of them: n (1 - (1 - 1/n)^k). */
double moe_nodes_per_token(int64_t n, int64_t k);

/* All-to-alls of one MoE layer per micro-batch: forward dispatch and combine
 * (2); backward their gradients (2), plus the replayed forward's under full
 * recompute. */
int64_t moe_a2a_calls(const plan_cfg *p, bool backward);

/* Bytes one MoE layer saves for backward per micro-batch on one rank beyond
 * the attention block (the MLP norm's input and output are the dense layer's):
 * router logits and probabilities, top-k indices and weights, permutation
 * indices, dispatched token buffers, the routed experts' MLP activations on
 * `rows` rows, the combine's expert outputs, and the shared experts' MLP. */
int64_t moe_act_mlp_bytes(const model_cfg *m, const plan_cfg *p, const moe_layout *l);

/* DualPipe's queued W of one MoE layer's MLP (docs/memory.md §4; the dense
 * MLP's is workspace.c zb_queued): bytes of its linears' inputs (*inputs) and
 * output gradients (*grads, grad_elem bytes an element), which a W closure
 * keeps from its B to its W. The router's gate and the shared experts read
 * the normed input (T_d rows of h, once); the routed experts' w1/w3 the
 * dispatched tokens (`rows` of h), their w2 the activation (rows of
 * expert_ffn_hidden/etp); the shared experts' w2 theirs (tokens of
 * shared_experts expert_ffn_hidden/tp). Gradients: the router's logits (T_d
 * x experts), w1/w3's outputs (rows x up f_e), w2's (rows x h), and the
 * shared experts' (tokens x (up f_s + h)). */
void moe_zb_queued_bytes(const model_cfg *m, const plan_cfg *p, const moe_layout *l,
                         int64_t grad_elem, int64_t *inputs, int64_t *grads);

/* Dense and MoE layers among main-model layers [first, first + n). */
void moe_layer_split(const model_cfg *m, int64_t first, int64_t n, int64_t *dense,
                     int64_t *moe);

/* Dense and MoE layers held by pipeline stage s (all its chunks); the last
 * stage counts the MTP modules' layers (mtp_layers) among its MoE layers. */
/* The same for chunk c of stage s (pipe_chunks; DualPipe's chunk 1 is stage
 * pp-1-s of the split): the chunk of the last virtual stage counts the MTP
 * modules. moe_stage_layers sums it over the stage's chunks. */
void moe_chunk_layers(const model_cfg *m, const plan_cfg *p, int64_t stage, int64_t chunk,
                      int64_t *dense, int64_t *moe);
void moe_stage_layers(const model_cfg *m, const plan_cfg *p, int64_t stage, int64_t *dense,
                      int64_t *moe);

#endif
