/* rt_exec.c — the executor (see rt_exec.h). */
#include "rt_exec.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_ckpt_gather.h"
#include "rt_data.h"
#include "rt_gen.h"
#include "rt_model.h"
#include "rt_pipe.h"
#include "rt_ring.h"
#include "rt_watchdog.h"

typedef struct {
    const program *p;
    const prog_role *r;
    const rt_backend *be;
    rt_groups *g;
    rt_mem mem;
    rt_model model;
    rt_ring ring; /* context parallelism (rt_ring.h) */
    rt_data data;
    void *buf[BUF_COUNT];
    void **unit_buf[BUF_COUNT]; /* BUF_UNIT_PARAMS / BUF_UNIT_GRADS: per unit */
    rt_dtype dt[BUF_COUNT];
    /* whole-space buffers: the flat elements [first, first + held) this rank
     * holds (program_buf_held: the whole space or the rank's shard) */
    int64_t first[BUF_COUNT], held[BUF_COUNT];
    int32_t dp_rank; /* the shard index: the rank in the dp-cp group */
    double t0;
    /* the first non-finite loss or gradient norm on this rank (the ranks agree
     * on it at the end of the step) */
    int diverged;
    ps_err diverged_err;
    rt_watchdog *watchdog;
    rt_pipe pipe; /* the role's global units; pipeline sends (rt_pipe.h) */
    /* --save-weights / --save: the records of the step being saved (NULL: none) */
    rt_ckpt_parts *ckpt;
    const rt_options *opt;
    int64_t step0; /* steps done before this run (--resume) */
    rt_gen teacher; /* distillation: built by the teacher's alloc (teacher_alloc) */
    bool teacher_built;
} exec;

/* This rank's place in its ep group, which picks its experts (0 without ep). */
static int ep_rank(const exec *x) { return x->p->ep > 1 ? x->g->dp_index % (int)x->p->ep : 0; }

/* ---- buffers ------------------------------------------------------------------ */

/* Elements buffer b (unit u) holds on this rank. */
static int64_t buf_elems(const exec *x, prog_buf b, int32_t u) {
    if (b == BUF_UNIT_PARAMS || b == BUF_UNIT_GRADS) return x->r->units[u].elems;
    return x->held[b];
}

static void **buf_slot(exec *x, prog_buf b, int32_t u) {
    if (b == BUF_UNIT_PARAMS || b == BUF_UNIT_GRADS) return &x->unit_buf[b][u];
    return &x->buf[b];
}

/* Flat element i of a whole-space buffer b: its address (NULL if this rank's
 * buffer does not hold it). */
static int64_t buf_index(const exec *x, prog_buf b, int64_t i) {
    if (x->held[b] == x->r->flat_elems) return i - x->first[b]; /* whole */
    return program_shard_index(x->p, x->r, x->dp_rank, i); /* a shard (under ep two) */
}

static void *buf_at(exec *x, prog_buf b, int64_t i) {
    void *base = x->buf[b];
    if (!base) return NULL;
    const int64_t k = buf_index(x, b, i);
    if (k < 0 || k >= x->held[b]) return NULL;
    return (char *)base + k * rt_dtype_bytes(x->dt[b]);
}

/* The next piece of whole-space buffer b this rank holds from flat element *i
 * on, within one segment of the flat space (program_segment_end: under ep a
 * layer's held experts, sharded over edp, or a stretch between them, sharded
 * over dp), so contiguous in memory: its length (0 when none is left) and flat
 * start *at; *i moves past the segment. */
static int64_t next_piece(const exec *x, prog_buf b, int64_t *i, int64_t *at) {
    while (*i < x->r->flat_elems) {
        bool experts;
        const int64_t lo = *i, end = program_segment_end(x->r, lo, &experts);
        *i = end;
        if (x->held[b] == x->r->flat_elems) {
            *at = lo;
            return end - lo;
        }
        const int32_t q = experts ? x->dp_rank / (int32_t)x->p->ep : x->dp_rank;
        const int64_t n = program_shard_part(x->r, lo, end - lo, q, at);
        if (n > 0) return n;
    }
    return 0;
}

/* "op I (kind, step S, mb M, unit U)": a collective's kind is its group and
 * collective ("dp all-reduce"); steps count from 1, as the per-step lines do
 * (the program's op field counts from 0). Async-signal-safe (rt_text): the
 * watchdog's messages use it too. */
static void op_label(const prog_role *r, int64_t step0, int32_t i, rt_text *t) {
    const prog_op *o = &r->ops[i];
    rt_text_str(t, "op ");
    rt_text_int(t, i);
    rt_text_str(t, " (");
    if (o->kind == OP_COLL) {
        rt_text_str(t, comm_group_names[o->group]);
        rt_text_str(t, " ");
        rt_text_str(t, comm_coll_names[o->coll]);
    } else {
        rt_text_str(t, prog_kind_names[o->kind]);
    }
    rt_text_str(t, ", step ");
    rt_text_int(t, (long long)(step0 + o->step + 1)); /* a resumed run's steps continue */
    if (o->mb >= 0 && o->kind >= OP_FWD && o->kind != OP_COLL && o->kind != OP_OPTIM) {
        rt_text_str(t, ", mb "); /* fwd, bwd, send, recv */
        rt_text_int(t, o->mb);
    }
    if (o->kind == OP_SEND || o->kind == OP_RECV) {
        rt_text_str(t, o->kind == OP_SEND ? ", to stage " : ", from stage ");
        rt_text_int(t, o->peer);
    }
    if (o->unit >= 0) {
        rt_text_str(t, ", unit ");
        rt_text_str(t, r->units[o->unit].name);
    }
    rt_text_str(t, ")");
}

static int fail(ps_err *err, const exec *x, int32_t i, const char *what) {
    char label[256];
    rt_text t = {label, sizeof label, 0};
    op_label(x->r, x->step0, i, &t);
    return ps_err_set(err, "%s: %s", label, what);
}

/* Training diverged at op i: keep the first such op of this rank; the step
 * goes on (every rank runs the same collectives) and its end stops them all. */
static void diverged(exec *x, int32_t i, const char *what, double v) {
    if (x->diverged) return;
    x->diverged = 1;
    char label[256];
    rt_text t = {label, sizeof label, 0};
    op_label(x->r, x->step0, i, &t);
    ps_err_set(&x->diverged_err, "rank %d: %s: %s is %s: training diverged (train.lr = %g); "
                                 "lower the learning rate, or check the data and the initial "
                                 "weights", x->g->world.rank, label, what,
               isnan(v) ? "nan" : v > 0 ? "inf" : "-inf", x->p->lr);
}

/* The model's own message, prefixed with the op. */
static int fail_with(ps_err *err, const exec *x, int32_t i) {
    char msg[PS_ERR_MSG_MAX - 128];
    size_t n = strlen(err->msg);
    if (n >= sizeof msg) n = sizeof msg - 1;
    memcpy(msg, err->msg, n);
    msg[n] = 0;
    return fail(err, x, i, msg);
}

/* Distillation: the teacher's alloc builds the inference engine on this rank's tp
 * group from the checkpoint the caller read (rt_options.teacher), its weights and
 * scales in MEM_TEACHER, which must come to the program's bytes; the host copy is
 * then freed. */
static int teacher_alloc(exec *x, int32_t i, ps_err *err) {
    const prog_op *o = &x->r->ops[i];
    const prog_distill *d = &x->p->distill;
    rt_ckpt *ck = x->opt ? x->opt->teacher : NULL;
    char msg[512];
    if (x->teacher_built) return fail(err, x, i, "the teacher is already allocated");
    if (!ck || !ck->data) return fail(err, x, i, "no teacher checkpoint was read (rt_options.teacher)");
    const int scheme = rt_wscheme_parse(d->weights);
    if (scheme < 0) {
        snprintf(msg, sizeof msg, "teacher weights %s: not a scheme of the inference engine",
                 d->weights);
        return fail(err, x, i, msg);
    }
    const rt_gen_cfg cfg = {.weights = (rt_wscheme)scheme, .group = d->group_size,
                            .kv = KERN_KV_F32, .block_size = 16, .prefill_chunk = x->model.N,
                            .batch = 1, .no_cache = true, .teacher = true};
    const int64_t before = x->mem.current[MEM_TEACHER];
    if (rt_gen_init(&x->teacher, ck, &cfg, x->be, &x->mem,
                    x->p->tp > 1 ? &x->g->group[GROUP_TP] : NULL, (int)x->p->tp,
                    (int)x->r->tp_rank, err))
        return fail_with(err, x, i);
    x->teacher_built = true;
    x->model.teacher = &x->teacher;
    rt_ckpt_free(ck); /* the engine holds what this rank needs */
    const int64_t got = x->mem.current[MEM_TEACHER] - before;
    if (got != o->bytes) {
        snprintf(msg, sizeof msg, "teacher is %lld bytes in the program; the inference engine "
                                  "holds %lld (program and runtime disagree)",
                 (long long)o->bytes, (long long)got);
        return fail(err, x, i, msg);
    }
    return 0;
}

static int op_alloc(exec *x, int32_t i, ps_err *err) {
    const prog_op *o = &x->r->ops[i];
    if (o->buf == BUF_TEACHER) return teacher_alloc(x, i, err);
    void **slot = buf_slot(x, o->buf, o->unit);
    const int64_t want = buf_elems(x, o->buf, o->unit) * rt_dtype_bytes(x->dt[o->buf]);
    char msg[256];
    if (*slot) return fail(err, x, i, "the buffer is already allocated");
    if (o->bytes != want) {
        snprintf(msg, sizeof msg, "%s is %lld bytes in the program; the runtime's model needs "
                                  "%lld (program and runtime disagree)",
                 prog_buf_names[o->buf], (long long)o->bytes, (long long)want);
        return fail(err, x, i, msg);
    }
    *slot = rt_mem_alloc(&x->mem, o->cat, o->bytes);
    if (!*slot) {
        snprintf(msg, sizeof msg, "out of memory allocating %lld bytes of %s (in use: %lld bytes)",
                 (long long)o->bytes, prog_buf_names[o->buf], (long long)rt_mem_total(&x->mem));
        return fail(err, x, i, msg);
    }
    /* the model's initial weights: fp32 master and the working copy agree; a
     * resumed run's weights and AdamW moments come from its checkpoint */
    const rt_ckpt *ck = x->opt ? x->opt->resume : NULL;
    if (o->buf == BUF_PARAMS || o->buf == BUF_MASTER ||
        (ck && (o->buf == BUF_ADAM_M || o->buf == BUF_ADAM_V))) {
        memset(*slot, 0, (size_t)o->bytes); /* a shard's padding */
        const float *from = !ck                    ? NULL
                            : o->buf == BUF_ADAM_M ? ck->adam_m
                            : o->buf == BUF_ADAM_V ? ck->adam_v
                                                   : ck->data;
        int64_t at, n;
        for (int64_t k = 0; (n = next_piece(x, o->buf, &k, &at)) > 0;) {
            void *dst = buf_at(x, o->buf, at);
            float *v = x->dt[o->buf] == RT_F32 ? dst : malloc((size_t)n * 4);
            if (!v) return fail(err, x, i, "out of host memory for the initial weights");
            if (from) /* the one-rank values at this rank's elements; padding stays 0 */
                for (int64_t e = 0; e < n; e++) {
                    const int64_t j = rt_tp_full_index(x->p, x->r, ep_rank(x), at + e);
                    v[e] = j < 0 ? 0.0f : from[j];
                }
            else
                rt_tp_init_values(x->p, x->r, ep_rank(x), x->p->seed, at, n, v); /* one rank's */
            if (v != dst) {
                x->be->to_bf16(dst, v, n);
                free(v);
            }
        }
    }
    return 0;
}

static int op_free(exec *x, int32_t i, ps_err *err) {
    const prog_op *o = &x->r->ops[i];
    void **slot = buf_slot(x, o->buf, o->unit);
    if (!*slot) return fail(err, x, i, "the buffer is not allocated");
    rt_mem_free(&x->mem, *slot);
    *slot = NULL;
    return 0;
}

/* ---- compute ---------------------------------------------------------------------- */

static void stage_batch(exec *x, int32_t step, int32_t mb) {
    const program *p = x->p;
    const int64_t first = (x->step0 + step) * p->global_batch +
                          ((int64_t)x->g->dp_index * p->micro_batches + mb) * p->micro_batch;
    const int64_t N = x->model.N;
    if (x->model.ring) /* context parallelism: this rank's zig-zag rows */
        rt_ring_batch(x->model.ring, &x->data, first, p->micro_batch, x->model.tokens + mb * N,
                      x->model.targets + mb * N);
    else
        rt_data_batch(&x->data, first, p->micro_batch, x->model.tokens + mb * N,
                      x->model.targets + mb * N);
}

/* Does whole-space buffer b on this rank hold all of unit u (a whole buffer,
 * or a shard that covers it: every shard does when dp = 1)? */
static bool holds_unit(const exec *x, prog_buf b, int32_t u) {
    const prog_unit *un = &x->r->units[u];
    return x->buf[b] && un->offset >= x->first[b] &&
           un->offset + un->elems <= x->first[b] + x->held[b];
}

static const void *unit_weights(exec *x, int32_t u) {
    if (x->unit_buf[BUF_UNIT_PARAMS][u]) return x->unit_buf[BUF_UNIT_PARAMS][u];
    return holds_unit(x, BUF_PARAMS, u) ? buf_at(x, BUF_PARAMS, x->r->units[u].offset) : NULL;
}

static void *unit_grads(exec *x, int32_t u) {
    if (x->unit_buf[BUF_UNIT_GRADS][u]) return x->unit_buf[BUF_UNIT_GRADS][u];
    return holds_unit(x, BUF_GRADS, u) ? buf_at(x, BUF_GRADS, x->r->units[u].offset) : NULL;
}

static int op_fwd(exec *x, int32_t i, ps_err *err) {
    const prog_op *o = &x->r->ops[i];
    const void *w = unit_weights(x, o->unit);
    const int32_t gu = x->pipe.global[o->unit]; /* the model's unit */
    const bool head = gu == x->p->layers + 1;
    if (!w) return fail(err, x, i, "the unit's parameters are not gathered");
    /* the first stage reads the tokens, the last the targets */
    if (gu == 0 || (head && !x->pipe.has_embed)) stage_batch(x, o->step, o->mb);
    if (head && o->mb == 0) x->model.loss_sum = 0;
    const bool save = x->p->recompute != RECOMPUTE_FULL || gu == 0 || head;
    if (rt_model_fwd(&x->model, gu, o->mb, w, x->dt[BUF_PARAMS], save, err) != 0)
        return fail_with(err, x, i);
    if (head && !isfinite(x->model.loss_sum))
        diverged(x, i, "the loss (summed over this rank's micro-batches so far)",
                 x->model.loss_sum);
    return 0;
}

static int op_bwd(exec *x, int32_t i, ps_err *err) {
    const prog_op *o = &x->r->ops[i];
    const void *w = unit_weights(x, o->unit);
    void *g = unit_grads(x, o->unit);
    if (!w) return fail(err, x, i, "the unit's parameters are not gathered");
    if (!g) return fail(err, x, i, "the unit has no gradient buffer");
    if (rt_model_bwd_part(&x->model, x->pipe.global[o->unit], o->mb, w, x->dt[BUF_PARAMS], g,
                          x->dt[BUF_GRADS], o->recompute, o->part, err) == 0)
        return 0;
    return fail_with(err, x, i);
}

/* ---- collectives ------------------------------------------------------------------ */

/* dst[0..n) += src (fp32) in dst's dtype */
static void accumulate(exec *x, void *dst, rt_dtype t, const void *src, int64_t n, float *tmp) {
    if (t == RT_F32) {
        x->be->add(dst, dst, src, n);
        return;
    }
    float *a = tmp, *b = tmp + n;
    x->be->from_bf16(a, dst, n);
    x->be->from_bf16(b, src, n);
    x->be->add(a, a, b, n);
    x->be->to_bf16(dst, a, n);
}

/* The start of [off, off+n) in the op's source buffer. */
static void *range_ptr(exec *x, prog_buf b, int32_t u, int64_t off) {
    if (b == BUF_UNIT_PARAMS || b == BUF_UNIT_GRADS) {
        void *base = x->unit_buf[b][u];
        int64_t k = off - x->r->units[u].offset;
        return base ? (char *)base + k * rt_dtype_bytes(x->dt[b]) : NULL;
    }
    return buf_at(x, b, off);
}

static int op_coll(exec *x, int32_t i, int64_t *bytes, ps_err *err) {
    const prog_op *o = &x->r->ops[i];
    rt_group *grp = &x->g->group[o->group];
    const int d = grp->size;
    const int64_t off = o->offset;
    const rt_dtype t = x->dt[o->src];
    int64_t *counts = calloc((size_t)(2 * d), sizeof *counts), *displs = counts + d;
    if (!counts) return fail(err, x, i, "out of host memory");
    int64_t total = 0;
    for (int q = 0; q < d; q++) {
        counts[q] = program_shard_part(x->r, off, o->elems, q, NULL);
        displs[q] = total;
        total += counts[q];
    }
    if (total > INT_MAX) { /* MPI counts are int */
        free(counts);
        return fail(err, x, i, "the collective's range exceeds 2^31 elements (MPI's int counts); "
                               "use smaller buckets (memory.bucket)");
    }
    const int64_t mine = counts[grp->rank], mine_at = off + (mine ? displs[grp->rank] : 0);
    int rc = 0;
    /* reductions read the whole range; a gather reads only this rank's part */
    void *src = o->coll == COLL_ALL_GATHER ? NULL : range_ptr(x, o->src, o->unit, off);
    if (!src && o->coll != COLL_ALL_GATHER) {
        free(counts);
        return fail(err, x, i, "the source buffer does not hold the range");
    }
    switch (o->coll) {
    case COLL_ALL_REDUCE:
        rc = x->be->all_reduce(grp, src, o->elems, t);
        total = o->elems;
        break;
    case COLL_REDUCE_SCATTER: {
        /* the rank's part lands here, then adds into the shard; bf16 adds in fp32 */
        const int64_t recv = (mine * rt_dtype_bytes(t) + 63) / 64 * 64,
                      widen = t == RT_F32 ? 0 : 2 * mine * 4;
        char *tmp = rt_mem_alloc(&x->mem, MEM_WORKSPACE, recv + widen);
        if (!tmp) {
            free(counts);
            return fail(err, x, i, "out of memory for the reduce-scatter's receive buffer");
        }
        rc = x->be->reduce_scatter(grp, src, tmp, counts, t);
        void *dst = buf_at(x, o->dst, mine_at);
        if (rc == 0 && mine > 0) {
            if (!dst) rc = -1;
            else if (o->dst == o->src && o->unit < 0) /* in place: the own part is the sum */
                memcpy(dst, tmp, (size_t)(mine * rt_dtype_bytes(t)));
            else /* into the sharded gradient, accumulating over micro-batches */
                accumulate(x, dst, x->dt[o->dst], tmp, mine, (float *)(tmp + recv));
        }
        rt_mem_free(&x->mem, tmp);
        break;
    }
    case COLL_ALL_GATHER: {
        void *mine_src = buf_at(x, o->src, mine_at);
        void *dst = range_ptr(x, o->dst, o->unit, off);
        if (!dst || (mine > 0 && !mine_src)) rc = -1;
        else if (o->src == o->dst) rc = x->be->all_gather(grp, NULL, dst, counts, displs, t);
        else rc = x->be->all_gather(grp, mine_src, dst, counts, displs, t);
        break;
    }
    default: rc = -1;
    }
    free(counts);
    *bytes = total * rt_dtype_bytes(t);
    if (rc) {
        char why[PS_ERR_MSG_MAX / 2];
        snprintf(why, sizeof why, "the collective failed: %s -- a peer rank died, or its link "
                                  "broke", x->be->coll_error ? x->be->coll_error() : "");
        return fail(err, x, i, why);
    }
    return 0;
}

/* ---- optimizer ---------------------------------------------------------------------- */

/* Is a checkpoint written after step `step` of the program: the last one
 * (--save-weights, --save), or one whose number in the training is a multiple
 * of --save-every? */
static bool saves_after(const exec *x, int32_t step) {
    const rt_options *opt = x->opt;
    if (step == x->p->steps - 1) return true;
    return opt->save_path && opt->save_every > 0 && (x->step0 + step + 1) % opt->save_every == 0;
}

/* AdamW on the flat elements [lo, lo + n), which lie in one piece (next_piece). */
static int optim_piece(exec *x, int32_t i, int64_t lo, int64_t n, ps_err *err) {
    const prog_op *o = &x->r->ops[i];
    const program *p = x->p;
    const bool master = x->buf[BUF_MASTER] != NULL;
    float *pw = master ? buf_at(x, BUF_MASTER, lo) : buf_at(x, BUF_PARAMS, lo);
    float *m = buf_at(x, BUF_ADAM_M, lo), *v = buf_at(x, BUF_ADAM_V, lo);
    void *g = buf_at(x, BUF_GRADS, lo);
    if (!pw || !m || !v || !g) return fail(err, x, i, "a buffer does not hold the optimizer's range");
    if (!master && x->dt[BUF_PARAMS] != RT_F32)
        return fail(err, x, i, "bf16 parameters without fp32 master weights");
    float *gf = g, *tmp = NULL;
    if (x->dt[BUF_GRADS] != RT_F32) {
        tmp = rt_mem_alloc(&x->mem, MEM_WORKSPACE, n * 4);
        if (!tmp) return fail(err, x, i, "out of memory for the optimizer's gradient copy");
        x->be->from_bf16(tmp, g, n);
        gf = tmp;
    }
    /* a non-finite element makes the norm non-finite (squares of floats stay finite in double) */
    const double norm2 = x->be->sum_squares(gf, n);
    if (!isfinite(norm2)) diverged(x, i, "the gradient norm (of this rank's range)", norm2);
    if (o->step == 0) rt_tp_dump(p, x->r, ep_rank(x), "grads", x->g->world.rank, lo, gf, n);
    /* Adam's step count t continues a resumed run's */
    x->be->adamw(pw, m, v, gf, n, (float)p->lr, (float)p->beta1, (float)p->beta2, (float)p->eps,
                 (float)p->weight_decay, (int)(x->step0 + o->step + 1));
    if (o->step == p->steps - 1)
        rt_tp_dump(p, x->r, ep_rank(x), "params", x->g->world.rank, lo, pw, n);
    if (x->ckpt && saves_after(x, o->step))
        rt_ckpt_parts_add(x->ckpt, p, x->r, ep_rank(x), lo, n, pw, m, v);
    rt_mem_free(&x->mem, tmp);
    if (master) { /* the working copy follows the master weights */
        void *pp = buf_at(x, BUF_PARAMS, lo);
        if (!pp) return fail(err, x, i, "the parameter buffer does not hold the optimizer's range");
        if (x->dt[BUF_PARAMS] == RT_F32) memcpy(pp, pw, (size_t)n * 4);
        else x->be->to_bf16(pp, pw, n);
    }
    return 0;
}

static int op_optim(exec *x, int32_t i, ps_err *err) {
    const prog_op *o = &x->r->ops[i];
    /* the range is relative to what this rank holds of the optimizer states; the
     * padding, in no piece, is not trained */
    int64_t at, n;
    for (int64_t k = 0; (n = next_piece(x, BUF_ADAM_M, &k, &at)) > 0;) {
        const int64_t li = buf_index(x, BUF_ADAM_M, at);
        const int64_t lo = li > o->offset ? li : o->offset;
        const int64_t hi = li + n < o->offset + o->elems ? li + n : o->offset + o->elems;
        if (hi > lo && optim_piece(x, i, at + (lo - li), hi - lo, err)) return -1;
    }
    return 0;
}

/* ---- the run ------------------------------------------------------------------------ */

static int run_op(exec *x, int32_t i, int64_t *coll_bytes, ps_err *err) {
    const prog_op *o = &x->r->ops[i];
    switch (o->kind) {
    case OP_ALLOC: return op_alloc(x, i, err);
    case OP_FREE: return op_free(x, i, err);
    case OP_ZERO_GRAD:
        if (!x->buf[BUF_GRADS]) return fail(err, x, i, "no gradient buffer");
        memset(x->buf[BUF_GRADS], 0,
               (size_t)(buf_elems(x, BUF_GRADS, -1) * rt_dtype_bytes(x->dt[BUF_GRADS])));
        return 0;
    case OP_FWD: return op_fwd(x, i, err);
    case OP_BWD: return op_bwd(x, i, err);
    case OP_COLL: return op_coll(x, i, coll_bytes, err);
    case OP_OPTIM: return op_optim(x, i, err);
    case OP_SEND:
    case OP_RECV: return rt_pipe_op(&x->pipe, &x->model, o, coll_bytes, err) ? fail_with(err, x, i)
                                                                             : 0;
    default: return fail(err, x, i, "this op is not supported by the runtime yet");
    }
}

static int exec_init(exec *x, const program *p, const rt_backend *be, rt_groups *g,
                     const rt_options *opt, ps_err *err) {
    memset(x, 0, sizeof *x);
    x->p = p, x->be = be, x->g = g, x->opt = opt;
    x->step0 = opt && opt->resume ? opt->resume->m.steps : 0;
    x->r = &p->roles[g->role];
    x->dp_rank = g->group[GROUP_DP].rank;
    for (int b = 0; b < BUF_COUNT; b++) /* the shard index: the rank in the dp-cp group */
        x->held[b] = program_buf_held(p, x->r, (prog_buf)b, -1, g->group[GROUP_DP].rank,
                                      &x->first[b]);
    x->dt[BUF_PARAMS] = x->dt[BUF_UNIT_PARAMS] = rt_dtype_of(p->precision.params);
    x->dt[BUF_GRADS] = x->dt[BUF_UNIT_GRADS] = rt_dtype_of(p->precision.grads);
    x->dt[BUF_MASTER] = x->dt[BUF_ADAM_M] = x->dt[BUF_ADAM_V] = RT_F32;
    if (rt_mem_init(&x->mem, be->mem_alloc, be->mem_free) != 0)
        return ps_err_set(err, "out of host memory");
    x->mem.limit_bytes = opt ? opt->memory_limit_bytes : 0;
    x->unit_buf[BUF_UNIT_PARAMS] = calloc((size_t)x->r->n_units, sizeof(void *));
    x->unit_buf[BUF_UNIT_GRADS] = calloc((size_t)x->r->n_units, sizeof(void *));
    if (!x->unit_buf[BUF_UNIT_PARAMS] || !x->unit_buf[BUF_UNIT_GRADS])
        return ps_err_set(err, "out of host memory");
    if (rt_pipe_init(&x->pipe, p, x->r, be, &x->mem, &g->group[GROUP_PP], err)) return -1;
    for (int32_t u = 0; u < x->r->n_units; u++)
        if (x->r->units[u].elems != rt_model_unit_elems(p, x->pipe.global[u]))
            return ps_err_set(err, "unit %s has %lld parameters in the program; the runtime's "
                                   "model has %lld", x->r->units[u].name,
                              (long long)x->r->units[u].elems,
                              (long long)rt_model_unit_elems(p, x->pipe.global[u]));
    if (rt_data_open(&x->data, p, opt ? opt->data_limit_bytes : 0, err) != 0) return -1;
    if (rt_model_init(&x->model, p, be, &x->mem, err) != 0) return -1;
    return rt_ring_attach(&x->ring, &x->model, p, &g->group[GROUP_CP], (int)x->r->cp_rank, err);
}

static void exec_free(exec *x) {
    rt_watchdog_stop(x->watchdog);
    x->watchdog = NULL;
    rt_model_free(&x->model);
    if (x->teacher_built) rt_gen_free(&x->teacher);
    x->teacher_built = false;
    rt_pipe_free(&x->pipe);
    rt_ring_free(&x->ring);
    rt_data_close(&x->data);
    rt_mem_release(&x->mem);
    if (x->be) x->be->mem_trim();
    free(x->unit_buf[BUF_UNIT_PARAMS]);
    free(x->unit_buf[BUF_UNIT_GRADS]);
}

/* End of a step: stop every rank if one diverged (1, with its message in
 * err); else the global mean loss and the slowest rank's time. */
static int end_step(exec *x, int step, double t_begin, const rt_options *opt, rt_result *out,
                    ps_err *err) {
    const program *p = x->p;
    if (rt_pipe_drain(&x->pipe, err)) return -1; /* this rank's sends of the step are done */
    if (x->diverged) *err = x->diverged_err;
    if (rt_world_agree_first(x->diverged, err) != 0) return 1;
    /* the loss is on the last stage's ranks (each tp rank has all of it) */
    /* the load-balancing losses of the MoE layers join the cross-entropy (rt_model.h) */
    double loss = rt_groups_sum(&x->g->world,
                                x->r->tp_rank == 0 ? x->model.loss_sum + x->model.aux_sum : 0);
    x->model.aux_sum = 0;
    double secs = rt_groups_max(x->g, x->be->now_seconds() - t_begin);
    out->loss[step] = loss / ((double)p->global_batch * (double)p->seq);
    out->step_seconds[step] = secs;
    if (step == 0) memcpy(out->end_of_step0, x->mem.current, sizeof out->end_of_step0);
    rt_watchdog_end(x->watchdog); /* the reductions are done; printing is not timed */
    if (opt && opt->on_step)
        opt->on_step(opt->ctx, (int)(x->step0 + step), out->loss[step], secs, &x->mem);
    return 0;
}

/* The cp ring's passes inside op e (a layer's fwd / bwd): the cp group's sends. */
static void ring_stats(exec *x, rt_event *e, rt_result *out) {
    rt_ring *r = x->model.ring;
    if (!r || !r->calls) return;
    rt_coll_stat *s = &out->coll[GROUP_CP][COLL_SEND];
    s->calls += r->calls;
    s->bytes += r->bytes;
    s->seconds += r->seconds;
    e->coll_bytes += r->bytes;
    r->calls = r->bytes = 0;
    r->seconds = 0;
}

/* For the watchdog: what >= 0 is an op, -1 - s the end of step s. */
static void describe(const void *ctx, int32_t what, rt_text *t) {
    const exec *x = ctx;
    if (what >= 0) {
        op_label(x->r, x->step0, what, t);
        return;
    }
    rt_text_str(t, "the end of step ");
    rt_text_int(t, x->step0 - (long long)what);
    rt_text_str(t, " (the ranks' loss and time reductions)");
}

int rt_exec_run(const program *p, const rt_backend *be, rt_groups *g, const rt_options *opt,
                rt_result *out, ps_err *err) {
    memset(out, 0, sizeof *out);
    exec x;
    int rc = exec_init(&x, p, be, g, opt, err);
    /* set-up problems (a missing corpus on one node) stop every rank, with the message */
    if (rt_world_agree(rc, err) != 0) {
        exec_free(&x);
        return 1; /* every rank knows, with the same message */
    }
    const prog_role *r = x.r;
    rt_ckpt_parts ckpt = {.arrays = opt && opt->save_path ? 3 : 1};
    if (opt && (opt->save_weights_path || opt->save_path)) x.ckpt = &ckpt;
    out->steps = p->steps;
    out->first_step = x.step0;
    out->loss = calloc((size_t)p->steps, sizeof *out->loss);
    out->step_seconds = calloc((size_t)p->steps, sizeof *out->step_seconds);
    out->events = calloc((size_t)r->n_ops, sizeof *out->events);
    out->tokens_per_step = (double)p->global_batch * (double)p->seq;
    if (!out->loss || !out->step_seconds || !out->events) {
        exec_free(&x);
        return ps_err_set(err, "out of host memory for the profile");
    }
    if (p->tp > 1) rt_model_set_tp(&x.model, &g->group[GROUP_TP], out->coll[GROUP_TP]);
    if (p->ep > 1)
        rt_model_set_ep(&x.model, &g->group[GROUP_EP], &out->coll[GROUP_EP][COLL_ALL_TO_ALL]);
    x.watchdog = rt_watchdog_start(opt ? opt->timeout_s : 0, g->world.rank, describe, &x);
    x.t0 = be->now_seconds();
    double t_step = x.t0;
    for (int32_t i = 0; i < r->n_ops && rc == 0; i++) {
        const prog_op *o = &r->ops[i];
        rt_event *e = &out->events[out->n_events++];
        int64_t coll_bytes = 0;
        rt_mem_op_begin(&x.mem);
        be->synchronize();
        e->op = i;
        e->start = be->now_seconds() - x.t0;
        rt_watchdog_begin(x.watchdog, i);
        rc = run_op(&x, i, &coll_bytes, err);
        be->synchronize();
        rt_watchdog_end(x.watchdog);
        e->end = be->now_seconds() - x.t0;
        memcpy(e->current, x.mem.current, sizeof e->current);
        memcpy(e->peak, x.mem.op_peak, sizeof e->peak);
        e->peak_total = x.mem.op_peak_total;
        e->coll_bytes = coll_bytes;
        ring_stats(&x, e, out);
        if (o->kind == OP_COLL || o->kind == OP_SEND || o->kind == OP_RECV) {
            rt_coll_stat *s = &out->coll[o->group][o->kind == OP_COLL ? o->coll : COLL_SEND];
            s->calls++;
            s->bytes += coll_bytes;
            s->seconds += e->end - e->start;
        }
        if (rc) break;
        if (i + 1 == r->n_ops || r->ops[i + 1].step != o->step) {
            rt_watchdog_begin(x.watchdog, -1 - o->step);
            rc = end_step(&x, o->step, t_step, opt, out, err);
            rt_watchdog_end(x.watchdog);
            /* --save-every: the state after this step, written between steps (not
             * timed); the last step's is written after the buffers are freed */
            if (rc == 0 && x.ckpt && o->step < p->steps - 1 && saves_after(&x, o->step)) {
                rc = rt_ckpt_gather_write(x.ckpt, p, x.step0 + o->step + 1, be, &g->world,
                                          opt->save_path, NULL, err);
                rt_ckpt_parts_clear(x.ckpt);
            }
            t_step = be->now_seconds();
        }
    }
    memcpy(out->peak, x.mem.peak, sizeof out->peak);
    out->peak_total = x.mem.peak_total;
    exec_free(&x);
    /* the state after the last step, gathered to rank 0 and written */
    if (rc == 0 && x.ckpt)
        rc = rt_ckpt_gather_write(x.ckpt, p, x.step0 + p->steps, be, &g->world, opt->save_path,
                                  opt->save_weights_path, err);
    rt_ckpt_parts_free(&ckpt);
    return rc;
}

void rt_result_free(rt_result *r) {
    free(r->loss);
    free(r->step_seconds);
    free(r->events);
    memset(r, 0, sizeof *r);
}
