/* plot_profile.h — a run profile (`parasim run -o PROFILE.json`, docs/runtime.md
 * §Profile) read back for the charts of docs/plots.md §3–5 and for `parasim validate`
 * (validate_profile.h).
 *
 * Kept: every role's coordinates and predicted peaks; every rank's role, measured
 * peaks, collectives (calls and bytes, measured and predicted) and events (measured
 * and predicted times and bytes per category); the steps' measured and predicted
 * seconds and the tokens a step. The steps, the tokens and the collectives are
 * optional (the charts do without them). Every field is checked as it is
 * read; an error names file:line:col and the field ("rank_profiles[1].events[4].end:
 * expected a number >= start ..."), as the spec readers do.
 */
#ifndef PS_PLOT_PROFILE_H
#define PS_PLOT_PROFILE_H

#include <stdint.h>

#include "base/err.h"
#include "program/program.h"

#define PLOT_PROFILE_VERSION 2
/* Bounds on what is read: the file (bytes, values) and the events of one rank. */
#define PLOT_PROFILE_MAX_BYTES (256LL << 20)
#define PLOT_PROFILE_MAX_NODES 4000000
#define PLOT_PROFILE_MAX_RANKS (1 << 20)

typedef struct {
    int32_t op;   /* index in the rank's role's op list */
    int32_t step; /* 1-based */
    int32_t mb;   /* -1 if none */
    prog_kind kind;
    double start, end;                       /* measured, seconds since the rank's run began */
    double pstart, pend;                     /* predicted by the replay of the rank's role */
    int64_t mem[MEM_COUNT], pmem[MEM_COUNT]; /* bytes per category after the op */
    int64_t peak_total, ppeak_total;         /* all categories together, inside the op */
} prof_event;

typedef struct {
    int32_t stage, tp_rank, cp_rank;
    int64_t ppeak[MEM_COUNT], ppeak_total; /* predicted peaks */
} prof_role;

typedef struct {
    char group[8], coll[24];
    int64_t calls, bytes, pcalls, pbytes; /* measured; predicted by the program */
} prof_coll;

typedef struct {
    int32_t role;
    int64_t peak[MEM_COUNT], peak_total; /* measured peaks */
    int32_t n_events, n_colls;
    prof_event *events;
    prof_coll *colls;
} prof_rank;

typedef struct {
    double seconds, pseconds; /* measured; predicted by the replay */
} prof_step;

typedef struct {
    char plan[128], model[64], cluster[64], backend[16], params_dtype[16];
    int32_t dp, tp, pp, cp, zero;
    int32_t n_roles, n_ranks, event_steps, n_steps;
    double tokens_per_step; /* 0 when absent */
    prof_role *roles; /* by role index */
    prof_rank *ranks; /* by world rank */
    prof_step *steps; /* in order, the first step first */
} plot_profile;

/* Read and check path. 0, or -1 with err naming file:line:col and the field. */
int plot_profile_load(const char *path, plot_profile *out, ps_err *err);
void plot_profile_free(plot_profile *p);

/* "PLAN (MODEL): dp 2 x tp 1 x pp 1 x cp 1, ZeRO-3, bf16 weights" into buf, for titles. */
const char *plot_profile_describe(const plot_profile *p, char *buf, int buf_len);

#endif
