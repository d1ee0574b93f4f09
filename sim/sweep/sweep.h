/* sweep.h — a space of plans around one model, cluster, GPU count and batch,
 * enumerated point by point (docs/sweep.md).
 *
 * A sweep spec is a plan spec without the fields being varied plus a `space:`
 * mapping that lists values (or `auto`) for each varied field. dp is always
 * derived: GPUs / (tp pp cp). Points that would repeat another are skipped:
 * schedule and virtual stages only vary with pp > 1, virtual only for the
 * interleaved schedule, sp only with tp > 1, zero only with dp cp > 1, ep and etp
 * only for a MoE model. Each point is checked with
 * plan_check_cfg and, when valid, evaluated with eval_plan; the visitor sees
 * both outcomes, so tallies, rankings and CSV rows all come from one walk.
 */
#ifndef PS_SWEEP_H
#define PS_SWEEP_H

#include <stdbool.h>
#include <stdint.h>

#include "time/eval.h"
#include "spec/plan.h"
#include "spec/plan_check.h"

#define SWEEP_MAX_VALUES 512
#define SWEEP_MAX_PLACEMENTS 24

typedef struct {
    int n;
    int64_t v[SWEEP_MAX_VALUES];
} sweep_list;

typedef struct {
    sweep_list tp, pp, cp, zero, micro, recompute, schedule, virt, sp;
    sweep_list offload;               /* 0 none, 1 optimizer, 2 activations, 3 both */
    sweep_list overlap_dp, overlap_tp; /* 0 false, 1 true */
    sweep_list ep, etp; /* expert layout, MoE models only (etp 0: as tp) */
    /* logit distillation, a base plan with distill: only (docs/sweep.md):
     * plan_distill_placement values and top_k values */
    sweep_list distill_placement, distill_top_k;
    int n_placement;
    uint8_t placement[SWEEP_MAX_PLACEMENTS][PLAN_GROUPS];
} sweep_space;

typedef struct {
    char name[128];
    char path[PS_LOC_FILE_MAX];
    plan_spec base; /* model, cluster and every field held fixed */
    sweep_space space;
} sweep_spec;

/* Load a sweep spec from a file, or the built-in default with path NULL. */
int sweep_load(const char *path, sweep_spec *out, ps_err *err);
/* The same from text; origin names it in errors. */
int sweep_load_text(const char *text, const char *origin, sweep_spec *out, ps_err *err);

extern const char sweep_default_yaml[];

/* One point: the plan, and either the reason it is invalid or its evaluation. */
typedef struct {
    const plan_cfg *cfg;
    plan_reason reason;       /* PLAN_OK when evaluated */
    const eval_result *eval;  /* NULL unless reason == PLAN_OK */
} sweep_point;

typedef void (*sweep_visit)(void *ctx, const sweep_point *pt);

/* Points the walk will visit (cheap: no evaluation). */
int64_t sweep_count(const sweep_spec *s);

/* Visit every point in a fixed order (tp, pp, cp, ep, etp, placement, zero, micro,
 * recompute, sp, offload, overlap_dp, overlap_tp, schedule, virtual,
 * distill_placement, distill_top_k: the last varies fastest). A base plan
 * with distill: evaluates every point with its teacher (eval_plan_distill),
 * checked by distill_check_cfg after plan_check_cfg. */
void sweep_run(const sweep_spec *s, sweep_visit visit, void *ctx);

#endif
