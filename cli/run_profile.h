/* run_profile.h — what `parasim run` reports: the measured run next to the
 * replay's prediction of the same program (docs/runtime.md §Profile). */
#ifndef PS_RUN_PROFILE_H
#define PS_RUN_PROFILE_H

#include <stdio.h>

#include "spec/plan.h"
#include "program/program.h"
#include "program/replay.h"
#include "rt_exec.h"
#include "rt_group.h"
#include "run_gather.h"

#define RUN_PROFILE_VERSION 2 /* 2: every rank (1: rank 0 only) */

/* Refuse up front a program whose predicted peak per rank, times the ranks
 * on this node, exceeds the host memory available (MemAvailable). */
int run_profile_check_memory(const program *p, const replay_result *rp, int local_ranks,
                             ps_err *err);

/* Can the profile be written to path? Creates (and removes) the temporary the
 * write will use, so that a missing directory, a read-only one or a target
 * that is not a regular file is refused before the training, not after it. */
int run_profile_check_output(const char *path, ps_err *err);

/* Measured vs predicted: memory per category (end of step 1, peak),
 * collectives (calls, bytes), step time and throughput of rank 0's role;
 * then, from every rank (x, gathered to rank 0), the heaviest rank per memory
 * category and the slowest stage (role). */
void run_profile_print_summary(FILE *f, const program *p, const rt_groups *g,
                               const replay_result *rp, const rt_result *r, const run_gather *x);

/* The profile (JSON, atomically; docs/runtime.md §Profile): header, steps,
 * every role's prediction, and every rank's memory, collectives and the
 * events of its first steps, measured and predicted side by side. */
int run_profile_write(const char *path, const program *p, const replay_result *rp,
                      const rt_result *r, const run_gather *x, int threads, ps_err *err);

#endif
