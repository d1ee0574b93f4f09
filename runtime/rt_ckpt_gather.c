/* rt_ckpt_gather.c — gather the trained weights to rank 0 and write them (see
 * rt_ckpt_gather.h).
 *
 * Rank 0 receives the ranks' records one rank at a time (the backend's
 * point-to-point send / recv on the world group), so it holds the model once
 * (fp32), one byte of coverage per element and one rank's records at a time.
 * The records travel as 16-bit words (RT_BF16: the backend moves them
 * unchanged; no arithmetic touches them), in messages of at most 2^28 words
 * (the backend's counts are ints).
 */
#include "rt_ckpt_gather.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_group.h"
#include "rt_tp.h"

/* records per message: index and value messages of 2^18 and 2^17 words */
#define CHUNK ((int64_t)1 << 16)

void rt_ckpt_parts_add(rt_ckpt_parts *c, const program *p, const prog_role *r, int ep_rank,
                       int64_t lo, const float *v, int64_t n) {
    if (c->failed) return;
    if (c->n + n > c->cap) {
        int64_t cap = c->cap ? c->cap : 1024;
        while (cap < c->n + n) cap *= 2;
        int64_t *ix = realloc(c->index, (size_t)cap * sizeof *ix);
        if (ix) c->index = ix;
        float *vv = ix ? realloc(c->value, (size_t)cap * sizeof *vv) : NULL;
        if (vv) c->value = vv;
        if (!ix || !vv) {
            c->failed = 1;
            return;
        }
        c->cap = cap;
    }
    for (int64_t k = 0; k < n; k++) {
        const int64_t j = rt_tp_full_index(p, r, ep_rank, lo + k);
        if (j < 0) continue; /* vocabulary padding */
        c->index[c->n] = j;
        c->value[c->n++] = v[k];
    }
}

void rt_ckpt_parts_free(rt_ckpt_parts *c) {
    free(c->index);
    free(c->value);
    memset(c, 0, sizeof *c);
}

void rt_ckpt_model_of(const program *p, rt_ckpt_model *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->model, sizeof m->model, "%s", p->model_name);
    m->layers = p->layers, m->hidden = p->hidden, m->heads = p->heads;
    m->kv_heads = p->kv_heads, m->head_dim = p->head_dim, m->ffn_hidden = p->ffn_hidden;
    m->vocab = p->vocab, m->seq_len = p->seq;
    m->norm_eps = p->norm_eps, m->rope_theta = p->rope_theta;
    m->steps = p->steps;
}

/* bytes (even) as 16-bit words */
static int send_words(const rt_backend *be, rt_group *g, const void *buf, int64_t bytes) {
    return be->send(g, buf, bytes / 2, RT_BF16, 0);
}
static int recv_words(const rt_backend *be, rt_group *g, void *buf, int64_t bytes, int from) {
    return be->recv(g, buf, bytes / 2, RT_BF16, from);
}

typedef struct {
    const rt_ckpt_model *m;
    float *data;
    unsigned char *have; /* 0: not yet; 1: seen */
    int64_t elems;
} assembly;

/* Place rank q's n records; -1 with err at the first conflicting one. */
static int place(assembly *a, int q, const int64_t *ix, const float *v, int64_t n,
                 const char *path, ps_err *err) {
    for (int64_t k = 0; k < n; k++) {
        const int64_t j = ix[k];
        if (j < 0 || j >= a->elems)
            return ps_err_set(err, "%s: rank %d holds weight %lld, outside the model's %lld "
                                   "(the runtime's layout and the checkpoint's disagree)",
                              path, q, (long long)j, (long long)a->elems);
        if (a->have[j] && memcmp(&a->data[j], &v[k], sizeof v[k])) {
            char where[160];
            rt_ckpt_element_name(a->m, j, where, sizeof where);
            return ps_err_set(err, "%s: weight %lld (%s) differs between the ranks that hold "
                                   "it: %.9g on rank %d, %.9g on an earlier rank (replicas "
                                   "diverged)", path, (long long)j, where, (double)v[k], q,
                              (double)a->data[j]);
        }
        a->data[j] = v[k];
        a->have[j] = 1;
    }
    return 0;
}

/* Rank 0: receive every rank's records (always all of them: a sender blocks
 * until its messages are taken), check, write. 0, 1 with err (a check or the
 * write failed: the others still agree), -1 when receiving failed. */
static int gather_root(const rt_ckpt_parts *c, const program *p, const rt_backend *be,
                       rt_group *world, const char *path, ps_err *err) {
    rt_ckpt ck;
    rt_ckpt_model_of(p, &ck.m);
    rt_ckpt_layout l;
    rt_ckpt_layout_of(&ck.m, &l);
    ck.elems = l.elems;
    ck.data = calloc((size_t)l.elems, sizeof *ck.data);
    assembly a = {&ck.m, ck.data, calloc((size_t)l.elems, 1), l.elems};
    int64_t *ix = malloc(CHUNK * sizeof *ix);
    float *v = malloc(CHUNK * sizeof *v);
    int rc = 0;
    if (!ix || !v) {
        free(ix), free(v), free(ck.data), free(a.have);
        return ps_err_set(err, "%s: out of host memory for the receive buffers", path);
    }
    if (!ck.data || !a.have)
        rc = ps_err_set(err, "%s: out of host memory for the %lld weights", path,
                        (long long)l.elems);
    if (!rc && c->failed)
        rc = ps_err_set(err, "%s: rank 0 ran out of host memory collecting its weights", path);
    if (!rc) rc = place(&a, 0, c->index, c->value, c->n, path, err);
    for (int q = 1; q < world->size; q++) {
        int64_t n = 0;
        int io = recv_words(be, world, &n, sizeof n, q);
        if (!io && n < 0 && !rc)
            rc = ps_err_set(err, "%s: rank %d ran out of host memory collecting its weights",
                            path, q);
        for (int64_t at = 0; !io && at < n; at += CHUNK) {
            const int64_t k = n - at < CHUNK ? n - at : CHUNK;
            io = recv_words(be, world, ix, k * (int64_t)sizeof *ix, q) ||
                 recv_words(be, world, v, k * (int64_t)sizeof *v, q);
            if (!io && !rc) rc = place(&a, q, ix, v, k, path, err);
        }
        if (io) {
            free(ix), free(v), free(ck.data), free(a.have);
            return ps_err_set(err, "%s: receiving rank %d's weights failed: %s", path, q,
                              be->coll_error ? be->coll_error() : "");
        }
    }
    free(ix), free(v);
    if (!rc) {
        int64_t missing = 0, first = -1;
        for (int64_t j = 0; j < l.elems; j++)
            if (!a.have[j]) missing++, first = first < 0 ? j : first;
        if (missing) {
            char where[160];
            rt_ckpt_element_name(&ck.m, first, where, sizeof where);
            rc = ps_err_set(err, "%s: %lld of the %lld weights are held by no rank, the first "
                                 "%lld (%s): not written", path, (long long)missing,
                            (long long)l.elems, (long long)first, where);
        }
    }
    if (!rc) rc = rt_ckpt_write(path, &ck, err);
    free(ck.data);
    free(a.have);
    return rc ? 1 : 0;
}

int rt_ckpt_gather_write(const rt_ckpt_parts *c, const program *p, const rt_backend *be,
                         rt_group *world, const char *path, ps_err *err) {
    int rc = 0;
    if (world->rank == 0) {
        rc = gather_root(c, p, be, world, path, err);
        if (rc < 0) return -1;
    } else {
        const int64_t n = c->failed ? -1 : c->n;
        int io = send_words(be, world, &n, sizeof n);
        for (int64_t at = 0; !io && at < n; at += CHUNK) {
            const int64_t k = n - at < CHUNK ? n - at : CHUNK;
            io = send_words(be, world, c->index + at, k * (int64_t)sizeof *c->index) ||
                 send_words(be, world, c->value + at, k * (int64_t)sizeof *c->value);
        }
        if (io)
            return ps_err_set(err, "sending the weights to rank 0 failed: %s",
                              be->coll_error ? be->coll_error() : "");
    }
    return rt_world_agree_first(rc, err) ? 1 : 0;
}
