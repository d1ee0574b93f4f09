/* kern_bench.c — speed of the CPU GEMM kernels at the tiny-10m shapes
 * (kernels/kern.h, docs/runtime.md "Kernels").
 *
 * Times kern_matmul_fwd/bwd (N = 8*256 tokens, C = 384, OC = 1024: the
 * SwiGLU up-projections) and kern_attn_fwd/bwd (B = 8, T = 256, H = 6,
 * KVH = 2, D = 64) and prints one row per kernel in the nccl-tests manner:
 * header lines start with '#' (gnuplot skips them), then time, GFLOP/s and a
 * correctness column, the largest error of sampled outputs against a naive
 * double-precision reference, relative to the output's scale.
 *
 * FLOPs: matmul 2*N*C*OC forward, twice that backward. Attention counts the
 * causal triangle only, 4*B*H*D*T(T+1)/2 per forward (Q K^T and P V), and
 * 2.5x that backward (S recomputed, dV, dP, dQ, dK: FlashAttention-2's
 * convention, Dao 2023 §4).
 *
 * The quantized kernels (kernels/kern_quant.h, docs/quantization.md) at the
 * matmul shape: the int8 x int8 -> int32 product (checked exactly against an
 * int64 sum), the int8 linear with x and w absmax per row (vector-wise,
 * quantizing x included), LLM.int8()'s decomposition at threshold 6 with two
 * outlier feature columns, and dequantizing a 4-bit block-32 weight (its
 * "GFLOP/s" column is G elements/s).
 *
 * usage: kern_bench [seconds per kernel, default 0.5]
 * Threads: OMP_NUM_THREADS (the kernels run OpenBLAS single-threaded inside
 * their own OpenMP loops).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <cblas.h>

#include "kern.h"
#include "kern_quant.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;

static float rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rand_f(int64_t n) {
    float *p = malloc((size_t)n * sizeof *p);
    if (!p) {
        fprintf(stderr, "kern_bench: out of memory\n");
        exit(1);
    }
    for (int64_t i = 0; i < n; i++)
        p[i] = rnd();
    return p;
}

typedef struct {
    float *out, *inp, *w, *dout, *dinp, *dw;
    float *q, *k, *v, *ao, *lse, *dao, *dq, *dk, *dv, *scratch;
    int8_t *xq, *wq; /* [N][C], [OC][C] */
    int32_t *acc;    /* [N][OC] */
    float *sx, *sw;  /* row scales */
    uint8_t *w4;     /* w as 4-bit block-32 */
    float *s4, *xo;  /* its scales; x with outlier columns */
    void *dscratch;  /* the decomposition's scratch */
} bufs;

enum { MM_N = 8 * 256, MM_C = 384, MM_OC = 1024 };
enum { AT_B = 8, AT_T = 256, AT_H = 6, AT_KVH = 2, AT_D = 64 };

static void run_matmul_fwd(bufs *b) {
    kern_matmul_fwd(b->out, b->inp, b->w, MM_N, MM_C, MM_OC);
}
static void run_matmul_bwd(bufs *b) {
    kern_matmul_bwd(b->dinp, b->dw, b->dout, b->inp, b->w, MM_N, MM_C, MM_OC);
}
static void run_attn_fwd(bufs *b) {
    kern_attn_fwd(b->ao, b->lse, b->q, b->k, b->v, AT_B, AT_T, AT_H, AT_KVH, AT_D, b->scratch);
}
static void run_attn_bwd(bufs *b) {
    kern_attn_bwd(b->dq, b->dk, b->dv, b->dao, b->q, b->k, b->v, b->ao, b->lse, AT_B, AT_T, AT_H,
                  AT_KVH, AT_D, b->scratch);
}

static const quant_spec ROW8 = {QK_ABSMAX, QG_ROW, 8, 0}, BLOCK4 = {QK_ABSMAX, QG_BLOCK, 4, 32};

static void run_matmul_i8(bufs *b) {
    kern_matmul_i8_i32(b->acc, b->xq, b->wq, MM_N, MM_C, MM_OC);
}
static void run_matmul_int8(bufs *b) { /* quantize x per token, then the int8 linear */
    kern_quantize(b->xq, b->sx, NULL, b->inp, MM_N, MM_C, &ROW8);
    kern_matmul_int8_fwd(b->out, b->xq, b->sx, NULL, QG_ROW, b->wq, b->sw, NULL, QG_ROW, MM_N, MM_C,
                         MM_OC, b->acc);
}
static void run_int8_decomp(bufs *b) {
    kern_matmul_int8_decomp_fwd(b->out, b->xo, NULL, b->wq, b->sw, MM_N, MM_C, MM_OC, 6.0f,
                                b->dscratch);
}
static void run_dequant4(bufs *b) {
    kern_dequantize(b->dw, b->w4, b->s4, NULL, MM_OC, MM_C, &BLOCK4);
}

/* Largest |acc - int64 sum| over sampled outputs (0: exact). */
static double check_matmul_i8(const bufs *b) {
    double err = 0.0;
    for (int s = 0; s < 64; s++) {
        const int64_t n = (s * 7919) % MM_N, o = (s * 104729) % MM_OC;
        int64_t ref = 0;
        for (int64_t c = 0; c < MM_C; c++)
            ref += (int64_t)b->xq[n * MM_C + c] * b->wq[o * MM_C + c];
        err = fmax(err, fabs((double)(b->acc[n * MM_OC + o] - ref)));
    }
    return err;
}

/* Mean seconds per call over at least `seconds` (and 5 calls), after 2 warm-ups. */
static double time_it(void (*fn)(bufs *), bufs *b, double seconds) {
    fn(b), fn(b);
    int64_t iters = 0;
    const double t0 = now_s();
    double t = t0;
    while (iters < 5 || t - t0 < seconds) {
        fn(b);
        iters++;
        t = now_s();
    }
    return (t - t0) / (double)iters;
}

/* Sampled out[n][o] against a naive dot product. */
static double check_matmul_fwd(const bufs *b) {
    double err = 0.0;
    for (int s = 0; s < 64; s++) {
        const int64_t n = (s * 7919) % MM_N, o = (s * 104729) % MM_OC;
        double ref = 0.0;
        for (int64_t c = 0; c < MM_C; c++)
            ref += (double)b->inp[n * MM_C + c] * b->w[o * MM_C + c];
        err = fmax(err, fabs(b->out[n * MM_OC + o] - ref) / sqrt((double)MM_C));
    }
    return err;
}

/* Sampled rows of the attention output against a naive double softmax. */
static double check_attn_fwd(const bufs *b) {
    static double s[AT_T];
    double err = 0.0;
    for (int r = 0; r < 16; r++) {
        const int64_t bb = r % AT_B, h = (r * 5) % AT_H, i = (r * 37 + 11) % AT_T;
        const int64_t g = h / (AT_H / AT_KVH);
        const float *qi = b->q + ((bb * AT_T + i) * AT_H + h) * AT_D;
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j <= i; j++) {
            const float *kj = b->k + ((bb * AT_T + j) * AT_KVH + g) * AT_D;
            double d = 0.0;
            for (int64_t x = 0; x < AT_D; x++)
                d += (double)qi[x] * kj[x];
            s[j] = d / sqrt((double)AT_D);
            mx = fmax(mx, s[j]);
        }
        for (int64_t j = 0; j <= i; j++)
            sum += exp(s[j] - mx);
        for (int64_t x = 0; x < AT_D; x++) {
            double o = 0.0;
            for (int64_t j = 0; j <= i; j++)
                o += exp(s[j] - mx) / sum * b->v[((bb * AT_T + j) * AT_KVH + g) * AT_D + x];
            err = fmax(err, fabs(b->ao[((bb * AT_T + i) * AT_H + h) * AT_D + x] - o));
        }
    }
    return err;
}

static void row(const char *name, const char *shape, double sec, double flops, double err) {
    if (err >= 0)
        printf("%14s %30s %12.1f %10.2f %10.2e\n", name, shape, sec * 1e6, flops / sec * 1e-9, err);
    else
        printf("%14s %30s %12.1f %10.2f %10s\n", name, shape, sec * 1e6, flops / sec * 1e-9, "N/A");
}

int main(int argc, char **argv) {
    const double seconds = argc > 1 ? atof(argv[1]) : 0.5;
    bufs b;
    const int64_t nq = (int64_t)AT_B * AT_T * AT_H * AT_D,
                  nk = (int64_t)AT_B * AT_T * AT_KVH * AT_D;
    b.inp = rand_f(MM_N * MM_C), b.w = rand_f(MM_OC * MM_C), b.out = rand_f(MM_N * MM_OC);
    b.dout = rand_f(MM_N * MM_OC), b.dinp = rand_f(MM_N * MM_C), b.dw = rand_f(MM_OC * MM_C);
    b.q = rand_f(nq), b.k = rand_f(nk), b.v = rand_f(nk), b.ao = rand_f(nq), b.dao = rand_f(nq);
    b.lse = rand_f(AT_B * AT_T * AT_H), b.dq = rand_f(nq), b.dk = rand_f(nk), b.dv = rand_f(nk);
    b.scratch = rand_f(kern_attn_scratch_floats(AT_T));
    b.xq = malloc(MM_N * MM_C), b.wq = malloc(MM_OC * MM_C), b.w4 = malloc(MM_OC * MM_C / 2);
    b.acc = malloc(MM_N * MM_OC * sizeof *b.acc), b.sx = rand_f(MM_N), b.sw = rand_f(MM_OC);
    b.s4 = rand_f(MM_OC * MM_C / 32), b.xo = rand_f(MM_N * MM_C);
    b.dscratch = malloc((size_t)kern_int8_decomp_scratch_bytes(MM_N, MM_C, MM_OC));
    if (!b.xq || !b.wq || !b.w4 || !b.acc || !b.dscratch) {
        fprintf(stderr, "kern_bench: out of memory\n");
        return 1;
    }
    kern_quantize(b.wq, b.sw, NULL, b.w, MM_OC, MM_C, &ROW8);
    kern_quantize(b.xq, b.sx, NULL, b.inp, MM_N, MM_C, &ROW8);
    kern_quantize(b.w4, b.s4, NULL, b.w, MM_OC, MM_C, &BLOCK4);
    for (int64_t n = 0; n < MM_N; n++) /* two outlier feature columns, |x| up to 60 */
        b.xo[n * MM_C + 7] *= 60.0f, b.xo[n * MM_C + 200] *= 60.0f;

    int omp_threads = 1;
#ifdef _OPENMP
    omp_threads = omp_get_max_threads();
#endif
    printf("# kern_bench: CPU kernels at the tiny-10m shapes\n");
    printf("# threads: %d (OpenMP; OpenBLAS single-threaded inside: %s)\n", omp_threads,
           openblas_get_config());
    printf("# matmul: N %d, C %d, OC %d; attention: B %d, T %d, H %d, KVH %d, D %d (causal)\n",
           MM_N, MM_C, MM_OC, AT_B, AT_T, AT_H, AT_KVH, AT_D);
    printf("# err: largest sampled |out - naive double| (matmul: / sqrt(C)); N/A: not checked\n");
    printf("#\n");
    printf("# %12s %30s %12s %10s %10s\n", "kernel", "shape", "time(us)", "GFLOP/s", "err");

    const double mm = 2.0 * MM_N * MM_C * MM_OC;
    const double at = 4.0 * AT_B * AT_H * AT_D * (double)AT_T * (AT_T + 1) / 2.0;
    char shape[64];
    snprintf(shape, sizeof shape, "%dx%d @ %dx%d^T", MM_N, MM_C, MM_OC, MM_C);
    double t = time_it(run_matmul_fwd, &b, seconds);
    row("matmul_fwd", shape, t, mm, check_matmul_fwd(&b));
    t = time_it(run_matmul_bwd, &b, seconds);
    row("matmul_bwd", shape, t, 2 * mm, -1);
    snprintf(shape, sizeof shape, "B%d T%d H%d KVH%d D%d", AT_B, AT_T, AT_H, AT_KVH, AT_D);
    t = time_it(run_attn_fwd, &b, seconds);
    row("attn_fwd", shape, t, at, check_attn_fwd(&b));
    t = time_it(run_attn_bwd, &b, seconds);
    row("attn_bwd", shape, t, 2.5 * at, -1);
    snprintf(shape, sizeof shape, "%dx%d @ %dx%d^T", MM_N, MM_C, MM_OC, MM_C);
    t = time_it(run_matmul_i8, &b, seconds);
    row("matmul_i8_i32", shape, t, mm, check_matmul_i8(&b));
    t = time_it(run_matmul_int8, &b, seconds);
    row("int8_vector", shape, t, mm, -1);
    t = time_it(run_int8_decomp, &b, seconds);
    row("int8_decomp", shape, t, mm, -1);
    snprintf(shape, sizeof shape, "%dx%d block 32", MM_OC, MM_C);
    t = time_it(run_dequant4, &b, seconds);
    row("dequant_int4", shape, t, (double)MM_OC * MM_C, -1);

    free(b.inp), free(b.w), free(b.out), free(b.dout), free(b.dinp), free(b.dw);
    free(b.q), free(b.k), free(b.v), free(b.ao), free(b.dao), free(b.lse);
    free(b.dq), free(b.dk), free(b.dv), free(b.scratch);
    free(b.xq), free(b.wq), free(b.w4), free(b.acc), free(b.sx), free(b.sw), free(b.s4), free(b.xo);
    free(b.dscratch);
    return 0;
}
