/* sweep_rank.h — what a sweep keeps: the best plans (bounded), tallies of
 * every outcome, and why each ranked plan beats the next (docs/sweep.md). */
#ifndef PS_SWEEP_RANK_H
#define PS_SWEEP_RANK_H

#include "sweep.h"

typedef struct {
    plan_cfg cfg;
    step_time time;
    int64_t peak_bytes, capacity_bytes;
} sweep_entry;

typedef struct {
    int cap, n;
    sweep_entry *e;  /* a min-heap on tokens/s while adding; best first after sort */
    int64_t points, evaluated, fit, no_fit;
    double best_tokens_per_s; /* of every plan that fits, kept or not */
    int64_t rejected[PLAN_REASON_COUNT];
} sweep_rank;

/* Keep the best `cap` plans. Returns 0, or -1 when out of memory. */
int sweep_rank_init(sweep_rank *r, int cap);
void sweep_rank_free(sweep_rank *r);
/* Count a point; keep it if it fits and is among the best so far. */
void sweep_rank_add(sweep_rank *r, const sweep_point *pt);
/* Order the kept plans best first (ties: less memory first). */
void sweep_rank_sort(sweep_rank *r);

/* One line saying why a beats b: the step-time part where a gains most, and
 * the plan fields that differ. */
const char *sweep_rank_why(const sweep_entry *a, const sweep_entry *b, char *buf, int len);

/* A short label of the parallel strategy ("tp+pp+dp zero-1"), for plots. */
const char *sweep_strategy(const plan_cfg *p, char *buf, int len);

#endif
