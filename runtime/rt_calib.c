/* rt_calib.c — kernel and collective timings for calibration (see rt_calib.h). */
#include "rt_calib.h"

#include <stdlib.h>
#include <string.h>

#include "base/median.h"
#include "kern.h"
#include "rt_backend.h"

const char *const rt_calib_coll_names[RT_CALIB_COLLS] = {"all_reduce", "all_gather",
                                                         "reduce_scatter", "sendrecv"};

static double now_s(void) { return rt_backend_cpu.now_seconds(); }


#define MAX_REPS 64

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
        const double t0 = now_s();
        kern_matmul_fwd(y, x, w, N, C, OC);
        const double t1 = now_s();
        kern_matmul_bwd(dx, dw, dy, x, w, N, C, OC);
        const double t2 = now_s();
        if (r >= 0) tf[r] = t1 - t0, tb[r] = t2 - t1;
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
        const double t0 = now_s();
        kern_attn_fwd(out, lse, q, k, v, B, T, H, KVH, D, scratch);
        const double t1 = now_s();
        kern_attn_bwd(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, KVH, D, scratch);
        const double t2 = now_s();
        if (r >= 0) tf[r] = t1 - t0, tb[r] = t2 - t1;
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
        const double t0 = now_s();
        kern_adamw(p, m, v, g, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, r + 2);
        memset(g, 0, (size_t)n * sizeof *g);
        if (r >= 0) t[r] = now_s() - t0;
    }
    if (!rc) *seconds = ps_median(t, reps);
    free(p), free(g), free(m), free(v);
    return rc;
}

static int coll_once(rt_calib_coll c, MPI_Comm comm, float *in, float *out, int count, int size,
                     int rank) {
    switch (c) {
    case RT_CALIB_ALL_REDUCE:
        return MPI_Allreduce(in, out, count, MPI_FLOAT, MPI_SUM, comm);
    case RT_CALIB_ALL_GATHER: /* count: the output; each rank gives count / size */
        return MPI_Allgather(in, count / size, MPI_FLOAT, out, count / size, MPI_FLOAT, comm);
    case RT_CALIB_REDUCE_SCATTER:
        return MPI_Reduce_scatter_block(in, out, count / size, MPI_FLOAT, MPI_SUM, comm);
    default:
        return MPI_Sendrecv(in, count, MPI_FLOAT, (rank + 1) % size, 0, out, count, MPI_FLOAT,
                            (rank + size - 1) % size, 0, comm, MPI_STATUS_IGNORE);
    }
}

int rt_calib_coll_time(rt_calib_coll c, MPI_Comm comm, int64_t bytes, int reps,
                       double *seconds) {
    int size, rank;
    if (!reps_ok(reps) || MPI_Comm_size(comm, &size) || MPI_Comm_rank(comm, &rank)) return -1;
    int64_t count = bytes / 4;
    if (c == RT_CALIB_ALL_GATHER || c == RT_CALIB_REDUCE_SCATTER) count -= count % size;
    if (count < size || count > 1 << 30) return -1;
    float *in = rand_floats(count, 10 + (uint64_t)rank), *out = malloc((size_t)count * sizeof *out);
    int bad = !in || !out, any = 1; /* every rank stops, or none does */
    int rc = MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm) || any ? -1 : 0;
    double t[MAX_REPS];
    for (int r = -1; r < reps && !rc; r++) {
        rc = MPI_Barrier(comm) ? -1 : 0;
        const double t0 = now_s();
        if (!rc) rc = coll_once(c, comm, in, out, (int)count, size, rank) ? -1 : 0;
        double dt = now_s() - t0, slowest = 0;
        if (!rc) rc = MPI_Allreduce(&dt, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm) ? -1 : 0;
        if (r >= 0) t[r] = slowest;
    }
    if (!rc) *seconds = ps_median(t, reps);
    free(in), free(out);
    return rc;
}
