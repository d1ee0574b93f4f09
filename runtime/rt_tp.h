/* rt_tp.h — tensor and sequence parallelism in the runtime: the collectives
 * of Megatron-LM's layout, the vocab-parallel embedding and cross-entropy,
 * and the map from a tp shard's parameters to the full model's
 * (docs/runtime.md, "Tensor parallelism").
 *
 * Layout (Shoeybi et al. 2019; Megatron-LM megatron/core/tensor_parallel):
 * q/k/v and w1/w3 are column-parallel (rank t holds heads [t H/tp, (t+1) H/tp),
 * kv heads likewise, and rows [t f/tp, (t+1) f/tp) of w1 and w3), o and w2
 * row-parallel (the matching input columns), norms replicated; the word
 * embedding and the output head are vocab-parallel (rank t holds rows
 * [t Vr, (t+1) Vr) of the vocabulary, Vr = ceil(V / tp), rows past V are
 * padding that no token reads). Without sequence parallelism the forward
 * all-reduces after o and w2 (Megatron's g) and the backward all-reduces the
 * input gradient of q/k/v and w1/w3 (f); with it (sp) the norm regions hold
 * only the rank's tokens ([t N/tp, (t+1) N/tp) of the micro-batch), an
 * all-gather precedes each column-parallel linear and a reduce-scatter
 * follows each row-parallel one (Korthikanti et al. 2022).
 *
 * Activation collectives travel in the activations' dtype (bf16 under
 * bf16-mixed: rounded once, summed in fp32 per step as NCCL does), the
 * cross-entropy's per-token statistics and the sequence-parallel norm weight
 * gradients in fp32. Each call adds to the measured collectives of group tp
 * (calls, the size S handed to the backend, seconds), which the profile sets
 * beside the replay's count of the same ops' tp_* fields.
 */
#ifndef PS_RT_TP_H
#define PS_RT_TP_H

#include <stdbool.h>
#include <stdint.h>

#include "program/program.h"
#include "rt_backend.h"
#include "rt_exec.h"
#include "rt_mem.h"

typedef struct {
    const rt_backend *be;
    rt_group *g;         /* the tp group (NULL: tp = 1) */
    rt_mem *mem;         /* temporaries are workspace */
    int size, rank;      /* tp degree, this rank's place */
    bool sp;             /* sequence parallelism */
    rt_dtype act_dt;     /* what activation collectives carry */
    rt_coll_stat *stats; /* [COLL_SEND + 1]: the measured tp collectives (may be NULL) */
    int failed;          /* a collective or an allocation failed; why in `why` */
    char why[256];
} rt_tp;

/* Rows of the vocabulary a tp rank holds (Vr = ceil(V / tp)), the first one,
 * and how many of them are real (not padding). */
int64_t rt_tp_vocab_rows(const program *p);
void rt_tp_vocab_range(const program *p, int rank, int64_t *first, int64_t *valid);
/* The same for a vocabulary of V rows over tp ranks (the inference engine's, which has no
 * program): returns Vr = ceil(V / tp). */
int64_t rt_tp_vocab_split(int64_t V, int64_t tp, int rank, int64_t *first, int64_t *valid);

/* The collectives (fp32 views; n, n_local in elements). all_reduce sums in
 * place in the activations' dtype, all_reduce_f32 in fp32, all_reduce_max
 * takes the maximum (fp32); all_gather puts every rank's n_local elements of
 * `local` one after another in `full`; reduce_scatter sums `full` and keeps
 * this rank's n_local-element part in `local`. 0, or -1 with tp->why. */
int rt_tp_all_reduce(rt_tp *tp, float *x, int64_t n);
int rt_tp_all_reduce_f32(rt_tp *tp, float *x, int64_t n);
int rt_tp_all_reduce_max(rt_tp *tp, float *x, int64_t n);
int rt_tp_all_gather(rt_tp *tp, float *full, const float *local, int64_t n_local);
int rt_tp_reduce_scatter(rt_tp *tp, float *local, const float *full, int64_t n_local);

/* Vocab-parallel embedding: out[N, h] = the rows of wte (this rank's Vr rows)
 * of the tokens it holds, 0 for the others (the sum over tp is the lookup);
 * backward adds dout's rows into dwte for those tokens. */
void rt_tp_embed_fwd(const rt_tp *tp, const program *p, float *out, const int32_t *tokens,
                     const float *wte, int64_t N);
void rt_tp_embed_bwd(const rt_tp *tp, const program *p, float *dwte, const float *dout,
                     const int32_t *tokens, int64_t N);

/* Vocab-parallel cross-entropy over logits[N, valid] (this rank's columns,
 * vocabulary rows first .. first + valid): the row maximum, the sum of
 * exponentials and the target logit all-reduced over tp, never the logits
 * (Megatron-LM's vocab_parallel_cross_entropy). probs[N, valid] = this rank's
 * softmax columns, losses[N] the token losses (the same on every tp rank). */
int rt_tp_xent_fwd(rt_tp *tp, const program *p, float *probs, float *losses, const float *logits,
                   const int32_t *targets, int64_t N);
/* dlogits[N, valid] = scale * (probs - onehot(target) in this rank's columns). */
void rt_tp_xent_bwd(const rt_tp *tp, const program *p, float *dlogits, const float *probs,
                    const int32_t *targets, float scale, int64_t N);

/* Logit distillation over the same split (kern_kd.h; docs/distillation.md "Running it").
 * The teacher's distribution at T from its logits zt[N][ldz] (this rank's columns first):
 * top_k 0, qt[N][valid] = softmax(zt / T) with the row maximum and sum all-reduced; top_k
 * k, the teacher's rows all-gathered (fp32), the global top-k of each (kern_kd_teacher),
 * and idx, qt [N][k] holding this rank's entries at local indices (another rank's: index
 * 0, value 0, which the backward's subtraction and the KL skip). The student's forward:
 * qs[N][valid] = softmax(zs / T) (all-reduced maximum and sum), the KL summed over the
 * ranks, losses[n] (the cross-entropy of rt_tp_xent_fwd on entry) = alpha CE + (1 - alpha)
 * T^2 KL. The backward is local: rt_tp_xent_bwd scaled by alpha, and kern_kd_bwd's soft
 * term on this rank's columns. */
int rt_tp_kd_teacher(rt_tp *tp, const program *p, float *qt, int32_t *idx, const float *zt,
                     int64_t ldz, int64_t N, const kern_kd_cfg *c);
int rt_tp_kd_fwd(rt_tp *tp, const program *p, float *qs, float *losses, const float *zs,
                 const float *qt, const int32_t *idx, int64_t N, const kern_kd_cfg *c);

/* Flat parameter i of role r on expert-parallel rank ep_rank (0 without ep), as an
 * index of the one-rank model's flat space (rt_model_init_values), or -1 for
 * vocabulary padding. Units are found by name ("embed", "layer.7", "head"), so a
 * pipeline stage's units map too; a MoE layer's router follows its dense tensors,
 * and its held experts are the one-rank model's experts ep_rank * E/ep ... */
int64_t rt_tp_full_index(const program *p, const prog_role *r, int ep_rank, int64_t i);

/* rt_model_init_values for role r: out[k] = the initial value of role
 * element first + k, the one-rank model's value of its full index (0 for
 * padding), so every tp degree starts from the same weights. */
void rt_tp_init_values(const program *p, const prog_role *r, int ep_rank, uint64_t seed,
                       int64_t first, int64_t n, float *out);

/* The test hook of docs/runtime.md ("Checking a gradient"): when the
 * environment names a directory in PARASIM_DUMP_GRADS, append the n values v
 * of role elements [lo, lo + n) to DIR/<what>.<world rank>.bin as records of
 * (int64 full-model index, float32 value), padding left out; nothing
 * otherwise. The executor dumps the reduced gradients its optimizer step 1
 * reads ("grads") and the weights after the last step ("params"). */
void rt_tp_dump(const program *p, const prog_role *r, int ep_rank, const char *what, int rank,
                int64_t lo, const float *v, int64_t n);

#endif
