/* plan_check.h — is a plan possible at all? (docs/specs.md §Checks)
 *
 * plan_check_cfg is the fast test a sweep runs on every candidate: it returns
 * the first reason the plan cannot run, as a code the sweep can count.
 * plan_check explains that same reason for a loaded plan, naming the plan
 * field and the model or cluster field it conflicts with. Memory fit is not
 * checked here: a plan that does not fit is valid and reported with fits=false.
 */
#ifndef PS_PLAN_CHECK_H
#define PS_PLAN_CHECK_H

#include <stdbool.h>

#include "spec/plan.h"

typedef enum {
    PLAN_OK = 0,
    PLAN_GPUS_EXCEED_CLUSTER,
    PLAN_DEGREES_PRODUCT,
    PLAN_TP_HEADS,
    PLAN_TP_KV_HEADS,
    PLAN_TP_FFN,
    PLAN_SP_NEEDS_TP,
    PLAN_SP_SEQ,
    PLAN_CP_ATTENTION,
    PLAN_CP_SEQ,
    PLAN_SEQ_POSITIONS,
    PLAN_BATCH_DIVISION,
    PLAN_PP_LAYERS,
    PLAN_STAGE_SPLIT,
    PLAN_VIRTUAL_SCHEDULE,
    PLAN_INTERLEAVED_PP,
    PLAN_INTERLEAVED_LAYERS,
    PLAN_INTERLEAVED_MICRO,
    PLAN_PP_MAX,
    PLAN_TOO_LARGE,
    /* Megatron-LM's uneven split options (cost/pipe.h) */
    PLAN_SPLIT_OPTIONS, /* conflicting split fields, or first/last stage layers with pp < 2 */
    PLAN_SPLIT_MIDDLE,  /* layers left by first/last do not split over the middle stages */
    PLAN_SPLIT_ACCOUNT, /* pp does not divide layers + embedding + loss */
    /* mixture of experts (helper moeplan; docs/specs.md "Expert parallelism") */
    PLAN_EP_DENSE,       /* ep > 1 or an etp of its own on a dense model */
    PLAN_EP_EXPERTS,     /* ep does not divide the routed experts */
    PLAN_EP_FOLD,        /* etp*ep does not divide tp*cp*dp (MoE parallel folding) */
    PLAN_ETP_FFN,        /* etp does not divide expert_ffn_hidden */
    PLAN_MOE_SP,         /* a MoE model with tp > 1 and no sequence parallelism */
    PLAN_MOE_NODE_LIMIT, /* node_limit above the nodes an ep group spans */
    PLAN_MOE_PLACEMENT,  /* ep > 1 with pp not the outermost group of the placement */
    /* DualPipe (helper dualpipe; docs/schedule.md "DualPipe") */
    PLAN_DUALPIPE_PP,     /* pp odd or < 2 (two halves mirror each other) */
    PLAN_DUALPIPE_MICRO,  /* micro-batches odd or < 2 pp (dualpipe.py's assert) */
    /* logit distillation (helper planner; cost/distill.h distill_check_cfg) */
    PLAN_DISTILL_TP,   /* shared: tp does not split the teacher; separate: no tp splits it */
    PLAN_DISTILL_PP,   /* shared: pp does not divide the teacher's layers */
    PLAN_DISTILL_GPUS, /* separate: the student's and the teacher's GPUs exceed the cluster */
    PLAN_REASON_COUNT
} plan_reason;

/* Short stable identifier of a reason ("tp-heads"), for sweep tallies. */
const char *plan_reason_id(plan_reason r);
/* What the reason means, in a few words ("tp does not divide the attention heads"). */
const char *plan_reason_text(plan_reason r);

plan_reason plan_check_cfg(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p);
/* The same with the model's params_total(m) given, for callers that check
 * many plans of one model (a sweep). */
plan_reason plan_check_cfg_n(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                             int64_t params);

/* Check a loaded plan; on failure err explains with locations. */
int plan_check(const plan_spec *s, ps_err *err);

/* dp*tp*pp*cp into *out; false when it does not fit in 64 bits. */
bool plan_degrees_product(const plan_cfg *p, int64_t *out);

/* Upper bounds, in bytes, on what the formulas compute for a plan: one GPU's
 * memory at its peak and one GPU's communication per step. Each is a sum of
 * products of the inputs that dominates the matching formula (act.c, eval.c,
 * comm.c), computed with checked arithmetic and saturating at INT64_MAX. Both
 * at most PLAN_SIZE_MAX (2^60) means every size the formulas form fits in 64
 * bits with room for their sums; more is the too-large reason. */
typedef struct {
    int64_t memory, comm;
} plan_size;
void plan_size_bound(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                     plan_size *out);
/* The same with params_total(m) given. */
void plan_size_bound_n(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                       int64_t params, plan_size *out);

/* Micro-batches per step per pipeline: global / (micro * dp). */
static inline int64_t plan_micro_batches(const plan_cfg *p) {
    return p->global_batch / (p->micro_batch * p->dp);
}

#endif
