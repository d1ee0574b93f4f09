/* calib_fit.c — fitting the time model's constants to measurements (see calib_fit.h). */
#include "time/calib_fit.h"

#include <math.h>
#include <stdbool.h>

int calib_fit_line(const double *x, const double *y, const double *w, int n, double *a,
                   double *b) {
    if (n < 2) return -1;
    double sw = 0, mx = 0, my = 0;
    for (int i = 0; i < n; i++) {
        const double wi = w ? w[i] : 1;
        if (!(wi > 0)) return -1;
        sw += wi, mx += wi * x[i], my += wi * y[i];
    }
    mx /= sw, my /= sw;
    double sxx = 0, sxy = 0;
    for (int i = 0; i < n; i++) {
        const double wi = w ? w[i] : 1;
        sxx += wi * (x[i] - mx) * (x[i] - mx), sxy += wi * (x[i] - mx) * (y[i] - my);
    }
    if (!(sxx > 0)) return -1;
    *b = sxy / sxx;
    *a = my - *b * mx;
    return isfinite(*a) && isfinite(*b) ? 0 : -1;
}

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

/* The ring's line through the points kept: t = steps latency + x / bandwidth. */
static int fit_ring(const double *x, const double *t, const bool *keep, int n, double steps,
                    double *latency_s, double *bytes_per_s) {
    double xs[64], ts[64], ws[64], a, b;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (keep[i]) xs[m] = x[i], ts[m] = t[i], ws[m++] = t[i] > 0 ? 1 / (t[i] * t[i]) : 0;
    if (calib_fit_line(xs, ts, ws, m, &a, &b) || !(b > 0)) return -1;
    *bytes_per_s = 1.0 / b;
    *latency_s = a > 0 ? a / steps : 0;
    return 0;
}

int calib_fit_allreduce(const int64_t *sizes, const double *t, int n, int64_t ranks,
                        double *latency_s, double *bytes_per_s) {
    if (ranks < 2 || n < 2 || n > 64) return -1;
    double x[64];
    bool keep[64];
    const double steps = 2.0 * (double)(ranks - 1);
    int64_t log2n = 0;
    while ((1LL << log2n) < ranks) log2n++;
    for (int i = 0; i < n; i++) x[i] = steps * (double)((sizes[i] + ranks - 1) / ranks), keep[i] = true;
    if (fit_ring(x, t, keep, n, steps, latency_s, bytes_per_s)) return -1;
    /* coll_time prices the cheaper of the ring and the tree (2 log2(n) latency + 2 S /
     * bandwidth: small messages over more than 2 ranks); fit the ring again on the sizes
     * where it is the cheaper under the last fit, until they stay the same (at most 8
     * rounds) or fewer than two are left */
    for (int round = 0; round < 8; round++) {
        int m = 0, moved = 0;
        for (int i = 0; i < n; i++) {
            const double ring = steps * *latency_s + x[i] / *bytes_per_s;
            const double tree =
                2.0 * (double)log2n * *latency_s + 2.0 * (double)sizes[i] / *bytes_per_s;
            moved |= keep[i] != (ring <= tree);
            keep[i] = ring <= tree;
            m += keep[i];
        }
        if (!moved || m < 2) break;
        if (fit_ring(x, t, keep, n, steps, latency_s, bytes_per_s)) return -1;
    }
    return 0;
}
