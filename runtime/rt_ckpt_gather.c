/* rt_ckpt_gather.c — gather the trained weights (and AdamW's states) to rank 0
 * and write them (see rt_ckpt_gather.h).
 *
 * Rank 0 receives the ranks' records one rank at a time (the backend's
 * point-to-point send / recv on the world group), so it holds the model once
 * (fp32, one to three arrays), one byte of coverage per element and one rank's
 * records at a time.
 * The records travel as 16-bit words (RT_BF16: the backend moves them
 * unchanged; no arithmetic touches them), in messages of at most 2^28 words
 * (the backend's counts are ints).
 */
#include "rt_ckpt_gather.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/dtype.h"
#include "rt_group.h"
#include "rt_tp.h"

/* records per message: index messages of 2^18 words, value messages of 2^17
 * words per array */
#define CHUNK ((int64_t)1 << 16)

void rt_ckpt_parts_add(rt_ckpt_parts *c, const program *p, const prog_role *r, int ep_rank,
                       int64_t lo, int64_t n, const float *w, const float *m, const float *v) {
    if (c->failed) return;
    const int k = c->arrays;
    if (c->n + n > c->cap) {
        int64_t cap = c->cap ? c->cap : 1024;
        while (cap < c->n + n) cap *= 2;
        int64_t *ix = realloc(c->index, (size_t)cap * sizeof *ix);
        if (ix) c->index = ix;
        float *vv = ix ? realloc(c->value, (size_t)(cap * k) * sizeof *vv) : NULL;
        if (vv) c->value = vv;
        if (!ix || !vv) {
            c->failed = 1;
            return;
        }
        c->cap = cap;
    }
    for (int64_t e = 0; e < n; e++) {
        const int64_t j = rt_tp_full_index(p, r, ep_rank, lo + e);
        if (j < 0) continue; /* vocabulary padding */
        c->index[c->n] = j;
        float *to = c->value + c->n++ * k;
        to[0] = w[e];
        if (k == 3) to[1] = m[e], to[2] = v[e];
    }
}

void rt_ckpt_parts_clear(rt_ckpt_parts *c) {
    c->n = 0;
    c->failed = 0;
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

void rt_ckpt_train_of(const program *p, rt_ckpt_train *t) {
    memset(t, 0, sizeof *t);
    t->seed = (int64_t)p->seed, t->global_batch = p->global_batch;
    snprintf(t->optimizer, sizeof t->optimizer, "adamw");
    t->lr = p->lr, t->beta1 = p->beta1, t->beta2 = p->beta2, t->eps = p->eps;
    t->weight_decay = p->weight_decay;
    snprintf(t->precision, sizeof t->precision, "params=%s grads=%s master=%s optimizer=%s",
             dtype_names[p->precision.params], dtype_names[p->precision.grads],
             dtype_names[p->precision.master], dtype_names[p->precision.optimizer]);
}

int64_t rt_ckpt_resume_steps(const rt_ckpt *ck, int64_t total_steps, const char *path,
                             ps_err *err) {
    if (!ck->has_train)
        return ps_err_set(err, "--resume %s: a weights-only checkpoint (version 1, written by "
                               "--save-weights): it holds no optimizer states (AdamW m and v), "
                               "so a run cannot resume from it; save one with run --save", path);
    if (ck->m.steps >= total_steps)
        return ps_err_set(err, "--resume %s: the checkpoint has %lld steps done, the plan trains "
                               "%lld in all (train.steps or --steps counts every step of the "
                               "training, as Megatron-LM's train_iters): nothing is left to "
                               "run; raise it to train on", path, (long long)ck->m.steps,
                          (long long)total_steps);
    return total_steps - ck->m.steps;
}

/* "%s: field: the checkpoint has A, the plan has B" for the first differing field. */
static int differs(ps_err *err, const char *path, const char *name, const char *file,
                   const char *plan) {
    return ps_err_set(err, "--resume %s: field \"%s\": the checkpoint has %s, the plan has %s "
                           "(a resumed run continues the same training: the model's shape, "
                           "seed, batch and optimizer settings must match)", path, name, file,
                      plan);
}

int rt_ckpt_check_resume(const rt_ckpt *ck, const program *p, const char *path, ps_err *err) {
    rt_ckpt_model m;
    rt_ckpt_train t;
    rt_ckpt_model_of(p, &m);
    rt_ckpt_train_of(p, &t);
    char a[96], b[96];
    const struct {
        const char *name;
        int64_t file, plan;
    } ints[] = {{"layers", ck->m.layers, m.layers},
                {"hidden", ck->m.hidden, m.hidden},
                {"heads", ck->m.heads, m.heads},
                {"kv_heads", ck->m.kv_heads, m.kv_heads},
                {"head_dim", ck->m.head_dim, m.head_dim},
                {"ffn_hidden", ck->m.ffn_hidden, m.ffn_hidden},
                {"vocab", ck->m.vocab, m.vocab},
                {"seq_len", ck->m.seq_len, m.seq_len},
                {"seed", ck->train.seed, t.seed},
                {"global_batch", ck->train.global_batch, t.global_batch}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (ints[i].file != ints[i].plan) {
            snprintf(a, sizeof a, "%lld", (long long)ints[i].file);
            snprintf(b, sizeof b, "%lld", (long long)ints[i].plan);
            return differs(err, path, ints[i].name, a, b);
        }
    const struct {
        const char *name;
        double file, plan;
    } reals[] = {{"norm_eps", ck->m.norm_eps, m.norm_eps},
                 {"rope_theta", ck->m.rope_theta, m.rope_theta},
                 {"lr", ck->train.lr, t.lr},
                 {"beta1", ck->train.beta1, t.beta1},
                 {"beta2", ck->train.beta2, t.beta2},
                 {"eps", ck->train.eps, t.eps},
                 {"weight_decay", ck->train.weight_decay, t.weight_decay}};
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++)
        if (reals[i].file != reals[i].plan) {
            snprintf(a, sizeof a, "%.17g", reals[i].file);
            snprintf(b, sizeof b, "%.17g", reals[i].plan);
            return differs(err, path, reals[i].name, a, b);
        }
    if (strcmp(ck->train.optimizer, t.optimizer)) {
        snprintf(a, sizeof a, "\"%s\"", ck->train.optimizer);
        snprintf(b, sizeof b, "\"%s\"", t.optimizer);
        return differs(err, path, "optimizer", a, b);
    }
    if (strcmp(ck->train.precision, t.precision)) {
        snprintf(a, sizeof a, "\"%s\"", ck->train.precision);
        snprintf(b, sizeof b, "\"%s\"", t.precision);
        return differs(err, path, "precision", a, b);
    }
    return 0;
}

int rt_ckpt_check_teacher(const rt_ckpt *ck, const program *p, ps_err *err) {
    const prog_distill *d = &p->distill;
    const struct {
        const char *name;
        double file, plan;
    } f[] = {{"layers", (double)ck->m.layers, (double)d->layers},
             {"hidden", (double)ck->m.hidden, (double)d->hidden},
             {"heads", (double)ck->m.heads, (double)d->heads},
             {"kv_heads", (double)ck->m.kv_heads, (double)d->kv_heads},
             {"head_dim", (double)ck->m.head_dim, (double)d->head_dim},
             {"ffn_hidden", (double)ck->m.ffn_hidden, (double)d->ffn_hidden},
             {"vocab", (double)ck->m.vocab, (double)d->vocab},
             {"norm_eps", ck->m.norm_eps, d->norm_eps},
             {"rope_theta", ck->m.rope_theta, d->rope_theta}};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (f[i].file != f[i].plan)
            return ps_err_set(err, "distill.checkpoint %s: field \"%s\": the checkpoint has %.17g, "
                                   "the plan's teacher (%s) has %.17g (the teacher's weights must "
                                   "be of the model distill.teacher names)",
                              d->checkpoint, f[i].name, f[i].file, d->teacher_name, f[i].plan);
    return 0;
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
    float *data; /* [arrays][elems] */
    unsigned char *have; /* 0: not yet; 1: seen */
    int64_t elems;
    int arrays;
} assembly;

/* Place rank q's n records; -1 with err at the first conflicting one. */
static int place(assembly *a, int q, const int64_t *ix, const float *v, int64_t n,
                 const char *path, ps_err *err) {
    static const char *const what[] = {"weight", "adam_m value", "adam_v value"};
    for (int64_t k = 0; k < n; k++) {
        const int64_t j = ix[k];
        if (j < 0 || j >= a->elems)
            return ps_err_set(err, "%s: rank %d holds weight %lld, outside the model's %lld "
                                   "(the runtime's layout and the checkpoint's disagree)",
                              path, q, (long long)j, (long long)a->elems);
        for (int t = 0; t < a->arrays; t++) {
            float *at = &a->data[t * a->elems + j];
            const float *from = &v[k * a->arrays + t];
            if (a->have[j] && memcmp(at, from, sizeof *at)) {
                char where[160];
                rt_ckpt_element_name(a->m, j, where, sizeof where);
                return ps_err_set(err, "%s: %s %lld (%s) differs between the ranks that hold "
                                       "it: %.9g on rank %d, %.9g on an earlier rank (replicas "
                                       "diverged)", path, what[t], (long long)j, where,
                                  (double)*from, q, (double)*at);
            }
            *at = *from;
        }
        a->have[j] = 1;
    }
    return 0;
}

/* Rank 0: receive every rank's records (always all of them: a sender blocks
 * until its messages are taken), check, write. 0, 1 with err (a check or the
 * write failed: the others still agree), -1 when receiving failed. */
static int gather_root(const rt_ckpt_parts *c, const program *p, int64_t steps_done,
                       const rt_backend *be, rt_group *world, const char *state_path,
                       const char *weights_path, ps_err *err) {
    const char *path = state_path ? state_path : weights_path; /* for messages */
    const int arrays = c->arrays;
    rt_ckpt ck;
    memset(&ck, 0, sizeof ck);
    rt_ckpt_model_of(p, &ck.m);
    ck.m.steps = steps_done;
    rt_ckpt_layout l;
    rt_ckpt_layout_of(&ck.m, &l);
    ck.elems = l.elems;
    ck.data = calloc((size_t)(arrays * l.elems), sizeof *ck.data);
    assembly a = {&ck.m, ck.data, calloc((size_t)l.elems, 1), l.elems, arrays};
    int64_t *ix = malloc(CHUNK * sizeof *ix);
    float *v = malloc(CHUNK * arrays * sizeof *v);
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
                 recv_words(be, world, v, k * arrays * (int64_t)sizeof *v, q);
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
    if (!rc && state_path && arrays == 3) {
        ck.has_train = 1;
        rt_ckpt_train_of(p, &ck.train);
        ck.adam_m = ck.data + l.elems, ck.adam_v = ck.data + 2 * l.elems;
        rc = rt_ckpt_write(state_path, &ck, err);
        ck.has_train = 0;
    }
    if (!rc && weights_path) rc = rt_ckpt_write(weights_path, &ck, err); /* the weights alone */
    free(ck.data);
    free(a.have);
    return rc ? 1 : 0;
}

int rt_ckpt_gather_write(const rt_ckpt_parts *c, const program *p, int64_t steps_done,
                         const rt_backend *be, rt_group *world, const char *state_path,
                         const char *weights_path, ps_err *err) {
    int rc = 0;
    if (world->rank == 0) {
        rc = gather_root(c, p, steps_done, be, world, state_path, weights_path, err);
        if (rc < 0) return -1;
    } else {
        const int64_t n = c->failed ? -1 : c->n;
        int io = send_words(be, world, &n, sizeof n);
        for (int64_t at = 0; !io && at < n; at += CHUNK) {
            const int64_t k = n - at < CHUNK ? n - at : CHUNK;
            io = send_words(be, world, c->index + at, k * (int64_t)sizeof *c->index) ||
                 send_words(be, world, c->value + at * c->arrays,
                            k * c->arrays * (int64_t)sizeof *c->value);
        }
        if (io)
            return ps_err_set(err, "sending the weights to rank 0 failed: %s",
                              be->coll_error ? be->coll_error() : "");
    }
    return rt_world_agree_first(rc, err) ? 1 : 0;
}
