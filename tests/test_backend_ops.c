/* test_backend_ops.c — every CUDA kernel against its CPU twin on the same inputs
 * (ggml's test-backend-ops idea): normalised error ||gpu - cpu|| / ||cpu|| within a
 * tolerance per op, bit-equal where both round the same way (bf16 conversion). Needs a
 * GPU: without one, or without the CUDA module, it reports a skip with the reason
 * (exit 77), never a pass. Tolerances (normalised error, the square root of ggml's NMSE): 0
 * where both compute the same operations in the same order (add, the embedding, rmsnorm's
 * dw), 1e-6 elementwise where only exp or FMA contraction rounds differently, 1e-5 where a
 * row's sum is reduced in another order (rmsnorm's rstd and dx); ggml's test-backend-ops
 * allows 1e-7 NMSE, i.e. 3e-4 here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "kern_quant.h"
#include "rt_block_cache.h"
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

static void dev_put(void *dev, const void *host, size_t bytes) {
    char why[256];
    if (K->upload(dev, host, bytes, why, sizeof why)) {
        printf("FAIL: %s\n", why);
        exit(1);
    }
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

/* A device copy of n host floats set to zero (gradients accumulate). */
static float *dev_zeros(int64_t n) {
    float *z = calloc((size_t)n, sizeof *z);
    float *d = dev_copy(z, (size_t)n * sizeof *z);
    free(z);
    return d;
}

static void test_embed(int64_t N, int64_t C, int64_t V) {
    int32_t *tok = malloc((size_t)N * sizeof *tok);
    float *wte = malloc((size_t)(V * C) * sizeof *wte), *dy = malloc((size_t)(N * C) * sizeof *dy);
    float *want = malloc((size_t)(N * C) * sizeof *want), *got = malloc((size_t)(N * C) * sizeof *got);
    float *wd = calloc((size_t)(V * C), sizeof *wd), *gd = malloc((size_t)(V * C) * sizeof *gd);
    for (int64_t n = 0; n < N; n++) tok[n] = (int32_t)((n * 7919 + 13) % V); /* repeats: sums */
    fill(wte, V * C, -1, 1, 11), fill(dy, N * C, -1, 1, 12);
    kern_embed_fwd(want, tok, wte, N, C);
    kern_embed_bwd(wd, dy, tok, N, C);
    int32_t *dtok = dev_copy(tok, (size_t)N * sizeof *tok);
    float *dwte = dev_copy(wte, (size_t)(V * C) * sizeof *wte),
          *ddy = dev_copy(dy, (size_t)(N * C) * sizeof *dy),
          *dout = dev_copy(NULL, (size_t)(N * C) * sizeof *got), *dgrad = dev_zeros(V * C);
    K->embed_fwd(dout, dtok, dwte, N, C);
    dev_get(got, dout, (size_t)(N * C) * sizeof *got);
    compare("embed_fwd", want, got, N * C, 0); /* a copy */
    K->embed_bwd(dgrad, ddy, dtok, N, C);
    dev_get(gd, dgrad, (size_t)(V * C) * sizeof *gd);
    compare("embed_bwd", wd, gd, V * C, 0); /* the CPU's order of sums */
    K->release(dtok), K->release(dwte), K->release(ddy), K->release(dout), K->release(dgrad);
    free(tok), free(wte), free(dy), free(want), free(got), free(wd), free(gd);
}

static void test_rmsnorm(int64_t N, int64_t C) {
    const size_t nc = (size_t)(N * C) * sizeof(float), c = (size_t)C * sizeof(float);
    float *x = malloc(nc), *w = malloc(c), *dy = malloc(nc), *want = malloc(nc), *got = malloc(nc);
    float *rs = malloc((size_t)N * sizeof *rs), *grs = malloc((size_t)N * sizeof *grs);
    float *wdx = calloc((size_t)(N * C), sizeof *wdx), *wdw = calloc((size_t)C, sizeof *wdw);
    float *gdx = malloc(nc), *gdw = malloc(c);
    fill(x, N * C, -2, 2, 13), fill(w, C, 0.5f, 1.5f, 14), fill(dy, N * C, -1, 1, 15);
    kern_rmsnorm_fwd(want, rs, x, w, N, C, 1e-5f);
    kern_rmsnorm_bwd(wdx, wdw, dy, x, w, rs, N, C);
    float *dx_ = dev_copy(x, nc), *dw_ = dev_copy(w, c), *ddy = dev_copy(dy, nc),
          *dout = dev_copy(NULL, nc), *drs = dev_copy(NULL, (size_t)N * sizeof *rs),
          *gx = dev_zeros(N * C), *gw = dev_zeros(C);
    K->rmsnorm_fwd(dout, drs, dx_, dw_, N, C, 1e-5f);
    dev_get(got, dout, nc);
    dev_get(grs, drs, (size_t)N * sizeof *grs);
    compare("rmsnorm_fwd", want, got, N * C, 1e-5); /* sums in another order */
    compare("rmsnorm rstd", rs, grs, N, 1e-5);
    K->rmsnorm_bwd(gx, gw, ddy, dx_, dw_, drs, N, C);
    dev_get(gdx, gx, nc);
    dev_get(gdw, gw, c);
    compare("rmsnorm_bwd dx", wdx, gdx, N * C, 1e-5);
    compare("rmsnorm_bwd dw", wdw, gdw, C, 0); /* the CPU's order, no FMA */
    K->release(dx_), K->release(dw_), K->release(ddy), K->release(dout), K->release(drs),
        K->release(gx), K->release(gw);
    free(x), free(w), free(dy), free(want), free(got), free(rs), free(grs), free(wdx), free(wdw),
        free(gdx), free(gdw);
}

/* n floats in [lo, hi) from seed, on the host (the caller frees). */
static float *host_rand(int64_t n, float lo, float hi, uint64_t seed) {
    float *x = malloc((size_t)n * sizeof *x);
    fill(x, n, lo, hi, seed);
    return x;
}

static float *dev_f(const float *h, int64_t n) { return dev_copy(h, (size_t)n * sizeof *h); }

/* The device's n floats against want. */
static void compare_dev(const char *op, const float *want, const float *dev, int64_t n, double tol) {
    float *got = malloc((size_t)n * sizeof *got);
    dev_get(got, dev, (size_t)n * sizeof *got);
    compare(op, want, got, n, tol);
    free(got);
}

/* RoPE on [B][T][NH][D], forward then backward (which undoes it), and at the zig-zag
 * positions of a context-parallel rank. */
static void test_rope(int64_t B, int64_t T, int64_t NH, int64_t D) {
    const int64_t n = B * T * NH * D;
    float *x = host_rand(n, -1, 1, 11), *want = malloc((size_t)n * sizeof *want);
    int64_t *pos = malloc((size_t)T * sizeof *pos);
    for (int64_t t = 0; t < T; t++) pos[t] = t < T / 2 ? t : 3 * T - 1 - t; /* chunks 0 and 3 of 4 */
    float *dx = dev_f(x, n);
    int64_t *dpos = dev_copy(pos, (size_t)T * sizeof *pos);
    memcpy(want, x, (size_t)n * sizeof *want);
    kern_rope_fwd(want, B, T, NH, D, 10000.0f);
    K->rope_fwd(dx, B, T, NH, D, 10000.0f);
    compare_dev("rope_fwd", want, dx, n, 1e-6);
    kern_rope_bwd(want, B, T, NH, D, 10000.0f);
    K->rope_bwd(dx, B, T, NH, D, 10000.0f);
    compare_dev("rope_bwd", want, dx, n, 1e-6);
    kern_rope_pos_fwd(want, pos, B, T, NH, D, 500000.0f);
    K->rope_pos_fwd(dx, dpos, B, T, NH, D, 500000.0f);
    compare_dev("rope_pos_fwd", want, dx, n, 1e-6);
    kern_rope_pos_bwd(want, pos, B, T, NH, D, 500000.0f);
    K->rope_pos_bwd(dx, dpos, B, T, NH, D, 500000.0f);
    compare_dev("rope_pos_bwd", want, dx, n, 1e-6);
    K->release(dx), K->release(dpos);
    free(x), free(want), free(pos);
}

/* Cross-entropy over V classes: probs and losses, then the backward from the same probs
 * (bit-equal: the CPU's roundings). */
static void test_xent(int64_t N, int64_t V) {
    float *logits = host_rand(N * V, -8, 8, 12), *probs = malloc((size_t)(N * V) * sizeof *probs);
    float *loss = malloc((size_t)N * sizeof *loss), *d = host_rand(N * V, -1, 1, 13);
    int32_t *tgt = malloc((size_t)N * sizeof *tgt);
    for (int64_t n = 0; n < N; n++) tgt[n] = (int32_t)((n * 7919) % V);
    float *dl = dev_f(logits, N * V), *dp = dev_f(probs, N * V), *dloss = dev_f(loss, N);
    int32_t *dt = dev_copy(tgt, (size_t)N * sizeof *tgt);
    kern_xent_fwd(probs, loss, logits, tgt, N, V);
    K->xent_fwd(dp, dloss, dl, dt, N, V);
    compare_dev("xent_fwd probs", probs, dp, N * V, 1e-6);
    compare_dev("xent_fwd losses", loss, dloss, N, 1e-6);
    float *dd = dev_f(d, N * V);
    K->release(dp);
    dp = dev_f(probs, N * V); /* the same probabilities on both sides */
    kern_xent_bwd(d, probs, tgt, 1.0f / (float)N, N, V);
    K->xent_bwd(dd, dp, dt, 1.0f / (float)N, N, V);
    compare_dev("xent_bwd", d, dd, N * V, 0);
    K->release(dl), K->release(dp), K->release(dloss), K->release(dt), K->release(dd);
    free(logits), free(probs), free(loss), free(d), free(tgt);
}

/* Causal GQA attention forward and backward on [B][T][H][D] (k, v with KVH heads). */
static void test_attention(int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D) {
    const int64_t nq = B * T * H * D, nk = B * T * KVH * D, nl = B * T * H;
    float *q = host_rand(nq, -1, 1, 21), *k = host_rand(nk, -1, 1, 22), *v = host_rand(nk, -1, 1, 23);
    float *dout = host_rand(nq, -1, 1, 24), *out = calloc((size_t)nq, 4), *lse = calloc((size_t)nl, 4);
    float *dq = calloc((size_t)nq, 4), *dk = calloc((size_t)nk, 4), *dv = calloc((size_t)nk, 4);
    float *scratch = malloc((size_t)kern_attn_scratch_floats(T) * 4);
    float *gq = dev_f(q, nq), *gk = dev_f(k, nk), *gv = dev_f(v, nk), *gdo = dev_f(dout, nq);
    float *gout = dev_zeros(nq), *glse = dev_zeros(nl);
    kern_attn_fwd(out, lse, q, k, v, B, T, H, KVH, D, scratch);
    K->attn_fwd(gout, glse, gq, gk, gv, B, T, H, KVH, D, NULL);
    compare_dev("attn_fwd out", out, gout, nq, 1e-5);
    compare_dev("attn_fwd lse", lse, glse, nl, 1e-5);
    /* the backward from the CPU's out and lse on both sides */
    dev_put(gout, out, (size_t)nq * 4), dev_put(glse, lse, (size_t)nl * 4);
    float *gdq = dev_zeros(nq), *gdk = dev_zeros(nk), *gdv = dev_zeros(nk);
    kern_attn_bwd(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, KVH, D, scratch);
    K->attn_bwd(gdq, gdk, gdv, gdo, gq, gk, gv, gout, glse, B, T, H, KVH, D, NULL);
    compare_dev("attn_bwd dq", dq, gdq, nq, 1e-5);
    compare_dev("attn_bwd dk", dk, gdk, nk, 1e-5);
    compare_dev("attn_bwd dv", dv, gdv, nk, 1e-5);
    K->release(gq), K->release(gk), K->release(gv), K->release(gdo), K->release(gout),
        K->release(glse), K->release(gdq), K->release(gdk), K->release(gdv);
    free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv),
        free(scratch);
}

/* One ring-attention block: a rank's zig-zag queries (chunks 0 and 3 of 4) against the
 * keys of chunks 1 and 2, merged into a running state that an earlier block left; then
 * the block's backward from that state. */
static void test_attention_block(int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D) {
    const int64_t c = T / 4, Tq = 2 * c, Tk = 2 * c;
    const int64_t nq = B * Tq * H * D, nk = B * Tk * KVH * D, nl = B * Tq * H;
    int64_t *qpos = malloc((size_t)Tq * 8), *kpos = malloc((size_t)Tk * 8);
    for (int64_t i = 0; i < c; i++)
        qpos[i] = i, qpos[c + i] = 3 * c + i, kpos[i] = c + i, kpos[c + i] = 2 * c + i;
    float *q = host_rand(nq, -1, 1, 31), *k = host_rand(nk, -1, 1, 32), *v = host_rand(nk, -1, 1, 33);
    float *out = host_rand(nq, -1, 1, 34), *lse = host_rand(nl, 0, 2, 35);
    float *dout = host_rand(nq, -1, 1, 36);
    for (int64_t b = 0; b < B; b++) /* rows of chunk 0 saw nothing yet: the empty state */
        for (int64_t i = 0; i < c; i++)
            for (int64_t h = 0; h < H; h++) lse[(b * Tq + i) * H + h] = -INFINITY;
    float *dq = calloc((size_t)nq, 4), *dk = calloc((size_t)nk, 4), *dv = calloc((size_t)nk, 4);
    float *scratch = malloc((size_t)kern_attn_block_scratch_floats(Tq, Tk, D) * 4);
    float *gq = dev_f(q, nq), *gk = dev_f(k, nk), *gv = dev_f(v, nk), *gdo = dev_f(dout, nq);
    float *gout = dev_f(out, nq), *glse = dev_f(lse, nl);
    int64_t *gqp = dev_copy(qpos, (size_t)Tq * 8), *gkp = dev_copy(kpos, (size_t)Tk * 8);
    kern_attn_block_fwd(out, lse, q, k, v, qpos, kpos, B, Tq, Tk, H, KVH, D, scratch);
    K->attn_block_fwd(gout, glse, gq, gk, gv, gqp, gkp, B, Tq, Tk, H, KVH, D, NULL);
    compare_dev("attn_block_fwd out", out, gout, nq, 1e-5);
    compare_dev("attn_block_fwd lse", lse, glse, nl, 1e-5);
    dev_put(gout, out, (size_t)nq * 4), dev_put(glse, lse, (size_t)nl * 4);
    float *gdq = dev_zeros(nq), *gdk = dev_zeros(nk), *gdv = dev_zeros(nk);
    kern_attn_block_bwd(dq, dk, dv, dout, q, k, v, out, lse, qpos, kpos, B, Tq, Tk, H, KVH, D,
                        scratch);
    K->attn_block_bwd(gdq, gdk, gdv, gdo, gq, gk, gv, gout, glse, gqp, gkp, B, Tq, Tk, H, KVH, D,
                      NULL);
    compare_dev("attn_block_bwd dq", dq, gdq, nq, 1e-5);
    compare_dev("attn_block_bwd dk", dk, gdk, nk, 1e-5);
    compare_dev("attn_block_bwd dv", dv, gdv, nk, 1e-5);
    K->release(gq), K->release(gk), K->release(gv), K->release(gdo), K->release(gout),
        K->release(glse), K->release(gdq), K->release(gdk), K->release(gdv), K->release(gqp),
        K->release(gkp);
    free(qpos), free(kpos), free(q), free(k), free(v), free(out), free(lse), free(dout), free(dq),
        free(dk), free(dv), free(scratch);
}

/* The linear layer: out = inp W^T, then dinp += dout W and dW += dout^T inp (fp32 cuBLAS
 * against OpenBLAS: sums in another order). */
static void test_matmul(int64_t N, int64_t C, int64_t OC) {
    float *x = host_rand(N * C, -1, 1, 41), *w = host_rand(OC * C, -1, 1, 42);
    float *dy = host_rand(N * OC, -1, 1, 43), *y = malloc((size_t)(N * OC) * 4);
    float *dx = calloc((size_t)(N * C), 4), *dw = calloc((size_t)(OC * C), 4);
    float *gx = dev_f(x, N * C), *gw = dev_f(w, OC * C), *gdy = dev_f(dy, N * OC);
    float *gy = dev_zeros(N * OC), *gdx = dev_zeros(N * C), *gdw = dev_zeros(OC * C);
    kern_matmul_fwd(y, x, w, N, C, OC);
    K->matmul_fwd(gy, gx, gw, N, C, OC);
    compare_dev("matmul_fwd", y, gy, N * OC, 1e-5);
    kern_matmul_bwd(dx, dw, dy, x, w, N, C, OC);
    K->matmul_bwd(gdx, gdw, gdy, gx, gw, N, C, OC);
    compare_dev("matmul_bwd dinp", dx, gdx, N * C, 1e-5);
    compare_dev("matmul_bwd dw", dw, gdw, OC * C, 1e-5);
    K->release(gx), K->release(gw), K->release(gdy), K->release(gy), K->release(gdx),
        K->release(gdw);
    free(x), free(w), free(dy), free(y), free(dx), free(dw);
}

/* bytes of device memory against want, bit for bit. */
static void same_bytes(const char *op, const void *want, const void *dev, size_t bytes) {
    unsigned char *got = malloc(bytes ? bytes : 1);
    dev_get(got, dev, bytes);
    const int ok = memcmp(want, got, bytes) == 0;
    printf("%-30s %zu bytes %s\n", op, bytes, ok ? "identical ok" : "differ FAIL");
    if (!ok) failures++;
    free(got);
}

/* Every kind, granularity and width on an R x C matrix (C odd at 4 bits: bytes straddle
 * rows), with a row of zeros: codes, scales, zero points and the dequantized values are
 * the CPU's bit for bit. */
static void test_quantize(int64_t R, int64_t C) {
    static const quant_gran grans[] = {QG_TENSOR, QG_ROW, QG_COL, QG_BLOCK};
    float *x = host_rand(R * C, -3, 5, 51);
    for (int64_t c = 0; c < C; c++) x[C + c] = 0; /* row 1: all zeros */
    float *gx = dev_f(x, R * C);
    for (int k = 0; k < 2; k++)
        for (int g = 0; g < 4; g++)
            for (int bits = 8; bits >= 4; bits -= 4) {
                const quant_spec s = {k ? QK_ZEROPOINT : QK_ABSMAX, grans[g], bits, 32};
                if (kern_quant_check(&s, R, C)) continue; /* a block must divide C */
                const int64_t nq = kern_quant_bytes(&s, R, C), ng = kern_quant_groups(&s, R, C);
                void *q = malloc((size_t)nq);
                float *sc = malloc((size_t)ng * 4), *z = k ? malloc((size_t)ng * 4) : NULL;
                float *back = malloc((size_t)(R * C) * 4);
                void *gq = dev_copy(NULL, (size_t)nq);
                float *gs = dev_zeros(ng), *gz = k ? dev_zeros(ng) : NULL, *gb = dev_zeros(R * C);
                kern_quantize(q, sc, z, x, R, C, &s);
                kern_dequantize(back, q, sc, z, R, C, &s);
                K->quantize(gq, gs, gz, gx, R, C, &s);
                K->dequantize(gb, gq, gs, gz, R, C, &s);
                char name[64];
                snprintf(name, sizeof name, "quantize %s g%d %d-bit codes", k ? "zp" : "absmax", g, bits);
                same_bytes(name, q, gq, (size_t)nq);
                same_bytes("  scales", sc, gs, (size_t)ng * 4);
                if (k) same_bytes("  zero points", z, gz, (size_t)ng * 4);
                same_bytes("  dequantized", back, gb, (size_t)(R * C) * 4);
                K->release(gq), K->release(gs), K->release(gb);
                if (gz) K->release(gz);
                free(q), free(sc), free(z), free(back);
            }
    K->release(gx);
    free(x);
}

/* int8 x int8 -> int32 and the int8 linear, absmax and zero-point, per tensor and per row. */
static void test_matmul_int8(int64_t N, int64_t C, int64_t OC) {
    int8_t *a = malloc((size_t)(N * C)), *b = malloc((size_t)(OC * C));
    for (int64_t i = 0; i < N * C; i++) a[i] = (int8_t)((i * 37 + 11) % 256 - 128);
    for (int64_t i = 0; i < OC * C; i++) b[i] = (int8_t)((i * 53 + 5) % 256 - 128);
    int32_t *acc = malloc((size_t)(N * OC) * 4);
    float *out = malloc((size_t)(N * OC) * 4);
    float *xs = host_rand(N, 0.01f, 0.1f, 61), *xz = host_rand(N, -20, 20, 62);
    float *ws = host_rand(OC, 0.01f, 0.1f, 63), *wz = host_rand(OC, -20, 20, 64);
    for (int64_t i = 0; i < N; i++) xz[i] = (float)(int)xz[i]; /* zero points are integers */
    for (int64_t i = 0; i < OC; i++) wz[i] = (float)(int)wz[i];
    int8_t *ga = dev_copy(a, (size_t)(N * C)), *gbm = dev_copy(b, (size_t)(OC * C));
    int32_t *gacc = dev_copy(NULL, (size_t)(N * OC) * 4);
    float *gout = dev_zeros(N * OC), *gxs = dev_f(xs, N), *gxz = dev_f(xz, N), *gws = dev_f(ws, OC),
          *gwz = dev_f(wz, OC);
    kern_matmul_i8_i32(acc, a, b, N, C, OC);
    K->matmul_i8_i32(gacc, ga, gbm, N, C, OC);
    same_bytes("matmul_i8_i32", acc, gacc, (size_t)(N * OC) * 4);
    for (int zp = 0; zp < 2; zp++)
        for (int row = 0; row < 2; row++) {
            const quant_gran g = row ? QG_ROW : QG_TENSOR;
            kern_matmul_int8_fwd(out, a, xs, zp ? xz : NULL, g, b, ws, zp ? wz : NULL, g, N, C, OC,
                                 acc);
            K->matmul_int8_fwd(gout, ga, gxs, zp ? gxz : NULL, g, gbm, gws, zp ? gwz : NULL, g, N,
                               C, OC, gacc);
            same_bytes(zp ? (row ? "matmul_int8 zp per row" : "matmul_int8 zp per tensor")
                          : (row ? "matmul_int8 absmax per row" : "matmul_int8 absmax per tensor"),
                       out, gout, (size_t)(N * OC) * 4);
        }
    K->release(ga), K->release(gbm), K->release(gacc), K->release(gout), K->release(gxs),
        K->release(gxz), K->release(gws), K->release(gwz);
    free(a), free(b), free(acc), free(out), free(xs), free(xz), free(ws), free(wz);
}

/* The MoE dispatch: slots with drops (capacity below the busiest expert's load), the
 * permute and the gate-weighted combine, forward and backward, bit for bit. */
static void test_moe_permute(int64_t N, int64_t K_, int64_t E, int64_t H, int64_t cap) {
    const int64_t NK = N * K_, rows = E * cap;
    int32_t *idx = malloc((size_t)NK * 4), *slot = malloc((size_t)NK * 4);
    int64_t *count = malloc((size_t)E * 8);
    for (int64_t i = 0; i < NK; i++) idx[i] = (int32_t)((i * 7 + i / 3) % E);
    float *x = host_rand(N * H, -1, 1, 71), *gate = host_rand(NK, 0, 1, 72);
    float *dout = host_rand(N * H, -1, 1, 73), *buf = malloc((size_t)(rows * H) * 4);
    float *out = malloc((size_t)(N * H) * 4), *dbuf = host_rand(rows * H, -1, 1, 74);
    float *dgate = host_rand(NK, -1, 1, 75), *dx = host_rand(N * H, -1, 1, 76);
    int32_t *gidx = dev_copy(idx, (size_t)NK * 4), *gslot = dev_copy(NULL, (size_t)NK * 4);
    int64_t *gcount = dev_copy(NULL, (size_t)E * 8);
    float *gx = dev_f(x, N * H), *ggate = dev_f(gate, NK), *gdout = dev_f(dout, N * H);
    float *gbuf = dev_zeros(rows * H), *gout = dev_zeros(N * H), *gdbuf = dev_f(dbuf, rows * H);
    float *gdgate = dev_f(dgate, NK), *gdx = dev_f(dx, N * H);
    kern_moe_slots(slot, count, idx, N, K_, E, cap);
    K->moe_slots(gslot, gcount, gidx, N, K_, E, cap);
    same_bytes("moe_slots", slot, gslot, (size_t)NK * 4);
    same_bytes("  counts", count, gcount, (size_t)E * 8);
    kern_moe_permute_fwd(buf, x, slot, N, K_, H, rows);
    K->moe_permute_fwd(gbuf, gx, gslot, N, K_, H, rows);
    same_bytes("moe_permute_fwd", buf, gbuf, (size_t)(rows * H) * 4);
    kern_moe_unpermute_fwd(out, buf, gate, slot, N, K_, H);
    K->moe_unpermute_fwd(gout, gbuf, ggate, gslot, N, K_, H);
    same_bytes("moe_unpermute_fwd", out, gout, (size_t)(N * H) * 4);
    kern_moe_unpermute_bwd(dbuf, dgate, dout, buf, gate, slot, N, K_, H);
    K->moe_unpermute_bwd(gdbuf, gdgate, gdout, gbuf, ggate, gslot, N, K_, H);
    same_bytes("moe_unpermute_bwd dbuf", dbuf, gdbuf, (size_t)(rows * H) * 4);
    same_bytes("moe_unpermute_bwd dgate", dgate, gdgate, (size_t)NK * 4);
    kern_moe_permute_bwd(dx, dbuf, slot, N, K_, H);
    K->moe_permute_bwd(gdx, gdbuf, gslot, N, K_, H);
    same_bytes("moe_permute_bwd", dx, gdx, (size_t)(N * H) * 4);
    K->release(gidx), K->release(gslot), K->release(gcount), K->release(gx), K->release(ggate),
        K->release(gdout), K->release(gbuf), K->release(gout), K->release(gdbuf),
        K->release(gdgate), K->release(gdx);
    free(idx), free(slot), free(count), free(x), free(gate), free(dout), free(buf), free(out),
        free(dbuf), free(dgate), free(dx);
}

/* The block cache over device memory (rt_device_block_source): a freed block
 * serves the next request of its rounded size, zeroed on the device; reserved
 * memory shows in cudaMemGetInfo and goes back with the trim. */
static void check(const char *what, int ok) {
    printf("%-30s %s\n", what, ok ? "ok" : "FAIL");
    if (!ok) failures++;
}

static void test_device_cache(void) {
    char why[256];
    rt_block_source src;
    rt_block_cache c;
    rt_device_block_source(K, &src);
    rt_block_cache_init(&c, src);
    float junk[256], back[256];
    fill(junk, 256, 1, 2, 9);
    float *a = rt_block_alloc(&c, sizeof junk);
    check("device cache: alloc", a != NULL);
    if (!a) return;
    dev_put(a, junk, sizeof junk);
    rt_block_free(&c, a, sizeof junk);
    float *b = rt_block_alloc(&c, 700); /* 1024 bytes as well: the same block */
    check("device cache: reuse", b == a && c.reuses == 1 && c.raw_allocs == 1);
    dev_get(back, b, sizeof back);
    int zero = 1;
    for (int i = 0; i < 256; i++) zero &= back[i] == 0;
    check("device cache: zeroed on reuse", zero);
    size_t free0, free1, free2, total;
    const size_t big = (size_t)256 << 20;
    if (K->mem_info(&free0, &total, why, sizeof why)) printf("FAIL: %s\n", why), exit(1);
    void *d = rt_block_alloc(&c, (int64_t)big);
    K->mem_info(&free1, &total, why, sizeof why);
    rt_block_free(&c, d, (int64_t)big);
    rt_block_free(&c, b, 700);
    check("device cache: reserved 256 MiB + 1 KiB", c.cached == (int64_t)big + 1024);
    rt_block_cache_release(&c);
    K->mem_info(&free2, &total, why, sizeof why);
    printf("cudaMemGetInfo free: %.1f -> %.1f -> %.1f MiB of %.1f\n", free0 / 1048576.0,
           free1 / 1048576.0, free2 / 1048576.0, total / 1048576.0);
    check("device cache: cudaMalloc seen", d && free0 >= free1 + big);
    check("device cache: trim gives it back", free2 >= free1 + big);
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
    test_embed(4 * 256, 384, 256); /* tiny-10m's micro-batch: 4 x 256 tokens, 384 channels */
    test_embed(3, 5000, 7);         /* channels past one block */
    test_rmsnorm(4 * 256, 384);
    test_rmsnorm(5, 4099);          /* a row longer than the block, not a multiple of it */
    test_rope(2, 64, 6, 64);
    test_rope(1, 5, 3, 6);          /* a head dim whose half is odd */
    test_xent(4 * 256, 256);        /* tiny-10m's logits: 1,024 tokens x 256 bytes */
    test_xent(3, 50000);            /* a row longer than the block: a strided max and sum */
    test_attention(2, 64, 6, 2, 64);  /* GQA, 3 query heads a group */
    test_attention(1, 37, 4, 4, 24);  /* odd length, a head dim below a warp's multiple */
    test_attention_block(2, 64, 6, 2, 64);
    test_matmul(4 * 256, 384, 1152); /* tiny-10m's qkv projection */
    test_matmul(7, 33, 5);
    test_quantize(37, 64);          /* every granularity (64 divides by the block of 32) */
    test_quantize(9, 33);           /* C odd: 4-bit bytes straddle rows; no blocks */
    test_matmul_int8(7, 300, 19);
    test_moe_permute(64, 2, 8, 96, 12); /* 128 choices over 8 experts of 12 rows: drops */
    test_device_cache();
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
