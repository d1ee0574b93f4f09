/* kern_kd.h — logit knowledge distillation (Hinton, Vinyals & Dean 2015,
 * "Distilling the Knowledge in a Neural Network", §2; docs/distillation.md
 * "Loss"), for one rank holding the whole vocabulary of each row.
 *
 * Per token n, with student logits zs[n][V], teacher logits zt[n][V], label y,
 * temperature T > 0 and weight alpha in [0, 1]:
 *   ps = softmax(zs)          qs = softmax(zs / T)
 *   qt = softmax(zt / T), or with top-k: softmax over the teacher's k largest
 *        logits (ties: the lower index first), 0 elsewhere
 *   loss[n] = alpha * CE(y, ps) + (1 - alpha) * T^2 * KL(qt || qs)
 *   KL(qt || qs) = sum_v qt[v] (log qt[v] - log qs[v]), with 0 log 0 = 0,
 *   every log computed from logits (logsumexp), so it stays finite where a
 *   probability underflows.
 *   dloss[n]/dzs[n] = alpha (ps - onehot(y)) + (1 - alpha) T (qs - qt)
 * The T^2 keeps the soft term's gradient scale independent of T (Hinton §2).
 * alpha = 1 is exactly kern_xent's loss and gradient (the soft term is not
 * computed). PyTorch: alpha * F.cross_entropy(zs, y) + (1 - alpha) * T * T *
 * F.kl_div(F.log_softmax(zs / T, -1), qt, reduction="none").sum(-1).
 */
#ifndef PS_KERN_KD_H
#define PS_KERN_KD_H

#include <stdint.h>

typedef struct {
    float T;       /* temperature, > 0 */
    float alpha;   /* weight of the hard-label cross-entropy, in [0, 1] */
    int64_t top_k; /* 0: the whole vocabulary; 1..V: the teacher's k largest logits */
} kern_kd_cfg;

/* The teacher's distribution at T, stored for the student's backward.
 * top_k = 0: qt[N][V] fp32 (idx unused, may be NULL).
 * top_k = k: idx[N][k] int32 (descending logit, ties lower index first) and
 *            qt[N][k] fp32, the renormalised probabilities of those entries. */
void kern_kd_teacher(float *qt, int32_t *idx, const float *zt, int64_t N, int64_t V,
                     const kern_kd_cfg *c);

/* Student forward: ps[N][V] = softmax(zs), qs[N][V] = softmax(zs / T) (both
 * saved for the backward; qs untouched and may be NULL when alpha = 1),
 * losses[N] as above, from the teacher's qt/idx of kern_kd_teacher. */
void kern_kd_fwd(float *ps, float *qs, float *losses, const float *zs, const int32_t *targets,
                 const float *qt, const int32_t *idx, int64_t N, int64_t V, const kern_kd_cfg *c);

/* dzs[n] += scale * (alpha (ps - onehot(y)) + (1 - alpha) T (qs - qt)); scale =
 * dloss/dlosses[n] (1 / tokens of the global batch for a mean loss). */
void kern_kd_bwd(float *dzs, const float *ps, const float *qs, const int32_t *targets,
                 const float *qt, const int32_t *idx, float scale, int64_t N, int64_t V,
                 const kern_kd_cfg *c);

#endif
