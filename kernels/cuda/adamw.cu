/* adamw.cu — the CUDA twin of kernels/cpu/adamw.c: the step's scalars computed on
 * the host in double (kern_adamw_consts), each element in fp32 in PyTorch's order
 * (kern_adamw_elem): both from kern_elem.h, so the two backends share the formula. */
#include "kcu_launch.h"
#include "kern_cuda.h"
#include "kern_elem.h"

static __global__ void adamw_kernel(float *p, float *m, float *v, const float *g, int64_t n,
                                    kern_adamw_k k) {
    KCU_FOR(i, n) kern_adamw_elem(&p[i], &m[i], &v[i], g[i], &k);
}

extern "C" void kcu_adamw(float *p, float *m, float *v, const float *g, int64_t n, float lr,
                          float b1, float b2, float eps, float wd, int step) {
    if (n > 0)
        adamw_kernel<<<kcu_blocks(n), KCU_THREADS>>>(p, m, v, g, n,
                                                     kern_adamw_consts(lr, b1, b2, eps, wd, step));
}
