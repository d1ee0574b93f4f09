/* plot_peaks.c — the per-rank peak memory chart of a run profile (see plot_peaks.h). */
#include "report/plot_peaks.h"

#include <string.h>

#include "report/plot_memory.h"

/* Predicted (p, side 0) or measured (m, side 1) peak of category c of rank i
 * (c == MEM_COUNT: all categories at once). */
static int64_t peak(const plot_profile *p, int32_t i, int c, int side) {
    const prof_rank *r = &p->ranks[i];
    const prof_role *ro = &p->roles[r->role];
    if (c == MEM_COUNT) return side ? r->peak_total : ro->ppeak_total;
    return side ? r->peak[c] : ro->ppeak[c];
}

static int64_t peak_max(const plot_profile *p, int c) {
    int64_t top = 0;
    for (int32_t i = 0; i < p->n_ranks; i++)
        for (int side = 0; side < 2; side++)
            if (peak(p, i, c, side) > top) top = peak(p, i, c, side);
    return top;
}

void plot_peaks_layout(plot_peaks *k, const plot_profile *p) {
    memset(k, 0, sizeof *k);
    k->p = p;
    k->unit_name = plot_mem_unit(peak_max(p, MEM_COUNT), &k->unit);
    k->width = 1800; /* 5 panels a row */
    k->height = 820;
}

int plot_peaks_write_data(FILE *f, const plot_peaks *k) {
    fprintf(f,
            "# rank predicted[params..workspace] measured[params..workspace] "
            "predicted_total measured_total (%s)\n",
            k->unit_name);
    for (int32_t i = 0; i < k->p->n_ranks; i++) {
        fprintf(f, "%d", (int)i);
        for (int side = 0; side < 2; side++)
            for (int c = 0; c < MEM_COUNT; c++)
                fprintf(f, " %.6g", (double)peak(k->p, i, c, side) / k->unit);
        fprintf(f, " %.6g %.6g\n", (double)peak(k->p, i, MEM_COUNT, 0) / k->unit,
                (double)peak(k->p, i, MEM_COUNT, 1) / k->unit);
    }
    return ferror(f) ? -1 : 0;
}

static void body(FILE *f, const void *ctx, const char *data_path) {
    const plot_peaks *k = ctx;
    const int32_t n = k->p->n_ranks;
    char title[200], plan[400];
    snprintf(title, sizeof title,
             "Peak memory per rank, predicted (pale, left) vs measured (solid, right), %d ranks",
             (int)n);
    /* one panel per category and one for the total, in two rows */
    fprintf(f, "set multiplot layout 2,%d title ", (MEM_COUNT + 2) / 2);
    plot_put_string(f, title);
    fputs(" . \"\\n\" . ", f);
    plot_put_string(f, plot_profile_describe(k->p, plan, sizeof plan));
    fputs(" font \",12\"\n", f);
    fputs("set style fill solid 1.0 border lc rgb \"#555555\"\nset boxwidth 0.38\n", f);
    fputs("set grid ytics lc rgb \"#dddddd\"\nset xtics out nomirror\nset format y \"%g\"\n", f);
    fprintf(f, "set xrange [-0.6:%.1f]\n", n - 0.4);
    if (n <= 32) fputs("set xtics 1\n", f);
    fprintf(f, "set xlabel \"rank\"\nset ylabel \"%s\"\n", k->unit_name);
    fputs("set key top right font \",9\" opaque\n", f);
    for (int c = 0; c <= MEM_COUNT; c++) {
        const double top = (double)peak_max(k->p, c) / k->unit;
        const char *colour = c < MEM_COUNT ? plot_mem_colour[c] : "#333333";
        fprintf(f, "set title \"%s\"\n",
                c < MEM_COUNT ? mem_cat_names[c] : "total (all categories at once)");
        fprintf(f, "set yrange [0:%.6g]\n", top > 0 ? top * 1.25 : 1.0);
        fputs("plot ", f);
        plot_put_string(f, data_path);
        fprintf(f,
                " using ($1-0.2):%d with boxes fs solid 0.3 lc rgb \"%s\" title \"predicted\", "
                "\\\n  '' using ($1+0.2):%d with boxes fs solid 1.0 lc rgb \"%s\" title "
                "\"measured\"\n",
                /* the data's columns (plot_peaks_write_data): rank, the predicted
                 * categories, the measured ones, the predicted and measured totals */
                c < MEM_COUNT ? 2 + c : 2 + 2 * MEM_COUNT, colour,
                c < MEM_COUNT ? 2 + MEM_COUNT + c : 3 + 2 * MEM_COUNT, colour);
    }
    fputs("unset multiplot\n", f);
}

int plot_peaks_script(FILE *f, const plot_peaks *k, const char *data_path,
                      const plot_outputs *out) {
    if (k->p->n_ranks < 1) return -1;
    return plot_script_outputs(f, out, k->width, k->height, body, k, data_path);
}
