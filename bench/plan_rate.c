/* plan_rate.c — closed-form plan evaluations per second on one core.
 *
 * Enumerates the plans of GPT-3 175B on 512 A100s that the sweep issue will
 * rank (dp*tp*pp = 512 with tp in 1..8, pp dividing the layers, ZeRO 0-3,
 * micro-batch 1-8, three recompute modes, 1F1B and interleaved), checks each,
 * and times eval_plan over the valid ones. Prints one table (lines starting
 * with '#' are comments, for gnuplot) with the rate overall and by pipeline
 * depth, since the per-stage loop is where the time grows.
 *
 * With a sweep spec as second argument it also walks that whole space the way
 * `parasim sweep` does (best of three walks) and prints the points and
 * evaluations per second of the walk itself.
 *
 * usage: plan_rate [seconds-per-measurement] [SWEEP.yaml]   (default 1.0)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "time/eval.h"
#include "spec/plan.h"
#include "spec/plan_check.h"
#include "sweep/sweep.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define MAX_PLANS 200000

static plan_cfg plans[MAX_PLANS];      /* sorted by pipeline depth */
static plan_cfg in_order[MAX_PLANS];   /* as a sweep walks them */

static const char base_yaml[] =
    "model: gpt3-175b\ncluster: dgx-a100\ngpus: 512\n"
    "parallel: {dp: 64, tp: 8, pp: 1}\nbatch: {global: 1536, micro: 1, seq: 2048}\n"
    "recompute: selective\nprecision: bf16-mixed\noptimizer: adamw\n";

/* Every candidate the sweep would consider; returns how many are valid. */
static int enumerate(const plan_spec *s, int *candidates) {
    const model_cfg *m = &s->model.cfg;
    int n = 0;
    *candidates = 0;
    for (int64_t tp = 1; tp <= 8; tp *= 2)
        for (int64_t pp = 1; pp <= 96; pp++)
            for (int zero = 0; zero <= 3; zero++)
                for (int64_t micro = 1; micro <= 8; micro *= 2)
                    for (int rc = 0; rc < 3; rc++)
                        for (int sch = 0; sch < 2; sch++) {
                            plan_cfg p = s->cfg;
                            p.tp = tp, p.pp = pp, p.zero = zero, p.micro_batch = micro;
                            p.dp = 512 / (tp * pp);
                            p.recompute = (plan_recompute)rc;
                            p.schedule = sch ? SCHED_INTERLEAVED : SCHED_1F1B;
                            p.virtual_stages = sch ? 2 : 1;
                            (*candidates)++;
                            if (plan_check_cfg(m, &s->cluster.cfg, &p) != PLAN_OK) continue;
                            if (n < MAX_PLANS) plans[n++] = p;
                        }
    return n;
}

static int by_depth(const void *a, const void *b) {
    const plan_cfg *x = a, *y = b;
    return (x->pp > y->pp) - (x->pp < y->pp);
}

/* Evaluate list[from..to) round-robin in five windows of about seconds/5
 * each; returns the best window's evals/s (the development machine is a
 * shared VM whose speed drifts by tens of percent between runs).
 * cached: reuse per-shape work across consecutive plans, as sweeps do. */
static double rate(const plan_spec *s, const plan_cfg *list, int from, int to, double seconds,
                   double *fits_share, int cached) {
    eval_result r;
    eval_cache cache;
    double best = 0;
    long evals_all = 0, fits = 0;
    for (int w = 0; w < 5; w++) {
        long evals = 0;
        double t0 = now_s(), t;
        do {
            cache.valid = false;
            for (int i = from; i < to; i++) {
                if (cached)
                    eval_plan_cached(&s->model.cfg, &s->cluster.cfg, &list[i], &r, NULL, &cache);
                else
                    eval_plan(&s->model.cfg, &s->cluster.cfg, &list[i], &r, NULL);
                fits += r.fits;
            }
            evals += to - from;
            t = now_s();
        } while (t - t0 < seconds / 5);
        evals_all += evals;
        if ((double)evals / (t - t0) > best) best = (double)evals / (t - t0);
    }
    if (fits_share) *fits_share = (double)fits / (double)evals_all;
    return best;
}

static double check_rate(const plan_spec *s, int n, double seconds) {
    long checks = 0, ok = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < n; i++) ok += plan_check_cfg(&s->model.cfg, &s->cluster.cfg, &plans[i]) == PLAN_OK;
        checks += n;
        t = now_s();
    } while (t - t0 < seconds);
    return ok == checks ? (double)checks / (t - t0) : -1.0;
}

typedef struct {
    int64_t points, evaluated;
} walk_count;

static void count_point(void *ctx, const sweep_point *pt) {
    walk_count *w = ctx;
    w->points++;
    w->evaluated += pt->eval != NULL;
}

/* Walk a whole sweep three times; print the best walk's rates. */
static int sweep_rate(const char *path) {
    sweep_spec *sw = calloc(1, sizeof *sw);
    ps_err err = {{0}};
    if (!sw || sweep_load(path, sw, &err)) {
        fprintf(stderr, "plan_rate: %s\n", err.msg);
        free(sw);
        return 1;
    }
    double best = 1e30;
    walk_count w = {0, 0};
    for (int i = 0; i < 3; i++) {
        w = (walk_count){0, 0};
        double t0 = now_s();
        sweep_run(sw, count_point, &w);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    printf("# sweep %s: %lld points, %lld evaluated, best of 3 walks %.3f s\n", path,
           (long long)w.points, (long long)w.evaluated, best);
    printf("  %-28s %14.0f %10.1f\n", "sweep walk, points", (double)w.points / best,
           1e9 * best / (double)w.points);
    printf("  %-28s %14.0f %10.1f\n", "sweep walk, evaluations", (double)w.evaluated / best,
           1e9 * best / (double)w.evaluated);
    free(sw);
    return 0;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (seconds <= 0) seconds = 1.0;
    plan_spec *s = calloc(1, sizeof *s);
    ps_err err = {{0}};
    if (!s || plan_load_text(base_yaml, "bench", NULL, 0, s, &err)) {
        fprintf(stderr, "plan_rate: %s\n", err.msg);
        return 1;
    }
    int candidates = 0;
    int n = enumerate(s, &candidates);
    memcpy(in_order, plans, (size_t)n * sizeof plans[0]);
    qsort(plans, (size_t)n, sizeof plans[0], by_depth); /* contiguous ranges per depth */
    printf("# parasim closed-form plan evaluation rate, one core\n");
    printf("# GPT-3 175B on 512 A100: %d candidate plans, %d valid\n", candidates, n);
    double fits = 0;
    double all = rate(s, plans, 0, n, seconds, &fits, 0);
    double swept = rate(s, in_order, 0, n, seconds, NULL, 1);
    printf("# %-28s %14s %10s\n", "set", "evals_per_s", "ns_each");
    printf("  %-28s %14.0f %10.1f\n", "all valid plans, no cache", all, 1e9 / all);
    printf("  %-28s %14.0f %10.1f\n", "sweep order, eval_cache", swept, 1e9 / swept);
    printf("  %-28s %14.0f %10.1f\n", "plan_check_cfg only", check_rate(s, n, seconds),
           1e9 / check_rate(s, n, seconds));
    int64_t depths[] = {1, 8, 32, 96};
    for (int d = 0; d < 4; d++) {
        int from = -1, to = -1;
        for (int i = 0; i < n; i++)
            if (plans[i].pp == depths[d]) {
                if (from < 0) from = i;
                to = i + 1;
            }
        if (from < 0) continue;
        char name[48];
        snprintf(name, sizeof name, "pp = %lld (%d plans)", (long long)depths[d], to - from);
        double r = rate(s, plans, from, to, seconds / 2, NULL, 0);
        printf("  %-28s %14.0f %10.1f\n", name, r, 1e9 / r);
    }
    printf("# share of valid plans that fit in 80 GiB: %.1f%%\n", 100.0 * fits);
    free(s);
    return argc > 2 ? sweep_rate(argv[2]) : 0;
}
