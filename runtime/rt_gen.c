/* rt_gen.c — the inference engine's set-up, sampling and request loop (rt_gen.h).
 *
 * Scheduling (vLLM's continuous batching, simplified): while fewer than
 * `batch` sequences are live and requests wait, the next request is admitted
 * and prefilled alone, in chunks of at most prefill_chunk tokens, after taking
 * the blocks of its prompt the prefix cache already holds; then one decode
 * step runs every live sequence together (one token each). A sequence ends
 * after max_new sampled tokens; the last one is never fed back, so the cache
 * holds prompt + max_new - 1 tokens at the end. Under a KV budget
 * (--kv-budget; vLLM's gpu_memory_utilization -> num_gpu_blocks) a request is
 * admitted only when the blocks it will hold for its whole life, less those
 * the prefix cache gives it, fit beside what the live sequences hold and will
 * still take; otherwise it waits for one to finish (vLLM v0 admits on the
 * prompt's blocks and preempts when decode runs out; reserving the whole life
 * here means nothing is ever preempted or recomputed).
 *
 * Sampling: greedy (temperature 0) is the argmax of the logits; otherwise the
 * Gumbel-max trick (Gumbel 1954; Maddison et al. 2014): argmax_i logit_i / T +
 * G_i with G_i = -log(-log U_i) and U_i from a counter-based hash of (seed,
 * request, position, global vocabulary index), which draws exactly from
 * softmax(logit / T). Each tp rank takes the maximum over its vocabulary
 * columns, then an all-reduce of the maximum and one of the (negated) index
 * among the ranks that hold it picks the lowest such index: every tp degree
 * samples the same token.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "rt_gen.h"
#include "rt_hash.h"
#include "rt_tp.h"

int rt_gen_init(rt_gen *g, const rt_ckpt *ck, const rt_gen_cfg *cfg, const rt_backend *be,
                rt_mem *mem, rt_group *tp, int size, int rank, ps_err *err) {
    memset(g, 0, sizeof *g);
    if (rt_gen_check(&ck->m, cfg, size, err)) return -1;
    g->be = be, g->mem = mem, g->tp = size > 1 ? tp : NULL, g->tp_size = size, g->tp_rank = rank;
    g->cfg = *cfg, g->m = ck->m;
    g->cat_weights = cfg->teacher ? MEM_TEACHER : MEM_PARAMS;
    g->cat_scales = cfg->teacher ? MEM_TEACHER : RT_MEM_SCALES;
    g->cat_act = cfg->teacher ? MEM_WORKSPACE : MEM_ACTIVATIONS;
    g->cat_logits = cfg->teacher ? MEM_WORKSPACE : RT_MEM_LOGITS;
    const rt_ckpt_model *m = &ck->m;
    g->L = m->layers, g->h = m->hidden, g->H = m->heads / size, g->KVH = m->kv_heads / size;
    g->D = m->head_dim, g->f = m->ffn_hidden / size;
    g->Vr = rt_tp_vocab_split(m->vocab, size, rank, &g->vfirst, &g->vvalid);
    g->sdt = cfg->weights == RT_W_F32 ? RT_F32 : RT_BF16;
    const int64_t qw = g->H * g->D;
    g->cmax = g->h > qw ? g->h : qw;
    if (g->f > g->cmax) g->cmax = g->f;
    /* the dequantization buffer: the largest matrix multiplied from fp32 */
    if (rt_wscheme_dequant(cfg->weights)) {
        const int64_t sizes[4] = {qw * g->h, g->KVH * g->D * g->h, g->f * g->h, g->h * qw};
        for (int i = 0; i < 4; i++)
            if (sizes[i] > g->deq_elems) g->deq_elems = sizes[i];
    }
    if (g->sdt == RT_BF16 && g->Vr * g->h > g->deq_elems) g->deq_elems = g->Vr * g->h;
    rt_kv_init(&g->kv, mem, cfg->kv, g->L, g->KVH, g->D, cfg->block_size, cfg->prefix_cache);
    g->st.kv_block_bytes = g->kv.block_bytes;
    g->st.kv_budget_blocks = cfg->kv_budget_bytes / g->kv.block_bytes;
    if (rt_gen_load(g, ck, err)) {
        rt_gen_free(g);
        return -1;
    }
    return 0;
}

static void lin_free(rt_mem *mem, rt_gen_lin *l) {
    rt_mem_free(mem, l->w);
    rt_mem_free(mem, l->scale);
    rt_mem_free(mem, l->zero);
}

void rt_gen_free(rt_gen *g) {
    if (!g->mem) return;
    rt_kv_free(&g->kv);
    for (int64_t i = 0; g->layers && i < g->L; i++) {
        rt_mem_free(g->mem, g->layers[i].attn_norm);
        rt_mem_free(g->mem, g->layers[i].mlp_norm);
        for (int k = 0; k < RT_LINS; k++)
            lin_free(g->mem, &g->layers[i].lin[k]);
    }
    free(g->layers);
    rt_mem_free(g->mem, g->wte);
    rt_mem_free(g->mem, g->final_norm);
    rt_mem_free(g->mem, g->lm_head);
    memset(g, 0, sizeof *g);
}

/* U(0, 1) of (seed, request, position, vocabulary index), then Gumbel noise. */
static double gumbel(uint64_t seed, int64_t req, int64_t pos, int64_t idx) {
    uint64_t z = rt_mix64(seed ^ 0x67656e6572617465ULL);
    z = rt_mix64(z ^ (uint64_t)req);
    z = rt_mix64(z ^ (uint64_t)pos);
    z = rt_mix64(z ^ (uint64_t)idx);
    const double u = ((double)(z >> 11) + 0.5) * 0x1p-53;
    return -log(-log(u));
}

/* tokens[i] = the sample of logits row i (request req[i], next position pos[i]). */
static int sample(rt_gen *g, const float *logits, int64_t rows, const int64_t *req,
                  const int64_t *pos, int32_t *tokens, ps_err *err) {
    float *best = malloc((size_t)(2 * rows) * sizeof *best), *cand = best + rows;
    int64_t *arg = malloc((size_t)rows * sizeof *arg);
    if (!best || !arg) {
        free(best), free(arg);
        return ps_err_set(err, "out of host memory sampling");
    }
    const double T = g->cfg.temperature;
    for (int64_t i = 0; i < rows; i++) {
        const float *z = logits + i * g->Vr;
        float b = -INFINITY;
        int64_t a = g->vfirst;
        for (int64_t j = 0; j < g->vvalid; j++) {
            const float s = T > 0 ? (float)(z[j] / T + gumbel(g->cfg.seed, req[i], pos[i], g->vfirst + j))
                                  : z[j];
            if (s > b) b = s, a = g->vfirst + j;
        }
        best[i] = b, arg[i] = a;
    }
    int rc = 0;
    if (g->tp) {
        memcpy(cand, best, (size_t)rows * sizeof *cand);
        if (g->be->all_reduce_max(g->tp, best, rows)) rc = -1;
        for (int64_t i = 0; !rc && i < rows; i++)
            cand[i] = cand[i] == best[i] && g->vvalid ? -(float)arg[i] : -INFINITY;
        if (!rc && g->be->all_reduce_max(g->tp, cand, rows)) rc = -1;
        for (int64_t i = 0; !rc && i < rows; i++)
            arg[i] = (int64_t)-cand[i];
        if (rc) ps_err_set(err, "tp all-reduce of the samples failed: %s", g->be->coll_error());
    }
    for (int64_t i = 0; !rc && i < rows; i++)
        tokens[i] = (int32_t)arg[i];
    free(best), free(arg);
    return rc;
}

typedef struct {
    rt_gen_request *r;
    int64_t id, done; /* tokens generated so far */
    rt_kv_seq seq;
    int32_t last;     /* the token to feed next */
} live_seq;

static void kv_snapshot(rt_gen *g, const live_seq *live, int64_t n_live) {
    if (g->cfg.no_cache || g->kv.live < g->st.kv_blocks) return;
    int64_t logical = 0;
    for (int64_t i = 0; i < n_live; i++)
        logical += live[i].seq.n_blocks;
    g->st.kv_blocks = g->kv.live, g->st.kv_logical_blocks = logical;
    g->st.kv_shared_blocks = rt_kv_shared_blocks(&g->kv);
}

/* Forward the given segments and sample the last row of each. */
static int step(rt_gen *g, const int32_t *tok, int64_t n, const rt_gen_seg *segs, int64_t n_segs,
                const int64_t *req, int32_t *out, ps_err *err) {
    int64_t *rows = malloc((size_t)(2 * n_segs) * sizeof *rows), *pos = rows + n_segs;
    if (!rows) return ps_err_set(err, "out of host memory");
    for (int64_t s = 0; s < n_segs; s++)
        rows[s] = segs[s].row + segs[s].n - 1, pos[s] = segs[s].p0 + segs[s].n;
    float *logits = NULL;
    int rc = rt_gen_fwd(g, tok, n, segs, n_segs, rows, n_segs, &logits, err);
    if (!rc) rc = sample(g, logits, n_segs, req, pos, out, err);
    rt_mem_free(g->mem, logits);
    free(rows);
    return rc;
}

/* Prefill sequence s (cache mode): take its cached blocks, then chunks. */
static int prefill(rt_gen *g, live_seq *s, ps_err *err) {
    const rt_gen_request *r = s->r;
    const int64_t start = rt_kv_seq_begin(&g->kv, &s->seq, r->tokens, r->n);
    if (start < 0) return ps_err_set(err, "out of memory taking cached KV blocks");
    g->st.cached_tokens += start;
    const double t0 = g->be->now_seconds();
    for (int64_t p = start; p < r->n;) {
        const int64_t n = r->n - p < g->cfg.prefill_chunk ? r->n - p : g->cfg.prefill_chunk;
        if (rt_kv_seq_reserve(&g->kv, &s->seq, n))
            return ps_err_set(err, "out of memory for the KV cache (%lld blocks of %lld bytes)",
                              (long long)g->kv.live, (long long)g->kv.block_bytes);
        const rt_gen_seg seg = {.seq = &s->seq, .row = 0, .p0 = p, .n = n};
        if (p + n == r->n) {
            if (step(g, r->tokens + p, n, &seg, 1, &s->id, &s->last, err)) return -1;
        } else {
            float *logits = NULL;
            const int64_t none = 0;
            if (rt_gen_fwd(g, r->tokens + p, n, &seg, 1, &none, 0, &logits, err)) return -1;
            rt_mem_free(g->mem, logits);
        }
        if (rt_kv_seq_commit(&g->kv, &s->seq, r->tokens + p, n))
            return ps_err_set(err, "out of host memory for the prefix cache");
        p += n;
        g->st.prefill_tokens += n;
    }
    g->st.prefill_s += g->be->now_seconds() - t0;
    r->out[0] = s->last;
    s->done = 1;
    return 0;
}

/* No cache: recompute every live sequence whole (prompt + generated) and sample. */
static int step_no_cache(rt_gen *g, live_seq *live, int64_t n_live, bool first, ps_err *err) {
    int64_t n = 0;
    for (int64_t i = 0; i < n_live; i++)
        n += live[i].r->n + live[i].done;
    int32_t *tok = malloc((size_t)n * sizeof *tok), *out = malloc((size_t)n_live * sizeof *out);
    rt_gen_seg *segs = malloc((size_t)n_live * sizeof *segs);
    int64_t *req = malloc((size_t)n_live * sizeof *req);
    int rc = -1;
    if (!tok || !out || !segs || !req) {
        ps_err_set(err, "out of host memory");
        goto done;
    }
    for (int64_t i = 0, row = 0; i < n_live; i++) {
        const live_seq *s = &live[i];
        memcpy(tok + row, s->r->tokens, (size_t)s->r->n * sizeof *tok);
        memcpy(tok + row + s->r->n, s->r->out, (size_t)s->done * sizeof *tok);
        segs[i] = (rt_gen_seg){.seq = NULL, .row = row, .p0 = 0, .n = s->r->n + s->done};
        req[i] = s->id;
        row += segs[i].n;
    }
    const double t0 = g->be->now_seconds();
    if ((rc = step(g, tok, n, segs, n_live, req, out, err))) goto done;
    if (first) g->st.prefill_s += g->be->now_seconds() - t0, g->st.prefill_tokens += n;
    else g->st.decode_s += g->be->now_seconds() - t0, g->st.decode_tokens += n_live;
    for (int64_t i = 0; i < n_live; i++)
        live[i].r->out[live[i].done++] = out[i];
done:
    free(tok), free(out), free(segs), free(req);
    return rc;
}

/* One decode step of every live sequence (cache mode). */
static int decode(rt_gen *g, live_seq *live, int64_t n_live, ps_err *err) {
    int32_t *tok = malloc((size_t)(2 * n_live) * sizeof *tok), *out = tok + n_live;
    rt_gen_seg *segs = malloc((size_t)n_live * sizeof *segs);
    int64_t *req = malloc((size_t)n_live * sizeof *req);
    int rc = -1;
    if (!tok || !segs || !req) {
        ps_err_set(err, "out of host memory");
        goto done;
    }
    for (int64_t i = 0; i < n_live; i++) {
        live_seq *s = &live[i];
        if (rt_kv_seq_reserve(&g->kv, &s->seq, 1)) {
            ps_err_set(err, "out of memory for the KV cache (%lld blocks of %lld bytes)",
                       (long long)g->kv.live, (long long)g->kv.block_bytes);
            goto done;
        }
        tok[i] = s->last, req[i] = s->id;
        segs[i] = (rt_gen_seg){.seq = &s->seq, .row = i, .p0 = s->seq.len, .n = 1};
    }
    const double t0 = g->be->now_seconds();
    if ((rc = step(g, tok, n_live, segs, n_live, req, out, err))) goto done;
    g->st.decode_s += g->be->now_seconds() - t0, g->st.decode_tokens += n_live;
    for (int64_t i = 0; i < n_live && !rc; i++) {
        live_seq *s = &live[i];
        if (rt_kv_seq_commit(&g->kv, &s->seq, &tok[i], 1))
            rc = ps_err_set(err, "out of host memory for the prefix cache");
        s->last = s->r->out[s->done++] = out[i];
    }
done:
    free(tok), free(segs), free(req);
    return rc;
}

/* End the finished sequences, keeping the order of the rest; the new count. */
static int64_t reap(rt_gen *g, live_seq *live, int64_t n_live) {
    int64_t k = 0;
    for (int64_t i = 0; i < n_live; i++) {
        if (live[i].done >= live[i].r->max_new) rt_kv_seq_end(&g->kv, &live[i].seq);
        else live[k++] = live[i];
    }
    return k;
}

int64_t rt_gen_request_blocks(const rt_gen *g, const rt_gen_request *r) {
    const int64_t bs = g->cfg.block_size;
    return (r->n + r->max_new - 1 + bs - 1) / bs;
}

/* Under a KV budget: do the blocks request r will hold for its life (less its
 * prefix-cache hits now) fit beside those held now and still to come of the
 * live ones? Blocks are only ever freed or shared after this (never taken
 * beyond a sequence's life), so the cache stays within the budget. */
static bool kv_admits(const rt_gen *g, const live_seq *live, int64_t n_live, const rt_gen_request *r) {
    if (!g->cfg.kv_budget_bytes || g->cfg.no_cache) return true;
    int64_t blocks = g->kv.live + rt_gen_request_blocks(g, r) -
                     rt_kv_prefix_hits(&g->kv, r->tokens, r->n);
    for (int64_t i = 0; i < n_live; i++)
        blocks += rt_gen_request_blocks(g, live[i].r) - live[i].seq.n_blocks;
    return blocks <= g->st.kv_budget_blocks;
}

/* A request that alone needs more blocks than the budget could never start. */
static int kv_budget_check(const rt_gen *g, const rt_gen_request *req, int64_t n_req, ps_err *err) {
    if (!g->cfg.kv_budget_bytes || g->cfg.no_cache) return 0;
    for (int64_t i = 0; i < n_req; i++) {
        const int64_t need = rt_gen_request_blocks(g, &req[i]);
        if (need > g->st.kv_budget_blocks)
            return ps_err_set(err, "request %lld: expected at most the KV budget's %lld blocks "
                              "(%lld bytes in blocks of %lld tokens, %lld bytes each), found %lld "
                              "blocks (%lld prompt + %lld new - 1 tokens, %lld bytes): raise the "
                              "budget or shorten the request", (long long)i,
                              (long long)g->st.kv_budget_blocks, (long long)g->cfg.kv_budget_bytes,
                              (long long)g->cfg.block_size, (long long)g->kv.block_bytes,
                              (long long)need, (long long)req[i].n, (long long)req[i].max_new,
                              (long long)(need * g->kv.block_bytes));
    }
    return 0;
}

int rt_gen_run(rt_gen *g, rt_gen_request *req, int64_t n_req, ps_err *err) {
    if (kv_budget_check(g, req, n_req, err)) return -1;
    live_seq *live = calloc((size_t)(g->cfg.batch + 1), sizeof *live);
    if (!live) return ps_err_set(err, "out of host memory");
    int64_t n_live = 0, next = 0;
    int rc = 0;
    while (!rc && (next < n_req || n_live > 0)) {
        int64_t admitted = 0;
        while (!rc && n_live < g->cfg.batch && next < n_req &&
               kv_admits(g, live, n_live, &req[next])) {
            live_seq *s = &live[n_live++];
            *s = (live_seq){.r = &req[next], .id = next};
            next++, admitted++;
            if (!g->cfg.no_cache) rc = prefill(g, s, err);
        }
        if (n_live > g->st.max_live) g->st.max_live = n_live;
        if (!rc && !n_live && next < n_req) /* kv_budget_check makes this unreachable */
            rc = ps_err_set(err, "request %lld does not fit the KV budget of an empty cache",
                            (long long)next);
        if (!rc && g->cfg.no_cache) {
            /* the admitted ones take their first token, the others one more */
            if (admitted) rc = step_no_cache(g, live + n_live - admitted, admitted, true, err);
            if (!rc && n_live > admitted) rc = step_no_cache(g, live, n_live - admitted, false, err);
        } else if (!rc) {
            kv_snapshot(g, live, n_live);
            n_live = reap(g, live, n_live);
            if (n_live) rc = decode(g, live, n_live, err);
            if (!rc) kv_snapshot(g, live, n_live);
        }
        n_live = reap(g, live, n_live);
    }
    for (int64_t i = 0; i < n_live; i++)
        rt_kv_seq_end(&g->kv, &live[i].seq);
    free(live);
    return rc;
}
