/* swiglu.cu — the CUDA twin of kernels/cpu/swiglu.c: out = silu(a) * b with
 * silu(a) = a / (1 + exp(-a)); backward da += dout * b * s * (1 + a (1 - s)),
 * db += dout * silu(a), s = sigmoid(a) (kern_elem.h, shared with the CPU); a NULL da or
 * db is skipped. expf here is
 * CUDA's (2 ulp), kern_expf there: the cross-backend test allows for it. */
#include "kcu_launch.h"
#include "kern_cuda.h"
#include "kern_elem.h"

static __global__ void swiglu_fwd_kernel(float *out, const float *a, const float *b, int64_t n) {
    KCU_FOR(i, n) {
        const float x = a[i];
        out[i] = kern_swiglu_out(x, b[i], expf(-x));
    }
}

static __global__ void swiglu_bwd_kernel(float *da, float *db, const float *dout, const float *a,
                                         const float *b, int64_t n) {
    KCU_FOR(i, n) {
        const float x = a[i], s = 1.0f / (1.0f + expf(-x));
        if (da) da[i] += kern_swiglu_da(dout[i], x, b[i], s);
        if (db) db[i] += kern_swiglu_db(dout[i], x * s);
    }
}

extern "C" void kcu_swiglu_fwd(float *out, const float *a, const float *b, int64_t n) {
    if (n > 0) swiglu_fwd_kernel<<<kcu_blocks(n), KCU_THREADS>>>(out, a, b, n);
}

extern "C" void kcu_swiglu_bwd(float *da, float *db, const float *dout, const float *a,
                               const float *b, int64_t n) {
    if (n > 0 && (da || db))
        swiglu_bwd_kernel<<<kcu_blocks(n), KCU_THREADS>>>(da, db, dout, a, b, n);
}
