/* fuzz_plan.c — a plan spec (YAML): loaded with its model and cluster, checked,
 * evaluated and reported as `parasim plan` does. Model and cluster names
 * resolve against PARASIM_DATA (the repository's specs). */
#include <stdlib.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static plan_spec spec;
    char *text = fuzz_text(data, size);
    ps_err err = {{0}};
    if (!plan_load_text(text, "fuzz-plan.yaml", NULL, 0, &spec, &err)) fuzz_evaluate(&spec);
    free(text);
    return 0;
}
