/* rt_ring.h — context parallelism in the runtime: the causal load-balanced
 * (zig-zag) token layout and ring attention over the cp group
 * (docs/runtime.md, "Context parallelism").
 *
 * Layout (Megatron-LM / TransformerEngine): each sequence of T tokens is cut
 * into 2*cp chunks and cp rank c holds chunks c and 2*cp-1-c, so every rank
 * has the same causal work. Everything but attention is token-local: each
 * rank embeds, normalises, projects and scores its own T/cp tokens; RoPE
 * turns them by their global positions.
 *
 * Ring attention (Liu et al. 2023; TE's AttnFuncWithCPAndKVP2P): forward
 * computes the local queries against the rank's own K/V block, then cp-1
 * times passes the block it holds to the next rank of the ring and takes the
 * previous rank's, merging each block into (out, lse) by the log-sum-exp rule
 * (kern_attn_block_fwd). Backward passes K/V the same way; the dK/dV of a
 * block travels with it, each rank adding its share, and after cp-1 passes
 * of dK/dV every block's sum is back with its owner (the owner's own share
 * stays local). Blocks travel in the activation dtype, packed K then V;
 * every pass is one send of act_kv_block_bytes to the next rank and one
 * receive from the previous (the backend's sendrecv), counted here so that
 * the executor reports them as the cp group's sends. The pass buffers (2 in
 * forward, 4 in backward: docs/plan-format.md §3) are communication buffers
 * (MEM_BUFFERS); fp32 copies of bf16 blocks and the kernel's scratch are
 * workspace.
 */
#ifndef PS_RT_RING_H
#define PS_RT_RING_H

#include <stdint.h>

#include "program/program.h"
#include "rt_backend.h"
#include "rt_data.h"
#include "rt_mem.h"

struct rt_model;

typedef struct rt_ring {
    rt_group *g; /* the cp group, ordered by cp rank */
    int cp, rank;
    int64_t seq, T; /* the sequence, and the rows one rank holds (seq / cp) */
    int64_t *pos;   /* [cp][T]: the global position of each rank's rows */
    int32_t *full;  /* [2][B * seq]: a micro-batch's whole sequences, before the split */
    /* passes since the executor last took them (rt_exec.c ring_stats adds them
     * to the cp group's send statistics and zeroes them) */
    int64_t calls, bytes;
    double seconds;
} rt_ring;

/* Rank c's rows of a sequence of seq tokens split over cp ranks: pos[T/cp]. */
void rt_ring_positions(int64_t *pos, int64_t seq, int64_t cp, int64_t c);

/* With cp > 1, set up the ring of this rank (cp rank `rank` of group g) and
 * attach it to the model (m->ring, m->pos); with cp = 1 nothing. 0, or -1
 * with err set. rt_ring_free releases it (safe on a ring never set up). */
int rt_ring_attach(rt_ring *r, struct rt_model *m, const program *p, rt_group *g, int rank,
                   ps_err *err);
void rt_ring_free(rt_ring *r);

/* Sequences first .. first+B-1 as rt_data_batch gives them, this rank's rows
 * only (tokens and targets [B][T]). */
void rt_ring_batch(rt_ring *r, const rt_data *d, int64_t first, int64_t B, int32_t *tokens,
                   int32_t *targets);

/* Attention of this rank's rows over the whole causal sequence. q, out: fp32
 * [B][T][H][D]; k, v: fp32 [B][T][KVH][D] and k_store, v_store the same in the
 * activation dtype dt (what is passed); lse fp32 [B][T][H]. Backward adds
 * into dq, dk, dv (the rank's own K/V rows, every rank's share summed).
 * 0, or -1 with err set (out of memory, a failed pass). */
int rt_ring_attn_fwd(rt_ring *r, const rt_backend *be, rt_mem *mem, rt_dtype dt, float *out,
                     float *lse, const float *q, const float *k, const float *v,
                     const void *k_store, const void *v_store, int64_t B, int64_t H, int64_t KVH,
                     int64_t D, ps_err *err);
int rt_ring_attn_bwd(rt_ring *r, const rt_backend *be, rt_mem *mem, rt_dtype dt, float *dq,
                     float *dk, float *dv, const float *dout, const float *q, const float *k,
                     const float *v, const void *k_store, const void *v_store, const float *out,
                     const float *lse, int64_t B, int64_t H, int64_t KVH, int64_t D, ps_err *err);

#endif
