/* fuzz_cluster.c — a cluster spec (YAML), evaluated with the default plan's model and layout. */
#include <stdlib.h>

#include "cluster.h"
#include "fuzz.h"
#include "ynode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static plan_spec spec;
    char *text = fuzz_text(data, size);
    ps_err err = {{0}};
    ynode *root = NULL;
    if (!ynode_load_string(text, "fuzz-cluster.yaml", &root, &err)) {
        spec = *fuzz_default_plan();
        if (!cluster_from_node(root, "fuzz-cluster.yaml", &spec.cluster, &err))
            fuzz_evaluate(&spec);
    }
    ynode_free(root);
    free(text);
    return 0;
}
