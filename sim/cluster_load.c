/* cluster_load.c — read a cluster spec from plans/clusters/ (see cluster.h, docs/specs.md). */
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "yget.h"

static const char *const top_keys[] = {"name", "source", "description", "gpu",
                                       "gpus_per_node", "nodes", "links", NULL};
static const char *const gpu_keys[] = {"name", "memory", "reserved", "peak_flops",
                                       "hbm_bandwidth", NULL};
static const char *const flops_keys[] = {"fp8", "bf16", "fp16", "fp32", NULL};
static const char *const links_keys[] = {"intra_node", "inter_node", NULL};
static const char *const link_keys[] = {"bandwidth", "latency", NULL};

static int read_link(const ynode *links, const char *key, double *bw, double *lat,
                     ps_err *err) {
    const ynode *l;
    char path[64];
    snprintf(path, sizeof path, "links.%s", key);
    return yget_map(links, "links", key, true, &l, err) ||
           yget_check_keys(l, path, link_keys, err) ||
           yget_quantity(l, path, "bandwidth", true, UNIT_BYTES_PER_S, 1, bw, err) ||
           yget_quantity(l, path, "latency", true, UNIT_SECONDS, 0, lat, err);
}

int cluster_from_node(const ynode *root, const char *path, cluster_spec *out, ps_err *err) {
    char found[128];
    const ynode *gpu, *flops, *links;
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    if (root->kind != YN_MAP)
        return ps_err_at(err, &root->loc, "cluster",
                         "expected a mapping of cluster fields, found %s",
                         ynode_describe(root, found, sizeof found));
    cluster_cfg *c = &out->cfg;
    out->self = root->loc;
    if (yget_check_keys(root, "", top_keys, err) ||
        yget_str(root, "", "name", true, out->name, sizeof out->name, err) ||
        yget_str(root, "", "source", false, out->source, sizeof out->source, err) ||
        yget_map(root, "", "gpu", true, &gpu, err) ||
        yget_check_keys(gpu, "gpu", gpu_keys, err) ||
        yget_str(gpu, "gpu", "name", true, out->gpu_name, sizeof out->gpu_name, err) ||
        yget_bytes(gpu, "gpu", "memory", true, 1, &c->gpu_memory_bytes, err) ||
        yget_bytes(gpu, "gpu", "reserved", false, 0, &c->gpu_reserved_bytes, err) ||
        yget_map(gpu, "gpu", "peak_flops", true, &flops, err) ||
        yget_check_keys(flops, "gpu.peak_flops", flops_keys, err) ||
        yget_quantity(flops, "gpu.peak_flops", "fp8", false, UNIT_FLOPS_PER_S, 1,
                      &c->peak_flops_per_s[DT_FP8], err) ||
        yget_quantity(flops, "gpu.peak_flops", "bf16", true, UNIT_FLOPS_PER_S, 1,
                      &c->peak_flops_per_s[DT_BF16], err) ||
        yget_quantity(flops, "gpu.peak_flops", "fp16", true, UNIT_FLOPS_PER_S, 1,
                      &c->peak_flops_per_s[DT_FP16], err) ||
        yget_quantity(flops, "gpu.peak_flops", "fp32", true, UNIT_FLOPS_PER_S, 1,
                      &c->peak_flops_per_s[DT_FP32], err) ||
        yget_quantity(gpu, "gpu", "hbm_bandwidth", true, UNIT_BYTES_PER_S, 1,
                      &c->hbm_bytes_per_s, err) ||
        yget_int(root, "", "gpus_per_node", true, 1, 1 << 20, &c->gpus_per_node, err) ||
        yget_int(root, "", "nodes", true, 1, 1 << 24, &c->nodes, err) ||
        yget_map(root, "", "links", true, &links, err) ||
        yget_check_keys(links, "links", links_keys, err) ||
        read_link(links, "intra_node", &c->intra_bytes_per_s, &c->intra_latency_s, err) ||
        read_link(links, "inter_node", &c->inter_bytes_per_s, &c->inter_latency_s, err))
        return -1;
    const ynode *n;
    out->gpus_per_node = (n = ynode_get(root, "gpus_per_node")) ? n->loc : root->loc;
    out->nodes = (n = ynode_get(root, "nodes")) ? n->loc : root->loc;
    out->memory = (n = ynode_get(gpu, "memory")) ? n->loc : gpu->loc;
    if (c->gpu_reserved_bytes >= c->gpu_memory_bytes) {
        n = ynode_get(gpu, "reserved");
        return ps_err_at(err, &n->loc, "gpu.reserved",
                         "expected less than gpu.memory = %lld bytes, found %lld bytes",
                         (long long)c->gpu_memory_bytes, (long long)c->gpu_reserved_bytes);
    }
    return 0;
}

int cluster_load_file(const char *path, cluster_spec *out, ps_err *err) {
    ynode *root = NULL;
    if (ynode_load_file(path, &root, err)) return -1;
    int rc = cluster_from_node(root, path, out, err);
    ynode_free(root);
    return rc;
}
