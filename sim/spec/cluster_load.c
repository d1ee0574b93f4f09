/* cluster_load.c — read a cluster spec from plans/clusters/ (see cluster.h, docs/specs.md). */
#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include "spec/cluster.h"
#include "spec/spec_limit.h"
#include "spec/yget.h"

static const char *const top_keys[] = {"name", "source", "description", "gpu",
                                       "gpus_per_node", "nodes", "links", NULL};
static const char *const gpu_keys[] = {"name", "memory", "reserved", "peak_flops",
                                       "hbm_bandwidth", "efficiency", "kernel_dtype", NULL};
static const char *const eff_keys[] = {"gemm", "attention", "attention_kernels", "hbm",
                                       "optimizer", "overlap", NULL};
static const char *const attn_keys[] = {"forward", "backward", NULL};
static const char *const flops_keys[] = {"fp8", "bf16", "fp16", "fp32", NULL};
static const char *const links_keys[] = {"intra_node", "inter_node", "host", "nics_per_node",
                                         "ring_latency", "collectives", NULL};
const char *const cluster_coll_names[CLUSTER_COLLS + 1] = {
    "all_reduce", "reduce_scatter", "all_gather", "broadcast", "reduce", "send_recv",
    "all_to_all", NULL};
static const char *const ring_latency_names[] = {"per_step", "nccl", NULL};
static const char *const link_keys[] = {"bandwidth", "latency", "efficiency", NULL};

/* Defaults (docs/time.md §1): the GEMM curve is the A100 calibration
 * (docs/accuracy.md §2), used for every GPU that has no curve of its own. */
void cluster_eff_default(cluster_eff *e) {
    static const double dim[] = {64, 128, 256, 512, 1024, 2048, 4096};
    static const double frac[] = {0.282, 0.407, 0.523, 0.610, 0.665, 0.697, 0.713};
    e->gemm_n = (int)(sizeof dim / sizeof dim[0]);
    for (int i = 0; i < e->gemm_n; i++) {
        e->gemm_dim[i] = dim[i];
        e->gemm_frac[i] = frac[i];
    }
    e->attn_fwd = 0.60;
    e->attn_bwd = 0.45;
    e->attn_kernel_n = 0; /* no named attention kernels */
    e->hbm = 0.80;
    e->optimizer = 0; /* as hbm */
    e->intra = 0.78;
    e->inter = 0.90;
    e->host = 1.0; /* links.host.bandwidth is already an achieved rate */
    for (int i = 0; i < CLUSTER_COLLS; i++) e->coll[i] = 1; /* the link's busbw for all */
    e->overlap = 0.80; /* Lee et al. 2025: overlapped compute runs 18.9% slower on average */
    cluster_eff_prepare(e);
}

double cluster_curve_slope(const double *x, const double *y, int i) {
    return log(y[i] / y[i - 1]) / log(x[i] / x[i - 1]);
}

void cluster_eff_prepare(cluster_eff *e) {
    e->gemm_slope[0] = 0;
    for (int i = 1; i < e->gemm_n; i++)
        e->gemm_slope[i] = cluster_curve_slope(e->gemm_dim, e->gemm_frac, i);
}

/* A fraction in (0, 1] ([0, 1] with zero_ok). */
static int read_frac_in(const ynode *map, const char *path, const char *key, bool zero_ok,
                        double *out, ps_err *err) {
    double v = *out;
    if (yget_quantity(map, path, key, false, UNIT_NONE, 0, &v, err)) return -1;
    if (v < 0 || (v == 0 && !zero_ok) || v > 1) {
        char field[64];
        return ps_err_at(err, &ynode_get(map, key)->loc, yget_field(path, key, field, sizeof field),
                         "expected a fraction of the datasheet value in %s, 1], found %g",
                         zero_ok ? "[0" : "(0", v);
    }
    *out = v;
    return 0;
}

static int read_frac(const ynode *map, const char *path, const char *key, double *out,
                     ps_err *err) {
    return read_frac_in(map, path, key, false, out, err);
}

/* Ranges of the physical quantities (docs/specs.md "Limits"): wide enough for
 * a CPU core and for hardware decades ahead, narrow enough that a typo (or
 * 1e308) cannot make the time model's sums overflow or a link free. */
#define RANGE_BANDWIDTH "a link bandwidth from 1 MB/s to 100 TB/s"
#define RANGE_LATENCY "a latency from 0 to 1 s"
#define RANGE_FLOPS "a peak from 1 MFLOP/s to 1 EFLOP/s"
#define RANGE_HBM "a memory bandwidth from 1 MB/s to 1 PB/s"
#define RANGE_MEMORY "a device memory from 1 MiB to 1 PiB"

static int read_flops(const ynode *flops, const char *key, bool required, double *out,
                      ps_err *err) {
    return yget_quantity(flops, "gpu.peak_flops", key, required, UNIT_FLOPS_PER_S, 1, out, err) ||
           spec_limit(flops, "gpu.peak_flops", key, *out, 1e6, 1e18, RANGE_FLOPS, err);
}

static int read_link(const ynode *links, const char *key, double *bw, double *lat, double *eff,
                     ps_err *err) {
    const ynode *l;
    char path[64];
    const bool required = strcmp(key, "host") != 0;
    snprintf(path, sizeof path, "links.%s", key);
    if (!required && !ynode_get(links, key)) return 0;
    return yget_map(links, "links", key, required, &l, err) ||
           yget_check_keys(l, path, link_keys, err) ||
           yget_quantity(l, path, "bandwidth", true, UNIT_BYTES_PER_S, 1, bw, err) ||
           spec_limit(l, path, "bandwidth", *bw, 1e6, 1e14, RANGE_BANDWIDTH, err) ||
           yget_quantity(l, path, "latency", true, UNIT_SECONDS, 0, lat, err) ||
           spec_limit(l, path, "latency", *lat, 0, 1, RANGE_LATENCY, err) ||
           read_frac(l, path, "efficiency", eff, err);
}

/* A curve [[x, fraction], ...], x in (0, 2^24] increasing down the list, at
 * most CLUSTER_GEMM_POINTS points (`what` names x in the messages). */
static int read_curve(const ynode *n, const char *field, const char *what, double *x, double *y,
                      int *count, ps_err *err) {
    char found[128];
    if (n->kind != YN_SEQ || n->n < 1 || n->n > CLUSTER_GEMM_POINTS)
        return ps_err_at(err, &n->loc, field,
                         "expected a list of 1 to %d [%s, fraction of peak] pairs, found %s",
                         CLUSTER_GEMM_POINTS, what, ynode_describe(n, found, sizeof found));
    for (int i = 0; i < n->n; i++) {
        const ynode *pt = n->items[i];
        double f, v;
        if (pt->kind != YN_SEQ || pt->n != 2)
            return ps_err_at(err, &pt->loc, field, "expected a pair such as [1024, 0.70], found %s",
                             ynode_describe(pt, found, sizeof found));
        if (yget_node_quantity(pt->items[0], field, UNIT_NONE, -HUGE_VAL, &f, err) ||
            yget_node_quantity(pt->items[1], field, UNIT_NONE, -HUGE_VAL, &v, err))
            return -1;
        if (!(f > 0 && f <= 1 << 24) || !(v > 0 && v <= 1) || (i && f <= x[i - 1]))
            return ps_err_at(err, &pt->loc, field,
                             "expected %ss in (0, 2^24] increasing down the list and a "
                             "fraction in (0, 1], found [%g, %g]", what, f, v);
        x[i] = f;
        y[i] = v;
    }
    *count = n->n;
    return 0;
}

/* gpu.efficiency.gemm: [[smallest dimension, fraction], ...], dimensions increasing. */
static int read_gemm_curve(const ynode *eff, cluster_eff *e, ps_err *err) {
    const ynode *n = ynode_get(eff, "gemm");
    if (!n || n->kind == YN_NULL) return 0;
    if (read_curve(n, "gpu.efficiency.gemm", "smallest GEMM dimension", e->gemm_dim, e->gemm_frac,
                   &e->gemm_n, err))
        return -1;
    cluster_eff_prepare(e);
    return 0;
}

/* gpu.efficiency.attention_kernels: {NAME: {forward: curve, backward: curve}},
 * each curve [[sequence length, fraction of peak], ...] (docs/specs.md). */
static int read_attn_kernels(const ynode *eff, cluster_eff *e, ps_err *err) {
    const ynode *ks = NULL;
    char found[128];
    if (yget_map(eff, "gpu.efficiency", "attention_kernels", false, &ks, err)) return -1;
    if (!ks) return 0;
    if (ks->n > CLUSTER_ATTN_KERNELS)
        return ps_err_at(err, &ks->loc, "gpu.efficiency.attention_kernels",
                         "expected at most %d named kernels, found %d", CLUSTER_ATTN_KERNELS,
                         ks->n);
    for (int i = 0; i < ks->n; i++) {
        const char *name = ks->keys[i];
        const ynode *k = ks->items[i];
        cluster_attn_kernel *a = &e->attn_kernel[i];
        char path[96];
        snprintf(path, sizeof path, "gpu.efficiency.attention_kernels.%.40s", name);
        if (!name[0] || strlen(name) >= sizeof a->name)
            return ps_err_at(err, &k->loc, "gpu.efficiency.attention_kernels",
                             "expected a kernel name of 1 to %d characters, found '%.40s'",
                             (int)sizeof a->name - 1, name);
        if (k->kind != YN_MAP)
            return ps_err_at(err, &k->loc, path,
                             "expected a map {forward: [[seq, fraction], ...], backward: "
                             "[[seq, fraction], ...]}, found %s",
                             ynode_describe(k, found, sizeof found));
        const ynode *f = ynode_get(k, "forward"), *b = ynode_get(k, "backward");
        char ff[112], bf[112];
        snprintf(ff, sizeof ff, "%s.forward", path);
        snprintf(bf, sizeof bf, "%s.backward", path);
        if (yget_check_keys(k, path, attn_keys, err)) return -1;
        if (!f || !b)
            return ps_err_at(err, &k->loc, f ? bf : ff,
                             "missing field (expected [[sequence length, fraction of peak], "
                             "...])");
        snprintf(a->name, sizeof a->name, "%s", name);
        if (read_curve(f, ff, "sequence length", a->fwd_seq, a->fwd, &a->fwd_n, err) ||
            read_curve(b, bf, "sequence length", a->bwd_seq, a->bwd, &a->bwd_n, err))
            return -1;
    }
    e->attn_kernel_n = ks->n;
    return 0;
}

static int read_efficiency(const ynode *gpu, cluster_eff *e, ps_err *err) {
    const ynode *eff, *attn;
    return yget_map(gpu, "gpu", "efficiency", false, &eff, err) ||
           yget_check_keys(eff, "gpu.efficiency", eff_keys, err) ||
           read_gemm_curve(eff, e, err) ||
           yget_map(eff, "gpu.efficiency", "attention", false, &attn, err) ||
           yget_check_keys(attn, "gpu.efficiency.attention", attn_keys, err) ||
           read_frac(attn, "gpu.efficiency.attention", "forward", &e->attn_fwd, err) ||
           read_frac(attn, "gpu.efficiency.attention", "backward", &e->attn_bwd, err) ||
           read_attn_kernels(eff, e, err) ||
           read_frac(eff, "gpu.efficiency", "hbm", &e->hbm, err) ||
           (ynode_get(eff, "optimizer") &&
            read_frac(eff, "gpu.efficiency", "optimizer", &e->optimizer, err)) ||
           read_frac_in(eff, "gpu.efficiency", "overlap", true, &e->overlap, err);
}

/* gpu.kernel_dtype: "fp32" (kernels compute in fp32 on fp32 copies of 16-bit
 * tensors), or absent (they read the storage dtype). */
static int read_kernel_dtype(const ynode *gpu, bool *fp32, ps_err *err) {
    char v[32] = "";
    *fp32 = false;
    if (yget_str(gpu, "gpu", "kernel_dtype", false, v, sizeof v, err)) return -1;
    if (!ynode_get(gpu, "kernel_dtype")) return 0;
    if (strcmp(v, "fp32"))
        return ps_err_at(err, &ynode_get(gpu, "kernel_dtype")->loc, "gpu.kernel_dtype",
                         "expected fp32 (kernels compute in fp32 on fp32 copies of 16-bit "
                         "tensors; leave the field out when they read the storage dtype), "
                         "found '%s'", v);
    *fp32 = true;
    return 0;
}

/* ---- links.nics_per_node, links.ring_latency (helper zero3; docs/time.md §3) ---- */
static int read_nics(const ynode *links, cluster_cfg *c, ps_err *err) {
    int ring = 0;
    c->nics_per_node = 0; /* absent: one NIC per GPU (DGX A100/H100), whatever gpus_per_node */
    if (yget_int(links, "links", "nics_per_node", false, 1, 1 << 20, &c->nics_per_node, err) ||
        yget_enum(links, "links", "ring_latency", false, ring_latency_names, &ring, err))
        return -1;
    c->ring_latency_nccl = ring == 1;
    return 0;
}

/* links.collectives: {all_reduce: F, ...}, each a fraction of the links' bus bandwidth. */
static int read_collectives(const ynode *links, cluster_eff *e, ps_err *err) {
    const ynode *m;
    if (!ynode_get(links, "collectives")) return 0;
    if (yget_map(links, "links", "collectives", false, &m, err) ||
        yget_check_keys(m, "links.collectives", cluster_coll_names, err))
        return -1;
    for (int i = 0; i < CLUSTER_COLLS; i++)
        if (read_frac(m, "links.collectives", cluster_coll_names[i], &e->coll[i], err)) return -1;
    return 0;
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
    cluster_eff_default(&c->eff);
    /* PCIe Gen4 x16 as measured by bandwidthTest (~25 GB/s per direction) */
    c->host_bytes_per_s = 25e9;
    c->host_latency_s = 10e-6;
    out->self = root->loc;
    if (yget_check_keys(root, "", top_keys, err) ||
        yget_str(root, "", "name", true, out->name, sizeof out->name, err) ||
        yget_str(root, "", "source", false, out->source, sizeof out->source, err) ||
        yget_map(root, "", "gpu", true, &gpu, err) ||
        yget_check_keys(gpu, "gpu", gpu_keys, err) ||
        yget_str(gpu, "gpu", "name", true, out->gpu_name, sizeof out->gpu_name, err) ||
        yget_bytes(gpu, "gpu", "memory", true, 1, &c->gpu_memory_bytes, err) ||
        spec_limit(gpu, "gpu", "memory", (double)c->gpu_memory_bytes, 1 << 20, 0x1p50,
                   RANGE_MEMORY, err) ||
        yget_bytes(gpu, "gpu", "reserved", false, 0, &c->gpu_reserved_bytes, err) ||
        yget_map(gpu, "gpu", "peak_flops", true, &flops, err) ||
        yget_check_keys(flops, "gpu.peak_flops", flops_keys, err) ||
        read_flops(flops, "fp8", false, &c->peak_flops_per_s[DT_FP8], err) ||
        read_flops(flops, "bf16", true, &c->peak_flops_per_s[DT_BF16], err) ||
        read_flops(flops, "fp16", true, &c->peak_flops_per_s[DT_FP16], err) ||
        read_flops(flops, "fp32", true, &c->peak_flops_per_s[DT_FP32], err) ||
        yget_quantity(gpu, "gpu", "hbm_bandwidth", true, UNIT_BYTES_PER_S, 1,
                      &c->hbm_bytes_per_s, err) ||
        spec_limit(gpu, "gpu", "hbm_bandwidth", c->hbm_bytes_per_s, 1e6, 1e15, RANGE_HBM, err) ||
        read_efficiency(gpu, &c->eff, err) ||
        read_kernel_dtype(gpu, &c->kernels_fp32, err) ||
        yget_int(root, "", "gpus_per_node", true, 1, 1 << 20, &c->gpus_per_node, err) ||
        yget_int(root, "", "nodes", true, 1, 1 << 24, &c->nodes, err) ||
        yget_map(root, "", "links", true, &links, err) ||
        yget_check_keys(links, "links", links_keys, err) ||
        read_link(links, "intra_node", &c->intra_bytes_per_s, &c->intra_latency_s,
                  &c->eff.intra, err) ||
        read_link(links, "inter_node", &c->inter_bytes_per_s, &c->inter_latency_s,
                  &c->eff.inter, err) ||
        read_link(links, "host", &c->host_bytes_per_s, &c->host_latency_s, &c->eff.host, err) ||
        read_nics(links, c, err) || read_collectives(links, &c->eff, err))
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
