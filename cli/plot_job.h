/* plot_job.h — what every `parasim plot` chart shares: the options, the
 * output names, and drawing with gnuplot into temporaries that are renamed
 * over the targets once gnuplot succeeds (docs/plots.md §6). */
#ifndef PS_PLOT_JOB_H
#define PS_PLOT_JOB_H

#include <stdio.h>

#include "base/atomic_file.h"
#include "cli.h"
#include "report/plot.h"

#define PLOT_PATH_MAX_LEN 1024

typedef struct {
    char png[PLOT_PATH_MAX_LEN], svg[PLOT_PATH_MAX_LEN]; /* targets; "" if not drawn */
    atomic_file png_out, svg_out; /* the temporaries next to them, which gnuplot draws into */
    char dir[PLOT_PATH_MAX_LEN], data[PLOT_PATH_MAX_LEN + 16], script[PLOT_PATH_MAX_LEN + 16],
        log[PLOT_PATH_MAX_LEN + 16]; /* the private temporary directory and its files */
} plot_job;

/* Resolve the target names from -o and --format (format NULL: from OUT's ending); base is
 * the default name ("memory.png"). 0 or an exit code (the message printed). */
int plot_job_targets(plot_job *j, const char *cmd, const char *out, const char *format,
                     const char *base);

/* Writes the data or the script of a chart. */
typedef int (*plot_write_fn)(FILE *f, const void *ctx, const plot_job *j, const plot_outputs *out);

/* Write the data and the script with the given writers, run gnuplot, commit the images.
 * Returns an exit code (the message printed). */
int plot_job_draw(const char *cmd, plot_job *j, plot_write_fn data, plot_write_fn script,
                  const void *ctx);

/* The options: a plan chart takes plan overrides, a CSV chart --fit-only, a profile chart
 * neither. */
typedef enum { PLOT_ARGS_PLAN, PLOT_ARGS_CSV, PLOT_ARGS_PROFILE } plot_args_kind;

typedef struct {
    const char *out, *format, *input;
    cli_overrides ov;
    int fit_only;
} plot_args;

/* Parse argv[2..]. Returns 0, -2 for --help (the caller prints the usage), or an exit code. */
int plot_args_parse(int argc, char **argv, const char *cmd, plot_args_kind kind, plot_args *a);

#endif
