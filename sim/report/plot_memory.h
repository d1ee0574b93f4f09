/* plot_memory.h — `parasim plot memory PROFILE.json`: each rank's memory over
 * the profile's first steps, predicted (the replay of its role) next to
 * measured, stacked by category, phases marked (docs/plots.md §3).
 *
 * x is the op index in the rank's op list (one op per unit; the profile has a
 * measured and a predicted value after every op, so the two panels line up op
 * by op, which a time axis would not: predicted seconds are on the plan's
 * cluster, measured ones on this machine). Up to PLOT_MEMORY_MAX_PANELS
 * ranks, one panel row each; more ranks than that: one row per role, drawing
 * the role's rank with the highest measured peak, the first
 * PLOT_MEMORY_MAX_PANELS roles.
 */
#ifndef PS_PLOT_MEMORY_H
#define PS_PLOT_MEMORY_H

#include <stdio.h>

#include "report/plot.h"
#include "report/plot_profile.h"

#define PLOT_MEMORY_MAX_PANELS 8

/* Phases marked on the chart, from the op kinds: forward, backward, optimizer
 * step; other ops (alloc, free, collectives) take the phase of the op before
 * them in the same step, and the ops of a step before its first forward none. */
enum { PLOT_PHASE_NONE, PLOT_PHASE_FWD, PLOT_PHASE_BWD, PLOT_PHASE_OPTIM };

typedef struct {
    const plot_profile *p;
    int32_t n_panels;
    int32_t rank[PLOT_MEMORY_MAX_PANELS]; /* world rank drawn in each panel row */
    int per_role;                         /* 1: one row per role */
    int32_t left_out;                     /* ranks (or roles) not drawn */
    double unit;                          /* bytes per axis unit: 1024, 2^20 or 2^30 */
    const char *unit_name;                /* "KiB", "MiB", "GiB" */
    int width, height;                    /* pixels */
} plot_memory;

/* Each category's colour, in mem_cat order (the peaks chart uses them too). */
extern const char *const plot_mem_colour[MEM_COUNT];

/* The axis unit for values up to max_bytes: KiB below 2 MiB, MiB below 2 GiB, else GiB.
 * Sets *unit (bytes per unit) and returns its name. */
const char *plot_mem_unit(int64_t max_bytes, double *unit);

/* Choose the panels, the unit and the image size. */
void plot_memory_layout(plot_memory *m, const plot_profile *p);

/* The phase of event e, given the phase of the event before it (NULL: e is the first). */
int plot_memory_phase(int prev, const prof_event *before, const prof_event *e);

/* One block per panel (two blank lines between blocks), one line per event:
 * "op phase step m1..m7 p1..p7 mpeak ppeak": the measured (m) and predicted (p)
 * bytes after the op summed up the categories in mem_cat order (column 4 params,
 * column 10 everything), then the peak inside the op, measured and predicted, all
 * in m->unit. 0, or -1 on a write error. */
int plot_memory_write_data(FILE *f, const plot_memory *m);

int plot_memory_script(FILE *f, const plot_memory *m, const char *data_path,
                       const plot_outputs *out);

#endif
