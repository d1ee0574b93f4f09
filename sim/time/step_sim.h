/* step_sim.h — the step replayed by the event simulation of pipe_sched.h with
 * each stage's own forward, backward and weight-gradient times (step_time.h):
 * a check on the closed-form pipeline term for uneven stages, and the data of
 * the Gantt chart (docs/time.md §5). */
#ifndef PS_STEP_SIM_H
#define PS_STEP_SIM_H

#include "time/eval.h"
#include "time/pipe_sched.h"

typedef struct {
    double t_f[PLAN_MAX_STAGES], t_b[PLAN_MAX_STAGES], t_w[PLAN_MAX_STAGES];
    double t_first[3 * PLAN_MAX_STAGES], t_last[3 * PLAN_MAX_STAGES]; /* chunks 0, v-1 */
    sched_in in;
} step_sim_input;

/* Fill the schedule input from a plan's per-stage times (stages: pp entries). */
void step_sim_prepare(const plan_cfg *p, const eval_stage *stages, step_sim_input *out);

typedef struct {
    double pipeline;  /* simulated forward/backward of all micro-batches */
    double step;      /* pipeline + the closed form's step-level tail and optimizer */
    double bubble_fraction;
    sched_out sched;
} step_sim;

/* Ops the event simulation of the plan's schedule runs (sched_ops_total);
 * above SCHED_MAX_OPS it is not run. */
int64_t step_sim_ops(const plan_cfg *p);

/* Simulate; ops as for sched_simulate (may be NULL). Returns 0 or -1. */
int step_sim_run(const plan_cfg *p, const eval_stage *stages, const step_time *closed,
                 sched_op *ops, step_sim_input *in, step_sim *out);

#endif
