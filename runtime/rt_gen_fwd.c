/* rt_gen_fwd.c — one forward of the inference engine over n tokens (rt_gen.h).
 *
 * The tensors of docs/runtime.md ("Inference"), fp32, MEM_ACTIVATIONS, live
 * together for the whole forward: x [n][h] the residual stream, xn [n][h] a
 * norm's output, q [n][qw], k, v [n][kvw], att [n][qw], a, b [n][f], o [n][h]
 * (a row-parallel output before its all-reduce); with an int8-GEMM scheme the
 * quantized input (n * C_max int8 and a scale and a zero per row), with a
 * scheme that multiplies from fp32 weights one dequantization buffer of the
 * largest such matrix (the bf16 lm_head included). Kernel scratch (norm
 * statistics, int32 accumulators, attention's accumulators) is MEM_WORKSPACE,
 * taken and given back around each kernel. Per layer (Llama; Megatron's tp):
 *   xn = rmsnorm(x) ; q, k, v = xn Wq^T, xn Wk^T, xn Wv^T ; RoPE(q, k) at the
 *   rows' positions ; K, V into the cache ; att = paged attention ;
 *   o = att Wo^T, all-reduced over tp ; x += o ;
 *   xn = rmsnorm(x) ; a, b = xn W1^T, xn W3^T ; a = silu(a) b ;
 *   o = a W2^T, all-reduced ; x += o
 * then the final norm and lm_head (vocab-parallel columns) on the sampled rows.
 */
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "rt_gen.h"

typedef struct {
    rt_gen *g;
    int8_t *xq;   /* int8 GEMM schemes: the quantized input */
    float *xsz;   /* its scales [n] and zeros [n] */
    float *deq;   /* the fp32 dequantization buffer */
    int failed;
} fwd_ctx;

static void *ws(fwd_ctx *c, int64_t bytes) {
    void *p = rt_mem_alloc(c->g->mem, MEM_WORKSPACE, bytes > 0 ? bytes : 1);
    if (!p) c->failed = 1;
    return p;
}

/* out[n][R] = x[n][C] . W^T in the engine's scheme. */
static void lin_fwd(fwd_ctx *c, const rt_gen_lin *l, float *out, const float *x, int64_t n) {
    rt_gen *g = c->g;
    const rt_wscheme s = g->cfg.weights;
    if (c->failed) return;
    if (s == RT_W_F32) {
        g->be->matmul_fwd(out, x, l->w, n, l->C, l->R);
    } else if (s == RT_W_BF16) {
        g->be->from_bf16(c->deq, l->w, l->R * l->C);
        g->be->matmul_fwd(out, x, c->deq, n, l->C, l->R);
    } else if (s == RT_W_I8_BLOCK || s == RT_W_I4_BLOCK) {
        kern_dequantize(c->deq, l->w, l->scale, NULL, l->R, l->C, &l->qs);
        g->be->matmul_fwd(out, x, c->deq, n, l->C, l->R);
    } else if (s == RT_W_I8_DECOMP) {
        /* outlier columns against the dequantized int8 W (bitsandbytes without fp16 weights) */
        kern_dequantize(c->deq, l->w, l->scale, NULL, l->R, l->C, &l->qs);
        void *scratch = ws(c, kern_int8_decomp_scratch_bytes(n, l->C, l->R));
        if (scratch)
            kern_matmul_int8_decomp_fwd(out, x, c->deq, l->w, l->scale, n, l->C, l->R,
                                        RT_GEN_DECOMP_THRESHOLD, scratch);
        rt_mem_free(g->mem, scratch);
    } else { /* int8 x int8 GEMM: quantize the input per tensor or per token */
        const quant_spec xs = {.kind = s == RT_W_I8_ZEROPOINT ? QK_ZEROPOINT : QK_ABSMAX,
                               .gran = s == RT_W_I8_VECTOR ? QG_ROW : QG_TENSOR, .bits = 8};
        float *zero = xs.kind == QK_ZEROPOINT ? c->xsz + n : NULL;
        kern_quantize(c->xq, c->xsz, zero, x, n, l->C, &xs);
        int32_t *acc = ws(c, n * l->R * (int64_t)sizeof(int32_t));
        if (acc)
            kern_matmul_int8_fwd(out, c->xq, c->xsz, zero, xs.gran, l->w, l->scale, l->zero,
                                 l->qs.gran, n, l->C, l->R, acc);
        rt_mem_free(g->mem, acc);
    }
}

/* The fp32 view of a stored [h] norm weight (bf16: converted into buf). */
static const float *norm_w(rt_gen *g, const void *w, float *buf) {
    if (g->sdt == RT_F32) return w;
    g->be->from_bf16(buf, w, g->h);
    return buf;
}

static void rmsnorm(fwd_ctx *c, float *out, const float *x, const void *w, int64_t n) {
    rt_gen *g = c->g;
    float *buf = ws(c, (g->h + n) * (int64_t)sizeof(float));
    if (!buf) return;
    g->be->rmsnorm_fwd(out, buf + g->h, x, norm_w(g, w, buf), n, g->h, (float)g->m.norm_eps);
    rt_mem_free(g->mem, buf);
}

static int all_reduce(rt_gen *g, float *x, int64_t n, ps_err *err) {
    if (!g->tp || g->tp_size == 1) return 0;
    if (g->be->all_reduce(g->tp, x, n, RT_F32))
        return ps_err_set(err, "tp all-reduce of %lld values failed: %s", (long long)n,
                          g->be->coll_error());
    return 0;
}

/* Vocab-parallel embedding: this rank's rows, zero for the others, then the sum. */
static int embed(rt_gen *g, float *x, const int32_t *tokens, int64_t n, ps_err *err) {
    const int64_t h = g->h, eb = rt_dtype_bytes(g->sdt);
    for (int64_t r = 0; r < n; r++) {
        const int64_t t = (int64_t)tokens[r] - g->vfirst;
        if (t < 0 || t >= g->vvalid) memset(x + r * h, 0, (size_t)h * sizeof *x);
        else if (g->sdt == RT_F32) memcpy(x + r * h, (const float *)g->wte + t * h, (size_t)h * 4);
        else g->be->from_bf16(x + r * h, (const uint16_t *)((const char *)g->wte + t * h * eb), h);
    }
    return all_reduce(g, x, n * h, err);
}

static void attention(fwd_ctx *c, int64_t l, float *att, const float *q, const float *k,
                      const float *v, const rt_gen_seg *segs, int64_t n_segs) {
    rt_gen *g = c->g;
    const int64_t qw = g->H * g->D, kvw = g->KVH * g->D;
    for (int64_t s = 0; s < n_segs && !c->failed; s++) {
        const rt_gen_seg *sg = &segs[s];
        const int64_t r = sg->row;
        if (sg->seq) {
            kern_kv_view view;
            kern_kv_view_layer(&view, g->kv.dt, g->L, l, g->kv.block_size, g->KVH, g->D,
                               sg->seq->ptrs);
            kern_kv_write(&view, sg->p0, sg->n, k + r * kvw, v + r * kvw);
            float *scratch = ws(c, kern_attn_paged_scratch_floats(g->D) * 4);
            if (scratch) kern_attn_paged_fwd(att + r * qw, q + r * qw, &view, sg->p0, sg->n, g->H, scratch);
            rt_mem_free(g->mem, scratch);
        } else { /* no cache: the whole sequence, contiguous */
            float *scratch = ws(c, (g->be->attn_scratch_floats(sg->n) + sg->n * g->H) * 4);
            if (scratch)
                g->be->attn_fwd(att + r * qw, scratch, q + r * qw, k + r * kvw, v + r * kvw, 1,
                                sg->n, g->H, g->KVH, g->D, scratch + sg->n * g->H);
            rt_mem_free(g->mem, scratch);
        }
    }
}

int rt_gen_fwd(rt_gen *g, const int32_t *tokens, int64_t n, const rt_gen_seg *segs,
               int64_t n_segs, const int64_t *out_rows, int64_t n_out, float **logits,
               ps_err *err) {
    const int64_t h = g->h, qw = g->H * g->D, kvw = g->KVH * g->D, f = g->f;
    rt_mem *mem = g->mem;
    enum { X, XN, O, Q, ATT, K, V, A, B, NT };
    const int64_t w[NT] = {h, h, h, qw, qw, kvw, kvw, f, f};
    float *t[NT] = {0};
    fwd_ctx c = {.g = g};
    int rc = 0;
    *logits = NULL;
    int64_t *pos = malloc((size_t)n * sizeof *pos);
    for (int i = 0; i < NT; i++)
        if (!(t[i] = rt_mem_alloc(mem, g->cat_act, n * w[i] * 4))) c.failed = 1;
    if (rt_wscheme_int8_gemm(g->cfg.weights)) {
        if (!(c.xq = rt_mem_alloc(mem, g->cat_act, n * g->cmax))) c.failed = 1;
        if (!(c.xsz = rt_mem_alloc(mem, g->cat_act, 8 * n))) c.failed = 1;
    }
    if (g->deq_elems && !(c.deq = rt_mem_alloc(mem, g->cat_act, g->deq_elems * 4))) c.failed = 1;
    if (!pos) c.failed = 1;
    if (c.failed) goto oom;
    if (n > g->st.max_forward_tokens) g->st.max_forward_tokens = n;
    if (n_out > g->st.max_sampled_rows) g->st.max_sampled_rows = n_out;
    for (int64_t s = 0; s < n_segs; s++)
        for (int64_t i = 0; i < segs[s].n; i++)
            pos[segs[s].row + i] = segs[s].p0 + i;
    if ((rc = embed(g, t[X], tokens, n, err))) goto out;
    for (int64_t l = 0; l < g->L; l++) {
        const rt_gen_layer *L = &g->layers[l];
        rmsnorm(&c, t[XN], t[X], L->attn_norm, n);
        lin_fwd(&c, &L->lin[RT_LIN_Q], t[Q], t[XN], n);
        lin_fwd(&c, &L->lin[RT_LIN_K], t[K], t[XN], n);
        lin_fwd(&c, &L->lin[RT_LIN_V], t[V], t[XN], n);
        g->be->rope_fwd(t[Q], pos, 1, n, g->H, g->D, (float)g->m.rope_theta);
        g->be->rope_fwd(t[K], pos, 1, n, g->KVH, g->D, (float)g->m.rope_theta);
        attention(&c, l, t[ATT], t[Q], t[K], t[V], segs, n_segs);
        lin_fwd(&c, &L->lin[RT_LIN_O], t[O], t[ATT], n);
        if (c.failed) goto oom;
        if ((rc = all_reduce(g, t[O], n * h, err))) goto out;
        g->be->add(t[X], t[X], t[O], n * h);
        rmsnorm(&c, t[XN], t[X], L->mlp_norm, n);
        lin_fwd(&c, &L->lin[RT_LIN_W1], t[A], t[XN], n);
        lin_fwd(&c, &L->lin[RT_LIN_W3], t[B], t[XN], n);
        g->be->swiglu_fwd(t[A], t[A], t[B], n * f);
        lin_fwd(&c, &L->lin[RT_LIN_W2], t[O], t[A], n);
        if (c.failed) goto oom;
        if ((rc = all_reduce(g, t[O], n * h, err))) goto out;
        g->be->add(t[X], t[X], t[O], n * h);
    }
    /* the sampled rows, gathered in order into x's first rows, then normed */
    for (int64_t i = 0; i < n_out; i++)
        if (out_rows[i] != i) memcpy(t[X] + i * h, t[X] + out_rows[i] * h, (size_t)h * 4);
    rmsnorm(&c, t[XN], t[X], g->final_norm, n_out);
    if (c.failed || !(*logits = rt_mem_alloc(mem, g->cat_logits, n_out * g->Vr * 4))) goto oom;
    if (g->sdt == RT_F32) {
        g->be->matmul_fwd(*logits, t[XN], g->lm_head, n_out, h, g->Vr);
    } else {
        g->be->from_bf16(c.deq, g->lm_head, g->Vr * h);
        g->be->matmul_fwd(*logits, t[XN], c.deq, n_out, h, g->Vr);
    }
    goto out;
oom:
    rc = ps_err_set(err, "out of memory in a forward of %lld tokens (%s weights)", (long long)n,
                    rt_wscheme_names[g->cfg.weights]);
out:
    if (rc && *logits) rt_mem_free(mem, *logits), *logits = NULL;
    for (int i = 0; i < NT; i++)
        rt_mem_free(mem, t[i]);
    rt_mem_free(mem, c.xq);
    rt_mem_free(mem, c.xsz);
    rt_mem_free(mem, c.deq);
    free(pos);
    return rc;
}
