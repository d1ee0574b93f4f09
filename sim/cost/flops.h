/* flops.h — floating-point operations per training step (docs/memory.md §7).
 *
 * Model FLOPs (what MFU divides): 6 per matmul weight per token (forward 2,
 * backward 4; Kaplan et al. 2020, Narayanan et al. 2021 Appendix) over every
 * layer's weights and the output head, plus attention 12 * L * s * (heads *
 * head_dim) per token (QK^T and PV, forward and backward, the full s x s
 * square as PaLM, Chowdhery et al. 2022 Appendix B, and Megatron-LM count it).
 * Hardware FLOPs (HFU) are what the kernels execute, so that HFU cannot pass
 * 100% when every efficiency is at most 1: a full-recompute replay of each
 * layer's forward, the score matmuls that selective recompute redoes, and for
 * flash attention the causal half of the square only (it skips masked blocks)
 * with its backward recomputation of QK^T (Dao 2023: 5 matmuls in backward
 * instead of 4). MFU keeps the full-square convention above, so on long
 * causal sequences MFU exceeds HFU, and can exceed 100% near peak.
 */
#ifndef PS_FLOPS_H
#define PS_FLOPS_H

#include "cost/params.h"
#include "spec/model.h"
#include "spec/plan.h"

typedef struct {
    double tokens;            /* tokens per step: global batch x seq */
    double model_per_step;    /* whole job */
    double hardware_per_step; /* whole job, with recomputation */
    double model_per_token;
    double hardware_per_token;
    /* The forward alone, per token (inference; a distillation teacher,
     * cost/distill.h): model, 2 per weight + the attention forward (the full
     * square); hardware, as executed (flash attention: the causal half). */
    double model_fwd_per_token;
    double hardware_fwd_per_token;
} flops_step;

void flops_compute(const model_cfg *m, const plan_cfg *p, flops_step *out);

/* The same with the model's whole-model counts given (params_count_rank at
 * tp = 1), for callers that hold them already (eval.c's cache). */
void flops_compute_pc(const model_cfg *m, const plan_cfg *p, const params_count *pc,
                      flops_step *out);

#endif
