/* xent.c — softmax cross-entropy over V classes (torch.nn.functional.cross_entropy
 * with reduction='none'): probs = softmax(logits), losses[n] = -log probs[n][t].
 * The loss is computed as log-sum-exp minus the target logit,
 *   losses[n] = m + log(sum_v exp(l_v - m)) - l_t,  m = max_v l_v,
 * which equals -log probs[t] but stays finite when probs[t] underflows
 * (PyTorch's log_softmax does the same). Backward (the softmax-with-
 * cross-entropy gradient, e.g. Goodfellow et al. 2016 §6.2.2.3):
 *   dlogits[n][v] += scale * (probs[n][v] - [v == t]).
 * Why this way: rows are independent; threads split the rows, and each row
 * is a few vectorised passes (kern_expf, kern_math.h), with fp32 sums as in
 * PyTorch's softmax. Targets must lie in [0, V): there is no ignore index.
 */
#include <math.h>

#include "kern.h"
#include "kern_math.h"

/* probs = softmax(logits row); the loss -log p[target] = log-sum-exp - l[target],
 * finite even when p[target] underflows. */
static float xent_row(float *p, const float *l, int32_t target, int64_t V) {
    float m, sum;
    kern_softmax_row(p, l, V, &m, &sum);
    return (float)((double)m + log((double)sum) - (double)l[target]);
}

KERN_SIMD_CLONES static void xent_bwd_row(float *d, const float *p, float scale, int64_t V) {
#pragma omp simd
    for (int64_t v = 0; v < V; v++)
        d[v] += scale * p[v];
}

void kern_xent_fwd(float *probs, float *losses, const float *logits, const int32_t *targets,
                   int64_t N, int64_t V) {
#pragma omp parallel for if (N * V >= 32768)
    for (int64_t n = 0; n < N; n++)
        losses[n] = xent_row(probs + n * V, logits + n * V, targets[n], V);
}

void kern_xent_bwd(float *dlogits, const float *probs, const int32_t *targets, float scale,
                   int64_t N, int64_t V) {
    if (!dlogits) return;
#pragma omp parallel for if (N * V >= 32768)
    for (int64_t n = 0; n < N; n++) {
        xent_bwd_row(dlogits + n * V, probs + n * V, scale, V);
        dlogits[n * V + targets[n]] -= scale;
    }
}
