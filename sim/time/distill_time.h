/* distill_time.h — the seconds of logit distillation (docs/distillation.md
 * "Planner"): the teacher's forward, the logits' transfer, and how they join
 * the student's step. cost/distill.h owns the sizes.
 *
 * shared: each micro-batch's forward on a stage first runs the teacher's
 *   stage on the same tokens (its L_t/pp layers, embedding on the first
 *   stage, final norm and head on the last), with its tensor-parallel
 *   collectives exposed (the runtime blocks on them): kernel_time's forward
 *   of each op (docs/time.md §1-2) at the plan's math dtype; the pipeline
 *   closed form then carries it like any forward time.
 * separate: the teacher's dp_t replicas each run their share of the step's
 *   micro-batches, ceil(global / (micro dp_t)) forwards on tp_t GPUs, and
 *   ship the logits (distill_transfer_bytes) over the link between the two
 *   groups: NVLink when the student's and the teacher's GPUs fit one node,
 *   else the inter-node NIC, min(teacher GPUs, the student's last-stage
 *   GPUs) streams in parallel, one send each (coll_time.c). The teacher's
 *   weights are frozen and the data known ahead, so the teacher runs ahead
 *   of the student and the three pipelines (student step, teacher forward,
 *   transfer) overlap: the step is the longest of the three; the teacher's
 *   and the transfer's time beyond the student's is exposed.
 */
#ifndef PS_DISTILL_TIME_H
#define PS_DISTILL_TIME_H

#include <stdbool.h>
#include <stdint.h>

#include "cost/comm.h"
#include "spec/cluster.h"
#include "spec/model.h"
#include "spec/plan.h"
#include "time/coll_time.h"

/* One micro-batch of the teacher's forward on one rank, by part: the
 * compute of kernel_time and the tensor-parallel calls (comm_tp_unit). */
typedef struct {
    double layer_f, first_f, last_f; /* compute seconds */
    comm_tp_call calls[3][COMM_TP_UNIT_MAX]; /* embedding, layer, head */
    int n_calls[3];
    int64_t tp;
} distill_time_ctx;

/* Teacher t run under plan q (the student's plan when shared, the
 * teacher's own, distill_teacher_plan, when separate). */
void distill_time_init(const model_cfg *t, const cluster_cfg *c, const plan_cfg *q,
                       distill_time_ctx *out);

/* Seconds of one micro-batch's teacher forward on one rank: `layers` layers,
 * the embedding when first, the head when last, the tp collectives over
 * tp_link included. */
double distill_fwd_s(const distill_time_ctx *x, const coll_link *tp_link, int64_t layers,
                     bool first, bool last);

/* separate: the teacher's own plan: tp_t, pp 1, cp 1, dp_t, its GPUs, no
 * sequence parallelism, the student's micro-batch, sequence and precision. */
void distill_teacher_plan(const model_cfg *t, const cluster_cfg *c, const plan_cfg *p,
                          plan_cfg *out);

typedef struct {
    double teacher_s;  /* the teacher's forwards of one step on one replica */
    double transfer_s; /* the logits of one step */
    double fwd_s;      /* one micro-batch's teacher forward */
    int64_t micro_batches; /* per teacher replica */
    bool inter_node;   /* the transfer crosses nodes */
} distill_separate_time;

/* separate: the teacher's step and the transfer. */
void distill_separate_compute(const model_cfg *student, const model_cfg *t,
                              const cluster_cfg *c, const plan_cfg *p,
                              distill_separate_time *out);

#endif
