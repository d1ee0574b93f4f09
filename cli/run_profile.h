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

/* Refuse up front a program whose predicted peak per rank, times the ranks
 * on this node, exceeds the host memory available (MemAvailable). */
int run_profile_check_memory(const program *p, const replay_result *rp, int local_ranks,
                             ps_err *err);

/* Can the profile be written to path? Creates (and removes) the temporary the
 * write will use, so that a missing directory, a read-only one or a target
 * that is not a regular file is refused before the training, not after it. */
int run_profile_check_output(const char *path, ps_err *err);

/* Measured vs predicted: memory per category (end of step 1, peak),
 * collectives (calls, bytes), step time and throughput. Rank 0's role. */
void run_profile_print_summary(FILE *f, const program *p, const rt_groups *g,
                               const replay_result *rp, const rt_result *r);

/* The profile (JSON, atomically): header, steps, memory, collectives, and
 * one event per op with measured and predicted values side by side. */
int run_profile_write(const char *path, const program *p, const rt_groups *g,
                      const replay_result *rp, const rt_result *r, int threads, ps_err *err);

#endif
