/* sweep_rank.h — what a sweep keeps: the best distinct predictions (bounded),
 * the plans equivalent to each, tallies of every outcome, and why each ranked
 * plan beats the next (docs/sweep.md). */
#ifndef PS_SWEEP_RANK_H
#define PS_SWEEP_RANK_H

#include "sweep/sweep.h"

/* The plan fields a sweep varies, in the order explanations name them; their names are
 * the keys of the sweep's JSON and CSV ("dp", ..., "virtual", "offload", "overlap",
 * "placement"). */
enum {
    SWEEP_F_DP,
    SWEEP_F_TP,
    SWEEP_F_PP,
    SWEEP_F_CP,
    SWEEP_F_ZERO,
    SWEEP_F_SP,
    SWEEP_F_MICRO,
    SWEEP_F_RECOMPUTE,
    SWEEP_F_SCHEDULE,
    SWEEP_F_VIRTUAL,
    SWEEP_F_OFFLOAD,
    SWEEP_F_OVERLAP,
    SWEEP_F_PLACEMENT,
    SWEEP_F_EP,  /* expert layout (MoE models; 1 and tp for a dense one) */
    SWEEP_F_ETP,
    SWEEP_F_DISTILL_PLACEMENT, /* logit distillation (shared for a plan without a teacher) */
    SWEEP_F_DISTILL_TOP_K,
    SWEEP_FIELD_COUNT
};
extern const char *const sweep_field_names[SWEEP_FIELD_COUNT];

/* A field's value as a number (enums, switches and the placement order packed), and as
 * the text tables print ("8", "on", "selective", "dp+pp", "tp-cp-dp-pp"). */
int64_t sweep_field_key(const plan_cfg *p, int field);
const char *sweep_field_text(int field, int64_t key, char *buf, int len);

/* Two plans make the same prediction when every number the ranking reports agrees:
 * tokens/s, step time, MFU and HFU to a relative SWEEP_SAME_REL, peak memory and GPU
 * capacity (so headroom) to the byte. */
#define SWEEP_SAME_REL 1e-9

/* Values the equivalents of a ranked plan take, per field, where they differ from it. */
#define SWEEP_EQUIV_VALUES 4 /* kept per field; more are counted as "more" */
typedef struct {
    int64_t n;                                          /* other plans with the same prediction */
    uint8_t n_val[SWEEP_FIELD_COUNT];                   /* values kept */
    bool more[SWEEP_FIELD_COUNT];                       /* some values were not kept */
    int64_t val[SWEEP_FIELD_COUNT][SWEEP_EQUIV_VALUES]; /* sweep_field_key values */
} sweep_equiv;

typedef struct {
    plan_cfg cfg; /* the first plan of its prediction the walk visited */
    step_time time;
    int64_t peak_bytes, capacity_bytes;
    sweep_equiv equiv;
} sweep_entry;

typedef struct {
    int cap, n;
    sweep_entry *e; /* slots; best first after sweep_rank_sort */
    /* while adding: a min-heap of slots on tokens/s (the worst kept at the root), and a
     * hash of slots on peak bytes to find a point's equal prediction */
    int *heap, *bucket, *next;
    int n_bucket; /* a power of two */
    int64_t points, evaluated, fit, no_fit;
    double best_tokens_per_s; /* of every plan that fits, kept or not */
    int64_t rejected[PLAN_REASON_COUNT];
} sweep_rank;

/* Keep the best `cap` distinct predictions. Returns 0, or -1 when out of memory. */
int sweep_rank_init(sweep_rank *r, int cap);
void sweep_rank_free(sweep_rank *r);
/* Count a point; if it fits, add it to the kept plan with the same prediction as an
 * equivalent, or keep it if it is among the best so far. */
void sweep_rank_add(sweep_rank *r, const sweep_point *pt);
/* Order the kept plans best first (ties: less memory first). No sweep_rank_add after. */
void sweep_rank_sort(sweep_rank *r);

/* 1 if a and b make the same prediction (SWEEP_SAME_REL above). */
int sweep_same_prediction(const sweep_entry *a, const sweep_entry *b);

/* One line saying why a beats b: the step-time part where a gains most, and
 * the plan fields that differ. */
const char *sweep_rank_why(const sweep_entry *a, const sweep_entry *b, char *buf, int len);

/* What e's equivalents differ in: "recompute selective; placement tp-cp-pp-dp, …"
 * ("…" where a field had more than SWEEP_EQUIV_VALUES values); "" without equivalents. */
const char *sweep_rank_equiv(const sweep_entry *e, char *buf, int len);

/* A short label of the parallel strategy ("tp+pp+dp zero-1"), for plots. */
const char *sweep_strategy(const plan_cfg *p, char *buf, int len);

#endif
