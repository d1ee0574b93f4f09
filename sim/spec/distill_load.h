/* distill_load.h — the plan's `distill:` section: a teacher model for logit
 * knowledge distillation, its weight scheme and where it runs (docs/specs.md
 * "distill", docs/distillation.md "Planner").
 *
 * distill_load reads the section once the student's model and cluster are
 * loaded (the teacher is resolved as `model:` is, and must share the
 * student's vocabulary: KD compares two distributions over one vocabulary).
 * What depends on the plan's degrees (tp and pp split the teacher, the GPUs
 * fit the cluster) is distill_spec_check's, which plan_check calls, so that a
 * sweep's points are checked the same way (cost/distill.h distill_check_cfg).
 */
#ifndef PS_DISTILL_LOAD_H
#define PS_DISTILL_LOAD_H

#include "base/err.h"
#include "spec/plan.h"
#include "spec/ynode.h"

/* Read root's `distill:` into out->cfg.distill, out->teacher,
 * out->distill_checkpoint and out->distill_locs (absent: distill.set false).
 * Returns 0, or -1 with a located error naming the field. */
int distill_load(const ynode *root, plan_spec *out, ps_err *err);

/* The degree-dependent rules for a loaded plan with distill.set, explained
 * with locations (distill.teacher, distill.gpus, parallel.tp / pp). */
int distill_spec_check(const plan_spec *s, ps_err *err);

#endif
