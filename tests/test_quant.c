/* test_quant.c — the quantization kernels (kernels/kern_quant.h) against values
 * computed independently: by hand (scales, codes and packed bytes of small
 * matrices), by the round-trip bound |x - x^| <= s/2 of every scheme on random
 * and adversarial inputs, by a 64-bit reference for the int8 product, and by
 * fp64 products of the dequantized operands (docs/quantization.md, "Kernels"). */
#include <float.h>
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

#include "kern.h"
#include "kern_quant.h"
#include "tu_rng.h"

/* ---- helpers --------------------------------------------------------------- */

static uint64_t rng_state = 0x243F6A8885A308D3ull;

/* Uniform in [-1, 1) (tu_rng.h). */
static float rnd(void) { return tu_rnd(&rng_state); }

static void *alloc_b(int64_t bytes) {
    void *p = calloc((size_t)(bytes > 0 ? bytes : 1), 1);
    assert_non_null(p);
    return p;
}

static float *rand_f(int64_t n, float scale) {
    float *p = alloc_b(n * 4);
    for (int64_t i = 0; i < n; i++)
        p[i] = scale * rnd();
    return p;
}

static int8_t *rand_i8(int64_t n) {
    int8_t *p = alloc_b(n);
    for (int64_t i = 0; i < n; i++)
        p[i] = (int8_t)(int)floor(128.0 * rnd()); /* [-128, 127] */
    return p;
}

#define CHECK_NEAR(actual, expected, tol)                                                          \
    do {                                                                                           \
        const double a_ = (actual), e_ = (expected);                                               \
        if (!(fabs(a_ - e_) <= (tol)))                                                             \
            fail_msg("%s = %.9g, expected %.9g (tolerance %g)", #actual, a_, e_, (double)(tol));   \
    } while (0)

static void set_threads(int n) {
#ifdef _OPENMP
    static int initial;
    if (!initial) initial = omp_get_max_threads();
    omp_set_num_threads(n ? n : initial);
#else
    (void)n;
#endif
}

/* Quantizes x (R x C) with s and dequantizes it; returns the parts. */
typedef struct {
    void *q;
    float *scale, *zero, *xhat;
    int64_t groups;
} qt;

static qt qt_run(const float *x, int64_t R, int64_t C, const quant_spec *s) {
    qt t;
    assert_null(kern_quant_check(s, R, C));
    t.groups = kern_quant_groups(s, R, C);
    t.q = alloc_b(kern_quant_bytes(s, R, C));
    t.scale = alloc_b(t.groups * 4);
    t.zero = s->kind == QK_ZEROPOINT ? alloc_b(t.groups * 4) : NULL;
    t.xhat = alloc_b(R * C * 4);
    kern_quantize(t.q, t.scale, t.zero, x, R, C, s);
    kern_dequantize(t.xhat, t.q, t.scale, t.zero, R, C, s);
    return t;
}

static void qt_free(qt *t) {
    free(t->q);
    free(t->scale);
    free(t->zero);
    free(t->xhat);
}

/* The code of element i (int8, or a 4-bit nibble read as the spec says). */
static int code_at(const qt *t, const quant_spec *s, int64_t i) {
    if (s->bits == 8) return ((const int8_t *)t->q)[i];
    const int nib = (((const uint8_t *)t->q)[i / 2] >> (i % 2 ? 4 : 0)) & 0xF;
    return s->kind == QK_ZEROPOINT ? nib : nib >= 8 ? nib - 16 : nib;
}

/* ---- sizes and groups -------------------------------------------------------- */

static void test_quant_sizes(void **state) {
    (void)state;
    const quant_spec t8 = {QK_ABSMAX, QG_TENSOR, 8, 0}, r4 = {QK_ZEROPOINT, QG_ROW, 4, 0};
    const quant_spec c8 = {QK_ABSMAX, QG_COL, 8, 0}, b4 = {QK_ABSMAX, QG_BLOCK, 4, 32};
    assert_int_equal(kern_quant_groups(&t8, 5, 64), 1);
    assert_int_equal(kern_quant_groups(&r4, 5, 64), 5);
    assert_int_equal(kern_quant_groups(&c8, 5, 64), 64);
    assert_int_equal(kern_quant_groups(&b4, 5, 64), 10);
    assert_int_equal(kern_quant_bytes(&t8, 5, 64), 320);
    assert_int_equal(kern_quant_bytes(&r4, 5, 64), 160);
    assert_int_equal(kern_quant_bytes(&r4, 3, 7), 11); /* ceil(21 / 2) */
    assert_int_equal(kern_quant_group_of(&b4, 5, 64, 3, 40), 7);
    assert_int_equal(kern_quant_group_of(&c8, 5, 64, 3, 40), 40);
    assert_int_equal(kern_quant_group_of(&r4, 5, 64, 3, 40), 3);
    assert_int_equal(kern_quant_group_of(&t8, 5, 64, 3, 40), 0);
    const quant_spec bad_bits = {QK_ABSMAX, QG_ROW, 6, 0}, bad_block = {QK_ABSMAX, QG_BLOCK, 8, 48};
    assert_non_null(kern_quant_check(&bad_bits, 4, 64));
    assert_non_null(kern_quant_check(&bad_block, 4, 64));
    assert_int_equal(kern_quant_groups(&bad_block, 4, 64), -1);
    assert_int_equal(kern_quant_bytes(&bad_bits, 4, 64), -1);
}

/* ---- hand-computed cases ------------------------------------------------------- */

/* x, expected scales and codes; the dequantized values are checked as (q - z) s. */
static void check_hand(const float *x, int64_t R, int64_t C, const quant_spec *s,
                       const float *scale, const float *zero, const int *codes) {
    qt t = qt_run(x, R, C, s);
    for (int64_t g = 0; g < t.groups; g++) {
        CHECK_NEAR(t.scale[g], scale[g], 1e-7 * fabs(scale[g]));
        if (zero) CHECK_NEAR(t.zero[g], zero[g], 0.0);
    }
    for (int64_t i = 0; i < R * C; i++) {
        const int64_t g = kern_quant_group_of(s, R, C, i / C, i % C);
        if (code_at(&t, s, i) != codes[i])
            fail_msg("element %lld: code %d, expected %d", (long long)i, code_at(&t, s, i),
                     codes[i]);
        CHECK_NEAR(t.xhat[i], (codes[i] - (zero ? zero[g] : 0.0f)) * t.scale[g], 0.0);
    }
    qt_free(&t);
}

static void test_quant_hand_absmax8(void **state) {
    (void)state;
    /* ties (1.5, -2.5, 3.5, -0.5) round to even */
    const float x[8] = {1.5f, -2.5f, 0.4f, 127.0f, -254.0f, 7.0f, -1.0f, 20.0f};
    const quant_spec tensor = {QK_ABSMAX, QG_TENSOR, 8, 0};
    /* s = 254 / 127 = 2: x / 2 = .75 -1.25 .2 63.5 -127 3.5 -.5 10 */
    check_hand(x, 2, 4, &tensor, (const float[]){2.0f}, NULL,
               (const int[]){1, -1, 0, 64, -127, 4, 0, 10});
    const quant_spec row = {QK_ABSMAX, QG_ROW, 8, 0};
    check_hand(x, 2, 4, &row, (const float[]){1.0f, 2.0f}, NULL,
               (const int[]){2, -2, 0, 127, -127, 4, 0, 10});
    /* columns: absmax 254, 7, 1, 127. -2.5 / (7/127) = -45.36, 0.4 * 127 = 50.8 */
    const quant_spec col = {QK_ABSMAX, QG_COL, 8, 0};
    check_hand(x, 2, 4, &col, (const float[]){2.0f, 7.0f / 127, 1.0f / 127, 1.0f}, NULL,
               (const int[]){1, -45, 51, 127, -127, 127, -127, 20});
    /* blocks of 2: absmax 2.5, 127, 254, 20. 1.5 / (2.5/127) = 76.2, -1 / (20/127) = -6.35 */
    const quant_spec block = {QK_ABSMAX, QG_BLOCK, 8, 2};
    check_hand(x, 2, 4, &block, (const float[]){2.5f / 127, 1.0f, 2.0f, 20.0f / 127}, NULL,
               (const int[]){76, -127, 0, 127, -127, 4, -6, 127});
}

static void test_quant_hand_zeropoint8(void **state) {
    (void)state;
    /* range [-100, 155]: s = 255 / 255 = 1, z = -128 - (-100) = -28; 2.5 is a tie (to 2) */
    const float x[4] = {-100.0f, 155.0f, 0.0f, 2.5f};
    const quant_spec tensor = {QK_ZEROPOINT, QG_TENSOR, 8, 0};
    check_hand(x, 1, 4, &tensor, (const float[]){1.0f}, (const float[]){-28.0f},
               (const int[]){-128, 127, -28, -26});
    /* rows: [0, 51, 255, 102] -> s = 1, z = -128; [-2, -4, -6, -10] (all negative: the
     * range widens to 0) -> s = 10 / 255, z = -128 + 255 = 127 */
    const float y[8] = {0.0f, 51.0f, 255.0f, 102.0f, -2.0f, -4.0f, -6.0f, -10.0f};
    const quant_spec row = {QK_ZEROPOINT, QG_ROW, 8, 0};
    /* -2 / (10/255) = -51, -4 -> -102, -6 -> -153, -10 -> -255; plus 127 */
    check_hand(y, 2, 4, &row, (const float[]){1.0f, 10.0f / 255}, (const float[]){-128.0f, 127.0f},
               (const int[]){-128, -77, 127, -26, 76, 25, -26, -128});
    /* columns: [-10, 245] -> s = 1, z = -128 + 10 = -118; [0, 30] -> s = 30/255, z = -128 */
    const float w[4] = {-10.0f, 0.0f, 245.0f, 30.0f};
    const quant_spec col = {QK_ZEROPOINT, QG_COL, 8, 0};
    check_hand(w, 2, 2, &col, (const float[]){1.0f, 30.0f / 255}, (const float[]){-118.0f, -128.0f},
               (const int[]){-128, -128, 127, 127});
    /* the same values as blocks of 2 along one row */
    const float v[4] = {-10.0f, 245.0f, 0.0f, 30.0f};
    const quant_spec block = {QK_ZEROPOINT, QG_BLOCK, 8, 2};
    check_hand(v, 1, 4, &block, (const float[]){1.0f, 30.0f / 255},
               (const float[]){-118.0f, -128.0f}, (const int[]){-128, 127, -128, 127});
}

/* The packed bytes of a 4-bit quantization. */
static void check_bytes(const float *x, int64_t R, int64_t C, const quant_spec *s,
                        const uint8_t *bytes) {
    qt t = qt_run(x, R, C, s);
    const int64_t nb = kern_quant_bytes(s, R, C);
    for (int64_t i = 0; i < nb; i++)
        if (((const uint8_t *)t.q)[i] != bytes[i])
            fail_msg("byte %lld: 0x%02x, expected 0x%02x", (long long)i, ((const uint8_t *)t.q)[i],
                     bytes[i]);
    qt_free(&t);
}

static void test_quant_hand_int4(void **state) {
    (void)state;
    /* absmax, s = 1: codes 7 -7 3 -2 (-2.5 to even); -7 = 0x9, -2 = 0xE; element 2i low */
    const float a[4] = {7.0f, -7.0f, 3.0f, -2.5f};
    const quant_spec tensor = {QK_ABSMAX, QG_TENSOR, 4, 0};
    check_hand(a, 1, 4, &tensor, (const float[]){1.0f}, NULL, (const int[]){7, -7, 3, -2});
    check_bytes(a, 1, 4, &tensor, (const uint8_t[]){0x97, 0xE3});
    /* an odd count: s = 14/7 = 2, codes 7, 0 (-0.5), 2 (2.5); the last high nibble 0 */
    const float b[3] = {14.0f, -1.0f, 5.0f};
    const quant_spec row = {QK_ABSMAX, QG_ROW, 4, 0};
    check_hand(b, 1, 3, &row, (const float[]){2.0f}, NULL, (const int[]){7, 0, 2});
    check_bytes(b, 1, 3, &row, (const uint8_t[]){0x07, 0x02});
    /* columns, bytes across the row boundary: col 0 s = 1 (7, -3.5 -> -4), col 1 s = 2
     * (-14 -> -7, 2 -> 1); codes 7 -7 -4 1 */
    const float c[4] = {7.0f, -14.0f, -3.5f, 2.0f};
    const quant_spec col = {QK_ABSMAX, QG_COL, 4, 0};
    check_hand(c, 2, 2, &col, (const float[]){1.0f, 2.0f}, NULL, (const int[]){7, -7, -4, 1});
    check_bytes(c, 2, 2, &col, (const uint8_t[]){0x97, 0x1C});
    /* zero-point, unsigned codes: row 0 [-5, 10]: s = 1, z = 5; row 1 [0, 30]: s = 2, z = 0 */
    const float d[8] = {-5.0f, 10.0f, 0.0f, 2.5f, 2.0f, 4.0f, 6.0f, 30.0f};
    const quant_spec zrow = {QK_ZEROPOINT, QG_ROW, 4, 0};
    check_hand(d, 2, 4, &zrow, (const float[]){1.0f, 2.0f}, (const float[]){5.0f, 0.0f},
               (const int[]){0, 15, 5, 7, 1, 2, 3, 15});
    check_bytes(d, 2, 4, &zrow, (const uint8_t[]){0xF0, 0x75, 0x21, 0xF3});
    /* blocks of 2, absmax: [7, -7] s = 1; [3, -2.5] s = 3/7 (-2.5 * 7/3 = -5.83 -> -6) */
    const quant_spec block = {QK_ABSMAX, QG_BLOCK, 4, 2};
    check_hand(a, 1, 4, &block, (const float[]){1.0f, 3.0f / 7}, NULL, (const int[]){7, -7, 7, -6});
    check_bytes(a, 1, 4, &block, (const uint8_t[]){0x97, 0xA7});
}

/* ---- round trips ------------------------------------------------------------------ */

enum { IN_RANDOM, IN_CONST_ROWS, IN_OUTLIER, IN_ZEROS, IN_NEGATIVE, IN_HUGE, IN_TINY, IN_COUNT };
static const char *in_names[IN_COUNT] = {"random",        "constant rows", "one outlier", "zeros",
                                         "negative only", "+-FLT_MAX/2",   "tiny"};

static float *make_input(int kind, int64_t R, int64_t C) {
    float *x = rand_f(R * C, 3.0f);
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < C; c++) {
            float *v = &x[r * C + c];
            switch (kind) {
            case IN_CONST_ROWS:
                *v = (float)(r - R / 2) * 1.75f + 0.3f;
                break;
            case IN_ZEROS:
                *v = 0.0f;
                break;
            case IN_NEGATIVE:
                *v = -1.0f - fabsf(*v);
                break;
            case IN_HUGE:
                *v = *v > 0.0f ? FLT_MAX / 2 : *v < -2.0f ? -FLT_MAX / 2 : *v * 1e37f;
                break;
            case IN_TINY:
                *v *= 1e-30f;
                break;
            default:
                break;
            }
        }
    if (kind == IN_OUTLIER) x[(R / 2) * C + C / 3] = 1e6f;
    return x;
}

/* Every element within s/2 of its group (plus float rounding of x / s and (q - z) s),
 * every code in range, zero points integers in range, a group of zeros exact, and
 * each absmax group's scale tight (some element reaches +-qmax). */
static void check_round_trip(const float *x, int64_t R, int64_t C, const quant_spec *s,
                             const char *what) {
    qt t = qt_run(x, R, C, s);
    const int qmax = s->kind == QK_ABSMAX ? (s->bits == 8 ? 127 : 7) : (s->bits == 8 ? 127 : 15);
    const int qmin = s->kind == QK_ABSMAX ? -qmax : (s->bits == 8 ? -128 : 0);
    int *hit = alloc_b(t.groups * (int64_t)sizeof(int));
    for (int64_t g = 0; g < t.groups; g++) {
        if (!(t.scale[g] >= 0.0f) || !isfinite(t.scale[g]))
            fail_msg("%s: group %lld scale %g", what, (long long)g, t.scale[g]);
        if (t.zero && (t.zero[g] != floorf(t.zero[g]) || t.zero[g] < qmin || t.zero[g] > qmax))
            fail_msg("%s: group %lld zero point %g", what, (long long)g, t.zero[g]);
    }
    for (int64_t i = 0; i < R * C; i++) {
        const int64_t g = kern_quant_group_of(s, R, C, i / C, i % C);
        const double sc = t.scale[g], err = fabs((double)x[i] - (double)t.xhat[i]);
        const double tol = 0.5 * sc * (1.0 + 1e-5) + 2.0 * FLT_EPSILON * fabs((double)x[i]);
        const int code = code_at(&t, s, i);
        if (!(err <= tol))
            fail_msg("%s: element (%lld, %lld) = %.9g -> %.9g, error %g > s/2 = %g", what,
                     (long long)(i / C), (long long)(i % C), x[i], t.xhat[i], err, 0.5 * sc);
        if (code < qmin || code > qmax) fail_msg("%s: code %d out of range", what, code);
        if (sc == 0.0 && t.xhat[i] != 0.0f) fail_msg("%s: zero group gives %g", what, t.xhat[i]);
        if (code == qmax || code == -qmax) hit[g] = 1;
    }
    if (s->kind == QK_ABSMAX)
        for (int64_t g = 0; g < t.groups; g++)
            if (t.scale[g] > 0.0f && !hit[g])
                fail_msg("%s: group %lld: no code reaches +-%d", what, (long long)g, qmax);
    free(hit);
    qt_free(&t);
}

static void test_quant_round_trip(void **state) {
    (void)state;
    const quant_kind kinds[2] = {QK_ABSMAX, QK_ZEROPOINT};
    const int bits[2] = {8, 4};
    const int64_t blocks[3] = {32, 64, 128};
    const int64_t shapes[3][2] = {{5, 384}, {3, 7}, {200, 384}}; /* odd C; a threaded size */
    for (int sh = 0; sh < 3; sh++)
        for (int in = 0; in < IN_COUNT; in++) {
            const int64_t R = shapes[sh][0], C = shapes[sh][1];
            float *x = make_input(in, R, C);
            for (int k = 0; k < 2; k++)
                for (int b = 0; b < 2; b++)
                    for (int gr = QG_TENSOR; gr <= QG_BLOCK; gr++)
                        for (int bl = 0; bl < (gr == QG_BLOCK ? 3 : 1); bl++) {
                            const quant_spec s = {kinds[k], (quant_gran)gr, bits[b], blocks[bl]};
                            if (kern_quant_check(&s, R, C)) continue; /* C = 7: no blocks */
                            char what[160];
                            snprintf(what, sizeof what, "%s %lldx%lld, %s %s %d-bit block %lld",
                                     in_names[in], (long long)R, (long long)C,
                                     k ? "zero-point" : "absmax",
                                     (const char *[]){"tensor", "row", "col", "block"}[gr], bits[b],
                                     (long long)s.block);
                            check_round_trip(x, R, C, &s, what);
                        }
            free(x);
        }
}

/* The same codes and scales on 1 thread and on 4. */
static void test_quant_threads(void **state) {
    (void)state;
    const int64_t R = 256, C = 512;
    float *x = rand_f(R * C, 2.0f);
    const quant_spec s = {QK_ZEROPOINT, QG_BLOCK, 4, 64};
    set_threads(1);
    qt a = qt_run(x, R, C, &s);
    set_threads(4);
    qt b = qt_run(x, R, C, &s);
    set_threads(0);
    assert_memory_equal(a.q, b.q, (size_t)kern_quant_bytes(&s, R, C));
    assert_memory_equal(a.scale, b.scale, (size_t)a.groups * 4);
    assert_memory_equal(a.xhat, b.xhat, (size_t)(R * C) * 4);
    qt_free(&a);
    qt_free(&b);
    free(x);
}

/* ---- int8 x int8 -> int32 ------------------------------------------------------------ */

static void check_i8(const int8_t *a, const int8_t *b, int64_t N, int64_t C, int64_t OC) {
    int32_t *acc = alloc_b(N * OC * 4);
    kern_matmul_i8_i32(acc, a, b, N, C, OC);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            int64_t ref = 0;
            for (int64_t c = 0; c < C; c++)
                ref += (int64_t)a[n * C + c] * (int64_t)b[o * C + c];
            if (acc[n * OC + o] != ref)
                fail_msg("acc[%lld][%lld] = %d, expected %lld (C %lld)", (long long)n, (long long)o,
                         acc[n * OC + o], (long long)ref, (long long)C);
        }
    free(acc);
}

static void test_matmul_i8_i32(void **state) {
    (void)state;
    const int64_t sizes[4][3] = {{1, 1, 1}, {7, 300, 37}, {1, 1000, 130}, {33, 512, 70}};
    for (int k = 0; k < 4; k++) {
        const int64_t N = sizes[k][0], C = sizes[k][1], OC = sizes[k][2];
        int8_t *a = rand_i8(N * C), *b = rand_i8(OC * C);
        check_i8(a, b, N, C, OC);
        free(a);
        free(b);
    }
    /* adversarial, at the largest C: all -128 x -128 gives C 2^14 = 2147467264, just below
     * 2^31; -128 x 127 the most negative; a mix of extremes */
    const int64_t N = 2, C = KERN_I8_C_MAX, OC = 3;
    int8_t *a = alloc_b(N * C), *b = alloc_b(OC * C);
    memset(a, 0x80, (size_t)(N * C));
    memset(b, 0x80, (size_t)C);
    memset(b + C, 127, (size_t)C);
    for (int64_t c = 0; c < C; c++)
        b[2 * C + c] = c % 3 ? -128 : 127;
    for (int64_t c = 0; c < C; c += 2)
        a[C + c] = 127;
    check_i8(a, b, N, C, OC);
    int32_t acc[6];
    kern_matmul_i8_i32(acc, a, b, N, C, OC);
    assert_int_equal(acc[0], 2147467264);
    assert_int_equal(acc[1], -2147467264 + C * 128);
    free(a);
    free(b);
}

/* ---- the int8 linear ------------------------------------------------------------------- */

/* out against sum_c x^[n][c] w^[o][c] in double over the dequantized operands, to 1e-5 of
 * sum_c |x^ w^| (the relative size of the fp32 rounding of x^ and w^ and of out). */
static void check_int8_fwd(quant_kind kind, quant_gran xg, quant_gran wg, int64_t N, int64_t C,
                           int64_t OC, float xoff) {
    float *x = rand_f(N * C, 2.0f), *w = rand_f(OC * C, 0.5f);
    for (int64_t i = 0; i < N * C; i++)
        x[i] += xoff; /* off-centre activations: the zero points matter */
    const quant_spec xs = {kind, xg, 8, 0}, ws = {kind, wg, 8, 0};
    qt tx = qt_run(x, N, C, &xs), tw = qt_run(w, OC, C, &ws);
    float *out = alloc_b(N * OC * 4);
    int32_t *acc = alloc_b(N * OC * 4);
    kern_matmul_int8_fwd(out, tx.q, tx.scale, tx.zero, xg, tw.q, tw.scale, tw.zero, wg, N, C, OC,
                         acc);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            double ref = 0.0, mag = 0.0;
            for (int64_t c = 0; c < C; c++) {
                const double p = (double)tx.xhat[n * C + c] * (double)tw.xhat[o * C + c];
                ref += p;
                mag += fabs(p);
            }
            CHECK_NEAR(out[n * OC + o], ref, 1e-5 * mag + 1e-30);
        }
    free(out);
    free(acc);
    free(x);
    free(w);
    qt_free(&tx);
    qt_free(&tw);
}

static void test_matmul_int8_fwd(void **state) {
    (void)state;
    const quant_kind kinds[2] = {QK_ABSMAX, QK_ZEROPOINT};
    const quant_gran grans[2] = {QG_TENSOR, QG_ROW};
    for (int k = 0; k < 2; k++)
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                check_int8_fwd(kinds[k], grans[a], grans[b], 9, 96, 20, 0.0f);
                check_int8_fwd(kinds[k], grans[a], grans[b], 1, 64, 33, 3.0f); /* decode step */
                check_int8_fwd(kinds[k], grans[a], grans[b], 40, 256, 48, 1.5f);
            }
}

/* A hand case with zero points: x = [[0, 255]] (s 1, z -128: codes -128, 127), w one row
 * [[-100, 155]] (s 1, z -28: codes -128, 127): out = 0 (-100) + 255 155 = 39525. */
static void test_matmul_int8_fwd_hand(void **state) {
    (void)state;
    const int8_t xq[2] = {-128, 127}, wq[2] = {-128, 127};
    const float xs = 1.0f, xz = -128.0f, ws = 1.0f, wz = -28.0f;
    float out;
    int32_t acc;
    kern_matmul_int8_fwd(&out, xq, &xs, &xz, QG_TENSOR, wq, &ws, &wz, QG_TENSOR, 1, 2, 1, &acc);
    CHECK_NEAR(out, 39525.0, 0.0);
    /* absmax, per-row scales: x rows [1, 2] s 0.5 and [3, -1] s 0.25; w [2, 1] s 2 */
    const int8_t xq2[4] = {1, 2, 3, -1}, wq2[2] = {2, 1};
    const float xs2[2] = {0.5f, 0.25f}, ws2 = 2.0f;
    float out2[2];
    int32_t acc2[2];
    kern_matmul_int8_fwd(out2, xq2, xs2, NULL, QG_ROW, wq2, &ws2, NULL, QG_TENSOR, 2, 2, 1, acc2);
    CHECK_NEAR(out2[0], 4.0, 0.0); /* (2 + 2) 0.5 2 */
    CHECK_NEAR(out2[1], 2.5, 0.0); /* (6 - 1) 0.25 2 */
}

/* ---- LLM.int8() decomposition ---------------------------------------------------------- */

typedef struct {
    int64_t N, C, OC;
    float *x, *w, *ws, *out, *ref;
    int8_t *wq;
    void *scratch;
} dc;

static dc dc_make(int64_t N, int64_t C, int64_t OC) {
    dc d = {N,
            C,
            OC,
            rand_f(N * C, 1.0f),
            rand_f(OC * C, 0.1f),
            alloc_b(OC * 4),
            alloc_b(N * OC * 4),
            alloc_b(N * OC * 4),
            alloc_b(OC * C),
            alloc_b(kern_int8_decomp_scratch_bytes(N, C, OC))};
    const quant_spec ws = {QK_ABSMAX, QG_ROW, 8, 0};
    kern_quantize(d.wq, d.ws, NULL, d.w, OC, C, &ws);
    return d;
}

static void dc_free(dc *d) {
    free(d->x);
    free(d->w);
    free(d->ws);
    free(d->out);
    free(d->ref);
    free(d->wq);
    free(d->scratch);
}

/* Plain vector-wise int8: x absmax per row, w per row. */
static void vectorwise(float *out, const dc *d) {
    const quant_spec xs = {QK_ABSMAX, QG_ROW, 8, 0};
    int8_t *xq = alloc_b(d->N * d->C);
    float *sx = alloc_b(d->N * 4);
    int32_t *acc = alloc_b(d->N * d->OC * 4);
    kern_quantize(xq, sx, NULL, d->x, d->N, d->C, &xs);
    kern_matmul_int8_fwd(out, xq, sx, NULL, QG_ROW, d->wq, d->ws, NULL, QG_ROW, d->N, d->C, d->OC,
                         acc);
    free(xq);
    free(sx);
    free(acc);
}

static void test_decomp_limits(void **state) {
    (void)state;
    dc d = dc_make(12, 160, 24);
    /* threshold inf: no outlier column, the same bits as vector-wise */
    assert_int_equal(kern_matmul_int8_decomp_fwd(d.out, d.x, d.w, d.wq, d.ws, d.N, d.C, d.OC,
                                                 INFINITY, d.scratch),
                     0);
    vectorwise(d.ref, &d);
    assert_memory_equal(d.out, d.ref, (size_t)(d.N * d.OC) * 4);
    /* threshold 0 with w: every column in fp32, the float product */
    assert_int_equal(
        kern_matmul_int8_decomp_fwd(d.out, d.x, d.w, d.wq, d.ws, d.N, d.C, d.OC, 0.0f, d.scratch),
        d.C);
    kern_matmul_fwd(d.ref, d.x, d.w, d.N, d.C, d.OC);
    for (int64_t n = 0; n < d.N; n++)
        for (int64_t o = 0; o < d.OC; o++) {
            double mag = 0.0;
            for (int64_t c = 0; c < d.C; c++)
                mag += fabs((double)d.x[n * d.C + c] * d.w[o * d.C + c]);
            CHECK_NEAR(d.out[n * d.OC + o], d.ref[n * d.OC + o], 1e-5 * mag);
        }
    /* threshold 0 without w: the product with the dequantized weight */
    kern_matmul_int8_decomp_fwd(d.out, d.x, NULL, d.wq, d.ws, d.N, d.C, d.OC, 0.0f, d.scratch);
    for (int64_t n = 0; n < d.N; n++)
        for (int64_t o = 0; o < d.OC; o++) {
            double ref = 0.0, mag = 0.0;
            for (int64_t c = 0; c < d.C; c++) {
                const double p = (double)d.x[n * d.C + c] * ((float)d.wq[o * d.C + c] * d.ws[o]);
                ref += p;
                mag += fabs(p);
            }
            CHECK_NEAR(d.out[n * d.OC + o], ref, 1e-6 * mag);
        }
    /* the threshold is inclusive: |x| = 0.75 exactly in one column */
    d.x[3 * d.C + 17] = -0.75f;
    for (int64_t i = 0; i < d.N * d.C; i++)
        if (i != 3 * d.C + 17 && fabsf(d.x[i]) >= 0.75f) d.x[i] *= 0.5f;
    assert_int_equal(
        kern_matmul_int8_decomp_fwd(d.out, d.x, d.w, d.wq, d.ws, d.N, d.C, d.OC, 0.75f, d.scratch),
        1);
    dc_free(&d);
}

/* Largest |out - x w^T| over the output (reference in double with the fp32 x, w). */
static double dc_err(const dc *d, const float *out) {
    double e = 0.0;
    for (int64_t n = 0; n < d->N; n++)
        for (int64_t o = 0; o < d->OC; o++) {
            double ref = 0.0;
            for (int64_t c = 0; c < d->C; c++)
                ref += (double)d->x[n * d->C + c] * d->w[o * d->C + c];
            e = fmax(e, fabs(out[n * d->OC + o] - ref));
        }
    return e;
}

/* Two planted outlier feature columns (x60, |x| up to 60 >= 6): vector-wise int8 spends
 * its 255 levels on them, the decomposition takes them out. */
static void test_decomp_outliers(void **state) {
    (void)state;
    dc d = dc_make(16, 256, 64);
    for (int64_t n = 0; n < d.N; n++) {
        d.x[n * d.C + 3] *= 60.0f;
        d.x[n * d.C + 100] *= 60.0f;
    }
    d.x[3] = 60.0f; /* at least one |x| >= 6 per planted column */
    d.x[100] = -60.0f;
    vectorwise(d.ref, &d);
    const double e_vec = dc_err(&d, d.ref);
    assert_int_equal(
        kern_matmul_int8_decomp_fwd(d.out, d.x, d.w, d.wq, d.ws, d.N, d.C, d.OC, 6.0f, d.scratch),
        2);
    const double e_dec = dc_err(&d, d.out);
    kern_matmul_int8_decomp_fwd(d.out, d.x, NULL, d.wq, d.ws, d.N, d.C, d.OC, 6.0f, d.scratch);
    const double e_dec_q = dc_err(&d, d.out);
    print_message("outliers: max error vector-wise %.4g, decomposition %.4g (w fp32), %.4g (w "
                  "int8)\n",
                  e_vec, e_dec, e_dec_q);
    if (!(e_dec * 10.0 < e_vec && e_dec_q * 4.0 < e_vec))
        fail_msg("decomposition error %g / %g not far below vector-wise %g", e_dec, e_dec_q, e_vec);
    dc_free(&d);
}

/* ---- reconstruction error -------------------------------------------------------------- */

static void test_quant_error(void **state) {
    (void)state;
    /* d = [0, 0, 0, -1]: max 1, mse 1/4, sqnr 10 log10(30 / 1) = 14.7712125 dB */
    const float x[4] = {1, 2, 3, 4}, xhat[4] = {1, 2, 3, 5};
    quant_error e;
    kern_quant_error(&e, x, xhat, 4);
    CHECK_NEAR(e.max_abs, 1.0, 0.0);
    CHECK_NEAR(e.mse, 0.25, 0.0);
    CHECK_NEAR(e.sqnr_db, 14.771212547196624, 1e-12);
    kern_quant_error(&e, x, x, 4);
    assert_true(isinf(e.sqnr_db) && e.sqnr_db > 0);
    CHECK_NEAR(e.mse, 0.0, 0.0);
    /* an 8-bit absmax tensor of uniform values: noise s^2 / 12 against signal amax^2 / 3,
     * SQNR = 10 log10(4 127^2) = 48.1 dB (the 6.02 b + 1.76 rule's cousin) */
    const int64_t n = 1 << 16;
    float *u = rand_f(n, 1.0f), *uh = alloc_b(n * 4);
    int8_t *q = alloc_b(n);
    float s;
    const quant_spec t8 = {QK_ABSMAX, QG_TENSOR, 8, 0};
    kern_quantize(q, &s, NULL, u, 1, n, &t8);
    kern_dequantize(uh, q, &s, NULL, 1, n, &t8);
    kern_quant_error(&e, u, uh, n);
    CHECK_NEAR(e.sqnr_db, 10.0 * log10(4.0 * 127 * 127), 0.1);
    CHECK_NEAR(e.mse, (double)s * s / 12.0, 0.03 * (double)s * s / 12.0);
    assert_true(e.max_abs <= 0.5 * s * (1 + 1e-5));
    free(u);
    free(uh);
    free(q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quant_sizes),           cmocka_unit_test(test_quant_hand_absmax8),
        cmocka_unit_test(test_quant_hand_zeropoint8), cmocka_unit_test(test_quant_hand_int4),
        cmocka_unit_test(test_quant_round_trip),      cmocka_unit_test(test_quant_threads),
        cmocka_unit_test(test_matmul_i8_i32),         cmocka_unit_test(test_matmul_int8_fwd),
        cmocka_unit_test(test_matmul_int8_fwd_hand),  cmocka_unit_test(test_decomp_limits),
        cmocka_unit_test(test_decomp_outliers),       cmocka_unit_test(test_quant_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
