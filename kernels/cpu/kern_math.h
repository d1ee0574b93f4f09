/* kern_math.h — helpers shared by the CPU kernels (internal to kernels/cpu):
 * a vectorisable exp, AVX2 clones of hot loops, and the threading rules.
 *
 * exp. Why: glibc's expf is a function call per element, which stops GCC from
 * vectorising the softmax and sigmoid loops around it (PyTorch uses SLEEF's
 * vectorised exp there). kern_expf is arithmetic and selects, so a loop
 * marked `#pragma omp simd` vectorises with it inlined (given
 * -fno-trapping-math, see kernels/meson.build).
 * How (Cephes expf, Moshier 1992): exp(x) = 2^n exp(r) with n = round(x / ln 2)
 * and |r| <= ln(2)/2, ln 2 split in two parts so that r is exact; exp(r) by a
 * degree-7 polynomial; 2^n built from exponent bits, as two factors 2^h and
 * 2^(n-h) so that n from -150 (subnormal results) to 128 stays in range.
 * Error: within 2 ulp of the correctly rounded result for normal results
 * (tests/test_kernels.c sweeps it against exp in double); +inf above
 * ln(FLT_MAX), 0 below -104, NaN stays NaN.
 */
#ifndef PS_KERN_MATH_H
#define PS_KERN_MATH_H

/* KERN_SIMD_CLONES marks a function whose loops should also be compiled for
 * AVX2 (8 floats a vector instead of SSE2's 4), picked at load time by the
 * CPU (GCC/clang function multiversioning, an ifunc on glibc). The build is
 * for baseline x86-64; OpenBLAS does the same for the GEMMs. The clones give
 * the same bits: without -ffp-contract (ISO C), no FMA is formed. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#define KERN_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KERN_SIMD_CLONES
#endif

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Threads. One OpenMP pool serves every kernel; GEMMs run single-threaded
 * OpenBLAS inside it (see matmul.c for why). These wrap the OpenMP queries so
 * that a build without OpenMP still compiles. */
static inline int kern_num_threads(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

static inline int kern_thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int kern_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* OpenBLAS to one thread (a process-wide setting; cheap once set). */
static inline void kern_blas_single_thread(void) {
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

/* Multiply-adds below which a GEMM kernel stays on one thread. */
#define KERN_GEMM_PAR_MIN (1 << 18)

static inline float kern_pow2i(int32_t e) {          /* 2^e for e in [-126, 127] */
    const uint32_t bits = (uint32_t)(e + 127) << 23; /* a shift: SSE2 has no 32-bit multiply */
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float kern_expf(float x) {
    const float lo = -104.0f, hi = 88.72283935546875f; /* hi: ln(FLT_MAX) rounded up */
    float xc = x >= lo ? x : lo; /* NaN goes to lo here, so the int conversion is defined */
    xc = xc > hi ? hi : xc;
    /* n = round(x / ln 2): adding 1.5 * 2^23 rounds to an integer (|x / ln 2| < 2^22) */
    const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f; /* ln 2 = 0.693359375 - 2.12194440e-4 */
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    const float y = p * r * r + r + 1.0f;
    const int32_t ni = (int32_t)n, h = ni / 2;
    float res = y * kern_pow2i(h) * kern_pow2i(ni - h);
    res = x < lo ? 0.0f : res;
    res = x > hi ? INFINITY : res;
    return x != x ? x : res;
}

/* p[0..n) = softmax(x[0..n)) (p may be x); *max and *sum give the row's
 * log-sum-exp as max + log(sum). Shared by attention and cross-entropy
 * (kernels/cpu/softmax.c). */
void kern_softmax_row(float *p, const float *x, int64_t n, float *max, float *sum);

#endif
