/* gpu_rates.c — what the GPU here does on a model's GEMMs and on device copies, next to
 * what the cluster spec says (the figures `calibrate` fits, docs/time.md §1):
 *
 *   gpu_rates MODEL.yaml CLUSTER.yaml [TOKENS] [-o FILE.csv]
 *
 * For every GEMM of one layer and the head at TOKENS tokens (default 8,192: a micro-batch
 * of 4 x 2,048) — forward, input gradient, weight gradient — one cuBLAS bf16 GEMM (fp32
 * accumulation) is timed (rt_device_bench.cu: mean of 20 after 3 warm-ups): TFLOP/s,
 * the fraction of the cluster's bf16 peak, and the fraction the cluster's GEMM curve
 * predicts for its smallest dimension (kt_gemm_efficiency). Then device-to-device copies
 * from 1 MiB to 1 GiB: bytes copied per second (each byte is read and written: the memory
 * moves twice that) against the cluster's HBM bandwidth. The table goes to stdout, the
 * rows as CSV to -o. Without a GPU it says why and exits 77 (a skip). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "rt_device.h"
#include "rt_device_module.h"
#include "spec/cluster.h"
#include "spec/model.h"
#include "time/kernel_time.h"

typedef struct {
    const char *name;
    int64_t M, N, K; /* C (M x N) = A (M x K) B (K x N) */
} gemm;

/* A layer's GEMMs and the head's at T tokens: forward (tokens x out, over in), input
 * gradient (tokens x in, over out), weight gradient (out x in, over tokens). */
static int shapes(const model_cfg *m, int64_t T, gemm *g) {
    const int64_t h = m->hidden, q = m->heads * m->head_dim, kv = m->kv_heads * m->head_dim;
    const struct {
        const char *name;
        int64_t in, out;
    } lin[] = {{"qkv", h, q + 2 * kv}, {"o", q, h}, {"w1+w3", h, 2 * m->ffn_hidden},
               {"w2", m->ffn_hidden, h}, {"head", h, m->vocab}};
    int n = 0;
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
        g[n++] = (gemm){lin[i].name, T, lin[i].out, lin[i].in};
        g[n++] = (gemm){"  dX", T, lin[i].in, lin[i].out};
        g[n++] = (gemm){"  dW", lin[i].out, lin[i].in, T};
    }
    return n;
}

static double min3(double a, double b, double c) { return a < b ? (a < c ? a : c) : (b < c ? b : c); }

int main(int argc, char **argv) {
    const char *model_path = NULL, *cluster_path = NULL, *csv = NULL;
    int64_t tokens = 8192;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") && i + 1 < argc) csv = argv[++i];
        else if (!model_path) model_path = argv[i];
        else if (!cluster_path) cluster_path = argv[i];
        else tokens = atoll(argv[i]);
    }
    if (!model_path || !cluster_path || tokens <= 0) {
        fprintf(stderr, "usage: gpu_rates MODEL.yaml CLUSTER.yaml [TOKENS] [-o FILE.csv]\n");
        return 2;
    }
    static model_spec m;
    static cluster_spec c;
    ps_err err = {{0}};
    if (model_load_file(model_path, &m, &err) || cluster_load_file(cluster_path, &c, &err)) {
        fprintf(stderr, "gpu_rates: %s\n", err.msg);
        return 2;
    }
    char why[512];
    rt_device_info dev[1];
    int n_dev = 0;
    const rt_cuda_kernels *k = rt_device_cuda_kernels(why, sizeof why);
    if (!k || rt_device_list(dev, 1, &n_dev, why, sizeof why)) {
        printf("SKIP: no GPU to measure: %s\n", why);
        return 77;
    }
    const double peak = c.cfg.peak_flops_per_s[DT_BF16], hbm = c.cfg.hbm_bytes_per_s;
    printf("# %s, %s (%lld tokens) against %s (bf16 peak %.1f TFLOP/s, HBM %.2f TB/s)\n",
           dev[0].name, m.name, (long long)tokens, c.name, peak / 1e12, hbm / 1e12);
    atomic_file af;
    FILE *out = NULL;
    if (csv) {
        if (atomic_file_open(&af, csv, &err)) return fprintf(stderr, "gpu_rates: %s\n", err.msg), 2;
        out = af.f;
        fprintf(out, "kind,name,M,N,K,bytes,seconds,rate,fraction_of_peak,cluster_fraction\n");
    }
    gemm g[16];
    const int n = shapes(&m.cfg, tokens, g);
    int failed = 0;
    printf("%-8s %7s %7s %7s %10s %9s %8s %8s\n", "GEMM", "M", "N", "K", "ms", "TFLOP/s",
           "of peak", "cluster");
    for (int i = 0; i < n; i++) {
        double s = 0;
        if (k->gemm_time(g[i].M, g[i].N, g[i].K, 1, &s, why, sizeof why)) {
            printf("%-8s FAIL: %s\n", g[i].name, why);
            failed++;
            continue;
        }
        const double flops = 2.0 * (double)g[i].M * (double)g[i].N * (double)g[i].K;
        const double pred = kt_gemm_efficiency(&c.cfg.eff, min3(g[i].M, g[i].N, g[i].K));
        printf("%-8s %7lld %7lld %7lld %10.3f %9.1f %7.1f%% %7.1f%%\n", g[i].name,
               (long long)g[i].M, (long long)g[i].N, (long long)g[i].K, s * 1e3, flops / s / 1e12,
               100 * flops / s / peak, 100 * pred);
        if (out)
            fprintf(out, "gemm,%s,%lld,%lld,%lld,,%.9g,%.6g,%.6g,%.6g\n", g[i].name,
                    (long long)g[i].M, (long long)g[i].N, (long long)g[i].K, s, flops / s,
                    flops / s / peak, pred);
    }
    printf("%-8s %21s %10s %9s %8s %8s\n", "copy", "bytes", "ms", "GB/s", "of HBM", "cluster");
    for (size_t b = (size_t)1 << 20; b <= (size_t)1 << 30; b <<= 2) {
        double s = 0;
        if (k->copy_time(b, &s, why, sizeof why)) {
            printf("copy %zu FAIL: %s\n", b, why);
            failed++;
            continue;
        }
        /* read and write: the memory moves 2 b */
        printf("%-8s %21zu %10.3f %9.1f %7.1f%% %7.1f%%\n", "d2d", b, s * 1e3, (double)b / s / 1e9,
               100 * 2 * (double)b / s / hbm, 100 * c.cfg.eff.hbm);
        if (out)
            fprintf(out, "copy,d2d,,,,%zu,%.9g,%.6g,%.6g,%.6g\n", b, s, (double)b / s,
                    2 * (double)b / s / hbm, c.cfg.eff.hbm);
    }
    if (out && atomic_file_commit(&af, &err)) return fprintf(stderr, "gpu_rates: %s\n", err.msg), 1;
    return failed ? 1 : 0;
}
