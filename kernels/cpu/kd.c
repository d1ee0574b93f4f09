/* kd.c — logit knowledge distillation (Hinton, Vinyals & Dean 2015, §2;
 * formulas in kern_kd.h, derivation and numerical care in
 * docs/distillation.md "Loss"):
 *   loss[n] = alpha CE(y, softmax(zs)) + (1 - alpha) T^2 KL(qt || softmax(zs / T)),
 *   dloss[n]/dzs[n] = alpha (ps - onehot(y)) + (1 - alpha) T (qs - qt).
 * Why this way: the hard term is kern_xent_fwd/bwd itself (so alpha = 1 is
 * cross-entropy training bit for bit, and ps is the one softmax it saves); the
 * soft term is a second pass per row with the shared softmax row
 * (kern_math.h). log qs comes from the logits (zs/T - logsumexp), never from
 * the rounded qs, so it is finite where qs underflows; 0 log 0 = 0 skips the
 * teacher's zero entries (all of them outside the top-k). KL is summed in
 * double, as xent.c sums its logsumexp.
 * Top-k: the teacher's k largest logits by a min-heap of size k kept in the
 * idx row itself (O(V log k), no scratch), then heap-sorted into descending
 * order; ties go to the lower index, as a stable descending sort would give
 * (torch.sort(stable=True)). */
#include <math.h>

#include "kern.h"
#include "kern_kd.h"
#include "kern_math.h"

/* Below this many elements a kernel stays on one thread (as xent.c). */
#define KD_PAR_MIN 32768

/* Teacher entry a ranks below entry b: smaller logit, or the same logit at a
 * higher index. */
static int kd_ranks_below(const float *z, int32_t a, int32_t b) {
    return z[a] < z[b] || (z[a] == z[b] && a > b);
}

/* Restores the heap property (the lowest-ranked entry at the root) below i in
 * h[0..n). */
static void kd_sift_down(int32_t *h, int64_t n, int64_t i, const float *z) {
    for (;;) {
        int64_t lo = i;
        const int64_t l = 2 * i + 1, r = l + 1;
        if (l < n && kd_ranks_below(z, h[l], h[lo])) lo = l;
        if (r < n && kd_ranks_below(z, h[r], h[lo])) lo = r;
        if (lo == i) return;
        const int32_t t = h[i];
        h[i] = h[lo];
        h[lo] = t;
        i = lo;
    }
}

/* idx[0..k) = the indices of z's k largest entries, in descending rank. */
static void kd_top_k(int32_t *idx, const float *z, int64_t V, int64_t k) {
    for (int64_t j = 0; j < k; j++)
        idx[j] = (int32_t)j;
    for (int64_t j = k / 2 - 1; j >= 0; j--)
        kd_sift_down(idx, k, j, z);
    for (int64_t v = k; v < V; v++)
        if (kd_ranks_below(z, idx[0], (int32_t)v)) {
            idx[0] = (int32_t)v;
            kd_sift_down(idx, k, 0, z);
        }
    /* heap sort: the root (lowest rank) goes to the end, so the row ends descending */
    for (int64_t n = k - 1; n > 0; n--) {
        const int32_t t = idx[0];
        idx[0] = idx[n];
        idx[n] = t;
        kd_sift_down(idx, n, 0, z);
    }
}

void kern_kd_teacher(float *qt, int32_t *idx, const float *zt, int64_t N, int64_t V,
                     const kern_kd_cfg *c) {
    const float T = c->T;
    const int64_t k = c->top_k, W = k > 0 ? k : V; /* W: entries kept per row */
#pragma omp parallel for if (N * V >= KD_PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        const float *z = zt + n * V;
        float *q = qt + n * W, m, s;
        if (k > 0) {
            int32_t *ix = idx + n * k;
            kd_top_k(ix, z, V, k);
            for (int64_t j = 0; j < k; j++)
                q[j] = z[ix[j]] / T;
        } else {
            for (int64_t v = 0; v < V; v++)
                q[v] = z[v] / T;
        }
        kern_softmax_row(q, q, W, &m, &s);
    }
}

/* The soft term of one row: qs = softmax(zs / T), returns KL(qt || qs) >= 0. */
static double kd_soft_row(float *qs, const float *zs, const float *qt, const int32_t *idx,
                          int64_t V, int64_t k, float T) {
    float m, s;
    for (int64_t v = 0; v < V; v++)
        qs[v] = zs[v] / T;
    kern_softmax_row(qs, qs, V, &m, &s);
    const double lse = (double)m + log((double)s); /* log qs[v] = zs[v]/T - lse */
    double kl = 0.0;
    const int64_t W = k > 0 ? k : V;
    for (int64_t j = 0; j < W; j++) {
        const int64_t v = k > 0 ? idx[j] : j;
        if (qt[j] > 0.0f) kl += (double)qt[j] * (log((double)qt[j]) - ((double)(zs[v] / T) - lse));
    }
    /* KL >= 0 (Gibbs); the fp32 rounding of qt can leave the sum a few ulp below */
    return kl > 0.0 ? kl : 0.0;
}

void kern_kd_fwd(float *ps, float *qs, float *losses, const float *zs, const int32_t *targets,
                 const float *qt, const int32_t *idx, int64_t N, int64_t V, const kern_kd_cfg *c) {
    kern_xent_fwd(ps, losses, zs, targets, N, V); /* losses = CE, ps = softmax(zs) */
    if (c->alpha == 1.0f) return;
    const float T = c->T, a = c->alpha;
    const int64_t k = c->top_k, W = k > 0 ? k : V;
    const double soft = (1.0 - (double)a) * (double)T * (double)T;
#pragma omp parallel for if (N * V >= KD_PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        const double kl = kd_soft_row(qs + n * V, zs + n * V, qt + n * W,
                                      k > 0 ? idx + n * k : NULL, V, k, T);
        losses[n] = (float)((double)a * (double)losses[n] + soft * kl);
    }
}

/* d += f (qs - qt) over a row; qt NULL: the top-k case's d += f qs, its k
 * teacher entries then subtracted at their indices. */
KERN_SIMD_CLONES static void kd_bwd_row(float *d, const float *qs, const float *qt, float f,
                                        int64_t V) {
    if (qt) {
#pragma omp simd
        for (int64_t v = 0; v < V; v++)
            d[v] += f * (qs[v] - qt[v]);
    } else {
#pragma omp simd
        for (int64_t v = 0; v < V; v++)
            d[v] += f * qs[v];
    }
}

void kern_kd_bwd(float *dzs, const float *ps, const float *qs, const int32_t *targets,
                 const float *qt, const int32_t *idx, float scale, int64_t N, int64_t V,
                 const kern_kd_cfg *c) {
    if (!dzs) return;
    const float a = c->alpha;
    if (a == 1.0f) {
        kern_xent_bwd(dzs, ps, targets, scale, N, V);
        return;
    }
    if (a != 0.0f) kern_xent_bwd(dzs, ps, targets, scale * a, N, V); /* the hard term */
    const float f = scale * (1.0f - a) * c->T;                        /* the soft term's factor */
    const int64_t k = c->top_k;
#pragma omp parallel for if (N * V >= KD_PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        float *d = dzs + n * V;
        if (k > 0) { /* qt is 0 outside the top-k */
            kd_bwd_row(d, qs + n * V, NULL, f, V);
            const float *t = qt + n * k;
            const int32_t *ix = idx + n * k;
            for (int64_t j = 0; j < k; j++)
                d[ix[j]] -= f * t[j];
        } else {
            kd_bwd_row(d, qs + n * V, qt + n * V, f, V);
        }
    }
}
