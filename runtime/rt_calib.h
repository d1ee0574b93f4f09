/* rt_calib.h — timing the CPU backend's kernels and MPI's collectives for `parasim
 * calibrate` (cli/cmd_calibrate.c; the fits are sim/time/calib_fit.h's). Each figure is
 * the median of `reps` timed calls after one untimed warm-up, on random data, with the
 * thread count the caller set, each kernel call after the caches are emptied (as a step's
 * other tensors leave them); buffers come from malloc (a calibration is not a run, so
 * nothing is tracked). Every function returns 0, or -1 when out of memory or MPI failed.
 */
#ifndef PS_RT_CALIB_H
#define PS_RT_CALIB_H

#include <mpi.h>
#include <stdint.h>

/* kern_matmul_fwd and kern_matmul_bwd (both gradients) at N x C -> OC. */
int rt_calib_matmul(int64_t N, int64_t C, int64_t OC, int reps, double *fwd_s, double *bwd_s);
/* kern_attn_fwd and kern_attn_bwd, causal, [B][T][H][D] queries, KVH kv heads. */
int rt_calib_attn(int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D, int reps,
                  double *fwd_s, double *bwd_s);
/* One optimizer pass over n fp32 parameters: kern_adamw, then the gradient zeroed. */
int rt_calib_adamw(int64_t n, int reps, double *seconds);
/* The memory-bound kernels of one transformer layer, forward and backward, summed: two
 * RMSNorms over B T x h (forward, backward), two residual adds forward and two backward,
 * RoPE on the queries (H heads of D) and keys (KVH) forward and backward, SwiGLU over
 * B T x f forward and backward; each call after the caches are emptied. */
int rt_calib_layer_mem(int64_t B, int64_t T, int64_t h, int64_t f, int64_t H, int64_t KVH,
                       int64_t D, int reps, double *seconds);

typedef enum { RT_CALIB_ALL_REDUCE, RT_CALIB_ALL_GATHER, RT_CALIB_REDUCE_SCATTER,
               RT_CALIB_SENDRECV, RT_CALIB_ALL_TO_ALL, RT_CALIB_COLLS } rt_calib_coll;
extern const char *const rt_calib_coll_names[RT_CALIB_COLLS]; /* "all_reduce", ... */

/* One collective of `bytes` fp32 bytes (S: the all-reduce's buffer, the all-gather's
 * output, the reduce-scatter's input, the all-to-all's send buffer; sendrecv: a message to
 * the next rank while receiving from the previous) over comm, every rank calling it
 * through the CPU backend's own collectives (what a run calls); the slowest rank's median
 * after a barrier per call, the same on every rank. */
int rt_calib_coll_time(rt_calib_coll c, MPI_Comm comm, int64_t bytes, int reps,
                       double *seconds);

#endif
