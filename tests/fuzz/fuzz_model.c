/* fuzz_model.c — a model spec (YAML), evaluated in the default plan's layout. */
#include "fuzz.h"
#include "spec/model.h"
#include "spec/ynode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static plan_spec spec;
    ps_err err = {{0}};
    ynode *root = NULL;
    if (!ynode_load_bytes((const char *)data, size, "fuzz-model.yaml", NULL, &root, &err)) {
        spec = *fuzz_default_plan();
        if (!model_from_node(root, "fuzz-model.yaml", &spec.model, &err)) fuzz_evaluate(&spec);
    }
    ynode_free(root);
    return 0;
}
