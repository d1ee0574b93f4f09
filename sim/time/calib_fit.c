/* calib_fit.c — fitting the time model's constants to measurements (see calib_fit.h). */
#include "time/calib_fit.h"

#include <math.h>
#include <stdbool.h>

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

/* Weighted least squares t = k latency + x / bandwidth through the points kept (no
 * intercept: the latency's count k is each point's own); the latency floored at 0 (then
 * the bandwidth alone refitted). */
static int fit_kx(const double *k, const double *x, const double *t, const bool *keep, int n,
                  double *latency_s, double *bytes_per_s) {
    double skk = 0, skx = 0, sxx = 0, skt = 0, sxt = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!keep[i]) continue;
        if (!(t[i] > 0) || !isfinite(t[i])) return -1;
        const double w = 1 / (t[i] * t[i]);
        skk += w * k[i] * k[i], skx += w * k[i] * x[i], sxx += w * x[i] * x[i];
        skt += w * k[i] * t[i], sxt += w * x[i] * t[i];
        m++;
    }
    const double det = skk * sxx - skx * skx;
    if (m < 2 || !(sxx > 0)) return -1;
    double a = det > 0 ? (skt * sxx - skx * sxt) / det : -1;
    double g = det > 0 ? (skk * sxt - skx * skt) / det : 0;
    if (a < 0) a = 0, g = sxt / sxx;
    if (!(g > 0) || !isfinite(g) || !isfinite(a)) return -1;
    *latency_s = a;
    *bytes_per_s = 1 / g;
    return 0;
}

static int64_t ceil_log2(int64_t n) {
    int64_t k = 0;
    while ((1LL << k) < n) k++;
    return k;
}

int calib_fit_link(const calib_meas *m, int n, int64_t ranks, double *latency_s,
                   double *bytes_per_s) {
    if (ranks < 2 || n < 2 || n > CALIB_MAX_MEAS) return -1;
    double k[CALIB_MAX_MEAS], x[CALIB_MAX_MEAS], t[CALIB_MAX_MEAS];
    double kt[CALIB_MAX_MEAS], xt[CALIB_MAX_MEAS]; /* an all-reduce's as a tree */
    bool keep[CALIB_MAX_MEAS], tree[CALIB_MAX_MEAS];
    const double n1 = (double)(ranks - 1);
    for (int i = 0; i < n; i++) {
        if (m[i].bytes <= 0) return -1;
        const double chunk = (double)((m[i].bytes + ranks - 1) / ranks);
        t[i] = m[i].seconds, keep[i] = true, tree[i] = false;
        kt[i] = 2.0 * (double)ceil_log2(ranks), xt[i] = 2.0 * (double)m[i].bytes;
        switch (m[i].coll) {
        case CALIB_ALL_REDUCE: k[i] = 2 * n1, x[i] = 2 * n1 * chunk; break;
        case CALIB_ALL_GATHER:
        case CALIB_REDUCE_SCATTER: k[i] = n1, x[i] = n1 * chunk; break;
        case CALIB_SENDRECV: k[i] = 1, x[i] = (double)m[i].bytes; break;
        default: return -1;
        }
    }
    if (fit_kx(k, x, t, keep, n, latency_s, bytes_per_s)) return -1;
    /* coll_time prices an all-reduce as the cheaper of the ring and the tree (2 log2(n)
     * latency + 2 S / bandwidth: small messages over more than 2 ranks): price each one
     * as the model would under the last fit, and fit again until that stays the same */
    for (int round = 0; round < 8; round++) {
        int moved = 0;
        double kk[CALIB_MAX_MEAS], xx[CALIB_MAX_MEAS];
        for (int i = 0; i < n; i++) {
            bool tr = false;
            if (m[i].coll == CALIB_ALL_REDUCE) {
                const double ring = k[i] * *latency_s + x[i] / *bytes_per_s;
                const double tre = kt[i] * *latency_s + xt[i] / *bytes_per_s;
                tr = tre < ring;
            }
            moved |= tr != tree[i];
            tree[i] = tr;
            kk[i] = tr ? kt[i] : k[i], xx[i] = tr ? xt[i] : x[i];
        }
        if (!moved) break;
        if (fit_kx(kk, xx, t, keep, n, latency_s, bytes_per_s)) return -1;
    }
    return 0;
}
