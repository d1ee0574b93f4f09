/* cluster_yaml.c — a cluster spec as YAML (see cluster_yaml.h). */
#include "report/cluster_yaml.h"

#include <string.h>

/* A double-quoted YAML scalar: quotes and backslashes escaped, control bytes dropped. */
static void quoted(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if ((unsigned char)*s >= 0x20) fputc(*s, f);
    }
    fputc('"', f);
}

static void curve(FILE *f, const double *x, const double *y, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, "%s[%.17g, %.17g]", i ? ", " : "", x[i], y[i]);
    fputc(']', f);
}

static void link(FILE *f, const char *key, double bw, double lat, double eff) {
    fprintf(f, "  %s: {bandwidth: %.17g B/s, latency: %.17g s, efficiency: %.17g}\n", key, bw,
            lat, eff);
}

int cluster_write_yaml(FILE *f, const cluster_spec *s, const char *comment) {
    const cluster_cfg *c = &s->cfg;
    const cluster_eff *e = &c->eff;
    for (const char *p = comment; p && *p;) {
        const char *nl = strchr(p, '\n');
        const int n = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(f, "# %.*s\n", n, p);
        p += n + (nl != NULL);
    }
    fputs("name: ", f), quoted(f, s->name), fputc('\n', f);
    if (s->source[0]) fputs("source: ", f), quoted(f, s->source), fputc('\n', f);
    fputs("gpu:\n  name: ", f), quoted(f, s->gpu_name), fputc('\n', f);
    fprintf(f, "  memory: %lld B\n", (long long)c->gpu_memory_bytes);
    fprintf(f, "  reserved: %lld B\n", (long long)c->gpu_reserved_bytes);
    fprintf(f, "  peak_flops: {");
    if (c->peak_flops_per_s[DT_FP8] > 0)
        fprintf(f, "fp8: %.17g FLOP/s, ", c->peak_flops_per_s[DT_FP8]);
    fprintf(f, "bf16: %.17g FLOP/s, fp16: %.17g FLOP/s, fp32: %.17g FLOP/s}\n",
            c->peak_flops_per_s[DT_BF16], c->peak_flops_per_s[DT_FP16],
            c->peak_flops_per_s[DT_FP32]);
    fprintf(f, "  hbm_bandwidth: %.17g B/s\n", c->hbm_bytes_per_s);
    if (c->kernels_fp32) fprintf(f, "  kernel_dtype: fp32\n");
    fprintf(f, "  efficiency:\n    gemm: ");
    curve(f, e->gemm_dim, e->gemm_frac, e->gemm_n);
    fprintf(f, "\n    attention: {forward: %.17g, backward: %.17g}\n", e->attn_fwd, e->attn_bwd);
    if (e->attn_kernel_n > 0) fprintf(f, "    attention_kernels:\n");
    for (int i = 0; i < e->attn_kernel_n; i++) {
        const cluster_attn_kernel *k = &e->attn_kernel[i];
        fprintf(f, "      %s:\n        forward: ", k->name);
        curve(f, k->fwd_seq, k->fwd, k->fwd_n);
        fprintf(f, "\n        backward: ");
        curve(f, k->bwd_seq, k->bwd, k->bwd_n);
        fputc('\n', f);
    }
    fprintf(f, "    hbm: %.17g\n", e->hbm);
    if (e->optimizer > 0) fprintf(f, "    optimizer: %.17g\n", e->optimizer);
    fprintf(f, "    overlap: %.17g\n", e->overlap);
    fprintf(f, "gpus_per_node: %lld\nnodes: %lld\nlinks:\n", (long long)c->gpus_per_node,
            (long long)c->nodes);
    link(f, "intra_node", c->intra_bytes_per_s, c->intra_latency_s, e->intra);
    link(f, "inter_node", c->inter_bytes_per_s, c->inter_latency_s, e->inter);
    link(f, "host", c->host_bytes_per_s, c->host_latency_s, e->host);
    if (c->nics_per_node > 0) fprintf(f, "  nics_per_node: %lld\n", (long long)c->nics_per_node);
    if (c->ring_latency_nccl) fprintf(f, "  ring_latency: nccl\n");
    int given = 0;
    for (int i = 0; i < CLUSTER_COLLS; i++) given |= e->coll[i] != 1;
    for (int i = 0; given && i < CLUSTER_COLLS; i++)
        fprintf(f, "%s%s: %.17g%s", i ? ", " : "  collectives: {", cluster_coll_names[i],
                e->coll[i], i == CLUSTER_COLLS - 1 ? "}\n" : "");
    return ferror(f) ? -1 : 0;
}
