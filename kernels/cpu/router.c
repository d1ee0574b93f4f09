/* router.c — the mixture-of-experts router after its linear layer
 * (logits = x W_r^T, W_r [E][C], is kern_matmul_fwd): per token
 *   probs = softmax(logits) over the E experts (saved, fp32),
 *   idx   = the K experts of largest probability, in descending order; equal
 *           probabilities go to the lower expert index (deterministic, so every
 *           rank and every run routes alike),
 *   gate_j = probs[idx_j] / S,  S = sum_l probs[idx_l]  (the top-k weights
 *           renormalised to sum to 1: Mixtral, Qwen3-MoE's norm_topk_prob;
 *           Fedus et al. 2021's Switch keeps probs[idx] unnormalised, equal
 *           for K = 1 up to the constant 1).
 * Backward, with g_j = dL/dgate_j and q_e = dL/dprobs_e from elsewhere (the
 * load-balancing loss, moe_aux.c; NULL for none):
 *   dp[idx_l] = (g_l - sum_j g_j gate_j) / S   (the quotient rule on gate_j),
 *   dp_e     += q_e,
 *   dlogits_e += probs_e (dp_e - sum_e' probs_e' dp_e')  (the softmax Jacobian).
 * Why this way: rows are independent, threads split the tokens; the row's
 * dp is never stored (it is q plus K sparse terms), so no scratch is needed.
 * Top-k is K passes over E values: E is small (8 .. 256). */
#include "kern.h"
#include "kern_math.h"

void kern_router_fwd(float *probs, int32_t *idx, float *gate, const float *logits, int64_t N,
                     int64_t E, int64_t K) {
#pragma omp parallel for if (N * E >= 32768)
    for (int64_t n = 0; n < N; n++) {
        float *p = probs + n * E, max, sum_exp;
        kern_softmax_row(p, logits + n * E, E, &max, &sum_exp);
        int32_t *ix = idx + n * K;
        float sum = 0.0f;
        for (int64_t j = 0; j < K; j++) {
            int32_t best = -1;
            for (int64_t e = 0; e < E; e++) {
                int taken = 0;
                for (int64_t l = 0; l < j; l++)
                    taken |= ix[l] == (int32_t)e;
                if (!taken && (best < 0 || p[e] > p[best])) best = (int32_t)e;
            }
            ix[j] = best;
            sum += p[best];
        }
        for (int64_t j = 0; j < K; j++)
            gate[n * K + j] = p[ix[j]] / sum;
    }
}

void kern_router_bwd(float *dlogits, const float *dgate, const float *dprobs, const float *probs,
                     const int32_t *idx, const float *gate, int64_t N, int64_t E, int64_t K) {
    if (!dlogits) return;
#pragma omp parallel for if (N * E >= 32768)
    for (int64_t n = 0; n < N; n++) {
        const float *p = probs + n * E, *g = dgate ? dgate + n * K : NULL;
        const float *q = dprobs ? dprobs + n * E : NULL;
        const float *w = gate + n * K;
        const int32_t *ix = idx + n * K;
        float S = 0.0f, gw = 0.0f;
        for (int64_t j = 0; j < K; j++) {
            S += p[ix[j]];
            if (g) gw += g[j] * w[j];
        }
        /* dot = sum_e p_e dp_e over q and the K gate terms */
        float dot = 0.0f;
        if (q)
            for (int64_t e = 0; e < E; e++)
                dot += p[e] * q[e];
        if (g)
            for (int64_t j = 0; j < K; j++)
                dot += p[ix[j]] * ((g[j] - gw) / S);
        float *d = dlogits + n * E;
        for (int64_t e = 0; e < E; e++)
            d[e] += p[e] * ((q ? q[e] : 0.0f) - dot);
        if (g)
            for (int64_t j = 0; j < K; j++)
                d[ix[j]] += p[ix[j]] * ((g[j] - gw) / S);
    }
}
