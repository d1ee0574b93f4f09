/* test_model.c — the runtime's decoder against an independent reference:
 * tools/golden_ref.py (PyTorch) wrote logits, loss, gradients and three
 * AdamW steps of a tiny model to tests/data/golden-tiny.bin; this test runs
 * the same weights and batch through rt_model on the CPU backend (fp32, then
 * bf16-mixed with looser tolerances) and checks that every saved tensor is
 * the one act.h counts, byte for byte. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "golden_file.h"
#include "rt_backend.h"
#include "rt_model.h"

#define GOLDEN "tests/data/golden-tiny.bin"

typedef struct {
    golden g;
    program p;
    rt_mem mem;
    rt_model m;
    int64_t n;      /* parameters */
    int64_t off[4]; /* unit offsets: embed, layer.0, layer.1, head */
} fixture;

static void setup_fixture(fixture *f, ps_dtype act, ps_dtype par, ps_dtype grad) {
    char err[512];
    memset(f, 0, sizeof *f);
    if (golden_load(GOLDEN, &f->g, err, sizeof err)) fail_msg("%s", err);
    program *p = &f->p;
    p->layers = golden_config(&f->g, "L");
    p->hidden = golden_config(&f->g, "h");
    p->heads = golden_config(&f->g, "H");
    p->kv_heads = golden_config(&f->g, "KVH");
    p->head_dim = golden_config(&f->g, "D");
    p->ffn_hidden = golden_config(&f->g, "f");
    p->vocab = golden_config(&f->g, "V");
    p->micro_batch = p->global_batch = golden_config(&f->g, "B");
    p->seq = golden_config(&f->g, "T");
    p->micro_batches = 1;
    p->world = p->dp = p->tp = p->pp = p->cp = 1; /* one rank: the whole model */
    p->norm_eps = 1e-5;
    p->rope_theta = 10000.0;
    p->precision = (plan_precision){par, grad, DT_FP32, DT_FP32, act};
    assert_int_equal(p->layers, 2);
    f->off[0] = 0;
    for (int u = 1; u < 4; u++) f->off[u] = f->off[u - 1] + rt_model_unit_elems(p, u - 1);
    f->n = f->off[3] + rt_model_unit_elems(p, 3);
    ps_err e = {{0}};
    assert_int_equal(rt_mem_init(&f->mem, rt_backend_cpu.mem_alloc, rt_backend_cpu.mem_free), 0);
    if (rt_model_init(&f->m, p, &rt_backend_cpu, &f->mem, &e)) fail_msg("%s", e.msg);
}

static void close_fixture(fixture *f) {
    rt_model_free(&f->m);
    rt_mem_release(&f->mem);
    rt_backend_cpu.mem_trim();
    golden_free(&f->g);
}

/* The golden batch into the model's micro-batch 0. */
static void stage_golden_batch(fixture *f) {
    const int64_t N = f->p.micro_batch * f->p.seq;
    memcpy(f->m.tokens, golden_get(&f->g, "tokens")->u.i32, (size_t)N * 4);
    memcpy(f->m.targets, golden_get(&f->g, "targets")->u.i32, (size_t)N * 4);
}

static const float *gt(fixture *f, const char *name, int64_t count) {
    const golden_tensor *t = golden_get(&f->g, name);
    if (!t) fail_msg("golden file has no tensor %s", name);
    assert_int_equal(t->count, count);
    return t->u.f32;
}

/* max |a - b| <= rtol * max |b| + atol */
static void assert_close(const char *what, const float *a, const float *b, int64_t n, double rtol,
                         double atol) {
    double maxb = 0, maxd = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        maxb = fmax(maxb, fabs(b[i]));
        double d = fabs((double)a[i] - b[i]);
        if (d > maxd) maxd = d, at = i;
    }
    if (maxd > rtol * maxb + atol)
        fail_msg("%s: element %lld differs by %.3g (%.7g vs reference %.7g; max |ref| %.3g)", what,
                 (long long)at, maxd, a[at], b[at], maxb);
}

/* Parameters after AdamW steps. Adam normalises each gradient (g/(|g| + eps)),
 * so an element whose gradient is within the gradients' own tolerance of zero
 * (below 1e-3 of the largest: the gradient check allows 1e-4 of it) may step
 * either way: those are held to the step's bound (lr per step), the others
 * to fp32 rounding. */
static void assert_params_close(const char *what, const float *a, const float *b,
                                const float *g0, int64_t n, int steps) {
    int64_t strict = 0;
    double gmax = 0;
    for (int64_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g0[i]));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        int sensitive = g0[i] != 0 && fabs(g0[i]) < 1e-3 * gmax; /* 0 stays 0: decay only */
        double tol = sensitive ? 1e-3 * steps : 2e-6 * steps;
        strict += !sensitive;
        if (d > tol)
            fail_msg("%s: element %lld: %.8g vs reference %.8g (gradient %.3g)", what,
                     (long long)i, a[i], b[i], g0[i]);
    }
    if (strict < n * 3 / 4) fail_msg("%s: only %lld of %lld elements held strictly", what, (long long)strict, (long long)n);
}

/* One training step's forward and backward on the golden batch; params
 * and grads are whole flat buffers in the model's dtypes. Returns the loss. */
static double fwd_bwd(fixture *f, rt_model *m, rt_mem *mem, const void *params, void *grads,
                      int64_t *act_after_fwd) {
    const program *p = &f->p;
    const int64_t N = p->micro_batch * p->seq, pb = rt_dtype_bytes(m->param_dt),
                  gb = rt_dtype_bytes(m->grad_dt);
    stage_golden_batch(f);
    ps_err err = {{0}};
    m->loss_sum = 0;
    for (int u = 0; u < 4; u++)
        if (rt_model_fwd(m, u, 0, (const char *)params + f->off[u] * pb, m->param_dt, true, &err))
            fail_msg("fwd %d: %s", u, err.msg);
    if (act_after_fwd) *act_after_fwd = mem->current[MEM_ACTIVATIONS];
    for (int u = 3; u >= 0; u--)
        if (rt_model_bwd(m, u, 0, (const char *)params + f->off[u] * pb, m->param_dt,
                         (char *)grads + f->off[u] * gb, m->grad_dt, false, &err))
            fail_msg("bwd %d: %s", u, err.msg);
    assert_int_equal(mem->current[MEM_ACTIVATIONS], 0); /* backward freed what forward saved */
    return m->loss_sum / (double)N;
}

static void test_fp32_matches_pytorch(void **state) {
    (void)state;
    fixture f;
    setup_fixture(&f, DT_FP32, DT_FP32, DT_FP32);
    const program *p = &f.p;
    rt_mem *mem = &f.mem;
    rt_model *m = &f.m;
    const int64_t n = f.n, N = p->micro_batch * p->seq;
    float *params = malloc((size_t)n * 4), *grads = calloc((size_t)n, 4);
    float *mv = calloc((size_t)(2 * n), 4);
    memcpy(params, gt(&f, "params", n), (size_t)n * 4);

    int64_t act = 0;
    double loss = fwd_bwd(&f, m, mem, params, grads, &act);
    const float *gl = gt(&f, "loss", 1);
    assert_true(fabs(loss - gl[0]) <= 1e-5 * fabs(gl[0]));
    assert_close("gradients", grads, gt(&f, "grads", n), n, 1e-4, 1e-7);

    /* saved activations, by hand from the tensor list of docs/memory.md §3:
     * per layer and token 4h + 2 q + 2 kv + 3 f activations (fp32 here) plus
     * 1/rms twice and one log-sum-exp per head (fp32); the embedding keeps the
     * int64 token ids, the head its input, 1/rms, normalised input, the fp32
     * softmax over V and the int64 labels. */
    const int64_t h = 64, q = 4 * 16, kv = 2 * 16, ff = 128, V = 64, H = 4;
    const int64_t layer = N * ((4 * h + 2 * q + 2 * kv + 3 * ff) * 4 + (2 + H) * 4);
    const int64_t first = N * 8, last = N * (h * 4 + 4 + h * 4 + V * 4 + 8);
    assert_int_equal(act, 2 * layer + first + last);

    /* three AdamW steps on the same batch, as the reference did */
    const float *losses = gt(&f, "losses", 4), *g0 = gt(&f, "grads", n);
    assert_true(fabs(loss - losses[0]) <= 1e-5 * fabs(losses[0]));
    for (int step = 1; step <= 3; step++) {
        rt_backend_cpu.adamw(params, mv, mv + n, grads, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
        if (step == 1) assert_params_close("params after step 1", params, gt(&f, "params.step1", n), g0, n, 1);
        if (step == 3) assert_params_close("params after step 3", params, gt(&f, "params.step3", n), g0, n, 3);
        memset(grads, 0, (size_t)n * 4);
        loss = fwd_bwd(&f, m, mem, params, grads, NULL);
        if (fabs(loss - losses[step]) > 1e-5 * fabs(losses[step]))
            fail_msg("loss after step %d: %.7f vs reference %.7f", step, loss, losses[step]);
    }
    free(params), free(grads), free(mv);
    close_fixture(&f);
}

/* The softmax the loss saved equals softmax(reference logits). */
static void test_fp32_logits(void **state) {
    (void)state;
    fixture f;
    setup_fixture(&f, DT_FP32, DT_FP32, DT_FP32);
    const program *p = &f.p;
    rt_model *m = &f.m;
    ps_err err = {{0}};
    const int64_t n = f.n, N = p->micro_batch * p->seq, V = p->vocab;
    const float *params = gt(&f, "params", n);
    stage_golden_batch(&f);
    for (int u = 0; u < 4; u++)
        assert_int_equal(rt_model_fwd(m, u, 0, params + f.off[u], RT_F32, true, &err), 0);
    const float *probs = m->saved[3].t[3]; /* head: final_norm.input, stats, head.input, softmax */
    const float *logits = gt(&f, "logits", N * V);
    float *ref = malloc((size_t)(N * V) * 4);
    for (int64_t t = 0; t < N; t++) {
        double mx = -INFINITY, s = 0;
        for (int64_t j = 0; j < V; j++) mx = fmax(mx, logits[t * V + j]);
        for (int64_t j = 0; j < V; j++) s += exp(logits[t * V + j] - mx);
        for (int64_t j = 0; j < V; j++) ref[t * V + j] = (float)(exp(logits[t * V + j] - mx) / s);
    }
    assert_close("softmax of the logits", probs, ref, N * V, 1e-5, 1e-7);
    free(ref);
    close_fixture(&f);
}

/* bf16-mixed: bf16 weights, gradients and activations, fp32 compute. The
 * tolerances are those of bf16's 8-bit significand (relative step 2^-8). */
static void test_bf16_close_to_pytorch(void **state) {
    (void)state;
    fixture f;
    setup_fixture(&f, DT_BF16, DT_BF16, DT_BF16);
    const program *p = &f.p;
    rt_mem *mem = &f.mem;
    rt_model *m = &f.m;
    const int64_t n = f.n, N = p->micro_batch * p->seq;
    uint16_t *params = malloc((size_t)n * 2), *grads = calloc((size_t)n, 2);
    float *g32 = malloc((size_t)n * 4);
    rt_backend_cpu.to_bf16(params, gt(&f, "params", n), n);
    int64_t act = 0;
    double loss = fwd_bwd(&f, m, mem, params, grads, &act);
    const float *gl = gt(&f, "loss", 1);
    if (fabs(loss - gl[0]) > 1e-2 * fabs(gl[0])) fail_msg("bf16 loss %.5f vs %.5f", loss, gl[0]);
    rt_backend_cpu.from_bf16(g32, grads, n);
    const float *ref = gt(&f, "grads", n);
    double dot = 0, na = 0, nb = 0, diff = 0;
    for (int64_t i = 0; i < n; i++) {
        dot += (double)g32[i] * ref[i], na += (double)g32[i] * g32[i], nb += (double)ref[i] * ref[i];
        diff += ((double)g32[i] - ref[i]) * ((double)g32[i] - ref[i]);
    }
    double cosine = dot / sqrt(na * nb), rel = sqrt(diff / nb);
    if (cosine < 0.999 || rel > 0.05)
        fail_msg("bf16 gradients: cosine %.5f (want >= 0.999), relative L2 error %.4f (want <= 0.05)",
                 cosine, rel);
    /* bf16 activations halve the saved bytes, except the fp32 statistics,
     * softmax and int64 ids */
    const int64_t h = 64, q = 64, kv = 32, ff = 128, V = 64, H = 4;
    const int64_t layer = N * ((4 * h + 2 * q + 2 * kv + 3 * ff) * 2 + (2 + H) * 4);
    assert_int_equal(act, 2 * layer + N * 8 + N * (h * 2 + 4 + h * 2 + V * 4 + 8));
    free(params), free(grads), free(g32);
    close_fixture(&f);
}

/* Full recomputation: the forward keeps only each layer's input, the
 * backward rebuilds the rest, and the gradients are the same. */
static void test_full_recompute_same_gradients(void **state) {
    (void)state;
    fixture f;
    setup_fixture(&f, DT_FP32, DT_FP32, DT_FP32);
    const program *p = &f.p;
    rt_mem *mem = &f.mem;
    rt_model *m = &f.m;
    ps_err err = {{0}};
    const int64_t n = f.n, N = p->micro_batch * p->seq;
    const float *params = gt(&f, "params", n);
    float *grads = calloc((size_t)n, 4);
    stage_golden_batch(&f);
    for (int u = 0; u < 4; u++)
        assert_int_equal(rt_model_fwd(m, u, 0, params + f.off[u], RT_F32, u == 0 || u == 3, &err), 0);
    const int64_t h = 64, V = 64;
    /* two layer inputs, the token ids, the head's tensors */
    assert_int_equal(mem->current[MEM_ACTIVATIONS], 2 * N * h * 4 + N * 8 + N * (h * 4 + 4 + h * 4 + V * 4 + 8));
    for (int u = 3; u >= 0; u--) {
        rt_mem_op_begin(mem);
        assert_int_equal(rt_model_bwd(m, u, 0, params + f.off[u], RT_F32, grads + f.off[u], RT_F32,
                                      u == 1 || u == 2, &err), 0);
    }
    assert_close("gradients with full recompute", grads, gt(&f, "grads", n), n, 1e-4, 1e-7);
    free(grads);
    close_fixture(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp32_matches_pytorch),
        cmocka_unit_test(test_fp32_logits),
        cmocka_unit_test(test_bf16_close_to_pytorch),
        cmocka_unit_test(test_full_recompute_same_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
