/* rt_backend.h — what the executor needs from a machine, as a table of
 * function pointers (ggml's backend idea): raw memory, the model's kernels
 * (GEMMs included), a clock, and collectives on process groups. The CPU
 * backend maps them to OpenBLAS + the C kernels (kernels/kern.h) and MPI;
 * callers never branch on the backend.
 *
 * Compute takes fp32 operands (kern.h's shapes and accumulate-into-gradient
 * convention); storage dtypes (bf16) are converted at the edges by the model.
 * Collectives take a group, a dtype and element counts; all of them block
 * (the CPU backend has one stream per rank; comm/compute overlap is left to
 * the CUDA backend's streams).
 */
#ifndef PS_RT_BACKEND_H
#define PS_RT_BACKEND_H

#include <stdint.h>

#include "kern_kd.h"
#include "program/program.h"

typedef enum { RT_F32, RT_BF16 } rt_dtype;

static inline int64_t rt_dtype_bytes(rt_dtype t) { return t == RT_BF16 ? 2 : 4; }
/* The runtime stores a plan dtype as fp32 or bf16 (fp16/fp8 plans are refused by emit). */
static inline rt_dtype rt_dtype_of(ps_dtype d) { return d == DT_BF16 ? RT_BF16 : RT_F32; }

typedef struct rt_group rt_group; /* a process group (an MPI sub-communicator) */

typedef struct {
    const char *name; /* "cpu", "cuda" */
    /* raw memory: zero-filled, 64-byte aligned (the tracked allocator sits on
     * top); free takes the size that was asked for; trim returns cached blocks */
    void *(*mem_alloc)(int64_t bytes);
    void (*mem_free)(void *p, int64_t bytes);
    void (*mem_trim)(void);
    void (*synchronize)(void);
    double (*now_seconds)(void);
    void (*set_threads)(int threads); /* compute threads of this rank */

    /* kernels (kern.h) */
    void (*matmul_fwd)(float *out, const float *inp, const float *w, int64_t N, int64_t C,
                       int64_t OC);
    void (*matmul_bwd)(float *dinp, float *dw, const float *dout, const float *inp,
                       const float *w, int64_t N, int64_t C, int64_t OC);
    void (*embed_fwd)(float *out, const int32_t *tokens, const float *wte, int64_t N, int64_t C);
    void (*embed_bwd)(float *dwte, const float *dout, const int32_t *tokens, int64_t N,
                      int64_t C);
    void (*rmsnorm_fwd)(float *out, float *rstd, const float *inp, const float *w, int64_t N,
                        int64_t C, float eps);
    void (*rmsnorm_bwd)(float *dinp, float *dw, const float *dout, const float *inp,
                        const float *w, const float *rstd, int64_t N, int64_t C);
    /* pos[T]: each row's position (NULL: row t is at t) */
    void (*rope_fwd)(float *x, const int64_t *pos, int64_t B, int64_t T, int64_t NH, int64_t D,
                     float theta);
    void (*rope_bwd)(float *dx, const int64_t *pos, int64_t B, int64_t T, int64_t NH, int64_t D,
                     float theta);
    int64_t (*attn_scratch_floats)(int64_t T);
    void (*attn_fwd)(float *out, float *lse, const float *q, const float *k, const float *v,
                     int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D, float *scratch);
    void (*attn_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *q,
                     const float *k, const float *v, const float *out, const float *lse,
                     int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D, float *scratch);
    /* one block of ring attention (context parallelism) */
    int64_t (*attn_block_scratch_floats)(int64_t Tq, int64_t Tk, int64_t D);
    void (*attn_block_fwd)(float *out, float *lse, const float *q, const float *k,
                           const float *v, const int64_t *qpos, const int64_t *kpos, int64_t B,
                           int64_t Tq, int64_t Tk, int64_t H, int64_t KVH, int64_t D,
                           float *scratch);
    void (*attn_block_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse,
                           const int64_t *qpos, const int64_t *kpos, int64_t B, int64_t Tq,
                           int64_t Tk, int64_t H, int64_t KVH, int64_t D, float *scratch);
    void (*swiglu_fwd)(float *out, const float *a, const float *b, int64_t n);
    void (*swiglu_bwd)(float *da, float *db, const float *dout, const float *a, const float *b,
                       int64_t n);
    void (*xent_fwd)(float *probs, float *losses, const float *logits, const int32_t *targets,
                     int64_t N, int64_t V);
    void (*xent_bwd)(float *dlogits, const float *probs, const int32_t *targets, float scale,
                     int64_t N, int64_t V);
    /* logit distillation (kern_kd.h) */
    void (*kd_teacher)(float *qt, int32_t *idx, const float *zt, int64_t N, int64_t V,
                       const kern_kd_cfg *c);
    void (*kd_fwd)(float *ps, float *qs, float *losses, const float *zs, const int32_t *targets,
                   const float *qt, const int32_t *idx, int64_t N, int64_t V, const kern_kd_cfg *c);
    void (*kd_bwd)(float *dzs, const float *ps, const float *qs, const int32_t *targets,
                   const float *qt, const int32_t *idx, float scale, int64_t N, int64_t V,
                   const kern_kd_cfg *c);
    void (*add)(float *out, const float *a, const float *b, int64_t n);
    void (*adamw)(float *p, float *m, float *v, const float *g, int64_t n, float lr, float b1,
                  float b2, float eps, float wd, int step);
    /* sum of x[i]^2 in double: the gradient norm's square (not finite when an x is not) */
    double (*sum_squares)(const float *x, int64_t n);
    void (*to_bf16)(uint16_t *out, const float *in, int64_t n);
    void (*from_bf16)(float *out, const uint16_t *in, int64_t n);

    /* collectives on a group; counts in elements of dtype; 0 or -1, with the reason
     * (the communication library's error text) from coll_error */
    int (*all_reduce)(rt_group *g, void *buf, int64_t n, rt_dtype t);
    /* in-place elementwise maximum of n fp32 values (vocab-parallel cross-entropy) */
    int (*all_reduce_max)(rt_group *g, float *buf, int64_t n);
    /* reduce the n-element send range; rank r receives counts[r] elements (the
     * ranks' parts are consecutive in send) into recv */
    int (*reduce_scatter)(rt_group *g, const void *send, void *recv, const int64_t *counts,
                          rt_dtype t);
    /* rank r's counts[r] elements (send) land at offset displs[r] of recv;
     * send == NULL: in place (already at recv + displs[rank]) */
    int (*all_gather)(rt_group *g, const void *send, void *recv, const int64_t *counts,
                      const int64_t *displs, rt_dtype t);
    int (*broadcast)(rt_group *g, void *buf, int64_t n, rt_dtype t, int root);
    int (*reduce)(rt_group *g, const void *send, void *recv, int64_t n, rt_dtype t, int root);
    int (*send)(rt_group *g, const void *buf, int64_t n, rt_dtype t, int peer);
    int (*recv)(rt_group *g, void *buf, int64_t n, rt_dtype t, int peer);
    /* pipeline point-to-point (rt_pipe.c): isend starts sending n elements to
     * group rank peer under tag and returns a handle in *req; recv_tag blocks
     * until the matching message is in buf; wait finishes a send (block 0:
     * only tests): 1 done (the handle is released), 0 still pending, -1 failed */
    int (*isend)(rt_group *g, const void *buf, int64_t n, rt_dtype t, int peer, int tag,
                 void **req);
    int (*recv_tag)(rt_group *g, void *buf, int64_t n, rt_dtype t, int peer, int tag);
    int (*wait)(void **req, int block);
    /* n elements to peer `to` and n from peer `from` at once (a ring step: no deadlock
     * when every rank of the ring calls it) */
    int (*sendrecv)(rt_group *g, const void *send, int to, void *recv, int from, int64_t n,
                    rt_dtype t);
    /* all-to-all: send holds size blocks of n elements, block j for group rank j;
     * recv gets block j from group rank j (expert parallelism's dispatch and combine) */
    int (*all_to_all)(rt_group *g, const void *send, void *recv, int64_t n, rt_dtype t);
    /* mixture-of-experts kernels (kern.h) */
    void (*router_fwd)(float *probs, int32_t *idx, float *gate, const float *logits, int64_t N,
                       int64_t E, int64_t K);
    void (*router_bwd)(float *dlogits, const float *dgate, const float *dprobs,
                       const float *probs, const int32_t *idx, const float *gate, int64_t N,
                       int64_t E, int64_t K);
    double (*moe_aux_fwd)(const float *probs, const int64_t *count, int64_t N, int64_t E,
                          int64_t K, float alpha);
    void (*moe_aux_bwd)(float *dprobs, const int64_t *count, float scale, int64_t N, int64_t E,
                        int64_t K, float alpha);
    void (*moe_slots)(int32_t *slot, int64_t *count, const int32_t *idx, int64_t N, int64_t K,
                      int64_t E, int64_t cap);
    void (*moe_permute_fwd)(float *buf, const float *x, const int32_t *slot, int64_t N,
                            int64_t K, int64_t H, int64_t rows);
    void (*moe_permute_bwd)(float *dx, const float *dbuf, const int32_t *slot, int64_t N,
                            int64_t K, int64_t H);
    void (*moe_unpermute_fwd)(float *out, const float *buf, const float *gate,
                              const int32_t *slot, int64_t N, int64_t K, int64_t H);
    void (*moe_unpermute_bwd)(float *dbuf, float *dgate, const float *dout, const float *buf,
                              const float *gate, const int32_t *slot, int64_t N, int64_t K,
                              int64_t H);
    const char *(*coll_error)(void); /* why the last collective returned -1 */
} rt_backend;

/* The CPU backend (OpenBLAS, C kernels, MPI). */
extern const rt_backend rt_backend_cpu;

#endif
