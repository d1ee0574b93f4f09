/* rt_gen_eval.c — the engine's eval mode (rt_gen.h): perplexity and the KL
 * divergence to the unquantized model over consecutive windows of a text,
 * the measures of the quantization experiment (docs/quantization.md).
 *
 * Per predicted token (row i of a window, target the token after it), with
 * the logits z of this model and r of the reference, over the vocabulary
 * split across tp ranks (Megatron's vocab-parallel cross-entropy: only the
 * row maxima and sums cross ranks, never the logits):
 *   lse(z) = max z + log sum_j exp(z_j - max z),  nll = lse(z) - z_target,
 *   KL(p_r || p_z) = sum_j p_r,j ((r_j - lse(r)) - (z_j - lse(z))).
 * Perplexity is exp(sum nll / tokens).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_gen.h"

static int reduce(rt_gen *g, float *x, int64_t n, bool max, ps_err *err) {
    if (!g->tp) return 0;
    if (max ? g->be->all_reduce_max(g->tp, x, n) : g->be->all_reduce(g->tp, x, n, RT_F32))
        return ps_err_set(err, "tp all-reduce in eval failed: %s", g->be->coll_error());
    return 0;
}

/* lse[rows] of logits[rows][Vr] over the real vocabulary (all ranks). */
static int row_lse(rt_gen *g, const float *z, int64_t rows, float *lse, float *tmp, ps_err *err) {
    for (int64_t i = 0; i < rows; i++) {
        float m = -INFINITY;
        for (int64_t j = 0; j < g->vvalid; j++)
            m = fmaxf(m, z[i * g->Vr + j]);
        lse[i] = m;
    }
    if (reduce(g, lse, rows, true, err)) return -1;
    for (int64_t i = 0; i < rows; i++) {
        double s = 0;
        for (int64_t j = 0; j < g->vvalid; j++)
            s += exp((double)z[i * g->Vr + j] - lse[i]);
        tmp[i] = (float)s;
    }
    if (reduce(g, tmp, rows, false, err)) return -1;
    for (int64_t i = 0; i < rows; i++)
        lse[i] += logf(tmp[i]);
    return 0;
}

/* Forward rows [p, p + n) of the window through g's cache; logits of every row. */
static int chunk_logits(rt_gen *g, rt_kv_seq *seq, const int32_t *tok, int64_t p, int64_t n,
                        const int64_t *rows, float **logits, ps_err *err) {
    if (rt_kv_seq_reserve(&g->kv, seq, n))
        return ps_err_set(err, "out of memory for the KV cache in eval");
    const rt_gen_seg seg = {.seq = seq, .row = 0, .p0 = p, .n = n};
    if (rt_gen_fwd(g, tok + p, n, &seg, 1, rows, n, logits, err)) return -1;
    if (rt_kv_seq_commit(&g->kv, seq, tok + p, n)) return ps_err_set(err, "out of host memory");
    return 0;
}

int rt_gen_eval(rt_gen *g, rt_gen *ref, const int32_t *text, int64_t n, int64_t window,
                double *nll, double *kl, int64_t *count, ps_err *err) {
    const int64_t chunk = g->cfg.prefill_chunk;
    *nll = 0, *kl = 0, *count = 0;
    int64_t *rows = malloc((size_t)chunk * sizeof *rows);
    float *buf = malloc((size_t)(5 * chunk) * sizeof *buf);
    if (!rows || !buf) {
        free(rows), free(buf);
        return ps_err_set(err, "out of host memory");
    }
    float *lse = buf, *lse_r = buf + chunk, *tgt = buf + 2 * chunk, *klr = buf + 3 * chunk,
          *tmp = buf + 4 * chunk;
    for (int64_t i = 0; i < chunk; i++)
        rows[i] = i;
    g->kv.prefix_cache = false;
    if (ref) ref->kv.prefix_cache = false;
    int rc = 0;
    for (int64_t w0 = 0; !rc && w0 + 1 < n; w0 += window) {
        const int64_t len = n - w0 < window ? n - w0 : window;
        const int32_t *tok = text + w0;
        rt_kv_seq seq, seq_r;
        rt_kv_seq_begin(&g->kv, &seq, tok, 0);
        if (ref) rt_kv_seq_begin(&ref->kv, &seq_r, tok, 0);
        for (int64_t p = 0; !rc && p < len - 1; p += chunk) {
            const int64_t m = len - p < chunk ? len - p : chunk;
            const int64_t pred = p + m < len ? m : m - 1; /* rows with a next token */
            float *z = NULL, *r = NULL;
            rc = chunk_logits(g, &seq, tok, p, m, rows, &z, err);
            if (!rc && ref) rc = chunk_logits(ref, &seq_r, tok, p, m, rows, &r, err);
            if (!rc) rc = row_lse(g, z, pred, lse, tmp, err);
            if (!rc && ref) rc = row_lse(g, r, pred, lse_r, tmp, err);
            for (int64_t i = 0; !rc && i < pred; i++) {
                const int64_t t = (int64_t)tok[p + i + 1] - g->vfirst;
                tgt[i] = t >= 0 && t < g->vvalid ? z[i * g->Vr + t] : 0.0f;
                double s = 0;
                for (int64_t j = 0; ref && j < g->vvalid; j++) {
                    const double lr = (double)r[i * g->Vr + j] - lse_r[i];
                    s += exp(lr) * (lr - ((double)z[i * g->Vr + j] - lse[i]));
                }
                klr[i] = (float)s;
            }
            if (!rc) rc = reduce(g, tgt, pred, false, err);
            if (!rc && ref) rc = reduce(g, klr, pred, false, err);
            for (int64_t i = 0; !rc && i < pred; i++) {
                *nll += (double)lse[i] - tgt[i];
                if (ref) *kl += klr[i] > 0 ? klr[i] : 0.0; /* KL >= 0; rounding can dip below */
            }
            if (!rc) *count += pred;
            rt_mem_free(g->mem, z);
            if (ref) rt_mem_free(ref->mem, r);
        }
        rt_kv_seq_end(&g->kv, &seq);
        if (ref) rt_kv_seq_end(&ref->kv, &seq_r);
    }
    free(rows), free(buf);
    return rc;
}
