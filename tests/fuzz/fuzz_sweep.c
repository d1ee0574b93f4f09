/* fuzz_sweep.c — a sweep spec (YAML): loaded, counted, and walked when the
 * space is small (a large space is a valid input that only takes time). */
#include <stdlib.h>

#include "fuzz.h"
#include "sweep/sweep.h"

#define FUZZ_SWEEP_MAX_POINTS 2000

static void visit(void *ctx, const sweep_point *pt) {
    int64_t *n = ctx;
    *n += pt->reason == PLAN_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static sweep_spec spec;
    char *text = fuzz_text(data, size);
    ps_err err = {{0}};
    if (!sweep_load_text(text, "fuzz-sweep.yaml", &spec, &err) &&
        sweep_count(&spec) <= FUZZ_SWEEP_MAX_POINTS) {
        int64_t valid = 0;
        sweep_run(&spec, visit, &valid);
    }
    free(text);
    return 0;
}
