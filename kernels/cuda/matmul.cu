/* matmul.cu — the CUDA twin of kernels/cpu/matmul.c through cuBLAS (fp32, the default
 * math mode: no TF32), PyTorch's weight layout W[OC][C]:
 *   out[N][OC] = inp[N][C] W^T,  dinp[N][C] += dout W,  dW[OC][C] += dout^T inp.
 * cuBLAS is column-major: a row-major [R][S] matrix is the column-major S x R one, so
 * out^T = W inp^T is Sgemm(T, N) of (W as C x OC, inp as C x N), and the backward's two
 * products follow the same way. One handle for the process, made on first use on the
 * current device, on the default stream. (The bf16 GEMMs of the CUDA executor, cuBLASLt
 * with fp32 accumulation, are separate; this is the fp32 twin the cross-backend test
 * holds to OpenBLAS: sums in another order, 1e-5.) */
#include <cublas_v2.h>

#include "kern_cuda.h"

static const char *failed; /* the first cuBLAS failure, until kcu_take_error */

static cublasHandle_t handle(void) {
    static cublasHandle_t h;
    static int made;
    if (!made && cublasCreate(&h) == CUBLAS_STATUS_SUCCESS) made = 1;
    if (!made && !failed) failed = "cublasCreate failed (no device, or out of memory)";
    return made ? h : NULL;
}

static void check(cublasStatus_t st, const char *what) {
    if (st != CUBLAS_STATUS_SUCCESS && !failed) failed = what;
}

extern "C" const char *kcu_take_error(void) {
    const char *e = failed;
    failed = NULL;
    return e;
}

extern "C" void kcu_matmul_fwd(float *out, const float *inp, const float *w, int64_t N,
                               int64_t C, int64_t OC) {
    const float one = 1.0f, zero = 0.0f;
    if (N <= 0 || OC <= 0) return;
    if (C <= 0) { /* an empty sum (BLAS rejects lda = 0), as the CPU kernel */
        cudaMemsetAsync(out, 0, (size_t)(N * OC) * sizeof *out);
        return;
    }
    cublasHandle_t h = handle();
    if (h)
        check(cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)OC, (int)N, (int)C, &one, w, (int)C,
                          inp, (int)C, &zero, out, (int)OC),
              "cublasSgemm (matmul forward) failed");
}

extern "C" void kcu_matmul_bwd(float *dinp, float *dw, const float *dout, const float *inp,
                               const float *w, int64_t N, int64_t C, int64_t OC) {
    const float one = 1.0f;
    if (N <= 0 || C <= 0 || OC <= 0) return;
    cublasHandle_t h = handle();
    if (!h) return;
    /* dinp^T (C x N) += W^T-as-stored (C x OC) dout^T (OC x N) */
    if (dinp)
        check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)C, (int)N, (int)OC, &one, w, (int)C,
                          dout, (int)OC, &one, dinp, (int)C),
              "cublasSgemm (matmul input gradient) failed");
    /* dW^T (C x OC) += inp^T (C x N) dout (N x OC) */
    if (dw)
        check(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, (int)C, (int)OC, (int)N, &one, inp, (int)C,
                          dout, (int)OC, &one, dw, (int)C),
              "cublasSgemm (matmul weight gradient) failed");
}
