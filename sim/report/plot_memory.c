/* plot_memory.c — the memory timeline chart of a run profile (see plot_memory.h). */
#include "report/plot_memory.h"

#include <string.h>

const char *const plot_mem_colour[MEM_COUNT] = {"#1f77b4", "#ff7f0e", "#9467bd", "#d62728",
                                                "#2ca02c", "#8c564b", "#7f7f7f", "#bcbd22"};

/* Phase colours: the strip along a panel's top, and the pale background below it. */
static const char *const phase_strong[4] = {"#ffffff", "#4a90d9", "#3cae5a", "#f08c2e"};
static const char *const phase_pale[4] = {"#ffffff", "#eaf2fb", "#eaf6ec", "#fdf1e4"};
static const char *const phase_name[4] = {"", "forward", "backward", "optimizer step"};

const char *plot_mem_unit(int64_t max_bytes, double *unit) {
    if (max_bytes < (2LL << 20)) return *unit = 1024.0, "KiB";
    if (max_bytes < (2LL << 30)) return *unit = 1048576.0, "MiB";
    return *unit = 1073741824.0, "GiB";
}

/* The highest value a panel of rank r draws (after-op totals, peaks inside ops). */
static int64_t rank_max(const prof_rank *r) {
    int64_t top = 0;
    for (int32_t i = 0; i < r->n_events; i++) {
        const prof_event *e = &r->events[i];
        int64_t m = 0, p = 0;
        for (int c = 0; c < MEM_COUNT; c++)
            m += e->mem[c], p += e->pmem[c];
        if (m > top) top = m;
        if (p > top) top = p;
        if (e->peak_total > top) top = e->peak_total;
        if (e->ppeak_total > top) top = e->ppeak_total;
    }
    return top;
}

void plot_memory_layout(plot_memory *m, const plot_profile *p) {
    memset(m, 0, sizeof *m);
    m->p = p;
    m->per_role = p->n_ranks > PLOT_MEMORY_MAX_PANELS;
    if (!m->per_role) {
        m->n_panels = p->n_ranks;
        for (int32_t i = 0; i < p->n_ranks; i++)
            m->rank[i] = i;
    } else {
        for (int32_t role = 0; role < p->n_roles && m->n_panels < PLOT_MEMORY_MAX_PANELS; role++) {
            int32_t best = -1;
            for (int32_t i = 0; i < p->n_ranks; i++)
                if (p->ranks[i].role == role &&
                    (best < 0 || p->ranks[i].peak_total > p->ranks[best].peak_total))
                    best = i;
            if (best >= 0) m->rank[m->n_panels++] = best;
        }
        m->left_out = p->n_roles - m->n_panels;
    }
    int64_t top = 0;
    for (int32_t k = 0; k < m->n_panels; k++) {
        const int64_t t = rank_max(&p->ranks[m->rank[k]]);
        if (t > top) top = t;
    }
    m->unit_name = plot_mem_unit(top, &m->unit);
    m->width = 1500;
    m->height = 90 + 300 * (m->n_panels ? m->n_panels : 1);
}

int plot_memory_phase(int prev, const prof_event *before, const prof_event *e) {
    if (e->kind == OP_FWD) return PLOT_PHASE_FWD;
    if (e->kind == OP_BWD) return PLOT_PHASE_BWD;
    if (e->kind == OP_OPTIM) return PLOT_PHASE_OPTIM;
    return before && before->step == e->step ? prev : PLOT_PHASE_NONE;
}

int plot_memory_write_data(FILE *f, const plot_memory *m) {
    for (int32_t k = 0; k < m->n_panels; k++) {
        const prof_rank *r = &m->p->ranks[m->rank[k]];
        fprintf(f,
                "%s# rank %d (role %d): op phase step measured[cumulative %s] "
                "predicted[cumulative] measured_peak predicted_peak\n",
                k ? "\n\n" : "", (int)m->rank[k], (int)r->role, m->unit_name);
        int phase = PLOT_PHASE_NONE;
        for (int32_t i = 0; i < r->n_events; i++) {
            const prof_event *e = &r->events[i];
            phase = plot_memory_phase(phase, i ? &r->events[i - 1] : NULL, e);
            fprintf(f, "%d %d %d", (int)e->op, phase, (int)e->step);
            for (int side = 0; side < 2; side++) {
                int64_t sum = 0;
                for (int c = 0; c < MEM_COUNT; c++) {
                    sum += side ? e->pmem[c] : e->mem[c];
                    fprintf(f, " %.6g", (double)sum / m->unit);
                }
            }
            fprintf(f, " %.6g %.6g\n", (double)e->peak_total / m->unit,
                    (double)e->ppeak_total / m->unit);
        }
    }
    return ferror(f) ? -1 : 0;
}

/* Where a panel goes on the canvas, in screen fractions. */
typedef struct {
    double l, r, b, t;
} box;

static box panel_box(const plot_memory *m, int32_t row, int side) {
    const double top_px = 80, row_px = 300, pad_top = 38, pad_bottom = 50;
    const double h = m->height;
    box b;
    b.l = side ? 0.475 : 0.05;
    b.r = side ? 0.835 : 0.41;
    b.t = 1.0 - (top_px + row * row_px + pad_top) / h;
    b.b = 1.0 - (top_px + (row + 1) * row_px - pad_bottom) / h;
    return b;
}

/* The first event whose optimizer bytes (measured or predicted) are not zero; -1 if none. */
static int32_t adam_event(const prof_rank *r, int predicted) {
    for (int32_t i = 0; i < r->n_events; i++)
        if ((predicted ? r->events[i].pmem : r->events[i].mem)[MEM_OPTIMIZER] > 0) return i;
    return -1;
}

static void panel(FILE *f, const plot_memory *m, int32_t row, int side, const char *data_path) {
    const int32_t rank = m->rank[row];
    const prof_rank *r = &m->p->ranks[rank];
    const prof_role *ro = &m->p->roles[r->role];
    const box b = panel_box(m, row, side);
    const double ymax = (double)rank_max(r) / m->unit * 1.18 + 1e-9;
    const int first = row == 0 && !side; /* the legend is drawn once */
    /* the data's columns (plot_memory_data): op phase step, the measured cumulative
     * categories, the predicted ones, the measured and predicted peaks inside the op */
    const int col0 = side ? 4 : 4 + MEM_COUNT, col_peaks = 4 + 2 * MEM_COUNT;
    fprintf(f, "set lmargin at screen %.4f\nset rmargin at screen %.4f\n", b.l, b.r);
    fprintf(f, "set tmargin at screen %.4f\nset bmargin at screen %.4f\n", b.t, b.b);
    fprintf(f, "set title \"rank %d (role %d: stage %d, tp %d, cp %d): %s\"\n", (int)rank,
            (int)r->role, (int)ro->stage, (int)ro->tp_rank, (int)ro->cp_rank,
            side ? "measured" : "predicted (replay)");
    fprintf(f, "set yrange [0:%.6g]\n", ymax);
    const int32_t x0 = r->n_events ? r->events[0].op : 0;
    const int32_t x1 = r->n_events ? r->events[r->n_events - 1].op + 1 : 1;
    fprintf(f, "set xrange [%d:%d]\n", (int)x0, (int)x1);
    fprintf(f, "set ylabel \"%s\"\nset xlabel \"op index\"\n", m->unit_name);
    fprintf(f, "unset arrow\nunset label\n");
    for (int32_t i = 0; i < r->n_events; i++)
        if (i == 0 || r->events[i].step != r->events[i - 1].step) {
            if (i > 0)
                fprintf(f,
                        "set arrow from %d, graph 0 to %d, graph 1 nohead dt 2 lc rgb "
                        "\"#444444\" front\n",
                        (int)r->events[i].op, (int)r->events[i].op);
            fprintf(f, "set label \"step %d\" at %d, graph 0.87 offset 0.4,0 front\n",
                    (int)r->events[i].step, (int)r->events[i].op);
        }
    const int32_t a = adam_event(r, !side);
    if (a >= 0) {
        const prof_event *e = &r->events[a];
        double y = 0;
        for (int c = 0; c <= MEM_OPTIMIZER; c++)
            y += (double)(side ? e->mem : e->pmem)[c];
        fprintf(f,
                "set arrow from %d, graph 0.74 to %.1f, first %.6g head filled lw 1.5 lc rgb "
                "\"%s\" front\n",
                (int)e->op, e->op + 0.5, y / m->unit, plot_mem_colour[MEM_OPTIMIZER]);
        /* the label left of the arrow when it fits there, else right: inside the panel */
        const int left = 10 * (e->op - x0) > 3 * (x1 - x0); /* the label is ~25% wide */
        fprintf(f,
                "set label \"Adam states (step %d)\" at %d, graph 0.77 %s offset %s0.3,0 "
                "tc rgb \"%s\" front\n",
                (int)e->step, (int)e->op, left ? "right" : "left", left ? "-" : "",
                plot_mem_colour[MEM_OPTIMIZER]);
    }
    if (first)
        fputs("set key at screen 0.845, screen 0.97 left top Left reverse box opaque font \",9\" "
              "width -2\n",
              f);
    else
        fputs("unset key\n", f);
    fputs("plot ", f);
    plot_put_string(f, data_path);
    fprintf(f,
            " index %d using ($1+0.5):(%.6g):(0.51):(%.6g):(phase_pale($2)) with boxxyerror "
            "fs solid 1.0 noborder lc rgb variable notitle, \\\n",
            (int)row, ymax * 0.46, ymax * 0.46);
    fprintf(f,
            "  '' index %d using ($1+0.5):(%.6g):(0.51):(%.6g):(phase_strong($2)) with "
            "boxxyerror fs solid 1.0 noborder lc rgb variable notitle",
            (int)row, ymax * 0.965, ymax * 0.035);
    for (int c = MEM_COUNT - 1; c >= 0; c--)
        fprintf(f,
                ", \\\n  '' index %d using 1:%d with fillsteps fs solid 0.9 noborder lc rgb "
                "\"%s\" title \"%s\"",
                (int)row, col0 + c, plot_mem_colour[c], mem_cat_names[c]);
    fprintf(f,
            ", \\\n  '' index %d using 1:%d with steps lw 1.2 lc rgb \"#222222\" dt 3 title "
            "\"peak inside the op\"",
            (int)row, side ? col_peaks : col_peaks + 1);
    if (side)
        fprintf(f,
                ", \\\n  '' index %d using 1:%d with steps lw 1.5 lc rgb \"black\" title "
                "\"predicted total (right)\"",
                (int)row, col_peaks - 1);
    if (first)
        fputs(", \\\n  NaN with lines lw 1.5 lc rgb \"black\" title \"predicted total (right)\"",
              f);
    if (first)
        for (int ph = PLOT_PHASE_FWD; ph <= PLOT_PHASE_OPTIM; ph++)
            fprintf(f, ", \\\n  NaN with boxes fs solid 1.0 lc rgb \"%s\" title \"%s\"",
                    phase_strong[ph], phase_name[ph]);
    fputs("\n", f);
}

static void body(FILE *f, const void *ctx, const char *data_path) {
    const plot_memory *m = ctx;
    fprintf(f, "phase_pale(p) = p == 1 ? 0x%s : p == 2 ? 0x%s : p == 3 ? 0x%s : 0xffffff\n",
            phase_pale[1] + 1, phase_pale[2] + 1, phase_pale[3] + 1);
    fprintf(f, "phase_strong(p) = p == 1 ? 0x%s : p == 2 ? 0x%s : p == 3 ? 0x%s : 0xffffff\n",
            phase_strong[1] + 1, phase_strong[2] + 1, phase_strong[3] + 1);
    char title[256], plan[400];
    snprintf(title, sizeof title,
             "Memory per rank, predicted (left) vs measured (right), stacked by category, first "
             "%d steps",
             (int)m->p->event_steps);
    plot_profile_describe(m->p, plan, sizeof plan);
    fputs("set multiplot title ", f);
    plot_put_string(f, title);
    fputs(" . \"\\n\" . ", f);
    plot_put_string(f, plan);
    if (m->per_role) {
        fputs(" . \"\\n\" . ", f);
        plot_put_string(f, m->left_out ? "one row per role (its rank with the highest measured "
                                         "peak); roles past the 8th left out"
                                       : "one row per role (its rank with the highest measured "
                                         "peak)");
    }
    fputs(" font \",12\"\n", f);
    fputs("set grid ytics lc rgb \"#dddddd\"\nset tics front\nset xtics out nomirror\n", f);
    fputs("set format y \"%g\"\n", f);
    for (int32_t row = 0; row < m->n_panels; row++)
        for (int side = 0; side < 2; side++)
            panel(f, m, row, side, data_path);
    fputs("unset multiplot\n", f);
}

int plot_memory_script(FILE *f, const plot_memory *m, const char *data_path,
                       const plot_outputs *out) {
    if (m->n_panels < 1) return -1;
    return plot_script_outputs(f, out, m->width, m->height, body, m, data_path);
}
