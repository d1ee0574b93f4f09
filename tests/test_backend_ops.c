/* test_backend_ops.c — every CUDA kernel against its CPU twin on the same inputs
 * (ggml's test-backend-ops idea): normalised error ||gpu - cpu|| / ||cpu|| within a
 * tolerance per op, bit-equal where both round the same way (bf16 conversion). Needs a
 * GPU: without one, or without the CUDA module, it reports a skip with the reason
 * (exit 77), never a pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "rt_device_module.h"

static const rt_cuda_kernels *K;
static int failures;

/* Deterministic values in [lo, hi) (an LCG: the same inputs on every run). */
static void fill(float *x, int64_t n, float lo, float hi, uint64_t seed) {
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (int64_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = lo + (hi - lo) * (float)((s >> 40) & 0xFFFFFF) / 16777216.0f;
    }
}

static void *dev_copy(const void *host, size_t bytes) {
    void *d = NULL;
    char why[256];
    if (K->alloc(&d, bytes, why, sizeof why) || (host && K->upload(d, host, bytes, why, sizeof why))) {
        printf("FAIL: %s\n", why);
        exit(1);
    }
    return d;
}

static void dev_get(void *host, const void *dev, size_t bytes) {
    char why[256];
    if (K->download(host, dev, bytes, why, sizeof why)) {
        printf("FAIL: %s\n", why);
        exit(1);
    }
}

/* ||got - want|| / ||want|| against tol; prints one line. */
static void compare(const char *op, const float *want, const float *got, int64_t n, double tol) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)got[i] - (double)want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    const double err = den > 0 ? sqrt(num / den) : sqrt(num);
    const int ok = isfinite(err) && err <= tol;
    printf("%-14s n %-8lld normalised error %.3g (tolerance %.0e) %s\n", op, (long long)n, err, tol,
           ok ? "ok" : "FAIL");
    if (!ok) failures++;
}

static void test_add(int64_t n) {
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *want = malloc(n * sizeof *want),
          *got = malloc(n * sizeof *got);
    fill(a, n, -4, 4, 1), fill(b, n, -4, 4, 2);
    kern_add(want, a, b, n);
    float *da = dev_copy(a, n * sizeof *a), *db = dev_copy(b, n * sizeof *b),
          *dout = dev_copy(NULL, n * sizeof *got);
    K->add(dout, da, db, n);
    dev_get(got, dout, n * sizeof *got);
    compare("add", want, got, n, 0); /* one rounding: exact */
    K->release(da), K->release(db), K->release(dout);
    free(a), free(b), free(want), free(got);
}

static void test_swiglu(int64_t n) {
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *dy = malloc(n * sizeof *dy);
    float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
    float *wa = calloc(n, sizeof *wa), *wb = calloc(n, sizeof *wb), *ga = malloc(n * sizeof *ga),
          *gb = malloc(n * sizeof *gb);
    fill(a, n, -12, 12, 3), fill(b, n, -3, 3, 4), fill(dy, n, -1, 1, 5);
    kern_swiglu_fwd(want, a, b, n);
    kern_swiglu_bwd(wa, wb, dy, a, b, n);
    float *da = dev_copy(a, n * sizeof *a), *db = dev_copy(b, n * sizeof *b),
          *ddy = dev_copy(dy, n * sizeof *dy), *dout = dev_copy(NULL, n * sizeof *got);
    float *dga = dev_copy(wa, n * sizeof *wa), *dgb = dev_copy(wb, n * sizeof *wb);
    /* the gradients accumulate: start the device's from zero as the host's did */
    float *zero = calloc(n, sizeof *zero);
    char why[256];
    if (K->upload(dga, zero, n * sizeof *zero, why, sizeof why) ||
        K->upload(dgb, zero, n * sizeof *zero, why, sizeof why)) {
        printf("FAIL: %s\n", why);
        exit(1);
    }
    K->swiglu_fwd(dout, da, db, n);
    dev_get(got, dout, n * sizeof *got);
    compare("swiglu_fwd", want, got, n, 1e-6);
    K->swiglu_bwd(dga, dgb, ddy, da, db, n);
    dev_get(ga, dga, n * sizeof *ga);
    dev_get(gb, dgb, n * sizeof *gb);
    compare("swiglu_bwd da", wa, ga, n, 1e-6);
    compare("swiglu_bwd db", wb, gb, n, 1e-6);
    K->release(da), K->release(db), K->release(ddy), K->release(dout), K->release(dga),
        K->release(dgb);
    free(a), free(b), free(dy), free(want), free(got), free(wa), free(wb), free(ga), free(gb),
        free(zero);
}

static void test_adamw(int64_t n) {
    const size_t bytes = (size_t)n * sizeof(float);
    float *p = malloc(bytes), *m = malloc(bytes), *v = malloc(bytes), *g = malloc(bytes);
    float *gp = malloc(bytes), *gm = malloc(bytes), *gv = malloc(bytes);
    fill(p, n, -1, 1, 6), fill(m, n, -0.1f, 0.1f, 7), fill(v, n, 0, 0.01f, 8), fill(g, n, -1, 1, 9);
    float *dp = dev_copy(p, bytes), *dm = dev_copy(m, bytes), *dv = dev_copy(v, bytes),
          *dg = dev_copy(g, bytes);
    for (int step = 1; step <= 3; step++) {
        kern_adamw(p, m, v, g, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
        K->adamw(dp, dm, dv, dg, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
    }
    dev_get(gp, dp, bytes), dev_get(gm, dm, bytes), dev_get(gv, dv, bytes);
    compare("adamw p", p, gp, n, 1e-6);
    compare("adamw m", m, gm, n, 1e-6);
    compare("adamw v", v, gv, n, 1e-6);
    K->release(dp), K->release(dm), K->release(dv), K->release(dg);
    free(p), free(m), free(v), free(g), free(gp), free(gm), free(gv);
}

static void test_convert(int64_t n) {
    float *x = malloc(n * sizeof *x), *back = malloc(n * sizeof *back),
          *gback = malloc(n * sizeof *gback);
    uint16_t *h = malloc(n * sizeof *h), *gh = malloc(n * sizeof *gh);
    fill(x, n, -3e38f, 3e38f, 10);
    x[0] = NAN, x[1] = INFINITY, x[2] = 3.4028235e38f, x[3] = 1e-40f; /* NaN, inf, FLT_MAX, denormal */
    kern_f32_to_bf16(h, x, n);
    kern_bf16_to_f32(back, h, n);
    float *dx = dev_copy(x, n * sizeof *x), *dback = dev_copy(NULL, n * sizeof *back);
    uint16_t *dh = dev_copy(NULL, n * sizeof *h);
    K->f32_to_bf16(dh, dx, n);
    K->bf16_to_f32(dback, dh, n);
    dev_get(gh, dh, n * sizeof *gh);
    dev_get(gback, dback, n * sizeof *gback);
    const int same = !memcmp(h, gh, n * sizeof *h) && !memcmp(back, gback, n * sizeof *back);
    printf("%-14s n %-8lld bits %s\n", "bf16 <-> f32", (long long)n, same ? "equal ok" : "differ FAIL");
    if (!same) failures++;
    K->release(dx), K->release(dback), K->release(dh);
    free(x), free(back), free(gback), free(h), free(gh);
}

int main(void) {
    char why[512];
    rt_device_info dev[16];
    int n = 0;
    K = rt_device_cuda_kernels(why, sizeof why);
    if (!K || rt_device_list(dev, 16, &n, why, sizeof why)) {
        printf("SKIP: no CUDA device to compare against: %s\n", why);
        return 77;
    }
    printf("device 0: %s\n", dev[0].name);
    /* sizes: one partial block, and more than the grid's cap needs a stride for */
    const int64_t sizes[] = {1000, 1 << 20};
    for (int i = 0; i < 2; i++) {
        test_add(sizes[i]);
        test_swiglu(sizes[i]);
        test_adamw(sizes[i]);
        test_convert(sizes[i]);
    }
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
