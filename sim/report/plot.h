/* plot.h — the data and gnuplot scripts behind `parasim plot` (docs/plots.md).
 *
 * Two charts: the Gantt chart of a simulated pipeline schedule (one row per
 * stage, one box per forward / backward / weight-gradient op, as in GPipe and
 * Narayanan et al. 2021 Fig. 3/4), and the memory-vs-throughput scatter of a
 * sweep's CSV with its Pareto front and the GPU capacity.
 *
 * This module writes text only — data tables and gnuplot scripts to FILE
 * streams — and reads the sweep CSV; running gnuplot and renaming its output
 * into place is the command's job (cli/cmd_plot.c), so sim/ never spawns a
 * process. The CSV is streamed twice (ranges and Pareto front, then the
 * thinned scatter) so memory stays bounded however many rows it has.
 */
#ifndef PS_PLOT_H
#define PS_PLOT_H

#include <stdint.h>
#include <stdio.h>

#include "base/err.h"
#include "time/pipe_sched.h"

/* --- the sweep CSV ------------------------------------------------------------------ */

/* A reader of the CSV `parasim sweep --all` writes. Columns are found by their header name,
 * so reordered or extra columns are fine; a field may be double-quoted ("" for a quote). */
typedef struct {
    FILE *f;
    char path[PS_LOC_FILE_MAX];
    int64_t line; /* 1-based number of the line last read */
    int col_peak, col_tps, col_status, col_strategy, col_headroom; /* headroom: -1 if absent */
    int n_cols;
    char *buf; /* the current line, split in place */
    size_t cap;
    char **fields;
    int fields_cap;
    int64_t rows, skipped; /* data rows read; rows without numbers (invalid plans, empty fields) */
} plot_csv;

typedef struct {
    double peak_gib, tokens_per_s;
    double capacity_gib;  /* peak_gib + headroom_gib, NAN when unknown */
    int fits;             /* status "ok" (else "no-fit") */
    const char *strategy; /* valid until the next plot_csv_next */
} plot_csv_row;

/* Open path and read its header; errors name the file, line 1 and the missing column. */
int plot_csv_open(plot_csv *c, const char *path, ps_err *err);
/* Next evaluated row (status ok or no-fit with both numbers present): 1, 0 at the end, -1 on
 * an error naming file:line and the column. Rows of invalid plans (any other status) and rows
 * whose peak or tokens/s field is empty (a non-finite value) are counted in c->skipped. */
int plot_csv_next(plot_csv *c, plot_csv_row *row, ps_err *err);
void plot_csv_close(plot_csv *c);

/* --- Pareto front and thinning ---------------------------------------------------------- */

/* A point of the memory-throughput plane: x = peak GiB, y = tokens/s, group = strategy
 * group (plot_strategy_group). */
typedef struct {
    double x, y;
    int group;
} plot_pt;

/* Indices of the Pareto-optimal points (least memory, most throughput): point i is kept
 * unless some j has x_j <= x_i and y_j >= y_i and is strictly better in one of them, or is
 * equal in both with j < i (exact duplicates keep the first). idx receives them in increasing
 * x (and so increasing y); returns their count, or -1 for no memory. */
int64_t plot_pareto(const plot_pt *pts, int64_t n, int64_t *idx);

/* The same front built one point at a time (a stream of any length; memory grows with the
 * front only). pt[0..n) is sorted by increasing x and y. */
typedef struct {
    plot_pt *pt;
    int64_t n, cap;
} plot_front;

/* Add p: 1 if it joined the front (dropping the points it dominates), 0 if dominated or a
 * duplicate, -1 for no memory. */
int plot_front_add(plot_front *f, plot_pt p);
/* 1 if p (x, y and group) is a point of the front. */
int plot_front_has(const plot_front *f, plot_pt p);
void plot_front_free(plot_front *f);

/* Scatter thinning: the plane [x0,x1] x [y0,y1] cut into nx x ny cells, at most one point per
 * (group, cell) — the first one seen. Points outside the box go to the nearest cell. */
typedef struct {
    double x0, x1, y0, y1;
    int nx, ny, groups;
    uint8_t *used; /* groups * nx * ny */
} plot_thin;

int plot_thin_init(plot_thin *t, double x0, double x1, double y0, double y1, int nx, int ny,
                   int groups);
/* 1 if p is the first point of its (group, cell) and should be drawn, else 0. */
int plot_thin_add(plot_thin *t, plot_pt p);
void plot_thin_free(plot_thin *t);

/* --- the sweep chart ---------------------------------------------------------------------- */

/* The fitting points are grouped by strategy family, drawn in its own colour, and by ZeRO
 * stage, drawn as a point shape. The family of a label `parasim sweep` writes ("tp+pp+dp
 * zero-1", "single") is the model-parallel degrees it names; dp may be there or not. */
enum {
    PLOT_FAMILY_DP,    /* "dp", "single" */
    PLOT_FAMILY_TP,    /* tp, with or without dp */
    PLOT_FAMILY_PP,    /* pp, with or without dp */
    PLOT_FAMILY_TP_PP, /* tp and pp */
    PLOT_FAMILY_CP,    /* cp without tp or pp */
    PLOT_FAMILY_CP_MP, /* cp with tp, pp or both */
    PLOT_FAMILY_OTHER, /* a label not of that form */
    PLOT_FAMILIES
};
#define PLOT_ZERO_STAGES 4 /* 0 (also: nothing to shard over) to 3 */
#define PLOT_GROUPS      (PLOT_FAMILIES * PLOT_ZERO_STAGES)
extern const char *const plot_family_names[PLOT_FAMILIES]; /* legend names */
/* A strategy label's group: family * PLOT_ZERO_STAGES + ZeRO stage (other labels: the
 * PLOT_FAMILY_OTHER group of stage 0). */
int plot_strategy_group(const char *label);

#define PLOT_GRID_X 120 /* thinning cells across the memory axis */
#define PLOT_GRID_Y 90  /* and along the throughput axis */

typedef struct {
    int show_nofit; /* draw the no-fit points in grey */
    int nx, ny;     /* thinning grid; 0 = PLOT_GRID_X, PLOT_GRID_Y */
} plot_sweep_opts;

typedef struct {
    int64_t group_fit[PLOT_GROUPS]; /* fitting rows per group (the legend shows those used) */
    plot_front front;               /* of the fitting points */
    plot_pt *fit, *nofit;           /* thinned scatter (fit includes every front point) */
    int64_t n_fit, n_nofit, cap_fit, cap_nofit;
    int64_t rows_fit, rows_nofit, rows_skipped; /* what the CSV held */
    double capacity_gib;                        /* NAN if no row had a headroom */
    double x_min, x_max, y_min, y_max;          /* over every evaluated row drawn */
} plot_sweep;

/* Read path twice: ranges, strategies and the Pareto front, then the thinned scatter.
 * Returns 0 or -1 (err: file:line and column, or no evaluated rows). */
int plot_sweep_load(const char *path, const plot_sweep_opts *o, plot_sweep *out, ps_err *err);
void plot_sweep_free(plot_sweep *s);

/* The data table: the Pareto front, the no-fit points, then the fitting points of each group
 * that has some, in group order (blocks of "x y" lines separated by two blank lines, each
 * after a '#' comment naming it; empty series are left out). */
int plot_sweep_write_data(FILE *f, const plot_sweep *s);

/* --- the schedule chart ------------------------------------------------------------------- */

typedef struct {
    const sched_in *in;
    const sched_op *ops; /* in->p * sched_ops_per_stage(in) */
    double pipeline_s;   /* simulated forward/backward span */
    double step_s;       /* the whole step: pipeline + tail (exposed DP comm, optimizer) */
    double bubble_fraction;
    const char *plan_name; /* second title line; may be NULL */
    int fits;              /* the plan fits in memory (else the title says so) */
    /* Filled by plot_gantt_layout: */
    double unit;       /* 1 (seconds) or 1e3 (ms: steps under a second) */
    int width, height; /* pixels */
    int labels;        /* micro-batch numbers drawn */
} plot_gantt;

/* Choose the time unit, the image size and whether labels fit. */
void plot_gantt_layout(plot_gantt *g);

/* One line per op: "stage kind chunk mb start end label" in g->unit, kind 0 F, 1 B, 2 W, label
 * 1 when the box is wide enough for its micro-batch number. Returns 0, or -1 on bad input or
 * a write error. */
int plot_gantt_write_data(FILE *f, const plot_gantt *g);

/* --- scripts ------------------------------------------------------------------------------ */

/* Where gnuplot writes: either path may be NULL (that format is not drawn). */
typedef struct {
    const char *png, *svg;
} plot_outputs;

/* The gnuplot script drawing data_path (from the writers above) to the outputs: pngcairo if
 * this gnuplot has it, else png; svg. Returns 0, or -1 on a write error. */
int plot_gantt_script(FILE *f, const plot_gantt *g, const char *data_path, const plot_outputs *out);
int plot_sweep_script(FILE *f, const plot_sweep *s, const char *data_path, const char *csv_name,
                      const plot_outputs *out);

/* The body of a script for one output: everything after `set terminal` and `set output`. */
typedef void (*plot_body)(FILE *f, const void *ctx, const char *data_path);

/* Write the script: for each output, its terminal (w x h pixels), then body(ctx). Returns 0,
 * or -1 with no output or on a write error. */
int plot_script_outputs(FILE *f, const plot_outputs *out, int w, int h, plot_body body,
                        const void *ctx, const char *data_path);

/* Write s as a gnuplot double-quoted string (backslashes and quotes escaped, control
 * characters as spaces). */
void plot_put_string(FILE *f, const char *s);

#endif
