/* run_gather.h — every rank's measurements, gathered to rank 0 for the run
 * summary and the profile (docs/runtime.md §Profile).
 *
 * Each rank sends a fixed-size record (its role, peaks, end-of-step-1 bytes,
 * collectives, busy seconds) and the events of its first
 * RUN_PROFILE_EVENT_STEPS steps, at most RUN_PROFILE_MAX_EVENTS of them; the
 * events are kept per world rank, each with the op index of that rank's own
 * role, so ranks of different roles (pipeline stages, tp or cp ranks) are
 * never mixed up.
 */
#ifndef PS_RUN_GATHER_H
#define PS_RUN_GATHER_H

#include "base/err.h"
#include "program/program.h"
#include "rt_exec.h"
#include "rt_group.h"

#define RUN_PROFILE_EVENT_STEPS 3 /* steps whose events the profile keeps */
/* Events kept per rank, and over all ranks (a rank keeps the total / ranks when that is
 * less): about 550 bytes of JSON and 40 values each, so a profile stays under 20 MB and
 * within what `parasim plot` reads (PLOT_PROFILE_MAX_NODES). */
#define RUN_PROFILE_MAX_EVENTS       8192
#define RUN_PROFILE_MAX_EVENTS_TOTAL 32768

typedef struct {
    int32_t rank, role;
    int32_t n_events; /* kept: a prefix of the rank's op list */
    int32_t steps;
    int64_t peak[MEM_COUNT], peak_total;
    int64_t end_of_step0[MEM_COUNT];
    rt_coll_stat coll[GROUP_COUNT][COLL_ALL_TO_ALL + 1];
    double compute_s; /* all steps: fwd, bwd and optim ops */
    double comm_s;    /* all steps: collectives, sends and receives */
} run_rank;

typedef struct {
    int32_t n_ranks;   /* the world; 0 on ranks other than 0 */
    run_rank *ranks;   /* [n_ranks], by world rank */
    rt_event **events; /* [n_ranks]: ranks[i].n_events each, pointers into one block */
    rt_event *block;
} run_gather;

/* The events of r worth keeping: the ops of the first `steps` steps of role
 * `role`, at most `max`. */
int32_t run_gather_kept(const prog_role *role, const rt_result *r, int32_t steps, int32_t max);

/* Collective over the world: every rank calls it after a finished run; rank 0
 * receives every rank's record and events. 0, or -1 with err (the same on
 * every rank: the ranks agree on the outcome). */
int run_gather_all(const program *p, const rt_groups *g, const rt_result *r, run_gather *out,
                   ps_err *err);
void run_gather_free(run_gather *x);

#endif
