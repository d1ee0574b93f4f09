/* matmul.c — the linear layer, out = inp @ W^T, with PyTorch's weight layout W[OC][C].
 *
 * Formulas: the chain rule for Y = X W^T (torch.nn.Linear gives the layout):
 *   dX += dY W,  dW += dY^T X  (docs/runtime.md, "Kernels").
 * Why this way: every GEMM is cblas_sgemm (OpenBLAS), tuned per CPU. The
 * backward uses beta = 1, so the gradients accumulate in place with no
 * scratch. Threads: OpenMP splits the output rows (out and dX by token,
 * dW by output channel, so no two threads write the same element) and each
 * thread runs a single-threaded sgemm on its block. One thread pool then
 * serves every kernel: OpenBLAS's own pthreads, left on, would spin next to
 * OpenMP's between calls and oversubscribe the cores (the OpenBLAS FAQ
 * advises a single-threaded OpenBLAS inside threaded programs). Blocks are
 * whole multiples of 16 rows, the micro-kernel's height on AVX-512.
 */
#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kern.h"
#include "kern_math.h"

/* Rows [*r0, *r1) of n for thread t of nt, in whole blocks of 16. */
static void mm_rows(int64_t n, int t, int nt, int64_t *r0, int64_t *r1) {
    const int64_t blocks = (n + 15) / 16;
    *r0 = blocks * t / nt * 16;
    *r1 = blocks * (t + 1) / nt * 16;
    if (*r0 > n) *r0 = n;
    if (*r1 > n) *r1 = n;
}

void kern_matmul_fwd(float *out, const float *inp, const float *w, int64_t N, int64_t C,
                     int64_t OC) {
    if (N <= 0 || OC <= 0) return;
    if (C <= 0) { /* an empty sum: BLAS would reject lda = 0 */
        memset(out, 0, (size_t)(N * OC) * sizeof *out);
        return;
    }
    kern_blas_single_thread();
#pragma omp parallel if (N * C * OC >= KERN_GEMM_PAR_MIN)
    {
        int64_t r0, r1;
        mm_rows(N, kern_thread_num(), kern_num_threads(), &r0, &r1);
        /* out[r0:r1][OC] = inp[r0:r1][C] @ w[OC][C]^T */
        if (r1 > r0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)(r1 - r0), (blasint)OC,
                        (blasint)C, 1.0f, inp + r0 * C, (blasint)C, w, (blasint)C, 0.0f,
                        out + r0 * OC, (blasint)OC);
    }
}

void kern_matmul_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                     int64_t N, int64_t C, int64_t OC) {
    if (N <= 0 || C <= 0 || OC <= 0 || (!dinp && !dw)) return;
    kern_blas_single_thread();
#pragma omp parallel if (N * C * OC >= KERN_GEMM_PAR_MIN)
    {
        const int t = kern_thread_num(), nt = kern_num_threads();
        int64_t r0, r1;
        /* dinp[r0:r1][C] += dout[r0:r1][OC] @ w[OC][C] */
        mm_rows(N, t, nt, &r0, &r1);
        if (dinp && r1 > r0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)(r1 - r0), (blasint)C,
                        (blasint)OC, 1.0f, dout + r0 * OC, (blasint)OC, w, (blasint)C, 1.0f,
                        dinp + r0 * C, (blasint)C);
        /* dw[r0:r1][C] += dout[N][r0:r1]^T @ inp[N][C] */
        mm_rows(OC, t, nt, &r0, &r1);
        if (dw && r1 > r0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)(r1 - r0), (blasint)C,
                        (blasint)N, 1.0f, dout + r0, (blasint)OC, inp, (blasint)C, 1.0f,
                        dw + r0 * C, (blasint)C);
    }
}
