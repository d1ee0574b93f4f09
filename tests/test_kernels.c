/* test_kernels.c — the CPU kernels (kernels/kern.h) against values computed
 * independently: by hand, by a naive reference in double, and, for every
 * backward, by central finite differences of the kernel's own forward
 * (docs/runtime.md, "Kernels"). Backward tests pre-fill the gradient outputs
 * with random values, so they also check that the kernels accumulate (+=). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu/kern_math.h"
#include "kern.h"
#include "golden_file.h"
#include "kern_infer.h"
#include "kern_kd.h"
#include "tu_rng.h"

/* ---- helpers --------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

/* Uniform in [-1, 1) (tu_rng.h). */
static float rnd(void) { return tu_rnd(&rng_state); }

static float *alloc_f(int64_t n) {
    float *p = calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    assert_non_null(p);
    return p;
}

static float *rand_f(int64_t n, float scale) {
    float *p = alloc_f(n);
    for (int64_t i = 0; i < n; i++)
        p[i] = scale * rnd();
    return p;
}

static float *copy_f(const float *x, int64_t n) {
    float *p = alloc_f(n);
    memcpy(p, x, (size_t)n * sizeof *p);
    return p;
}

static double dot_d(const float *a, const float *b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

/* after -= before: the part a backward added. */
static void sub_f(float *after, const float *before, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        after[i] -= before[i];
}

/* Sets the OpenMP thread count; 0 restores the one the test started with. */
static void set_threads(int n) {
#ifdef _OPENMP
    static int initial;
    if (!initial) initial = omp_get_max_threads();
    omp_set_num_threads(n ? n : initial);
#else
    (void)n;
#endif
}

/* |actual - expected| <= tol, in double, with the values in the message. */
#define CHECK_NEAR(actual, expected, tol)                                                          \
    do {                                                                                           \
        const double a_ = (actual), e_ = (expected);                                               \
        if (!(fabs(a_ - e_) <= (tol)))                                                             \
            fail_msg("%s = %.9g, expected %.9g (tolerance %g)", #actual, a_, e_, (double)(tol));   \
    } while (0)

typedef double (*loss_fn)(void *ctx);

/* Finite-difference step and the tolerance fp32 allows: the largest
 * |analytic - central difference| over the tensor, relative to its largest
 * |central difference|. */
#define FD_H   1e-2f
#define FD_TOL 2e-3

/* Central differences of loss(ctx) with respect to x[0..n), against the
 * analytic gradient `an`; returns the relative error defined above. */
static double fd_err(loss_fn loss, void *ctx, float *x, const float *an, int64_t n) {
    double maxfd = 0.0, maxerr = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float x0 = x[i], xp = x0 + FD_H, xm = x0 - FD_H;
        x[i] = xp;
        const double lp = loss(ctx);
        x[i] = xm;
        const double lm = loss(ctx);
        x[i] = x0;
        const double fd = (lp - lm) / ((double)xp - (double)xm);
        maxfd = fmax(maxfd, fabs(fd));
        maxerr = fmax(maxerr, fabs(fd - (double)an[i]));
    }
    return maxerr / fmax(maxfd, 1e-12);
}

#define CHECK_GRAD(what, loss, ctx, x, an, n)                                                      \
    do {                                                                                           \
        const double e_ = fd_err(loss, ctx, x, an, n);                                             \
        if (getenv("FD_VERBOSE")) print_message("%s: %.3g\n", what, e_);                           \
        if (!(e_ <= FD_TOL)) fail_msg("%s: relative error %.3g > %.3g", what, e_, FD_TOL);         \
    } while (0)

/* ---- matmul ---------------------------------------------------------------- */

/* Shapes on one thread and, past the threading threshold, split in uneven
 * blocks of 16 rows over 3 threads. */
static const int64_t mm_shapes[][3] = {{1, 1, 1},    {7, 5, 3},    {33, 17, 29},
                                       {64, 96, 80}, {50, 70, 90}, {37, 100, 300}};

static void test_matmul_fwd(void **state) {
    (void)state;
    for (int threads = 1; threads <= 3; threads += 2)
        for (size_t s = 0; s < sizeof mm_shapes / sizeof mm_shapes[0]; s++) {
            set_threads(threads);
            const int64_t *shapes = mm_shapes[s];
            const int64_t N = shapes[0], C = shapes[1], OC = shapes[2];
            float *inp = rand_f(N * C, 1.0f), *w = rand_f(OC * C, 1.0f), *out = alloc_f(N * OC);
            kern_matmul_fwd(out, inp, w, N, C, OC);
            for (int64_t n = 0; n < N; n++)
                for (int64_t o = 0; o < OC; o++) {
                    double ref = 0.0;
                    for (int64_t c = 0; c < C; c++)
                        ref += (double)inp[n * C + c] * w[o * C + c];
                    if (fabs(out[n * OC + o] - ref) > 1e-5 * (1.0 + fabs(ref)))
                        fail_msg("matmul %lldx%lldx%lld [%lld][%lld]: %g, naive %g", (long long)N,
                                 (long long)C, (long long)OC, (long long)n, (long long)o,
                                 out[n * OC + o], ref);
                }
            free(inp), free(w), free(out);
        }
    set_threads(0);
}

/* The backward against naive sums, with the accumulation, on the same shapes. */
static void test_matmul_bwd_naive(void **state) {
    (void)state;
    for (int threads = 1; threads <= 3; threads += 2)
        for (size_t s = 0; s < sizeof mm_shapes / sizeof mm_shapes[0]; s++) {
            set_threads(threads);
            const int64_t N = mm_shapes[s][0], C = mm_shapes[s][1], OC = mm_shapes[s][2];
            float *inp = rand_f(N * C, 1.0f), *w = rand_f(OC * C, 1.0f),
                  *dout = rand_f(N * OC, 1.0f);
            float *dinp0 = rand_f(N * C, 1.0f), *dw0 = rand_f(OC * C, 1.0f);
            float *dinp = copy_f(dinp0, N * C), *dw = copy_f(dw0, OC * C);
            kern_matmul_bwd(dinp, dw, dout, inp, w, N, C, OC);
            for (int64_t n = 0; n < N; n++)
                for (int64_t c = 0; c < C; c++) {
                    double ref = dinp0[n * C + c];
                    for (int64_t o = 0; o < OC; o++)
                        ref += (double)dout[n * OC + o] * w[o * C + c];
                    CHECK_NEAR(dinp[n * C + c], ref, 1e-5 * (1.0 + fabs(ref)) * sqrt((double)OC));
                }
            for (int64_t o = 0; o < OC; o++)
                for (int64_t c = 0; c < C; c++) {
                    double ref = dw0[o * C + c];
                    for (int64_t n = 0; n < N; n++)
                        ref += (double)dout[n * OC + o] * inp[n * C + c];
                    CHECK_NEAR(dw[o * C + c], ref, 1e-5 * (1.0 + fabs(ref)) * sqrt((double)N));
                }
            free(inp), free(w), free(dout), free(dinp0), free(dw0), free(dinp), free(dw);
        }
    set_threads(0);
}

typedef struct {
    float *inp, *w, *out, *dout;
    int64_t N, C, OC;
} matmul_ctx;

static double matmul_loss(void *p) {
    matmul_ctx *c = p;
    kern_matmul_fwd(c->out, c->inp, c->w, c->N, c->C, c->OC);
    return dot_d(c->dout, c->out, c->N * c->OC);
}

static void test_matmul_bwd(void **state) {
    (void)state;
    matmul_ctx c = {.N = 6, .C = 5, .OC = 7};
    c.inp = rand_f(c.N * c.C, 1.0f), c.w = rand_f(c.OC * c.C, 1.0f);
    c.out = alloc_f(c.N * c.OC), c.dout = rand_f(c.N * c.OC, 1.0f);
    float *dinp0 = rand_f(c.N * c.C, 1.0f), *dw0 = rand_f(c.OC * c.C, 1.0f);
    float *dinp = copy_f(dinp0, c.N * c.C), *dw = copy_f(dw0, c.OC * c.C);
    kern_matmul_bwd(dinp, dw, c.dout, c.inp, c.w, c.N, c.C, c.OC);
    sub_f(dinp, dinp0, c.N * c.C), sub_f(dw, dw0, c.OC * c.C);
    CHECK_GRAD("matmul dinp", matmul_loss, &c, c.inp, dinp, c.N * c.C);
    CHECK_GRAD("matmul dw", matmul_loss, &c, c.w, dw, c.OC * c.C);
    kern_matmul_bwd(NULL, NULL, c.dout, c.inp, c.w, c.N, c.C, c.OC); /* skipped, no crash */
    free(c.inp), free(c.w), free(c.out), free(c.dout);
    free(dinp0), free(dw0), free(dinp), free(dw);
}

/* ---- embedding ------------------------------------------------------------- */

typedef struct {
    float *wte, *out, *dout;
    const int32_t *tokens;
    int64_t N, C;
} embed_ctx;

static double embed_loss(void *p) {
    embed_ctx *c = p;
    kern_embed_fwd(c->out, c->tokens, c->wte, c->N, c->C);
    return dot_d(c->dout, c->out, c->N * c->C);
}

static void test_embed(void **state) {
    (void)state;
    const int32_t tokens[] = {3, 0, 3, 2, 3}; /* token 3 three times, 1 never */
    const int64_t V = 4, N = 5, C = 6;
    embed_ctx c = {.tokens = tokens, .N = N, .C = C};
    c.wte = rand_f(V * C, 1.0f), c.out = alloc_f(N * C), c.dout = rand_f(N * C, 1.0f);
    kern_embed_fwd(c.out, tokens, c.wte, N, C);
    for (int64_t n = 0; n < N; n++)
        assert_memory_equal(c.out + n * C, c.wte + tokens[n] * C, (size_t)C * sizeof(float));
    float *d0 = rand_f(V * C, 1.0f), *d = copy_f(d0, V * C);
    kern_embed_bwd(d, c.dout, tokens, N, C);
    sub_f(d, d0, V * C);
    for (int64_t ch = 0; ch < C; ch++) { /* by hand: row 3 = dout[0] + dout[2] + dout[4] */
        CHECK_NEAR(d[3 * C + ch], c.dout[ch] + c.dout[2 * C + ch] + c.dout[4 * C + ch], 1e-6);
        CHECK_NEAR(d[1 * C + ch], 0.0f, 1e-6);
    }
    CHECK_GRAD("embed dwte", embed_loss, &c, c.wte, d, V * C);
    kern_embed_bwd(NULL, c.dout, tokens, N, C);
    free(c.wte), free(c.out), free(c.dout), free(d0), free(d);
}

/* ---- RMSNorm --------------------------------------------------------------- */

typedef struct {
    float *inp, *w, *out, *rstd, *dout;
    int64_t N, C;
    float eps;
} rms_ctx;

static double rms_loss(void *p) {
    rms_ctx *c = p;
    kern_rmsnorm_fwd(c->out, c->rstd, c->inp, c->w, c->N, c->C, c->eps);
    return dot_d(c->dout, c->out, c->N * c->C);
}

static void test_rmsnorm(void **state) {
    (void)state;
    rms_ctx c = {.N = 4, .C = 8, .eps = 1e-5f};
    const int64_t NC = c.N * c.C;
    c.inp = rand_f(NC, 2.0f), c.w = rand_f(c.C, 1.0f), c.out = alloc_f(NC);
    c.rstd = alloc_f(c.N), c.dout = rand_f(NC, 1.0f);
    kern_rmsnorm_fwd(c.out, c.rstd, c.inp, c.w, c.N, c.C, c.eps);
    for (int64_t n = 0; n < c.N; n++) {
        double ss = 0.0;
        for (int64_t i = 0; i < c.C; i++)
            ss += (double)c.inp[n * c.C + i] * c.inp[n * c.C + i];
        const double r = 1.0 / sqrt(ss / (double)c.C + c.eps);
        CHECK_NEAR(c.rstd[n], r, 1e-5 * r);
        for (int64_t i = 0; i < c.C; i++)
            CHECK_NEAR(c.out[n * c.C + i], c.inp[n * c.C + i] * r * c.w[i], 1e-5);
    }
    /* by hand: x = [3, 4], w = [1, 2], eps = 0: rms = sqrt(12.5), out = [3, 8] / sqrt(12.5) */
    const float x2[] = {3, 4}, w2[] = {1, 2};
    float o2[2], r2;
    kern_rmsnorm_fwd(o2, &r2, x2, w2, 1, 2, 0.0f);
    CHECK_NEAR(r2, 1.0 / sqrt(12.5), 1e-7);
    CHECK_NEAR(o2[0], 3.0 / sqrt(12.5), 1e-6);
    CHECK_NEAR(o2[1], 8.0 / sqrt(12.5), 1e-6);

    float *dx0 = rand_f(NC, 1.0f), *dw0 = rand_f(c.C, 1.0f);
    float *dx = copy_f(dx0, NC), *dw = copy_f(dw0, c.C);
    kern_rmsnorm_bwd(dx, dw, c.dout, c.inp, c.w, c.rstd, c.N, c.C);
    sub_f(dx, dx0, NC), sub_f(dw, dw0, c.C);
    CHECK_GRAD("rmsnorm dinp", rms_loss, &c, c.inp, dx, NC);
    CHECK_GRAD("rmsnorm dw", rms_loss, &c, c.w, dw, c.C);
    kern_rmsnorm_bwd(NULL, NULL, c.dout, c.inp, c.w, c.rstd, c.N, c.C);
    free(c.inp), free(c.w), free(c.out), free(c.rstd), free(c.dout);
    free(dx0), free(dw0), free(dx), free(dw);
}

/* ---- RoPE ------------------------------------------------------------------ */

static void test_rope_by_hand(void **state) {
    (void)state;
    /* D = 4, theta = 100: pair (x0, x2) turns by t, pair (x1, x3) by t / 100^(2/4) = t / 10.
     * One head, T = 3, x = [1, 2, 3, 4] at every position. */
    const int64_t T = 3, D = 4;
    float x[3 * 4];
    for (int64_t t = 0; t < T; t++)
        for (int64_t d = 0; d < D; d++)
            x[t * D + d] = (float)(d + 1);
    kern_rope_fwd(x, 1, T, 1, D, 100.0f);
    for (int64_t t = 0; t < T; t++) {
        const double a0 = (double)t, a1 = (double)t / 10.0;
        const double e[4] = {1 * cos(a0) - 3 * sin(a0), 2 * cos(a1) - 4 * sin(a1),
                             3 * cos(a0) + 1 * sin(a0), 4 * cos(a1) + 2 * sin(a1)};
        for (int64_t d = 0; d < D; d++)
            CHECK_NEAR(x[t * D + d], e[d], 1e-6);
    }
    /* a head wider than the kernel's table of 128 frequencies: against the formula */
    {
        const int64_t T2 = 3, NH = 2, D2 = 300, n = T2 * NH * D2;
        float *y = rand_f(n, 1.0f), *y0 = copy_f(y, n);
        kern_rope_fwd(y, 1, T2, NH, D2, 10000.0f);
        for (int64_t t = 0; t < T2; t++)
            for (int64_t h = 0; h < NH; h++)
                for (int64_t i = 0; i < D2 / 2; i++) {
                    const int64_t o = (t * NH + h) * D2;
                    const double a = (double)t / pow(10000.0, 2.0 * (double)i / (double)D2);
                    const double e0 = y0[o + i] * cos(a) - y0[o + i + D2 / 2] * sin(a);
                    const double e1 = y0[o + i + D2 / 2] * cos(a) + y0[o + i] * sin(a);
                    CHECK_NEAR(y[o + i], e0, 1e-5);
                    CHECK_NEAR(y[o + i + D2 / 2], e1, 1e-5);
                }
        free(y), free(y0);
    }
    /* t = 0 is the identity; the rotation keeps each pair's length */
    CHECK_NEAR(x[0], 1.0f, 0.0f);
    CHECK_NEAR(x[2], 3.0f, 0.0f);
    CHECK_NEAR(hypot(x[2 * D + 0], x[2 * D + 2]), sqrt(10.0), 1e-6);
}

typedef struct {
    float *x, *tmp, *dout;
    int64_t B, T, NH, D;
    float theta;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    const int64_t n = c->B * c->T * c->NH * c->D;
    memcpy(c->tmp, c->x, (size_t)n * sizeof(float));
    kern_rope_fwd(c->tmp, c->B, c->T, c->NH, c->D, c->theta);
    return dot_d(c->dout, c->tmp, n);
}

static void test_rope_bwd(void **state) {
    (void)state;
    rope_ctx c = {.B = 2, .T = 5, .NH = 3, .D = 8, .theta = 10000.0f};
    const int64_t n = c.B * c.T * c.NH * c.D;
    c.x = rand_f(n, 1.0f), c.tmp = alloc_f(n), c.dout = rand_f(n, 1.0f);
    float *g = copy_f(c.dout, n); /* the backward rotates in place */
    kern_rope_bwd(g, c.B, c.T, c.NH, c.D, c.theta);
    CHECK_GRAD("rope dx", rope_loss, &c, c.x, g, n);
    /* fwd then bwd is the identity */
    float *y = copy_f(c.x, n);
    kern_rope_fwd(y, c.B, c.T, c.NH, c.D, c.theta);
    kern_rope_bwd(y, c.B, c.T, c.NH, c.D, c.theta);
    for (int64_t i = 0; i < n; i++)
        CHECK_NEAR(y[i], c.x[i], 1e-6);
    free(c.x), free(c.tmp), free(c.dout), free(g), free(y);
}

/* ---- attention ------------------------------------------------------------- */

/* Naive causal GQA attention in double: out[B][T][H][D], lse[B][T][H]. */
static void attn_ref(double *out, double *lse, const float *q, const float *k, const float *v,
                     int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D) {
    double *s = malloc((size_t)T * sizeof *s);
    assert_non_null(s);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            const int64_t g = h / (H / KVH);
            for (int64_t i = 0; i < T; i++) {
                const float *qi = q + ((b * T + i) * H + h) * D;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j <= i; j++) {
                    const float *kj = k + ((b * T + j) * KVH + g) * D;
                    double d = 0.0;
                    for (int64_t x = 0; x < D; x++)
                        d += (double)qi[x] * kj[x];
                    s[j] = d / sqrt((double)D);
                    mx = fmax(mx, s[j]);
                }
                for (int64_t j = 0; j <= i; j++)
                    sum += exp(s[j] - mx);
                lse[(b * T + i) * H + h] = mx + log(sum);
                double *o = out + ((b * T + i) * H + h) * D;
                for (int64_t x = 0; x < D; x++)
                    o[x] = 0.0;
                for (int64_t j = 0; j <= i; j++) {
                    const double p = exp(s[j] - mx) / sum;
                    const float *vj = v + ((b * T + j) * KVH + g) * D;
                    for (int64_t x = 0; x < D; x++)
                        o[x] += p * vj[x];
                }
            }
        }
    free(s);
}

static void check_attn_fwd(int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D) {
    const int64_t nq = B * T * H * D, nk = B * T * KVH * D;
    float *q = rand_f(nq, 1.5f), *k = rand_f(nk, 1.5f), *v = rand_f(nk, 1.0f);
    float *out = alloc_f(nq), *lse = alloc_f(B * T * H);
    float *scratch = alloc_f(kern_attn_scratch_floats(T));
    double *oref = malloc((size_t)nq * sizeof *oref),
           *lref = malloc((size_t)(B * T * H) * sizeof *lref);
    assert_non_null(oref), assert_non_null(lref);
    kern_attn_fwd(out, lse, q, k, v, B, T, H, KVH, D, scratch);
    attn_ref(oref, lref, q, k, v, B, T, H, KVH, D);
    for (int64_t i = 0; i < nq; i++)
        if (fabs(out[i] - oref[i]) > 2e-6 * (1.0 + fabs(oref[i])))
            fail_msg("attention B%lld T%lld H%lld KVH%lld D%lld out[%lld] %.9g, reference %.9g",
                     (long long)B, (long long)T, (long long)H, (long long)KVH, (long long)D,
                     (long long)i, out[i], oref[i]);
    for (int64_t i = 0; i < B * T * H; i++)
        if (fabs(lse[i] - lref[i]) > 2e-6 * (1.0 + fabs(lref[i])))
            fail_msg("attention lse[%lld] %.9g, reference %.9g", (long long)i, lse[i], lref[i]);
    free(q), free(k), free(v), free(out), free(lse), free(scratch), free(oref), free(lref);
}

/* GQA (H = 4 over KVH = 2), one block and several (T > 64, not a multiple),
 * the serial path (one unit of work) and the threaded one. */
static void test_attn_fwd_reference(void **state) {
    (void)state;
    for (int threads = 1; threads <= 3; threads += 2) {
        set_threads(threads);
        check_attn_fwd(2, 5, 4, 2, 8);
        check_attn_fwd(1, 150, 4, 2, 8);
        check_attn_fwd(1, 70, 1, 1, 16);
        check_attn_fwd(2, 3, 2, 1, 4); /* MQA */
    }
    set_threads(0);
    /* T = 1: the output is v itself and lse the one score */
    const float q[] = {1, 2}, k[] = {3, -1}, v[] = {0.5f, -2};
    float out[2], lse[1], scratch[64];
    assert_true(kern_attn_scratch_floats(1) <= 64);
    kern_attn_fwd(out, lse, q, k, v, 1, 1, 1, 1, 2, scratch);
    CHECK_NEAR(out[0], 0.5f, 0.0f);
    CHECK_NEAR(out[1], -2.0f, 0.0f);
    CHECK_NEAR(lse[0], (1 * 3 - 2 * 1) / sqrt(2.0), 1e-6);
}

/* Changing token t0 (q, k and v, every head) must leave outputs before t0 unchanged. */
static void test_attn_causal(void **state) {
    (void)state;
    const int64_t B = 2, T = 90, H = 4, KVH = 2, D = 8, t0 = 40;
    const int64_t nq = B * T * H * D, nk = B * T * KVH * D;
    float *q = rand_f(nq, 1.0f), *k = rand_f(nk, 1.0f), *v = rand_f(nk, 1.0f);
    float *o1 = alloc_f(nq), *o2 = alloc_f(nq), *lse = alloc_f(B * T * H);
    float *scratch = alloc_f(kern_attn_scratch_floats(T));
    kern_attn_fwd(o1, lse, q, k, v, B, T, H, KVH, D, scratch);
    for (int64_t b = 0; b < B; b++) {
        for (int64_t x = 0; x < H * D; x++)
            q[(b * T + t0) * H * D + x] += 3.0f;
        for (int64_t x = 0; x < KVH * D; x++) {
            k[(b * T + t0) * KVH * D + x] += 3.0f;
            v[(b * T + t0) * KVH * D + x] -= 5.0f;
        }
    }
    kern_attn_fwd(o2, lse, q, k, v, B, T, H, KVH, D, scratch);
    for (int64_t b = 0; b < B; b++) {
        const int64_t row = H * D;
        assert_memory_equal(o1 + b * T * row, o2 + b * T * row, (size_t)(t0 * row) * 4);
        double diff = 0.0; /* and the token itself and later ones do change */
        for (int64_t x = t0 * row; x < T * row; x++)
            diff += fabs(o1[b * T * row + x] - o2[b * T * row + x]);
        assert_true(diff > 1.0);
    }
    free(q), free(k), free(v), free(o1), free(o2), free(lse), free(scratch);
}

typedef struct {
    float *q, *k, *v, *out, *lse, *dout, *scratch;
    int64_t B, T, H, KVH, D;
} attn_ctx;

static double attn_loss(void *p) {
    attn_ctx *c = p;
    kern_attn_fwd(c->out, c->lse, c->q, c->k, c->v, c->B, c->T, c->H, c->KVH, c->D, c->scratch);
    return dot_d(c->dout, c->out, c->B * c->T * c->H * c->D);
}

static void check_attn_bwd(int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D) {
    attn_ctx c = {.B = B, .T = T, .H = H, .KVH = KVH, .D = D};
    const int64_t nq = B * T * H * D, nk = B * T * KVH * D;
    c.q = rand_f(nq, 1.0f), c.k = rand_f(nk, 1.0f), c.v = rand_f(nk, 1.0f);
    c.out = alloc_f(nq), c.lse = alloc_f(B * T * H), c.dout = rand_f(nq, 1.0f);
    c.scratch = alloc_f(kern_attn_scratch_floats(T));
    float *dq0 = rand_f(nq, 1.0f), *dk0 = rand_f(nk, 1.0f), *dv0 = rand_f(nk, 1.0f);
    float *dq = copy_f(dq0, nq), *dk = copy_f(dk0, nk), *dv = copy_f(dv0, nk);
    attn_loss(&c);
    kern_attn_bwd(dq, dk, dv, c.dout, c.q, c.k, c.v, c.out, c.lse, B, T, H, KVH, D, c.scratch);
    sub_f(dq, dq0, nq), sub_f(dk, dk0, nk), sub_f(dv, dv0, nk);
    /* one output at a time gives the same (NULL outputs skipped) */
    float *dq1 = alloc_f(nq), *dk1 = alloc_f(nk), *dv1 = alloc_f(nk);
    kern_attn_bwd(dq1, NULL, NULL, c.dout, c.q, c.k, c.v, c.out, c.lse, B, T, H, KVH, D, c.scratch);
    kern_attn_bwd(NULL, dk1, NULL, c.dout, c.q, c.k, c.v, c.out, c.lse, B, T, H, KVH, D, c.scratch);
    kern_attn_bwd(NULL, NULL, dv1, c.dout, c.q, c.k, c.v, c.out, c.lse, B, T, H, KVH, D, c.scratch);
    for (int64_t i = 0; i < nq; i++)
        CHECK_NEAR(dq1[i], dq[i], 1e-5);
    for (int64_t i = 0; i < nk; i++)
        CHECK_NEAR(dk1[i], dk[i], 1e-5);
    for (int64_t i = 0; i < nk; i++)
        CHECK_NEAR(dv1[i], dv[i], 1e-5);
    CHECK_GRAD("attention dq", attn_loss, &c, c.q, dq, nq);
    CHECK_GRAD("attention dk", attn_loss, &c, c.k, dk, nk);
    CHECK_GRAD("attention dv", attn_loss, &c, c.v, dv, nk);
    free(c.q), free(c.k), free(c.v), free(c.out), free(c.lse), free(c.dout), free(c.scratch);
    free(dq0), free(dk0), free(dv0), free(dq), free(dk), free(dv), free(dq1), free(dk1), free(dv1);
}

static void test_attn_bwd(void **state) {
    (void)state;
    for (int threads = 1; threads <= 3; threads += 2) {
        set_threads(threads);
        check_attn_bwd(2, 5, 4, 2, 8);
        check_attn_bwd(1, 70, 2, 1, 4); /* two query blocks; one unit of work */
    }
    set_threads(0);
}

/* ---- ring attention (context parallelism) ------------------------------------ */

/* The zig-zag layout: the sequence of T tokens cut into 2*cp chunks, rank c
 * holding chunks c and 2*cp-1-c. Gathers rank c's rows of x ([B][T][W]) into
 * out ([B][T/cp][W]) and their positions into pos (if not NULL). */
static void zigzag_rows(float *out, int64_t *pos, const float *x, int64_t B, int64_t T, int64_t W,
                        int64_t cp, int64_t c) {
    const int64_t Tc = T / (2 * cp), chunk[2] = {c, 2 * cp - 1 - c};
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < 2; h++)
            for (int64_t t = 0; t < Tc; t++) {
                const int64_t g = chunk[h] * Tc + t, l = h * Tc + t;
                memcpy(out + (b * 2 * Tc + l) * W, x + (b * T + g) * W, (size_t)W * 4);
                if (pos) pos[l] = g;
            }
}

/* Rank c's forward over the ring (blocks of ranks c, c-1, ..., as the K/V
 * pass arrive) and backward, against the full causal kernel on the same
 * inputs: out and lse equal to rounding, dq / dk / dv (summed over the ranks
 * that add into a block) likewise. */
static void check_attn_ring(int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D, int64_t cp) {
    const int64_t nq = B * T * H * D, nk = B * T * KVH * D, Tl = T / cp;
    const int64_t lq = B * Tl * H * D, lk = B * Tl * KVH * D;
    float *q = rand_f(nq, 1.5f), *k = rand_f(nk, 1.5f), *v = rand_f(nk, 1.0f);
    float *dout = rand_f(nq, 1.0f), *out = alloc_f(nq), *lse = alloc_f(B * T * H);
    float *dq = alloc_f(nq), *dk = alloc_f(nk), *dv = alloc_f(nk);
    float *scratch = alloc_f(kern_attn_scratch_floats(T));
    kern_attn_fwd(out, lse, q, k, v, B, T, H, KVH, D, scratch);
    kern_attn_bwd(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, KVH, D, scratch);
    float *bs = alloc_f(kern_attn_block_scratch_floats(Tl, Tl, D));
    float *rq = alloc_f(cp * lq), *rk = alloc_f(cp * lk), *rv = alloc_f(cp * lk);
    float *rdo = alloc_f(cp * lq), *ro = alloc_f(cp * lq), *rl = alloc_f(cp * B * Tl * H);
    float *rdq = alloc_f(cp * lq), *rdk = alloc_f(cp * lk), *rdv = alloc_f(cp * lk);
    float *eo = alloc_f(lq), *el = alloc_f(B * Tl * H), *e = alloc_f(lq);
    int64_t *pos = malloc((size_t)(cp * Tl) * sizeof *pos);
    assert_non_null(pos);
    for (int64_t c = 0; c < cp; c++) {
        zigzag_rows(rq + c * lq, pos + c * Tl, q, B, T, H * D, cp, c);
        zigzag_rows(rk + c * lk, NULL, k, B, T, KVH * D, cp, c);
        zigzag_rows(rv + c * lk, NULL, v, B, T, KVH * D, cp, c);
        zigzag_rows(rdo + c * lq, NULL, dout, B, T, H * D, cp, c);
    }
    for (int64_t c = 0; c < cp; c++) {
        float *o = ro + c * lq, *l = rl + c * B * Tl * H;
        for (int64_t i = 0; i < B * Tl * H; i++) l[i] = -INFINITY;
        for (int64_t i = 0; i < cp; i++) {
            const int64_t s = (c - i + cp) % cp;
            kern_attn_block_fwd(o, l, rq + c * lq, rk + s * lk, rv + s * lk, pos + c * Tl,
                                pos + s * Tl, B, Tl, Tl, H, KVH, D, bs);
        }
        zigzag_rows(eo, NULL, out, B, T, H * D, cp, c);
        zigzag_rows(el, NULL, lse, B, T, H, cp, c);
        for (int64_t i = 0; i < lq; i++)
            CHECK_NEAR(o[i], eo[i], 2e-6 * (1.0 + fabs(eo[i])));
        for (int64_t i = 0; i < B * Tl * H; i++)
            CHECK_NEAR(l[i], el[i], 2e-6 * (1.0 + fabs(el[i])));
    }
    for (int64_t c = 0; c < cp; c++)
        for (int64_t i = 0; i < cp; i++) {
            const int64_t s = (c - i + cp) % cp;
            kern_attn_block_bwd(rdq + c * lq, rdk + s * lk, rdv + s * lk, rdo + c * lq,
                                rq + c * lq, rk + s * lk, rv + s * lk, ro + c * lq,
                                rl + c * B * Tl * H, pos + c * Tl, pos + s * Tl, B, Tl, Tl, H, KVH,
                                D, bs);
        }
    for (int64_t c = 0; c < cp; c++) {
        zigzag_rows(e, NULL, dq, B, T, H * D, cp, c);
        for (int64_t i = 0; i < lq; i++)
            CHECK_NEAR(rdq[c * lq + i], e[i], 1e-5 * (1.0 + fabs(e[i])));
        zigzag_rows(e, NULL, dk, B, T, KVH * D, cp, c);
        for (int64_t i = 0; i < lk; i++)
            CHECK_NEAR(rdk[c * lk + i], e[i], 1e-5 * (1.0 + fabs(e[i])));
        zigzag_rows(e, NULL, dv, B, T, KVH * D, cp, c);
        for (int64_t i = 0; i < lk; i++)
            CHECK_NEAR(rdv[c * lk + i], e[i], 1e-5 * (1.0 + fabs(e[i])));
    }
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv);
    free(scratch), free(bs), free(rq), free(rk), free(rv), free(rdo), free(ro), free(rl);
    free(rdq), free(rdk), free(rdv), free(eo), free(el), free(e), free(pos);
}

/* cp 2 and 3, GQA and MQA, one query block and several (local rows > 64),
 * serial and threaded. */
static void test_attn_ring_zigzag(void **state) {
    (void)state;
    for (int threads = 1; threads <= 3; threads += 2) {
        set_threads(threads);
        check_attn_ring(2, 20, 4, 2, 8, 2);
        check_attn_ring(1, 30, 2, 1, 4, 3);
        check_attn_ring(1, 160, 2, 1, 8, 2); /* 80 local rows: two query blocks */
    }
    set_threads(0);
}

/* A block no query sees (keys after every query) leaves the state as it is;
 * a fully visible block merged into the empty state is plain softmax attention. */
static void test_attn_block_edges(void **state) {
    (void)state;
    const float q[] = {1, 2}, k[] = {3, -1, 0, 1}, v[] = {0.5f, -2, 1, 1};
    const int64_t qpos[] = {1}, late[] = {2, 3}, early[] = {0, 1};
    float out[2] = {7, 8}, lse[1] = {-INFINITY}, scratch[512];
    assert_true(kern_attn_block_scratch_floats(1, 2, 2) <= 512);
    kern_attn_block_fwd(out, lse, q, k, v, qpos, late, 1, 1, 2, 1, 1, 2, scratch);
    CHECK_NEAR(out[0], 7.0f, 0.0f);
    assert_true(lse[0] == -INFINITY);
    out[0] = out[1] = 0;
    kern_attn_block_fwd(out, lse, q, k, v, qpos, early, 1, 1, 2, 1, 1, 2, scratch);
    const double s0 = (3 - 2) / sqrt(2.0), s1 = 2 / sqrt(2.0), z = exp(s0) + exp(s1);
    CHECK_NEAR(lse[0], log(z), 1e-6);
    CHECK_NEAR(out[0], (exp(s0) * 0.5 + exp(s1) * 1) / z, 1e-6);
    CHECK_NEAR(out[1], (exp(s0) * -2 + exp(s1) * 1) / z, 1e-6);
}

/* RoPE by position: rotating a rank's zig-zag rows by their global positions
 * gives, bit for bit, the rows of the whole sequence rotated by kern_rope_fwd. */
static void test_rope_positions(void **state) {
    (void)state;
    const int64_t B = 2, T = 12, NH = 3, D = 8, cp = 3, W = NH * D, Tl = T / cp;
    float *x = rand_f(B * T * W, 1.0f), *loc = alloc_f(B * Tl * W), *ref = alloc_f(B * Tl * W);
    int64_t pos[4];
    for (int64_t c = 0; c < cp; c++) {
        zigzag_rows(loc, pos, x, B, T, W, cp, c);
        kern_rope_pos_fwd(loc, pos, B, Tl, NH, D, 10000.0f);
        float *full = copy_f(x, B * T * W);
        kern_rope_fwd(full, B, T, NH, D, 10000.0f);
        zigzag_rows(ref, NULL, full, B, T, W, cp, c);
        assert_memory_equal(loc, ref, (size_t)(B * Tl * W) * 4);
        kern_rope_pos_bwd(loc, pos, B, Tl, NH, D, 10000.0f); /* and back */
        zigzag_rows(ref, NULL, x, B, T, W, cp, c);
        for (int64_t i = 0; i < B * Tl * W; i++)
            CHECK_NEAR(loc[i], ref[i], 1e-6);
        free(full);
    }
    free(x), free(loc), free(ref);
}

/* ---- SwiGLU ---------------------------------------------------------------- */

typedef struct {
    float *a, *b, *out, *dout;
    int64_t n;
} swiglu_ctx;

static double swiglu_loss(void *p) {
    swiglu_ctx *c = p;
    kern_swiglu_fwd(c->out, c->a, c->b, c->n);
    return dot_d(c->dout, c->out, c->n);
}

static void test_swiglu(void **state) {
    (void)state;
    /* by hand: silu(0) = 0, silu(ln 3) = ln 3 * 3/4 (sigmoid(ln 3) = 3/4), silu(-100) ~ 0 */
    const float a3[] = {0.0f, logf(3.0f), -100.0f, 100.0f}, b3[] = {5.0f, 2.0f, 1.0f, 0.5f};
    float o3[4];
    kern_swiglu_fwd(o3, a3, b3, 4);
    CHECK_NEAR(o3[0], 0.0f, 0.0f);
    CHECK_NEAR(o3[1], log(3.0) * 0.75 * 2.0, 1e-6);
    CHECK_NEAR(o3[2], 0.0f, 1e-30);
    CHECK_NEAR(o3[3], 50.0f, 1e-5);
    swiglu_ctx c = {.n = 40};
    c.a = rand_f(c.n, 4.0f), c.b = rand_f(c.n, 1.0f), c.out = alloc_f(c.n);
    c.dout = rand_f(c.n, 1.0f);
    float *da0 = rand_f(c.n, 1.0f), *db0 = rand_f(c.n, 1.0f);
    float *da = copy_f(da0, c.n), *db = copy_f(db0, c.n);
    kern_swiglu_bwd(da, db, c.dout, c.a, c.b, c.n);
    sub_f(da, da0, c.n), sub_f(db, db0, c.n);
    CHECK_GRAD("swiglu da", swiglu_loss, &c, c.a, da, c.n);
    CHECK_GRAD("swiglu db", swiglu_loss, &c, c.b, db, c.n);
    kern_swiglu_bwd(NULL, NULL, c.dout, c.a, c.b, c.n);
    free(c.a), free(c.b), free(c.out), free(c.dout), free(da0), free(db0), free(da), free(db);
}

/* ---- cross-entropy --------------------------------------------------------- */

typedef struct {
    float *logits, *probs, *losses;
    const int32_t *targets;
    int64_t N, V;
    float scale;
} xent_ctx;

static double xent_loss(void *p) {
    xent_ctx *c = p;
    kern_xent_fwd(c->probs, c->losses, c->logits, c->targets, c->N, c->V);
    double s = 0.0;
    for (int64_t n = 0; n < c->N; n++)
        s += c->losses[n];
    return c->scale * s;
}

static void test_xent(void **state) {
    (void)state;
    /* by hand: logits [0, ln 2, ln 3] -> exp = [1, 2, 3], softmax [1/6, 2/6, 3/6];
     * target 2 loses -ln(1/2) = ln 2, target 0 loses ln 6. Adding a constant changes nothing. */
    const float lg[] = {0.0f,   logf(2.0f),          logf(3.0f),
                        100.0f, 100.0f + logf(2.0f), 100.0f + logf(3.0f)};
    const int32_t tg[] = {2, 0};
    float pr[6], ls[2];
    kern_xent_fwd(pr, ls, lg, tg, 2, 3);
    for (int r = 0; r < 2; r++)
        for (int v = 0; v < 3; v++)
            CHECK_NEAR(pr[r * 3 + v], (v + 1) / 6.0, 1e-6);
    CHECK_NEAR(ls[0], log(2.0), 1e-6);
    CHECK_NEAR(ls[1], log(6.0), 1e-5);
    /* a target probability that underflows still gives a finite loss */
    const float big[] = {0.0f, 200.0f};
    const int32_t t0[] = {0};
    kern_xent_fwd(pr, ls, big, t0, 1, 2);
    CHECK_NEAR(ls[0], 200.0f, 1e-4);
    /* backward by hand: scale (probs - onehot) = 0.5 [1/6, 2/6, -3/6] */
    float dl[3] = {1.0f, 1.0f, 1.0f};
    kern_xent_fwd(pr, ls, lg, tg, 1, 3);
    kern_xent_bwd(dl, pr, tg, 0.5f, 1, 3);
    CHECK_NEAR(dl[0], 1.0 + 0.5 / 6, 1e-6);
    CHECK_NEAR(dl[1], 1.0 + 1.0 / 6, 1e-6);
    CHECK_NEAR(dl[2], 1.0 - 0.25, 1e-6);

    const int32_t targets[] = {0, 4, 2, 4};
    xent_ctx c = {.targets = targets, .N = 4, .V = 5, .scale = 0.25f};
    c.logits = rand_f(c.N * c.V, 3.0f), c.probs = alloc_f(c.N * c.V), c.losses = alloc_f(c.N);
    xent_loss(&c);
    float *d0 = rand_f(c.N * c.V, 1.0f), *d = copy_f(d0, c.N * c.V);
    kern_xent_bwd(d, c.probs, targets, c.scale, c.N, c.V);
    sub_f(d, d0, c.N * c.V);
    CHECK_GRAD("xent dlogits", xent_loss, &c, c.logits, d, c.N * c.V);
    kern_xent_bwd(NULL, c.probs, targets, c.scale, c.N, c.V);
    free(c.logits), free(c.probs), free(c.losses), free(d0), free(d);
}

/* ---- AdamW ----------------------------------------------------------------- */

static void test_adamw(void **state) {
    (void)state;
    /* The hyperparameters reach the kernel as fp32 (0.999f = 0.99900001287), so
     * 1 - b2 is 1.3e-5 off the decimal 0.001 that a Python float gives: v carries
     * that relative error, while v / (1 - b2^step), hence p, nearly cancels it. */
    const float lr = 0.1f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f;
    /* element 0: p = 1, g = 0.5 then -0.25; element 1: p = 2, g = 0 (decay only) */
    float p[2] = {1.0f, 2.0f}, m[2] = {0}, v[2] = {0};
    const float g1[2] = {0.5f, 0.0f}, g2[2] = {-0.25f, 0.0f};
    kern_adamw(p, m, v, g1, 2, lr, b1, b2, eps, wd, 1);
    /* step 1: p = 1 (1 - 0.001) = 0.999; m = 0.05; v = 0.001 * 0.25 = 0.00025;
     * m/(1-0.9) = 0.5, v/(1-0.999) = 0.25 -> p = 0.999 - 0.1 * 0.5 / (0.5 + 1e-8) */
    CHECK_NEAR(m[0], 0.05, 0.05 * 1e-6);
    CHECK_NEAR(v[0], 0.00025, 0.00025 * 2e-5);
    CHECK_NEAR(p[0], 0.999 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-7);
    CHECK_NEAR(p[0], 0.899000002, 1e-7);
    CHECK_NEAR(p[1], 2.0 * 0.999, 1e-7);
    kern_adamw(p, m, v, g2, 2, lr, b1, b2, eps, wd, 2);
    /* step 2: p = 0.899000002 * 0.999; m = 0.9 * 0.05 + 0.1 * (-0.25) = 0.02;
     * v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225; bc1 = 0.19, bc2 = 0.001999 */
    const double p2 =
        0.899000002 * 0.999 - 0.1 * (0.02 / 0.19) / (sqrt(0.00031225 / 0.001999) + 1e-8);
    CHECK_NEAR(m[0], 0.02, 0.02 * 1e-6);
    CHECK_NEAR(v[0], 0.00031225, 0.00031225 * 2e-5);
    CHECK_NEAR(p[0], p2, 2e-7);
    CHECK_NEAR(p[0], 0.8714672987, 2e-7);
    CHECK_NEAR(p[1], 2.0 * 0.999 * 0.999, 2e-7);
    CHECK_NEAR(m[1], 0.0f, 0.0f);
    CHECK_NEAR(v[1], 0.0f, 0.0f);
}

/* ---- bf16 ------------------------------------------------------------------ */

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_bf16(void **state) {
    (void)state;
    static const struct {
        uint32_t f32;
        uint16_t bf16;
        const char *what;
    } cases[] = {
        {0x3F800000u, 0x3F80, "1.0"},
        {0x3F808000u, 0x3F80, "1 + 2^-8: a tie, to even (down)"},
        {0x3F818000u, 0x3F82, "1 + 2^-7 + 2^-8: a tie, to even (up)"},
        {0x3F806000u, 0x3F80, "1 + 3*2^-9: below the half, down"},
        {0x3F80C000u, 0x3F81, "1 + 3*2^-8: above the half, up"},
        {0x3F80FFFFu, 0x3F81, "just below 1 + 2^-7"},
        {0xBFC00000u, 0xBFC0, "-1.5"},
        {0xBF80C000u, 0xBF81, "-(1 + 3*2^-8): magnitude rounds up"},
        {0x7F7FFFFFu, 0x7F80, "FLT_MAX rounds to +inf"},
        {0x7F7F0000u, 0x7F7F, "bf16 max, exact"},
        {0x7F800000u, 0x7F80, "+inf"},
        {0xFF800000u, 0xFF80, "-inf"},
        {0x7FC00000u, 0x7FC0, "quiet NaN"},
        {0x7F800001u, 0x7FC0, "signalling NaN, low payload: stays NaN, made quiet"},
        {0xFFFFFFFFu, 0xFFFF, "negative NaN, all payload bits"},
        {0x00000001u, 0x0000, "smallest subnormal rounds to +0"},
        {0x80000000u, 0x8000, "-0"},
    };
    const int64_t n = sizeof cases / sizeof cases[0];
    float in[sizeof cases / sizeof cases[0]];
    uint16_t out[sizeof cases / sizeof cases[0]];
    for (int64_t i = 0; i < n; i++)
        in[i] = from_bits(cases[i].f32);
    kern_f32_to_bf16(out, in, n);
    for (int64_t i = 0; i < n; i++)
        if (out[i] != cases[i].bf16)
            fail_msg("%s: 0x%08x -> 0x%04x, expected 0x%04x", cases[i].what, cases[i].f32, out[i],
                     cases[i].bf16);
    /* back to fp32: exact, the bits shifted up */
    float back[sizeof cases / sizeof cases[0]];
    kern_bf16_to_f32(back, out, n);
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &back[i], sizeof u);
        assert_int_equal(u, (uint32_t)out[i] << 16);
    }
    assert_true(isnan(back[13]));
}

/* ---- kern_expf (kernels/cpu/kern_math.h, used by softmax, sigmoid) ------- */

static void test_expf(void **state) {
    (void)state;
    /* within 2 ulp of exp in double over the whole range of normal results */
    double worst = 0.0, at = 0.0;
    for (int64_t i = 0; i <= 2000000; i++) {
        const float x = -87.3f + (88.7f + 87.3f) * (float)i / 2000000.0f;
        const double e = exp((double)x);
        const float ef = (float)e;
        const double ulp = (double)nextafterf(ef, INFINITY) - (double)ef;
        const double err = fabs((double)kern_expf(x) - e) / ulp;
        if (err > worst) worst = err, at = x;
    }
    if (worst > 2.0) fail_msg("kern_expf: %.2f ulp at %.9g", worst, at);
    CHECK_NEAR(kern_expf(0.0f), 1.0, 0.0);
    CHECK_NEAR(kern_expf(-100.0f), exp(-100.0), 1e-45); /* subnormal */
    CHECK_NEAR(kern_expf(-200.0f), 0.0, 0.0);
    assert_true(isinf(kern_expf(89.0f)) && kern_expf(89.0f) > 0);
    assert_true(kern_expf(-INFINITY) == 0.0f);
    assert_true(isinf(kern_expf(INFINITY)));
    assert_true(isnan(kern_expf(NAN)));
}

/* ---- add ------------------------------------------------------------------- */

static void test_add(void **state) {
    (void)state;
    const int64_t n = 100003; /* past the threading threshold, odd */
    float *a = rand_f(n, 1.0f), *b = rand_f(n, 1.0f), *out = alloc_f(n);
    kern_add(out, a, b, n);
    for (int64_t i = 0; i < n; i++)
        CHECK_NEAR(out[i], a[i] + b[i], 0.0f);
    kern_add(a, a, b, n); /* in place */
    assert_memory_equal(a, out, (size_t)n * sizeof *a);
    free(a), free(b), free(out);
}

/* ---- mixture of experts ---------------------------------------------------- */

typedef struct {
    float *logits, *probs, *gate, *G, *Q;
    int32_t *idx, *idx_ref;
    int64_t N, E, K;
} router_ctx;

/* sum G . gate + sum Q . probs; fails if the choice of experts moved (a
 * finite difference across a tie would not be a derivative). */
static double router_loss(void *p) {
    router_ctx *c = p;
    kern_router_fwd(c->probs, c->idx, c->gate, c->logits, c->N, c->E, c->K);
    if (c->idx_ref) assert_memory_equal(c->idx, c->idx_ref, (size_t)(c->N * c->K) * 4);
    return dot_d(c->G, c->gate, c->N * c->K) + dot_d(c->Q, c->probs, c->N * c->E);
}

static void test_router(void **state) {
    (void)state;
    /* by hand: logits ln [1, 2, 3, 4] -> probs [.1, .2, .3, .4], top-2 = [3, 2], gate [4/7, 3/7];
     * logits ln [1, 2, 3, 3] -> probs [1, 2, 3, 3]/9: the tie between 2 and 3 goes to 2 first */
    const float lg[] = {0.0f, logf(2.0f), logf(3.0f), logf(4.0f),
                        0.0f, logf(2.0f), logf(3.0f), logf(3.0f)};
    float pr[8], gt[4];
    int32_t ix[4];
    kern_router_fwd(pr, ix, gt, lg, 2, 4, 2);
    for (int e = 0; e < 4; e++)
        CHECK_NEAR(pr[e], (e + 1) / 10.0, 1e-6);
    assert_int_equal(ix[0], 3); assert_int_equal(ix[1], 2);
    CHECK_NEAR(gt[0], 4.0 / 7, 1e-6); CHECK_NEAR(gt[1], 3.0 / 7, 1e-6);
    assert_int_equal(ix[2], 2); assert_int_equal(ix[3], 3);
    CHECK_NEAR(gt[2], 0.5, 1e-6); CHECK_NEAR(gt[3], 0.5, 1e-6);
    /* top-1 renormalised is 1 */
    kern_router_fwd(pr, ix, gt, lg, 1, 4, 1);
    assert_int_equal(ix[0], 3); CHECK_NEAR(gt[0], 1.0, 0.0);

    /* backward by central differences: logits spread 0.3 apart (shuffled per token), so
     * the step never swaps two experts; K = 1, 2, 3 of E = 6, with and without dprobs */
    for (int64_t K = 1; K <= 3; K++)
        for (int with_q = 0; with_q < 2; with_q++) {
            router_ctx c = {.N = 5, .E = 6, .K = K};
            c.logits = alloc_f(c.N * c.E);
            for (int64_t n = 0; n < c.N; n++)
                for (int64_t e = 0; e < c.E; e++)
                    c.logits[n * c.E + e] = 0.3f * (float)((e * 5 + n * 7) % 6) + 0.05f * rnd();
            c.probs = alloc_f(c.N * c.E), c.gate = alloc_f(c.N * K);
            c.G = rand_f(c.N * K, 1.0f), c.Q = with_q ? rand_f(c.N * c.E, 1.0f) : alloc_f(c.N * c.E);
            c.idx = calloc((size_t)(c.N * K), 4), c.idx_ref = NULL;
            router_loss(&c);
            c.idx_ref = calloc((size_t)(c.N * K), 4);
            memcpy(c.idx_ref, c.idx, (size_t)(c.N * K) * 4);
            float *d0 = rand_f(c.N * c.E, 1.0f), *d = copy_f(d0, c.N * c.E);
            kern_router_bwd(d, c.G, with_q ? c.Q : NULL, c.probs, c.idx, c.gate, c.N, c.E, K);
            sub_f(d, d0, c.N * c.E);
            CHECK_GRAD("router dlogits", router_loss, &c, c.logits, d, c.N * c.E);
            kern_router_bwd(NULL, c.G, NULL, c.probs, c.idx, c.gate, c.N, c.E, K);
            free(c.logits), free(c.probs), free(c.gate), free(c.G), free(c.Q), free(c.idx);
            free(c.idx_ref), free(d0), free(d);
        }
}

typedef struct {
    float *probs;
    const int64_t *count;
    int64_t N, E, K;
    float alpha;
} aux_ctx;

static double aux_loss(void *p) {
    aux_ctx *c = p;
    return kern_moe_aux_fwd(c->probs, c->count, c->N, c->E, c->K, c->alpha);
}

static void test_moe_aux_loss(void **state) {
    (void)state;
    /* by hand: N 2, E 2, K 1, both tokens to expert 0: f = [1, 0], P = [.625, .375],
     * loss = alpha * 2 * .625 = 1.25 alpha */
    const float pr[] = {0.75f, 0.25f, 0.5f, 0.5f};
    const int64_t c2[] = {2, 0};
    CHECK_NEAR(kern_moe_aux_fwd(pr, c2, 2, 2, 1, 0.01f), 0.0125, 1e-9);
    /* balanced routing and uniform probabilities give the minimum, alpha: E * E * (1/E)^2 */
    float un[4 * 8];
    for (int i = 0; i < 32; i++)
        un[i] = 0.125f;
    const int64_t c8[] = {1, 1, 1, 1, 1, 1, 1, 1}; /* 4 tokens, top-2 */
    CHECK_NEAR(kern_moe_aux_fwd(un, c8, 4, 8, 2, 0.5f), 0.5, 1e-7);
    /* backward: by hand, dprobs[n][i] += scale alpha E f_i / N = 2 * .01 * 2 * [1, 0] / 2 */
    float d[4] = {1, 1, 1, 1};
    kern_moe_aux_bwd(d, c2, 2.0f, 2, 2, 1, 0.01f);
    CHECK_NEAR(d[0], 1.02, 1e-7); CHECK_NEAR(d[1], 1.0, 0.0);
    CHECK_NEAR(d[2], 1.02, 1e-7); CHECK_NEAR(d[3], 1.0, 0.0);
    /* and by central differences (counts fixed) */
    const int64_t cnt[] = {3, 0, 5, 2, 1, 1};
    aux_ctx c = {.count = cnt, .N = 6, .E = 6, .K = 2, .alpha = 0.1f};
    c.probs = rand_f(c.N * c.E, 1.0f);
    float *g0 = rand_f(c.N * c.E, 1.0f), *g = copy_f(g0, c.N * c.E);
    kern_moe_aux_bwd(g, cnt, 1.0f, c.N, c.E, c.K, c.alpha);
    sub_f(g, g0, c.N * c.E);
    CHECK_GRAD("aux dprobs", aux_loss, &c, c.probs, g, c.N * c.E);
    kern_moe_aux_bwd(NULL, cnt, 1.0f, c.N, c.E, c.K, c.alpha);
    free(c.probs), free(g0), free(g);
}

/* One MoE block on one rank, from the kernels alone: router, fixed-capacity dispatch,
 * per-expert SwiGLU MLP (w1, w3 [F][H], w2 [H][F] per expert), weighted combine,
 * plus the load-balancing loss; loss = sum G . y + aux. */
typedef struct {
    int64_t N, H, E, K, F, cap;
    float alpha;
    float *x, *wr, *w1, *w3, *w2, *G;
    /* forward state */
    float *logits, *probs, *gate, *buf, *a, *b, *s, *eo, *y;
    int32_t *idx, *slot, *idx_ref;
    int64_t *count;
    double aux;
} moe_ctx;

static void moe_fwd(moe_ctx *c) {
    const int64_t R = c->E * c->cap;
    kern_matmul_fwd(c->logits, c->x, c->wr, c->N, c->H, c->E);
    kern_router_fwd(c->probs, c->idx, c->gate, c->logits, c->N, c->E, c->K);
    kern_moe_slots(c->slot, c->count, c->idx, c->N, c->K, c->E, c->cap);
    kern_moe_permute_fwd(c->buf, c->x, c->slot, c->N, c->K, c->H, R);
    for (int64_t e = 0; e < c->E; e++) {
        const int64_t r = e * c->cap;
        kern_matmul_fwd(c->a + r * c->F, c->buf + r * c->H, c->w1 + e * c->F * c->H, c->cap, c->H, c->F);
        kern_matmul_fwd(c->b + r * c->F, c->buf + r * c->H, c->w3 + e * c->F * c->H, c->cap, c->H, c->F);
        kern_swiglu_fwd(c->s + r * c->F, c->a + r * c->F, c->b + r * c->F, c->cap * c->F);
        kern_matmul_fwd(c->eo + r * c->H, c->s + r * c->F, c->w2 + e * c->H * c->F, c->cap, c->F, c->H);
    }
    kern_moe_unpermute_fwd(c->y, c->eo, c->gate, c->slot, c->N, c->K, c->H);
    c->aux = kern_moe_aux_fwd(c->probs, c->count, c->N, c->E, c->K, c->alpha);
}

static double moe_loss(void *p) {
    moe_ctx *c = p;
    moe_fwd(c);
    if (c->idx_ref) assert_memory_equal(c->idx, c->idx_ref, (size_t)(c->N * c->K) * 4);
    return dot_d(c->G, c->y, c->N * c->H) + c->aux;
}

static void test_moe_block(void **state) {
    (void)state;
    /* slots by hand: 3 tokens each choosing [0, 1], capacity 2: the third is dropped */
    const int32_t ix3[] = {0, 1, 0, 1, 0, 1};
    int32_t sl[6];
    int64_t cn[2];
    kern_moe_slots(sl, cn, ix3, 3, 2, 2, 2);
    const int32_t want[] = {0, 2, 1, 3, -1, -1};
    assert_memory_equal(sl, want, sizeof want);
    assert_int_equal(cn[0], 3); assert_int_equal(cn[1], 3);
    /* permute / unpermute by hand: H 2; buffer rows are the tokens, row 4 unused stays 0 */
    const float x3[] = {1, 2, 3, 4, 5, 6}, g3[] = {0.75f, 0.25f, 0.5f, 0.5f, 1, 1};
    float bf[5 * 2] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9}, y3[6];
    const int32_t sl5[] = {0, 2, 1, 3, -1, -1};
    kern_moe_permute_fwd(bf, x3, sl5, 3, 2, 2, 5);
    const float wantb[] = {1, 2, 3, 4, 1, 2, 3, 4, 0, 0};
    assert_memory_equal(bf, wantb, sizeof wantb);
    for (int i = 0; i < 4; i++)
        bf[4 + i] *= 10.0f; /* expert 1 scales by 10 */
    kern_moe_unpermute_fwd(y3, bf, g3, sl5, 3, 2, 2);
    const float wanty[] = {0.75f + 2.5f, 1.5f + 5.0f, 1.5f + 15.0f, 2.0f + 20.0f, 0, 0};
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(y3[i], wanty[i], 1e-6);

    /* the whole block by central differences, with capacity enough for every choice
     * (dropless, cap = N K / E * E / K = N) and with a capacity that drops tokens */
    for (int drop = 0; drop < 2; drop++) {
        moe_ctx c = {.N = 12, .H = 6, .E = 4, .K = 2, .F = 5, .alpha = 0.05f};
        c.cap = drop ? 4 : c.N;
        const int64_t N = c.N, H = c.H, E = c.E, K = c.K, F = c.F, R = E * c.cap;
        c.x = rand_f(N * H, 1.0f), c.wr = rand_f(E * H, 1.0f);
        c.w1 = rand_f(E * F * H, 0.5f), c.w3 = rand_f(E * F * H, 0.5f), c.w2 = rand_f(E * H * F, 0.5f);
        c.G = rand_f(N * H, 1.0f);
        c.logits = alloc_f(N * E), c.probs = alloc_f(N * E), c.gate = alloc_f(N * K);
        c.buf = alloc_f(R * H), c.a = alloc_f(R * F), c.b = alloc_f(R * F), c.s = alloc_f(R * F);
        c.eo = alloc_f(R * H), c.y = alloc_f(N * H);
        c.idx = calloc((size_t)(N * K), 4), c.slot = calloc((size_t)(N * K), 4);
        c.count = calloc((size_t)E, 8);
        moe_fwd(&c);
        if (drop) {
            int dropped = 0;
            for (int64_t i = 0; i < N * K; i++)
                dropped += c.slot[i] < 0;
            assert_true(dropped > 0);
        }
        c.idx_ref = calloc((size_t)(N * K), 4);
        memcpy(c.idx_ref, c.idx, (size_t)(N * K) * 4);
        /* backward: y -> (eo, gate) -> experts -> buf -> x; gate and aux -> logits -> (x, wr) */
        float *dx = alloc_f(N * H), *dwr = alloc_f(E * H), *dw1 = alloc_f(E * F * H);
        float *dw3 = alloc_f(E * F * H), *dw2 = alloc_f(E * H * F);
        float *deo = alloc_f(R * H), *dgate = alloc_f(N * K), *ds = alloc_f(R * F);
        float *da = alloc_f(R * F), *db = alloc_f(R * F), *dbuf = alloc_f(R * H);
        float *dprobs = alloc_f(N * E), *dlogits = alloc_f(N * E);
        kern_moe_unpermute_bwd(deo, dgate, c.G, c.eo, c.gate, c.slot, N, K, H);
        for (int64_t e = 0; e < E; e++) {
            const int64_t r = e * c.cap;
            kern_matmul_bwd(ds + r * F, dw2 + e * H * F, deo + r * H, c.s + r * F, c.w2 + e * H * F, c.cap, F, H);
            kern_swiglu_bwd(da + r * F, db + r * F, ds + r * F, c.a + r * F, c.b + r * F, c.cap * F);
            kern_matmul_bwd(dbuf + r * H, dw1 + e * F * H, da + r * F, c.buf + r * H, c.w1 + e * F * H, c.cap, H, F);
            kern_matmul_bwd(dbuf + r * H, dw3 + e * F * H, db + r * F, c.buf + r * H, c.w3 + e * F * H, c.cap, H, F);
        }
        kern_moe_permute_bwd(dx, dbuf, c.slot, N, K, H);
        kern_moe_aux_bwd(dprobs, c.count, 1.0f, N, E, K, c.alpha);
        kern_router_bwd(dlogits, dgate, dprobs, c.probs, c.idx, c.gate, N, E, K);
        kern_matmul_bwd(dx, dwr, dlogits, c.x, c.wr, N, H, E);
        CHECK_GRAD("moe dx", moe_loss, &c, c.x, dx, N * H);
        CHECK_GRAD("moe dwr", moe_loss, &c, c.wr, dwr, E * H);
        CHECK_GRAD("moe dw1", moe_loss, &c, c.w1, dw1, E * F * H);
        CHECK_GRAD("moe dw3", moe_loss, &c, c.w3, dw3, E * F * H);
        CHECK_GRAD("moe dw2", moe_loss, &c, c.w2, dw2, E * H * F);
        /* the accumulate rule for the permutation kernels: a second call adds the same again
         * (on the unperturbed forward: the differences above left the last step's state) */
        moe_fwd(&c);
        float *dx2 = copy_f(dx, N * H), *dg2 = copy_f(dgate, N * K);
        float *db2 = alloc_f(R * H);
        kern_moe_permute_bwd(dx2, dbuf, c.slot, N, K, H);
        kern_moe_unpermute_bwd(db2, dg2, c.G, c.eo, c.gate, c.slot, N, K, H);
        kern_moe_unpermute_bwd(db2, NULL, c.G, c.eo, c.gate, c.slot, N, K, H);
        for (int64_t i = 0; i < N * K; i++)
            CHECK_NEAR(dg2[i], 2.0 * dgate[i], 1e-5);
        for (int64_t i = 0; i < R * H; i++)
            CHECK_NEAR(db2[i], 2.0 * deo[i], 1e-5);
        free(dx2), free(dg2), free(db2);
        free(c.x), free(c.wr), free(c.w1), free(c.w3), free(c.w2), free(c.G), free(c.logits);
        free(c.probs), free(c.gate), free(c.buf), free(c.a), free(c.b), free(c.s), free(c.eo);
        free(c.y), free(c.idx), free(c.slot), free(c.count), free(c.idx_ref);
        free(dx), free(dwr), free(dw1), free(dw3), free(dw2), free(deo), free(dgate), free(ds);
        free(da), free(db), free(dbuf), free(dprobs), free(dlogits);
    }
}

/* Paged attention (kern_infer.h) against kern_attn_fwd on a contiguous sequence: the
 * cache written in two parts, the queries taken in two parts (a prefill chunk and the
 * rest). fp32 storage matches to 1e-6; bf16 storage matches the contiguous kernel on
 * bf16-rounded keys and values; int8 within its rounding (absmax / 254 per element). */
static void test_attn_paged(void **state) {
    (void)state;
    const int64_t T = 37, H = 4, KVH = 2, D = 16, bs = 8, nb = (T + bs - 1) / bs, L = 2, l = 1;
    const int64_t qs = H * D, ks = KVH * D;
    float *q = rand_f(T * qs, 1.0f), *k = rand_f(T * ks, 1.0f), *v = rand_f(T * ks, 1.0f);
    float *ref = alloc_f(T * qs), *lse = alloc_f(T * H), *out = alloc_f(T * qs);
    float *scratch = alloc_f(kern_attn_scratch_floats(T));
    float *pscratch = alloc_f(kern_attn_paged_scratch_floats(D));
    const kern_kv_dtype dts[3] = {KERN_KV_F32, KERN_KV_BF16, KERN_KV_I8};
    for (int d = 0; d < 3; d++) {
        const int64_t bbytes = L * 2 * bs * KVH * (D * kern_kv_elem_bytes(dts[d]) + (d == 2 ? 4 : 0));
        void *blocks[8];
        for (int64_t b = 0; b < nb; b++)
            blocks[b] = calloc((size_t)bbytes, 1), assert_non_null(blocks[b]);
        kern_kv_view view;
        kern_kv_view_layer(&view, dts[d], L, l, bs, KVH, D, blocks);
        kern_kv_write(&view, 0, 20, k, v);
        kern_kv_write(&view, 20, T - 20, k + 20 * ks, v + 20 * ks);
        kern_attn_paged_fwd(out, q, &view, 0, 20, H, pscratch);
        kern_attn_paged_fwd(out + 20 * qs, q + 20 * qs, &view, 20, T - 20, H, pscratch);
        float *kr = copy_f(k, T * ks), *vr = copy_f(v, T * ks);
        if (dts[d] == KERN_KV_BF16) {
            uint16_t *tmp = calloc((size_t)(T * ks), sizeof *tmp);
            kern_f32_to_bf16(tmp, k, T * ks), kern_bf16_to_f32(kr, tmp, T * ks);
            kern_f32_to_bf16(tmp, v, T * ks), kern_bf16_to_f32(vr, tmp, T * ks);
            free(tmp);
        }
        kern_attn_fwd(ref, lse, q, kr, vr, 1, T, H, KVH, D, scratch);
        const double tol = dts[d] == KERN_KV_I8 ? 0.02 : dts[d] == KERN_KV_BF16 ? 1e-5 : 1e-6;
        for (int64_t i = 0; i < T * qs; i++)
            CHECK_NEAR(out[i], ref[i], tol);
        for (int64_t b = 0; b < nb; b++)
            free(blocks[b]);
        free(kr), free(vr);
    }
    free(q), free(k), free(v), free(ref), free(lse), free(out), free(scratch), free(pscratch);
}

/* ---- logit knowledge distillation (kern_kd.h) ------------------------------ */

typedef struct {
    float *zs, *ps, *qs, *losses, *qt;
    int32_t *idx;
    const int32_t *targets;
    int64_t N, V;
    float scale;
    kern_kd_cfg cfg;
} kd_ctx;

/* Allocates the context's buffers and sets the teacher's qt (and idx) from zt. */
static void kd_setup(kd_ctx *c, const float *zt) {
    const int64_t W = c->cfg.top_k > 0 ? c->cfg.top_k : c->V;
    c->ps = alloc_f(c->N * c->V), c->qs = alloc_f(c->N * c->V), c->losses = alloc_f(c->N);
    c->qt = alloc_f(c->N * W);
    c->idx = calloc((size_t)(c->N * W), sizeof *c->idx);
    assert_non_null(c->idx);
    kern_kd_teacher(c->qt, c->cfg.top_k > 0 ? c->idx : NULL, zt, c->N, c->V, &c->cfg);
}

static void kd_free(kd_ctx *c) { free(c->ps), free(c->qs), free(c->losses), free(c->qt), free(c->idx); }

static double kd_loss(void *p) {
    kd_ctx *c = p;
    kern_kd_fwd(c->ps, c->qs, c->losses, c->zs, c->targets, c->qt, c->idx, c->N, c->V, &c->cfg);
    double s = 0.0;
    for (int64_t n = 0; n < c->N; n++)
        s += c->losses[n];
    return c->scale * s;
}

/* kern_kd_bwd against central differences of kern_kd_fwd, at T = 0.5, 1, 2, 4,
 * alpha = 0, 0.3, 1, the whole vocabulary and the teacher's top 1 and 5. The
 * step is T FD_H: the loss varies on the scale of zs / T. */
static void test_kd_grad(void **state) {
    (void)state;
    const float Ts[] = {0.5f, 1.0f, 2.0f, 4.0f}, alphas[] = {0.0f, 0.3f, 1.0f};
    const int64_t ks[] = {0, 1, 5};
    const int32_t targets[] = {0, 8, 3, 5};
    for (int t = 0; t < 4; t++)
        for (int a = 0; a < 3; a++)
            for (int j = 0; j < 3; j++) {
                kd_ctx c = {.targets = targets, .N = 4, .V = 9, .scale = 0.25f,
                            .cfg = {.T = Ts[t], .alpha = alphas[a], .top_k = ks[j]}};
                float *zt = rand_f(c.N * c.V, 3.0f);
                c.zs = rand_f(c.N * c.V, 3.0f);
                kd_setup(&c, zt);
                kd_loss(&c);
                float *d0 = rand_f(c.N * c.V, 1.0f), *d = copy_f(d0, c.N * c.V);
                kern_kd_bwd(d, c.ps, c.qs, targets, c.qt, c.idx, c.scale, c.N, c.V, &c.cfg);
                sub_f(d, d0, c.N * c.V);
                double maxfd = 0.0, maxerr = 0.0; /* fd_err with a step of T FD_H */
                for (int64_t i = 0; i < c.N * c.V; i++) {
                    const float x0 = c.zs[i], xp = x0 + Ts[t] * FD_H, xm = x0 - Ts[t] * FD_H;
                    c.zs[i] = xp;
                    const double lp = kd_loss(&c);
                    c.zs[i] = xm;
                    const double lm = kd_loss(&c);
                    c.zs[i] = x0;
                    const double fd = (lp - lm) / ((double)xp - (double)xm);
                    maxfd = fmax(maxfd, fabs(fd));
                    maxerr = fmax(maxerr, fabs(fd - (double)d[i]));
                }
                const double e = maxerr / fmax(maxfd, 1e-12);
                if (getenv("FD_VERBOSE"))
                    print_message("kd T=%g alpha=%g k=%d: %.3g\n", Ts[t], alphas[a], (int)ks[j], e);
                if (!(e <= FD_TOL))
                    fail_msg("kd dzs T=%g alpha=%g top_k=%d: relative error %.3g > %.3g", Ts[t],
                             alphas[a], (int)ks[j], e, FD_TOL);
                kern_kd_bwd(NULL, c.ps, c.qs, targets, c.qt, c.idx, c.scale, c.N, c.V, &c.cfg);
                kd_free(&c), free(c.zs), free(zt), free(d0), free(d);
            }
}

/* alpha = 1 is kern_xent bit for bit: probabilities, losses and gradients,
 * with or without a teacher top-k, qs untouched (NULL). */
static void test_kd_alpha1(void **state) {
    (void)state;
    const int64_t N = 6, V = 40;
    int32_t tg[6];
    for (int n = 0; n < N; n++)
        tg[n] = (int32_t)((n * 7 + 3) % V);
    float *zs = rand_f(N * V, 6.0f), *zt = rand_f(N * V, 6.0f), *d0 = rand_f(N * V, 1.0f);
    float *pr = alloc_f(N * V), *ls = alloc_f(N), *dx = copy_f(d0, N * V);
    kern_xent_fwd(pr, ls, zs, tg, N, V);
    kern_xent_bwd(dx, pr, tg, 0.125f, N, V);
    for (int j = 0; j < 2; j++) {
        kd_ctx c = {.N = N, .V = V, .cfg = {.T = 2.0f, .alpha = 1.0f, .top_k = j ? 5 : 0}};
        kd_setup(&c, zt);
        float *d = copy_f(d0, N * V);
        kern_kd_fwd(c.ps, NULL, c.losses, zs, tg, c.qt, c.idx, N, V, &c.cfg);
        kern_kd_bwd(d, c.ps, NULL, tg, c.qt, c.idx, 0.125f, N, V, &c.cfg);
        assert_memory_equal(c.ps, pr, (size_t)(N * V) * sizeof *pr);
        assert_memory_equal(c.losses, ls, (size_t)N * sizeof *ls);
        assert_memory_equal(d, dx, (size_t)(N * V) * sizeof *d);
        kd_free(&c), free(d);
    }
    free(zs), free(zt), free(d0), free(pr), free(ls), free(dx);
}

/* KL by hand (with the T^2 factor), KL >= 0 on random rows, and zs = zt:
 * zero KL and a soft-term gradient of exactly zero (qs and qt are the same
 * bits), so the gradient is the hard term's alone. */
static void test_kd_kl(void **state) {
    (void)state;
    /* qt = softmax([0, ln 3]) = [1/4, 3/4] (at T = 2 from [0, 2 ln 3]), qs = [1/2, 1/2]:
     * KL = 1/4 ln(1/2) + 3/4 ln(3/2); the loss is T^2 KL at alpha = 0 */
    const double kl = 0.25 * log(0.5) + 0.75 * log(1.5);
    const int32_t y0[] = {0};
    for (int t = 1; t <= 2; t++) {
        const float zs[] = {5.0f, 5.0f}, zt[] = {0.0f, (float)(t * log(3.0))};
        kd_ctx c = {.N = 1, .V = 2, .cfg = {.T = (float)t, .alpha = 0.0f}};
        c.zs = (float *)zs;
        kd_setup(&c, zt);
        CHECK_NEAR(c.qt[0], 0.25, 1e-7);
        CHECK_NEAR(c.qt[1], 0.75, 1e-7);
        c.targets = y0;
        kd_loss(&c);
        CHECK_NEAR(c.losses[0], t * t * kl, 1e-6);
        float d[2] = {0.0f, 0.0f}; /* T (qs - qt) = T [1/4, -1/4] */
        kern_kd_bwd(d, c.ps, c.qs, y0, c.qt, c.idx, 1.0f, 1, 2, &c.cfg);
        CHECK_NEAR(d[0], 0.25 * t, 1e-6);
        CHECK_NEAR(d[1], -0.25 * t, 1e-6);
        kd_free(&c);
    }
    const int64_t N = 64, V = 30;
    int32_t tg[64];
    for (int n = 0; n < N; n++)
        tg[n] = (int32_t)(n % V);
    float *zs = rand_f(N * V, 4.0f), *zt = rand_f(N * V, 4.0f);
    for (int j = 0; j < 3; j++) {
        kd_ctx c = {.zs = zs, .targets = tg, .N = N, .V = V,
                    .cfg = {.T = 0.5f + j, .alpha = 0.0f, .top_k = j == 2 ? 3 : 0}};
        kd_setup(&c, zt);
        kd_loss(&c);
        for (int64_t n = 0; n < N; n++)
            assert_true(c.losses[n] >= 0.0f);
        kd_free(&c);
        /* zs = zt */
        c.zs = zt, c.cfg.alpha = j == 1 ? 0.3f : 0.0f;
        kd_setup(&c, zt);
        kd_loss(&c);
        assert_memory_equal(c.qs, c.qt, (size_t)(N * V) * sizeof *c.qs * (j < 2));
        float *d = alloc_f(N * V), *dh = alloc_f(N * V);
        kern_kd_bwd(d, c.ps, c.qs, tg, c.qt, c.idx, 0.5f, N, V, &c.cfg);
        if (c.cfg.alpha > 0.0f) kern_xent_bwd(dh, c.ps, tg, 0.5f * c.cfg.alpha, N, V);
        if (j < 2) { /* the loss is the hard term's alone, alpha CE */
            assert_memory_equal(d, dh, (size_t)(N * V) * sizeof *d);
            float *ce = alloc_f(N);
            kern_xent_fwd(dh, ce, zt, tg, N, V);
            for (int64_t n = 0; n < N; n++)
                CHECK_NEAR(c.losses[n], c.cfg.alpha * ce[n], 1e-6 * (1.0 + ce[n]));
            free(ce);
        }
        kd_free(&c), free(d), free(dh);
    }
    free(zs), free(zt);
}

/* Extreme logits: rows of +-80 and a row with one huge logit (1e30, student
 * and teacher) give finite losses and gradients at every T, full and top-k. */
static void test_kd_extremes(void **state) {
    (void)state;
    const int64_t N = 4, V = 12;
    const int32_t tg[] = {0, 5, 11, 3};
    float *zs = alloc_f(N * V), *zt = alloc_f(N * V);
    for (int64_t i = 0; i < N * V; i++) {
        zs[i] = rnd() < 0.0f ? -80.0f : 80.0f;
        zt[i] = rnd() < 0.0f ? -80.0f : 80.0f;
    }
    zs[2 * V + 4] = 1e30f;  /* the student sure of a wrong token the teacher rules out */
    zt[2 * V + 4] = -80.0f;
    zt[3 * V + 7] = 1e30f;  /* the teacher sure of one the student puts at -80 */
    zs[3 * V + 7] = -80.0f;
    zs[1 * V + 5] = -80.0f; /* the label at -80 */
    const float Ts[] = {0.5f, 1.0f, 2.0f, 4.0f};
    for (int t = 0; t < 4; t++)
        for (int j = 0; j < 2; j++) {
            kd_ctx c = {.zs = zs, .targets = tg, .N = N, .V = V, .scale = 1.0f,
                        .cfg = {.T = Ts[t], .alpha = 0.3f, .top_k = j ? 5 : 0}};
            kd_setup(&c, zt);
            assert_true(isfinite(kd_loss(&c)));
            float *d = alloc_f(N * V);
            kern_kd_bwd(d, c.ps, c.qs, tg, c.qt, c.idx, 1.0f, N, V, &c.cfg);
            for (int64_t i = 0; i < N * V; i++)
                assert_true(isfinite(d[i]));
            /* the student's huge logit: CE = 1e30 - z[y], KL = sum qt (log qt - log qs)
             * ~ 1e30 / T, the teacher's mass lying on the other tokens */
            CHECK_NEAR(c.losses[2] / (0.3e30 + 0.7 * Ts[t] * 1e30), 1.0, 1e-5);
            kd_free(&c), free(d);
        }
    free(zs), free(zt);
}

/* The teacher's top-k: descending, ties to the lower index, and past the
 * threading threshold the same bits as on one thread. */
static void test_kd_top_k(void **state) {
    (void)state;
    const float zt[] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 2.0f, 3.0f};
    float qt[4];
    int32_t idx[4];
    kd_ctx c = {.cfg = {.T = 1.0f, .top_k = 4}};
    kern_kd_teacher(qt, idx, zt, 1, 7, &c.cfg);
    const int32_t want[] = {1, 3, 6, 2};
    assert_memory_equal(idx, want, sizeof want);
    const double z = 3.0 * exp(3.0) + exp(2.0);
    CHECK_NEAR(qt[0], exp(3.0) / z, 1e-7);
    CHECK_NEAR(qt[3], exp(2.0) / z, 1e-7);
    c.cfg.top_k = 7; /* k = V: every entry, sorted */
    float qa[7], qf[7];
    int32_t ia[7];
    kern_kd_teacher(qa, ia, zt, 1, 7, &c.cfg);
    c.cfg.top_k = 0;
    kern_kd_teacher(qf, NULL, zt, 1, 7, &c.cfg);
    const int32_t all[] = {1, 3, 6, 2, 5, 0, 4};
    assert_memory_equal(ia, all, sizeof all);
    for (int j = 0; j < 7; j++)
        CHECK_NEAR(qa[j], qf[ia[j]], 1e-7);

    const int64_t N = 64, V = 600;
    int32_t tg[64];
    for (int n = 0; n < N; n++)
        tg[n] = (int32_t)(n * 9 % V);
    float *zs = rand_f(N * V, 5.0f), *zt2 = rand_f(N * V, 5.0f);
    for (int j = 0; j < 2; j++) {
        kd_ctx r[2];
        float *d[2];
        for (int th = 0; th < 2; th++) {
            set_threads(th ? 0 : 1);
            r[th] = (kd_ctx){.zs = zs, .targets = tg, .N = N, .V = V,
                             .cfg = {.T = 2.0f, .alpha = 0.3f, .top_k = j ? 8 : 0}};
            kd_setup(&r[th], zt2);
            kd_loss(&r[th]);
            d[th] = alloc_f(N * V);
            kern_kd_bwd(d[th], r[th].ps, r[th].qs, tg, r[th].qt, r[th].idx, 0.01f, N, V, &r[th].cfg);
        }
        set_threads(0);
        assert_memory_equal(r[0].losses, r[1].losses, (size_t)N * sizeof(float));
        assert_memory_equal(d[0], d[1], (size_t)(N * V) * sizeof(float));
        assert_memory_equal(r[0].idx, r[1].idx, (size_t)(N * (j ? 8 : V)) * sizeof(int32_t));
        for (int th = 0; th < 2; th++)
            kd_free(&r[th]), free(d[th]);
    }
    free(zs), free(zt2);
}

/* Against PyTorch: tests/data/kd/golden-kd.bin, written by
 * tests/data/kd/gen_golden.py (float64 autograd of the kern_kd.h formula with
 * F.kl_div and F.cross_entropy). Tolerances, for fp32 against float64: qt
 * 1e-6 absolute; losses 2e-6 relative to max(1, |loss|); gradients 1e-6
 * absolute (every entry of a gradient row is below T + 1 in size). */
#define KD_GOLDEN "tests/data/kd/golden-kd.bin"

static const golden_tensor *kd_golden_get(const golden *g, int i, const char *what) {
    char name[GOLDEN_NAME_TENSOR + 1];
    snprintf(name, sizeof name, "c%d.%s", i, what);
    const golden_tensor *t = golden_get(g, name);
    if (!t) fail_msg("%s: no tensor %s", KD_GOLDEN, name);
    return t;
}

static void test_kd_golden(void **state) {
    (void)state;
    golden g;
    char err[256];
    if (golden_load(KD_GOLDEN, &g, err, sizeof err)) fail_msg("%s", err);
    const int64_t cases = golden_config(&g, "cases");
    assert_true(cases >= 8);
    for (int i = 0; i < cases; i++) {
        const golden_tensor *par = kd_golden_get(&g, i, "param"), *zs = kd_golden_get(&g, i, "zs");
        const golden_tensor *zt = kd_golden_get(&g, i, "zt"), *y = kd_golden_get(&g, i, "y");
        const golden_tensor *qt = kd_golden_get(&g, i, "qt"), *loss = kd_golden_get(&g, i, "loss");
        const golden_tensor *grad = kd_golden_get(&g, i, "grad");
        kd_ctx c = {.zs = zs->u.f32, .targets = y->u.i32, .N = zs->dims[0], .V = zs->dims[1],
                    .scale = 1.0f,
                    .cfg = {.T = par->u.f32[0], .alpha = par->u.f32[1], .top_k = (int64_t)par->u.f32[2]}};
        kd_setup(&c, zt->u.f32);
        double eq = 0.0, el = 0.0, eg = 0.0; /* the largest errors, for FD_VERBOSE */
        for (int64_t j = 0; j < qt->count; j++) {
            CHECK_NEAR(c.qt[j], qt->u.f32[j], 1e-6);
            eq = fmax(eq, fabs(c.qt[j] - qt->u.f32[j]));
        }
        if (c.cfg.top_k > 0)
            assert_memory_equal(c.idx, kd_golden_get(&g, i, "idx")->u.i32,
                                (size_t)(c.N * c.cfg.top_k) * sizeof(int32_t));
        kd_loss(&c);
        for (int64_t n = 0; n < c.N; n++) {
            CHECK_NEAR(c.losses[n], loss->u.f32[n], 2e-6 * fmax(1.0, fabs(loss->u.f32[n])));
            el = fmax(el, fabs(c.losses[n] - loss->u.f32[n]) / fmax(1.0, fabs(loss->u.f32[n])));
        }
        float *d = alloc_f(c.N * c.V);
        kern_kd_bwd(d, c.ps, c.qs, c.targets, c.qt, c.idx, 1.0f, c.N, c.V, &c.cfg);
        for (int64_t j = 0; j < c.N * c.V; j++) {
            CHECK_NEAR(d[j], grad->u.f32[j], 1e-6);
            eg = fmax(eg, fabs(d[j] - grad->u.f32[j]));
        }
        if (getenv("FD_VERBOSE"))
            print_message("kd golden case %d (T=%g alpha=%g k=%d): qt %.2g, loss %.2g, grad %.2g\n", i,
                          c.cfg.T, c.cfg.alpha, (int)c.cfg.top_k, eq, el, eg);
        kd_free(&c), free(d);
    }
    golden_free(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_fwd),
        cmocka_unit_test(test_matmul_bwd),
        cmocka_unit_test(test_matmul_bwd_naive),
        cmocka_unit_test(test_embed),
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_rope_by_hand),
        cmocka_unit_test(test_rope_bwd),
        cmocka_unit_test(test_attn_fwd_reference),
        cmocka_unit_test(test_attn_causal),
        cmocka_unit_test(test_attn_bwd),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_xent),
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_expf),
        cmocka_unit_test(test_attn_ring_zigzag),
        cmocka_unit_test(test_attn_block_edges),
        cmocka_unit_test(test_rope_positions),
        cmocka_unit_test(test_router),
        cmocka_unit_test(test_moe_aux_loss),
        cmocka_unit_test(test_moe_block),
        cmocka_unit_test(test_attn_paged),
        /* last: these draw from the shared generator, and the tests above keep their inputs */
        cmocka_unit_test(test_kd_grad),
        cmocka_unit_test(test_kd_alpha1),
        cmocka_unit_test(test_kd_kl),
        cmocka_unit_test(test_kd_extremes),
        cmocka_unit_test(test_kd_top_k),
        cmocka_unit_test(test_kd_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
