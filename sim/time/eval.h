/* eval.h — the closed-form evaluation of one plan: memory per pipeline stage
 * (the heaviest one reported), communication per GPU per step, FLOPs, fit.
 *
 * This is the only place that combines the formula modules (params, states,
 * act, pipe, comm, flops); each of those owns its formula. It allocates
 * nothing and reads only numeric configs, so sweeps can call it millions of
 * times a second. The plan must have passed plan_check_cfg.
 */
#ifndef PS_EVAL_H
#define PS_EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "cost/act.h"
#include "spec/cluster.h"
#include "cost/comm.h"
#include "cost/distill.h"
#include "cost/flops.h"
#include "spec/model.h"
#include "cost/params.h"
#include "cost/workspace.h"
#include "spec/plan.h"
#include "time/distill_time.h"
#include "time/step_time.h"

typedef struct {
    int64_t stage, layers;
    int64_t inflight;       /* micro-batches (chunk-micro-batches if interleaved) live at peak */
    int64_t param_elems;    /* parameters held before ZeRO sharding */
    int64_t params, grads, master, optimizer; /* bytes */
    int64_t act_saved;      /* tensors kept for backward at the peak */
    int64_t act_working;    /* one layer rebuilt by recomputation during backward */
    int64_t activations;    /* act_saved + act_working */
    int64_t buf_comm;       /* gradient-communication bucket */
    int64_t buf_zero3;      /* ZeRO-3 gathered unit + prefetch + unsharded unit grads */
    int64_t buf_temps;      /* op temporaries on top of the activations (workspace.h): the
                               largest op working set (activation gradients, logits, fp32
                               copies, a reduce-scatter's receive buffer); the optimizer's
                               only beyond the activations (none are live then) */
    int64_t buf_cp;         /* ring attention K/V and dK/dV double buffers */
    int64_t buf_workspace;
    int64_t reserved;       /* outside the allocator: CUDA context, NCCL (cluster spec) */
    int64_t fragmentation;  /* allocator reserve over allocated */
    int64_t other;          /* sum of the buffers above */
    int64_t total;
    int64_t host;           /* bytes offloaded to host memory */
    int64_t comm_bytes[GROUP_COUNT];
    stage_time time;        /* per chunk-micro-batch and per-step seconds (step_time.h) */
    /* ---- MoE (cost/moe.h; 0 for a dense model): of param_elems, the routed
     * experts' (ZeRO-sharded over edp rather than dp x cp), and the stage's
     * dense and MoE layers (MTP modules counted as MoE layers of the last stage) */
    int64_t expert_elems, dense_layers, moe_layers;
    /* ---- logit distillation (cost/distill.h; 0 without distill:): the
     * teacher's weights on this GPU (shared), its forward's transient working
     * set (shared; counted like the workspace), the KD loss's saved tensors
     * of the micro-batches in flight (the last stage), all in total; and the
     * seconds of one micro-batch's teacher forward (shared), in time.f */
    int64_t teacher_weights, teacher_forward, kd_saved;
    double teacher_fwd_s;
} eval_stage;

/* What distillation adds to a plan (docs/distillation.md "Planner"). */
typedef struct {
    bool set;
    uint8_t placement;        /* plan_distill_placement */
    distill_layout layout;    /* the teacher's tp, pp, dp, GPUs, tokens per micro-batch */
    int64_t kd_per_micro;     /* distill_kd_bytes: one micro-batch's KD saved tensors */
    int64_t topk_saving;      /* of those, what top-k saves per micro-batch (0 without) */
    /* separate: one teacher GPU (weights, forward, logits, reserved, total) */
    int64_t teacher_weights, teacher_forward, teacher_logits, teacher_total;
    bool teacher_fits;
    double flops_teacher_per_step; /* 2 N_t + attention forward, every token of the step */
    double flops_teacher_hardware_per_step; /* the same as executed (flash: causal half): in HFU */
    double transfer_bytes_per_step, transfer_s; /* separate: the logits shipped */
    double teacher_s;         /* separate: the teacher's forwards of one step */
    double student_step_s;    /* the student's step before the teacher joins it (separate) */
    double exposed_s;         /* separate: step - student_step_s */
    int64_t teacher_micro_batches; /* separate: per teacher replica */
    bool inter_node;          /* separate: the transfer crosses nodes */
} eval_distill;

typedef struct {
    int64_t model_params;
    int64_t micro_batches;
    int64_t stages;
    int64_t heaviest;     /* stage index with the largest total */
    eval_stage heavy;     /* copy of that stage */
    comm_list comm;       /* collectives of the heaviest stage */
    double tokens_per_step;
    double flops_model_per_step, flops_hardware_per_step;
    int64_t capacity_bytes; /* GPU memory */
    bool fits;              /* heavy.total <= capacity; and a separate teacher's GPU fits */
    step_time time;         /* step time, its split, tokens/s, MFU, HFU */
    eval_distill distill;   /* the teacher's part (distill.set false without one) */
} eval_result;

/* What eval_plan derives from the model, the cluster and the per-micro-batch
 * shape of a plan (tp, cp, sp, seq, micro-batch, recompute, precision, framework
 * constants, kernels): a sweep
 * passes one cache to consecutive calls, which reuse it while those agree. */
typedef struct {
    const model_cfg *m;
    const cluster_cfg *c;
    int64_t tp, cp, seq, micro;
    bool sp, valid;
    plan_recompute recompute;
    uint32_t recompute_tensors;
    plan_precision precision;
    plan_framework framework;
    int32_t attn_kernel;   /* kernels.attention (kernel_time.c) */
    bool grad_acc_unfused; /* kernels.grad_accumulation_fusion: false */
    bool eager_elementwise; /* kernels.elementwise: eager */
    params_count pc;
    int64_t model_params;   /* params_total(m) */
    flops_step flops;       /* flops_compute for the cached shape: per-token figures only */
    act_bytes act;
    act_bytes act_attn; /* MoE model: a layer without its MLP (the MoE layer's attention block) */
    ws_bytes ws;
    time_ctx time;
    /* logit distillation: the teacher (NULL: none) and its forward's parts
     * under this plan shape (shared placement) */
    const model_cfg *teacher;
    distill_time_ctx teacher_time;
} eval_cache;

/* Evaluate a checked plan. stages, if not NULL, receives pp entries; when it
 * is NULL and the layers are split evenly, only the first, second and last
 * stages are evaluated (the heaviest is the first or the last, and the middle
 * stages are all alike; see eval.c). */
void eval_plan(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, eval_result *out,
               eval_stage *stages);
/* The same with a cache (zero-initialise it before the first call). */
void eval_plan_cached(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                      eval_result *out, eval_stage *stages, eval_cache *cache);

/* The same for a plan with a `distill:` section: teacher t (the plan's
 * plan_spec.teacher) costed with it (docs/distillation.md "Planner"); t NULL
 * or p->distill.set false: eval_plan_cached. MFU stays on the student's
 * model FLOPs; HFU counts the teacher's forward too (over the teacher's GPUs
 * as well under separate). */
void eval_plan_distill(const model_cfg *m, const model_cfg *t, const cluster_cfg *c,
                       const plan_cfg *p, eval_result *out, eval_stage *stages,
                       eval_cache *cache);
/* A loaded plan, its teacher included. */
void eval_plan_spec(const plan_spec *s, eval_result *out, eval_stage *stages);

/* The step time, its parts and the FLOP and token counts are finite and not
 * negative: a check before anything is reported (the inputs' limits are meant
 * to guarantee it; this says so rather than printing "nan"). Returns 0, or -1
 * with err naming the first bad part. */
int eval_check_finite(const eval_result *r, ps_err *err);

#endif
