/* rt_model.c — forward and backward of the decoder's units (see rt_model.h;
 * the math and its sources: docs/runtime.md). */
#include "rt_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_gen.h"
#include "rt_hash.h"
#include "rt_ring.h"

/* Saved-tensor slots, in act.h's order (act_layer_tensors for a flash,
 * RMSNorm, SwiGLU block; act_first/last_stage_tensors). */
enum {
    L_X_IN, L_RSTD1, L_XN1, L_Q, L_K, L_V, L_O, L_LSE, L_X_MID, L_RSTD2, L_XN2, L_A, L_B, L_G,
    L_COUNT
};
/* a MoE layer's further slots: router probabilities, gates, chosen experts, their
 * slots, counts per expert; the experts' inputs, w1/w3/SwiGLU outputs, and outputs */
enum { M_PROBS = L_COUNT, M_GATE, M_IDX, M_SLOT, M_COUNT, M_XE, M_A, M_B, M_G, M_YE, M_END };
enum { E_IDS };
enum { H_X, H_RSTD, H_XN, H_PROBS, H_LABELS, H_QS, H_QT, H_IDX, H_COUNT };

/* ---- layout ------------------------------------------------------------------ */

/* One layer's tensors as a tp rank of tp holds them (rt_tp.h: q/k/v and w1/w3
 * split by rows, wo and w2 by columns, norms whole). */
void rt_model_layer_tensors(const program *p, rt_layer_tensor t[RT_LAYER_TENSORS]) {
    const int64_t h = p->hidden, q = p->heads * p->head_dim, kv = p->kv_heads * p->head_dim;
    const int64_t f = p->ffn_hidden;
    const rt_layer_tensor all[RT_LAYER_TENSORS] = {
        {RT_SPLIT_REPL, 1, h},  {RT_SPLIT_ROWS, q, h}, {RT_SPLIT_ROWS, kv, h},
        {RT_SPLIT_ROWS, kv, h}, {RT_SPLIT_COLS, h, q}, {RT_SPLIT_REPL, 1, h},
        {RT_SPLIT_ROWS, f, h},  {RT_SPLIT_ROWS, f, h}, {RT_SPLIT_COLS, h, f}};
    memcpy(t, all, sizeof all);
}

/* The layer's tensors' shards on one of tp ranks, laid out one after another,
 * then (a MoE layer) the router and `held` routed experts. */
static void layout_tp(const program *p, int64_t tp, int64_t held, rt_layer_layout *o) {
    rt_layer_tensor t[RT_LAYER_TENSORS];
    rt_model_layer_tensors(p, t);
    int64_t *const at[RT_LAYER_TENSORS] = {&o->attn_norm, &o->wq, &o->wk, &o->wv, &o->wo,
                                           &o->mlp_norm,  &o->w1, &o->w3, &o->w2};
    int64_t n = 0;
    for (int i = 0; i < RT_LAYER_TENSORS; i++) {
        int64_t R, C;
        rt_layer_tensor_shard(&t[i], tp, &R, &C);
        *at[i] = n, n += R * C;
    }
    o->router = o->experts = o->expert_elems = o->experts_held = 0;
    if (program_is_moe(p)) {
        o->router = n, n += p->experts * p->hidden;
        o->experts = n, o->expert_elems = program_expert_elems(p), o->experts_held = held;
        n += held * o->expert_elems;
    }
    o->elems = n;
}

void rt_model_full_layout(const program *p, rt_layer_layout *o) { layout_tp(p, 1, p->experts, o); }

void rt_model_layer_layout(const program *p, rt_layer_layout *o) {
    layout_tp(p, p->tp, p->ep > 1 ? p->experts / p->ep : p->experts, o);
}

int64_t rt_model_full_offset(const program *p, int64_t unit) {
    rt_layer_layout l;
    layout_tp(p, 1, p->experts, &l);
    const int64_t embed = p->vocab * p->hidden;
    return unit == 0 ? 0 : embed + (unit - 1) * l.elems; /* the head after the L layers */
}

int32_t rt_model_global_unit(const program *p, const char *name) {
    if (!strcmp(name, "embed")) return 0;
    if (!strcmp(name, "head")) return (int32_t)(p->layers + 1);
    char *end = NULL;
    if (strncmp(name, "layer.", 6) || name[6] < '0' || name[6] > '9') return -1;
    long i = strtol(name + 6, &end, 10);
    if (*end || i < 0 || i >= p->layers) return -1;
    return (int32_t)(i + 1);
}

int64_t rt_model_unit_elems(const program *p, int64_t unit) {
    const int64_t rows = rt_tp_vocab_rows(p); /* the vocab-parallel tables' rows */
    if (unit == 0) return rows * p->hidden;
    if (unit == p->layers + 1) return p->hidden + rows * p->hidden;
    rt_layer_layout l;
    rt_model_layer_layout(p, &l);
    return l.elems;
}

/* ---- deterministic initialisation --------------------------------------------- */

/* The standard deviation of flat element i (0 for a norm weight: it is 1). */
static double init_std(const program *p, const rt_layer_layout *l, int64_t i, int *is_norm) {
    const double std = 0.02, resid = 0.02 / sqrt(2.0 * (double)p->layers);
    const int64_t embed = p->vocab * p->hidden, layers_end = embed + p->layers * l->elems;
    *is_norm = 0;
    if (i < embed) return std;
    if (i < layers_end) {
        int64_t j = (i - embed) % l->elems;
        if (j < l->wq || (j >= l->mlp_norm && j < l->w1)) return *is_norm = 1, 0;
        if (l->expert_elems && j >= l->experts) /* a routed expert: w1, w3, then w2 */
            return (j - l->experts) % l->expert_elems >= 2 * l->expert_elems / 3 ? resid : std;
        if (l->expert_elems && j >= l->router) return std;
        if ((j >= l->wo && j < l->mlp_norm) || j >= l->w2) return resid;
        return std;
    }
    if (i < layers_end + p->hidden) return *is_norm = 1, 0;
    return std;
}

void rt_model_init_values(const program *p, uint64_t seed, int64_t first, int64_t n, float *out) {
    rt_layer_layout l;
    layout_tp(p, 1, p->experts, &l); /* the one-rank model's flat space */
    const int64_t total = 2 * p->vocab * p->hidden + p->layers * l.elems + p->hidden;
    for (int64_t k = 0; k < n; k++) {
        int64_t i = first + k;
        int is_norm;
        if (i >= total) {
            out[k] = 0.0f;
            continue;
        }
        double s = init_std(p, &l, i, &is_norm);
        out[k] = is_norm ? 1.0f : (float)(s * rt_normal_at(seed, i));
    }
}

/* ---- set-up -------------------------------------------------------------------- */

int rt_model_init(rt_model *m, const program *p, const rt_backend *be, rt_mem *mem,
                  ps_err *err) {
    memset(m, 0, sizeof *m);
    m->be = be;
    m->mem = mem;
    m->p = p;
    m->L = p->layers, m->h = p->hidden, m->H = p->heads / p->tp, m->KVH = p->kv_heads / p->tp;
    m->D = p->head_dim, m->f = p->ffn_hidden / p->tp, m->V = p->vocab;
    m->B = p->micro_batch, m->T = p->seq / (p->cp > 1 ? p->cp : 1), m->N = m->B * m->T;
    m->Nl = p->sp ? m->N / p->tp : m->N;
    m->tp = (rt_tp){.be = be, .mem = mem, .size = (int)p->tp, .sp = p->sp};
    m->eps = (float)p->norm_eps, m->theta = (float)p->rope_theta;
    m->act_dt = m->tp.act_dt = rt_dtype_of(p->precision.activations);
    m->param_dt = rt_dtype_of(p->precision.params);
    m->grad_dt = rt_dtype_of(p->precision.grads);
    m->units = p->layers + 2;
    m->micro_batches = p->micro_batches;
    rt_model_layer_layout(p, &m->lay);
    m->embed_elems = rt_model_unit_elems(p, 0);
    m->head_elems = rt_model_unit_elems(p, p->layers + 1);
    m->loss_scale = (float)(1.0 / ((double)p->global_batch * (double)p->seq));
    m->kd = (kern_kd_cfg){.T = (float)p->distill.temperature, .alpha = (float)p->distill.alpha,
                          .top_k = p->distill.top_k};
    if (program_is_moe(p)) {
        m->E = p->experts, m->K = p->top_k, m->fe = p->expert_ffn, m->cap = p->expert_capacity;
        m->El = p->ep > 1 ? p->experts / p->ep : p->experts, m->aux_alpha = (float)p->aux_alpha;
    }
    m->saved = calloc((size_t)(m->units * m->micro_batches), sizeof *m->saved);
    m->hidden = calloc((size_t)m->micro_batches, sizeof *m->hidden);
    m->dhidden = calloc((size_t)m->micro_batches, sizeof *m->dhidden);
    m->tokens = calloc((size_t)(2 * m->micro_batches * m->N), sizeof *m->tokens);
    if (!m->saved || !m->hidden || !m->dhidden || !m->tokens) {
        rt_model_free(m);
        return ps_err_set(err, "out of host memory for the model's bookkeeping");
    }
    m->targets = m->tokens + m->micro_batches * m->N;
    return 0;
}

void rt_model_set_tp(rt_model *m, rt_group *g, rt_coll_stat *stats) {
    int64_t first;
    m->tp.g = g;
    m->tp.rank = g->rank;
    m->tp.stats = stats;
    rt_tp_vocab_range(m->p, g->rank, &first, &m->V);
}

void rt_model_set_ep(rt_model *m, rt_group *g, rt_coll_stat *stats) {
    m->ep = g;
    m->ep_stats = stats;
}

void rt_model_free(rt_model *m) {
    if (m->saved && m->mem)
        for (int64_t i = 0; i < m->units * m->micro_batches; i++) {
            for (int k = 0; k < RT_SAVED_MAX; k++) rt_mem_free(m->mem, m->saved[i].t[k]);
            rt_mem_free(m->mem, m->saved[i].stash);
        }
    if (m->hidden)
        for (int64_t i = 0; i < m->micro_batches; i++) rt_mem_free(m->mem, m->hidden[i]);
    if (m->dhidden)
        for (int64_t i = 0; i < m->micro_batches; i++) rt_mem_free(m->mem, m->dhidden[i]);
    free(m->saved);
    free(m->hidden);
    free(m->dhidden);
    free(m->tokens);
    m->saved = NULL, m->hidden = NULL, m->dhidden = NULL, m->tokens = NULL;
}

/* ---- per-op memory ------------------------------------------------------------- */

typedef struct {
    rt_model *m;
    ps_err *err;
    int failed;
} op_ctx;

static void *tmp_alloc(op_ctx *c, int64_t bytes) {
    rt_model *m = c->m;
    void *p = NULL;
    if (!c->failed && m->n_tmp < (int)(sizeof m->tmp / sizeof m->tmp[0]))
        p = rt_mem_alloc(m->mem, MEM_WORKSPACE, bytes);
    if (!p) {
        if (!c->failed)
            ps_err_set(c->err, "out of memory: %lld bytes of workspace (in use: %lld bytes)",
                       (long long)bytes, (long long)rt_mem_total(m->mem));
        c->failed = 1;
        return NULL;
    }
    m->tmp[m->n_tmp++] = p;
    return p;
}

static void tmp_free(op_ctx *c, void *p) {
    rt_model *m = c->m;
    for (int i = 0; i < m->n_tmp; i++)
        if (m->tmp[i] == p) {
            rt_mem_free(m->mem, p);
            m->tmp[i] = m->tmp[--m->n_tmp];
            return;
        }
}

static int op_end(op_ctx *c) {
    rt_model *m = c->m;
    for (int i = 0; i < m->n_tmp; i++) rt_mem_free(m->mem, m->tmp[i]);
    m->n_tmp = 0;
    return c->failed ? -1 : 0;
}

static float *zeros(op_ctx *c, int64_t n) { return tmp_alloc(c, n * 4); } /* zero-filled */

/* A tracked block that outlives the op (saved tensor or stream). */
static void *keep_alloc(op_ctx *c, mem_cat cat, int64_t bytes) {
    if (c->failed) return NULL;
    void *p = rt_mem_alloc(c->m->mem, cat, bytes);
    if (!p) {
        ps_err_set(c->err, "out of memory: %lld bytes of %s (in use: %lld bytes)",
                   (long long)bytes, mem_cat_names[cat], (long long)rt_mem_total(c->m->mem));
        c->failed = 1;
    }
    return p;
}

/* An act-dtype tensor: `store` keeps it (saved or streamed), `f` is the fp32
 * view the kernels write; for fp32 they are the same block. */
typedef struct {
    void *store;
    float *f;
    int64_t n;
} view;

static view act_new(op_ctx *c, mem_cat cat, bool keep, int64_t n) {
    view v = {.n = n};
    rt_model *m = c->m;
    int64_t bytes = n * rt_dtype_bytes(m->act_dt);
    v.store = keep ? keep_alloc(c, cat, bytes) : tmp_alloc(c, bytes);
    v.f = m->act_dt == RT_F32 ? v.store : tmp_alloc(c, n * 4);
    return v;
}

/* fp32 statistics (1/rms, log-sum-exp, softmax) are kept in fp32. */
static float *f32_new(op_ctx *c, bool keep, int64_t n) {
    return keep ? keep_alloc(c, MEM_ACTIVATIONS, n * 4) : tmp_alloc(c, n * 4);
}

/* Round the fp32 view to the storage dtype, and the view to what is stored,
 * so forward and backward see the same values. */
static void act_seal(op_ctx *c, view v) {
    rt_model *m = c->m;
    if (c->failed || m->act_dt == RT_F32) return;
    m->be->to_bf16(v.store, v.f, v.n);
    m->be->from_bf16(v.f, v.store, v.n);
}

static float *act_load(op_ctx *c, const void *store, int64_t n) {
    rt_model *m = c->m;
    if (m->act_dt == RT_F32 || !store) return (float *)(uintptr_t)store;
    float *f = tmp_alloc(c, n * 4);
    if (f) m->be->from_bf16(f, store, n);
    return f;
}

static const float *weights(op_ctx *c, const void *w, rt_dtype t, int64_t n) {
    if (t == RT_F32) return w;
    float *f = tmp_alloc(c, n * 4);
    if (f) c->m->be->from_bf16(f, w, n);
    return f;
}

static float *grads_begin(op_ctx *c, void *g, rt_dtype t, int64_t n) {
    return t == RT_F32 ? g : zeros(c, n);
}

/* bf16 gradient buffer += the fp32 gradient of this op (rounded once). */
static void grads_end(op_ctx *c, void *g, rt_dtype t, float *f, int64_t n) {
    if (t == RT_F32 || c->failed) return;
    const rt_backend *be = c->m->be;
    float *old = tmp_alloc(c, n * 4);
    if (!old) return;
    be->from_bf16(old, g, n);
    be->add(f, f, old, n);
    be->to_bf16(g, f, n);
}

/* ---- tensor-parallel steps (rt_tp.h); each is the one-rank computation at tp = 1 -- */

static bool tp_on(const rt_model *m) { return m->tp.size > 1; }

static void tp_check(op_ctx *c) {
    if (c->m->tp.failed && !c->failed) {
        ps_err_set(c->err, "%s", c->m->tp.why);
        c->failed = 1;
    }
}

/* Sequence parallelism: x[Nl, h] (the rank's tokens) gathered to [N, h], before
 * a column-parallel linear (its input) or in the backward of a row-parallel
 * one (its output gradient); x itself without sp. */
static const float *seq_gather(op_ctx *c, const float *x) {
    rt_model *m = c->m;
    if (!m->tp.sp || c->failed) return x;
    float *full = tmp_alloc(c, m->N * m->h * 4);
    if (full) rt_tp_all_gather(&m->tp, full, x, m->Nl * m->h);
    tp_check(c);
    return full;
}

/* A row-parallel linear's output: y[Nl, h] = in[N, C] @ w^T summed over tp
 * (Megatron's g: all-reduce, or reduce-scatter under sp). */
static void row_parallel_out(op_ctx *c, float *y, const float *in, const float *w, int64_t C) {
    rt_model *m = c->m;
    const int64_t Nh = m->N * m->h;
    float *part = m->tp.sp ? tmp_alloc(c, Nh * 4) : y;
    if (c->failed) return;
    m->be->matmul_fwd(part, in, w, m->N, C, m->h);
    if (!tp_on(m)) return;
    if (m->tp.sp) {
        rt_tp_reduce_scatter(&m->tp, y, part, m->Nl * m->h);
        tmp_free(c, part);
    } else {
        rt_tp_all_reduce(&m->tp, y, Nh);
    }
    tp_check(c);
}

/* A column-parallel linear's input gradient: the partial sums d[N, h] of this
 * rank's columns, summed over tp (Megatron's f backward: all-reduce, or
 * reduce-scatter to [Nl, h] under sp). */
static float *column_parallel_grad(op_ctx *c, float *d) {
    rt_model *m = c->m;
    if (!tp_on(m) || c->failed) return d;
    float *out = d;
    if (m->tp.sp) {
        out = zeros(c, m->Nl * m->h);
        if (out) rt_tp_reduce_scatter(&m->tp, out, d, m->Nl * m->h);
        tmp_free(c, d);
    } else {
        rt_tp_all_reduce(&m->tp, d, m->N * m->h);
    }
    tp_check(c);
    return out;
}

/* Under sp a norm weight's gradient sums only the rank's tokens: g[n] (fp32,
 * this op's contribution) is summed over tp, then added into dw (Megatron-LM
 * all-reduces the sequence-parallel norm gradients over tp likewise). */
static void norm_grads_sum(op_ctx *c, float *g, int64_t n, float *const dw[], int parts) {
    rt_model *m = c->m;
    if (c->failed) return;
    rt_tp_all_reduce_f32(&m->tp, g, n);
    tp_check(c);
    const int64_t each = n / parts;
    for (int i = 0; i < parts && !c->failed; i++) m->be->add(dw[i], dw[i], g + i * each, each);
}

/* ---- embedding ----------------------------------------------------------------- */

static int embed_fwd(op_ctx *c, int64_t mb, const float *wte) {
    rt_model *m = c->m;
    rt_saved *s = &m->saved[0 * m->micro_batches + mb];
    const int32_t *tok = m->tokens + mb * m->N;
    int64_t *ids = keep_alloc(c, MEM_ACTIVATIONS, m->N * 8); /* input_ids (int64, as PyTorch) */
    view out = act_new(c, MEM_WORKSPACE, true, m->Nl * m->h);
    if (c->failed) return -1;
    for (int64_t i = 0; i < m->N; i++) ids[i] = tok[i];
    s->t[E_IDS] = ids;
    if (!tp_on(m)) {
        m->be->embed_fwd(out.f, tok, wte, m->N, m->h);
    } else { /* vocab-parallel: this rank's rows, summed over tp */
        float *part = m->tp.sp ? tmp_alloc(c, m->N * m->h * 4) : out.f;
        if (c->failed) return -1;
        rt_tp_embed_fwd(&m->tp, m->p, part, tok, wte, m->N);
        if (m->tp.sp) rt_tp_reduce_scatter(&m->tp, out.f, part, m->Nl * m->h);
        else rt_tp_all_reduce(&m->tp, out.f, m->N * m->h);
        tp_check(c);
    }
    act_seal(c, out);
    m->hidden[mb] = out.store;
    return c->failed ? -1 : 0;
}

static int embed_bwd(op_ctx *c, int64_t mb, float *dwte) {
    rt_model *m = c->m;
    rt_saved *s = &m->saved[mb];
    int32_t *tok = tmp_alloc(c, m->N * 4);
    if (c->failed) return -1;
    const int64_t *ids = s->t[E_IDS];
    for (int64_t i = 0; i < m->N; i++) tok[i] = (int32_t)ids[i];
    if (!tp_on(m)) {
        m->be->embed_bwd(dwte, m->dhidden[mb], tok, m->N, m->h);
        return 0;
    }
    const float *d = seq_gather(c, m->dhidden[mb]);
    if (!c->failed) rt_tp_embed_bwd(&m->tp, m->p, dwte, d, tok, m->N);
    return c->failed ? -1 : 0;
}

/* ---- mixture of experts (docs/runtime.md §3d) --------------------------------- */

static bool moe_on(const rt_model *m) { return m->E > 0; }

/* Move the dispatch buffer (R = E * cap rows of w fp32 values, E/ep experts per
 * block) to the experts' ranks, or their outputs back: one all-to-all over the ep
 * group in the activation dtype into dst's store (its fp32 view widened from it),
 * counted with its size S; a copy when one rank holds every expert. */
static void moe_a2a(op_ctx *c, const float *src, view dst) {
    rt_model *m = c->m;
    const rt_backend *be = m->be;
    if (c->failed) return;
    const bool bf = m->act_dt == RT_BF16;
    const void *send = src;
    if (bf) {
        void *t = tmp_alloc(c, dst.n * 2);
        if (!t) return;
        be->to_bf16(t, src, dst.n);
        send = t;
    }
    if (m->ep && m->ep->size > 1) {
        const double t0 = be->now_seconds();
        if (be->all_to_all(m->ep, send, dst.store, dst.n / m->ep->size, m->act_dt)) {
            ps_err_set(c->err, "the ep all-to-all failed: %s -- a peer rank died, or its link broke",
                       be->coll_error());
            c->failed = 1;
            return;
        }
        if (m->ep_stats) {
            m->ep_stats->calls++;
            m->ep_stats->bytes += dst.n * rt_dtype_bytes(m->act_dt);
            m->ep_stats->seconds += be->now_seconds() - t0;
        }
    } else {
        memcpy(dst.store, send, (size_t)(dst.n * rt_dtype_bytes(m->act_dt)));
    }
    if (bf) {
        tmp_free(c, (void *)(uintptr_t)send);
        be->from_bf16(dst.f, dst.store, dst.n);
    }
}

/* The held expert of row block b of the experts' side (blocks: ep source ranks x El
 * held experts, cap rows each): its w1, w3, w2. */
static const float *expert_w(const rt_model *m, const float *w, int64_t b) {
    return w + m->lay.experts + (b % m->El) * m->lay.expert_elems;
}

/* The routed experts of a MoE layer on the normalised input x [N][h]: router,
 * slots, dispatch, the experts' SwiGLU MLPs, combine; y += the weighted outputs (y
 * NULL: a recompute pass, which rebuilds the saved tensors only). The tensors go to
 * s's M_* slots (kept when `keep`); the load-balancing loss joins aux_sum on the
 * real forward. */
static void moe_fwd(op_ctx *c, rt_saved *s, const float *w, const float *x, bool keep, float *y) {
    rt_model *m = c->m;
    const rt_backend *be = m->be;
    const int64_t N = m->N, h = m->h, E = m->E, K = m->K, fe = m->fe, cap = m->cap, R = E * cap;
    const mem_cat A = MEM_ACTIVATIONS;
    float *logits = tmp_alloc(c, N * E * 4);
    float *probs = f32_new(c, keep, N * E), *gate = f32_new(c, keep, N * K);
    int32_t *idx = keep ? keep_alloc(c, A, N * K * 4) : tmp_alloc(c, N * K * 4);
    int32_t *slot = keep ? keep_alloc(c, A, N * K * 4) : tmp_alloc(c, N * K * 4);
    int64_t *count = keep ? keep_alloc(c, A, E * 8) : tmp_alloc(c, E * 8);
    float *disp = tmp_alloc(c, R * h * 4);
    if (c->failed) return;
    be->matmul_fwd(logits, x, w + m->lay.router, N, h, E);
    be->router_fwd(probs, idx, gate, logits, N, E, K);
    tmp_free(c, logits);
    be->moe_slots(slot, count, idx, N, K, E, cap);
    if (y && m->aux_alpha > 0)
        m->aux_sum += be->moe_aux_fwd(probs, count, N, E, K, m->aux_alpha) * (double)N;
    be->moe_permute_fwd(disp, x, slot, N, K, h, R);
    view xe = act_new(c, A, keep, R * h);
    moe_a2a(c, disp, xe); /* dispatch */
    tmp_free(c, disp);
    view a = act_new(c, A, keep, R * fe), b = act_new(c, A, keep, R * fe),
         g = act_new(c, A, keep, R * fe);
    float *eo = tmp_alloc(c, R * h * 4);
    if (c->failed) return;
    for (int64_t k = 0; k < E; k++) {
        const float *we = expert_w(m, w, k);
        be->matmul_fwd(a.f + k * cap * fe, xe.f + k * cap * h, we, cap, h, fe);
        be->matmul_fwd(b.f + k * cap * fe, xe.f + k * cap * h, we + fe * h, cap, h, fe);
    }
    act_seal(c, a), act_seal(c, b);
    be->swiglu_fwd(g.f, a.f, b.f, R * fe);
    act_seal(c, g);
    for (int64_t k = 0; k < E; k++)
        be->matmul_fwd(eo + k * cap * h, g.f + k * cap * fe, expert_w(m, w, k) + 2 * fe * h, cap, fe,
                       h);
    view ye = act_new(c, A, keep, R * h);
    moe_a2a(c, eo, ye); /* combine */
    tmp_free(c, eo);
    if (c->failed) return;
    if (y) {
        float *out = tmp_alloc(c, N * h * 4);
        if (!out) return;
        be->moe_unpermute_fwd(out, ye.f, gate, slot, N, K, h);
        be->add(y, y, out, N * h);
        tmp_free(c, out);
    }
    if (keep) {
        void *t[M_END - M_PROBS] = {probs, gate, idx, slot, count, xe.store, a.store, b.store,
                                    g.store, ye.store};
        memcpy(s->t + M_PROBS, t, sizeof t);
    }
}

/* Backward of moe_fwd: dy [N][h] the layer output's gradient; dx (the normalised
 * input's gradient) and the router's and experts' weight gradients (in dw) +=. The
 * gradients travel back over the same all-to-alls: the outputs' to the experts, the
 * inputs' home. The load-balancing loss of the micro-batch is weighted 1 /
 * micro-batches of the global batch (N loss_scale). */
static void moe_bwd(op_ctx *c, rt_saved *s, const float *w, float *dw, const float *x,
                    const float *dy, float *dx) {
    rt_model *m = c->m;
    const rt_backend *be = m->be;
    const int64_t N = m->N, h = m->h, E = m->E, K = m->K, fe = m->fe, cap = m->cap, R = E * cap;
    const float *probs = s->t[M_PROBS], *gate = s->t[M_GATE];
    const int32_t *idx = s->t[M_IDX], *slot = s->t[M_SLOT];
    const int64_t *count = s->t[M_COUNT];
    float *ye = act_load(c, s->t[M_YE], R * h);
    float *dye = zeros(c, R * h), *dgate = zeros(c, N * K);
    if (c->failed) return;
    be->moe_unpermute_bwd(dye, dgate, dy, ye, gate, slot, N, K, h);
    view deo = act_new(c, MEM_WORKSPACE, false, R * h);
    moe_a2a(c, dye, deo); /* the outputs' gradients to the experts */
    tmp_free(c, dye);
    float *xe = act_load(c, s->t[M_XE], R * h), *a = act_load(c, s->t[M_A], R * fe),
          *b = act_load(c, s->t[M_B], R * fe), *g = act_load(c, s->t[M_G], R * fe);
    float *dg = zeros(c, R * fe);
    if (c->failed) return;
    for (int64_t k = 0; k < E; k++) {
        const int64_t e = m->lay.experts + (k % m->El) * m->lay.expert_elems;
        be->matmul_bwd(dg + k * cap * fe, dw + e + 2 * fe * h, deo.f + k * cap * h,
                       g + k * cap * fe, w + e + 2 * fe * h, cap, fe, h);
    }
    float *da = zeros(c, R * fe), *db = zeros(c, R * fe), *dxe = zeros(c, R * h);
    if (c->failed) return;
    be->swiglu_bwd(da, db, dg, a, b, R * fe);
    tmp_free(c, dg);
    for (int64_t k = 0; k < E; k++) {
        const int64_t e = m->lay.experts + (k % m->El) * m->lay.expert_elems;
        be->matmul_bwd(dxe + k * cap * h, dw + e, da + k * cap * fe, xe + k * cap * h, w + e, cap,
                       h, fe);
        be->matmul_bwd(dxe + k * cap * h, dw + e + fe * h, db + k * cap * fe, xe + k * cap * h,
                       w + e + fe * h, cap, h, fe);
    }
    tmp_free(c, da), tmp_free(c, db);
    view ddisp = act_new(c, MEM_WORKSPACE, false, R * h);
    moe_a2a(c, dxe, ddisp); /* the inputs' gradients home */
    tmp_free(c, dxe);
    float *dprobs = m->aux_alpha > 0 ? zeros(c, N * E) : NULL, *dlogits = zeros(c, N * E);
    if (c->failed) return;
    be->moe_permute_bwd(dx, ddisp.f, slot, N, K, h);
    if (dprobs)
        be->moe_aux_bwd(dprobs, count, (float)N * m->loss_scale, N, E, K, m->aux_alpha);
    be->router_bwd(dlogits, dgate, dprobs, probs, idx, gate, N, E, K);
    be->matmul_bwd(dx, dw + m->lay.router, dlogits, x, w + m->lay.router, N, h, E);
}

/* ---- transformer layer ------------------------------------------------------- */

typedef struct {
    const float *attn_norm, *wq, *wk, *wv, *wo, *mlp_norm, *w1, *w3, *w2;
} layer_w;

static layer_w layer_weights(const rt_layer_layout *l, const float *w) {
    return (layer_w){w + l->attn_norm, w + l->wq, w + l->wk, w + l->wv, w + l->wo,
                     w + l->mlp_norm, w + l->w1, w + l->w3, w + l->w2};
}

/* The layer body. x_in is the saved input (act dtype, slot 0 already set).
 * keep: save the tensors (MEM_ACTIVATIONS) in s; otherwise they are op
 * workspace. out: where the layer output goes (NULL: not needed, as in a
 * recompute pass, which under tensor parallelism still runs the output's
 * collective, as Megatron-LM's recomputed forward does). Heads, kv heads and
 * the MLP width are this tp rank's; the norm regions hold Nl tokens. */
static void layer_body(op_ctx *c, rt_saved *s, const float *w, bool keep, void **out) {
    rt_model *m = c->m;
    const rt_backend *be = m->be;
    const int64_t N = m->N, Nl = m->Nl, h = m->h, qw = m->H * m->D, kvw = m->KVH * m->D,
                  f = m->f;
    layer_w W = layer_weights(&m->lay, w);
    const float *x = act_load(c, s->t[L_X_IN], Nl * h);
    const mem_cat A = MEM_ACTIVATIONS;

    view xn1 = act_new(c, A, keep, Nl * h);
    float *rstd1 = f32_new(c, keep, Nl);
    if (c->failed) return;
    be->rmsnorm_fwd(xn1.f, rstd1, x, W.attn_norm, Nl, h, m->eps);
    act_seal(c, xn1);
    const float *in1 = seq_gather(c, xn1.f);
    view q = act_new(c, A, keep, N * qw), k = act_new(c, A, keep, N * kvw),
         v = act_new(c, A, keep, N * kvw);
    if (c->failed) return;
    be->matmul_fwd(q.f, in1, W.wq, N, h, qw);
    be->matmul_fwd(k.f, in1, W.wk, N, h, kvw);
    be->matmul_fwd(v.f, in1, W.wv, N, h, kvw);
    if (in1 != xn1.f) tmp_free(c, (void *)(uintptr_t)in1);
    be->rope_fwd(q.f, m->pos, m->B, m->T, m->H, m->D, m->theta);
    be->rope_fwd(k.f, m->pos, m->B, m->T, m->KVH, m->D, m->theta);
    act_seal(c, q), act_seal(c, k), act_seal(c, v);
    view o = act_new(c, A, keep, N * qw);
    float *lse = f32_new(c, keep, N * m->H);
    float *scratch = m->ring ? NULL : tmp_alloc(c, be->attn_scratch_floats(m->T) * 4);
    if (c->failed) return;
    if (m->ring) /* context parallelism: over the cp ring */
        c->failed = rt_ring_attn_fwd(m->ring, be, m->mem, m->act_dt, o.f, lse, q.f, k.f, v.f,
                                     k.store, v.store, m->B, m->H, m->KVH, m->D, c->err) != 0;
    else
        be->attn_fwd(o.f, lse, q.f, k.f, v.f, m->B, m->T, m->H, m->KVH, m->D, scratch);
    tmp_free(c, scratch);
    if (c->failed) return;
    act_seal(c, o);
    view xm = act_new(c, A, keep, Nl * h);
    if (c->failed) return;
    row_parallel_out(c, xm.f, o.f, W.wo, qw);
    if (c->failed) return;
    be->add(xm.f, xm.f, x, Nl * h);
    act_seal(c, xm);
    view xn2 = act_new(c, A, keep, Nl * h);
    float *rstd2 = f32_new(c, keep, Nl);
    if (c->failed) return;
    be->rmsnorm_fwd(xn2.f, rstd2, xm.f, W.mlp_norm, Nl, h, m->eps);
    act_seal(c, xn2);
    const float *in2 = seq_gather(c, xn2.f);
    view a = act_new(c, A, keep, N * f), b = act_new(c, A, keep, N * f),
         g = act_new(c, A, keep, N * f);
    if (c->failed) return;
    be->matmul_fwd(a.f, in2, W.w1, N, h, f);
    be->matmul_fwd(b.f, in2, W.w3, N, h, f);
    if (in2 != xn2.f) tmp_free(c, (void *)(uintptr_t)in2);
    act_seal(c, a), act_seal(c, b);
    be->swiglu_fwd(g.f, a.f, b.f, N * f);
    act_seal(c, g);
    if (keep) {
        void *t[L_COUNT] = {s->t[L_X_IN], rstd1, xn1.store, q.store, k.store, v.store, o.store,
                            lse, xm.store, rstd2, xn2.store, a.store, b.store, g.store};
        memcpy(s->t, t, sizeof t);
        s->n = moe_on(m) ? M_END : L_COUNT; /* a MoE layer's slots: moe_fwd below */
    }
    if (out || tp_on(m)) {
        view y = act_new(c, MEM_WORKSPACE, out != NULL, Nl * h);
        if (c->failed) return;
        row_parallel_out(c, y.f, g.f, W.w2, f);
        if (c->failed) return;
        be->add(y.f, y.f, xm.f, Nl * h);
        if (moe_on(m)) moe_fwd(c, s, w, xn2.f, keep, y.f); /* the routed experts */
        if (c->failed) return;
        act_seal(c, y);
        if (out) *out = y.store;
    } else if (moe_on(m)) {
        moe_fwd(c, s, w, xn2.f, keep, NULL); /* a recompute pass: rebuild the saved tensors */
    }
}

/* Zero-bubble's stash: the output gradients of the layer's GEMMs, in elements
 * from its start: dy (w2), da (w1), db (w3), dxm (wo), dq, dk, dv (wq, wk, wv). */
typedef struct {
    int64_t dy, da, db, dxm, dq, dk, dv, n;
} stash_layout;

static stash_layout stash_of(const rt_model *m) {
    const int64_t N = m->N, h = m->h, f = m->f, qw = m->H * m->D, kvw = m->KVH * m->D;
    stash_layout l;
    l.dy = 0, l.da = N * h, l.db = l.da + N * f, l.dxm = l.db + N * f, l.dq = l.dxm + N * h;
    l.dk = l.dq + N * qw, l.dv = l.dk + N * kvw, l.n = l.dv + N * kvw;
    return l;
}

/* The weight part: every GEMM's weight gradient from its saved input and the
 * stashed output gradient. */
static void layer_backward_weights(op_ctx *c, rt_saved *s, float *dw) {
    rt_model *m = c->m;
    const rt_backend *be = m->be;
    const int64_t N = m->N, h = m->h, qw = m->H * m->D, kvw = m->KVH * m->D, f = m->f;
    const stash_layout l = stash_of(m);
    layer_w G = layer_weights(&m->lay, dw);
    const float *st = s->stash;
    /* without sequence parallelism (zero-bubble refuses it) the inputs are whole */
    float *xn1 = act_load(c, s->t[L_XN1], N * h), *o = act_load(c, s->t[L_O], N * qw),
          *xn2 = act_load(c, s->t[L_XN2], N * h), *g = act_load(c, s->t[L_G], N * f);
    if (c->failed) return;
    be->matmul_bwd(NULL, (float *)G.w2, st + l.dy, g, NULL, N, f, h);
    be->matmul_bwd(NULL, (float *)G.w1, st + l.da, xn2, NULL, N, h, f);
    be->matmul_bwd(NULL, (float *)G.w3, st + l.db, xn2, NULL, N, h, f);
    be->matmul_bwd(NULL, (float *)G.wo, st + l.dxm, o, NULL, N, qw, h);
    be->matmul_bwd(NULL, (float *)G.wq, st + l.dq, xn1, NULL, N, h, qw);
    be->matmul_bwd(NULL, (float *)G.wk, st + l.dk, xn1, NULL, N, h, kvw);
    be->matmul_bwd(NULL, (float *)G.wv, st + l.dv, xn1, NULL, N, h, kvw);
}

/* part BWD_INPUT: no GEMM weight gradient (dw = NULL for them); their output
 * gradients go to a new stash in s. */
static void layer_backward(op_ctx *c, rt_saved *s, const float *w, float *dw, float *dx_out,
                           float **dx_in, prog_bwd_part part) {
    rt_model *m = c->m;
    const rt_backend *be = m->be;
    const int64_t N = m->N, Nl = m->Nl, h = m->h, qw = m->H * m->D, kvw = m->KVH * m->D,
                  f = m->f;
    layer_w W = layer_weights(&m->lay, w);
    layer_w G = layer_weights(&m->lay, dw);
    float *x = act_load(c, s->t[L_X_IN], Nl * h), *xn1 = act_load(c, s->t[L_XN1], Nl * h),
          *q = act_load(c, s->t[L_Q], N * qw), *k = act_load(c, s->t[L_K], N * kvw),
          *v = act_load(c, s->t[L_V], N * kvw), *o = act_load(c, s->t[L_O], N * qw),
          *xm = act_load(c, s->t[L_X_MID], Nl * h), *xn2 = act_load(c, s->t[L_XN2], Nl * h),
          *a = act_load(c, s->t[L_A], N * f), *b = act_load(c, s->t[L_B], N * f),
          *g = act_load(c, s->t[L_G], N * f);
    const float *rstd1 = s->t[L_RSTD1], *rstd2 = s->t[L_RSTD2], *lse = s->t[L_LSE];
    const bool split = part == BWD_INPUT;
    const stash_layout sl = stash_of(m);
    float *st = split ? keep_alloc(c, MEM_WORKSPACE, sl.n * 4) : NULL;
    /* sequence parallelism: the norms' weight gradients of this rank's tokens,
     * summed over tp at the end */
    float *norm_g = m->tp.sp ? zeros(c, 2 * h) : NULL;
    float *d_attn_norm = norm_g ? norm_g : (float *)G.attn_norm,
          *d_mlp_norm = norm_g ? norm_g + h : (float *)G.mlp_norm;
    /* the residual stream's gradient: dx_mid starts as dx_out and becomes dx_in */
    float *dxm = keep_alloc(c, MEM_WORKSPACE, Nl * h * 4);
    float *dg = zeros(c, N * f);
    if (c->failed) return;
    memcpy(dxm, dx_out, (size_t)(Nl * h) * 4);
    const float *dy = seq_gather(c, dx_out);
    if (c->failed) return;
    if (split) s->stash = st;
#define GW(x) (split ? NULL : (float *)G.x) /* a GEMM's weight gradient, unless W does it */
#define STASH(at, src, n) \
    if (split) memcpy(st + sl.at, src, (size_t)(n) * 4)
    STASH(dy, dy, N * h);
    be->matmul_bwd(dg, GW(w2), dy, g, W.w2, N, f, h);
    if (dy != dx_out) tmp_free(c, (void *)(uintptr_t)dy);
    float *da = zeros(c, N * f), *db = zeros(c, N * f);
    if (c->failed) return;
    be->swiglu_bwd(da, db, dg, a, b, N * f);
    tmp_free(c, dg);
    STASH(da, da, N * f);
    STASH(db, db, N * f);
    float *dxn2 = zeros(c, N * h);
    const float *in2 = seq_gather(c, xn2); /* re-gathered for the weight gradients */
    if (c->failed) return;
    be->matmul_bwd(dxn2, GW(w1), da, in2, W.w1, N, h, f);
    be->matmul_bwd(dxn2, GW(w3), db, in2, W.w3, N, h, f);
    if (in2 != xn2) tmp_free(c, (void *)(uintptr_t)in2);
    tmp_free(c, da), tmp_free(c, db);
    if (moe_on(m)) moe_bwd(c, s, w, dw, xn2, dx_out, dxn2); /* the routed experts (no tp) */
    dxn2 = column_parallel_grad(c, dxn2);
    if (c->failed) return;
    be->rmsnorm_bwd(dxm, d_mlp_norm, dxn2, xm, W.mlp_norm, rstd2, Nl, h);
    tmp_free(c, dxn2);
    float *dout = zeros(c, N * qw);
    const float *dxmf = seq_gather(c, dxm);
    if (c->failed) return;
    STASH(dxm, dxmf, N * h);
    be->matmul_bwd(dout, GW(wo), dxmf, o, W.wo, N, qw, h);
    if (dxmf != dxm) tmp_free(c, (void *)(uintptr_t)dxmf);
    float *dq = zeros(c, N * qw), *dk = zeros(c, N * kvw), *dv = zeros(c, N * kvw);
    float *scratch = m->ring ? NULL : tmp_alloc(c, be->attn_scratch_floats(m->T) * 4);
    if (c->failed) return;
    if (m->ring) /* context parallelism: over the cp ring */
        c->failed = rt_ring_attn_bwd(m->ring, be, m->mem, m->act_dt, dq, dk, dv, dout, q, k, v,
                                     s->t[L_K], s->t[L_V], o, lse, m->B, m->H, m->KVH, m->D,
                                     c->err) != 0;
    else
        be->attn_bwd(dq, dk, dv, dout, q, k, v, o, lse, m->B, m->T, m->H, m->KVH, m->D, scratch);
    tmp_free(c, scratch), tmp_free(c, dout);
    if (c->failed) return;
    be->rope_bwd(dq, m->pos, m->B, m->T, m->H, m->D, m->theta);
    be->rope_bwd(dk, m->pos, m->B, m->T, m->KVH, m->D, m->theta);
    STASH(dq, dq, N * qw);
    STASH(dk, dk, N * kvw);
    STASH(dv, dv, N * kvw);
#undef STASH
    float *dxn1 = zeros(c, N * h);
    const float *in1 = seq_gather(c, xn1);
    if (c->failed) return;
    be->matmul_bwd(dxn1, GW(wq), dq, in1, W.wq, N, h, qw);
    be->matmul_bwd(dxn1, GW(wk), dk, in1, W.wk, N, h, kvw);
    be->matmul_bwd(dxn1, GW(wv), dv, in1, W.wv, N, h, kvw);
#undef GW
    if (in1 != xn1) tmp_free(c, (void *)(uintptr_t)in1);
    tmp_free(c, dq), tmp_free(c, dk), tmp_free(c, dv);
    dxn1 = column_parallel_grad(c, dxn1);
    if (c->failed) return;
    be->rmsnorm_bwd(dxm, d_attn_norm, dxn1, x, W.attn_norm, rstd1, Nl, h);
    if (norm_g) {
        float *const dst[2] = {(float *)G.attn_norm, (float *)G.mlp_norm};
        norm_grads_sum(c, norm_g, 2 * h, dst, 2);
    }
    *dx_in = dxm;
}

/* ---- head: final norm, output projection, cross-entropy ------------------------- */

/* Logit distillation (docs/runtime.md "Logit distillation"): the teacher's forward on
 * the micro-batch's B sequences of T tokens, its distribution at T into the saved qt
 * (and idx), its logits freed before the student's head allocates its own. */
static int teacher_fwd(op_ctx *c, int64_t mb, float *qt, int32_t *idx) {
    rt_model *m = c->m;
    const int64_t N = m->N, B = m->B, T = m->T;
    rt_gen *g = m->teacher;
    if (!g) {
        ps_err_set(c->err, "forward of the head, micro-batch %lld: the teacher is not "
                           "allocated (op order)", (long long)mb);
        return c->failed = 1, -1;
    }
    rt_gen_seg *segs = malloc((size_t)B * sizeof *segs);
    int64_t *rows = malloc((size_t)N * sizeof *rows);
    float *zt = NULL;
    int rc = !segs || !rows ? ps_err_set(c->err, "out of host memory for the teacher") : 0;
    for (int64_t b = 0; !rc && b < B; b++) segs[b] = (rt_gen_seg){.seq = NULL, .row = b * T, .p0 = 0, .n = T};
    for (int64_t n = 0; !rc && n < N; n++) rows[n] = n;
    if (!rc) rc = rt_gen_fwd(g, m->tokens + mb * N, N, segs, B, rows, N, &zt, c->err);
    free(segs);
    free(rows);
    if (!rc) {
        if (!tp_on(m)) m->be->kd_teacher(qt, idx, zt, N, m->V, &m->kd);
        else if (rt_tp_kd_teacher(&m->tp, m->p, qt, idx, zt, g->Vr, N, &m->kd)) tp_check(c), rc = -1;
    }
    rt_mem_free(m->mem, zt);
    if (rc) c->failed = 1;
    return rc;
}

static int head_fwd(op_ctx *c, int64_t mb, const float *w) {
    rt_model *m = c->m;
    const rt_backend *be = m->be;
    const int64_t N = m->N, Nl = m->Nl, h = m->h, V = m->V;
    /* this rank's columns of the probabilities, padding included (act.c's size) */
    const int64_t probs_n = N * (tp_on(m) ? rt_tp_vocab_rows(m->p) : V);
    rt_saved *s = &m->saved[(m->units - 1) * m->micro_batches + mb];
    const float *norm_w = w, *lm = w + h;
    const float *x = act_load(c, s->t[H_X], Nl * h);
    view xn = act_new(c, MEM_ACTIVATIONS, true, Nl * h);
    float *rstd = f32_new(c, true, Nl);
    float *probs = f32_new(c, true, probs_n);
    int64_t *labels = keep_alloc(c, MEM_ACTIVATIONS, N * 8);
    /* distillation: the KD loss's saved tensors (cost/distill.h distill_kd_bytes), the
     * teacher run before the student's logits exist */
    const bool kd = m->p->distill.on;
    const int64_t k = m->kd.top_k;
    float *qs = kd ? f32_new(c, true, probs_n) : NULL;
    float *qt = kd ? f32_new(c, true, k ? N * k : probs_n) : NULL;
    int32_t *idx = kd && k ? keep_alloc(c, MEM_ACTIVATIONS, N * k * 4) : NULL;
    if (c->failed || (kd && teacher_fwd(c, mb, qt, idx))) return -1;
    /* the logits live only until the loss has turned them into probabilities */
    view logits = act_new(c, MEM_WORKSPACE, false, probs_n);
    float *losses = tmp_alloc(c, N * 4);
    if (c->failed) return -1;
    be->rmsnorm_fwd(xn.f, rstd, x, norm_w, Nl, h, m->eps);
    act_seal(c, xn);
    const float *in = seq_gather(c, xn.f);
    if (c->failed) return -1;
    be->matmul_fwd(logits.f, in, lm, N, h, V);
    act_seal(c, logits);
    const int32_t *tgt = m->targets + mb * N;
    if (kd && !tp_on(m)) {
        be->kd_fwd(probs, qs, losses, logits.f, tgt, qt, idx, N, V, &m->kd);
    } else if (!tp_on(m)) {
        be->xent_fwd(probs, losses, logits.f, tgt, N, V);
    } else if (rt_tp_xent_fwd(&m->tp, m->p, probs, losses, logits.f, tgt, N) ||
               (kd && rt_tp_kd_fwd(&m->tp, m->p, qs, losses, logits.f, qt, idx, N, &m->kd))) {
        tp_check(c);
    }
    if (c->failed) return -1;
    double sum = 0;
    for (int64_t i = 0; i < N; i++) sum += losses[i], labels[i] = tgt[i];
    m->loss_sum += sum;
    s->t[H_RSTD] = rstd, s->t[H_XN] = xn.store, s->t[H_PROBS] = probs, s->t[H_LABELS] = labels;
    s->t[H_QS] = qs, s->t[H_QT] = qt, s->t[H_IDX] = idx;
    s->n = H_COUNT;
    return 0;
}

static int head_bwd(op_ctx *c, int64_t mb, const float *w, float *dw) {
    rt_model *m = c->m;
    const rt_backend *be = m->be;
    const int64_t N = m->N, Nl = m->Nl, h = m->h, V = m->V;
    rt_saved *s = &m->saved[(m->units - 1) * m->micro_batches + mb];
    const float *x = act_load(c, s->t[H_X], Nl * h), *xn = act_load(c, s->t[H_XN], Nl * h);
    int32_t *tgt = tmp_alloc(c, N * 4);
    float *dlogits = zeros(c, N * V), *dxn = zeros(c, N * h);
    float *dx = keep_alloc(c, MEM_WORKSPACE, Nl * h * 4);
    float *norm_g = m->tp.sp ? zeros(c, h) : NULL; /* sp: summed over tp below */
    if (c->failed) return -1;
    const int64_t *labels = s->t[H_LABELS];
    for (int64_t i = 0; i < N; i++) tgt[i] = (int32_t)labels[i];
    const float a = m->kd.alpha;
    if (!m->p->distill.on) {
        if (!tp_on(m)) be->xent_bwd(dlogits, s->t[H_PROBS], tgt, m->loss_scale, N, V);
        else rt_tp_xent_bwd(&m->tp, m->p, dlogits, s->t[H_PROBS], tgt, m->loss_scale, N);
    } else if (!tp_on(m)) {
        be->kd_bwd(dlogits, s->t[H_PROBS], s->t[H_QS], tgt, s->t[H_QT], s->t[H_IDX],
                   m->loss_scale, N, V, &m->kd);
    } else { /* the hard term vocab-parallel, the soft term on this rank's columns (as kd.c) */
        if (a != 0.0f)
            rt_tp_xent_bwd(&m->tp, m->p, dlogits, s->t[H_PROBS], tgt, m->loss_scale * a, N);
        const kern_kd_cfg soft = {.T = m->kd.T, .alpha = 0.0f, .top_k = m->kd.top_k};
        if (a != 1.0f)
            be->kd_bwd(dlogits, NULL, s->t[H_QS], tgt, s->t[H_QT], s->t[H_IDX],
                       m->loss_scale * (1.0f - a), N, V, &soft);
    }
    const float *in = seq_gather(c, xn); /* re-gathered for the weight gradient */
    if (c->failed) return -1;
    be->matmul_bwd(dxn, dw + h, dlogits, in, w + h, N, h, V);
    dxn = column_parallel_grad(c, dxn);
    if (c->failed) return -1;
    be->rmsnorm_bwd(dx, norm_g ? norm_g : dw, dxn, x, w, s->t[H_RSTD], Nl, h);
    if (norm_g) {
        float *const dst[1] = {dw};
        norm_grads_sum(c, norm_g, h, dst, 1);
    }
    m->dhidden[mb] = dx;
    return c->failed ? -1 : 0;
}

/* ---- entry points ------------------------------------------------------------- */

static void saved_free(rt_model *m, rt_saved *s) {
    for (int k = 0; k < RT_SAVED_MAX; k++) {
        rt_mem_free(m->mem, s->t[k]);
        s->t[k] = NULL;
    }
    rt_mem_free(m->mem, s->stash);
    s->stash = NULL;
    s->n = 0;
}

/* Parameters of a unit (rt_model_unit_elems, kept at init). */
static int64_t unit_elems(const rt_model *m, int64_t unit) {
    return unit == 0 ? m->embed_elems : unit == m->units - 1 ? m->head_elems : m->lay.elems;
}

int rt_model_fwd(rt_model *m, int64_t unit, int64_t mb, const void *w, rt_dtype wdt, bool save,
                 ps_err *err) {
    op_ctx c = {.m = m, .err = err};
    const int64_t n = unit_elems(m, unit);
    const float *wf = weights(&c, w, wdt, n);
    if (c.failed) return op_end(&c);
    if (unit == 0) {
        embed_fwd(&c, mb, wf);
        return op_end(&c);
    }
    /* the consumer adopts the stream as its saved input */
    rt_saved *s = &m->saved[unit * m->micro_batches + mb];
    if (!m->hidden[mb]) {
        op_end(&c);
        return ps_err_set(err, "forward of unit %lld, micro-batch %lld: the unit before it has "
                               "not run its forward (op order)", (long long)unit, (long long)mb);
    }
    s->t[0] = m->hidden[mb];
    m->hidden[mb] = NULL;
    rt_mem_retag(m->mem, s->t[0], MEM_ACTIVATIONS);
    if (unit == m->units - 1) {
        head_fwd(&c, mb, wf);
        return op_end(&c);
    }
    void *out = NULL;
    layer_body(&c, s, wf, save, &out);
    if (!save) s->n = 1; /* full recompute keeps the layer input only */
    m->hidden[mb] = out;
    return op_end(&c);
}

int rt_model_bwd(rt_model *m, int64_t unit, int64_t mb, const void *w, rt_dtype wdt, void *g,
                 rt_dtype gdt, bool recompute, ps_err *err) {
    return rt_model_bwd_part(m, unit, mb, w, wdt, g, gdt, recompute, BWD_ALL, err);
}

int rt_model_bwd_part(rt_model *m, int64_t unit, int64_t mb, const void *w, rt_dtype wdt,
                      void *g, rt_dtype gdt, bool recompute, prog_bwd_part part, ps_err *err) {
    const bool layer = unit > 0 && unit < m->units - 1;
    if (part != BWD_ALL && (!layer || recompute))
        return ps_err_set(err, "backward of unit %lld, micro-batch %lld: the runtime splits only "
                               "a layer's backward without full recompute into input and weight "
                               "parts", (long long)unit, (long long)mb);
    if (part == BWD_WEIGHT) { /* from what B kept: no weights, no incoming gradient */
        op_ctx c = {.m = m, .err = err};
        rt_saved *s = &m->saved[unit * m->micro_batches + mb];
        if (!s->stash) {
            return ps_err_set(err, "weight part of unit %lld, micro-batch %lld: its input part "
                                   "has not run (op order)", (long long)unit, (long long)mb);
        }
        float *gf = grads_begin(&c, g, gdt, unit_elems(m, unit));
        if (!c.failed) layer_backward_weights(&c, s, gf);
        grads_end(&c, g, gdt, gf, unit_elems(m, unit));
        if (!c.failed) saved_free(m, s);
        return op_end(&c);
    }
    op_ctx c = {.m = m, .err = err};
    const int64_t n = unit_elems(m, unit);
    const float *wf = weights(&c, w, wdt, n);
    float *gf = grads_begin(&c, g, gdt, n);
    rt_saved *s = &m->saved[unit * m->micro_batches + mb];
    if (c.failed) return op_end(&c);
    if (!s->t[0] || (unit < m->units - 1 && !m->dhidden[mb])) {
        op_end(&c);
        return ps_err_set(err, "backward of unit %lld, micro-batch %lld: its forward, or the "
                               "backward of the unit after it, has not run (op order)",
                          (long long)unit, (long long)mb);
    }
    if (unit == m->units - 1) {
        head_bwd(&c, mb, wf, gf);
    } else if (unit == 0) {
        embed_bwd(&c, mb, gf);
        rt_mem_free(m->mem, m->dhidden[mb]);
        m->dhidden[mb] = NULL;
    } else {
        rt_saved rs = {{0}, 0, NULL}, *use = s;
        if (recompute) { /* rebuild the layer's tensors from its saved input */
            rs.t[0] = s->t[0];
            layer_body(&c, &rs, wf, true, NULL);
            use = &rs;
        }
        float *dx = NULL;
        if (!c.failed) layer_backward(&c, use, wf, gf, m->dhidden[mb], &dx, part);
        if (recompute) {
            rs.t[0] = NULL;
            saved_free(m, &rs);
        }
        if (!c.failed) {
            rt_mem_free(m->mem, m->dhidden[mb]);
            m->dhidden[mb] = dx;
        }
    }
    grads_end(&c, g, gdt, gf, n);
    if (!c.failed && part == BWD_ALL) saved_free(m, s); /* B keeps them for W */
    return op_end(&c);
}
