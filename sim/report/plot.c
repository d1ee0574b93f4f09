/* plot.c — sweep CSV reader, Pareto front, thinning, and the gnuplot data
 * and scripts of `parasim plot` (see plot.h, docs/plots.md). */
#include "report/plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/regular_file.h"

/* ==== the sweep CSV ========================================================================= */

static void csv_zero(plot_csv *c) {
    memset(c, 0, sizeof *c);
    c->col_peak = c->col_tps = c->col_status = c->col_strategy = c->col_headroom = -1;
}

/* Read the next line into c->buf without its line end; 1, 0 at the end, -1 on a read error. */
static int csv_read_line(plot_csv *c, ps_err *err) {
    errno = 0;
    ssize_t n = getline(&c->buf, &c->cap, c->f);
    if (n < 0) {
        if (ferror(c->f))
            return ps_err_set(err, "%s:%lld: cannot read: %s", c->path, (long long)c->line + 1,
                              strerror(errno ? errno : EIO));
        return 0;
    }
    c->line++;
    while (n > 0 && (c->buf[n - 1] == '\n' || c->buf[n - 1] == '\r'))
        c->buf[--n] = 0;
    return 1;
}

/* Split c->buf in place at commas; a field in double quotes may hold commas and "" for a
 * quote. Returns the number of fields, or -1 for no memory. */
static int csv_split(plot_csv *c) {
    int n = 0;
    char *p = c->buf;
    for (;;) {
        if (n == c->fields_cap) {
            int cap = c->fields_cap ? 2 * c->fields_cap : 32;
            char **f = realloc(c->fields, (size_t)cap * sizeof *f);
            if (!f) return -1;
            c->fields = f, c->fields_cap = cap;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '"') {
            char *w = ++p;
            c->fields[n++] = w;
            for (;;) {
                if (!*p) break;
                if (*p == '"' && p[1] == '"')
                    *w++ = '"', p += 2;
                else if (*p == '"') {
                    p++;
                    break;
                } else
                    *w++ = *p++;
            }
            while (*p && *p != ',')
                p++; /* anything after the closing quote is dropped */
            int more = *p == ',';
            *w = 0;
            if (!more) break;
            p++;
        } else {
            c->fields[n++] = p;
            char *comma = strchr(p, ',');
            char *end = comma ? comma : p + strlen(p);
            char *t = end;
            while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            *t = 0;
            if (!comma) break;
            p = comma + 1;
        }
    }
    return n;
}

int plot_csv_open(plot_csv *c, const char *path, ps_err *err) {
    csv_zero(c);
    snprintf(c->path, sizeof c->path, "%s", path);
    /* a FIFO or a device (/dev/zero) would block or never end: regular files only */
    struct stat st;
    int fd = regular_file_open(path, &st);
    if (fd == -1) return ps_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    if (fd == -2)
        return ps_err_set(err, "%s: expected the CSV file `parasim sweep --all` writes, found %s",
                          path, regular_file_kind(st.st_mode));
    c->f = fdopen(fd, "r");
    if (!c->f) {
        int e = errno;
        close(fd);
        return ps_err_set(err, "%s: cannot open: %s", path, strerror(e));
    }
    int rc = csv_read_line(c, err);
    if (rc <= 0) {
        if (rc == 0)
            ps_err_set(err,
                       "%s:1: empty file; expected the header line of the CSV "
                       "`parasim sweep --all` writes",
                       c->path);
        plot_csv_close(c);
        return -1;
    }
    int n = csv_split(c);
    if (n < 0) {
        plot_csv_close(c);
        return ps_err_set(err, "out of memory");
    }
    c->n_cols = n;
    struct {
        const char *name;
        int *col;
    } want[] = {{"peak_gib", &c->col_peak},
                {"tokens_per_s", &c->col_tps},
                {"status", &c->col_status},
                {"strategy", &c->col_strategy},
                {"headroom_gib", &c->col_headroom}};
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
            if (*want[k].col < 0 && !strcmp(c->fields[i], want[k].name)) *want[k].col = i;
    for (size_t k = 0; k < 4; k++)
        if (*want[k].col < 0) {
            ps_err_set(err,
                       "%s:1: missing column \"%s\" (the header must name peak_gib, tokens_per_s, "
                       "status and strategy, as `parasim sweep --all` writes)",
                       c->path, want[k].name);
            plot_csv_close(c);
            return -1;
        }
    return 0;
}

/* Parse a number field: 1 parsed, 0 empty, -1 not a finite number (err set). */
static int csv_number(const plot_csv *c, int col, const char *name, double *out, ps_err *err) {
    const char *s = c->fields[col];
    if (!*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || errno == ERANGE)
        return ps_err_set(err, "%s:%lld: column %s: expected a number, found \"%.60s\"", c->path,
                          (long long)c->line, name, s);
    *out = v;
    return 1;
}

int plot_csv_next(plot_csv *c, plot_csv_row *row, ps_err *err) {
    int need = c->col_peak;
    if (c->col_tps > need) need = c->col_tps;
    if (c->col_status > need) need = c->col_status;
    if (c->col_strategy > need) need = c->col_strategy;
    for (;;) {
        int rc = csv_read_line(c, err);
        if (rc <= 0) return rc;
        if (!c->buf[0] || c->buf[0] == '#') continue;
        int n = csv_split(c);
        if (n < 0) return ps_err_set(err, "out of memory");
        if (n <= need)
            return ps_err_set(err,
                              "%s:%lld: expected %d comma-separated fields as in the header, "
                              "found %d",
                              c->path, (long long)c->line, c->n_cols, n);
        c->rows++;
        const char *status = c->fields[c->col_status];
        if (strcmp(status, "ok") && strcmp(status, "no-fit")) {
            c->skipped++; /* an invalid plan: its reason, and no numbers */
            continue;
        }
        int a = csv_number(c, c->col_peak, "peak_gib", &row->peak_gib, err);
        if (a < 0) return -1;
        int b = csv_number(c, c->col_tps, "tokens_per_s", &row->tokens_per_s, err);
        if (b < 0) return -1;
        if (!a || !b) {
            c->skipped++; /* a non-finite value is written as an empty field */
            continue;
        }
        row->capacity_gib = NAN;
        double head = 0;
        if (c->col_headroom >= 0 && c->col_headroom < n) {
            int h = csv_number(c, c->col_headroom, "headroom_gib", &head, err);
            if (h < 0) return -1;
            if (h) row->capacity_gib = row->peak_gib + head;
        }
        row->fits = status[0] == 'o';
        row->strategy = c->fields[c->col_strategy];
        return 1;
    }
}

void plot_csv_close(plot_csv *c) {
    if (c->f) fclose(c->f);
    free(c->buf);
    free(c->fields);
    c->f = NULL, c->buf = NULL, c->fields = NULL;
}

/* ==== Pareto front ============================================================================ */

typedef struct {
    double x, y;
    int64_t i;
} pareto_key;

static int pareto_cmp(const void *a, const void *b) {
    const pareto_key *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    if (p->y != q->y) return p->y > q->y ? -1 : 1;
    return (p->i > q->i) - (p->i < q->i);
}

int64_t plot_pareto(const plot_pt *pts, int64_t n, int64_t *idx) {
    if (n <= 0) return 0;
    pareto_key *order = malloc((size_t)n * sizeof *order);
    if (!order) return -1;
    for (int64_t i = 0; i < n; i++)
        order[i] = (pareto_key){pts[i].x, pts[i].y, i};
    qsort(order, (size_t)n, sizeof *order, pareto_cmp);
    /* In (x up, y down, index up) order every point before i has no more memory; i is on the
     * front iff it beats all of their throughputs. */
    int64_t k = 0;
    double best = -INFINITY;
    for (int64_t r = 0; r < n; r++)
        if (order[r].y > best) {
            best = order[r].y;
            idx[k++] = order[r].i;
        }
    free(order);
    return k;
}

/* First index with pt.x >= x. */
static int64_t front_lower(const plot_front *f, double x) {
    int64_t lo = 0, hi = f->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (f->pt[mid].x < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int plot_front_add(plot_front *f, plot_pt p) {
    int64_t k = front_lower(f, p.x);
    /* the point with the most memory not above p's has the best throughput among those */
    if (k < f->n && f->pt[k].x == p.x && f->pt[k].y >= p.y) return 0;
    if (k > 0 && f->pt[k - 1].y >= p.y) return 0;
    /* p dominates the run from k whose throughput is at most its own */
    int64_t e = k;
    while (e < f->n && f->pt[e].y <= p.y)
        e++;
    if (e == k) { /* nothing removed: make room */
        if (f->n == f->cap) {
            int64_t cap = f->cap ? 2 * f->cap : 64;
            plot_pt *q = realloc(f->pt, (size_t)cap * sizeof *q);
            if (!q) return -1;
            f->pt = q, f->cap = cap;
        }
        memmove(&f->pt[k + 1], &f->pt[k], (size_t)(f->n - k) * sizeof *f->pt);
        f->n++;
    } else if (e > k + 1) {
        memmove(&f->pt[k + 1], &f->pt[e], (size_t)(f->n - e) * sizeof *f->pt);
        f->n -= e - k - 1;
    }
    f->pt[k] = p;
    return 1;
}

int plot_front_has(const plot_front *f, plot_pt p) {
    int64_t k = front_lower(f, p.x);
    return k < f->n && f->pt[k].x == p.x && f->pt[k].y == p.y && f->pt[k].group == p.group;
}

void plot_front_free(plot_front *f) {
    free(f->pt);
    f->pt = NULL, f->n = f->cap = 0;
}

/* ==== thinning ================================================================================ */

int plot_thin_init(plot_thin *t, double x0, double x1, double y0, double y1, int nx, int ny,
                   int groups) {
    memset(t, 0, sizeof *t);
    if (nx < 1 || ny < 1 || groups < 1) return -1;
    t->x0 = x0, t->x1 = x1, t->y0 = y0, t->y1 = y1, t->nx = nx, t->ny = ny, t->groups = groups;
    t->used = calloc((size_t)groups * (size_t)nx * (size_t)ny, 1);
    return t->used ? 0 : -1;
}

static int thin_cell(double v, double lo, double hi, int n) {
    if (!(hi > lo)) return 0;
    double c = (v - lo) / (hi - lo) * n;
    if (!(c >= 0)) return 0; /* also NaN */
    return c >= n ? n - 1 : (int)c;
}

int plot_thin_add(plot_thin *t, plot_pt p) {
    int g = p.group < 0 ? 0 : p.group >= t->groups ? t->groups - 1 : p.group;
    size_t cell =
        ((size_t)g * (size_t)t->ny + (size_t)thin_cell(p.y, t->y0, t->y1, t->ny)) * (size_t)t->nx +
        (size_t)thin_cell(p.x, t->x0, t->x1, t->nx);
    if (t->used[cell]) return 0;
    t->used[cell] = 1;
    return 1;
}

void plot_thin_free(plot_thin *t) {
    free(t->used);
    t->used = NULL;
}

/* ==== the sweep chart ========================================================================= */

const char *const plot_family_names[PLOT_FAMILIES] = {
    "DP only", "TP (+DP)", "PP (+DP)", "TP+PP (+DP)", "CP (+DP)", "CP+TP/PP (+DP)", "other"};

int plot_strategy_group(const char *label) {
    int has[4] = {0}; /* dp, tp, pp, cp */
    static const char *const deg[4] = {"dp", "tp", "pp", "cp"};
    const char *p = label;
    if (!strncmp(p, "single", 6)) {
        p += 6;
    } else {
        for (;;) {
            int k = 0;
            while (k < 4 && strncmp(p, deg[k], 2))
                k++;
            if (k == 4 || has[k]) return PLOT_FAMILY_OTHER * PLOT_ZERO_STAGES;
            has[k] = 1, p += 2;
            if (*p != '+') break;
            p++;
        }
    }
    int zero = 0;
    if (!strncmp(p, " zero-", 6) && p[6] >= '1' && p[6] <= '3') zero = p[6] - '0', p += 7;
    if (*p) return PLOT_FAMILY_OTHER * PLOT_ZERO_STAGES;
    int family = has[3]             ? (has[1] || has[2] ? PLOT_FAMILY_CP_MP : PLOT_FAMILY_CP)
                 : has[1] && has[2] ? PLOT_FAMILY_TP_PP
                 : has[1]           ? PLOT_FAMILY_TP
                 : has[2]           ? PLOT_FAMILY_PP
                                    : PLOT_FAMILY_DP;
    return family * PLOT_ZERO_STAGES + zero;
}

static int push_pt(plot_pt **a, int64_t *n, int64_t *cap, plot_pt p) {
    if (*n == *cap) {
        int64_t c = *cap ? 2 * *cap : 256;
        plot_pt *q = realloc(*a, (size_t)c * sizeof *q);
        if (!q) return -1;
        *a = q, *cap = c;
    }
    (*a)[(*n)++] = p;
    return 0;
}

static int pt_by_group(const void *a, const void *b) {
    const plot_pt *p = a, *q = b;
    if (p->group != q->group) return p->group < q->group ? -1 : 1;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    return (p->y > q->y) - (p->y < q->y);
}

int plot_sweep_load(const char *path, const plot_sweep_opts *o, plot_sweep *s, ps_err *err) {
    memset(s, 0, sizeof *s);
    s->capacity_gib = NAN;
    s->x_min = s->y_min = INFINITY;
    s->x_max = s->y_max = -INFINITY;
    int nx = o->nx > 0 ? o->nx : PLOT_GRID_X, ny = o->ny > 0 ? o->ny : PLOT_GRID_Y;
    plot_csv c;
    plot_csv_row row;
    plot_thin thin = {0}, thin_nofit = {0};
    int rc;
    double fit_x_max = -INFINITY, nofit_x_max = -INFINITY;

    /* pass 1: groups, ranges, capacity, the front */
    if (plot_csv_open(&c, path, err)) return -1;
    while ((rc = plot_csv_next(&c, &row, err)) == 1) {
        int g = plot_strategy_group(row.strategy);
        if (isfinite(row.capacity_gib) && !(row.capacity_gib <= s->capacity_gib))
            s->capacity_gib = row.capacity_gib;
        if (row.fits) {
            s->rows_fit++;
            s->group_fit[g]++;
            if (plot_front_add(&s->front, (plot_pt){row.peak_gib, row.tokens_per_s, g}) < 0) {
                rc = ps_err_set(err, "out of memory");
                break;
            }
            if (row.peak_gib > fit_x_max) fit_x_max = row.peak_gib;
        } else {
            s->rows_nofit++;
            if (!o->show_nofit) continue;
            if (row.peak_gib > nofit_x_max) nofit_x_max = row.peak_gib;
        }
        if (row.peak_gib < s->x_min) s->x_min = row.peak_gib;
        if (row.tokens_per_s < s->y_min) s->y_min = row.tokens_per_s;
        if (row.tokens_per_s > s->y_max) s->y_max = row.tokens_per_s;
    }
    s->rows_skipped = c.skipped;
    plot_csv_close(&c);
    if (rc < 0) goto fail;
    if (!s->rows_fit && !(o->show_nofit && s->rows_nofit)) {
        ps_err_set(err,
                   "%s: no %splans with a peak memory and a throughput to plot (%lld rows, "
                   "%lld of them invalid or without numbers)",
                   path, o->show_nofit ? "" : "fitting ", (long long)c.rows, (long long)c.skipped);
        goto fail;
    }
    /* No-fit plans far beyond the GPU would squeeze the rest: draw up to twice the capacity. */
    s->x_max = fit_x_max;
    if (nofit_x_max > s->x_max) {
        double lim = isfinite(s->capacity_gib) ? 2 * s->capacity_gib : nofit_x_max;
        double right = nofit_x_max < lim ? nofit_x_max : lim;
        if (right > s->x_max) s->x_max = right;
    }
    if (!isfinite(s->x_max)) s->x_max = s->x_min;

    /* pass 2: the thinned scatter; front points are added whole at the end */
    if (plot_thin_init(&thin, s->x_min, s->x_max, s->y_min, s->y_max, nx, ny, PLOT_GROUPS) ||
        plot_thin_init(&thin_nofit, s->x_min, s->x_max, s->y_min, s->y_max, nx, ny, 1)) {
        ps_err_set(err, "out of memory");
        goto fail;
    }
    if (plot_csv_open(&c, path, err)) goto fail;
    while ((rc = plot_csv_next(&c, &row, err)) == 1) {
        plot_pt p = {row.peak_gib, row.tokens_per_s, plot_strategy_group(row.strategy)};
        if (row.fits) {
            if (plot_front_has(&s->front, p) || !plot_thin_add(&thin, p)) continue;
            if (push_pt(&s->fit, &s->n_fit, &s->cap_fit, p)) rc = -2;
        } else {
            if (!o->show_nofit || p.x > s->x_max || !plot_thin_add(&thin_nofit, p)) continue;
            p.group = -1;
            if (push_pt(&s->nofit, &s->n_nofit, &s->cap_nofit, p)) rc = -2;
        }
        if (rc == -2) {
            rc = ps_err_set(err, "out of memory");
            break;
        }
    }
    plot_csv_close(&c);
    if (rc < 0) goto fail;
    for (int64_t i = 0; i < s->front.n; i++)
        if (push_pt(&s->fit, &s->n_fit, &s->cap_fit, s->front.pt[i])) {
            ps_err_set(err, "out of memory");
            goto fail;
        }
    if (s->n_fit) qsort(s->fit, (size_t)s->n_fit, sizeof *s->fit, pt_by_group);
    plot_thin_free(&thin);
    plot_thin_free(&thin_nofit);
    return 0;
fail:
    plot_thin_free(&thin);
    plot_thin_free(&thin_nofit);
    plot_sweep_free(s);
    return -1;
}

void plot_sweep_free(plot_sweep *s) {
    plot_front_free(&s->front);
    free(s->fit);
    free(s->nofit);
    s->fit = s->nofit = NULL;
    s->n_fit = s->n_nofit = s->cap_fit = s->cap_nofit = 0;
}

/* The data blocks, in file order: the front, the no-fit points, then one per group that has
 * points. Writer and script both walk them with this, so their indices agree. */
typedef struct {
    int kind; /* 0 front, 1 no-fit, 2 group */
    int group;
    const plot_pt *pt;
    int64_t n;
} sweep_block;

static int sweep_blocks(const plot_sweep *s, sweep_block *b) {
    int k = 0;
    if (s->front.n) b[k++] = (sweep_block){0, -1, s->front.pt, s->front.n};
    if (s->n_nofit) b[k++] = (sweep_block){1, -1, s->nofit, s->n_nofit};
    for (int64_t i = 0; i < s->n_fit;) {
        int64_t j = i;
        while (j < s->n_fit && s->fit[j].group == s->fit[i].group)
            j++;
        b[k++] = (sweep_block){2, s->fit[i].group, &s->fit[i], j - i};
        i = j;
    }
    return k;
}

int plot_sweep_write_data(FILE *f, const plot_sweep *s) {
    sweep_block b[PLOT_GROUPS + 2];
    int nb = sweep_blocks(s, b);
    fprintf(f, "# parasim plot sweep: peak_gib tokens_per_s, one block per series\n");
    for (int k = 0; k < nb; k++) {
        if (k) fputs("\n\n", f);
        if (b[k].kind == 2)
            fprintf(f, "# %s, ZeRO-%d\n", plot_family_names[b[k].group / PLOT_ZERO_STAGES],
                    b[k].group % PLOT_ZERO_STAGES);
        else
            fprintf(f, "# %s\n", b[k].kind == 0 ? "Pareto front" : "does not fit");
        for (int64_t i = 0; i < b[k].n; i++)
            fprintf(f, "%.6g %.9g\n", b[k].pt[i].x, b[k].pt[i].y);
    }
    return ferror(f) ? -1 : 0;
}

/* ==== scripts =============================================================================== */

void plot_put_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fputc('\\', f), fputc(ch, f);
        else if (ch < 0x20 || ch == 0x7f)
            fputc(' ', f);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

/* Open the output of one format; the plot commands follow. */
static void script_terminal(FILE *f, int svg, int w, int h, const char *path) {
    if (svg) {
        fprintf(f,
                "set terminal svg size %d,%d noenhanced font \"sans,11\" background rgb "
                "\"white\"\n",
                w, h);
    } else {
        fprintf(f,
                "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
                "    set terminal pngcairo size %d,%d noenhanced font \"sans,10\"\n"
                "} else {\n"
                "    set terminal png size %d,%d noenhanced\n"
                "}\n",
                w, h, w, h);
    }
    fputs("set output ", f);
    plot_put_string(f, path);
    fputc('\n', f);
}

int plot_script_outputs(FILE *f, const plot_outputs *out, int w, int h, plot_body body,
                          const void *ctx, const char *data_path) {
    if (!out->png && !out->svg) return -1;
    for (int svg = 0; svg < 2; svg++) {
        const char *path = svg ? out->svg : out->png;
        if (!path) continue;
        script_terminal(f, svg, w, h, path);
        body(f, ctx, data_path);
        fputs("set output\n", f);
    }
    return ferror(f) ? -1 : 0;
}

/* ---- Gantt ---- */

static const char *gantt_schedule_name(const sched_in *in) {
    if (in->p == 1) return "single stage (no pipeline)";
    switch (in->kind) {
    case SCHED_AFAB:
        return "GPipe (all forward, all backward)";
    case SCHED_1F1B:
        return "1F1B";
    case SCHED_INTERLEAVED:
        return "interleaved 1F1B";
    case SCHED_ZERO_BUBBLE:
        return "zero-bubble ZB-H1";
    case SCHED_DUALPIPE:
        return "DualPipe (chunk 0 from stage 0, chunk 1 from the last stage)";
    }
    return "?";
}

enum { GANTT_LEFT = 90, GANTT_RIGHT = 30, GANTT_TOP = 70, GANTT_BOTTOM = 110 };
#define GANTT_MAX_LABELLED_OPS 20000

static int digits(int64_t v) {
    int d = 1;
    while (v >= 10)
        v /= 10, d++;
    return d;
}

void plot_gantt_layout(plot_gantt *g) {
    int64_t p = g->in->p;
    g->unit = g->step_s < 1 ? 1e3 : 1;
    int row = (int)(640 / p);
    row = row < 6 ? 6 : row > 44 ? 44 : row;
    g->width = 1400;
    g->height = GANTT_TOP + GANTT_BOTTOM + (int)p * row;
    if (g->height < 320) g->height = 320;
    int64_t ops = p * sched_ops_per_stage(g->in);
    g->labels = row >= 14 && ops <= GANTT_MAX_LABELLED_OPS;
}

/* Is op o's box wide enough for its (1-based) micro-batch number? */
static int gantt_label_fits(const plot_gantt *g, const sched_op *o) {
    if (!g->labels || !(g->step_s > 0)) return 0;
    double px = (o->end - o->start) / g->step_s * (g->width - GANTT_LEFT - GANTT_RIGHT);
    return px >= 7.0 * digits((int64_t)o->mb + 1) + 6;
}

int plot_gantt_write_data(FILE *f, const plot_gantt *g) {
    const sched_in *in = g->in;
    int64_t n = sched_ops_per_stage(in);
    if (!f || !g->ops || n < 0 || !(g->unit > 0)) return -1;
    fprintf(f,
            "# parasim plot schedule: %s, p = %lld, m = %lld, v = %lld; times in %s\n"
            "# kind: 0 forward, 1 backward%s; label: 1 if the box fits its micro-batch number\n"
            "# stage kind chunk mb start end label\n",
            gantt_schedule_name(in), (long long)in->p, (long long)in->m, (long long)in->v,
            g->unit == 1 ? "s" : "ms",
            in->kind == SCHED_ZERO_BUBBLE || in->kind == SCHED_DUALPIPE
                ? " (input gradient), 2 weight gradient"
                : "");
    for (int64_t s = 0; s < in->p; s++)
        for (int64_t i = 0; i < n; i++) {
            const sched_op *o = &g->ops[s * n + i];
            fprintf(f, "%lld %d %d %ld %.9g %.9g %d\n", (long long)s, o->kind % 3, o->chunk,
                    (long)o->mb, o->start * g->unit, o->end * g->unit, gantt_label_fits(g, o));
        }
    return ferror(f) ? -1 : 0;
}

/* Fill colours by kind, then a darker shade for odd chunks of the interleaved schedule. */
static const char *const gantt_colour[3][2] = {
    {"#8fb3e8", "#4f7fcf"}, {"#9bd18b", "#5aa653"}, {"#f4c46b", "#d9a033"}};
static const char *const gantt_kind_name[3] = {"forward (F)", "backward (B)",
                                               "weight gradient (W)"};
#define GANTT_IDLE "#e4e4e4"
#define GANTT_TAIL "#f7d9d9"

static void gantt_body(FILE *f, const void *ctx, const char *data) {
    const plot_gantt *g = ctx;
    const sched_in *in = g->in;
    int64_t ops = in->p * sched_ops_per_stage(in);
    int kinds = in->kind == SCHED_ZERO_BUBBLE || in->kind == SCHED_DUALPIPE ? 3 : 2;
    int shades = in->v > 1 ? 2 : 1;
    const char *sep = "plot ";
    for (int k = 0; k < kinds; k++)
        for (int sh = 0; sh < shades; sh++) {
            fprintf(f, "%s", sep);
            plot_put_string(f, data);
            if (shades == 1)
                fprintf(f, " using ($2 == %d ? ($5 + $6) / 2 : NaN):1:5:6:($1 - 0.4):($1 + 0.4)",
                        k);
            else
                fprintf(f,
                        " using ($2 == %d && int($3) %% 2 == %d ? ($5 + $6) / 2 : NaN)"
                        ":1:5:6:($1 - 0.4):($1 + 0.4)",
                        k, sh);
            fprintf(f, " with boxxyerror fc rgb \"%s\" fs solid 1.0 %s", gantt_colour[k][sh],
                    ops > GANTT_MAX_LABELLED_OPS ? "noborder" : "border lc rgb \"#404040\"");
            if (shades == 1)
                fprintf(f, " title \"%s\"", gantt_kind_name[k]);
            else
                fprintf(f, " title \"%s, %s chunk\"", gantt_kind_name[k], sh ? "odd" : "even");
            sep = ", \\\n     ";
        }
    fprintf(f, "%sNaN with boxes fc rgb \"%s\" fs solid 1.0 title \"idle\"", sep, GANTT_IDLE);
    if (g->step_s > g->pipeline_s * 1.001)
        fprintf(f,
                "%sNaN with boxes fc rgb \"%s\" fs solid 1.0 title \"tail: exposed comm., "
                "optimizer\"",
                sep, GANTT_TAIL);
    if (g->labels) {
        fprintf(f, "%s", sep);
        plot_put_string(f, data);
        fprintf(f, " using ($7 > 0 ? ($5 + $6) / 2 : NaN):1:(sprintf(\"%%d\", int($4) + 1)) "
                   "with labels font \",9\" tc rgb \"black\" notitle");
    }
    fputc('\n', f);
}

int plot_gantt_script(FILE *f, const plot_gantt *g, const char *data_path,
                      const plot_outputs *out) {
    const sched_in *in = g->in;
    if (!(g->unit > 0) || in->p < 1 || !(g->step_s > 0)) return -1;
    double step = g->step_s * g->unit, pipe = g->pipeline_s * g->unit;
    const char *unit = g->unit == 1 ? "s" : "ms";
    char line[512], name[400];
    fprintf(f, "# parasim plot schedule (docs/plots.md)\nreset\n");
    snprintf(line, sizeof line,
             "%s schedule: p = %lld stage%s, m = %lld micro-batch%s, v = %lld; simulated "
             "bubble %.1f%% of busy time; step %.4g %s",
             gantt_schedule_name(in), (long long)in->p, in->p == 1 ? "" : "s", (long long)in->m,
             in->m == 1 ? "" : "es", (long long)in->v, 100 * g->bubble_fraction, step, unit);
    snprintf(name, sizeof name, "%.300s%s", g->plan_name ? g->plan_name : "",
             g->fits ? "" : " (does not fit in GPU memory)");
    fputs("set title ", f);
    plot_put_string(f, line);
    if (name[0]) {
        fputs(" . \"\\n\" . ", f);
        plot_put_string(f, name);
    }
    fputc('\n', f);
    fprintf(f, "set xlabel \"time (%s)\"\n", unit);
    fprintf(f, "set xrange [0:%.9g]\nset yrange [%g:-0.5]\n", step, (double)in->p - 0.5);
    int64_t every = in->p <= 32 ? 1 : (in->p + 31) / 32;
    fprintf(f, "set ytics 0, %lld, %lld scale 0\nset format y \"stage %%.0f\"\n", (long long)every,
            (long long)in->p - 1);
    fprintf(f, "set xtics out nomirror\nset mxtics\nset grid xtics lc rgb \"#cccccc\" lw 0.5\n");
    fprintf(f, "set lmargin at screen %.4f\nset rmargin at screen %.4f\n",
            (double)GANTT_LEFT / g->width, 1 - (double)GANTT_RIGHT / g->width);
    fprintf(f, "set tmargin at screen %.4f\nset bmargin at screen %.4f\n",
            1 - (double)GANTT_TOP / g->height, (double)GANTT_BOTTOM / g->height);
    fprintf(f,
            "set key at screen 0.5, screen %.4f center top horizontal samplen 2 "
            "width -2 noautotitle\n",
            (double)(GANTT_BOTTOM - 62) / g->height);
    /* idle: each stage's row behind its boxes up to the end of the pipeline; then the tail */
    for (int64_t s = 0; s < in->p; s++)
        fprintf(f,
                "set object %lld rectangle from 0, %g to %.9g, %g fc rgb \"%s\" fs solid 1.0 "
                "noborder behind\n",
                (long long)s + 1, (double)s - 0.4, pipe, (double)s + 0.4, GANTT_IDLE);
    if (g->step_s > g->pipeline_s * 1.001)
        fprintf(f,
                "set object %lld rectangle from %.9g, %g to %.9g, %g fc rgb \"%s\" fs solid 1.0 "
                "noborder behind\n",
                (long long)in->p + 1, pipe, -0.45, step, (double)in->p - 0.55, GANTT_TAIL);
    return plot_script_outputs(f, out, g->width, g->height, gantt_body, g, data_path);
}

/* ---- sweep ---- */

/* One colour per family (plot_family_names), one filled shape per ZeRO stage. */
static const char *const sweep_colour[PLOT_FAMILIES] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                        "#9467bd", "#17becf", "#e377c2"};
/* filled circle, square, triangle, diamond */
static const int sweep_pointtype[PLOT_ZERO_STAGES] = {7, 5, 9, 13};
#define PLOT_DENSE_POINTS 10000
static const char *const sweep_zero_name[PLOT_ZERO_STAGES] = {"ZeRO-0 (or no DP/CP)", "ZeRO-1",
                                                              "ZeRO-2", "ZeRO-3"};

typedef struct {
    const plot_sweep *s;
    double y_scale; /* tokens/s per axis unit: 1, 1e3 or 1e6 */
} sweep_ctx;

static void sweep_body(FILE *f, const void *ctx, const char *data) {
    const plot_sweep *s = ((const sweep_ctx *)ctx)->s;
    double ys = ((const sweep_ctx *)ctx)->y_scale;
    sweep_block b[PLOT_GROUPS + 2];
    int nb = sweep_blocks(s, b);
    /* no-fit first (underneath), then the families, the one with most points first so that
     * the small ones stay visible, then the front on top */
    int64_t drawn[PLOT_FAMILIES] = {0};
    for (int k = 0; k < nb; k++)
        if (b[k].kind == 2) drawn[b[k].group / PLOT_ZERO_STAGES] += b[k].n;
    int order[PLOT_GROUPS + 2], n = 0;
    for (int kind = 1; kind <= 2; kind++)
        for (int k = 0; k < nb; k++)
            if (b[k].kind == kind) order[n++] = k;
    for (int i = 1; i < n; i++) /* insertion sort of the groups, stable */
        for (int j = i; j > 0 && b[order[j - 1]].kind == 2 &&
                        drawn[b[order[j]].group / PLOT_ZERO_STAGES] >
                            drawn[b[order[j - 1]].group / PLOT_ZERO_STAGES];
             j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    for (int k = 0; k < nb; k++)
        if (b[k].kind == 0) order[n++] = k;
    const double ps = s->n_fit > PLOT_DENSE_POINTS ? 0.6 : 1; /* dense charts: smaller points */
    const char *sep = "plot ";
    for (int i = 0; i < n; i++) {
        int k = order[i];
        fputs(sep, f);
        plot_put_string(f, data);
        fprintf(f, " index %d using 1:($2 / %g)", k, ys);
        if (b[k].kind == 1) {
            fprintf(f, " with points pt 7 ps 0.5 lc rgb \"#c8c8c8\" title \"does not fit\"");
        } else if (b[k].kind == 2) {
            int g = b[k].group;
            fprintf(f, " with points pt %d ps %g lc rgb \"%s\" notitle",
                    sweep_pointtype[g % PLOT_ZERO_STAGES], ps, sweep_colour[g / PLOT_ZERO_STAGES]);
        } else {
            fprintf(f,
                    " with steps lc rgb \"black\" lw 1.5 title \"Pareto front (%lld plans)\", "
                    "\\\n     ",
                    (long long)b[k].n);
            plot_put_string(f, data);
            fprintf(f,
                    " index %d using 1:($2 / %g) with points pt 6 ps 1.7 lc rgb \"black\" "
                    "notitle",
                    k, ys);
        }
        sep = ", \\\n     ";
    }
    /* the legend: a swatch per family and a grey shape per ZeRO stage that has points */
    int64_t fam[PLOT_FAMILIES] = {0}, zero[PLOT_ZERO_STAGES] = {0};
    for (int g = 0; g < PLOT_GROUPS; g++)
        fam[g / PLOT_ZERO_STAGES] += s->group_fit[g], zero[g % PLOT_ZERO_STAGES] += s->group_fit[g];
    fprintf(f, "%sNaN with points ps 0 lc rgb \"white\" title \" \"", sep);
    fprintf(f, "%sNaN with points ps 0 lc rgb \"white\" title \"colour: strategy\"", sep);
    for (int k = 0; k < PLOT_FAMILIES; k++)
        if (fam[k]) {
            fprintf(f, "%sNaN with boxes fc rgb \"%s\" fs solid 1.0 noborder title ", sep,
                    sweep_colour[k]);
            plot_put_string(f, plot_family_names[k]);
        }
    fprintf(f, "%sNaN with points ps 0 lc rgb \"white\" title \" \"", sep);
    fprintf(f, "%sNaN with points ps 0 lc rgb \"white\" title \"shape: ZeRO stage\"", sep);
    for (int k = 0; k < PLOT_ZERO_STAGES; k++)
        if (zero[k])
            fprintf(f, "%sNaN with points pt %d ps 1 lc rgb \"#505050\" title \"%s\"", sep,
                    sweep_pointtype[k], sweep_zero_name[k]);
    fputc('\n', f);
}

int plot_sweep_script(FILE *f, const plot_sweep *s, const char *data_path, const char *csv_name,
                      const plot_outputs *out) {
    char line[600];
    fprintf(f, "# parasim plot sweep (docs/plots.md)\nreset\n");
    snprintf(line, sizeof line, "%.300s: peak memory per GPU vs throughput", csv_name);
    fputs("set title ", f);
    plot_put_string(f, line);
    snprintf(line, sizeof line,
             "%lld plans fit, %lld do not, %lld invalid; Pareto front: %lld plans; drawn "
             "(thinned): %lld fitting, %lld not",
             (long long)s->rows_fit, (long long)s->rows_nofit, (long long)s->rows_skipped,
             (long long)s->front.n, (long long)s->n_fit, (long long)s->n_nofit);
    fputs(" . \"\\n\" . ", f);
    plot_put_string(f, line);
    fputc('\n', f);
    double xmax = s->x_max, ymax = s->y_max, cap = s->capacity_gib;
    if (!(xmax > 0)) xmax = 1;
    if (!(ymax > 0)) ymax = 1;
    /* The memory axis runs from 0 to past the capacity; when the capacity is far to the right of
     * every point (a small model on a big GPU) a linear axis would squeeze them into its left
     * edge, so the axis turns logarithmic. */
    int cap_line = isfinite(cap) && cap > 0;
    int log_x = cap_line && cap > 3 * xmax && s->x_min > 0;
    if (cap_line && cap > xmax) xmax = cap;
    double ys = ymax >= 1e6 ? 1e6 : ymax >= 1e4 ? 1e3 : 1;
    fprintf(f,
            "set xlabel \"peak memory per GPU (GiB%s)\"\nset ylabel \"tokens/s%s\"\n"
            "set grid lc rgb \"#dddddd\"\n"
            "set key outside right top vertical Left reverse noautotitle\n",
            log_x ? ", log scale" : "",
            ys == 1e6   ? " (millions)"
            : ys == 1e3 ? " (thousands)"
                        : "");
    if (log_x)
        fprintf(f, "set logscale x\nset xrange [%.6g:%.6g]\n", s->x_min / 1.5, xmax * 1.5);
    else
        fprintf(f, "set xrange [0:%.6g]\n", xmax * 1.05);
    fprintf(f, "set yrange [0:%.6g]\n", ymax / ys * 1.08);
    if (cap_line)
        fprintf(f,
                "set arrow 1 from %.6g, graph 0 to %.6g, graph 1 nohead lc rgb \"#cc0000\" lw 1.5 "
                "dt 2 front\n"
                "set label 1 \"GPU memory %.4g GiB\" at %.6g, graph 0.97 right offset -0.5, 0 "
                "tc rgb \"#cc0000\" front\n",
                cap, cap, cap, cap);
    sweep_ctx ctx = {s, ys};
    return plot_script_outputs(f, out, 1400, 800, sweep_body, &ctx, data_path);
}
