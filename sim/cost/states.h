/* states.h — model states per GPU: parameters, gradients, fp32 master weights
 * and optimizer states, with ZeRO sharding and optimizer offload
 * (docs/memory.md §2; Rajbhandari et al. 2020, "ZeRO", §5 and Figure 1).
 *
 * ZeRO shards over the data-parallel group, which also spans the context-
 * parallel ranks (they hold the same weights; Megatron-LM reduces gradients
 * over dp x cp). A shard is ceil(N / d) elements: every rank holds the same
 * padded size, as DeepSpeed's and FSDP's flat buffers do.
 */
#ifndef PS_STATES_H
#define PS_STATES_H

#include <stdint.h>

#include "spec/plan.h"

typedef struct {
    int64_t params, grads, master, optimizer; /* bytes on the GPU */
    int64_t host;                             /* bytes moved to host memory by offload */
} states_bytes;

/* Optimizer state tensors per parameter: AdamW 2 (m, v), SGD 0, SGD+momentum 1. */
int states_per_param(plan_optimizer opt);

/* Elements of an n-element tensor held by one of d ranks. */
static inline int64_t states_shard(int64_t n, int64_t d) { return (n + d - 1) / d; }

/* rank_params: elements held by this (stage, tp rank) before ZeRO sharding.
 * A framework profile whose 16-bit parameter copies are transient
 * (plan_framework.param_copy_transient) holds no params bytes beside the master. */
void states_compute(int64_t rank_params, const plan_cfg *p, states_bytes *out);

/* A MoE model's stage (docs/memory.md §10): rank_params as above, sharded
 * over dp x cp, and expert_params routed-expert elements sharded over the
 * expert-data-parallel group of edp ranks (Megatron-Core's distributed
 * optimizer shards the expert parameters over the expert data-parallel
 * group). expert_params 0: states_compute. */
void states_compute_moe(int64_t rank_params, int64_t expert_params, int64_t edp,
                        const plan_cfg *p, states_bytes *out);

#endif
