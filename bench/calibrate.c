/* calibrate.c — predicted against published step times and peak memory
 * (docs/accuracy.md, which bench/accuracy.sh generates from this output).
 *
 * For each file given (`meson test --benchmark` passes the ones in
 * bench/published/), loads every case as a plan, predicts its step time (or
 * MFU) and peak memory with the closed-form model and prints published vs
 * predicted with the error. No row is dropped: a case that does not load is
 * printed with its error and counted as a failure. Then, over all files: the
 * fitted rows and the held-out rows (each file declares which is which before
 * any fitting: `use:`), each overall and per family; the peak-memory rows; and
 * every published run that is predicted not to fit. Lines starting with '#'
 * are comments (gnuplot).
 *
 * --tsv prints one tab-separated line per row instead (bench/fit_efficiency.py
 * and bench/accuracy/generate.py read it). Exit status 1 when a row failed to
 * load, 2 on usage errors.
 *
 * usage: calibrate [--breakdown] [--tsv] FILE.yaml...
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/published.h"
#include "time/eval.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

typedef struct {
    char file[256], name[64], family[PUBLISHED_FAMILY_MAX], cluster[64];
    char error_msg[1024]; /* non-empty: the row did not load */
    published_use use;
    published_kind kind;
    published_mem mem;
    double published, predicted, error; /* time (or MFU) */
    double mem_published, mem_predicted, mem_error;
    bool fits, mem_last_stage;
    step_time breakdown;
} row;

typedef struct {
    row *rows;
    int n, cap;
} table;

static int show_breakdown, tsv;

static void print_breakdown(const step_time *t) {
    printf("#   compute %.3f  bubble %.3f  optimizer %.3f  exposed dp %.3f tp %.3f pp %.3f cp "
           "%.3f  hidden dp %.3f",
           t->compute, t->bubble, t->optimizer, t->exposed[GROUP_DP], t->exposed[GROUP_TP],
           t->exposed[GROUP_PP], t->exposed[GROUP_CP], t->hidden[GROUP_DP]);
    /* a MoE case's expert groups (a dense case's line is unchanged) */
    if (t->exposed[GROUP_EP] > 0 || t->exposed[GROUP_EDP] > 0)
        printf("  exposed ep %.3f edp %.3f", t->exposed[GROUP_EP], t->exposed[GROUP_EDP]);
    printf("\n");
}

static row *table_add(table *t) {
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        row *r = realloc(t->rows, (size_t)cap * sizeof *r);
        if (!r) return NULL;
        t->rows = r;
        t->cap = cap;
    }
    row *r = &t->rows[t->n++];
    memset(r, 0, sizeof *r);
    r->mem = PUB_MEM_NONE;
    return r;
}

/* Evaluate case i of a loaded file into r. */
static void eval_case(const ynode *root, const ynode *c, int i, const char *path, plan_spec *s,
                      row *r) {
    ps_err err = {{0}};
    published_case info;
    snprintf(r->file, sizeof r->file, "%s", path);
    if (published_plan(root, c, path, s, &info, &err)) {
        const ynode *name = ynode_get(c, "name");
        if (info.name[0]) snprintf(r->name, sizeof r->name, "%s", info.name);
        else if (name && name->kind == YN_SCALAR) snprintf(r->name, sizeof r->name, "%.63s", name->str);
        else snprintf(r->name, sizeof r->name, "case %d", i + 1);
        snprintf(r->family, sizeof r->family, "%s", info.family[0] ? info.family : "?");
        snprintf(r->error_msg, sizeof r->error_msg, "%s", err.msg[0] ? err.msg : "(no message)");
        r->use = info.use;
        return;
    }
    snprintf(r->name, sizeof r->name, "%s", info.name);
    snprintf(r->family, sizeof r->family, "%s", info.family);
    snprintf(r->cluster, sizeof r->cluster, "%s", s->cluster.name);
    r->use = info.use;
    r->kind = info.kind;
    r->mem = info.mem;
    eval_result e;
    eval_stage *stages = calloc((size_t)s->cfg.pp, sizeof *stages);
    if (!stages) {
        snprintf(r->error_msg, sizeof r->error_msg, "out of memory");
        return;
    }
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &e, stages);
    r->fits = e.fits;
    if (info.kind == PUB_MFU) {
        r->published = info.value;
        r->predicted = e.time.mfu;
    } else if (info.kind != PUB_NO_TIME) {
        r->published = info.step_s;
        r->predicted = e.time.step;
    }
    if (info.kind != PUB_NO_TIME) r->error = r->predicted / r->published - 1.0;
    if (info.mem != PUB_MEM_NONE) {
        const eval_stage *st = info.mem_last_stage ? &stages[s->cfg.pp - 1] : &e.heavy;
        r->mem_published = info.mem_bytes;
        r->mem_predicted = (double)published_predicted_memory(info.mem, st->total, st->reserved,
                                                              st->fragmentation);
        r->mem_error = r->mem_predicted / r->mem_published - 1.0;
        r->mem_last_stage = info.mem_last_stage;
    }
    free(stages);
    r->breakdown = e.time;
}

static void print_row(const row *r) {
    const char *use = published_use_names[r->use];
    if (r->error_msg[0]) {
        printf("  %-28s %-8s %-18s FAILED TO LOAD: %s\n", r->name, use, r->family, r->error_msg);
        return;
    }
    if (r->kind == PUB_NO_TIME)
        printf("  %-28s %-8s %-18s %10s %10s %8s %7s\n", r->name, use, r->family, "-", "-", "-",
               r->fits ? "yes" : "no");
    else
        printf("  %-28s %-8s %-18s %9.3f%s %9.3f%s %+7.1f%% %7s\n", r->name, use, r->family,
               r->published, r->kind == PUB_MFU ? " " : "s", r->predicted,
               r->kind == PUB_MFU ? " " : "s", 100 * r->error, r->fits ? "yes" : "no");
    if (r->mem != PUB_MEM_NONE)
        printf("  %-28s peak memory (%s, %s): published %.2f GiB, predicted %.2f GiB, %+.1f%%\n",
               "", published_mem_names[r->mem], r->mem_last_stage ? "last stage" : "heaviest stage",
               r->mem_published / GIB, r->mem_predicted / GIB,
               100 * r->mem_error);
    if (show_breakdown) print_breakdown(&r->breakdown);
}

static void print_tsv(const row *r) {
    const char *metric = r->kind == PUB_MFU ? "mfu" : r->kind == PUB_NO_TIME ? "none" : "step_s";
    printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.6g\t%.6g\t%.6f\t%s\t%s\t%.6g\t%.6g\t%.6f\t%s\t%s\n",
           r->file, r->name, published_use_names[r->use], r->family,
           r->cluster[0] ? r->cluster : "-", r->error_msg[0] ? "failed" : "ok", metric,
           r->published, r->predicted, r->error,
           r->mem != PUB_MEM_NONE ? published_mem_names[r->mem] : "-",
           r->mem == PUB_MEM_NONE ? "-" : r->mem_last_stage ? "last" : "heaviest",
           r->mem_published / GIB,
           r->mem_predicted / GIB, r->mem_error, r->fits ? "yes" : "no",
           r->error_msg[0] ? r->error_msg : "-");
}

/* Load a file and add every case to t; a file that does not load at all is
 * one failed row. */
static void run_file(const char *path, table *t) {
    ps_err err = {{0}};
    ynode *root = NULL;
    int n = 0;
    const ynode *cases = NULL;
    if (!ynode_load_file(path, &root, &err)) cases = published_cases(root, &n, &err);
    if (!cases) {
        row *r = table_add(t);
        if (!r) return;
        snprintf(r->file, sizeof r->file, "%s", path);
        snprintf(r->name, sizeof r->name, "(the whole file)");
        snprintf(r->family, sizeof r->family, "?");
        snprintf(r->error_msg, sizeof r->error_msg, "%s", err.msg);
        if (!tsv) print_row(r);
        ynode_free(root);
        return;
    }
    if (!tsv)
        printf("# %s\n# %-28s %-8s %-18s %10s %10s %8s %7s\n", path, "case", "use", "family",
               "published", "predicted", "error", "fits");
    plan_spec *s = malloc(sizeof *s);
    for (int i = 0; s && i < n; i++) {
        row *r = table_add(t);
        if (!r) break;
        eval_case(root, cases->items[i], i, path, s, r);
        if (tsv) print_tsv(r);
        else print_row(r);
    }
    free(s);
    ynode_free(root);
    if (!tsv) printf("\n");
}

typedef struct {
    int n;
    double sum, max;
} stat;

static void stat_add(stat *s, double e) {
    s->n++;
    s->sum += fabs(e);
    if (fabs(e) > s->max) s->max = fabs(e);
}

static void print_stat(const char *set, const char *family, const stat *s, int failed) {
    if (s->n)
        printf("# %-9s %-20s %5d %9.1f%% %9.1f%%", set, family, s->n, 100 * s->sum / s->n,
               100 * s->max);
    else
        printf("# %-9s %-20s %5d %10s %10s", set, family, 0, "-", "-");
    printf(failed ? "   (%d failed to load)\n" : "\n", failed);
}

/* The fitted and the held-out set, each overall and per family (in the
 * order families first appear), then memory and "does not fit". */
static void print_summary(const table *t) {
    int failed = 0;
    for (int i = 0; i < t->n; i++) failed += t->rows[i].error_msg[0] != 0;
    printf("# all files: %d rows, %d failed to load\n", t->n, failed);
    printf("# %-9s %-20s %5s %10s %10s   (|predicted/published - 1| of step time or MFU)\n",
           "set", "family", "rows", "mean", "max");
    for (int u = 0; u < 2; u++) {
        stat all = {0, 0, 0};
        int all_failed = 0;
        for (int i = 0; i < t->n; i++) {
            const row *r = &t->rows[i];
            if ((int)r->use != u) continue;
            if (r->error_msg[0]) all_failed++;
            else if (r->kind != PUB_NO_TIME) stat_add(&all, r->error);
        }
        print_stat(published_use_names[u], "(all)", &all, all_failed);
        for (int i = 0; i < t->n; i++) {
            const row *first = &t->rows[i];
            int seen = 0;
            for (int j = 0; j < i && !seen; j++)
                seen = (int)t->rows[j].use == u && !strcmp(t->rows[j].family, first->family);
            if (seen || (int)first->use != u) continue;
            stat f = {0, 0, 0};
            int f_failed = 0;
            for (int j = i; j < t->n; j++) {
                const row *r = &t->rows[j];
                if ((int)r->use != u || strcmp(r->family, first->family)) continue;
                if (r->error_msg[0]) f_failed++;
                else if (r->kind != PUB_NO_TIME) stat_add(&f, r->error);
            }
            print_stat(published_use_names[u], first->family, &f, f_failed);
        }
    }
    stat mem = {0, 0, 0};
    for (int i = 0; i < t->n; i++)
        if (!t->rows[i].error_msg[0] && t->rows[i].mem != PUB_MEM_NONE)
            stat_add(&mem, t->rows[i].mem_error);
    print_stat("memory", "(all)", &mem, 0);
    int nofit = 0;
    for (int i = 0; i < t->n; i++) {
        const row *r = &t->rows[i];
        if (r->error_msg[0] || r->fits) continue;
        printf("# published run predicted \"does not fit\": %s (%s)\n", r->name, r->file);
        nofit++;
    }
    printf("# published runs predicted \"does not fit\": %d\n", nofit);
    for (int i = 0; i < t->n; i++)
        if (t->rows[i].error_msg[0])
            printf("# failed to load: %s (%s): %s\n", t->rows[i].name, t->rows[i].file,
                   t->rows[i].error_msg);
}

int main(int argc, char **argv) {
    table t = {NULL, 0, 0};
    int files = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--breakdown")) show_breakdown = 1;
        else if (!strcmp(argv[i], "--tsv")) tsv = 1;
    }
    if (tsv)
        printf("file\tcase\tuse\tfamily\tcluster\tstatus\tmetric\tpublished\tpredicted\terror\t"
               "memory_by\tmemory_stage\tmemory_published_gib\tmemory_predicted_gib\tmemory_error\tfits\t"
               "message\n");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--breakdown") || !strcmp(argv[i], "--tsv")) continue;
        files++;
        run_file(argv[i], &t);
    }
    if (!files) {
        fprintf(stderr, "usage: calibrate [--breakdown] [--tsv] FILE.yaml...\n");
        free(t.rows);
        return 2;
    }
    if (!tsv) print_summary(&t);
    int failed = 0;
    for (int i = 0; i < t.n; i++) failed += t.rows[i].error_msg[0] != 0;
    free(t.rows);
    return failed ? 1 : 0;
}
