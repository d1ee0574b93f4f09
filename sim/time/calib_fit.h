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
 *  - links: each collective costs k latencies and x bytes at the bus bandwidth (coll_time.c:
 *    the ring all-reduce over n ranks 2(n-1) and 2(n-1) ceil(S/n), all-gather and
 *    reduce-scatter n-1 and (n-1) ceil(S/n), a send 1 and S); the link has one latency and
 *    one bandwidth for all of them, so both are fitted to every collective the runtime
 *    uses at once, t = k latency + x / bandwidth, by least squares. The squares are of
 *    relative errors (weights 1 / t^2): times span 4 decades over a size sweep, and in
 *    absolute terms the largest size alone would decide the latency. coll_time takes the
 *    tree for an all-reduce where it is cheaper (small messages, n > 2), so those points
 *    are priced as trees under the fit and the fit repeated until that settles.
 */
#ifndef PS_CALIB_FIT_H
#define PS_CALIB_FIT_H

#include <stdint.h>

/* The GEMM curve: peak = the largest rate, frac[i] = rate[i] / peak. 0, or -1 when a rate
 * is not positive and finite, or n < 1. */
int calib_gemm_curve(const double *rate, int n, double *peak, double *frac);

/* One collective measured on the link: its kind, its buffer S (coll_time's bytes) and
 * its seconds. */
typedef enum { CALIB_ALL_REDUCE, CALIB_ALL_GATHER, CALIB_REDUCE_SCATTER, CALIB_SENDRECV } calib_coll;
typedef struct {
    calib_coll coll;
    int64_t bytes;
    double seconds;
} calib_meas;
#define CALIB_MAX_MEAS 128

/* The link's latency and bus bandwidth over `ranks` ranks that price n measured
 * collectives of any kinds as coll_time does (ring all-reduce 2(n-1) latencies and
 * 2(n-1) ceil(S/n) bytes, or the tree where it is cheaper; all-gather and reduce-scatter
 * n-1 and (n-1) ceil(S/n); sendrecv 1 and S), by weighted least squares on relative
 * errors. The latency is floored at 0; -1 when the fit fails or the bandwidth is not
 * positive. */
int calib_fit_link(const calib_meas *m, int n, int64_t ranks, double *latency_s,
                   double *bytes_per_s);

#endif
