/* fuzz_cluster.c — a cluster spec (YAML), evaluated with the default plan's model and layout. */
#include "spec/cluster.h"
#include "fuzz.h"
#include "spec/ynode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static plan_spec spec;
    ps_err err = {{0}};
    ynode *root = NULL;
    if (!ynode_load_bytes((const char *)data, size, "fuzz-cluster.yaml", NULL, &root, &err)) {
        spec = *fuzz_default_plan();
        if (!cluster_from_node(root, "fuzz-cluster.yaml", &spec.cluster, &err))
            fuzz_evaluate(&spec);
    }
    ynode_free(root);
    return 0;
}
