/* pipe_sched.c — pipeline op orders and their event simulation (see sched.h and
 * docs/schedule.md). */
#include "time/pipe_sched.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "cost/pipe.h"

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

static bool times_ok(const double *t, int64_t p, bool may_be_null) {
    if (!t) return may_be_null;
    for (int64_t s = 0; s < p; s++)
        if (!isfinite(t[s]) || t[s] < 0) return false;
    return true;
}

/* p, m, v and the kind (times aside). */
static bool shape_valid(const sched_in *in) {
    if (!in || in->p < 1 || in->p > PLAN_MAX_STAGES || in->m < 1 || in->m > INT32_MAX ||
        in->v < 1 || in->v > INT16_MAX)
        return false;
    switch (in->kind) {
    case SCHED_AFAB:
    case SCHED_1F1B:
    case SCHED_ZERO_BUBBLE:
        if (in->v != 1) return false;
        break;
    case SCHED_INTERLEAVED:
        if (in->m % in->p) return false; /* Megatron-LM's groups of p micro-batches */
        break;
    case SCHED_DUALPIPE: /* dualpipe.py: even ranks, num_chunks even and >= 2 num_ranks */
        if (in->v != 2 || in->p % 2 || in->m % 2 || in->m < 2 * in->p) return false;
        break;
    default: return false;
    }
    return true;
}

static bool sched_valid(const sched_in *in) {
    if (!shape_valid(in)) return false;
    if (!isfinite(in->t_p2p) || in->t_p2p < 0) return false;
    if (!isfinite(in->t_recv) || in->t_recv < 0) return false;
    if (!in->t_first != !in->t_last || (in->t_first && in->kind != SCHED_INTERLEAVED))
        return false;
    return times_ok(in->t_f, in->p, false) && times_ok(in->t_b, in->p, false) &&
           times_ok(in->t_w, in->p, true) && times_ok(in->t_first, 3 * in->p, true) &&
           times_ok(in->t_last, 3 * in->p, true);
}

int64_t sched_ops_per_stage(const sched_in *in) {
    if (!sched_valid(in)) return -1;
    return in->kind == SCHED_DUALPIPE ? 3 * in->m
                                      : in->m * in->v * (in->kind == SCHED_ZERO_BUBBLE ? 3 : 2);
}

int64_t sched_ops_total(plan_schedule kind, int64_t p, int64_t m, int64_t v) {
    int64_t n;
    if (kind == SCHED_DUALPIPE) /* m/2 per chunk, 2 chunks, F B W each */
        return __builtin_mul_overflow(p, m, &n) || __builtin_mul_overflow(n, 3, &n) ? INT64_MAX
                                                                                     : n;
    if (__builtin_mul_overflow(p, m, &n) || __builtin_mul_overflow(n, v, &n) ||
        __builtin_mul_overflow(n, kind == SCHED_ZERO_BUBBLE ? 3 : 2, &n))
        return INT64_MAX;
    return n;
}

/* The backward runs as B and W ops (zero-bubble, DualPipe). */
static bool sched_splits_w(plan_schedule kind) {
    return kind == SCHED_ZERO_BUBBLE || kind == SCHED_DUALPIPE;
}

/* Chunk-micro-batches a stage runs: m v, or m under DualPipe (m/2 per chunk). */
static int64_t stage_runs(const sched_in *in) {
    return in->kind == SCHED_DUALPIPE ? in->m : in->m * in->v;
}

/* --- op orders ------------------------------------------------------------ */

/* Forwards stage s runs before its first backward. With one stage every
 * schedule is gradient accumulation: F, B per micro-batch (Megatron-LM's
 * forward_backward_no_pipelining). */
static int64_t warmup(const sched_in *in, int64_t s) {
    const int64_t p = in->p, m = in->m, v = in->v;
    switch (in->kind) {
    case SCHED_AFAB: return p == 1 ? 0 : m;
    case SCHED_INTERLEAVED: return pipe_interleaved_warmup(p, v, m, s);
    case SCHED_1F1B:
    case SCHED_ZERO_BUBBLE:
    default: return min64(p - s - 1, m);
    }
}

/* Append the k-th op of a kind. Micro-batches go through the chunks in groups
 * of p: forward k runs chunk (k mod pv) / p, backward k the mirror chunk, both
 * on micro-batch (k / pv) p + k mod p (Megatron-LM's get_model_chunk_id and
 * microbatch id helpers). With v = 1 this is micro-batch k. */
static void put(sched_op **o, sched_op_kind kind, const sched_in *in, int64_t k) {
    const int64_t p = in->p, v = in->v, group = p * v;
    const int64_t chunk = pipe_op_chunk(p, v, k, kind != SCHED_OP_F);
    **o = (sched_op){.kind = (uint8_t)kind, .chunk = (int16_t)chunk,
                     .mb = (int32_t)((k / group) * p + k % p)};
    (*o)++;
}

/* Warm-up forwards, then one forward and one backward per step, then the
 * remaining backwards. ZB-H1: the W's follow the B's first-in-first-out, s
 * places behind on stage s — the first W after the (s+1)-th B, the last s after
 * the last B, where the 1F1B cool-down would wait (Qi et al. 2023 §3.1, Fig. 3). */
static void build_stage(const sched_in *in, int64_t s, sched_op *o) {
    const int64_t total = in->m * in->v, w = warmup(in, s);
    const bool zb = in->kind == SCHED_ZERO_BUBBLE;
    int64_t f = 0, b = 0, wg = 0;
    while (f < w) put(&o, SCHED_OP_F, in, f++);
    while (b < total) {
        if (f < total) put(&o, SCHED_OP_F, in, f++);
        put(&o, SCHED_OP_B, in, b++);
        if (zb && b > s) put(&o, SCHED_OP_W, in, wg++);
    }
    while (zb && wg < total) put(&o, SCHED_OP_W, in, wg++);
}

/* DualPipe, as deepseek-ai/DualPipe's dualpipe.py (DualPipe.step) runs it on
 * rank s of p, with half_rank h = min(s, p-1-s), P = p/2 and M = m/2 per
 * direction. Its "phase 0" is chunk 0 on the first half of the ranks and
 * chunk 1 on the second (phase ^ is_in_second_half); chunk c runs micro-batches
 * c M .. c M + M - 1 in order, forward and backward. A B with enable_zb holds
 * its W back in a first-in-first-out queue that _weight_chunk pops; every
 * other B is followed by its W at once (B + W is the full backward). */
typedef struct {
    const sched_in *in;
    sched_op *o;
    int64_t half, f[2], b[2];
    int64_t held[PLAN_MAX_STAGES * 2]; /* W's held back: chunk * m + mb, FIFO */
    int64_t head, tail;
    int second; /* rank in the second half: phase p is chunk p ^ 1 */
} dual_order;

static void dual_op(dual_order *d, sched_op_kind kind, int64_t chunk, int64_t mb, int flags) {
    *d->o++ = (sched_op){.kind = (uint8_t)kind, .flags = (uint8_t)flags,
                         .chunk = (int16_t)chunk, .mb = (int32_t)mb};
}

static void dual_f(dual_order *d, int phase, int flags) {
    const int64_t c = phase ^ d->second;
    dual_op(d, SCHED_OP_F, c, c * d->half + d->f[c]++, flags);
}

/* A backward: with zb its W waits in the queue, else it follows as one whole. */
static void dual_b(dual_order *d, int phase, bool zb) {
    const int64_t c = phase ^ d->second, mb = c * d->half + d->b[c]++;
    dual_op(d, SCHED_OP_B, c, mb, zb ? 0 : SCHED_OP_WHOLE);
    if (zb) d->held[d->tail++ % (2 * PLAN_MAX_STAGES)] = c * d->in->m + mb;
    else dual_op(d, SCHED_OP_W, c, mb, SCHED_OP_WHOLE);
}

static void dual_w(dual_order *d) {
    const int64_t k = d->held[d->head++ % (2 * PLAN_MAX_STAGES)];
    dual_op(d, SCHED_OP_W, k / d->in->m, k % d->in->m, 0);
}

/* _forward_backward_chunk(phase0, phase1): F of phase0 and B of phase1, overlapped */
static void dual_fb(dual_order *d, int phase_f, int phase_b) {
    dual_f(d, phase_f, SCHED_OP_PAIRED);
    dual_b(d, phase_b, false);
}

static void build_dualpipe(const sched_in *in, int64_t s, sched_op *o) {
    const int64_t p = in->p, P = p / 2, M = in->m / 2, h = s < p - 1 - s ? s : p - 1 - s;
    const bool middle = s == P - 1 || s == P;
    dual_order d = {.in = in, .o = o, .half = M, .second = s >= P};
    for (int64_t i = 0; i < (P - h - 1) * 2; i++) dual_f(&d, 0, 0); /* 1: nF0 */
    for (int64_t i = 0; i < h + 1; i++) dual_f(&d, 0, 0), dual_f(&d, 1, 0); /* 2: nF0F1 */
    for (int64_t i = 0; i < P - h - 1; i++) { /* 3: nB1W1F1, zero bubble */
        dual_b(&d, 1, true);
        dual_w(&d);
        dual_f(&d, 1, 0);
    }
    for (int64_t i = 0; i < M - p + h + 1; i++) { /* 4: nF0B1F1B0, the main step */
        if (i == 0 && middle) { /* "We don't overlap these two chunks to further reduce bubble size" */
            dual_f(&d, 0, 0);
            dual_b(&d, 1, false);
        } else {
            dual_fb(&d, 0, 1);
        }
        dual_fb(&d, 1, 0);
    }
    for (int64_t i = 0; i < P - h - 1; i++) dual_b(&d, 1, false), dual_fb(&d, 1, 0); /* 5: nB1F1B0 */
    bool zb = false; /* 6: nB1B0, the second half zero bubble */
    for (int64_t i = 0; i < h + 1; i++) {
        if (i == (h + 1) / 2 && h % 2 == 1) zb = true;
        dual_b(&d, 1, zb);
        if (i == (h + 1) / 2 && h % 2 == 0) zb = true;
        dual_b(&d, 0, zb);
    }
    for (int64_t i = 0; i < P - h - 1; i++) dual_w(&d), dual_b(&d, 0, true); /* 7: nWB0 */
    for (int64_t i = 0; i < h + 1; i++) dual_w(&d); /* 8: nW */
}

static void build_any(const sched_in *in, int64_t s, sched_op *o) {
    if (in->kind == SCHED_DUALPIPE) build_dualpipe(in, s, o);
    else build_stage(in, s, o);
}

int sched_stage_order(const sched_in *in, int64_t s, sched_op *o) {
    if (!shape_valid(in) || s < 0 || s >= in->p || !o) return -1;
    build_any(in, s, o);
    return 0;
}

/* --- event simulation ----------------------------------------------------- */

typedef struct {
    const sched_in *in;
    sched_op *ops;
    int64_t n, stages_v;   /* ops per stage; virtual stages p v */
    double *f_end, *b_end; /* [g m + mb]: end of F / B on virtual stage g, -1 until done */
    int64_t next[PLAN_MAX_STAGES];
    double free_at[PLAN_MAX_STAGES];
} sim;

static double op_time(const sched_in *in, int64_t s, int64_t chunk, int kind) {
    double t_f = in->t_f[s], t_b = in->t_b[s], t_w = in->t_w ? in->t_w[s] : 0;
    const double *own = !in->t_first ? NULL
                        : chunk == 0 ? in->t_first + 3 * s
                        : chunk == in->v - 1 ? in->t_last + 3 * s
                                            : NULL;
    if (own) t_f = own[0], t_b = own[1], t_w = own[2];
    switch (kind) {
    case SCHED_OP_F: return t_f;
    case SCHED_OP_B: return sched_splits_w(in->kind) ? t_b : t_b + t_w;
    default: return t_w;
    }
}

/* One micro-batch through all of stage s's chunks. */
static double stage_busy(const sched_in *in, int64_t s) {
    double t = 0;
    for (int64_t c = 0; c < in->v; c++)
        t += op_time(in, s, c, SCHED_OP_F) + op_time(in, s, c, SCHED_OP_B) +
             (sched_splits_w(in->kind) ? op_time(in, s, c, SCHED_OP_W) : 0);
    return t;
}

/* The cell (end-time index) of the op's chunk-micro-batch on the stage before
 * (dir -1) or after (dir +1) it along its micro-batch's path, or -1 past the
 * first / last stage. Virtual stage g = chunk p + s flows to g + 1; DualPipe's
 * chunk 0 flows from stage s to s + 1, its chunk 1 from s to s - 1. */
static int64_t flow_cell(const sim *x, int64_t s, const sched_op *op, int dir) {
    const int64_t p = x->in->p, m = x->in->m;
    if (x->in->kind == SCHED_DUALPIPE) {
        const int64_t t = s + (op->chunk ? -dir : dir);
        return t < 0 || t >= p ? -1 : (op->chunk * p + t) * m + op->mb;
    }
    const int64_t g = op->chunk * p + s + dir;
    return g < 0 || g >= x->stages_v ? -1 : g * m + op->mb;
}

/* When op's inputs are all on stage s, or -1 while one is not done. */
static double ready_at(const sim *x, int64_t s, const sched_op *op) {
    const int64_t p = x->in->p, m = x->in->m, i = (op->chunk * p + s) * m + op->mb;
    const double hop = p > 1 ? x->in->t_p2p : 0; /* the neighbours are on other stages */
    if (op->kind == SCHED_OP_W) /* a whole backward's W follows its B, which is done */
        return op->flags & SCHED_OP_WHOLE ? 0 : x->b_end[i];
    if (op->kind == SCHED_OP_F) {
        const int64_t prev = flow_cell(x, s, op, -1);
        if (prev < 0) return 0;
        return x->f_end[prev] < 0 ? -1 : x->f_end[prev] + hop;
    }
    if (x->f_end[i] < 0) return -1;
    const int64_t next = flow_cell(x, s, op, 1);
    if (next < 0) return x->f_end[i]; /* the loss: B follows F */
    if (x->b_end[next] < 0) return -1;
    return fmax(x->f_end[i], x->b_end[next] + hop);
}

/* Run stage s's ops while their inputs are ready; returns how many ran. */
static int64_t advance(sim *x, int64_t s) {
    const int64_t p = x->in->p, m = x->in->m;
    int64_t ran = 0;
    for (; x->next[s] < x->n; x->next[s]++, ran++) {
        sched_op *op = &x->ops[s * x->n + x->next[s]];
        double r = ready_at(x, s, op);
        /* an input from another stage: its receive holds the stage (t_recv; a paired
         * F&B's B takes its own when it runs) */
        const bool recvs = p > 1 && (op->kind == SCHED_OP_F   ? flow_cell(x, s, op, -1) >= 0
                                     : op->kind == SCHED_OP_B ? flow_cell(x, s, op, 1) >= 0
                                                              : false);
        /* DualPipe's F&B: the pair waits for both its receives (dualpipe.py
         * _forward_backward_chunk: _commit_and_wait_comm before computing),
         * then runs F and B back to back */
        if ((op->flags & SCHED_OP_PAIRED) && r >= 0 && x->next[s] + 1 < x->n) {
            const sched_op *pair = op + 1;
            const int64_t i = (pair->chunk * p + s) * m + pair->mb;
            const int64_t next = flow_cell(x, s, pair, 1);
            if (x->f_end[i] < 0 || (next >= 0 && x->b_end[next] < 0)) break;
            if (next >= 0) r = fmax(r, x->b_end[next] + x->in->t_p2p);
        }
        if (r < 0) break;
        op->start = fmax(r, x->free_at[s]) + (recvs ? x->in->t_recv : 0);
        op->end = op->start + op_time(x->in, s, op->chunk, op->kind);
        x->free_at[s] = op->end;
        const int64_t i = (op->chunk * p + s) * m + op->mb;
        if (op->kind == SCHED_OP_F) x->f_end[i] = op->end;
        /* a whole backward's input gradient leaves with its W */
        if (op->kind == (op->flags & SCHED_OP_WHOLE ? SCHED_OP_W : SCHED_OP_B))
            x->b_end[i] = op->end;
    }
    return ran;
}

/* Each stage runs as far as it can; a stage that ran wakes its neighbours,
 * the only stages its ops feed. -1 if some order waits on itself. */
static int run(sim *x) {
    const int64_t p = x->in->p;
    int64_t stack[PLAN_MAX_STAGES], top = 0;
    bool queued[PLAN_MAX_STAGES];
    for (int64_t s = p - 1; s >= 0; s--) {
        stack[top++] = s;
        queued[s] = true;
    }
    while (top > 0) {
        const int64_t s = stack[--top];
        queued[s] = false;
        if (!advance(x, s)) continue;
        const int64_t wake[2] = {(s + 1) % p, (s + p - 1) % p};
        for (int k = 0; k < 2; k++)
            if (!queued[wake[k]]) {
                queued[wake[k]] = true;
                stack[top++] = wake[k];
            }
    }
    for (int64_t s = 0; s < p; s++)
        if (x->next[s] != x->n) return -1;
    return 0;
}

/* Peak activation sets on one stage: released at B, and at W. */
static void stage_peaks(const sched_in *in, const sched_op *o, int64_t n, int64_t *to_b,
                        int64_t *to_w) {
    const bool zb = sched_splits_w(in->kind);
    int64_t live_b = 0, live_w = 0;
    *to_b = *to_w = 0;
    for (int64_t i = 0; i < n; i++) {
        if (o[i].kind == SCHED_OP_F) live_b++, live_w++;
        if (o[i].kind == SCHED_OP_B) live_b--, live_w -= !zb;
        if (o[i].kind == SCHED_OP_W) live_w--;
        if (live_b > *to_b) *to_b = live_b;
        if (live_w > *to_w) *to_w = live_w;
    }
}

static void summarize(const sim *x, sched_out *out) {
    const sched_in *in = x->in;
    *out = (sched_out){0};
    for (int64_t s = 0; s < in->p; s++) {
        const double t_w = in->t_w ? in->t_w[s] : 0;
        const double busy = in->t_first ? (double)in->m * stage_busy(in, s)
                                        : (double)stage_runs(in) * (in->t_f[s] + in->t_b[s] + t_w);
        out->step_time = fmax(out->step_time, x->free_at[s]);
        out->busy_max = fmax(out->busy_max, busy);
        stage_peaks(in, x->ops + s * x->n, x->n, &out->peak_inflight[s], &out->peak_until_w[s]);
    }
    if (out->busy_max > 0) out->bubble_fraction = (out->step_time - out->busy_max) / out->busy_max;
}

int sched_simulate(const sched_in *in, sched_op *ops, sched_out *out) {
    const int64_t n = sched_ops_per_stage(in);
    if (n < 0 || !out || sched_ops_total(in->kind, in->p, in->m, in->v) > SCHED_MAX_OPS)
        return -1;
    const uint64_t n_ops = (uint64_t)(in->p * n), cells = (uint64_t)(in->p * in->v * in->m);
    if (n_ops > SIZE_MAX / sizeof *ops || cells > SIZE_MAX / (2 * sizeof(double))) return -1;
    sched_op *scratch = ops ? NULL : malloc((size_t)n_ops * sizeof *ops);
    double *ends = malloc((size_t)cells * 2 * sizeof *ends);
    int rc = -1;
    if ((ops || scratch) && ends) {
        sim x = {.in = in, .ops = ops ? ops : scratch, .n = n, .stages_v = in->p * in->v,
                 .f_end = ends, .b_end = ends + cells};
        for (uint64_t i = 0; i < 2 * cells; i++) ends[i] = -1;
        for (int64_t s = 0; s < in->p; s++) build_any(in, s, x.ops + s * n);
        rc = run(&x);
        if (rc == 0) summarize(&x, out);
    }
    free(ends);
    free(scratch);
    return rc;
}

/* --- closed forms and output ------------------------------------------------ */

double sched_bubble_closed_form(plan_schedule kind, int64_t p, int64_t m, int64_t v, double t_f,
                                double t_b, double t_w) {
    if (p < 1 || m < 1 || v < 1) return NAN;
    switch (kind) {
    case SCHED_AFAB:
    case SCHED_1F1B: return (double)(p - 1) / (double)m;
    case SCHED_INTERLEAVED: return (double)(p - 1) / (double)(v * m);
    case SCHED_DUALPIPE: { /* deepseek-ai/DualPipe README, F&B = F + B, B = t_b + t_w */
        const double total = t_f + t_b + t_w, B = t_b + t_w;
        if (!(total > 0) || p % 2) return NAN;
        return fmax(0, (double)(p / 2 - 1) * (t_f + B + B - 3 * t_w)) / ((double)m * total);
    }
    case SCHED_ZERO_BUBBLE: {
        const double total = t_f + t_b + t_w;
        if (!(total > 0)) return NAN;
        const double hidden = fmin(t_w, fmin(t_f, t_b)); /* W time hidden per stage boundary */
        return ((double)(p - 1) * (t_f + t_b) - (double)(min64(m, p) - 1) * hidden) /
               ((double)m * total);
    }
    default: return NAN;
    }
}

int sched_write_gantt(FILE *f, const sched_in *in, const sched_op *ops) {
    static const char kind_letter[] = "FBW";
    const int64_t n = sched_ops_per_stage(in);
    if (!f || !ops || n < 0) return -1;
    if (fprintf(f,
                "# %s pipeline: p = %lld stages, m = %lld micro-batches, v = %lld chunks\n"
                "# kind: F forward, B backward%s; times in the unit of t_f\n"
                "# stage kind chunk mb start end\n",
                plan_schedule_names[in->kind], (long long)in->p, (long long)in->m,
                (long long)in->v,
                sched_splits_w(in->kind) ? " (input grad), W weight grad" : "") < 0)
        return -1;
    for (int64_t s = 0; s < in->p; s++)
        for (int64_t i = 0; i < n; i++) {
            const sched_op *o = &ops[s * n + i];
            if (fprintf(f, "%lld %c %d %ld %.9g %.9g\n", (long long)s, kind_letter[o->kind % 3],
                        o->chunk, (long)o->mb, o->start, o->end) < 0)
                return -1;
        }
    return ferror(f) ? -1 : 0;
}
