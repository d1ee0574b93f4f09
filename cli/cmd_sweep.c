/* cmd_sweep.c — `parasim sweep`: evaluate every plan of a space, rank them,
 * stream every point to CSV, show progress. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "cli.h"
#include "report/report.h"
#include "sweep/sweep.h"
#include "sweep/sweep_csv.h"
#include "sweep/sweep_rank.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: parasim sweep [SWEEP.yaml] [--top N] [--format table|csv|json] [-o FILE]\n"
            "                     [--all FILE.csv] [--quiet]\n"
            "\n"
            "Evaluate every plan in a space (dp*tp*pp*cp = GPUs, ZeRO stage, micro-batch,\n"
            "recompute, schedule, virtual stages, sequence parallelism, rank placement), rank\n"
            "the ones that fit by predicted tokens/s and say why each beats the next; count the\n"
            "rest by the reason they are invalid or do not fit (docs/sweep.md). Without\n"
            "SWEEP.yaml the built-in default sweep below is used.\n"
            "\n"
            "  --top N          how many plans to rank (default 10, at most 100,000)\n"
            "  --format FMT     table (default), csv or json for the ranking\n"
            "  -o FILE          write the ranking to FILE atomically instead of standard output\n"
            "  --all FILE.csv   stream every point (valid or not) to FILE.csv, written atomically\n"
            "  --quiet          no progress line on standard error\n"
            "\n"
            "Built-in default sweep:\n%s",
            sweep_default_yaml);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    sweep_rank rank;
    FILE *csv;
    int64_t total;
    double start, last;
    int progress; /* 0 off, 1 on */
    int shown, tty;
} sweep_ctx;

static void progress(sweep_ctx *x, int final) {
    double t = now_s() - x->start;
    const sweep_rank *r = &x->rank;
    double frac = x->total ? (double)r->points / (double)x->total : 1;
    const double best = r->best_tokens_per_s;
    fprintf(stderr, "%ssweep: %lld/%lld points (%.0f%%), %lld fit, best %.0f tokens/s, %.1f s",
            x->tty ? "\r" : "", (long long)r->points, (long long)x->total, 100 * frac,
            (long long)r->fit, best, t);
    if (!final && frac > 0) fprintf(stderr, ", ~%.0f s left", t / frac - t);
    fprintf(stderr, x->tty && !final ? "   " : "\n");
    x->shown = 1;
}

static void visit(void *ctx, const sweep_point *pt) {
    sweep_ctx *x = ctx;
    sweep_rank_add(&x->rank, pt);
    if (x->csv) sweep_csv_row(x->csv, pt);
    if (x->progress && (x->rank.points & 0xffff) == 0) {
        double t = now_s();
        if (t - x->last >= 1.0) { /* long sweeps only: the first line after 1 s */
            x->last = t;
            progress(x, 0);
        }
    }
}

typedef struct {
    const char *path, *out_path, *all_path, *format;
    long long top;
    int quiet;
} sweep_args;

static int parse(int argc, char **argv, sweep_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return -2;
        } else if (!strcmp(s, "--top")) {
            if (cli_int_arg("sweep", "--top", next, 0, 100000, &a->top)) return CLI_USAGE;
            i++;
        } else if (!strcmp(s, "--format")) {
            a->format = next ? next : "";
            i++;
            if (strcmp(a->format, "table") && strcmp(a->format, "csv") && strcmp(a->format, "json"))
                return cli_fail("sweep", CLI_USAGE,
                                "--format: expected table, csv or json, found \"%s\"", a->format);
        } else if (!strcmp(s, "-o") || !strcmp(s, "--output") || !strcmp(s, "--all")) {
            if (!next) return cli_fail("sweep", CLI_USAGE, "%s: expected a file name", s);
            *(s[2] == 'a' ? &a->all_path : &a->out_path) = next;
            i++;
        } else if (!strcmp(s, "--quiet") || !strcmp(s, "-q")) {
            a->quiet = 1;
        } else if (s[0] == '-' && s[1]) {
            return cli_fail("sweep", CLI_USAGE, "unknown option \"%s\" (see parasim sweep --help)",
                            s);
        } else if (a->path) {
            return cli_fail("sweep", CLI_USAGE, "expected one sweep file, found \"%s\" and \"%s\"",
                            a->path, s);
        } else {
            a->path = s;
        }
    }
    return 0;
}

static int report(const sweep_args *a, const sweep_spec *spec, const sweep_rank *r, double secs) {
    cli_out out;
    ps_err err = {{0}};
    if (cli_out_open(&out, a->out_path, &err)) return cli_fail("sweep", CLI_FAIL, "%s", err.msg);
    if (!strcmp(a->format, "json"))
        report_sweep_json(out.f, spec, r, secs);
    else if (!strcmp(a->format, "csv"))
        report_sweep_csv(out.f, r);
    else
        report_sweep_table(out.f, spec, r, secs);
    if (cli_out_close(&out, &err)) return cli_fail("sweep", CLI_FAIL, "%s", err.msg);
    return CLI_OK;
}

int cmd_sweep(int argc, char **argv) {
    sweep_args a = {NULL, NULL, NULL, "table", 10, 0};
    int rc = parse(argc, argv, &a);
    if (rc) return rc == -2 ? CLI_OK : rc;
    ps_err err = {{0}};
    sweep_spec *spec = calloc(1, sizeof *spec);
    sweep_ctx x;
    memset(&x, 0, sizeof x);
    atomic_file all;
    char *csv_buf = NULL;
    if (!spec || sweep_rank_init(&x.rank, (int)a.top)) {
        rc = cli_fail("sweep", CLI_FAIL, "out of memory");
        goto done;
    }
    if (cli_check_not_input("sweep", a.path, a.out_path) ||
        cli_check_not_input("sweep", a.path, a.all_path)) {
        rc = CLI_USAGE;
        goto done;
    }
    /* two outputs on one file: the ranking's rename would replace the CSV */
    if (a.all_path && a.out_path && strcmp(a.out_path, "-") &&
        atomic_file_same_target(a.all_path, a.out_path)) {
        rc = cli_fail("sweep", CLI_USAGE, "--all %s and -o %s name the same file; the ranking "
                                          "would replace every point's row: give two names",
                      a.all_path, a.out_path);
        goto done;
    }
    /* the ranking's -o is written after the sweep: refuse a link or device now */
    if (a.out_path && strcmp(a.out_path, "-") && atomic_file_check_target(a.out_path, &err)) {
        rc = cli_fail("sweep", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    if (sweep_load(a.path, spec, &err)) {
        rc = cli_fail("sweep", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    if (a.all_path) {
        if (atomic_file_open(&all, a.all_path, &err)) {
            rc = cli_fail("sweep", CLI_FAIL, "%s", err.msg);
            goto done;
        }
        x.csv = all.f;
        csv_buf = malloc(1 << 20);
        if (csv_buf) setvbuf(x.csv, csv_buf, _IOFBF, 1 << 20);
        sweep_csv_header(x.csv);
    }
    x.total = sweep_count(spec);
    x.progress = !a.quiet;
    x.tty = isatty(2);
    x.start = x.last = now_s();
    sweep_run(spec, visit, &x);
    double secs = now_s() - x.start;
    if (x.progress) progress(&x, 1); /* a summary line even for short sweeps */
    if (x.csv && atomic_file_commit(&all, &err)) {
        x.csv = NULL;
        rc = cli_fail("sweep", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    x.csv = NULL;
    sweep_rank_sort(&x.rank);
    rc = report(&a, spec, &x.rank, secs);
done:
    if (x.csv) atomic_file_abort(&all);
    free(csv_buf);
    sweep_rank_free(&x.rank);
    free(spec);
    return rc;
}
