/* validate_profile.h — a run's profile (docs/runtime.md §6) held to its own prediction:
 * per role, each memory category's peak and the total against the replay's (the most any rank
 * of the role measured: one op list stands for all its data-parallel ranks, and the replay
 * gives its heaviest); per rank and
 * collective, bytes against the program's; the step time (median of the steps after the
 * first) against the replay's, and the time of each op kind (fwd, bwd, optimizer,
 * communication) over the steps the profile's events cover. `parasim validate` prints it
 * and checks it against tolerances (docs/accuracy-local.md, `bench/validate/`). */
#ifndef PS_VALIDATE_PROFILE_H
#define PS_VALIDATE_PROFILE_H

#include <stdint.h>
#include <stdio.h>

#include "base/err.h"

/* Relative errors allowed: |measured - predicted| / predicted. */
typedef struct {
    double memory, time, bytes;
} validate_tol;

/* "memory=2%,time=15%,bytes=0" (any of them, in any order; a fraction or a percentage)
 * over the defaults in t. 0, or -1 with err naming what is wrong. */
int validate_tol_parse(const char *text, validate_tol *t, ps_err *err);

enum { VALIDATE_FWD, VALIDATE_BWD, VALIDATE_OPTIM, VALIDATE_COMM, VALIDATE_KINDS };
extern const char *const validate_kind_names[VALIDATE_KINDS];

typedef struct {
    char plan[128];
    int ranks;
    /* memory: the worst role's total peak (its heaviest rank's), and the worst single
     * category over all roles */
    double total_err;
    int total_rank;
    int64_t total_meas, total_pred;
    double cat_err;
    int cat_rank;
    char cat[32];
    int64_t cat_meas, cat_pred;
    /* bytes: the worst collective of any rank (calls and bytes); exact when 0 */
    double bytes_err;
    int colls; /* (rank, collective) pairs compared */
    char bytes_what[64];
    /* time: medians over the steps after the first */
    int steps;
    double step_meas, step_pred, step_err, tokens_per_s;
    double kind_meas[VALIDATE_KINDS], kind_pred[VALIDATE_KINDS]; /* seconds, summed */
} validate_result;

/* Read the profile at path. 0, or -1 with err. */
int validate_profile(const char *path, validate_result *out, ps_err *err);

/* Whether r is within t: bit 1 memory, 2 bytes, 4 time over its tolerance; 0 all within. */
int validate_over(const validate_result *r, const validate_tol *t);

/* The result for people (aligned lines), and as one CSV row under validate_csv_header. */
void validate_print(FILE *f, const validate_result *r, const validate_tol *t);
void validate_csv_header(FILE *f);
void validate_csv_row(FILE *f, const validate_result *r, const validate_tol *t);

#endif
