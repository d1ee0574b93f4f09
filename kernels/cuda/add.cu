/* add.cu — out = a + b, the CUDA twin of kernels/cpu/add.c (out may alias a or b). */
#include "kcu_launch.h"
#include "kern_cuda.h"

static __global__ void add_kernel(float *out, const float *a, const float *b, int64_t n) {
    KCU_FOR(i, n) out[i] = a[i] + b[i];
}

extern "C" void kcu_add(float *out, const float *a, const float *b, int64_t n) {
    if (n > 0) add_kernel<<<kcu_blocks(n), KCU_THREADS>>>(out, a, b, n);
}
