/* plot_measured.h — `parasim plot schedule PROFILE.json`: each pipeline
 * stage's ops over the profile's first steps as the replay predicts them
 * (left) and as they ran (right), one row per stage (docs/plots.md §5).
 *
 * A stage is drawn by one rank: the lowest world rank whose role has that
 * stage and tensor- and context-parallel rank 0 (or, failing that, the lowest
 * rank of the stage). Compute ops (forward, backward, optimizer step) fill the
 * row; collectives and point-to-point transfers are a thin bar under them (in
 * the replay they run on a communication stream beside compute; in the CPU
 * runtime they block). Allocations, frees and zero_grad are not drawn. Each
 * side has its own time axis: the prediction is on the plan's cluster, the
 * measurement on the machine that ran.
 */
#ifndef PS_PLOT_MEASURED_H
#define PS_PLOT_MEASURED_H

#include <stdio.h>

#include "report/plot.h"
#include "report/plot_profile.h"

#define PLOT_MEASURED_MAX_STAGES 64

typedef struct {
    const plot_profile *p;
    int32_t n_stages;                       /* rows drawn (stages past the 64th: left out) */
    int32_t stages;                         /* stages in the profile */
    int32_t rank[PLOT_MEASURED_MAX_STAGES]; /* the rank drawn for each stage */
    int present[OP_KIND_COUNT];             /* kinds drawn (recv counted as send) */
    double span[2];                         /* predicted, measured: the last op's end, s */
    double unit[2];                         /* 1 (s) or 1e3 (ms: spans under a second) */
    int width, height;
} plot_measured;

void plot_measured_layout(plot_measured *g, const plot_profile *p);

/* Two blocks: predicted, then measured; one line per drawn op:
 * "stage kind start end y half_height colour", times in that side's unit, kind the
 * prog_kind number, colour 0xRRGGBB. 0, or -1 on a write error. */
int plot_measured_write_data(FILE *f, const plot_measured *g);

int plot_measured_script(FILE *f, const plot_measured *g, const char *data_path,
                         const plot_outputs *out);

#endif
