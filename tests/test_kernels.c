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

/* ---- helpers --------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

/* Uniform in [-1, 1) (xorshift64*). */
static float rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    const uint64_t r = rng_state * 0x2545F4914F6CDD1Dull;
    return (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
