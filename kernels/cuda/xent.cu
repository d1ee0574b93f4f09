/* xent.cu — the CUDA twin of kernels/cpu/xent.c: probs = softmax(logits row) and
 * losses[n] = max + log(sum) - logit[target] (in double, as the CPU), one block per row
 * (the row's max and sum reduced over the block: another order than the CPU's, so the
 * cross-backend test allows 1e-6); the backward dlogits += scale * probs, then
 * dlogits[target] -= scale, per element with the CPU's roundings (no FMA: bit-equal). */
#include "kcu_launch.h"
#include "kern_cuda.h"

static __global__ void xent_fwd_kernel(float *probs, float *losses, const float *logits,
                                       const int32_t *targets, int64_t V) {
    const float *l = logits + (int64_t)blockIdx.x * V;
    float *p = probs + (int64_t)blockIdx.x * V;
    float m = -INFINITY;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x)
        m = fmaxf(m, l[v]);
    m = kcu_block_max(m);
    float s = 0.0f;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
        const float e = expf(l[v] - m);
        p[v] = e;
        s += e;
    }
    s = kcu_block_sum(s);
    const float inv = 1.0f / s;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x)
        p[v] *= inv;
    if (threadIdx.x == 0)
        losses[blockIdx.x] = (float)((double)m + log((double)s) - (double)l[targets[blockIdx.x]]);
}

static __global__ void xent_bwd_kernel(float *dlogits, const float *probs, const int32_t *targets,
                                       float scale, int64_t n, int64_t V) {
    KCU_FOR(e, n) {
        float d = __fadd_rn(dlogits[e], __fmul_rn(scale, probs[e]));
        if (e % V == targets[e / V]) d = __fsub_rn(d, scale);
        dlogits[e] = d;
    }
}

extern "C" void kcu_xent_fwd(float *probs, float *losses, const float *logits,
                             const int32_t *targets, int64_t N, int64_t V) {
    if (N > 0 && V > 0)
        xent_fwd_kernel<<<(unsigned)N, KCU_THREADS>>>(probs, losses, logits, targets, V);
}

extern "C" void kcu_xent_bwd(float *dlogits, const float *probs, const int32_t *targets,
                             float scale, int64_t N, int64_t V) {
    if (dlogits && N > 0 && V > 0)
        xent_bwd_kernel<<<kcu_blocks(N * V), KCU_THREADS>>>(dlogits, probs, targets, scale, N * V,
                                                            V);
}
