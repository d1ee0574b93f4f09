/* replay.c — memory timeline, communication bytes and event-driven time of an
 * execution plan (see replay.h, docs/plan-format.md §5). */
#include "program/replay.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- state ---------------------------------------------------------------------- */

/* A buffer (or a range of a flat one) an op reads or writes. */
typedef struct {
    prog_buf buf;
    int32_t unit;  /* unit buffers */
    int64_t lo, hi; /* flat buffers: the range in the flat space */
} access;

/* A collective still running on the communication stream. */
typedef struct {
    access a[2];
    double end;
} pending;

/* A pipeline send replayed so far: to which role, what, when it starts and
 * ends (arrives); its op, and when the matching receive is done with it: its
 * start (overlap_pp), its end (not), -1 until the peer reaches it. */
typedef struct {
    int32_t to, mb, op;
    comm_phase phase;
    double start, end, posted;
} p2p_sent;

/* Where a role's receives from one peer role in one phase have got to in the
 * peer's sends. */
typedef struct {
    int32_t from;
    comm_phase phase;
    int32_t at;
} p2p_cursor;

typedef struct {
    const program *p;
    const prog_role *r;
    replay_role *out;
    int32_t index, next; /* the role's index; its next op to replay */
    p2p_sent *sent;
    int32_t n_sent, cap_sent, n_taken; /* sends so far; of them, paired with a receive */
    p2p_cursor *cursors;
    int n_cursors, cap_cursors;
    /* memory */
    int64_t *live;     /* [BUF_COUNT x (units + 1)]: a live buffer's bytes, -1 when not */
    mem_cat *live_cat;
    int64_t *saved;    /* [micro-batches x units]: a fwd's saved bytes until its bwd, -1 */
    int64_t *stash;    /* [micro-batches x units]: a B part's stash until its W, -1 */
    int64_t (*during)[MEM_COUNT]; /* [ops]: live inside each op, before pending sends */
    int64_t cur[MEM_COUNT];
    /* time */
    double t_compute, t_comm, prev_end;
    pending *pend;
    int n_pend, cap_pend;
} replay_state;

static int op_err(ps_err *err, const replay_state *s, int32_t i, const char *what) {
    const prog_op *o = &s->r->ops[i];
    const bool unit = o->unit >= 0 && o->unit < s->r->n_units;
    return ps_err_set(err, "op %d (%s%s%s, step %d%s%s): %s", (int)i, prog_kind_names[o->kind],
                      o->kind == OP_ALLOC || o->kind == OP_FREE ? " " : "",
                      o->kind == OP_ALLOC || o->kind == OP_FREE ? prog_buf_names[o->buf] : "",
                      (int)o->step, unit ? ", unit " : "", unit ? s->r->units[o->unit].name : "",
                      what);
}

static int64_t *live_slot(replay_state *s, prog_buf b, int32_t unit) {
    const int32_t n = s->r->n_units + 1;
    return &s->live[b * n + (unit >= 0 ? unit : n - 1)];
}

static bool is_unit_buf(prog_buf b) { return b == BUF_UNIT_PARAMS || b == BUF_UNIT_GRADS; }

/* ---- memory ----------------------------------------------------------------------- */

static int mem_alloc(replay_state *s, const prog_op *o, int32_t i, ps_err *err) {
    int64_t *slot = live_slot(s, o->buf, o->unit);
    if (*slot >= 0) return op_err(err, s, i, "the buffer is already allocated");
    *slot = o->bytes;
    s->live_cat[slot - s->live] = o->cat;
    s->cur[o->cat] += o->bytes;
    return 0;
}

static int mem_free(replay_state *s, const prog_op *o, int32_t i, ps_err *err) {
    int64_t *slot = live_slot(s, o->buf, o->unit);
    char msg[128];
    if (*slot < 0) return op_err(err, s, i, "the buffer is not allocated");
    if (*slot != o->bytes) {
        snprintf(msg, sizeof msg, "frees %lld bytes; its alloc took %lld", (long long)o->bytes,
                 (long long)*slot);
        return op_err(err, s, i, msg);
    }
    s->cur[s->live_cat[slot - s->live]] -= *slot;
    *slot = -1;
    return 0;
}

/* Apply op i to the live bytes; `during` receives what is live inside it. */
static int mem_op(replay_state *s, const prog_op *o, int32_t i, int64_t during[MEM_COUNT],
                  ps_err *err) {
    const bool compute = o->kind == OP_FWD || o->kind == OP_BWD;
    int64_t *saved = NULL, *stash = NULL;
    if (compute) {
        if (o->unit < 0 || o->unit >= s->r->n_units || o->mb < 0 || o->mb >= s->p->micro_batches)
            return op_err(err, s, i, "expected a unit and a micro-batch of the program");
        saved = &s->saved[(int64_t)o->mb * s->r->n_units + o->unit];
        stash = &s->stash[(int64_t)o->mb * s->r->n_units + o->unit];
    }
    if ((o->kind == OP_ALLOC || o->kind == OP_FREE) &&
        (is_unit_buf(o->buf) ? o->unit < 0 || o->unit >= s->r->n_units : o->unit >= 0))
        return op_err(err, s, i, "expected a unit exactly with unit_params and unit_grads");
    memcpy(during, s->cur, sizeof s->cur);
    switch (o->kind) {
    case OP_ALLOC:
        if (mem_alloc(s, o, i, err)) return -1;
        memcpy(during, s->cur, sizeof s->cur);
        return 0;
    case OP_FREE: return mem_free(s, o, i, err); /* inside: still live */
    case OP_FWD:
        if (*saved >= 0) return op_err(err, s, i, "the micro-batch's forward already ran");
        *saved = o->bytes;
        s->cur[MEM_ACTIVATIONS] += o->bytes;
        memcpy(during, s->cur, sizeof s->cur);
        break;
    case OP_BWD:
        if (*saved < 0) return op_err(err, s, i, "no forward saved activations for it");
        if (o->part == BWD_INPUT) { /* the weight part frees them, and the stash */
            if (o->bytes) return op_err(err, s, i, "an input-gradient part frees activations");
            if (*stash >= 0) return op_err(err, s, i, "the micro-batch's input part already ran");
            *stash = o->stash_bytes;
            s->cur[MEM_WORKSPACE] += o->stash_bytes;
            during[MEM_WORKSPACE] += o->stash_bytes;
            break;
        }
        if (*saved != o->bytes) return op_err(err, s, i, "frees other bytes than its forward saved");
        if (o->part == BWD_WEIGHT) {
            if (*stash != o->stash_bytes)
                return op_err(err, s, i, "frees another stash than its input part kept");
            s->cur[MEM_WORKSPACE] -= o->stash_bytes;
            *stash = -1;
        } else if (o->stash_bytes) {
            return op_err(err, s, i, "a whole backward keeps no stash");
        }
        s->cur[MEM_ACTIVATIONS] -= o->bytes;
        *saved = -1;
        break;
    default: /* a collective's or the optimizer's temporaries */
        during[MEM_WORKSPACE] += o->workspace_bytes;
        return 0;
    }
    during[MEM_ACTIVATIONS] += o->transient_bytes;
    during[MEM_WORKSPACE] += o->workspace_bytes;
    during[MEM_BUFFERS] += o->buffer_bytes;
    return 0;
}

/* Op i's peaks, with `pend` bytes of pipeline sends pending inside it and
 * `pend_after` after it (workspace: the runtime's send blocks). */
static void mem_record(replay_state *s, int32_t i, int64_t pend, int64_t pend_after) {
    replay_role *out = s->out;
    int64_t total = 0, during[MEM_COUNT];
    memcpy(during, s->during[i], sizeof during);
    during[MEM_WORKSPACE] += pend;
    for (int c = 0; c < MEM_COUNT; c++) {
        total += during[c];
        if (during[c] > out->peak[c].bytes) out->peak[c] = (replay_peak){during[c], i};
    }
    if (total > out->peak_total.bytes) out->peak_total = (replay_peak){total, i};
    out->ops[i].bytes[MEM_WORKSPACE] += pend_after;
    out->ops[i].peak_total = total;
}

/* The runtime's pipeline sends (runtime/rt_pipe.c) keep their block until a
 * later send or receive of the rank finds them complete, or until the step's
 * end, which waits for them all. A send completes once it has arrived and the
 * peer has posted its receive: the replay frees its block (o->bytes) at the
 * first send or receive that starts at or after both (the one right after
 * the send starts before it arrives), else after the step's last op. */

/* A pipeline send or receive (the stage-boundary messages replay pairs up). */
static bool is_pp_p2p(const prog_op *o) {
    return (o->kind == OP_SEND || o->kind == OP_RECV) && o->group == GROUP_PP;
}

static int mem_sends(replay_state *s, ps_err *err) {
    const prog_role *r = s->r;
    int32_t *live = malloc((size_t)(s->n_sent ? s->n_sent : 1) * sizeof *live);
    if (!live) return ps_err_set(err, "out of memory");
    int32_t n_live = 0, next = 0;
    int64_t pend = 0;
    for (int32_t i = 0; i < r->n_ops; i++) {
        const prog_op *o = &r->ops[i];
        const bool p2p = is_pp_p2p(o);
        if (p2p) { /* reap those complete by now */
            int32_t k = 0;
            for (int32_t j = 0; j < n_live; j++) {
                const p2p_sent *x = &s->sent[live[j]];
                const double done = x->posted > x->end ? x->posted : x->end;
                if (x->posted >= 0 && done <= s->out->ops[i].start_s)
                    pend -= r->ops[x->op].bytes;
                else
                    live[k++] = live[j];
            }
            n_live = k;
        }
        const int64_t inside = pend;
        if (p2p && o->kind == OP_SEND && next < s->n_sent && s->sent[next].op == i) {
            live[n_live++] = next++;
            pend += o->bytes;
        }
        if (i + 1 == r->n_ops || r->ops[i + 1].step != o->step) n_live = 0, pend = 0;
        mem_record(s, i, inside, pend);
    }
    free(live);
    return 0;
}

/* ---- time ------------------------------------------------------------------------ */

/* The buffers a compute or collective op touches; -1 for "all of them"
 * (optimizer, zero_grad). */
static int accesses(const replay_state *s, const prog_op *o, access a[2]) {
    const prog_unit *un = o->unit >= 0 && o->unit < s->r->n_units ? &s->r->units[o->unit] : NULL;
    const int64_t lo = un ? un->offset : 0, hi = un ? un->offset + un->elems : 0;
    switch (o->kind) {
    case OP_FWD: a[0] = (access){o->src, o->unit, lo, hi}; return 1;
    case OP_BWD:
        a[0] = (access){o->src, o->unit, lo, hi};
        a[1] = (access){o->dst, o->unit, lo, hi};
        return 2;
    case OP_COLL:
        a[0] = (access){o->src, o->unit, o->offset, o->offset + o->elems};
        a[1] = (access){o->dst, o->unit, o->offset, o->offset + o->elems};
        return 2;
    case OP_OPTIM:
    case OP_ZERO_GRAD: return -1;
    default: return 0;
    }
}

static bool conflict(const access *a, const access *b) {
    if (a->buf != b->buf) return false;
    if (is_unit_buf(a->buf)) return a->unit == b->unit;
    return a->lo < b->hi && b->lo < a->hi;
}

/* When a compute op may start: after the compute stream and after every
 * running collective it touches. The communication stream runs one
 * collective after another (durations are >= 0), so the pending ends rise
 * with their order: scanning from the newest, the first one it touches, or
 * the first that ends by then, settles it. */
static double compute_ready(replay_state *s, const prog_op *o) {
    access a[2];
    const int n = accesses(s, o, a);
    double t = s->t_compute;
    for (int k = s->n_pend - 1; k >= 0; k--) {
        const pending *q = &s->pend[k];
        bool hit = n < 0;
        if (q->end <= t) break;
        for (int i = 0; i < n && !hit; i++)
            for (int j = 0; j < 2 && !hit; j++) hit = conflict(&a[i], &q->a[j]);
        if (hit) return q->end;
    }
    return t;
}

/* Forget collectives that end before the compute stream's time: nothing later waits on them. */
static void prune(replay_state *s) {
    int k = 0;
    for (int i = 0; i < s->n_pend; i++)
        if (s->pend[i].end > s->t_compute) s->pend[k++] = s->pend[i];
    s->n_pend = k;
}

static int time_op(replay_state *s, const prog_op *o, replay_op *t, double p2p_arrival,
                   ps_err *err) {
    if (is_pp_p2p(o)) {
        /* a send leaves when the stage's compute is there and does not hold it up (the
         * runtime's sends do not block); a receive holds the compute stream until its
         * message is there (p2p_arrival), and without overlap_pp for the transfer's
         * seconds after that (the receiver copies it in) */
        t->start_s = s->t_compute;
        t->end_s = o->kind == OP_SEND ? t->start_s + o->seconds
                   : p2p_arrival > t->start_s ? p2p_arrival : t->start_s;
        if (o->kind == OP_RECV && !s->p->overlap_pp) t->end_s += o->seconds;
        if (o->kind == OP_RECV) s->t_compute = s->prev_end = t->end_s;
        return 0;
    }
    switch (o->kind) {
    case OP_ALLOC:
    case OP_FREE:
        t->start_s = t->end_s = s->prev_end = s->t_compute;
        return 0;
    case OP_COLL:
    case OP_SEND:
    case OP_RECV: {
        t->start_s = s->t_comm > s->prev_end ? s->t_comm : s->prev_end;
        t->end_s = s->t_comm = s->prev_end = t->start_s + o->seconds;
        if (!s->p->overlap_dp) {
            if (t->end_s > s->t_compute) s->t_compute = t->end_s;
            return 0;
        }
        if (s->n_pend == s->cap_pend) {
            int cap = s->cap_pend ? 2 * s->cap_pend : 64;
            pending *q = realloc(s->pend, (size_t)cap * sizeof *q);
            if (!q) return ps_err_set(err, "out of memory");
            s->pend = q;
            s->cap_pend = cap;
        }
        pending *q = &s->pend[s->n_pend++];
        accesses(s, o, q->a);
        q->end = t->end_s;
        return 0;
    }
    default: /* zero_grad, fwd, bwd, optim */
        t->start_s = compute_ready(s, o);
        t->end_s = s->t_compute = s->prev_end = t->start_s + o->seconds;
        prune(s);
        return 0;
    }
}

/* ---- communication and steps ------------------------------------------------------ */

static void comm_add(replay_role *out, comm_group g, comm_coll coll, comm_phase ph, int64_t calls,
                     int64_t bytes, int64_t sent, double seconds) {
    int k = 0;
    while (k < out->n_colls && !(out->colls[k].group == g && out->colls[k].coll == coll &&
                                 out->colls[k].phase == ph))
        k++;
    if (k == out->n_colls) {
        if (k == REPLAY_MAX_COLLS) k--; /* more kinds than any program has: pool in the last */
        else out->colls[out->n_colls++] = (replay_coll){g, coll, ph, 0, 0, 0, 0};
    }
    replay_coll *c = &out->colls[k];
    c->calls += calls;
    c->bytes += bytes;
    c->sent_bytes += sent;
    c->seconds += seconds;
}

static void comm_op(replay_role *out, const prog_op *o) {
    const comm_coll coll = o->kind == OP_COLL ? o->coll : COLL_SEND; /* send and recv: p2p */
    comm_add(out, o->group, coll, o->phase, 1, o->bytes, o->sent_bytes, o->seconds);
}

/* The tensor-parallel collectives inside a fwd/bwd (program.h): counted under
 * group tp and the op's phase; their seconds move from compute to comm (they
 * are part of the op's seconds). Returns those seconds. */
static double tp_comm_op(replay_state *s, const prog_op *o, replay_step *st) {
    double t = 0;
    for (int k = 0; k < PROG_TP_COLLS; k++) {
        if (!o->tp_calls[k]) continue;
        comm_add(s->out, GROUP_TP, (comm_coll)k, o->kind == OP_FWD ? COMM_FWD : COMM_BWD,
                 o->tp_calls[k], o->tp_bytes[k], o->tp_sent[k], o->tp_seconds[k]);
        st->sent_bytes[GROUP_TP] += o->tp_sent[k];
        t += o->tp_seconds[k];
    }
    st->comm_s += t;
    s->out->comm_s += t;
    return t;
}

static void step_op(replay_state *s, const prog_op *o, const replay_op *t) {
    replay_step *st = &s->out->steps[o->step];
    if (t->end_s > st->end_s) st->end_s = t->end_s;
    memcpy(st->end_bytes, s->cur, sizeof s->cur);
    if (o->kind == OP_COLL || o->kind == OP_SEND || o->kind == OP_RECV) {
        st->comm_s += o->seconds;
        s->out->comm_s += o->seconds;
        st->sent_bytes[o->group] += o->sent_bytes;
        comm_op(s->out, o);
    } else {
        const double tp = o->kind == OP_FWD || o->kind == OP_BWD ? tp_comm_op(s, o, st) : 0;
        st->compute_s += o->seconds - tp;
        s->out->compute_s += o->seconds - tp;
    }
    if (o->ep_calls > 0) { /* a MoE layer's all-to-alls (expert parallelism) */
        st->sent_bytes[GROUP_EP] += o->ep_sent;
        comm_add(s->out, GROUP_EP, COLL_ALL_TO_ALL,
                 o->kind == OP_FWD ? COMM_FWD : COMM_BWD, o->ep_calls, o->ep_bytes, o->ep_sent,
                 o->ep_seconds);
        st->comm_s += o->ep_seconds, s->out->comm_s += o->ep_seconds;
        st->compute_s -= o->ep_seconds, s->out->compute_s -= o->ep_seconds;
    }
    if (o->ring_passes > 0) { /* the cp ring's sends inside a layer's fwd / bwd */
        const int64_t bytes = o->ring_passes * o->ring_bytes;
        st->sent_bytes[GROUP_CP] += bytes;
        comm_add(s->out, GROUP_CP, COLL_SEND, o->kind == OP_FWD ? COMM_FWD : COMM_BWD,
                 o->ring_passes, bytes, bytes, o->ring_seconds);
    }
}

/* ---- pipeline sends and receives between roles ----------------------------------- */

/* The role index of the stage `stage` with s's tp and cp ranks (role_at maps
 * program_role_index to the role's place in the list), or -1. */
static int32_t peer_role(const replay_state *s, const int32_t *role_at, int32_t stage) {
    if (stage < 0 || stage >= s->p->pp) return -1;
    return role_at[program_role_index(s->p, stage, s->r->tp_rank, s->r->cp_rank)];
}

static int grow(void **v, int32_t *cap, size_t size) {
    const int32_t n = *cap ? 2 * *cap : 16;
    void *w = realloc(*v, (size_t)n * size);
    if (!w) return -1;
    *v = w, *cap = n;
    return 0;
}

/* A receive's arrival: when the next send the peer role has replayed to this
 * role in the same phase (they pair in order, as MPI's matching does) is
 * there to take: its end with overlap_pp (a transfer hidden behind compute),
 * its start without (the receive copies it: replay.h); 1 when that send is
 * not replayed yet, -1 on a mismatch or no memory. */
static int p2p_match(replay_state *s, replay_state *all, const int32_t *role_at, int32_t i,
                     double *arrival, ps_err *err) {
    const prog_op *o = &s->r->ops[i];
    const int32_t from = peer_role(s, role_at, o->peer);
    if (from < 0) return op_err(err, s, i, "no role plays the peer stage");
    p2p_cursor *c = NULL;
    for (int k = 0; k < s->n_cursors && !c; k++)
        if (s->cursors[k].from == from && s->cursors[k].phase == o->phase) c = &s->cursors[k];
    if (!c) {
        int32_t cap = s->cap_cursors;
        if (s->n_cursors == cap && grow((void **)&s->cursors, &cap, sizeof *s->cursors))
            return ps_err_set(err, "out of memory");
        s->cap_cursors = cap;
        c = &s->cursors[s->n_cursors++];
        *c = (p2p_cursor){from, o->phase, 0};
    }
    const replay_state *f = &all[from];
    while (c->at < f->n_sent && (f->sent[c->at].to != s->index || f->sent[c->at].phase != o->phase))
        c->at++;
    if (c->at == f->n_sent) return 1;
    p2p_sent *x = &all[from].sent[c->at++];
    all[from].n_taken++;
    /* the send is done when the receive has taken it: the receive's start, or
     * without overlap_pp its end (time_op) */
    x->posted = s->p->overlap_pp ? s->t_compute
                                 : fmax(s->t_compute, x->start) + o->seconds;
    if (x->mb != o->mb) {
        char msg[160];
        snprintf(msg, sizeof msg, "receives micro-batch %d where stage %d's next send of that "
                                  "kind carries micro-batch %d (they pair in order)",
                 (int)o->mb, (int)o->peer, (int)x->mb);
        return op_err(err, s, i, msg);
    }
    *arrival = s->p->overlap_pp ? x->end : x->start;
    return 0;
}

static int p2p_record(replay_state *s, const int32_t *role_at, int32_t i, ps_err *err) {
    const prog_op *o = &s->r->ops[i];
    const int32_t to = peer_role(s, role_at, o->peer);
    if (to < 0) return op_err(err, s, i, "no role plays the peer stage");
    if (s->n_sent == s->cap_sent && grow((void **)&s->sent, &s->cap_sent, sizeof *s->sent))
        return ps_err_set(err, "out of memory");
    s->sent[s->n_sent++] =
        (p2p_sent){to, o->mb, i, o->phase, s->out->ops[i].start_s, s->out->ops[i].end_s, -1};
    return 0;
}

/* ---- a role ------------------------------------------------------------------------- */

/* Replay role s's ops until a pipeline receive waits for a send its peer has
 * not reached yet. Returns the ops replayed, or -1 with err set. */
static int64_t replay_role_ops(replay_state *s, replay_state *all, const int32_t *role_at,
                               ps_err *err) {
    const prog_role *r = s->r;
    replay_role *out = s->out;
    int64_t ran = 0;
    for (; s->next < r->n_ops; s->next++, ran++) {
        const int32_t i = s->next;
        const prog_op *o = &r->ops[i];
        const bool p2p = is_pp_p2p(o);
        int64_t during[MEM_COUNT] = {0};
        double arrival = 0;
        if (o->step < 0 || o->step >= s->p->steps)
            return op_err(err, s, i, "expected a step of the program");
        if (p2p && o->kind == OP_RECV) {
            const int m = p2p_match(s, all, role_at, i, &arrival, err);
            if (m < 0) return -1;
            if (m > 0) break; /* its send is not replayed yet */
        }
        if (mem_op(s, o, i, during, err) || time_op(s, o, &out->ops[i], arrival, err)) return -1;
        if (p2p && o->kind == OP_SEND && p2p_record(s, role_at, i, err)) return -1;
        memcpy(s->during[i], during, sizeof during);
        memcpy(out->ops[i].bytes, s->cur, sizeof s->cur);
        step_op(s, o, &out->ops[i]);
        if (out->ops[i].end_s > out->end_s) out->end_s = out->ops[i].end_s;
    }
    return ran;
}

/* Each step's seconds, once the role's ops are all replayed. */
static void replay_steps(replay_state *s) {
    replay_role *out = s->out;
    double prev = 0;
    for (int32_t k = 0; k < out->n_steps; k++) {
        replay_step *st = &out->steps[k];
        if (st->end_s < prev) st->end_s = prev; /* a step without ops ends where the last did */
        st->seconds = st->end_s - prev;
        prev = st->end_s;
    }
}

static int state_init(replay_state *s, const program *p, int32_t index, replay_role *out,
                      ps_err *err) {
    const prog_role *r = &p->roles[index];
    memset(s, 0, sizeof *s);
    s->p = p, s->r = r, s->out = out, s->index = index;
    const size_t n_live = (size_t)BUF_COUNT * (size_t)(r->n_units + 1);
    const size_t n_saved = (size_t)p->micro_batches * (size_t)r->n_units;
    s->live = malloc(n_live * sizeof *s->live);
    s->live_cat = calloc(n_live, sizeof *s->live_cat);
    s->saved = malloc((n_saved ? n_saved : 1) * sizeof *s->saved);
    s->stash = malloc((n_saved ? n_saved : 1) * sizeof *s->stash);
    s->during = malloc((size_t)(r->n_ops ? r->n_ops : 1) * sizeof *s->during);
    out->ops = calloc((size_t)(r->n_ops ? r->n_ops : 1), sizeof *out->ops);
    out->steps = calloc((size_t)(p->steps > 0 ? p->steps : 1), sizeof *out->steps);
    out->n_ops = r->n_ops;
    out->n_steps = p->steps;
    for (int c = 0; c < MEM_COUNT; c++) out->peak[c].op = -1;
    out->peak_total.op = -1;
    if (!s->live || !s->live_cat || !s->saved || !s->stash || !s->during || !out->ops ||
        !out->steps)
        return ps_err_set(err, "out of memory");
    for (size_t i = 0; i < n_live; i++) s->live[i] = -1;
    for (size_t i = 0; i < n_saved; i++) s->saved[i] = s->stash[i] = -1;
    return 0;
}

static void state_free(replay_state *s) {
    free(s->live);
    free(s->live_cat);
    free(s->saved);
    free(s->stash);
    free(s->during);
    free(s->pend);
    free(s->sent);
    free(s->cursors);
}

/* All roles in lockstep: each runs as far as its receives allow, until all
 * are done; a round in which none moves is a deadlock (or a receive without
 * its send), named by the first role that waits. */
static int replay_roles(const program *p, replay_state *st, const int32_t *role_at,
                        ps_err *err) {
    bool moved = true, done = false;
    while (moved && !done) {
        moved = false, done = true;
        for (int32_t i = 0; i < p->n_roles; i++) {
            const int64_t ran = replay_role_ops(&st[i], st, role_at, err);
            if (ran < 0) return -1;
            moved |= ran > 0;
            done &= st[i].next == p->roles[i].n_ops;
        }
    }
    for (int32_t i = 0; i < p->n_roles && !done; i++)
        if (st[i].next < p->roles[i].n_ops)
            return op_err(err, &st[i], st[i].next,
                          "waits for a send that never comes (the stages' sends and receives "
                          "wait on each other, or do not pair up)");
    for (int32_t i = 0; i < p->n_roles; i++) {
        if (st[i].n_taken != st[i].n_sent) /* the runtime's end of step would wait for them */
            return ps_err_set(err, "role %d (stage %d): %d of its %d pipeline sends have no "
                                   "receive on their peer stage", (int)i, (int)p->roles[i].stage,
                              (int)(st[i].n_sent - st[i].n_taken), (int)st[i].n_sent);
        if (mem_sends(&st[i], err)) return -1;
        replay_steps(&st[i]);
    }
    return 0;
}

int replay_program(const program *p, replay_result *out, ps_err *err) {
    memset(out, 0, sizeof *out);
    const size_t n = (size_t)(p->n_roles ? p->n_roles : 1);
    out->roles = calloc(n, sizeof *out->roles);
    replay_state *st = calloc(n, sizeof *st);
    int32_t *role_at = malloc(n * sizeof *role_at);
    int rc = 0;
    if (!out->roles || !st || !role_at) rc = ps_err_set(err, "out of memory");
    out->n_roles = out->roles ? p->n_roles : 0;
    for (int32_t i = 0; rc == 0 && i < p->n_roles; i++) role_at[i] = -1;
    for (int32_t i = 0; rc == 0 && i < p->n_roles; i++) {
        const prog_role *r = &p->roles[i];
        const int64_t k = program_role_index(p, r->stage, r->tp_rank, r->cp_rank);
        if (k >= 0 && k < p->n_roles) role_at[k] = i;
        rc = state_init(&st[i], p, i, &out->roles[i], err);
    }
    if (rc == 0) rc = replay_roles(p, st, role_at, err);
    for (int32_t i = 0; st && i < p->n_roles; i++) state_free(&st[i]);
    free(st);
    free(role_at);
    if (rc) {
        replay_free(out);
        return -1;
    }
    for (int32_t i = 0; i < p->n_roles; i++)
        if (out->roles[i].end_s > out->end_s) out->end_s = out->roles[i].end_s;
    return 0;
}

void replay_free(replay_result *r) {
    if (!r) return;
    for (int32_t i = 0; r->roles && i < r->n_roles; i++) {
        free(r->roles[i].ops);
        free(r->roles[i].steps);
    }
    free(r->roles);
    memset(r, 0, sizeof *r);
}
