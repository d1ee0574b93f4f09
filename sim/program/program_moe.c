/* program_moe.c — the sizes of a mixture-of-experts layer that the program's
 * ops carry (docs/plan-format.md "Mixture of experts"); the runtime allocates
 * tensor by tensor what these add up (runtime/rt_model.c), and the tests hold
 * the two equal.
 *
 * Dispatch to fixed-size per-expert slots (GShard, Lepikhin et al. 2020 §2.2;
 * Megatron-LM's --moe-pad-expert-input-to-capacity): every rank's dispatch
 * buffer holds experts x capacity rows whatever the routing, so the bytes of
 * each all-to-all are known before the run. With ep ranks, rank r's buffer is
 * ep blocks of experts/ep experts, block j going to ep rank j: S = the whole
 * buffer, of which the rank sends the ep - 1 blocks that leave it (an
 * all-to-all's (n-1)/n, nccl-tests' alltoall bus factor).
 */
#include "program/program.h"

#include "cost/moe.h"

int64_t program_expert_elems(const program *p) { return 3 * p->expert_ffn * p->hidden; }

int64_t program_moe_saved_bytes(const program *p) {
    const int64_t N = p->micro_batch * p->seq, E = p->experts, K = p->top_k;
    const int64_t R = E * p->expert_capacity, a = dtype_bytes(p->precision.activations);
    return 4 * N * E          /* router probabilities, fp32 */
           + 4 * N * K        /* gate weights, fp32 */
           + 2 * 4 * N * K    /* chosen experts and their slots, int32 */
           + 8 * E            /* choices per expert, int64 */
           + a * 2 * R * p->hidden       /* the experts' inputs and outputs */
           + a * 3 * R * p->expert_ffn;  /* w1, w3 and SwiGLU outputs */
}

int64_t program_moe_workspace_bytes(const program *p, bool bwd) {
    const int64_t N = p->micro_batch * p->seq, h = p->hidden, E = p->experts, K = p->top_k;
    const int64_t R = E * p->expert_capacity, fe = p->expert_ffn;
    if (!bwd) return 4 * (N * h + N * E + R * h); /* y; logits and the dispatch buffer */
    /* dy, dx, d(norm input); the gates' gradient; then the largest of: the outputs'
     * gradients (sent and received) with the experts' SwiGLU and input gradients, the
     * received outputs' gradients with the input gradients sent and received, and with
     * those received, the router's two N x E gradients */
    int64_t most = 2 * R * h + 3 * R * fe;
    if (3 * R * h > most) most = 3 * R * h;
    if (2 * R * h + 2 * N * E > most) most = 2 * R * h + 2 * N * E;
    return 4 * (3 * N * h + N * K + most);
}

int64_t program_moe_a2a_bytes(const program *p) {
    return moe_padded_a2a_bytes(p->experts, p->expert_capacity, p->hidden,
                                dtype_bytes(p->precision.activations));
}
