/* plot_peaks.h — `parasim plot peaks PROFILE.json`: every rank's peak memory
 * per category, predicted (the replay of the rank's role) next to measured
 * (docs/plots.md §4). One panel per category and one for the total; in each,
 * one pair of bars per world rank. A category's peak is its own highest
 * value, wherever in the run it happens, so the panels do not add up to the
 * total (the peak of all categories at once).
 */
#ifndef PS_PLOT_PEAKS_H
#define PS_PLOT_PEAKS_H

#include <stdio.h>

#include "report/plot.h"
#include "report/plot_profile.h"

typedef struct {
    const plot_profile *p;
    double unit;           /* bytes per axis unit */
    const char *unit_name; /* "KiB", "MiB", "GiB" */
    int width, height;
} plot_peaks;

void plot_peaks_layout(plot_peaks *k, const plot_profile *p);

/* One line per world rank: "rank p1..p7 m1..m7 ptotal mtotal", the predicted (p) and
 * measured (m) peaks of each category in mem_cat order, then of all together, in k->unit.
 * 0, or -1 on a write error. */
int plot_peaks_write_data(FILE *f, const plot_peaks *k);

int plot_peaks_script(FILE *f, const plot_peaks *k, const char *data_path, const plot_outputs *out);

#endif
