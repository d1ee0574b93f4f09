/* fuzz_common.c — helpers shared by the fuzz targets (see fuzz.h). */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "plan_check.h"
#include "report.h"
#include "step_sim.h"

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
    eval_plan(&spec->model.cfg, &spec->cluster.cfg, &spec->cfg, &r, stages);
    step_sim sim;
    const step_sim *simp =
        !step_sim_run(&spec->cfg, stages, &r.time, NULL, sin, &sim) ? &sim : NULL;
    report_plan_table(sink, spec, &r, stages, simp);
    report_plan_json(sink, spec, &r, stages, simp);
}
