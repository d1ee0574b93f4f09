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

/* Weighted least squares t = k latency + x / bandwidth over the n points (no intercept:
 * each point has its own count of latencies k); the latency floored at 0 (then the
 * bandwidth alone refitted). */
static int fit_kx(const double *k, const double *x, const double *t, int n, double *latency_s,
                  double *bytes_per_s) {
    double skk = 0, skx = 0, sxx = 0, skt = 0, sxt = 0;
    for (int i = 0; i < n; i++) {
        const double w = 1 / (t[i] * t[i]);
        skk += w * k[i] * k[i], skx += w * k[i] * x[i], sxx += w * x[i] * x[i];
        skt += w * k[i] * t[i], sxt += w * x[i] * t[i];
    }
    const double det = skk * sxx - skx * skx;
    if (!(sxx > 0)) return -1;
    double a = det > 0 ? (skt * sxx - skx * sxt) / det : -1;
    double g = det > 0 ? (skk * sxt - skx * skt) / det : 0;
    if (a < 0) a = 0, g = sxt / sxx;
    if (!(g > 0) || !isfinite(g) || !isfinite(a)) return -1;
    *latency_s = a;
    *bytes_per_s = 1 / g;
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
                   double *bytes_per_s) {
    if (ranks < 2 || n < 2 || n > CALIB_MAX_MEAS) return -1;
    double k[CALIB_MAX_MEAS], x[CALIB_MAX_MEAS], t[CALIB_MAX_MEAS];
    for (int i = 0; i < n; i++) {
        if (m[i].bytes <= 0 || !(m[i].seconds > 0) || !isfinite(m[i].seconds)) return -1;
        t[i] = m[i].seconds;
    }
    /* coll_time is k latencies + x bytes at the bandwidth, with (k, x) those of the
     * algorithm it picks (the all-reduce's ring or tree) under the link it is given: read
     * them off coll_time at the current fit (it is linear in the latency and in 1 /
     * bandwidth while its pick stands), fit, and repeat until the fit stays put */
    double lat = 1e-6, bw = 1e9;
    for (int round = 0; round < 16; round++) {
        /* small steps, so that the pick stays (it moves only at a kink) */
        const double dl = 1e-3 * (lat > 1e-9 ? lat : 1e-9), dg = 1e-3 / bw;
        const coll_link base = one_node(lat, bw), more_lat = one_node(lat + dl, bw);
        const coll_link more_inv = one_node(lat, 1 / (1 / bw + dg));
        for (int i = 0; i < n; i++) {
            const double t0 = coll_time(m[i].coll, ranks, m[i].bytes, &base);
            k[i] = (coll_time(m[i].coll, ranks, m[i].bytes, &more_lat) - t0) / dl;
            x[i] = (coll_time(m[i].coll, ranks, m[i].bytes, &more_inv) - t0) / dg;
        }
        double nl, nb;
        if (fit_kx(k, x, t, n, &nl, &nb)) return -1;
        const int settled = fabs(nl - lat) <= 1e-10 * (lat > 1e-9 ? lat : 1e-9) &&
                            fabs(nb / bw - 1) <= 1e-10;
        lat = nl, bw = nb;
        if (settled) break;
    }
    *latency_s = lat;
    *bytes_per_s = bw;
    return 0;
}
