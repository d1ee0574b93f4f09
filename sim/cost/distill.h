/* distill.h — what logit knowledge distillation adds to a training step: the
 * frozen teacher's weights and its inference-only forward, the KD loss's
 * saved tensors, the teacher's FLOPs and the logits shipped to the student
 * (docs/distillation.md "Planner"; Hinton et al. 2015 for the loss).
 *
 * The one owner of the distillation sizes; time/distill_time.h owns their
 * seconds. The teacher's weight bytes and its forward's live tensors are the
 * inference model's (cost/infer.h infer_memory_predict, docs/memory.md §8),
 * its forward FLOPs a third of flops.c's model FLOPs (2 per weight per token
 * plus the attention forward).
 *
 * Placement (plan_distill.placement):
 *   shared   — the teacher sits on the student's GPUs, split by the plan's tp
 *              (infer_tp_check) and pp (pp divides its layers), replicated
 *              over dp and cp; each micro-batch's forward runs the teacher's
 *              stage on the same N = b s / cp tokens first.
 *   separate — the teacher runs on `gpus` other GPUs, tp_t = the largest
 *              valid tensor-parallel degree up to min(gpus, GPUs per node)
 *              that divides gpus, dp_t = gpus / tp_t replicas, whole
 *              micro-batches (N = b s tokens), no pipeline; the student's
 *              GPUs and the teacher's together fit the cluster.
 */
#ifndef PS_DISTILL_H
#define PS_DISTILL_H

#include <stdint.h>

#include "cost/comm.h"
#include "spec/cluster.h"
#include "spec/model.h"
#include "spec/plan.h"
#include "spec/plan_check.h"

/* The teacher's layout. */
typedef struct {
    int64_t tp, pp, dp; /* shared: the plan's tp, pp and dp*cp; separate: tp_t, 1, dp_t */
    int64_t gpus;       /* GPUs holding a teacher shard: shared the plan's, separate d->gpus */
    int64_t tokens;     /* N: tokens of one micro-batch on one teacher rank */
} distill_layout;

/* separate: the largest tp <= min(gpus, gpus_per_node) dividing gpus that
 * infer_tp_check and infer_group_check accept for teacher t; 0 if none. */
int64_t distill_separate_tp(const model_cfg *t, const cluster_cfg *c, const plan_distill *d);

/* The layout of p's teacher (p->distill.set; the plan passed distill_check_cfg). */
void distill_layout_compute(const model_cfg *t, const cluster_cfg *c, const plan_cfg *p,
                            distill_layout *out);

/* The first degree-dependent reason p cannot carry teacher t (PLAN_OK when it
 * can, or when p has no distill:): shared, PLAN_DISTILL_TP (infer_tp_check or
 * the weight scheme's group on a tp shard) or PLAN_DISTILL_PP (pp does not
 * divide t's layers); separate, PLAN_DISTILL_TP (no tp_t) or
 * PLAN_DISTILL_GPUS (p->gpus + d->gpus above the cluster's GPUs). */
plan_reason distill_check_cfg(const model_cfg *t, const cluster_cfg *c, const plan_cfg *p);

/* Bytes on one GPU. */
typedef struct {
    int64_t weights;  /* the teacher's weights (values + scales) this GPU holds */
    int64_t forward;  /* transient: its forward's live tensors for N tokens (infer's
                         activations, docs/memory.md §8), logits included */
    int64_t logits;   /* of which the fp32 logits [N][ceil(V/tp)] (the teacher's last stage) */
    int64_t kd_saved; /* the KD loss's saved tensors of ONE micro-batch (the student's
                         last stage): distill_kd_bytes */
} distill_mem;

/* The KD loss's saved tensors per micro-batch on a student rank of the last
 * stage (the contract of kernels/kern_kd.h, HELPERS14): the student's
 * tempered distribution qs [N][ceil(V/tp)] fp32 and the teacher's, qt
 * [N][ceil(V/tp)] fp32, or with top-k its indices and values [N][k] int32 +
 * fp32 (8 B each); N = b s / cp. */
int64_t distill_kd_bytes(const model_cfg *student, const plan_cfg *p);
/* What top-k saves per micro-batch over the full distribution: N (ceil(V/tp)
 * 4 - 8 k) bytes (0 without top_k). */
int64_t distill_topk_saving(const model_cfg *student, const plan_cfg *p);

/* Memory on a student GPU of pipeline stage `stage` (shared: the teacher's
 * stage too; separate: only kd_saved). */
int distill_stage_memory(const model_cfg *student, const model_cfg *t, const plan_cfg *p,
                         int64_t stage, distill_mem *out, ps_err *err);
/* separate: memory on one teacher GPU (kd_saved 0). */
int distill_teacher_memory(const model_cfg *t, const cluster_cfg *c, const plan_cfg *p,
                           distill_mem *out, ps_err *err);

/* The teacher's forward FLOPs per token at the plan's sequence length
 * (flops.c's forward): model, 2 N_teacher + the attention forward (the full
 * square); *hardware, as executed (flash attention: the causal half), what
 * HFU counts. */
double distill_teacher_flops_per_token(const model_cfg *t, const plan_cfg *p, double *hardware);

/* separate: bytes of teacher output per step over the link: every token's
 * distribution, tokens V 4 B (fp32 logits), or with top-k its k (index,
 * value) pairs to each of the student's tp ranks, tokens k 8 tp B. 0 under
 * shared (nothing leaves the GPU). */
double distill_transfer_bytes(const model_cfg *student, const plan_cfg *p);

/* The KD loss's tensor-parallel collectives in one micro-batch's head forward on a
 * student rank (shared placement, tp > 1; runtime/rt_tp.c rt_tp_kd_teacher and
 * rt_tp_kd_fwd, docs/distillation.md "Running it"): the teacher's distribution, top_k 0
 * an all-reduce of the rows' maximum and one of their sums (fp32, N values each), top_k
 * k an all-gather of the teacher's logit rows (fp32, size S = N ceil(V/tp) tp 4 B);
 * the student's tempered softmax and the KL, unless alpha = 1, three more all-reduces
 * of N fp32 values (maximum, sum, KL). N = b s / cp. Returns the entries of out used
 * (0 under tp 1 or without distill:). The teacher's own forward (the inference
 * engine's all-reduces) is not among them. */
int distill_tp_calls(const model_cfg *student, const plan_cfg *p, comm_tp_call out[2]);

#endif
