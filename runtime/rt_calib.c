/* rt_calib.c — kernel and collective timings for calibration (see rt_calib.h). */
#include "rt_calib.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/median.h"
#include "kern.h"
#include "rt_backend.h"
#include "rt_group.h"

const char *const rt_calib_coll_names[RT_CALIB_COLLS] = {"all_reduce", "all_gather",
                                                         "reduce_scatter", "sendrecv",
                                                         "all_to_all"};

static double now_s(void) { return rt_backend_cpu.now_seconds(); }


#define MAX_REPS 64

/* Caches emptied before each timed call, as a run finds them: between two ops of a step
 * the other ops' tensors pass through (triton.testing.do_bench clears the L2 likewise).
 * Writing twice the last-level cache (sysconf; 64 MiB when unknown, at most 256 MiB)
 * evicts what the kernel's operands left there. A buffer that cannot be had flushes
 * nothing (the figures are then hot-cache ones). Every rank of the world calls it at once
 * (calibrate measures all ranks together), and waits for the others. */
static void flush_caches(void) {
    static unsigned char *buf;
    static size_t n;
    if (!buf) {
        long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
        n = llc > 0 ? 2 * (size_t)llc : (size_t)64 << 20;
        if (n > (size_t)256 << 20) n = (size_t)256 << 20;
        if (!(buf = malloc(n))) return;
    }
    static unsigned char v;
    memset(buf, ++v, n);
    MPI_Barrier(MPI_COMM_WORLD); /* every rank's flush done before any kernel starts */
}

static int reps_ok(int reps) { return reps >= 1 && reps <= MAX_REPS; }

/* n floats in [-1, 1) (an xorshift: the same data on every rank and run). */
static float *rand_floats(int64_t n, uint64_t seed) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof *x);
    if (!x) return NULL;
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
    return x;
}

int rt_calib_matmul(int64_t N, int64_t C, int64_t OC, int reps, double *fwd_s, double *bwd_s) {
    if (!reps_ok(reps)) return -1;
    float *x = rand_floats(N * C, 1), *w = rand_floats(OC * C, 2), *dy = rand_floats(N * OC, 3);
    float *y = malloc((size_t)(N * OC) * sizeof *y), *dx = calloc((size_t)(N * C), sizeof *dx);
    float *dw = calloc((size_t)(OC * C), sizeof *dw);
    int rc = x && w && dy && y && dx && dw ? 0 : -1;
    double tf[MAX_REPS], tb[MAX_REPS];
    for (int r = -1; r < reps && !rc; r++) { /* r = -1: the warm-up */
        flush_caches();
        const double t0 = now_s();
        kern_matmul_fwd(y, x, w, N, C, OC);
        const double t1 = now_s();
        flush_caches();
        const double t2 = now_s();
        kern_matmul_bwd(dx, dw, dy, x, w, N, C, OC);
        if (r >= 0) tf[r] = t1 - t0, tb[r] = now_s() - t2;
    }
    if (!rc) *fwd_s = ps_median(tf, reps), *bwd_s = ps_median(tb, reps);
    free(x), free(w), free(dy), free(y), free(dx), free(dw);
    return rc;
}

int rt_calib_attn(int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D, int reps,
                  double *fwd_s, double *bwd_s) {
    if (!reps_ok(reps)) return -1;
    const int64_t nq = B * T * H * D, nk = B * T * KVH * D;
    float *q = rand_floats(nq, 4), *k = rand_floats(nk, 5), *v = rand_floats(nk, 6);
    float *dout = rand_floats(nq, 7), *out = malloc((size_t)nq * sizeof *out);
    float *lse = malloc((size_t)(B * T * H) * sizeof *lse);
    float *dq = calloc((size_t)nq, sizeof *dq), *dk = calloc((size_t)nk, sizeof *dk);
    float *dv = calloc((size_t)nk, sizeof *dv);
    float *scratch = malloc((size_t)kern_attn_scratch_floats(T) * sizeof *scratch);
    int rc = q && k && v && dout && out && lse && dq && dk && dv && scratch ? 0 : -1;
    double tf[MAX_REPS], tb[MAX_REPS];
    for (int r = -1; r < reps && !rc; r++) {
        flush_caches();
        const double t0 = now_s();
        kern_attn_fwd(out, lse, q, k, v, B, T, H, KVH, D, scratch);
        const double t1 = now_s();
        flush_caches();
        const double t2 = now_s();
        kern_attn_bwd(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, KVH, D, scratch);
        if (r >= 0) tf[r] = t1 - t0, tb[r] = now_s() - t2;
    }
    if (!rc) *fwd_s = ps_median(tf, reps), *bwd_s = ps_median(tb, reps);
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv),
        free(scratch);
    return rc;
}

int rt_calib_adamw(int64_t n, int reps, double *seconds) {
    if (!reps_ok(reps)) return -1;
    float *p = rand_floats(n, 8), *g = rand_floats(n, 9), *m = calloc((size_t)n, sizeof *m);
    float *v = calloc((size_t)n, sizeof *v);
    int rc = p && g && m && v ? 0 : -1;
    double t[MAX_REPS];
    for (int r = -1; r < reps && !rc; r++) {
        flush_caches();
        const double t0 = now_s();
        kern_adamw(p, m, v, g, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, r + 2);
        memset(g, 0, (size_t)n * sizeof *g);
        if (r >= 0) t[r] = now_s() - t0;
    }
    if (!rc) *seconds = ps_median(t, reps);
    free(p), free(g), free(m), free(v);
    return rc;
}

int rt_calib_layer_mem(int64_t B, int64_t T, int64_t h, int64_t f, int64_t H, int64_t KVH,
                       int64_t D, int reps, double *seconds) {
    if (!reps_ok(reps)) return -1;
    const int64_t N = B * T, nq = N * H * D, nk = N * KVH * D;
    float *x = rand_floats(N * h, 11), *dy = rand_floats(N * h, 12), *y = malloc((size_t)(N * h) * 4);
    float *w = rand_floats(h, 13), *dw = calloc((size_t)h, 4), *rstd = malloc((size_t)N * 4);
    float *q = rand_floats(nq, 14), *k = rand_floats(nk, 15), *a = rand_floats(N * f, 16);
    float *b = rand_floats(N * f, 17), *g = malloc((size_t)(N * f) * 4);
    float *da = calloc((size_t)(N * f), 4), *db = calloc((size_t)(N * f), 4);
    int rc = x && dy && y && w && dw && rstd && q && k && a && b && g && da && db ? 0 : -1;
    double t[MAX_REPS];
    for (int r = -1; r < reps && !rc; r++) {
        double sum = 0;
        /* a layer's: each norm and residual add twice (attention, MLP), one call timed */
        static const double times[10] = {2, 2, 2, 2, 1, 1, 1, 1, 1, 1};
        for (int op = 0; op < 10; op++) {
            flush_caches();
            const double t0 = now_s();
            switch (op) {
            case 0: kern_rmsnorm_fwd(y, rstd, x, w, N, h, 1e-5f); break;
            case 1: kern_rmsnorm_bwd(y, dw, dy, x, w, rstd, N, h); break;
            case 2: kern_add(y, x, dy, N * h); break; /* forward: a new stream */
            case 3: kern_add(y, y, dy, N * h); break; /* backward: into the gradient */
            case 4: kern_rope_fwd(q, B, T, H, D, 1e4f); break;
            case 5: kern_rope_fwd(k, B, T, KVH, D, 1e4f); break;
            case 6: kern_rope_bwd(q, B, T, H, D, 1e4f); break;
            case 7: kern_rope_bwd(k, B, T, KVH, D, 1e4f); break;
            case 8: kern_swiglu_fwd(g, a, b, N * f); break;
            default: kern_swiglu_bwd(da, db, g, a, b, N * f);
            }
            sum += times[op] * (now_s() - t0);
        }
        if (r >= 0) t[r] = sum;
    }
    if (!rc) *seconds = ps_median(t, reps);
    free(x), free(dy), free(y), free(w), free(dw), free(rstd), free(q), free(k), free(a), free(b),
        free(g), free(da), free(db);
    return rc;
}

/* One call as the runtime makes it: through the CPU backend's collectives (rt_comm_mpi.c:
 * the all-reduce in place, the reduce-scatter and all-gather with per-rank counts), so that
 * what is measured is what a run calls. count: the buffer S in floats (the all-reduce's,
 * the all-gather's output, the reduce-scatter's input, the all-to-all's send), a multiple
 * of the group size. */
static int coll_once(rt_calib_coll c, rt_group *g, float *in, float *out, int64_t count,
                     int64_t *counts, int64_t *displs) {
    const rt_backend *be = &rt_backend_cpu;
    const int64_t part = count / g->size;
    for (int r = 0; r < g->size; r++) counts[r] = part, displs[r] = part * r;
    switch (c) {
    case RT_CALIB_ALL_REDUCE: return be->all_reduce(g, in, count, RT_F32);
    case RT_CALIB_ALL_GATHER: return be->all_gather(g, in, out, counts, displs, RT_F32);
    case RT_CALIB_REDUCE_SCATTER: return be->reduce_scatter(g, in, out, counts, RT_F32);
    case RT_CALIB_ALL_TO_ALL: return be->all_to_all(g, in, out, part, RT_F32);
    default:
        return be->sendrecv(g, in, (g->rank + 1) % g->size, out,
                            (g->rank + g->size - 1) % g->size, count, RT_F32);
    }
}

int rt_calib_coll_time(rt_calib_coll c, MPI_Comm comm, int64_t bytes, int reps,
                       double *seconds) {
    int size, rank;
    if (!reps_ok(reps) || MPI_Comm_size(comm, &size) || MPI_Comm_rank(comm, &rank)) return -1;
    int64_t count = bytes / 4;
    if (c != RT_CALIB_ALL_REDUCE && c != RT_CALIB_SENDRECV) count -= count % size;
    if (count < size || count > 1 << 30) return -1;
    float *in = rand_floats(count, 10 + (uint64_t)rank), *out = malloc((size_t)count * sizeof *out);
    int64_t *counts = malloc(2 * (size_t)size * sizeof *counts);
    rt_group g = {comm, rank, size, "calibrate"};
    int bad = !in || !out || !counts, any = 1; /* every rank stops, or none does */
    int rc = MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm) || any ? -1 : 0;
    double t[MAX_REPS];
    for (int r = -1; r < reps && !rc; r++) {
        rc = MPI_Barrier(comm) ? -1 : 0;
        const double t0 = now_s();
        if (!rc) rc = coll_once(c, &g, in, out, count, counts, counts + size) ? -1 : 0;
        double dt = now_s() - t0, slowest = 0;
        if (!rc) rc = MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm) ? -1 : 0;
        if (r >= 0) t[r] = slowest;
    }
    if (!rc) *seconds = ps_median(t, reps);
    free(in), free(out), free(counts);
    return rc;
}
