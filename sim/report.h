/* report.h — a plan's evaluation for people (aligned table with bars) and for
 * programs (JSON; fields documented in docs/output.md). */
#ifndef PS_REPORT_H
#define PS_REPORT_H

#include <stdio.h>

#include "eval.h"
#include "infer.h"
#include "plan.h"

void report_plan_table(FILE *f, const plan_spec *s, const eval_result *r, const eval_stage *stages);
void report_plan_json(FILE *f, const plan_spec *s, const eval_result *r, const eval_stage *stages);

void report_infer_table(FILE *f, const model_spec *m, const cluster_spec *c, const infer_cfg *ic,
                        const infer_result *r);
void report_infer_json(FILE *f, const model_spec *m, const cluster_spec *c, const infer_cfg *ic,
                       const infer_result *r);

#endif
