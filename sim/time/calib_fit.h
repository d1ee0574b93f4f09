/* calib_fit.h — the time model's constants fitted to measurements on the machine at
 * hand (`parasim calibrate`, docs/time.md §7 "Calibration"). Each fit inverts the
 * formula the model prices with, so that the fitted spec predicts the measured times:
 *
 *  - GEMMs: the model prices a GEMM of smallest dimension d at peak x eff(d)
 *    (kernel_time.c kt_gemm). Given the measured rate r(d) (forward and backward
 *    FLOPs over their time) at a sweep of d, peak = max r and eff(d) = r(d) / peak.
 *  - attention: forward FLOPs 2 b h s^2 d (the causal half of QK^T and PV), backward
 *    2.5x (kernel_time.c add_attention): eff = those FLOPs / time / peak.
 *  - memory-bound ops: the optimizer moves 32 bytes a parameter in fp32 (kt_optimizer:
 *    read gradient, zero it, read and write weight, m and v): bandwidth = 32 n / time
 *    at efficiency 1.
 *  - links: the ring all-reduce over n ranks takes 2(n-1) latency + 2(n-1) ceil(S/n) /
 *    bandwidth (coll_time.c); a least-squares line through (2(n-1) ceil(S/n), t) gives
 *    1 / bandwidth as its slope and 2(n-1) latency as its intercept. The squares are of
 *    relative errors (weights 1 / t^2): times span 4 decades over a size sweep, and in
 *    absolute terms the largest size alone would decide the latency. coll_time takes the
 *    tree instead where it is cheaper (small messages, n > 2), so the line is fitted
 *    again on the sizes where the first fit has the ring cheaper.
 */
#ifndef PS_CALIB_FIT_H
#define PS_CALIB_FIT_H

#include <stdint.h>

/* Weighted least squares y = a + b x over n >= 2 points with distinct x (weights w > 0,
 * NULL: all 1); -1 otherwise. */
int calib_fit_line(const double *x, const double *y, const double *w, int n, double *a,
                   double *b);

/* The GEMM curve: peak = the largest rate, frac[i] = rate[i] / peak. 0, or -1 when a rate
 * is not positive and finite, or n < 1. */
int calib_gemm_curve(const double *rate, int n, double *peak, double *frac);

/* A ring all-reduce's latency and bandwidth over `ranks` ranks from n measurements of S
 * bytes (sizes) in t seconds. The latency is floored at 0 (a negative intercept: the
 * measurements' noise at small sizes); -1 when the fit fails or the bandwidth is not
 * positive. */
int calib_fit_allreduce(const int64_t *sizes, const double *t, int n, int64_t ranks,
                        double *latency_s, double *bytes_per_s);

#endif
