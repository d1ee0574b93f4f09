/* rt_tp.c — tensor and sequence parallelism in the runtime (see rt_tp.h). */
#include "rt_tp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_model.h"

/* ---- vocabulary split ------------------------------------------------------------ */

int64_t rt_tp_vocab_split(int64_t V, int64_t tp, int rank, int64_t *first, int64_t *valid) {
    const int64_t rows = (V + tp - 1) / tp, lo = rank * rows;
    *first = lo;
    *valid = lo >= V ? 0 : lo + rows <= V ? rows : V - lo;
    return rows;
}

int64_t rt_tp_vocab_rows(const program *p) {
    int64_t first, valid;
    return rt_tp_vocab_split(p->vocab, p->tp, 0, &first, &valid);
}

void rt_tp_vocab_range(const program *p, int rank, int64_t *first, int64_t *valid) {
    rt_tp_vocab_split(p->vocab, p->tp, rank, first, valid);
}

/* ---- collectives ------------------------------------------------------------------- */

static int tp_fail(rt_tp *tp, const char *what) {
    if (!tp->failed)
        snprintf(tp->why, sizeof tp->why, "tensor-parallel %s failed: %s", what,
                 tp->be->coll_error ? tp->be->coll_error() : "out of memory");
    tp->failed = 1;
    return -1;
}

static void tp_count(rt_tp *tp, comm_coll c, int64_t bytes, double t0) {
    if (!tp->stats) return;
    tp->stats[c].calls++;
    tp->stats[c].bytes += bytes;
    tp->stats[c].seconds += tp->be->now_seconds() - t0;
}

/* A bf16 copy of n fp32 values (workspace), or NULL when out of memory. */
static uint16_t *bf16_copy(rt_tp *tp, const float *x, int64_t n) {
    uint16_t *b = rt_mem_alloc(tp->mem, MEM_WORKSPACE, (n > 0 ? n : 1) * 2);
    if (b && x) tp->be->to_bf16(b, x, n);
    return b;
}

static int all_reduce_dt(rt_tp *tp, float *x, int64_t n, rt_dtype dt) {
    const double t0 = tp->be->now_seconds();
    int rc;
    if (dt == RT_F32) {
        rc = tp->be->all_reduce(tp->g, x, n, RT_F32);
    } else {
        uint16_t *b = bf16_copy(tp, x, n);
        if (!b) return tp_fail(tp, "all-reduce");
        rc = tp->be->all_reduce(tp->g, b, n, RT_BF16);
        if (!rc) tp->be->from_bf16(x, b, n);
        rt_mem_free(tp->mem, b);
    }
    if (rc) return tp_fail(tp, "all-reduce");
    tp_count(tp, COLL_ALL_REDUCE, n * rt_dtype_bytes(dt), t0);
    return 0;
}

int rt_tp_all_reduce(rt_tp *tp, float *x, int64_t n) {
    return all_reduce_dt(tp, x, n, tp->act_dt);
}
int rt_tp_all_reduce_f32(rt_tp *tp, float *x, int64_t n) {
    return all_reduce_dt(tp, x, n, RT_F32);
}

int rt_tp_all_reduce_max(rt_tp *tp, float *x, int64_t n) {
    const double t0 = tp->be->now_seconds();
    if (!tp->be->all_reduce_max || tp->be->all_reduce_max(tp->g, x, n))
        return tp_fail(tp, "all-reduce (max)");
    tp_count(tp, COLL_ALL_REDUCE, n * 4, t0);
    return 0;
}

/* Equal parts of n_local elements, one per rank. */
static int64_t *equal_parts(const rt_tp *tp, int64_t n_local) {
    int64_t *c = malloc(2 * (size_t)tp->size * sizeof *c);
    if (c)
        for (int r = 0; r < tp->size; r++)
            c[r] = n_local, c[tp->size + r] = r * n_local;
    return c;
}

static int all_gather_dt(rt_tp *tp, float *full, const float *local, int64_t n_local,
                         rt_dtype dt) {
    const double t0 = tp->be->now_seconds();
    const int64_t n = n_local * tp->size;
    int64_t *c = equal_parts(tp, n_local);
    if (!c) return tp_fail(tp, "all-gather");
    int rc;
    if (dt == RT_F32) {
        rc = tp->be->all_gather(tp->g, local, full, c, c + tp->size, RT_F32);
    } else {
        uint16_t *bl = bf16_copy(tp, local, n_local), *bf = bf16_copy(tp, NULL, n);
        rc = !bl || !bf ? -1 : tp->be->all_gather(tp->g, bl, bf, c, c + tp->size, RT_BF16);
        if (!rc) tp->be->from_bf16(full, bf, n);
        rt_mem_free(tp->mem, bl);
        rt_mem_free(tp->mem, bf);
    }
    free(c);
    if (rc) return tp_fail(tp, "all-gather");
    tp_count(tp, COLL_ALL_GATHER, n * rt_dtype_bytes(dt), t0);
    return 0;
}

int rt_tp_all_gather(rt_tp *tp, float *full, const float *local, int64_t n_local) {
    return all_gather_dt(tp, full, local, n_local, tp->act_dt);
}

int rt_tp_reduce_scatter(rt_tp *tp, float *local, const float *full, int64_t n_local) {
    const double t0 = tp->be->now_seconds();
    const int64_t n = n_local * tp->size;
    int64_t *c = equal_parts(tp, n_local);
    if (!c) return tp_fail(tp, "reduce-scatter");
    int rc;
    if (tp->act_dt == RT_F32) {
        rc = tp->be->reduce_scatter(tp->g, full, local, c, RT_F32);
    } else {
        uint16_t *bf = bf16_copy(tp, full, n), *bl = bf16_copy(tp, NULL, n_local);
        rc = !bl || !bf ? -1 : tp->be->reduce_scatter(tp->g, bf, bl, c, RT_BF16);
        if (!rc) tp->be->from_bf16(local, bl, n_local);
        rt_mem_free(tp->mem, bl);
        rt_mem_free(tp->mem, bf);
    }
    free(c);
    if (rc) return tp_fail(tp, "reduce-scatter");
    tp_count(tp, COLL_REDUCE_SCATTER, n * rt_dtype_bytes(tp->act_dt), t0);
    return 0;
}

/* ---- vocab-parallel embedding and cross-entropy ------------------------------------- */

void rt_tp_embed_fwd(const rt_tp *tp, const program *p, float *out, const int32_t *tokens,
                     const float *wte, int64_t N) {
    int64_t lo, valid;
    const int64_t h = p->hidden;
    rt_tp_vocab_range(p, tp->rank, &lo, &valid);
    for (int64_t n = 0; n < N; n++) {
        const int64_t r = (int64_t)tokens[n] - lo;
        if (r >= 0 && r < valid)
            memcpy(out + n * h, wte + r * h, (size_t)h * 4);
        else
            memset(out + n * h, 0, (size_t)h * 4);
    }
}

void rt_tp_embed_bwd(const rt_tp *tp, const program *p, float *dwte, const float *dout,
                     const int32_t *tokens, int64_t N) {
    int64_t lo, valid;
    const int64_t h = p->hidden;
    rt_tp_vocab_range(p, tp->rank, &lo, &valid);
    for (int64_t n = 0; n < N; n++) {
        const int64_t r = (int64_t)tokens[n] - lo;
        if (r < 0 || r >= valid) continue;
        for (int64_t c = 0; c < h; c++)
            dwte[r * h + c] += dout[n * h + c];
    }
}

int rt_tp_xent_fwd(rt_tp *tp, const program *p, float *probs, float *losses, const float *logits,
                   const int32_t *targets, int64_t N) {
    int64_t lo, V;
    rt_tp_vocab_range(p, tp->rank, &lo, &V);
    float *mx = rt_mem_alloc(tp->mem, MEM_WORKSPACE, 3 * N * 4), *sum = mx + N, *tl = sum + N;
    if (!mx) return tp_fail(tp, "cross-entropy");
    for (int64_t n = 0; n < N; n++) {
        const float *l = logits + n * V;
        float m = -INFINITY;
        for (int64_t v = 0; v < V; v++)
            m = l[v] > m ? l[v] : m;
        mx[n] = m;
        const int64_t t = (int64_t)targets[n] - lo;
        tl[n] = t >= 0 && t < V ? l[t] : 0.0f;
    }
    /* as Megatron-LM: the maximum, the target logit, the sum of exponentials */
    int rc = rt_tp_all_reduce_max(tp, mx, N) || rt_tp_all_reduce_f32(tp, tl, N);
    for (int64_t n = 0; n < N && !rc; n++) {
        const float *l = logits + n * V;
        float *pr = probs + n * V, s = 0;
        for (int64_t v = 0; v < V; v++)
            s += pr[v] = expf(l[v] - mx[n]);
        sum[n] = s;
    }
    rc = rc || rt_tp_all_reduce_f32(tp, sum, N);
    for (int64_t n = 0; n < N && !rc; n++) {
        const float inv = 1.0f / sum[n];
        for (int64_t v = 0; v < V; v++)
            probs[n * V + v] *= inv;
        losses[n] = (float)((double)mx[n] + log((double)sum[n]) - (double)tl[n]);
    }
    rt_mem_free(tp->mem, mx);
    return rc ? -1 : 0;
}

void rt_tp_xent_bwd(const rt_tp *tp, const program *p, float *dlogits, const float *probs,
                    const int32_t *targets, float scale, int64_t N) {
    int64_t lo, V;
    rt_tp_vocab_range(p, tp->rank, &lo, &V);
    for (int64_t n = 0; n < N; n++) {
        for (int64_t v = 0; v < V; v++)
            dlogits[n * V + v] += scale * probs[n * V + v];
        const int64_t t = (int64_t)targets[n] - lo;
        if (t >= 0 && t < V) dlogits[n * V + t] -= scale;
    }
}

/* ---- shard -> full model ------------------------------------------------------------- */

/* Element k of a tp shard of the tensors t[0..n) (laid out one after another,
 * each split by its rule), as an index of the whole tensors; -1 past them. */
static int64_t tensors_full(const rt_layer_tensor *t, int n, int64_t tp, int64_t rank, int64_t k) {
    int64_t full = 0;
    for (int i = 0; i < n; i++) {
        int64_t R, C;
        rt_layer_tensor_shard(&t[i], tp, &R, &C);
        if (k < R * C) {
            const int64_t r = k / C, c = k % C;
            if (t[i].how == RT_SPLIT_ROWS) return full + (rank * R + r) * t[i].cols + c;
            if (t[i].how == RT_SPLIT_COLS) return full + r * t[i].cols + rank * C + c;
            return full + k;
        }
        k -= R * C;
        full += t[i].rows * t[i].cols;
    }
    return -1;
}

int64_t rt_tp_full_index(const program *p, const prog_role *r, int ep_rank, int64_t i) {
    const int64_t h = p->hidden, V = p->vocab, tp = p->tp, t = r->tp_rank;
    rt_layer_tensor layer[RT_LAYER_TENSORS];
    rt_model_layer_tensors(p, layer);
    for (int32_t u = 0; u < r->n_units; u++) {
        const prog_unit *un = &r->units[u];
        if (i < un->offset || i >= un->offset + un->elems) continue;
        int64_t k = i - un->offset;
        const int64_t g = rt_model_global_unit(p, un->name); /* rt_pipe_init checked it */
        int64_t base = rt_model_full_offset(p, g);
        if (g >= 1 && g <= p->layers) {
            rt_layer_layout held, full;
            rt_model_layer_layout(p, &held);
            if (held.expert_elems && k >= held.router) { /* a MoE layer's router, experts */
                rt_model_full_layout(p, &full);
                if (k < held.experts) return base + full.router + (k - held.router);
                return base + full.experts + ep_rank * held.experts_held * held.expert_elems +
                       (k - held.experts);
            }
            const int64_t j = tensors_full(layer, RT_LAYER_TENSORS, tp, t, k);
            return j < 0 ? -1 : base + j;
        }
        if (g > p->layers) { /* final_norm (replicated), then lm_head like the embedding */
            if (k < h) return base + k;
            k -= h, base += h;
        }
        const int64_t row = t * rt_tp_vocab_rows(p) + k / h; /* vocab-parallel rows */
        return row < V ? base + row * h + k % h : -1;
    }
    return -1;
}

void rt_tp_init_values(const program *p, const prog_role *r, int ep_rank, uint64_t seed,
                       int64_t first, int64_t n, float *out) {
    if (p->tp == 1 && p->pp == 1 && p->ep == 1) { /* the role holds the one-rank model */
        rt_model_init_values(p, seed, first, n, out);
        return;
    }
    for (int64_t k = 0; k < n; k++) {
        const int64_t j = rt_tp_full_index(p, r, ep_rank, first + k);
        if (j < 0)
            out[k] = 0.0f;
        else
            rt_model_init_values(p, seed, j, 1, out + k);
    }
}

void rt_tp_dump(const program *p, const prog_role *r, int ep_rank, const char *what, int rank,
                int64_t lo, const float *v, int64_t n) {
    const char *dir = getenv("PARASIM_DUMP_GRADS");
    if (!dir || !*dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%d.bin", dir, what, rank);
    FILE *f = fopen(path, "ab");
    if (!f) return; /* a test hook: the test notices the missing file */
    for (int64_t k = 0; k < n; k++) {
        const int64_t j = rt_tp_full_index(p, r, ep_rank, lo + k);
        if (j < 0) continue;
        fwrite(&j, sizeof j, 1, f);
        fwrite(&v[k], sizeof v[k], 1, f);
    }
    fclose(f);
}

/* ---- logit distillation (kern_kd.h over the vocabulary split of rt_tp_xent_fwd) ---- */

/* out[n][v] = exp(z[n][v] / T - mx[n]) over this rank's V columns (z's rows ldz
 * apart), with mx[n] the row maximum of z / T and sum[n] the sum of out's row,
 * both over every tp rank's columns (all-reduced): a vocab-parallel softmax at
 * temperature T before its normalisation. 0, or non-zero when a collective failed. */
static int tp_exp_rows(rt_tp *tp, float *out, const float *z, int64_t ldz, int64_t N, int64_t V,
                       float T, float *mx, float *sum) {
    for (int64_t n = 0; n < N; n++) {
        float m = -INFINITY, *q = out + n * V;
        for (int64_t v = 0; v < V; v++) {
            q[v] = z[n * ldz + v] / T;
            m = q[v] > m ? q[v] : m;
        }
        mx[n] = m;
    }
    int rc = rt_tp_all_reduce_max(tp, mx, N);
    for (int64_t n = 0; n < N && !rc; n++) {
        float s = 0, *q = out + n * V;
        for (int64_t v = 0; v < V; v++) s += q[v] = expf(q[v] - mx[n]);
        sum[n] = s;
    }
    return rc || rt_tp_all_reduce_f32(tp, sum, N);
}

int rt_tp_kd_teacher(rt_tp *tp, const program *p, float *qt, int32_t *idx, const float *zt,
                     int64_t ldz, int64_t N, const kern_kd_cfg *c) {
    int64_t lo, V;
    rt_tp_vocab_range(p, tp->rank, &lo, &V);
    const float T = c->T;
    const int64_t k = c->top_k;
    if (k > 0) { /* the teacher's whole rows, its global top-k, this rank's columns kept */
        const int64_t full = (int64_t)tp->size * N * ldz, Vall = p->vocab;
        float *all = rt_mem_alloc(tp->mem, MEM_WORKSPACE, (full + Vall) * 4), *row = all + full;
        if (!all) return tp_fail(tp, "distillation top-k");
        int rc = all_gather_dt(tp, all, zt, N * ldz, RT_F32);
        for (int64_t n = 0; n < N && !rc; n++) {
            for (int r = 0; r < tp->size; r++) {
                int64_t first, valid;
                rt_tp_vocab_range(p, r, &first, &valid);
                memcpy(row + first, all + ((int64_t)r * N + n) * ldz, (size_t)valid * 4);
            }
            tp->be->kd_teacher(qt + n * k, idx + n * k, row, 1, Vall, c);
            for (int64_t j = 0; j < k; j++) {
                const int64_t v = (int64_t)idx[n * k + j] - lo;
                if (v < 0 || v >= V) idx[n * k + j] = 0, qt[n * k + j] = 0.0f; /* another rank's */
                else idx[n * k + j] = (int32_t)v;
            }
        }
        rt_mem_free(tp->mem, all);
        return rc ? -1 : 0;
    }
    float *mx = rt_mem_alloc(tp->mem, MEM_WORKSPACE, 2 * N * 4), *sum = mx + N;
    if (!mx) return tp_fail(tp, "distillation");
    int rc = tp_exp_rows(tp, qt, zt, ldz, N, V, T, mx, sum);
    for (int64_t n = 0; n < N && !rc; n++)
        for (int64_t v = 0; v < V; v++) qt[n * V + v] /= sum[n];
    rt_mem_free(tp->mem, mx);
    return rc ? -1 : 0;
}

int rt_tp_kd_fwd(rt_tp *tp, const program *p, float *qs, float *losses, const float *zs,
                 const float *qt, const int32_t *idx, int64_t N, const kern_kd_cfg *c) {
    if (c->alpha == 1.0f) return 0; /* cross-entropy alone (losses as they are) */
    int64_t lo, V;
    rt_tp_vocab_range(p, tp->rank, &lo, &V);
    (void)lo;
    const float T = c->T;
    const int64_t k = c->top_k, W = k > 0 ? k : V;
    float *mx = rt_mem_alloc(tp->mem, MEM_WORKSPACE, 3 * N * 4), *sum = mx + N, *kl = sum + N;
    if (!mx) return tp_fail(tp, "distillation");
    int rc = tp_exp_rows(tp, qs, zs, V, N, V, T, mx, sum); /* qs = softmax(zs / T), unnormalised */
    for (int64_t n = 0; n < N && !rc; n++) { /* this rank's part of KL(qt || qs) */
        const double lse = (double)mx[n] + log((double)sum[n]);
        const float inv = 1.0f / sum[n];
        for (int64_t v = 0; v < V; v++) qs[n * V + v] *= inv;
        double part = 0.0;
        for (int64_t j = 0; j < W; j++) {
            const float t = qt[n * W + j];
            const int64_t v = k > 0 ? idx[n * k + j] : j;
            if (t > 0.0f) part += (double)t * (log((double)t) - ((double)(zs[n * V + v] / T) - lse));
        }
        kl[n] = (float)part;
    }
    rc = rc || rt_tp_all_reduce_f32(tp, kl, N);
    const double a = c->alpha, soft = (1.0 - a) * (double)T * (double)T;
    for (int64_t n = 0; n < N && !rc; n++)
        losses[n] = (float)(a * (double)losses[n] + soft * (kl[n] > 0 ? (double)kl[n] : 0.0));
    rt_mem_free(tp->mem, mx);
    return rc ? -1 : 0;
}
