/* step_time.h — time of one training step (docs/time.md §4–§5).
 *
 * Per pipeline stage: the compute of one (chunk-)micro-batch from
 * kernel_time, plus the communication each collective of comm.c adds once
 * what hides it is taken away: tensor-parallel collectives are exposed unless
 * overlap.tp; ring attention hides K/V blocks behind the attention core;
 * ZeRO-3 gathers are prefetched behind the previous layer's compute (the first
 * unit is exposed); bucketed gradient reduction hides behind the last
 * micro-batch's backward (the last bucket is exposed); the updated-parameter
 * gather hides behind the next step's first forward; pipeline sends hide in
 * the steady state and sit on the fill/drain path.
 *
 * Per step: the pipeline closed form over stage times t_s (forward +
 * backward per chunk-micro-batch): m v max(t) + sum over the other stages of
 * t_s (AFAB, 1F1B, interleaved: (p-1)/m and (p-1)/(v m) bubbles for equal
 * stages) or of f + b - w (ZB-H1), then the exposed step-level communication
 * and the optimizer.
 */
#ifndef PS_STEP_TIME_H
#define PS_STEP_TIME_H

#include <stdint.h>

#include "spec/cluster.h"
#include "time/coll_time.h"
#include "cost/comm.h"
#include "cost/moe.h"
#include "time/kernel_time.h"
#include "spec/model.h"
#include "spec/plan.h"

/* What every stage shares: per-layer op times and each group's link. */
typedef struct {
    kt_part layer, first, last;
    coll_link link[GROUP_COUNT];
    int groups;     /* groups in use: GROUP_COUNT for a MoE model, else up to the host link
                       (the expert groups carry nothing; the per-stage loops stop there) */
    double overlap; /* cluster_eff.overlap */
    /* ---- MoE (cost/moe.h): set by time_ctx_moe for a MoE model, else moe = NULL:
     * the model, the layout, one MoE layer's op times. Stages split their
     * layers into dense and MoE ones (moe_stage_layers). */
    const model_cfg *moe;
    moe_layout moe_l;
    kt_part moe_layer;
    kt_part mtp; /* the MTP modules' head, loss, embedding, projection (kt_mtp): last stage */
} time_ctx;

void time_ctx_init(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, time_ctx *out);
/* Only the parts that depend on the group sizes and placement (the links). */
void time_ctx_links(const cluster_cfg *c, const plan_cfg *p, time_ctx *out);
/* The MoE parts (layout, MoE layer time; the ep/edp links): called for every
 * plan of a MoE model, as they depend on ep, etp and the routing settings. */
void time_ctx_moe(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, time_ctx *out);

typedef struct {
    double f, b, w;
} chunk_time;

typedef struct {
    /* one chunk-micro-batch (a micro-batch when v = 1), with exposed comm */
    double f, b, w;     /* forward; backward input-gradient (+ recompute); weight-gradient */
    /* The same for chunk 0, a middle chunk and chunk v-1. Equal to f, b, w unless the
     * plan is interleaved with a layout of its own (pipe_layout_given), where each chunk
     * takes its own layers, the embedding with chunk 0 of stage 0 and the head with chunk
     * v-1 of the last stage (stage_time_chunks). */
    chunk_time chunk[3];
    double compute;     /* f + b + w without communication */
    double exposed[GROUP_COUNT], hidden[GROUP_COUNT];
    /* once per step */
    double step_exposed[GROUP_COUNT], step_hidden[GROUP_COUNT];
    double optimizer;
    double p2p;  /* one stage-boundary send */
    /* its part the stage waits for (overlap.pp false: the receiver copies the message, one
     * receive per chunk forward and backward, folded into f and b); 0 when sends overlap,
     * and then p2p - recv is the part hidden behind compute */
    double recv;
} stage_time;

/* A stage of `layers` layers holding opt_elems optimizer-updated parameters,
 * with its collectives l (comm_stage). */
void stage_time_compute(const time_ctx *x, const cluster_cfg *c, const plan_cfg *p,
                        int64_t stage, int64_t layers, int64_t opt_elems, const comm_list *l,
                        stage_time *out);

/* Interleaved with a given layout: split the stage's per-micro-batch time
 * (stage_time_compute's, communication included) over its chunks in
 * proportion to each chunk's compute; layers[3]: chunk 0, a middle chunk,
 * chunk v-1 (cost/pipe.h pipe_chunk_layers). A send that does not overlap
 * stays one per chunk. */
void stage_time_chunks(const time_ctx *x, const plan_cfg *p, int64_t stage,
                       const int64_t layers[3], stage_time *o);

/* Context parallelism's ring passes hide behind the attention core only
 * (docs/time.md §4): the forward's core once, the backward's twice (dQ and
 * dK/dV), three times under full recompute (the replayed forward's too). */
double step_cp_attn_budget(const plan_cfg *p, double attn_core_fwd, bool bwd);

/* Of `ring` seconds of passes, what overlaps: at most the attention budget
 * and at most the phase's `compute` seconds (only the share `overlap` of it
 * hides; settle() and the emitter's ring ops both apply this). */
double step_cp_overlap(double ring, double attn, double compute);

/* ZeRO-3 under a `zero3:` section (docs/time.md §4.1): of t seconds of one
 * phase's gathers and reduce-scatters over `units` units beside `compute`
 * seconds of compute, the part that cannot hide: the first unit's gather,
 * the last unit's reduce-scatter (scatter; 0 in the forward) and, for each
 * other unit, what its communication exceeds its compute; all of t with
 * prefetch 0. */
double step_zero3_fixed(double t, double gather, double scatter, int64_t units,
                        double compute, int64_t prefetch);

typedef struct {
    double step;       /* seconds */
    double pipeline;   /* forward/backward of all micro-batches incl. fill and drain */
    double compute, bubble, optimizer;
    double exposed[GROUP_COUNT], hidden[GROUP_COUNT];
    double tokens_per_s, mfu, hfu;
    int64_t slowest;   /* stage that sets the pace */
} step_time;

/* Combine per-stage times (stages[s] for s < pp) into the step. */
void step_time_combine(const cluster_cfg *c, const plan_cfg *p, const stage_time *const *stages,
                       double tokens, double flops_model, double flops_hardware, step_time *out);

#endif
