/* swiglu.c — the SwiGLU gate (Shazeer 2020, "GLU Variants Improve
 * Transformer", eq. 5): out = silu(a) * b, silu(a) = a * sigmoid(a)
 * (Elfwing et al. 2018; torch.nn.SiLU). With s = sigmoid(a):
 *   da += dout * b * s * (1 + a (1 - s)),   db += dout * silu(a).
 * Why this way: elementwise, so threads split the array into chunks and each
 * chunk is one vectorised loop (kern_expf, kern_math.h: libm's expf would
 * keep it scalar). sigmoid is 1 / (1 + exp(-a)), which saturates cleanly to
 * 0 or 1 for large |a| (exp overflows to inf, 1/inf = 0): no branch.
 */
#include "kern.h"
#include "kern_elem.h"
#include "kern_math.h"

#define SWIGLU_CHUNK 4096

KERN_SIMD_CLONES static void swiglu_fwd_chunk(float *out, const float *a, const float *b,
                                              int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float x = a[i];
        out[i] = kern_swiglu_out(x, b[i], kern_expf(-x));
    }
}

KERN_SIMD_CLONES static void swiglu_bwd_chunk(float *da, float *db, const float *dout,
                                              const float *a, const float *b, int64_t n) {
    if (da && db) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float x = a[i], s = 1.0f / (1.0f + kern_expf(-x));
            da[i] += kern_swiglu_da(dout[i], x, b[i], s);
            db[i] += kern_swiglu_db(dout[i], x * s);
        }
    } else if (da) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float x = a[i], s = 1.0f / (1.0f + kern_expf(-x));
            da[i] += kern_swiglu_da(dout[i], x, b[i], s);
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            const float x = a[i];
            db[i] += kern_swiglu_db(dout[i], kern_silu(x, kern_expf(-x)));
        }
    }
}

void kern_swiglu_fwd(float *out, const float *a, const float *b, int64_t n) {
    const int64_t chunks = (n + SWIGLU_CHUNK - 1) / SWIGLU_CHUNK;
#pragma omp parallel for if (chunks > 4)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i0 = c * SWIGLU_CHUNK, m = n - i0 < SWIGLU_CHUNK ? n - i0 : SWIGLU_CHUNK;
        swiglu_fwd_chunk(out + i0, a + i0, b + i0, m);
    }
}

void kern_swiglu_bwd(float *da, float *db, const float *dout, const float *a, const float *b,
                     int64_t n) {
    if (!da && !db) return;
    const int64_t chunks = (n + SWIGLU_CHUNK - 1) / SWIGLU_CHUNK;
#pragma omp parallel for if (chunks > 4)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i0 = c * SWIGLU_CHUNK, m = n - i0 < SWIGLU_CHUNK ? n - i0 : SWIGLU_CHUNK;
        swiglu_bwd_chunk(da ? da + i0 : NULL, db ? db + i0 : NULL, dout + i0, a + i0, b + i0, m);
    }
}
