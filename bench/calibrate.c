/* calibrate.c — predicted against published step times (docs/accuracy.md).
 *
 * For each file given (`meson test --benchmark` passes the ones in
 * bench/published/), loads every case as a plan, predicts its step time with the closed-form model and
 * prints published vs predicted with the error, then the mean and maximum
 * absolute error per file. Lines starting with '#' are comments (gnuplot).
 *
 * usage: calibrate [--breakdown] FILE.yaml...
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "time/eval.h"
#include "spec/published.h"

static int show_breakdown;

static void print_breakdown(const step_time *t) {
    printf("#   compute %.3f  bubble %.3f  optimizer %.3f  exposed dp %.3f tp %.3f pp %.3f cp "
           "%.3f  hidden dp %.3f\n",
           t->compute, t->bubble, t->optimizer, t->exposed[GROUP_DP], t->exposed[GROUP_TP],
           t->exposed[GROUP_PP], t->exposed[GROUP_CP], t->hidden[GROUP_DP]);
}

static int run_file(const char *path) {
    ps_err err = {{0}};
    ynode *root = NULL;
    int n = 0;
    if (ynode_load_file(path, &root, &err)) {
        fprintf(stderr, "calibrate: %s\n", err.msg);
        return -1;
    }
    const ynode *cases = published_cases(root, &n, &err);
    if (!cases) {
        fprintf(stderr, "calibrate: %s\n", err.msg);
        ynode_free(root);
        return -1;
    }
    printf("# %s\n# %-28s %10s %10s %8s %8s %8s %7s\n", path, "case", "published", "predicted",
           "error", "MFU", "HFU", "fits");
    double sum = 0, worst = 0;
    int used = 0, rc = 0;
    plan_spec *s = malloc(sizeof *s);
    for (int i = 0; s && i < n; i++) {
        published_case info;
        if (published_plan(root, cases->items[i], path, s, &info, &err)) {
            fprintf(stderr, "calibrate: %s\n", err.msg);
            rc = -1;
            continue;
        }
        eval_result r;
        eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r, NULL);
        double pub = info.kind == PUB_MFU ? info.value : info.step_s;
        double pred = info.kind == PUB_MFU ? r.time.mfu : r.time.step;
        double e = pred / pub - 1.0;
        printf("  %-28s %9.3f%s %9.3f%s %+7.1f%% %7.1f%% %7.1f%% %7s\n", info.name, pub,
               info.kind == PUB_MFU ? " " : "s", pred, info.kind == PUB_MFU ? " " : "s",
               100 * e, 100 * r.time.mfu, 100 * r.time.hfu, r.fits ? "yes" : "no");
        if (show_breakdown) print_breakdown(&r.time);
        sum += fabs(e);
        worst = fmax(worst, fabs(e));
        used++;
    }
    free(s);
    if (used) printf("# %s: %d cases, mean |error| %.1f%%, max |error| %.1f%%\n\n", path, used,
                     100 * sum / used, 100 * worst);
    ynode_free(root);
    return rc;
}

int main(int argc, char **argv) {
    int rc = 0, files = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--breakdown")) {
            show_breakdown = 1;
            continue;
        }
        files++;
        if (run_file(argv[i])) rc = 1;
    }
    if (!files) {
        fprintf(stderr, "usage: calibrate [--breakdown] FILE.yaml...\n");
        return 2;
    }
    return rc;
}
