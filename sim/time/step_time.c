/* step_time.c — stage and step time (see step_time.h, docs/time.md §4–§5). */
#include "time/step_time.h"

#include <string.h>

#include "cost/pipe.h"
#include "spec/plan_check.h"

static double maxd(double a, double b) { return a > b ? a : b; }
static double mind(double a, double b) { return a < b ? a : b; }

void time_ctx_init(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, time_ctx *out) {
    kt_layer(m, c, p, &out->layer);
    kt_first(m, c, p, &out->first);
    kt_last(m, c, p, &out->last);
    out->moe = NULL;
    time_ctx_links(c, p, out);
    if (model_is_moe(m)) time_ctx_moe(m, c, p, out);
}

void time_ctx_links(const cluster_cfg *c, const plan_cfg *p, time_ctx *out) {
    /* (the expert groups only for a MoE model: dense sweeps skip them) */
    const int groups = out->moe ? GROUP_COUNT : GROUP_EP;
    for (int g = 0; g < groups; g++) coll_group_link(c, p, (comm_group)g, &out->link[g]);
    for (int g = groups; g < GROUP_COUNT; g++) out->link[g] = out->link[GROUP_DP];
    out->groups = groups;
    out->overlap = c->eff.overlap;
}

void time_ctx_moe(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, time_ctx *out) {
    out->moe = m;
    moe_layout_compute(m, p, c->gpus_per_node, &out->moe_l);
    kt_moe_layer(m, c, p, &out->moe_l, &out->moe_layer);
    kt_mtp(m, c, p, &out->mtp);
    coll_group_link(c, p, GROUP_EP, &out->link[GROUP_EP]);
    coll_group_link(c, p, GROUP_EDP, &out->link[GROUP_EDP]);
    out->groups = GROUP_COUNT;
}

typedef struct {
    double f, b, w, attn; /* one micro-batch of the whole stage, compute only */
} stage_work;

/* Communication of one phase, by group: what may hide behind compute, what
 * can never (not overlapped, or the part that cannot start early). */
typedef struct {
    double hide[GROUP_COUNT], fixed[GROUP_COUNT];
} phase_comm;

enum { PH_FWD, PH_BWD, PH_GRADS, PH_PARAMS, PH_COUNT };

/* Hide each group's overlappable seconds behind `budget` seconds of compute
 * (ring attention's blocks only behind the attention core, `attn`). Groups on
 * the same physical link (NVLink, the NICs, PCIe) run one after another, so
 * per link the compute budget is spent once, shared in proportion; different
 * links overlap one another. Of what overlaps, only the share `eff` hides:
 * communication kernels take SMs and memory bandwidth from the compute they
 * overlap (docs/time.md §4). */
double step_cp_attn_budget(const plan_cfg *p, double attn_core_fwd, bool bwd) {
    return (bwd ? (p->recompute == RECOMPUTE_FULL ? 3 : 2) : 1) * attn_core_fwd;
}

double step_cp_overlap(double ring, double attn, double compute) {
    return mind(ring, mind(attn, compute));
}

static void settle(const time_ctx *x, const phase_comm *pc, double budget, double attn,
                   double ex[GROUP_COUNT], double hid[GROUP_COUNT]) {
    double left[LINK_COUNT] = {budget, budget, budget}, rest[LINK_COUNT] = {0, 0, 0};
    double over[GROUP_COUNT] = {0};
    const coll_link_kind cp_link = x->link[GROUP_CP].link;
    over[GROUP_CP] = step_cp_overlap(pc->hide[GROUP_CP], attn, budget); /* served first */
    left[cp_link] -= over[GROUP_CP];
    const int n = x->groups; /* ex and hid are read up to n (add_phase) */
    for (int g = 0; g < n; g++)
        if (g != GROUP_CP) rest[x->link[g].link] += pc->hide[g];
    double share[LINK_COUNT];
    for (int l = 0; l < LINK_COUNT; l++) share[l] = rest[l] > left[l] ? left[l] / rest[l] : 1.0;
    for (int g = 0; g < n; g++) {
        if (g != GROUP_CP) over[g] = pc->hide[g] * share[x->link[g].link];
        hid[g] = x->overlap * over[g];
        ex[g] = pc->fixed[g] + pc->hide[g] - hid[g];
    }
}

/* ZeRO-3 traffic of one micro-batch's forward and backward under a `zero3:`
 * section (docs/time.md §4.1), gathered by classify and filed by zero3_file. */
typedef struct {
    /* per phase (forward, backward) and group (0: dp, 1: a MoE model's edp,
     * whose experts gather inside the same layer units; docs/memory.md §10) */
    double t[2][2];       /* seconds per micro-batch, all units (launch included) */
    double gather[2][2];  /* one unit's gather: the first unit waits for it */
    double scatter[2][2]; /* one unit's reduce-scatter: the last unit's runs after all compute */
    double launch[2][2];  /* host launch and copy-out time per micro-batch: never hidden */
    int64_t units;
    double copy_s_per_byte; /* zero3.copy_out: seconds per byte of HBM traffic, else 0 */
} zero3_acc;

/* Whether the plan's schedule hides the MoE all-to-alls behind another
 * micro-batch's compute. None of 1F1B, AFAB, interleaved or zero-bubble does:
 * a micro-batch's dispatch waits for its router, its experts for the
 * dispatch, so the all-to-alls sit whole on the critical path. The hook for a
 * schedule that overlaps them (DeepSeek-V3 §3.2.1 DualPipe: one micro-batch's
 * all-to-all beside another's forward or backward chunk): return true for it,
 * and settle() hides them behind the phase's compute. */
static bool a2a_overlapped(const plan_cfg *p) { return pipe_overlaps_fwd_bwd(p); }

/* File one collective's seconds (per micro-batch for FWD/BWD, per step
 * otherwise) under its phase and group, split into hideable and fixed. */
static int classify(const time_ctx *x, const plan_cfg *p, const comm_entry *e, int64_t mb,
                    double inv_mb, phase_comm ph[PH_COUNT], zero3_acc *z3) {
    const coll_link *ln = &x->link[e->group];
    const int per_mb = e->phase == COMM_FWD || e->phase == COMM_BWD;
    const int k = e->phase == COMM_FWD ? PH_FWD : e->phase == COMM_BWD ? PH_BWD
                : e->phase == COMM_GRADS ? PH_GRADS : PH_PARAMS;
    const double call =
        e->coll == COLL_ALL_TO_ALL && x->moe
            ? coll_alltoall_time(x->moe_l.a2a_intra, x->moe_l.a2a_inter, x->moe_l.a2a_factor, ln)
            : coll_time(e->coll, e->group_size, e->bytes_per_call, ln);
    double t = (double)e->calls * call;
    if (per_mb) t *= inv_mb;
    /* ZeRO-3 of a MoE model gathers the experts over edp as the layers
     * run, the rest over dp: both follow the per-unit rules */
    const bool z3_group = e->group == GROUP_DP || (p->zero == 3 && e->group == GROUP_EDP);
    if (p->zero == 3 && p->zero3.set && per_mb && z3_group) {
        const int gi = e->group == GROUP_EDP;
        const double launch = (double)e->calls * inv_mb *
                              (p->zero3.launch_s + p->zero3.launch_per_rank_s * (double)e->group_size);
        /* copy_out: the gathered unit read and written once more (2 S bytes) */
        const double copy = e->coll == COLL_ALL_GATHER
                                ? (double)e->calls * inv_mb * 2.0 * (double)e->bytes_per_call *
                                      z3->copy_s_per_byte
                                : 0;
        z3->t[k][gi] += t + launch + copy;
        z3->launch[k][gi] += launch + copy;
        if (e->coll == COLL_REDUCE_SCATTER) z3->scatter[k][gi] = call;
        else z3->gather[k][gi] = maxd(z3->gather[k][gi], call);
        if (e->calls / mb > z3->units) z3->units = e->calls / mb;
        return k;
    }
    double floor = t; /* nothing hides unless a rule below says so */
    if (e->group == GROUP_HOST) floor = 0;
    /* cp: the ring's passes hide behind the attention core; the all-gather
     * algorithm's gathers are "exposed in the critical path" (Llama 3 §3.3.2) */
    if (e->group == GROUP_CP && p->cp_algorithm == CP_RING) floor = 0;
    if (e->group == GROUP_TP && p->overlap_tp) floor = 0;
    /* MoE all-to-alls (GROUP_EP): exposed unless the schedule overlaps them */
    if (e->group == GROUP_EP && a2a_overlapped(p)) floor = 0;
    /* the expert gradients' reductions over edp overlap as the dense ones do:
     * Megatron-Core's DDP keeps the expert-parallel parameters in buffers of
     * their own under the same overlap_grad_reduce bucketing
     * (distributed_data_parallel.py expert_parallel_buffers) */
    if ((e->group == GROUP_DP || e->group == GROUP_EDP) && p->overlap_dp) {
        /* ZeRO-3 gathers wait for the first unit; bucketed reductions for the last bucket */
        floor = mind(t, p->zero == 3 && per_mb
                            ? t / (double)(e->calls / mb)
                            : coll_time(e->coll, e->group_size, p->bucket_bytes, ln));
    }
    ph[k].fixed[e->group] += floor;
    ph[k].hide[e->group] += t - floor;
    return k;
}

/* ZeRO-3 per unit (docs/time.md §4.1): U units of c/U seconds of compute
 * each and g = T/U seconds of communication each, gathered `prefetch` units
 * ahead. The first unit's gather and the last unit's reduce-scatter have no
 * compute beside them; every other unit hides at most its own compute's
 * worth, so each of the U-1 others exposes max(0, g - c/U). With prefetch 0
 * (or overlap.dp off) nothing hides. Host launch time and the copy-out of
 * each gathered unit on the compute stream (zero3.copy_out) are never hidden. */
double step_zero3_fixed(double t, double gather, double scatter, int64_t units,
                        double compute, int64_t prefetch) {
    if (prefetch <= 0 || units <= 0) return t;
    const double u = (double)units, g = t / u, c = compute / u;
    const double fixed = gather + scatter + (u - 1) * maxd(0, g - c);
    return mind(t, fixed);
}

/* A MoE layer's unit gathers its dense part over dp and its experts over
 * edp: the first unit waits for both gathers, the last unit's reduce-scatters
 * follow all compute; the fixed and hidden seconds are filed under each
 * group in proportion to its seconds (a dense model: all under dp). */
static void zero3_file(const plan_cfg *p, const zero3_acc *z3, const stage_work *k,
                       phase_comm ph[PH_COUNT]) {
    static const comm_group groups[2] = {GROUP_DP, GROUP_EDP};
    for (int i = PH_FWD; i <= PH_BWD; i++) {
        const double all = z3->t[i][0] + z3->t[i][1];
        if (all <= 0) continue;
        const double t = all - (z3->launch[i][0] + z3->launch[i][1]);
        const double c = i == PH_FWD ? k->f : k->b + k->w;
        const double fixed =
            p->overlap_dp ? step_zero3_fixed(t, z3->gather[i][0] + z3->gather[i][1],
                                             z3->scatter[i][0] + z3->scatter[i][1], z3->units, c,
                                             p->zero3.prefetch)
                          : t;
        for (int gi = 0; gi < 2; gi++) {
            if (z3->t[i][gi] <= 0) continue;
            const double share = t > 0 ? (z3->t[i][gi] - z3->launch[i][gi]) / t : 0;
            ph[i].fixed[groups[gi]] += fixed * share + z3->launch[i][gi];
            ph[i].hide[groups[gi]] += (t - fixed) * share;
        }
    }
}

static void add_phase(int n, const double ex[GROUP_COUNT], const double hid[GROUP_COUNT],
                      double *time, double exposed[GROUP_COUNT], double hidden[GROUP_COUNT]) {
    for (int g = 0; g < n; g++) {
        exposed[g] += ex[g];
        hidden[g] += hid[g];
        if (time) *time += ex[g];
    }
}

void stage_time_compute(const time_ctx *x, const cluster_cfg *c, const plan_cfg *p,
                        int64_t stage, int64_t layers, int64_t opt_elems, const comm_list *l,
                        stage_time *o) {
    memset(o, 0, sizeof *o);
    double L = (double)layers, Le = 0; /* dense layers, MoE layers */
    if (x->moe) {
        int64_t dense, moe;
        moe_stage_layers(x->moe, p, stage, &dense, &moe);
        L = (double)dense, Le = (double)moe;
    }
    const int first = pipe_stage_has_embedding(p, stage), last = pipe_stage_has_head(p, stage);
    const kt_part *ly = &x->layer, *me = &x->moe_layer;
    stage_work k = {
        L * ly->fwd + (first ? x->first.fwd : 0) + (last ? x->last.fwd : 0),
        L * (ly->bwd_in + ly->recompute) + (first ? x->first.bwd_in : 0) +
            (last ? x->last.bwd_in : 0),
        L * ly->bwd_w + (first ? x->first.bwd_w : 0) + (last ? x->last.bwd_w : 0),
        L * ly->attn_core_fwd};
    if (Le > 0) {
        k.f += Le * me->fwd;
        k.b += Le * (me->bwd_in + me->recompute);
        k.w += Le * me->bwd_w;
        k.attn += Le * me->attn_core_fwd;
    }
    if (last && x->moe) { /* the MTP modules' head and loss (zero without MTP) */
        k.f += x->mtp.fwd;
        k.b += x->mtp.bwd_in;
        k.w += x->mtp.bwd_w;
    }
    o->f = k.f;
    o->b = k.b;
    o->w = k.w;
    const int64_t mb = pipe_stage_micro_batches(p); /* passes through all the stage's layers */
    phase_comm ph[PH_COUNT];
    memset(ph, 0, sizeof ph);
    unsigned used = 0;
    const double inv_mb = 1.0 / (double)mb;
    /* the per-unit sums are touched only under a zero3: section (classify,
     * zero3_file): zeroed only then, the sweep's hot path skips them */
    zero3_acc z3;
    z3.units = 0;
    if (p->zero == 3 && p->zero3.set) {
        memset(&z3, 0, sizeof z3);
        z3.copy_s_per_byte = p->zero3.copy_out ? 1.0 / (c->hbm_bytes_per_s * c->eff.hbm) : 0;
    }
    for (int i = 0; i < l->n; i++) {
        const comm_entry *e = &l->e[i];
        if (e->phase == COMM_P2P)
            o->p2p = coll_time(COLL_SEND, e->group_size, e->bytes_per_call, &x->link[GROUP_PP]);
        else
            used |= 1u << classify(x, p, e, mb, inv_mb, ph, &z3);
    }
    if (z3.units) zero3_file(p, &z3, &k, ph);
    double ex[GROUP_COUNT], hid[GROUP_COUNT];
    /* (every plan has forward and backward traffic or none; the per-step
     * phases are often empty and skipped) */
    settle(x, &ph[PH_FWD], k.f, step_cp_attn_budget(p, k.attn, false), ex, hid);
    add_phase(x->groups, ex, hid, &o->f, o->exposed, o->hidden);
    settle(x, &ph[PH_BWD], k.b + k.w, step_cp_attn_budget(p, k.attn, true), ex, hid);
    add_phase(x->groups, ex, hid, &o->b, o->exposed, o->hidden);
    /* gradients reduce behind the last micro-batch's backward, updated
     * parameters gather behind the next step's first forward */
    if (used & 1u << PH_GRADS) {
        settle(x, &ph[PH_GRADS], k.b + k.w, 0, ex, hid);
        add_phase(x->groups, ex, hid, NULL, o->step_exposed, o->step_hidden);
    }
    if (used & 1u << PH_PARAMS) {
        settle(x, &ph[PH_PARAMS], k.f, 0, ex, hid);
        add_phase(x->groups, ex, hid, NULL, o->step_exposed, o->step_hidden);
    }
    /* transfers not hidden (overlap.pp false): a chunk's receive holds its stage, one per
     * chunk forward and backward (the simulation and the replay charge it only to the
     * chunks that receive: t_recv, replay.h) */
    const double v = (double)pipe_chunks(p);
    o->recv = p->overlap_pp ? 0 : o->p2p; /* (p2p is 0 without pipeline stages) */
    o->f += v * o->recv;
    o->b += v * o->recv;
    o->exposed[GROUP_PP] += 2 * v * o->recv;
    o->f /= v;
    o->b /= v;
    o->w /= v;
    for (int g = 0; g < x->groups; g++) {
        o->exposed[g] /= v;
        o->hidden[g] /= v;
    }
    o->compute = (k.f + k.b + k.w) / v;
    o->optimizer = kt_optimizer(c, p, opt_elems);
    for (int i = 0; i < 3; i++) o->chunk[i] = (chunk_time){o->f, o->b, o->w};
}

void stage_time_chunks(const time_ctx *x, const plan_cfg *p, int64_t stage,
                       const int64_t layers[3], stage_time *o) {
    const int64_t v = p->virtual_stages;
    const int first = stage == 0, last = stage == p->pp - 1;
    const kt_part *ly = &x->layer;
    const double hop = o->recv;
    chunk_time work[3], sum = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        const double L = (double)layers[i];
        const int emb = first && i == 0, head = last && i == 2;
        const kt_part *mtp = head && x->moe ? &x->mtp : NULL; /* MTP follows the head */
        work[i] = (chunk_time){
            L * ly->fwd + (emb ? x->first.fwd : 0) + (head ? x->last.fwd : 0) +
                (mtp ? mtp->fwd : 0),
            L * (ly->bwd_in + ly->recompute) + (emb ? x->first.bwd_in : 0) +
                (head ? x->last.bwd_in : 0) + (mtp ? mtp->bwd_in : 0),
            L * ly->bwd_w + (emb ? x->first.bwd_w : 0) + (head ? x->last.bwd_w : 0) +
                (mtp ? mtp->bwd_w : 0)};
        /* chunk 0 and chunk v-1 once each, the middle chunk v-2 times */
        const double n = i == 1 ? (double)(v - 2) : 1;
        sum.f += n * work[i].f, sum.b += n * work[i].b, sum.w += n * work[i].w;
    }
    const double vd = (double)v;
    const chunk_time total = {(o->f - hop) * vd, (o->b - hop) * vd, o->w * vd};
    for (int i = 0; i < 3; i++)
        o->chunk[i] = (chunk_time){
            sum.f > 0 ? total.f * work[i].f / sum.f + hop : o->f,
            sum.b > 0 ? total.b * work[i].b / sum.b + hop : o->b,
            sum.w > 0 ? total.w * work[i].w / sum.w : o->w};
    if (v == 2) o->chunk[1] = o->chunk[0]; /* no middle chunk */
}

/* AFAB and interleaved: m v max(t) + the other stages' t once each (fill and
 * drain), exact for equal stages: (m + p - 1) t and (m v + p - 1) t_chunk. */
static double fill_even(const stage_time *const *st, int64_t slow, int64_t pp, double q) {
    double fill = 0;
    for (int64_t s = 0; s < pp; s++)
        if (s != slow) fill += st[s]->f + st[s]->b + st[s]->w;
    return fill + 2.0 * (double)(pp - 1) * q;
}

/* Interleaved with chunks of their own times (stage_time_chunks): stage s
 * starts once the first micro-batch's forward has passed chunk 0 of the
 * stages before it, works m T_s, and waits for the first backward, which
 * comes back through chunk v-1 of the stages after it (the warm-up covers the
 * rest of that round trip, as for equal chunks); the last backward leaves
 * through chunk 0 of the stages before it again:
 *   T = max_s [sum_{j<s} c_{j,0} + m v t_s + sum_{j>s} c_{j,v-1}] + 2(p-1)q,
 * c the chunk's f + b + w (docs/schedule.md "Uneven splits"). With equal
 * chunks the maximum is at the slowest stage and this is fill_even. Returns
 * the fill over m v max(t). */
static double fill_chunks(const stage_time *const *st, int64_t pp, double mv, double tmax,
                          double q) {
    double after = 0, before = 0, best = 0;
    for (int64_t s = 0; s < pp; s++)
        after += st[s]->chunk[2].f + st[s]->chunk[2].b + st[s]->chunk[2].w;
    for (int64_t s = 0; s < pp; s++) {
        const stage_time *x = st[s];
        after -= x->chunk[2].f + x->chunk[2].b + x->chunk[2].w;
        const double t = before + mv * (x->f + x->b + x->w) + after;
        if (t > best) best = t;
        before += x->chunk[0].f + x->chunk[0].b + x->chunk[0].w;
    }
    return best - mv * tmax + 2.0 * (double)(pp - 1) * q;
}

/* 1F1B and ZB-H1 over stages of unequal time (docs/time.md §5). Stage s
 * starts once the first micro-batch's forward reaches it, works m t_s, and
 * waits only while its w_s = min(p-s-1, m-1) warm-up forwards are shorter
 * than the first micro-batch's round trip through the stages after it; after
 * its last backward, the gradient still goes back through the stages before
 * it. For 1F1B:
 *   T_s = sum_{j<s} (t_j + 2q) + m t_s + max(0, sum_{j>s} (t_j + 2q) - w_s f_s)
 * ZB-H1 defers d_j = min(j, m) weight-gradient ops on stage j to the drain
 * (pipe_sched.c's order), so the drain after stage s is the longest of the
 * backward chain down to a stage j plus j's deferred W's:
 *   T_s = sum_{j<s} (f_j + q) + max(0, sum_{j>s} (f_j + b_j + 2q) - w_s f_s)
 *         + m (f_s + b_s) + (m - d_s) w_s + max_{j<=s} (sum_{j<=i<s} (b_i + q) + d_j w_j)
 * T = max_s T_s. With equal stages both give the closed forms of pipe_sched.h
 * at s = p-1 (for ZB-H1 when w <= b). */
static double fill_1f1b(const plan_cfg *p, const stage_time *const *st, int64_t m, double q) {
    const int64_t pp = p->pp;
    const int zb = p->schedule == SCHED_ZERO_BUBBLE;
    double total_after = 0;
    for (int64_t s = 0; s < pp; s++)
        total_after += (zb ? st[s]->f + st[s]->b : st[s]->f + st[s]->b + st[s]->w) + 2 * q;
    double best = 0, before = 0, start = 0, chain = 0, tail_max = -1e300;
    for (int64_t s = 0; s < pp; s++) {
        const stage_time *x = st[s];
        const double t = x->f + x->b + x->w;
        const double g = (zb ? x->f + x->b : t) + 2 * q;
        const double after = total_after - before - g;
        const double warm = (double)((pp - s - 1 < m - 1) ? pp - s - 1 : m - 1) * x->f;
        const double idle = maxd(0, after - warm);
        double ts;
        if (zb) {
            const double d = (double)(s < m ? s : m);
            /* chain = sum_{i<s} (b_i + q); tail_max = max_{j<=s} (d_j w_j - chain_j) */
            tail_max = maxd(tail_max, d * x->w - chain);
            ts = start + idle + (double)m * (x->f + x->b) + ((double)m - d) * x->w + chain + tail_max;
            start += x->f + q;
            chain += x->b + q;
        } else {
            ts = before + (double)m * t + idle;
        }
        best = maxd(best, maxd(ts, (double)m * t));
        before += g;
    }
    return best;
}

/* DualPipe: the README's bubble (deepseek-ai/DualPipe, "Pipeline Bubbles and
 * Memory Usage Comparison"), (pp/2 - 1)(F&B + B - 3W), with B = b + w the full
 * backward and F&B = F + B (the pair runs back to back on the stage's chunk
 * times; an all-to-all the pair hides is already out of f and b,
 * pipe_overlaps_fwd_bwd). The idle time gathers on the middle ranks, which
 * wait for the micro-batches coming from both ends: the step is the longest
 * of the slowest rank's work and each middle rank's work plus the README's
 * bubble on its own times; the end ranks (embedding and head) absorb their
 * share of it when they are slower. Sends add 5(pp-1) t_p2p (fitted to the
 * simulation: exact for pp <= 4, 10% under at pp = 16). Equal stages: the
 * README exactly, and the event simulation when f = b (docs/schedule.md
 * "DualPipe"). Returns the fill over m max(t). */
static double fill_dualpipe(const stage_time *const *st, int64_t pp, double mv, double tmax,
                            double q) {
    double best = mv * tmax;
    for (int64_t s = 1; s < pp - 1; s++) {
        const stage_time *x = st[s];
        const double B = x->b + x->w, fb = x->f + B;
        best = maxd(best, mv * (x->f + B) + maxd(0, (double)(pp / 2 - 1) * (fb + B - 3 * x->w)));
    }
    return best - mv * tmax + 5.0 * (double)(pp - 1) * q;
}

void step_time_combine(const cluster_cfg *c, const plan_cfg *p, const stage_time *const *st,
                       double tokens, double flops_model, double flops_hardware, step_time *o) {
    memset(o, 0, sizeof *o);
    const int64_t pp = p->pp;
    /* chunk-micro-batches a stage runs: m v, or m under DualPipe (m/2 through each of 2) */
    const double mv = (double)(pipe_stage_micro_batches(p) * pipe_chunks(p));
    int64_t slow = 0, tail_s = 0;
    double tmax = -1, fill = 0, tail = -1, opt = 0;
    for (int64_t s = 0; s < pp; s++) {
        double t = st[s]->f + st[s]->b + st[s]->w;
        if (t > tmax) tmax = t, slow = s;
        double ex = 0;
        for (int g = 0; g < GROUP_COUNT; g++) ex += st[s]->step_exposed[g];
        if (ex > tail) tail = ex, tail_s = s;
        opt = maxd(opt, st[s]->optimizer);
    }
    const int64_t m = plan_micro_batches(p);
    const double q = st[0]->p2p - st[0]->recv; /* the hidden part of a hop */
    if (pp > 1 && (p->schedule == SCHED_1F1B || p->schedule == SCHED_ZERO_BUBBLE))
        fill = fill_1f1b(p, st, m, q) - mv * tmax;
    else if (pp > 1 && p->schedule == SCHED_INTERLEAVED && pipe_layout_given(p))
        fill = fill_chunks(st, pp, mv, tmax, q);
    else if (pp > 1 && p->schedule == SCHED_DUALPIPE)
        fill = fill_dualpipe(st, pp, mv, tmax, q);
    else
        fill = fill_even(st, slow, pp, q);
    const stage_time *x = st[slow];
    o->slowest = slow;
    o->pipeline = mv * tmax + fill;
    o->bubble = fill;
    o->compute = mv * x->compute;
    o->optimizer = opt;
    /* step-level communication: the stage with the longest tail sets it */
    for (int g = 0; g < GROUP_COUNT; g++) {
        o->exposed[g] = mv * x->exposed[g] + st[tail_s]->step_exposed[g];
        o->hidden[g] = mv * x->hidden[g] + st[tail_s]->step_hidden[g];
    }
    o->step = o->pipeline + tail + opt;
    o->tokens_per_s = tokens / o->step;
    const double peak = kt_peak(c, p) * (double)p->gpus;
    o->mfu = flops_model / (o->step * peak);
    o->hfu = flops_hardware / (o->step * peak);
}
