/* rt_device_bench.cu — the CUDA module's measurements for calibration (bench/gpu_rates.c,
 * bench/gpu-check.sh): the time of one GEMM of a given shape through cuBLAS, and of one
 * device-to-device copy, each the mean of 20 runs after 3 warm-up runs, timed with CUDA
 * events on the default stream (METHOD.md's practice: events around repeated launches). */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdio.h>

extern "C" {
#include "rt_device_module.h"
}

#define WARMUP 3
#define RUNS 20

static int fail(cudaError_t e, const char *what, char *why, int why_len) {
    if (e == cudaSuccess) return 0;
    snprintf(why, (size_t)why_len, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
    return -1;
}

/* Values in [-1, 1) from an integer hash: random data (a matrix of zeros runs faster). */
static __global__ void fill_kernel(void *p, int64_t n, int bf16, unsigned seed) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 13, h *= 0x5bd1e995u, h ^= h >> 15;
        const float x = (float)(h & 0xFFFFFF) / 8388608.0f - 1.0f;
        if (bf16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16(x);
        else ((float *)p)[i] = x;
    }
}

/* Mean seconds of RUNS calls of run(ctx), after WARMUP. */
template <typename F> static int timed(F run, double *seconds, char *why, int why_len) {
    cudaEvent_t a, b;
    if (fail(cudaEventCreate(&a), "cudaEventCreate", why, why_len)) return -1;
    if (fail(cudaEventCreate(&b), "cudaEventCreate", why, why_len)) return cudaEventDestroy(a), -1;
    int rc = 0;
    for (int i = 0; i < WARMUP && !rc; i++) rc = run();
    cudaEventRecord(a);
    for (int i = 0; i < RUNS && !rc; i++) rc = run();
    cudaEventRecord(b);
    float ms = 0;
    if (!rc && !fail(cudaEventSynchronize(b), "running the timed calls", why, why_len) &&
        !fail(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime", why, why_len))
        *seconds = ms / 1e3 / RUNS;
    else if (!rc)
        rc = -1;
    else
        snprintf(why, (size_t)why_len, "the timed call failed");
    cudaEventDestroy(a), cudaEventDestroy(b);
    return rc;
}

extern "C" int rt_cuda_gemm_time(int64_t M, int64_t N, int64_t K, int bf16, double *seconds,
                                 char *why, int why_len) {
    static cublasHandle_t h;
    static int made;
    if (!made) {
        if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
            snprintf(why, (size_t)why_len, "cublasCreate failed");
            return -1;
        }
        made = 1;
    }
    const size_t es = bf16 ? 2 : 4;
    void *A = NULL, *B = NULL, *C = NULL;
    int rc = fail(cudaMalloc(&A, (size_t)(M * K) * es), "cudaMalloc", why, why_len) ||
             fail(cudaMalloc(&B, (size_t)(K * N) * es), "cudaMalloc", why, why_len) ||
             fail(cudaMalloc(&C, (size_t)(M * N) * es), "cudaMalloc", why, why_len);
    if (!rc) {
        fill_kernel<<<1024, 256>>>(A, M * K, bf16, 1u);
        fill_kernel<<<1024, 256>>>(B, K * N, bf16, 2u);
        const float one = 1.0f, zero = 0.0f;
        const cudaDataType t = bf16 ? CUDA_R_16BF : CUDA_R_32F;
        /* column-major C (M x N) = A (M x K) B (K x N), fp32 accumulation */
        rc = timed(
            [&]() {
                return cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)M, (int)N, (int)K, &one, A, t,
                                    (int)M, B, t, (int)K, &zero, C, t, (int)M, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS
                           ? 0
                           : -1;
            },
            seconds, why, why_len);
    }
    cudaFree(A), cudaFree(B), cudaFree(C);
    return rc ? -1 : 0;
}

extern "C" int rt_cuda_copy_time(size_t bytes, double *seconds, char *why, int why_len) {
    void *a = NULL, *b = NULL;
    int rc = fail(cudaMalloc(&a, bytes), "cudaMalloc", why, why_len) ||
             fail(cudaMalloc(&b, bytes), "cudaMalloc", why, why_len);
    if (!rc) {
        cudaMemset(a, 1, bytes);
        rc = timed([&]() { return cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice) ? -1 : 0; },
                   seconds, why, why_len);
    }
    cudaFree(a), cudaFree(b);
    return rc ? -1 : 0;
}
