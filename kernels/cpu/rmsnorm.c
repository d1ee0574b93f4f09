/* rmsnorm.c — RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer
 * Normalization"), as Llama uses it (Hugging Face LlamaRMSNorm):
 *   rstd[n] = 1 / sqrt(mean_c x[n][c]^2 + eps),  out = (x * rstd) * w.
 * Backward, with g = dout * w (docs/runtime.md derives it):
 *   dx[n][c] += rstd * g[c] - x[n][c] * rstd^3 / C * sum_j g[j] x[n][j]
 *   dw[c]    += sum_n dout[n][c] * x[n][c] * rstd[n]
 * Why this way: rows are independent, so threads split the rows for out and
 * dx. dw sums over rows; threads split the channels for it (each owns a
 * cache line of dw and walks every row), which needs no scratch and gives
 * the same bits at any thread count. Sums are fp32 as in PyTorch, in
 * vectorised loops (several partial sums).
 */
#include <math.h>

#include "kern.h"
#include "kern_elem.h"
#include "kern_math.h"

#define RMS_CHUNK 16

KERN_SIMD_CLONES static float rms_fwd_row(float *o, const float *x, const float *w, int64_t C,
                                          float eps) {
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; c++)
        ss += x[c] * x[c];
    const float r = kern_rms_rstd(ss, C, eps);
#pragma omp simd
    for (int64_t c = 0; c < C; c++)
        o[c] = kern_rms_out(x[c], r, w[c]);
    return r;
}

KERN_SIMD_CLONES static void rms_bwd_row(float *dx, const float *dy, const float *x, const float *w,
                                         float r, int64_t C) {
    float dot = 0.0f; /* sum_j w[j] dy[j] x[j] */
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < C; c++)
        dot += w[c] * dy[c] * x[c];
    const float k = kern_rms_k(r, dot, C);
#pragma omp simd
    for (int64_t c = 0; c < C; c++)
        dx[c] += kern_rms_dx(r, w[c], dy[c], x[c], k);
}

void kern_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int64_t N,
                      int64_t C, float eps) {
#pragma omp parallel for if (N * C >= 32768)
    for (int64_t n = 0; n < N; n++)
        rstd[n] = rms_fwd_row(out + n * C, inp + n * C, w, C, eps);
}

void kern_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                      const float *rstd, int64_t N, int64_t C) {
    if (dinp) {
#pragma omp parallel for if (N * C >= 32768)
        for (int64_t n = 0; n < N; n++)
            rms_bwd_row(dinp + n * C, dout + n * C, inp + n * C, w, rstd[n], C);
    }
    if (dw) {
        const int64_t chunks = (C + RMS_CHUNK - 1) / RMS_CHUNK;
#pragma omp parallel for if (N * C >= 32768)
        for (int64_t ch = 0; ch < chunks; ch++) {
            const int64_t c0 = ch * RMS_CHUNK;
            const int64_t c1 = c0 + RMS_CHUNK < C ? c0 + RMS_CHUNK : C;
            for (int64_t n = 0; n < N; n++) {
                const float *x = inp + n * C, *dy = dout + n * C;
                const float r = rstd[n];
                for (int64_t c = c0; c < c1; c++)
                    dw[c] += dy[c] * x[c] * r;
            }
        }
    }
}
