/* program_check.c — the structural invariants of an execution plan that the
 * replay and the runtime rely on (program.h, docs/plan-format.md §1 "What the
 * loader checks"). The rules follow from what training needs, not from the
 * emitter's choices: a buffer exists before it is used, with the size the
 * header implies; every micro-batch of a step runs the forward of each unit in
 * order and then the backward in reverse; the gradients are zeroed once
 * before they are written and reduced, every element as the ZeRO stage
 * requires, before the one optimizer step, which updates all the rank holds;
 * parameters the optimizer changed on a shard are gathered before anyone
 * reads them. Which collectives, bucket sizes or op interleavings an emitter
 * chooses is left free.
 *
 * One pass over each role's ops; the bookkeeping is bounded by the op count
 * (a program shorter than steps x micro-batches x 2 x units is refused first).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "program/program_int.h"

/* Ranges [lo, hi) of the flat space, with the op that covered each. */
typedef struct {
    int64_t lo, hi;
    int32_t op;
} span;

typedef struct {
    span *v;
    int32_t n, cap;
} spans;

typedef struct {
    const program *p;
    const prog_role *r;
    int32_t U;
    int64_t d, mbs;
    int64_t held[BUF_COUNT]; /* elements dp rank 0 holds of each flat buffer */
    bool grads_whole, params_whole, opt_whole, need_param_gather;
    ps_err *err;
    int32_t bad_op;
    bool oom;
    /* buffers */
    int64_t *live;            /* [BUF_COUNT x (U + 1)]: bytes, -1 when not allocated */
    bool state_used[BUF_COUNT];
    bool *ug_dirty;           /* unit_grads[u] holds a backward's gradient not yet reduced */
    spans *ug_spans;          /* its reduce-scatters so far */
    bool *up_filled;          /* unit_params[u] gathered since its alloc */
    spans *up_spans;
    int bwd_dst;              /* the program's backward destination, -1 before the first */
    bool params_stale;        /* the optimizer changed a shard; params not gathered yet */
    spans pgather;
    /* the current step */
    int32_t step;
    int32_t *pos;             /* [mbs]: 0..U-1 next forward, U..2U-1 next backward, 2U done */
    int64_t *saved;           /* [mbs x U]: what a forward saved */
    int32_t *done_bwd;        /* [U]: micro-batches whose backward of u ran */
    bool *w_pending;          /* [mbs x U]: an input-gradient part waits for its weight part */
    int64_t n_w_pending;
    int32_t complete;         /* units [complete, U) have every micro-batch's backward */
    int n_zero_grad, n_optim;
    bool any_bwd;
    int64_t byte_sum;         /* of every byte count on the ops so far */
    spans red;                /* in-place gradient reductions of the step */
} chk;

static int bad(chk *c, int32_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "bwd layer.3 (step 0, mb 1): " + the message; op i is remembered. */
static int bad(chk *c, int32_t i, const char *fmt, ...) {
    char what[PS_ERR_MSG_MAX - 128] = "", head[128] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (i >= 0) {
        const prog_op *o = &c->r->ops[i];
        const bool mem = o->kind == OP_ALLOC || o->kind == OP_FREE;
        const bool unit = o->unit >= 0 && o->unit < c->U;
        char mb[24] = "";
        if (o->mb >= 0) snprintf(mb, sizeof mb, ", mb %d", (int)o->mb);
        snprintf(head, sizeof head, "%s%s%s%s%s (step %d%s): ",
                 (unsigned)o->kind < OP_KIND_COUNT ? prog_kind_names[o->kind] : "?",
                 mem ? " " : "", mem && (unsigned)o->buf < BUF_COUNT ? prog_buf_names[o->buf] : "",
                 unit ? " " : "", unit ? c->r->units[o->unit].name : "", (int)o->step, mb);
    }
    c->bad_op = i;
    return ps_err_set(c->err, "%s%s", head, what);
}

/* ---- ranges ---------------------------------------------------------------------- */

static int spans_add(chk *c, spans *s, int64_t lo, int64_t hi, int32_t op) {
    if (s->n == s->cap) {
        int32_t cap = s->cap ? 2 * s->cap : 16;
        span *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v) {
            c->oom = true;
            return ps_err_set(c->err, "out of memory");
        }
        s->v = v, s->cap = cap;
    }
    s->v[s->n++] = (span){lo, hi, op};
    return 0;
}

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->lo != y->lo) return x->lo < y->lo ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

/* Do the spans cover [lo, hi) exactly once? 0 if so; else 1 with the first
 * gap [*g0, *g1), or with *twice the op that covers an element again. */
static int spans_tile(spans *s, int64_t lo, int64_t hi, int64_t *g0, int64_t *g1,
                      int32_t *twice) {
    int64_t at = lo;
    int32_t at_op = -1;
    *twice = -1;
    if (s->n > 1) qsort(s->v, (size_t)s->n, sizeof *s->v, span_cmp);
    for (int32_t k = 0; k < s->n; k++) {
        const span *x = &s->v[k];
        if (x->lo < at) {
            *twice = x->op > at_op ? x->op : at_op;
            return 1;
        }
        if (x->lo > at) break;
        at = x->hi, at_op = x->op;
    }
    if (at >= hi) return 0;
    *g0 = at;
    *g1 = hi;
    for (int32_t k = 0; k < s->n; k++)
        if (s->v[k].lo > at && s->v[k].lo < *g1) *g1 = s->v[k].lo;
    return 1;
}

/* The unit holding flat element e. */
static int32_t unit_at(const chk *c, int64_t e) {
    int32_t lo = 0, hi = c->U - 1;
    while (lo < hi) {
        const int32_t mid = (lo + hi + 1) / 2;
        if (c->r->units[mid].offset <= e) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static int64_t unit_start(const chk *c, int32_t u) {
    return u < c->U ? c->r->units[u].offset : c->r->flat_elems;
}

/* ---- buffers --------------------------------------------------------------------- */

static int64_t *slot(chk *c, prog_buf b, int32_t unit) {
    return &c->live[(int64_t)b * (c->U + 1) + (unit >= 0 ? unit : c->U)];
}

static bool unit_buf(prog_buf b) { return b == BUF_UNIT_PARAMS || b == BUF_UNIT_GRADS; }

static int need_live(chk *c, int32_t i, prog_buf b, int32_t u) {
    if (*slot(c, b, unit_buf(b) ? u : -1) >= 0) return 0;
    if (unit_buf(b)) return bad(c, i, "%s[%s] is not allocated", prog_buf_names[b], c->r->units[u].name);
    return bad(c, i, "%s is not allocated", prog_buf_names[b]);
}

static const mem_cat buf_cat[BUF_COUNT] = {MEM_PARAMS,    MEM_GRADS,   MEM_MASTER, MEM_OPTIMIZER,
                                           MEM_OPTIMIZER, MEM_BUFFERS, MEM_BUFFERS, MEM_TEACHER};

static int op_alloc(chk *c, int32_t i, const prog_op *o) {
    int64_t *s = slot(c, o->buf, o->unit);
    const int64_t want = program_buf_bytes(c->p, c->r, o->buf, o->unit);
    if (*s >= 0) return bad(c, i, "the buffer is already allocated");
    if (!unit_buf(o->buf) && c->state_used[o->buf])
        return bad(c, i, "%s was allocated before (model states are allocated once)",
                   prog_buf_names[o->buf]);
    if (want <= 0 && o->buf == BUF_TEACHER)
        return bad(c, i, "the role holds no teacher (header.distill is absent, or the role is "
                         "not on the last stage)");
    if (want <= 0)
        return bad(c, i, "the plan keeps no %s (precision.master is none)", prog_buf_names[o->buf]);
    if (o->bytes != want)
        return bad(c, i, "expected %lld bytes (what the header and the role imply), found %lld",
                   (long long)want, (long long)o->bytes);
    if (o->cat != buf_cat[o->buf])
        return bad(c, i, "expected category %s for %s, found %s", mem_cat_names[buf_cat[o->buf]],
                   prog_buf_names[o->buf], mem_cat_names[o->cat]);
    *s = o->bytes;
    if (!unit_buf(o->buf)) c->state_used[o->buf] = true;
    if (o->buf == BUF_UNIT_PARAMS) c->up_filled[o->unit] = false, c->up_spans[o->unit].n = 0;
    if (o->buf == BUF_UNIT_GRADS) c->ug_dirty[o->unit] = false, c->ug_spans[o->unit].n = 0;
    return 0;
}

/* unit_grads[u]'s gradient must have been reduce-scattered whole before it
 * is overwritten, freed or the optimizer runs. */
static int close_unit_grads(chk *c, int32_t i, int32_t u) {
    const prog_unit *un = &c->r->units[u];
    int64_t g0 = 0, g1 = 0;
    int32_t twice;
    if (!c->ug_dirty[u]) return 0;
    if (spans_tile(&c->ug_spans[u], un->offset, un->offset + un->elems, &g0, &g1, &twice)) {
        if (twice >= 0)
            return bad(c, twice, "reduce-scatters elements of unit_grads[%s] a second time for "
                       "the same backward", un->name);
        return bad(c, i, "the gradient in unit_grads[%s] is not reduce-scattered into grads "
                   "([%lld, %lld) missing) before it is %s", un->name, (long long)g0,
                   (long long)g1, c->r->ops[i].kind == OP_OPTIM ? "used by the optimizer"
                                  : c->r->ops[i].kind == OP_FREE ? "freed" : "overwritten");
    }
    c->ug_dirty[u] = false;
    c->ug_spans[u].n = 0;
    return 0;
}

static int op_free(chk *c, int32_t i, const prog_op *o) {
    int64_t *s = slot(c, o->buf, o->unit);
    if (*s < 0) return bad(c, i, "the buffer is not allocated");
    if (o->bytes != *s)
        return bad(c, i, "expected the %lld bytes its alloc took, found %lld", (long long)*s,
                   (long long)o->bytes);
    if (o->buf == BUF_UNIT_GRADS && close_unit_grads(c, i, o->unit)) return -1;
    *s = -1;
    return 0;
}

/* ---- compute ----------------------------------------------------------------------- */

/* The parameters a fwd/bwd reads: the whole params buffer (current: gathered
 * after the last optimizer step if that updated a shard), or unit_params[u]
 * filled by all-gathers of the unit's range. */
static int read_params(chk *c, int32_t i, const prog_op *o) {
    const int32_t u = o->unit;
    int64_t g0 = 0, g1 = 0;
    int32_t twice;
    if (o->src == BUF_PARAMS) {
        if (need_live(c, i, BUF_PARAMS, -1)) return -1;
        if (*slot(c, BUF_UNIT_PARAMS, u) >= 0) /* the runtime reads a unit's own buffer first */
            return bad(c, i, "reads params while unit_params[%s] is allocated: expected src "
                       "unit_params", c->r->units[u].name);
        if (!c->params_whole)
            return bad(c, i, "params holds only the rank's shard (ZeRO-3 over %lld ranks): read "
                       "unit_params after an all-gather", (long long)c->d);
        if (!c->params_stale) return 0;
        if (spans_tile(&c->pgather, 0, c->r->flat_elems, &g0, &g1, &twice)) {
            if (twice >= 0) return bad(c, twice, "gathers parameters already gathered");
            return bad(c, i, "reads params before the all-gather of what the optimizer updated "
                       "([%lld, %lld) missing)", (long long)g0, (long long)g1);
        }
        c->params_stale = false;
        return 0;
    }
    if (o->src != BUF_UNIT_PARAMS)
        return bad(c, i, "expected src params or unit_params, found %s", prog_buf_names[o->src]);
    if (need_live(c, i, BUF_UNIT_PARAMS, u)) return -1;
    if (c->up_filled[u]) return 0;
    const prog_unit *un = &c->r->units[u];
    if (spans_tile(&c->up_spans[u], un->offset, un->offset + un->elems, &g0, &g1, &twice)) {
        if (twice >= 0) return bad(c, twice, "gathers elements of unit_params[%s] twice", un->name);
        return bad(c, i, "reads unit_params[%s] before an all-gather filled it ([%lld, %lld) "
                   "missing)", un->name, (long long)g0, (long long)g1);
    }
    c->up_filled[u] = true;
    return 0;
}

static int op_fwd(chk *c, int32_t i, const prog_op *o) {
    int32_t *pos = &c->pos[o->mb];
    if (c->n_optim) return bad(c, i, "after the step's optim");
    if (*pos >= c->U)
        return bad(c, i, "micro-batch %d's forward already ran in step %d", (int)o->mb, (int)o->step);
    if (o->unit != *pos)
        return bad(c, i, "expected the forward of %s next in micro-batch %d (units in order), "
                   "found %s", c->r->units[*pos].name, (int)o->mb, c->r->units[o->unit].name);
    if (read_params(c, i, o)) return -1;
    /* the head's forward runs the teacher (distillation) */
    if (c->p->distill.on && o->unit == c->U - 1 && c->r->stage == c->p->pp - 1 &&
        need_live(c, i, BUF_TEACHER, -1))
        return -1;
    c->saved[(int64_t)o->mb * c->U + o->unit] = o->bytes;
    (*pos)++;
    return 0;
}

static int write_grads(chk *c, int32_t i, const prog_op *o) {
    if (c->bwd_dst < 0) c->bwd_dst = (int)o->dst;
    if ((int)o->dst != c->bwd_dst)
        return bad(c, i, "expected dst %s like the program's first backward, found %s",
                   prog_buf_names[c->bwd_dst], prog_buf_names[o->dst]);
    if (o->dst == BUF_GRADS) {
        if (need_live(c, i, BUF_GRADS, -1)) return -1;
        if (*slot(c, BUF_UNIT_GRADS, o->unit) >= 0) /* the runtime writes it first */
            return bad(c, i, "writes grads while unit_grads[%s] is allocated: expected dst "
                       "unit_grads", c->r->units[o->unit].name);
        if (!c->grads_whole)
            return bad(c, i, "grads holds only the rank's shard (ZeRO-%d over %lld ranks): write "
                       "unit_grads and reduce-scatter it", c->p->zero, (long long)c->d);
        return 0;
    }
    if (o->dst != BUF_UNIT_GRADS)
        return bad(c, i, "expected dst grads or unit_grads, found %s", prog_buf_names[o->dst]);
    if (need_live(c, i, BUF_UNIT_GRADS, o->unit) || close_unit_grads(c, i, o->unit)) return -1;
    c->ug_dirty[o->unit] = true;
    return 0;
}

/* A unit's backward is complete for micro-batch mb: its gradient may be reduced
 * once every micro-batch's is. */
static void bwd_done(chk *c, int32_t u) {
    c->done_bwd[u]++;
    while (c->complete > 0 && c->done_bwd[c->complete - 1] == c->mbs) c->complete--;
}

/* The weight-gradient part of a zero-bubble backward: after its input part,
 * freeing what the forward saved. */
static int op_bwd_weight(chk *c, int32_t i, const prog_op *o) {
    bool *pending = &c->w_pending[(int64_t)o->mb * c->U + o->unit];
    const int64_t saved = c->saved[(int64_t)o->mb * c->U + o->unit];
    if (c->n_optim) return bad(c, i, "after the step's optim");
    if (!*pending)
        return bad(c, i, "no input-gradient part of %s's backward in micro-batch %d waits for this "
                   "weight part", c->r->units[o->unit].name, (int)o->mb);
    if (o->bytes != saved)
        return bad(c, i, "frees %lld bytes of activations; its forward saved %lld",
                   (long long)o->bytes, (long long)saved);
    if (read_params(c, i, o) || write_grads(c, i, o)) return -1;
    *pending = false;
    c->n_w_pending--;
    bwd_done(c, o->unit);
    return 0;
}

static int op_bwd(chk *c, int32_t i, const prog_op *o) {
    if (o->part == BWD_WEIGHT) return op_bwd_weight(c, i, o);
    int32_t *pos = &c->pos[o->mb];
    const int32_t U = c->U;
    if (c->n_optim) return bad(c, i, "after the step's optim");
    if (!c->n_zero_grad)
        return bad(c, i, "before the step's zero_grad (the gradients would add to the last step's)");
    if (*pos < U)
        return bad(c, i, "before micro-batch %d's forward finished (the forward of %s is next)",
                   (int)o->mb, c->r->units[*pos].name);
    if (*pos == 2 * U)
        return bad(c, i, "micro-batch %d's backward already ran in step %d", (int)o->mb, (int)o->step);
    if (o->unit != 2 * U - 1 - *pos)
        return bad(c, i, "expected the backward of %s next in micro-batch %d (units in reverse "
                   "order), found %s", c->r->units[2 * U - 1 - *pos].name, (int)o->mb,
                   c->r->units[o->unit].name);
    const int64_t saved = c->saved[(int64_t)o->mb * U + o->unit];
    if (o->part == BWD_INPUT && o->bytes != 0)
        return bad(c, i, "an input-gradient part frees no activations (its weight part frees "
                   "them), found %lld bytes", (long long)o->bytes);
    if (o->part == BWD_ALL && o->stash_bytes != 0)
        return bad(c, i, "a whole backward keeps no stash (only an input-gradient part leaves "
                   "one for its weight part), found %lld bytes", (long long)o->stash_bytes);
    if (o->part == BWD_ALL && o->bytes != saved)
        return bad(c, i, "frees %lld bytes of activations; its forward saved %lld",
                   (long long)o->bytes, (long long)saved);
    if (read_params(c, i, o) || write_grads(c, i, o)) return -1;
    (*pos)++;
    c->any_bwd = true;
    if (o->part == BWD_INPUT) {
        c->w_pending[(int64_t)o->mb * U + o->unit] = true;
        c->n_w_pending++;
    } else {
        bwd_done(c, o->unit);
    }
    return 0;
}

/* ---- collectives ------------------------------------------------------------------- */

/* Expert parallelism (ep > 1): unit u's held routed experts, [*lo, *hi) of the flat
 * space (a layer's last experts / ep x expert elements), which only the ranks of the
 * expert-data-parallel group (dp / ep of them) share; 0 when u has none. */
static int experts_of(const chk *c, int32_t u, int64_t *lo, int64_t *hi) {
    if (c->p->ep < 2 || strncmp(c->r->units[u].name, "layer.", 6)) return 0;
    const int64_t ex = c->p->experts / c->p->ep * program_expert_elems(c->p);
    *hi = c->r->units[u].offset + c->r->units[u].elems;
    *lo = *hi - ex;
    return 1;
}

/* Under ep a collective that touches a layer's routed experts runs over the edp
 * group (the ranks holding the same experts) and stays within them; an edp one
 * touches nothing else. */
static int coll_experts(chk *c, int32_t i, const prog_op *o) {
    bool inside = false;
    for (int32_t u = 0; u < c->U; u++) {
        int64_t lo, hi;
        if (!experts_of(c, u, &lo, &hi) || o->offset >= hi || o->offset + o->elems <= lo) continue;
        if (o->group != GROUP_EDP)
            return bad(c, i, "%s the routed experts' %s of %s over dp, but each rank of the ep "
                       "group holds other experts (ep = %lld): expected group edp",
                       o->coll == COLL_ALL_GATHER ? "gathers" : "reduces",
                       o->coll == COLL_ALL_GATHER ? "parameters" : "gradients",
                       c->r->units[u].name, (long long)c->p->ep);
        inside = o->offset >= lo && o->offset + o->elems <= hi;
    }
    if (o->group == GROUP_EDP && !inside)
        return bad(c, i, "expected an edp collective within one layer's routed experts, found "
                   "[%lld, %lld)", (long long)o->offset, (long long)(o->offset + o->elems));
    return 0;
}

static int coll_grads(chk *c, int32_t i, const prog_op *o) {
    const int64_t start = unit_start(c, c->complete);
    if (c->bwd_dst == BUF_UNIT_GRADS)
        return bad(c, i, "reduces grads in place, but the backward ops write unit_grads (reduced "
                   "when they are reduce-scattered into grads)");
    if (c->n_optim) return bad(c, i, "reduces gradients after the step's optim");
    if (o->offset < start) {
        const int64_t e = o->offset + o->elems < start ? o->offset + o->elems - 1 : start - 1;
        return bad(c, i, "reduces gradients of %s before every micro-batch's backward of it ran",
                   c->r->units[unit_at(c, e)].name);
    }
    if (o->coll == COLL_REDUCE_SCATTER && c->opt_whole && c->d > 1)
        return bad(c, i, "a reduce-scatter leaves each rank its shard's sums, but the optimizer "
                   "updates the whole space (ZeRO-0): expected all-reduce");
    return spans_add(c, &c->red, o->offset, o->offset + o->elems, i);
}

static int op_coll(chk *c, int32_t i, const prog_op *o) {
    const ps_dtype dt = o->src == BUF_PARAMS || o->src == BUF_UNIT_PARAMS ? c->p->precision.params
                                                                         : c->p->precision.grads;
    const int64_t bytes = o->elems * dtype_bytes(dt);
    const int64_t edp = c->p->ep > 1 ? c->d / c->p->ep : 1;
    if (o->group != GROUP_DP && !(o->group == GROUP_EDP && c->p->ep > 1))
        return bad(c, i, "expected group dp, or edp for the routed experts' collectives under "
                   "ep > 1; found %s", comm_group_names[o->group]);
    const int64_t n = o->group == GROUP_EDP ? edp : c->d;
    if (o->elems < 1) return bad(c, i, "expected a range of 1 element or more, found 0");
    if (o->bytes != bytes)
        return bad(c, i, "expected bytes = elems x %s bytes = %lld, found %lld", dtype_names[dt],
                   (long long)bytes, (long long)o->bytes);
    if (o->sent_bytes != comm_bytes_sent(o->coll, n, bytes))
        return bad(c, i, "expected sent = %lld (a %s of %lld bytes over %s %lld ranks), found "
                   "%lld", (long long)comm_bytes_sent(o->coll, n, bytes),
                   comm_coll_names[o->coll], (long long)bytes,
                   o->group == GROUP_EDP ? "edp = dp/ep =" : "dp*cp =", (long long)n,
                   (long long)o->sent_bytes);
    if (need_live(c, i, o->src, o->unit) || need_live(c, i, o->dst, o->unit)) return -1;
    if (coll_experts(c, i, o)) return -1;
    const bool grads_in_place = o->src == BUF_GRADS && o->dst == BUF_GRADS;
    if ((o->coll == COLL_ALL_REDUCE || o->coll == COLL_REDUCE_SCATTER) && grads_in_place)
        return coll_grads(c, i, o);
    if (o->coll == COLL_REDUCE_SCATTER && o->src == BUF_UNIT_GRADS && o->dst == BUF_GRADS) {
        if (!c->ug_dirty[o->unit])
            return bad(c, i, "no backward wrote unit_grads[%s] since it was allocated or last "
                       "reduced", c->r->units[o->unit].name);
        if (c->opt_whole && c->d > 1)
            return bad(c, i, "a reduce-scatter leaves each rank its shard's sums, but the "
                       "optimizer updates the whole space (ZeRO-0)");
        return spans_add(c, &c->ug_spans[o->unit], o->offset, o->offset + o->elems, i);
    }
    if (o->coll == COLL_ALL_GATHER && o->src == BUF_PARAMS && o->dst == BUF_PARAMS) {
        if (!c->params_stale)
            return bad(c, i, "gathers params that no optimizer step changed since they were last "
                       "gathered");
        return spans_add(c, &c->pgather, o->offset, o->offset + o->elems, i);
    }
    if (o->coll == COLL_ALL_GATHER && o->src == BUF_PARAMS && o->dst == BUF_UNIT_PARAMS) {
        if (c->up_filled[o->unit])
            return bad(c, i, "unit_params[%s] is already gathered and read",
                       c->r->units[o->unit].name);
        return spans_add(c, &c->up_spans[o->unit], o->offset, o->offset + o->elems, i);
    }
    return bad(c, i, "expected all-reduce grads -> grads, reduce-scatter grads -> grads or "
               "unit_grads -> grads, or all-gather params -> params or params -> unit_params; "
               "found %s %s -> %s", comm_coll_names[o->coll], prog_buf_names[o->src],
               prog_buf_names[o->dst]);
}

/* ---- the optimizer and the steps ------------------------------------------------------ */

static int op_optim(chk *c, int32_t i, const prog_op *o) {
    static const prog_buf needs[] = {BUF_PARAMS, BUF_GRADS, BUF_MASTER, BUF_ADAM_M, BUF_ADAM_V};
    int64_t g0 = 0, g1 = 0;
    int32_t twice;
    if (c->n_optim++) return bad(c, i, "a second optim in step %d", (int)o->step);
    if (!c->n_zero_grad) return bad(c, i, "step %d has no zero_grad before it", (int)o->step);
    for (int32_t m = 0; m < c->mbs; m++)
        if (c->pos[m] != 2 * c->U)
            return bad(c, i, "before micro-batch %d's backward finished", (int)m);
    if (c->n_w_pending)
        return bad(c, i, "before the weight-gradient part of %lld backwards",
                   (long long)c->n_w_pending);
    for (size_t k = 0; k < sizeof needs / sizeof needs[0]; k++)
        if ((needs[k] != BUF_MASTER || c->held[BUF_MASTER]) && need_live(c, i, needs[k], -1))
            return -1;
    if (o->offset != 0 || o->elems != c->held[BUF_ADAM_M])
        return bad(c, i, "expected offset 0 and elems %lld (all the rank holds of the optimizer "
                   "states), found offset %lld, elems %lld", (long long)c->held[BUF_ADAM_M],
                   (long long)o->offset, (long long)o->elems);
    if (c->bwd_dst == BUF_UNIT_GRADS)
        for (int32_t u = 0; u < c->U; u++)
            if (close_unit_grads(c, i, u)) return -1;
    for (int32_t u = 0; u < c->U && c->bwd_dst == BUF_GRADS && c->p->ep == c->d; u++) {
        /* ep = dp: each rank's experts are its own, not reduced */
        int64_t lo, hi;
        if (experts_of(c, u, &lo, &hi) && spans_add(c, &c->red, lo, hi, i)) return -1;
    }
    if (c->bwd_dst == BUF_GRADS && c->d > 1 &&
        spans_tile(&c->red, 0, c->r->flat_elems, &g0, &g1, &twice)) {
        if (twice >= 0)
            return bad(c, twice, "reduces gradient elements already reduced in step %d",
                       (int)o->step);
        return bad(c, i, "the gradients of [%lld, %lld) (%s) are not reduced before the optimizer "
                   "step (dp*cp = %lld ranks: every element once per step)", (long long)g0,
                   (long long)g1, c->r->units[unit_at(c, g0)].name, (long long)c->d);
    }
    if (c->need_param_gather) {
        c->params_stale = true;
        c->pgather.n = 0;
        for (int32_t u = 0; u < c->U && c->p->ep == c->d; u++) {
            /* ep = dp: each rank updated all of its experts, none to gather */
            int64_t lo, hi;
            if (experts_of(c, u, &lo, &hi) && spans_add(c, &c->pgather, lo, hi, i)) return -1;
        }
    }
    /* the update makes every gathered unit stale: a ZeRO-3 unit kept across the
     * step must be gathered again before it is read */
    for (int32_t u = 0; u < c->U; u++) c->up_filled[u] = false, c->up_spans[u].n = 0;
    return 0;
}

static int op_p2p(chk *c, int32_t i, const prog_op *o) {
    if (c->p->pp == 1) return bad(c, i, "send/recv need pipeline parallelism; the header has pp = 1");
    if (o->peer < 0 || o->peer >= c->p->pp || o->peer == c->r->stage)
        return bad(c, i, "expected a peer stage in [0, %lld) other than %d, found %d",
                   (long long)c->p->pp, (int)c->r->stage, (int)o->peer);
    if (o->mb < 0) return bad(c, i, "expected the micro-batch it carries, found none");
    return 0;
}

/* The step ends (op i, or -1 at the end of the list, comes after it). */
static int end_step(chk *c, int32_t i) {
    if (!c->n_optim) return bad(c, i, "step %d has no optim", (int)c->step);
    c->n_zero_grad = c->n_optim = 0;
    c->any_bwd = false;
    memset(c->pos, 0, (size_t)c->mbs * sizeof *c->pos);
    memset(c->done_bwd, 0, (size_t)c->U * sizeof *c->done_bwd);
    memset(c->w_pending, 0, (size_t)(c->mbs * c->U) * sizeof *c->w_pending);
    c->n_w_pending = 0;
    c->complete = c->U;
    c->red.n = 0;
    return 0;
}

/* A layer's ring passes (context parallelism): only on a fwd / bwd under cp > 1,
 * at most 3 (cp - 1) of them (comm.c: K/V, dK/dV and a recompute's K/V), and
 * bytes exactly when there are passes. */
static int cp_ring(chk *c, int32_t i, const prog_op *o) {
    const int64_t most = 3 * (c->p->cp - 1);
    if (o->ring_passes < 0 || o->ring_passes > most)
        return bad(c, i, "expected passes in [0, %lld] (3 x (cp - 1), cp = %lld), found %d",
                   (long long)most, (long long)c->p->cp, (int)o->ring_passes);
    if ((o->ring_passes > 0) != (o->ring_bytes > 0))
        return bad(c, i, "expected ring bytes exactly with ring passes, found passes %d and ring "
                   "%lld", (int)o->ring_passes, (long long)o->ring_bytes);
    if (o->ring_passes > 0 && o->ring_bytes > PROGRAM_MAX_OP_BYTES / o->ring_passes)
        return bad(c, i, "expected passes x ring bytes at most %lld",
                   (long long)PROGRAM_MAX_OP_BYTES);
    return 0;
}

/* The tensor-parallel collectives a fwd/bwd carries (program.h): only with
 * tp > 1; calls and bytes both zero or both positive; byte counts in range
 * (added to *sum), seconds within the op's. */
static int op_tp(chk *c, int32_t i, const prog_op *o, int64_t *sum) {
    double seconds = 0;
    for (int k = 0; k < PROG_TP_COLLS; k++) {
        const int64_t n = o->tp_calls[k], b = o->tp_bytes[k], s = o->tp_sent[k];
        const double t = o->tp_seconds[k];
        if (!n && !b && !s && !t) continue;
        if (c->p->tp < 2)
            return bad(c, i, "expected no tensor-parallel collectives with tp = 1, found tp_%s",
                       comm_coll_names[k]);
        if (n < 1 || n > PROGRAM_MAX_OPS || b < 1 || s < 0 || b > PROGRAM_MAX_OP_BYTES ||
            s > PROGRAM_MAX_OP_BYTES)
            return bad(c, i, "tp_%s: expected 1 to %d calls and bytes in [1, %lld]",
                       comm_coll_names[k], PROGRAM_MAX_OPS, (long long)PROGRAM_MAX_OP_BYTES);
        if (!(t >= 0 && t <= PROGRAM_MAX_OP_SECONDS))
            return bad(c, i, "tp_%s_seconds: expected [0, %g]", comm_coll_names[k],
                       PROGRAM_MAX_OP_SECONDS);
        seconds += t;
        *sum += b + s;
    }
    if (seconds > o->seconds * (1 + 1e-12))
        return bad(c, i, "expected the tensor-parallel collectives' seconds (%g) within the op's (%g)",
                   seconds, o->seconds);
    return 0;
}

/* The expert-parallel all-to-alls a MoE layer's fwd/bwd carries (program.h): only
 * with ep > 1, on a layer, at most 4 (a backward's 2 and its recomputed forward's
 * 2), each of program_moe_a2a_bytes and sending (ep - 1) / ep of it, their seconds
 * within the op's. */
static int op_ep(chk *c, int32_t i, const prog_op *o, int64_t *sum) {
    const int64_t n = o->ep_calls;
    if (!n && !o->ep_bytes && !o->ep_sent && !o->ep_seconds) return 0;
    if (c->p->ep < 2)
        return bad(c, i, "expected no expert-parallel all-to-alls with ep = 1, found ep_all_to_all");
    const int64_t S = program_moe_a2a_bytes(c->p);
    if (n < 1 || n > 4 || o->ep_bytes != n * S ||
        o->ep_sent != n * comm_bytes_sent(COLL_ALL_TO_ALL, c->p->ep, S))
        return bad(c, i, "expected 1 to 4 all-to-alls of %lld bytes each (experts x "
                   "expert_capacity x hidden), sending (ep - 1)/ep of it; found %lld calls, "
                   "%lld bytes, %lld sent", (long long)S, (long long)n, (long long)o->ep_bytes,
                   (long long)o->ep_sent);
    if (!(o->ep_seconds >= 0 && o->ep_seconds <= o->seconds * (1 + 1e-12)))
        return bad(c, i, "expected the all-to-alls' seconds (%g) within the op's (%g)",
                   o->ep_seconds, o->seconds);
    *sum += o->ep_bytes + o->ep_sent;
    return 0;
}

/* Fields in range, so that the rules above can index by them (the loader
 * ensures this; a program built in memory might not). */
static int op_sane(chk *c, int32_t i, const prog_op *o) {
    const bool ub_src = unit_buf(o->src), ub_dst = unit_buf(o->dst), ub_buf = unit_buf(o->buf);
    if ((unsigned)o->kind >= OP_KIND_COUNT || (unsigned)o->buf >= BUF_COUNT ||
        (unsigned)o->src >= BUF_COUNT || (unsigned)o->dst >= BUF_COUNT ||
        (unsigned)o->cat >= MEM_COUNT || (unsigned)o->coll > COLL_SEND ||
        (unsigned)o->group >= GROUP_COUNT || (unsigned)o->phase >= PROG_PHASE_COUNT ||
        (unsigned)o->part >= BWD_PART_COUNT)
        return bad(c, i, "a field outside its enumeration");
    if (o->step < 0 || o->step >= c->p->steps)
        return bad(c, i, "expected a step below %d, found %d", (int)c->p->steps, (int)o->step);
    if (o->unit < -1 || o->unit >= c->U || o->mb < -1 || o->mb >= c->mbs)
        return bad(c, i, "expected a unit of the role and a micro-batch of the step");
    const bool compute = o->kind == OP_FWD || o->kind == OP_BWD;
    if (compute && (o->unit < 0 || o->mb < 0))
        return bad(c, i, "expected a unit and a micro-batch, found %s", o->unit < 0 ? "no unit" : "no mb");
    if ((o->kind == OP_ALLOC || o->kind == OP_FREE) && ub_buf != (o->unit >= 0))
        return bad(c, i, "expected a unit with unit_params or unit_grads, and only then");
    if (o->kind == OP_COLL && (ub_src || ub_dst)) {
        if (o->unit < 0) return bad(c, i, "expected the unit whose buffer the collective uses");
        const prog_unit *un = &c->r->units[o->unit];
        if (o->offset < un->offset || o->elems > un->offset + un->elems - o->offset)
            return bad(c, i, "expected the range within %s", un->name);
    }
    if (o->kind == OP_COLL && (o->offset < 0 || o->elems < 0 || o->elems > c->r->flat_elems ||
                               o->offset > c->r->flat_elems - o->elems))
        return bad(c, i, "expected the range within the flat space");
    if (o->bytes < 0 || o->sent_bytes < 0 || o->transient_bytes < 0 || o->workspace_bytes < 0 ||
        o->buffer_bytes < 0 || o->ring_bytes < 0 || o->stash_bytes < 0 ||
        o->stash_bytes > PROGRAM_MAX_OP_BYTES || o->bytes > PROGRAM_MAX_OP_BYTES ||
        o->sent_bytes > PROGRAM_MAX_OP_BYTES || o->transient_bytes > PROGRAM_MAX_OP_BYTES ||
        o->workspace_bytes > PROGRAM_MAX_OP_BYTES || o->buffer_bytes > PROGRAM_MAX_OP_BYTES ||
        o->ring_bytes > PROGRAM_MAX_OP_BYTES)
        return bad(c, i, "expected byte counts in [0, %lld]", (long long)PROGRAM_MAX_OP_BYTES);
    if (cp_ring(c, i, o)) return -1;
    /* each count is at most 2^50; their sum bounds every total the replay forms */
    int64_t sum = o->bytes + o->sent_bytes + o->transient_bytes + o->workspace_bytes +
                  o->buffer_bytes + o->stash_bytes + o->ring_passes * o->ring_bytes;
    if (op_tp(c, i, o, &sum) || op_ep(c, i, o, &sum)) return -1;
    if (sum > PROGRAM_MAX_BYTE_SUM - c->byte_sum)
        return bad(c, i, "the ops' byte counts add up to more than %lld", (long long)PROGRAM_MAX_BYTE_SUM);
    c->byte_sum += sum;
    if (!(o->seconds >= 0 && o->seconds <= PROGRAM_MAX_OP_SECONDS && o->ring_seconds >= 0 &&
          o->ring_seconds <= PROGRAM_MAX_OP_SECONDS && o->flops >= 0 &&
          o->flops <= PROGRAM_MAX_OP_FLOPS))
        return bad(c, i, "expected seconds and ring_seconds in [0, %g] and flops in [0, %g]",
                   PROGRAM_MAX_OP_SECONDS, PROGRAM_MAX_OP_FLOPS);
    return 0;
}

static int check_op(chk *c, int32_t i) {
    const prog_op *o = &c->r->ops[i];
    if (op_sane(c, i, o)) return -1;
    if (o->step < c->step)
        return bad(c, i, "expected step %d or later (steps in order), found %d", (int)c->step,
                   (int)o->step);
    while (o->step > c->step) {
        if (end_step(c, i)) return -1;
        c->step++;
    }
    switch (o->kind) {
    case OP_ALLOC: return op_alloc(c, i, o);
    case OP_FREE: return op_free(c, i, o);
    case OP_ZERO_GRAD:
        if (need_live(c, i, BUF_GRADS, -1)) return -1;
        if (c->n_zero_grad++) return bad(c, i, "a second zero_grad in step %d", (int)o->step);
        if (c->any_bwd) return bad(c, i, "after the step's first backward (it would drop its gradients)");
        return 0;
    case OP_FWD: return op_fwd(c, i, o);
    case OP_BWD: return op_bwd(c, i, o);
    case OP_COLL: return op_coll(c, i, o);
    case OP_SEND:
    case OP_RECV: return op_p2p(c, i, o);
    case OP_OPTIM: return op_optim(c, i, o);
    default: return bad(c, i, "unknown op kind");
    }
}

static int check_role(chk *c) {
    const prog_role *r = c->r;
    const int64_t need = (int64_t)c->p->steps * c->mbs * 2 * c->U;
    int64_t g0 = 0, g1 = 0;
    int32_t twice;
    if (need > r->n_ops)
        return bad(c, -1, "expected at least steps x micro_batches x 2 x units = %lld ops (a "
                   "forward and a backward of every unit per micro-batch and step), found %d",
                   (long long)need, (int)r->n_ops);
    for (int b = 0; b < BUF_COUNT; b++) {
        int64_t first;
        c->held[b] = unit_buf((prog_buf)b) ? 0 : program_buf_held(c->p, r, (prog_buf)b, -1, 0, &first);
    }
    c->grads_whole = c->held[BUF_GRADS] == r->flat_elems;
    c->params_whole = c->held[BUF_PARAMS] == r->flat_elems;
    c->opt_whole = c->held[BUF_ADAM_M] == r->flat_elems;
    c->need_param_gather = c->d > 1 && c->params_whole && !c->opt_whole;
    const size_t nl = (size_t)BUF_COUNT * (size_t)(c->U + 1);
    c->live = malloc(nl * sizeof *c->live);
    c->ug_dirty = calloc((size_t)c->U, sizeof *c->ug_dirty);
    c->up_filled = calloc((size_t)c->U, sizeof *c->up_filled);
    c->ug_spans = calloc((size_t)c->U, sizeof *c->ug_spans);
    c->up_spans = calloc((size_t)c->U, sizeof *c->up_spans);
    c->pos = calloc((size_t)c->mbs, sizeof *c->pos);
    c->saved = calloc((size_t)(c->mbs * c->U), sizeof *c->saved);
    c->done_bwd = calloc((size_t)c->U, sizeof *c->done_bwd);
    c->w_pending = calloc((size_t)(c->mbs * c->U), sizeof *c->w_pending);
    if (!c->live || !c->ug_dirty || !c->up_filled || !c->ug_spans || !c->up_spans || !c->pos ||
        !c->saved || !c->done_bwd || !c->w_pending)
        return c->oom = true, ps_err_set(c->err, "out of memory");
    for (size_t k = 0; k < nl; k++) c->live[k] = -1;
    c->complete = c->U;
    c->bwd_dst = -1;
    for (int32_t i = 0; i < r->n_ops; i++)
        if (check_op(c, i)) return -1;
    if (end_step(c, -1)) return -1;
    if (c->step != c->p->steps - 1)
        return bad(c, -1, "expected ops for steps 0 to %d (header.train.steps), found none after "
                   "step %d", (int)c->p->steps - 1, (int)c->step);
    if (c->params_stale && spans_tile(&c->pgather, 0, r->flat_elems, &g0, &g1, &twice)) {
        if (twice >= 0) return bad(c, twice, "gathers parameters already gathered");
        return bad(c, -1, "the program ends before the parameters the last optim updated are "
                   "all-gathered ([%lld, %lld) missing)", (long long)g0, (long long)g1);
    }
    return 0;
}

static void chk_free(chk *c) {
    for (int32_t u = 0; u < c->U; u++) {
        if (c->ug_spans) free(c->ug_spans[u].v);
        if (c->up_spans) free(c->up_spans[u].v);
    }
    free(c->live);
    free(c->ug_dirty);
    free(c->up_filled);
    free(c->ug_spans);
    free(c->up_spans);
    free(c->pos);
    free(c->saved);
    free(c->done_bwd);
    free(c->w_pending);
    free(c->pgather.v);
    free(c->red.v);
}

int program_check(const program *p, int32_t *role, int32_t *op, ps_err *err) {
    for (int32_t k = 0; k < p->n_roles; k++) {
        chk c;
        memset(&c, 0, sizeof c);
        c.p = p, c.r = &p->roles[k], c.err = err;
        c.U = c.r->n_units;
        c.d = p->dp * p->cp;
        c.mbs = p->micro_batches;
        c.bad_op = -1;
        int rc = c.U < 1 || p->steps < 1 || c.mbs < 1
                     ? bad(&c, -1, "expected at least one unit, step and micro-batch")
                     : check_role(&c);
        chk_free(&c);
        if (rc) {
            if (role) *role = k;
            if (op) *op = c.bad_op;
            return -1;
        }
    }
    return 0;
}
