/* test_golden_file.c — the golden-file reader (golden_file.h) on
 * tests/data/golden-tiny.bin, written by tools/golden_ref.py: config values,
 * tensor shapes, a loss near ln(V) at init, and damaged copies (truncated,
 * bad magic, trailing bytes, missing) rejected with a message naming the
 * file. Runs with workdir = the repository root. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "golden_file.h"

#define GOLDEN_PATH "tests/data/golden-tiny.bin"

/* The golden config: L=2 h=64 H=4 KVH=2 D=16 f=128 V=64 B=2 T=16.
 * Parameters, by hand:
 *   wte                 V*h                         = 64*64           =  4096
 *   per layer:
 *     attn_norm         h                           = 64
 *     wq, wo            2 * (H*D)*h                 = 2 * 64*64       =  8192
 *     wk, wv            2 * (KVH*D)*h               = 2 * 32*64       =  4096
 *     mlp_norm          h                           = 64
 *     w1, w3, w2        3 * f*h                     = 3 * 128*64      = 24576
 *                                                          layer total = 36992
 *   2 layers                                        = 2 * 36992       = 73984
 *   final_norm, lm_head h + V*h                     = 64 + 4096       =  4160
 *   total               4096 + 73984 + 4160                          = 82240 */
#define N_PARAMS 82240

static golden G;

static int setup(void **state) {
    (void)state;
    char err[512];
    if (golden_load(GOLDEN_PATH, &G, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    golden_free(&G);
    return 0;
}

static const golden_tensor *get(const char *name, golden_dtype dt, int ndim, int64_t d0, int64_t d1,
                                int64_t d2) {
    const golden_tensor *t = golden_get(&G, name);
    if (!t) fail_msg("no tensor '%s'", name);
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->ndim, ndim);
    assert_int_equal(t->dims[0], d0);
    assert_int_equal(t->dims[1], d1);
    assert_int_equal(t->dims[2], d2);
    assert_int_equal(t->dims[3], 1);
    assert_int_equal(t->count, d0 * d1 * d2);
    assert_non_null(t->u.data);
    return t;
}

static void test_config(void **state) {
    (void)state;
    assert_int_equal(G.version, 1);
    assert_int_equal(golden_config(&G, "L"), 2);
    assert_int_equal(golden_config(&G, "h"), 64);
    assert_int_equal(golden_config(&G, "H"), 4);
    assert_int_equal(golden_config(&G, "KVH"), 2);
    assert_int_equal(golden_config(&G, "D"), 16);
    assert_int_equal(golden_config(&G, "f"), 128);
    assert_int_equal(golden_config(&G, "V"), 64);
    assert_int_equal(golden_config(&G, "B"), 2);
    assert_int_equal(golden_config(&G, "T"), 16);
    assert_int_equal(golden_config(&G, "nope"), -1);
    assert_int_equal(golden_config(&G, "kvh"), -1); /* names are case-sensitive */
    assert_null(golden_get(&G, "nope"));
}

static void test_shapes(void **state) {
    (void)state;
    get("params", GOLDEN_F32, 1, N_PARAMS, 1, 1);
    get("grads", GOLDEN_F32, 1, N_PARAMS, 1, 1);
    get("params.step1", GOLDEN_F32, 1, N_PARAMS, 1, 1);
    get("params.step3", GOLDEN_F32, 1, N_PARAMS, 1, 1);
    get("logits", GOLDEN_F32, 3, 2, 16, 64);
    get("loss", GOLDEN_F32, 1, 1, 1, 1);
    get("losses", GOLDEN_F32, 1, 4, 1, 1);
    const golden_tensor *tok = get("tokens", GOLDEN_I32, 2, 2, 16, 1);
    const golden_tensor *tgt = get("targets", GOLDEN_I32, 2, 2, 16, 1);
    assert_int_equal(G.n_tensors, 9);
    /* One stream of B*(T+1) tokens: targets are the tokens shifted by one. */
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 16; t++) {
            int32_t x = tok->u.i32[b * 16 + t], y = tgt->u.i32[b * 16 + t];
            assert_in_range(x, 0, 63);
            assert_in_range(y, 0, 63);
            if (t < 15) assert_int_equal(y, tok->u.i32[b * 16 + t + 1]);
        }
}

/* Small weights: the loss at init is near ln(V); it is the mean cross-entropy
 * of the recorded logits; it falls over the three AdamW steps; the first step
 * moved the parameters by about lr (Adam's first step is ~lr * sign(g), plus
 * decay lr * 0.1 * |p|, up to ~1.4e-4 on norm weights near 1.4). */
static void test_values(void **state) {
    (void)state;
    const golden_tensor *loss = golden_get(&G, "loss"), *losses = golden_get(&G, "losses");
    const golden_tensor *logits = golden_get(&G, "logits"), *tgt = golden_get(&G, "targets");
    const golden_tensor *p0 = golden_get(&G, "params"), *p1 = golden_get(&G, "params.step1");
    const golden_tensor *g = golden_get(&G, "grads");
    double l0 = loss->u.f32[0];
    assert_float_equal(l0, log(64.0), 0.1);
    assert_float_equal(losses->u.f32[0], l0, 0.0);
    for (int i = 1; i < 4; i++) assert_true(losses->u.f32[i] < losses->u.f32[i - 1]);

    double ce = 0;
    for (int r = 0; r < 32; r++) {
        const float *z = logits->u.f32 + r * 64;
        double m = z[0], s = 0;
        for (int v = 1; v < 64; v++) m = fmax(m, z[v]);
        for (int v = 0; v < 64; v++) s += exp(z[v] - m);
        ce += m + log(s) - z[tgt->u.i32[r]];
    }
    assert_float_equal(ce / 32, l0, 1e-5);

    double max_step = 0, gnorm = 0;
    for (int64_t i = 0; i < N_PARAMS; i++) {
        max_step = fmax(max_step, fabs((double)p1->u.f32[i] - p0->u.f32[i]));
        gnorm += (double)g->u.f32[i] * g->u.f32[i];
        assert_true(isfinite(p0->u.f32[i]) && isfinite(g->u.f32[i]));
    }
    assert_true(gnorm > 0);
    assert_true(max_step > 0.9e-3 && max_step < 1.2e-3);
}

/* --- damaged copies ---------------------------------------------------------- */

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    assert_true(n > 0);
    rewind(fp);
    unsigned char *b = malloc((size_t)n + 16);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(b, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* Loading path must fail with a message that names it and contains want. */
static void expect_bad(const char *path, const char *want) {
    golden g;
    char err[512] = "";
    if (golden_load(path, &g, err, sizeof err) == 0) {
        golden_free(&g);
        fail_msg("%s loaded; expected an error containing '%s'", path, want);
    }
    if (!strstr(err, path) || !strstr(err, want))
        fail_msg("error for %s lacks the path or '%s': %s", path, want, err);
    assert_int_equal(g.n_tensors, 0);
    assert_null(g.tensors);
    golden_free(&g); /* harmless on a failed load */
}

static void test_truncated(void **state) {
    (void)state;
    size_t n;
    unsigned char *b = slurp(GOLDEN_PATH, &n);
    char path[128];
    snprintf(path, sizeof path, "/tmp/test_golden_file.%ld.bin", (long)getpid());

    /* Cut in the middle of the last tensor's data. */
    spit(path, b, n - 100);
    expect_bad(path, "truncated at byte");
    /* Every cut through the header and the first tensor's header, then a
     * stride through the data: an error each time, never a crash. */
    for (size_t cut = 0; cut < n; cut += cut < 400 ? 1 : 40009) {
        spit(path, b, cut);
        expect_bad(path, cut < 8 ? "" : "truncated");
    }
    /* Bad magic. */
    b[0] = 'X';
    spit(path, b, n);
    expect_bad(path, "bad magic");
    b[0] = 'P';
    /* Trailing bytes. */
    memset(b + n, 0, 16);
    spit(path, b, n + 3);
    expect_bad(path, "trailing");
    /* An unknown version. */
    b[8] = 2;
    spit(path, b, n);
    expect_bad(path, "version 2");
    b[8] = 1;
    remove(path);
    expect_bad(path, "cannot open");
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_truncated),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
