/* plot_measured.c — measured vs predicted Gantt chart of a run profile (see
 * plot_measured.h). */
#include "report/plot_measured.h"

#include <string.h>

/* Drawn kinds: their colour (0: not drawn) and legend name. */
static const unsigned kind_colour[OP_KIND_COUNT] = {
    [OP_FWD] = 0x4a90d9,  [OP_BWD] = 0x3cae5a,  [OP_OPTIM] = 0xf08c2e,
    [OP_COLL] = 0x9467bd, [OP_SEND] = 0x8c564b, [OP_RECV] = 0x8c564b};
static const char *const kind_label[OP_KIND_COUNT] = {[OP_FWD] = "forward",
                                                      [OP_BWD] = "backward",
                                                      [OP_OPTIM] = "optimizer step",
                                                      [OP_COLL] = "collective",
                                                      [OP_SEND] = "send / recv"};

static int is_comm(prog_kind k) {
    return k == OP_COLL || k == OP_SEND || k == OP_RECV;
}

void plot_measured_layout(plot_measured *g, const plot_profile *p) {
    memset(g, 0, sizeof *g);
    g->p = p;
    for (int32_t i = 0; i < p->n_roles; i++)
        if (p->roles[i].stage + 1 > g->stages) g->stages = p->roles[i].stage + 1;
    g->n_stages = g->stages < PLOT_MEASURED_MAX_STAGES ? g->stages : PLOT_MEASURED_MAX_STAGES;
    for (int32_t s = 0; s < g->n_stages; s++) {
        g->rank[s] = -1;
        for (int pass = 0; pass < 2 && g->rank[s] < 0; pass++)
            for (int32_t i = 0; i < p->n_ranks && g->rank[s] < 0; i++) {
                const prof_role *ro = &p->roles[p->ranks[i].role];
                if (ro->stage == s && (pass || (ro->tp_rank == 0 && ro->cp_rank == 0)))
                    g->rank[s] = i;
            }
    }
    for (int32_t s = 0; s < g->n_stages; s++) {
        if (g->rank[s] < 0) continue;
        const prof_rank *r = &p->ranks[g->rank[s]];
        for (int32_t i = 0; i < r->n_events; i++) {
            if (r->events[i].pend > g->span[0]) g->span[0] = r->events[i].pend;
            if (r->events[i].end > g->span[1]) g->span[1] = r->events[i].end;
            g->present[r->events[i].kind == OP_RECV ? OP_SEND : r->events[i].kind] = 1;
        }
    }
    for (int side = 0; side < 2; side++)
        g->unit[side] = g->span[side] < 1.0 ? 1e3 : 1.0;
    g->width = 1500;
    int row = 640 / (g->n_stages ? g->n_stages : 1);
    row = row < 14 ? 14 : row > 70 ? 70 : row;
    g->height = 225 + row * (g->n_stages ? g->n_stages : 1);
}

int plot_measured_write_data(FILE *f, const plot_measured *g) {
    for (int side = 0; side < 2; side++) {
        fprintf(f, "%s# %s: stage kind start end y half_height colour (%s)\n", side ? "\n\n" : "",
                side ? "measured" : "predicted", g->unit[side] > 1 ? "ms" : "s");
        for (int32_t s = 0; s < g->n_stages; s++) {
            if (g->rank[s] < 0) continue;
            const prof_rank *r = &g->p->ranks[g->rank[s]];
            for (int32_t i = 0; i < r->n_events; i++) {
                const prof_event *e = &r->events[i];
                if (!kind_colour[e->kind]) continue;
                const double a = side ? e->start : e->pstart, b = side ? e->end : e->pend;
                const double y = is_comm(e->kind) ? s + 0.3 : s - 0.08;
                const double h = is_comm(e->kind) ? 0.1 : 0.3;
                fprintf(f, "%d %d %.9g %.9g %.3f %.3f %u\n", (int)s, (int)e->kind,
                        a * g->unit[side], b * g->unit[side], y, h, kind_colour[e->kind]);
            }
        }
    }
    return ferror(f) ? -1 : 0;
}

static void body(FILE *f, const void *ctx, const char *data_path) {
    const plot_measured *g = ctx;
    char line1[400], line2[500];
    snprintf(line1, sizeof line1,
             "Schedule per stage, predicted (left: the replay, on %s) vs measured (right: %s "
             "backend, %d ranks)",
             g->p->cluster, g->p->backend, (int)g->p->n_ranks);
    char plan[400];
    snprintf(line2, sizeof line2, "%s, first %d steps%s",
             plot_profile_describe(g->p, plan, sizeof plan), (int)g->p->event_steps,
             g->n_stages < g->stages ? "; stages past the 64th left out" : "");
    fputs("set multiplot title ", f);
    plot_put_string(f, line1);
    fputs(" . \"\\n\" . ", f);
    plot_put_string(f, line2);
    fputs(" font \",12\"\n", f);
    fprintf(f, "set yrange [%d.5:-0.5]\n", (int)g->n_stages - 1);
    fputs("set ytics (", f);
    for (int32_t s = 0; s < g->n_stages; s++)
        fprintf(f, "%s\"stage %d (rank %d)\" %d", s ? ", " : "", (int)s, (int)g->rank[s], (int)s);
    fputs(")\nset ytics nomirror scale 0\nset xtics out nomirror\nset grid xtics lc rgb "
          "\"#dddddd\"\n",
          f);
    fputs("set style fill solid 1.0 border lc rgb \"#333333\"\n", f);
    fprintf(f, "is_comm(k) = k == %d || k == %d || k == %d\n", OP_COLL, OP_SEND, OP_RECV);
    const double top = 1.0 - 100.0 / g->height, bottom = 60.0 / g->height;
    for (int side = 0; side < 2; side++) {
        fprintf(f, "set lmargin at screen %.4f\nset rmargin at screen %.4f\n", side ? 0.54 : 0.1,
                side ? 0.87 : 0.47);
        fprintf(f, "set tmargin at screen %.4f\nset bmargin at screen %.4f\n", top, bottom);
        fprintf(f, "set title \"%s\"\n", side ? "measured" : "predicted (replay)");
        fprintf(f, "set xlabel \"time (%s)\"\n", g->unit[side] > 1 ? "ms" : "s");
        fprintf(f, "set xrange [0:%.9g]\n",
                g->span[side] > 0 ? g->span[side] * g->unit[side] * 1.01 : 1.0);
        if (side) fputs("unset ytics\n", f);
        if (side)
            fputs("set key at screen 0.88, screen 0.9 left top Left reverse box\n", f);
        else
            fputs("unset key\n", f);
        fputs("plot ", f);
        plot_put_string(f, data_path);
        /* compute ops with a border, the thin communication bars without */
        fprintf(f,
                " index %d using (($3+$4)/2):(is_comm($2) ? NaN : $5):(($4-$3)/2):6:7 with "
                "boxxyerror lc rgb variable notitle, \\\n  '' index %d using "
                "(($3+$4)/2):(is_comm($2) ? $5 : NaN):(($4-$3)/2):6:7 with boxxyerror fs "
                "solid 1.0 noborder lc rgb variable notitle",
                side, side);
        if (side)
            for (int k = 0; k < OP_KIND_COUNT; k++)
                if (kind_label[k] && g->present[k])
                    fprintf(f, ", \\\n  NaN with boxes lc rgb \"#%06x\" title \"%s\"",
                            kind_colour[k], kind_label[k]);
        fputs("\n", f);
    }
    fputs("unset multiplot\n", f);
}

int plot_measured_script(FILE *f, const plot_measured *g, const char *data_path,
                         const plot_outputs *out) {
    if (g->n_stages < 1) return -1;
    return plot_script_outputs(f, out, g->width, g->height, body, g, data_path);
}
