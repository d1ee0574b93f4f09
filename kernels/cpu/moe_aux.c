/* moe_aux.c — the Switch Transformer's auxiliary load-balancing loss (Fedus
 * et al. 2021, "Switch Transformers", eq. 4, generalised to top-k as
 * Megatron-LM's switch_load_balancing_loss_func, megatron/core/transformer/
 * moe/moe_utils.py):
 *   loss = alpha * E * sum_i f_i P_i,
 *   f_i = count_i / (N K)   the fraction of the N tokens' K choices routed to expert i,
 *   P_i = (1/N) sum_n probs[n][i]   the router's mean probability for expert i.
 * f is a count (piecewise constant), so only P carries a gradient:
 *   dprobs[n][i] += scale * alpha * E * f_i / N,   scale = dL/dloss.
 * Why this way: one pass over probs in double for the value; the gradient is
 * one constant per expert added to every token's row. count_i comes from the
 * routing (kern_moe_slots counts the choices before any capacity drop). */
#include "kern.h"

double kern_moe_aux_fwd(const float *probs, const int64_t *count, int64_t N, int64_t E, int64_t K,
                        float alpha) {
    double sum = 0.0;
    for (int64_t i = 0; i < E; i++) {
        double P = 0.0;
        for (int64_t n = 0; n < N; n++)
            P += probs[n * E + i];
        sum += ((double)count[i] / (double)(N * K)) * (P / (double)N);
    }
    return (double)alpha * (double)E * sum;
}

void kern_moe_aux_bwd(float *dprobs, const int64_t *count, float scale, int64_t N, int64_t E,
                      int64_t K, float alpha) {
    if (!dprobs) return;
#pragma omp parallel for if (N * E >= 32768)
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < E; i++)
            dprobs[n * E + i] += (float)((double)scale * alpha * (double)E *
                                         ((double)count[i] / (double)(N * K)) / (double)N);
}
