/* kernel_time.h — compute time of one transformer layer, the embedding, the
 * head and the optimizer on one GPU, from per-op FLOPs and bytes
 * (docs/time.md §1–§2).
 *
 * Matmuls run at the GPU's dense peak for the math dtype times an efficiency
 * that depends on the GEMM's smallest dimension (the cluster's curve,
 * interpolated in log-log space: a thin GEMM such as attention's QK^T with
 * K = head_dim has low arithmetic intensity); flash attention at its own forward and
 * backward efficiencies; memory-bound ops (norms, activations, residual adds,
 * dropout, softmax, RoPE, the loss, the optimizer) move their bytes at HBM
 * bandwidth times an efficiency. Backward matmuls cost twice the forward
 * (input gradient + weight gradient, kept apart for zero-bubble schedules).
 */
#ifndef PS_KERNEL_TIME_H
#define PS_KERNEL_TIME_H

#include <stdint.h>

#include "spec/cluster.h"
#include "spec/model.h"
#include "spec/plan.h"

/* Efficiency of a GEMM whose smallest dimension is `dim`: the cluster's
 * curve, log-log interpolated, proportional below its first point and flat
 * above its last. */
double kt_gemm_efficiency(const cluster_eff *e, double dim);
/* Seconds for `batch` GEMMs of M x K times K x N in the plan's math dtype. */
double kt_gemm(const cluster_cfg *c, const plan_cfg *p, double batch, double M, double N,
               double K);
/* Seconds to move `bytes` through HBM in a memory-bound kernel. */
double kt_mem(const cluster_cfg *c, double bytes);
/* Forward and backward efficiency of the fused (flash) attention kernel on
 * sequences of `seq` tokens: the curves of the cluster's attention kernel the
 * plan names (kernels.attention), else the cluster's flat attention
 * efficiency (docs/time.md §1). */
void kt_attn_efficiency(const cluster_cfg *c, const plan_cfg *p, double seq, double *fwd,
                        double *bwd);
/* Dense peak FLOP/s of the plan's math (activation) dtype. */
double kt_peak(const cluster_cfg *c, const plan_cfg *p);

typedef enum { KT_GEMM, KT_ATTN, KT_MEM } kt_kind;

typedef struct {
    const char *name;
    kt_kind kind;
    double flops_fwd, bytes_fwd; /* one micro-batch on one rank */
    double flops_bwd;            /* its backward: 2x a GEMM's (input and weight or both
                                    operand gradients), 2.5x flash attention's, 0 memory-bound */
    double fwd, bwd_in, bwd_w;   /* seconds */
    uint32_t replays;            /* layer ops (cost/act.h act_op bits) its forward computes */
    double weights;              /* elements of its weight on this rank (0: none) */
} kt_op;

#define KT_MAX_OPS 24 /* a MoE layer: the dense layer's attention ops and 8 MoE ops */

typedef struct {
    kt_op op[KT_MAX_OPS];
    int n;
    double fwd, bwd_in, bwd_w; /* sums: forward; backward input-gradient; weight-gradient */
    double attn_core_fwd;      /* attention core forward (ring attention hides K/V behind it) */
    double recompute;          /* forward work replayed in backward by the recompute policy:
                                  full, the forward; selective, standard attention's core;
                                  op, gelu, gelu+norm, custom, the forward time of the ops
                                  act_replay_ops names (docs/time.md §2) */
} kt_part;

/* One layer, one micro-batch (b x s/cp tokens), one tp rank. */
void kt_layer(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, kt_part *out);
/* One MoE layer (cost/moe.h; docs/time.md §3 "MoE layers"), one micro-batch,
 * one rank of layout l: the attention block of kt_layer, the router's GEMM
 * (tokens x h x experts), the shared experts' MLP (split by tp, like the dense
 * MLP), the permutation and un-permutation of the token copies (memory-bound),
 * and the routed experts as grouped GEMMs: experts/ep GEMMs of rows/(experts/
 * ep) rows each (the busiest rank's, l->rows) x h x expert_ffn_hidden/etp
 * through the GEMM efficiency curve. Communication is not included (comm.c). */
struct moe_layout_s;
void kt_moe_layer(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                  const struct moe_layout_s *l, kt_part *out);
/* First-stage extras (embedding lookup) and last-stage extras (final norm,
 * output head, cross-entropy), one micro-batch. */
void kt_first(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, kt_part *out);
void kt_last(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, kt_part *out);
/* The MTP modules' work beside their layers on the last stage (embedding,
 * norms, projection, output head, loss; ops of one module, totals of all);
 * zero without mtp_layers. */
void kt_mtp(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, kt_part *out);

/* One optimizer step over `elems` parameters held by this rank (its ZeRO
 * shard, or all it holds without ZeRO-1+): a memory-bound pass over
 * gradients, master weights, optimizer states and parameters; with the
 * optimizer offloaded, the PCIe round trip and a host-side step instead. */
double kt_optimizer(const cluster_cfg *c, const plan_cfg *p, int64_t elems);
/* The bytes an optimizer step moves over elems parameters: read the gradients and zero
 * them, read and write the master weights (or the parameters) and the states, write the
 * parameters (kt_optimizer prices them at the memory bandwidth). */
double kt_optimizer_bytes(const plan_precision *pr, plan_optimizer opt, int64_t elems);
/* Flash attention's FLOPs for bh (batch x heads) rows of sq queries against sk keys of
 * head dim d, causal: the half of QK^T and of PV each; the backward 2.5x the forward
 * (FlashAttention-2's count, Dao 2023 §4). */
void kt_flash_attn_flops(double bh, double sq, double sk, double d, double *fwd, double *bwd);

#endif
