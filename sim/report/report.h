/* report.h — a plan's evaluation for people (aligned table with bars) and for
 * programs (JSON; fields documented in docs/output.md). */
#ifndef PS_REPORT_H
#define PS_REPORT_H

#include <stdio.h>

#include "time/eval.h"
#include "cost/infer.h"
#include "base/jsonw.h"
#include "spec/plan.h"
#include "time/step_sim.h"
#include "sweep/sweep_rank.h"

/* sim (the event-simulated step) may be NULL. */
void report_plan_table(FILE *f, const plan_spec *s, const eval_result *r, const eval_stage *stages,
                       const step_sim *sim);
void report_plan_json(FILE *f, const plan_spec *s, const eval_result *r, const eval_stage *stages,
                      const step_sim *sim);
/* The step-time section of each (report_time.c). */
void report_time_table(FILE *f, const plan_spec *s, const eval_result *r, const eval_stage *stages,
                       const step_sim *sim);
void report_time_json(jsonw *w, const plan_spec *s, const eval_result *r, const step_sim *sim);
/* One stage's times (per chunk-micro-batch), inside memory.stages[]. */
void report_stage_time_json(jsonw *w, const stage_time *t);

/* A sweep: the ranking with why each plan beats the next, and the tallies
 * (report_sweep.c); seconds is the sweep's wall time. */
void report_sweep_table(FILE *f, const sweep_spec *s, const sweep_rank *r, double seconds);
void report_sweep_csv(FILE *f, const sweep_rank *r);
void report_sweep_json(FILE *f, const sweep_spec *s, const sweep_rank *r, double seconds);

void report_infer_table(FILE *f, const model_spec *m, const cluster_spec *c, const infer_cfg *ic,
                        const infer_result *r);
void report_infer_json(FILE *f, const model_spec *m, const cluster_spec *c, const infer_cfg *ic,
                       const infer_result *r);

#endif
