/* fuzz_common.c — helpers shared by the fuzz targets (see fuzz.h). */
#include "fuzz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "time/eval.h"
#include "spec/plan_check.h"
#include "report/report.h"
#include "time/step_sim.h"

char *fuzz_text(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) abort();
    if (size) memcpy(text, data, size);
    text[size] = 0;
    return text;
}

const plan_spec *fuzz_default_plan(void) {
    static plan_spec *spec;
    if (!spec) {
        ps_err err = {{0}};
        spec = calloc(1, sizeof *spec);
        if (!spec || plan_load(NULL, NULL, 0, spec, &err)) {
            fprintf(stderr, "fuzz: the built-in default plan does not load: %s\n", err.msg);
            abort();
        }
    }
    return spec;
}

/* What any prediction `plan` would print must satisfy: no negative or wrapped
 * sizes, finite positive times whose parts add up, HFU within (0, 1] (every
 * efficiency is at most 1, and hardware FLOPs are the FLOPs the kernel times
 * are charged for), MFU positive (it counts the full attention square the
 * causal kernels halve, so it may pass 1: docs/memory.md §7). A
 * violation is "exit 0 with nonsense", so it stops the fuzzer like a crash. */
static void check_sane(const eval_result *r) {
    const eval_stage *s = &r->heavy;
    const int64_t parts[] = {s->params,      s->grads, s->master,       s->optimizer,
                             s->activations, s->other, s->reserved,     s->fragmentation,
                             s->total,       s->host,  r->model_params, r->capacity_bytes};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (parts[i] < 0) {
            fprintf(stderr, "fuzz: negative size (part %zu): %lld\n", i, (long long)parts[i]);
            abort();
        }
    const step_time *t = &r->time;
    double sum = t->compute + t->bubble + t->optimizer;
    for (int g = 0; g < GROUP_COUNT; g++)
        sum += t->exposed[g];
    sum += r->distill.exposed_s; /* a separate teacher's time beyond the student's */
    if (!(isfinite(t->step) && t->step > 0 && isfinite(t->tokens_per_s) && t->tokens_per_s > 0 &&
          t->mfu > 0 && isfinite(t->mfu) && t->hfu > 0 && t->hfu <= 1 && isfinite(sum) && fabs(sum - t->step) <= 1e-6 * t->step)) {
        fprintf(stderr, "fuzz: nonsense time: step %g s (parts add to %g), %g tokens/s, MFU %g, HFU %g\n",
                t->step, sum, t->tokens_per_s, t->mfu, t->hfu);
        abort();
    }
}

void fuzz_evaluate(const plan_spec *spec) {
    static FILE *sink;
    static eval_stage *stages;
    static step_sim_input *sin;
    if (!sink) sink = fopen("/dev/null", "w");
    if (!stages) stages = calloc(PLAN_MAX_STAGES, sizeof *stages);
    if (!sin) sin = malloc(sizeof *sin);
    if (!sink || !stages || !sin) abort();
    if (plan_check_cfg(&spec->model.cfg, &spec->cluster.cfg, &spec->cfg) != PLAN_OK) return;
    eval_result r;
    eval_plan_spec(spec, &r, stages); /* the teacher too, under distill: */
    ps_err err = {{0}};
    if (eval_check_finite(&r, &err)) return; /* refused with a message, as `plan` does */
    check_sane(&r);
    step_sim sim;
    const step_sim *simp =
        !step_sim_run(&spec->cfg, stages, &r.time, NULL, sin, &sim) ? &sim : NULL;
    report_plan_table(sink, spec, &r, stages, simp);
    report_plan_json(sink, spec, &r, stages, simp);
}
