/* rt_pipe.c — pipeline stages in the runtime (see rt_pipe.h). */
#include "rt_pipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_group.h"

int rt_pipe_init(rt_pipe *pp, const program *p, const prog_role *r, const rt_backend *be,
                 rt_mem *mem, rt_group *group, ps_err *err) {
    memset(pp, 0, sizeof *pp);
    pp->be = be, pp->mem = mem, pp->group = group;
    pp->n_units = r->n_units;
    pp->global = calloc((size_t)r->n_units, sizeof *pp->global);
    if (!pp->global) return ps_err_set(err, "out of host memory");
    for (int32_t u = 0; u < r->n_units; u++) {
        const int32_t g = rt_model_global_unit(p, r->units[u].name);
        if (g < 0 || (u > 0 && g <= pp->global[u - 1]))
            return ps_err_set(err,
                              "unit %d is \"%s\"; the runtime's model has embed, layer.0 .. "
                              "layer.%lld and head, each once, in order",
                              (int)u, r->units[u].name, (long long)(p->layers - 1));
        pp->global[u] = g;
    }
    pp->has_embed = pp->global[0] == 0;
    pp->has_head = pp->global[r->n_units - 1] == p->layers + 1;
    return 0;
}

void rt_pipe_free(rt_pipe *pp) {
    for (int i = 0; i < pp->n_pend; i++)
        if (pp->pend[i].req && pp->be->wait(&pp->pend[i].req, 0) != 1) free(pp->pend[i].req);
    free(pp->pend);
    free(pp->global);
    memset(pp, 0, sizeof *pp);
}

/* Release the blocks of finished sends (block: wait for all). */
static int reap(rt_pipe *pp, int block, ps_err *err) {
    int k = 0, rc = 0;
    for (int i = 0; i < pp->n_pend; i++) {
        const int done = rc ? 0 : pp->be->wait(&pp->pend[i].req, block);
        if (done < 0)
            rc = ps_err_set(err,
                            "a pipeline send failed: %s -- a peer rank died, or its link "
                            "broke",
                            pp->be->coll_error ? pp->be->coll_error() : "");
        if (done == 1)
            rt_mem_free(pp->mem, pp->pend[i].block);
        else
            pp->pend[k++] = pp->pend[i];
    }
    pp->n_pend = k;
    return rc ? -1 : 0;
}

int rt_pipe_drain(rt_pipe *pp, ps_err *err) {
    return reap(pp, 1, err);
}

/* Messages between two stages match by tag: the micro-batch and the
 * direction (MPI keeps the order of equal tags between two ranks, and both
 * ends run a stage's chunks of one micro-batch in the same order). */
static int tag_of(const prog_op *o) {
    return (int)((o->mb % 16000) * 2 + (o->phase == COMM_BWD));
}

static int send(rt_pipe *pp, rt_model *m, const prog_op *o, int64_t n, ps_err *err) {
    const rt_backend *be = pp->be;
    void *block;
    if (o->phase == COMM_FWD) {
        block = m->hidden[o->mb];
        m->hidden[o->mb] = NULL;
    } else { /* the fp32 gradient stream travels in the activation dtype */
        float *f = m->dhidden[o->mb];
        block = f;
        if (f && m->act_dt != RT_F32) {
            block = rt_mem_alloc(pp->mem, MEM_WORKSPACE, n * 2);
            if (!block) return ps_err_set(err, "out of memory for the gradient to send");
            be->to_bf16(block, f, n);
            rt_mem_free(pp->mem, f);
        }
        m->dhidden[o->mb] = NULL;
    }
    if (!block)
        return ps_err_set(err,
                          "nothing to send: the %s of micro-batch %d is not computed (op "
                          "order)",
                          o->phase == COMM_FWD ? "output" : "input gradient", (int)o->mb);
    if (pp->n_pend == pp->cap_pend) {
        int cap = pp->cap_pend ? 2 * pp->cap_pend : 16;
        rt_pipe_pending *q = realloc(pp->pend, (size_t)cap * sizeof *q);
        if (!q) return rt_mem_free(pp->mem, block), ps_err_set(err, "out of host memory");
        pp->pend = q, pp->cap_pend = cap;
    }
    void *req = NULL;
    if (be->isend(pp->group, block, n, m->act_dt, o->peer, tag_of(o), &req)) {
        rt_mem_free(pp->mem, block);
        return ps_err_set(err, "the send failed: %s -- a peer rank died, or its link broke",
                          be->coll_error ? be->coll_error() : "");
    }
    pp->pend[pp->n_pend++] = (rt_pipe_pending){req, block};
    return 0;
}

static int recv(rt_pipe *pp, rt_model *m, const prog_op *o, int64_t n, ps_err *err) {
    const rt_backend *be = pp->be;
    void **slot = o->phase == COMM_FWD ? &m->hidden[o->mb] : (void **)&m->dhidden[o->mb];
    if (*slot)
        return ps_err_set(err, "micro-batch %d's %s is already here (op order)", (int)o->mb,
                          o->phase == COMM_FWD ? "input" : "output gradient");
    void *block = rt_mem_alloc(pp->mem, MEM_WORKSPACE, n * rt_dtype_bytes(m->act_dt));
    if (!block) return ps_err_set(err, "out of memory for the received tensor");
    if (be->recv_tag(pp->group, block, n, m->act_dt, o->peer, tag_of(o))) {
        rt_mem_free(pp->mem, block);
        return ps_err_set(err, "the receive failed: %s -- a peer rank died, or its link broke",
                          be->coll_error ? be->coll_error() : "");
    }
    if (o->phase == COMM_BWD && m->act_dt != RT_F32) { /* the gradient stream is fp32 */
        float *f = rt_mem_alloc(pp->mem, MEM_WORKSPACE, n * 4);
        if (!f) return rt_mem_free(pp->mem, block), ps_err_set(err, "out of memory");
        be->from_bf16(f, block, n);
        rt_mem_free(pp->mem, block);
        block = f;
    }
    *slot = block;
    return 0;
}

int rt_pipe_op(rt_pipe *pp, rt_model *m, const prog_op *o, int64_t *bytes, ps_err *err) {
    /* the hidden stream: this rank's tokens (a 1/tp sequence shard under sp) */
    const int64_t n = m->Nl * m->h, want = n * rt_dtype_bytes(m->act_dt);
    *bytes = 0;
    if (o->mb < 0 || o->mb >= m->micro_batches || o->peer < 0 || o->peer >= pp->group->size ||
        o->peer == pp->group->rank)
        return ps_err_set(err,
                          "expected a micro-batch of the step and another stage of the %d, "
                          "found mb %d, peer %d",
                          pp->group->size, (int)o->mb, (int)o->peer);
    if (o->bytes != want)
        return ps_err_set(err,
                          "the message is %lld bytes in the program; the runtime's model "
                          "sends %lld (program and runtime disagree)",
                          (long long)o->bytes, (long long)want);
    if (reap(pp, 0, err)) return -1;
    const int rc = o->kind == OP_SEND ? send(pp, m, o, n, err) : recv(pp, m, o, n, err);
    if (rc == 0) *bytes = want;
    return rc;
}
