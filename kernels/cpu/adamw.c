/* adamw.c — AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay
 * Regularization", Algorithm 2), exactly as torch.optim.AdamW's
 * single-tensor path computes it (torch/optim/adamw.py, the CPU default):
 *   p.mul_(1 - lr*wd)
 *   m.lerp_(g, 1 - b1)                      # m = b1 m + (1 - b1) g
 *   v.mul_(b2).addcmul_(g, g, value=1 - b2) # v = b2 v + (1 - b2) g^2
 *   bc1 = 1 - b1^step;  bc2 = 1 - b2^step   # Python floats (double)
 *   denom = sqrt(v) / sqrt(bc2) + eps
 *   p.addcdiv_(m, denom, value=-lr/bc1)
 * Why this way: the scalars are computed in double, as Python does, and cast
 * to fp32 where PyTorch casts them (a tensor op with a Python scalar runs in
 * the tensor's dtype); the per-element arithmetic is fp32 in PyTorch's order
 * of operations (kern_elem.h, shared with the CUDA twin), including lerp's formula (ATen Lerp.h: weight < 0.5 gives
 * m + w (g - m)) and addcdiv's p + value * m / denom. The hyperparameters
 * arrive as fp32, so 1 - b2 is that of 0.999f, not of the double 0.999
 * (1.3e-5 relative in v; v / bc2 nearly cancels it). Elementwise: threads
 * split the array into chunks, each one vectorised loop.
 */
#include <math.h>

#include "kern.h"
#include "kern_elem.h"
#include "kern_math.h"

#define ADAMW_CHUNK 8192

KERN_SIMD_CLONES static void adamw_chunk(float *p, float *m, float *v, const float *g, int64_t n,
                                         const kern_adamw_k *k) {
    const kern_adamw_k kk = *k;
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        kern_adamw_elem(&p[i], &m[i], &v[i], g[i], &kk);
}

void kern_adamw(float *p, float *m, float *v, const float *g, int64_t n, float lr, float b1,
                float b2, float eps, float wd, int step) {
    const kern_adamw_k k = kern_adamw_consts(lr, b1, b2, eps, wd, step);
    const int64_t chunks = (n + ADAMW_CHUNK - 1) / ADAMW_CHUNK;
#pragma omp parallel for if (chunks > 4)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i0 = c * ADAMW_CHUNK, len = n - i0 < ADAMW_CHUNK ? n - i0 : ADAMW_CHUNK;
        adamw_chunk(p + i0, m + i0, v + i0, g + i0, len, &k);
    }
}
