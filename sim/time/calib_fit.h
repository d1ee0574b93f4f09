/* calib_fit.h — the time model's constants fitted to measurements on the machine at
 * hand (`parasim calibrate`, docs/time.md §7 "Calibration"). Each fit inverts the
 * formula the model prices with, so that the fitted spec predicts the measured times:
 *
 *  - GEMMs: the model prices a GEMM of smallest dimension d at peak x eff(d)
 *    (kernel_time.c kt_gemm). Given the measured rate r(d) (forward and backward
 *    FLOPs over their time) at a sweep of d, peak = max r and eff(d) = r(d) / peak.
 *  - attention: forward FLOPs 2 b h s^2 d (the causal half of QK^T and PV), backward
 *    2.5x (kernel_time.c add_attention): eff = those FLOPs / time / peak.
 *  - memory-bound ops: kernel_time.c prices each at its bytes / (bandwidth x efficiency):
 *    the optimizer at 32 bytes a parameter in fp32 (read gradient, zero it, read and write
 *    weight, m and v) at efficiency.optimizer, a layer's norms, residual adds, RoPE and
 *    SwiGLU at kt_layer's byte counts and efficiency.hbm. The optimizer's rate is the
 *    bandwidth (its efficiency 1), the layer's kernels' rate over it their efficiency.
 *  - links: coll_time prices each collective as k latencies and x bytes at the bus
 *    bandwidth times the collective's efficiency (links.collectives), (k, x) those of the
 *    algorithm it picks; the link has one latency and each collective its own bandwidth,
 *    so one latency and one inverse bandwidth per collective measured are fitted to all
 *    the measurements at once, t = k latency + x / bandwidth_c, by least squares, with k
 *    and x read off coll_time itself (no second copy of its formulas) at the current fit
 *    until the fit settles (the all-reduce's ring or tree pick can move with it). The link
 *    bandwidth is the fastest collective's, each collective's efficiency its bandwidth
 *    over that (as the GEMM curve is each rate over the peak). The squares are of
 *    relative errors (weights 1 / t^2): times span 4 decades over a size sweep, and in
 *    absolute terms the largest size alone would decide the latency.
 */
#ifndef PS_CALIB_FIT_H
#define PS_CALIB_FIT_H

#include <stdint.h>

#include "cost/comm.h"
#include "spec/cluster.h"

/* The GEMM curve: peak = the largest rate, frac[i] = rate[i] / peak. 0, or -1 when a rate
 * is not positive and finite, or n < 1. */
int calib_gemm_curve(const double *rate, int n, double *peak, double *frac);

/* One collective measured on the link: its kind (COLL_SEND: a sendrecv), its buffer S
 * (coll_time's bytes) and its seconds. */
typedef struct {
    comm_coll coll;
    int64_t bytes;
    double seconds;
} calib_meas;
#define CALIB_MAX_MEAS 128

/* The one-node link's latency, bus bandwidth and per-collective efficiencies (cluster.h
 * links.collectives, comm_coll order) over `ranks` ranks with which coll_time best prices
 * the n measured collectives, by weighted least squares on relative errors. A collective
 * not measured gets the measured ones' mean efficiency (in inverse bandwidth). The latency
 * is floored at 0; -1 when a measurement is not positive, or the fit fails or gives a
 * bandwidth that is not positive. */
int calib_fit_link(const calib_meas *m, int n, int64_t ranks, double *latency_s,
                   double *bytes_per_s, double eff[CLUSTER_COLLS]);

#endif
