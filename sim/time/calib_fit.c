/* calib_fit.c — fitting the time model's constants to measurements (see calib_fit.h). */
#include "time/calib_fit.h"

#include <math.h>
#include <string.h>

#include "time/coll_time.h"

int calib_gemm_curve(const double *rate, int n, double *peak, double *frac) {
    if (n < 1) return -1;
    *peak = 0;
    for (int i = 0; i < n; i++) {
        if (!(rate[i] > 0) || !isfinite(rate[i])) return -1;
        if (rate[i] > *peak) *peak = rate[i];
    }
    for (int i = 0; i < n; i++) frac[i] = rate[i] / *peak;
    return 0;
}

/* Weighted least squares t_i = k_i latency + x_i g_c(i) (no intercept: each point has its
 * own count of latencies; g_c one collective's inverse bandwidth), w_i = 1 / t_i^2, by the
 * normal equations (Gaussian elimination, partial pivoting). p[0] the latency, p[1 + c]
 * for the nc collectives; with fixed_latency the latency stays p[0] and only the g are
 * fitted. -1 when the system is singular. */
static int solve_kx(const double *k, const double *x, const int *c, const double *t, int n,
                    int nc, int fixed_latency, double *p) {
    enum { MAXP = 1 + CLUSTER_COLLS };
    double a[MAXP][MAXP + 1];
    const int off = fixed_latency ? 1 : 0, np = 1 + nc - off;
    memset(a, 0, sizeof a);
    for (int i = 0; i < n; i++) {
        const double w = 1 / (t[i] * t[i]);
        double row[MAXP] = {0};
        double rhs = t[i];
        if (fixed_latency) rhs -= k[i] * p[0];
        else row[0] = k[i];
        row[1 + c[i] - off] = x[i];
        for (int r = 0; r < np; r++) {
            for (int q = 0; q < np; q++) a[r][q] += w * row[r] * row[q];
            a[r][np] += w * row[r] * rhs;
        }
    }
    for (int col = 0; col < np; col++) {
        int piv = col;
        for (int r = col + 1; r < np; r++)
            if (fabs(a[r][col]) > fabs(a[piv][col])) piv = r;
        if (!(fabs(a[piv][col]) > 0)) return -1;
        for (int q = 0; q <= np; q++) {
            const double tmp = a[col][q];
            a[col][q] = a[piv][q], a[piv][q] = tmp;
        }
        for (int r = 0; r < np; r++) {
            if (r == col) continue;
            const double f = a[r][col] / a[col][col];
            for (int q = col; q <= np; q++) a[r][q] -= f * a[col][q];
        }
    }
    for (int r = 0; r < np; r++) p[r + off] = a[r][np] / a[r][r];
    return 0;
}

/* A one-node link as coll_group_link builds it: every step at one latency, collectives
 * and sends at one bus bandwidth. */
static coll_link one_node(double latency_s, double bytes_per_s) {
    coll_link l;
    memset(&l, 0, sizeof l);
    l.latency_s = l.intra_latency_s = latency_s;
    l.bytes_per_s = l.p2p_bytes_per_s = bytes_per_s;
    l.nodes = 1;
    return l;
}

int calib_fit_link(const calib_meas *m, int n, int64_t ranks, double *latency_s,
                   double *bytes_per_s, double eff[CLUSTER_COLLS]) {
    if (ranks < 2 || n < 2 || n > CALIB_MAX_MEAS) return -1;
    double k[CALIB_MAX_MEAS], x[CALIB_MAX_MEAS], t[CALIB_MAX_MEAS];
    int c[CALIB_MAX_MEAS], slot[CLUSTER_COLLS], kind[CLUSTER_COLLS], nc = 0;
    for (int j = 0; j < CLUSTER_COLLS; j++) slot[j] = -1;
    for (int i = 0; i < n; i++) {
        if (m[i].bytes <= 0 || !(m[i].seconds > 0) || !isfinite(m[i].seconds) ||
            (int)m[i].coll < 0 || (int)m[i].coll >= CLUSTER_COLLS)
            return -1;
        t[i] = m[i].seconds;
        if (slot[m[i].coll] < 0) kind[nc] = (int)m[i].coll, slot[m[i].coll] = nc++;
        c[i] = slot[m[i].coll];
    }
    /* coll_time is k latencies + x bytes at the collective's bandwidth, with (k, x) those of
     * the algorithm it picks (the all-reduce's ring or tree) under the link it is given:
     * read them off coll_time at the current fit (it is linear in the latency and in
     * 1 / bandwidth while its pick stands), fit, and repeat until the fit stays put */
    double p[1 + CLUSTER_COLLS];
    p[0] = 1e-6;
    for (int j = 0; j < nc; j++) p[1 + j] = 1e-9;
    for (int round = 0; round < 16; round++) {
        for (int i = 0; i < n; i++) {
            const double lat = p[0], g = p[1 + c[i]];
            /* small steps, so that the pick stays (it moves only at a kink) */
            const double dl = 1e-3 * (lat > 1e-9 ? lat : 1e-9), dg = 1e-3 * g;
            const coll_link base = one_node(lat, 1 / g), more_lat = one_node(lat + dl, 1 / g);
            const coll_link more_inv = one_node(lat, 1 / (g + dg));
            const double t0 = coll_time(m[i].coll, ranks, m[i].bytes, &base);
            k[i] = (coll_time(m[i].coll, ranks, m[i].bytes, &more_lat) - t0) / dl;
            x[i] = (coll_time(m[i].coll, ranks, m[i].bytes, &more_inv) - t0) / dg;
        }
        double q[1 + CLUSTER_COLLS];
        memcpy(q, p, sizeof q);
        if (solve_kx(k, x, c, t, n, nc, 0, q)) return -1;
        if (q[0] < 0) { /* floored at 0: the bandwidths alone refitted */
            q[0] = 0;
            if (solve_kx(k, x, c, t, n, nc, 1, q)) return -1;
        }
        int settled = fabs(q[0] - p[0]) <= 1e-10 * (p[0] > 1e-9 ? p[0] : 1e-9);
        for (int j = 0; j < nc; j++) {
            if (!(q[1 + j] > 0) || !isfinite(q[1 + j])) return -1;
            settled &= fabs(q[1 + j] / p[1 + j] - 1) <= 1e-10;
        }
        if (!isfinite(q[0])) return -1;
        memcpy(p, q, sizeof p);
        if (settled) break;
    }
    /* the link's bus bandwidth is the fastest collective's; each its share of it, and a
     * collective not measured the mean share of those measured (in inverse bandwidth) */
    double g_min = p[1], g_mean = 0;
    for (int j = 0; j < nc; j++) {
        if (p[1 + j] < g_min) g_min = p[1 + j];
        g_mean += p[1 + j] / nc;
    }
    *latency_s = p[0];
    *bytes_per_s = 1 / g_min;
    for (int j = 0; j < CLUSTER_COLLS; j++) eff[j] = g_min / g_mean;
    for (int j = 0; j < nc; j++) eff[kind[j]] = g_min / p[1 + j];
    return 0;
}
