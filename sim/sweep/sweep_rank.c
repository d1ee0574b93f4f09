/* sweep_rank.c — best-plans heap, tallies and explanations (see sweep_rank.h). */
#include "sweep/sweep_rank.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- fields ---------------------------------------------------------------------------- */

const char *const sweep_field_names[SWEEP_FIELD_COUNT] = {
    "dp",        "tp",       "pp",      "cp",      "zero",    "sp",       "micro",
    "recompute", "schedule", "virtual", "offload", "overlap", "placement", "ep", "etp",
    "distill_placement", "distill_top_k"};

int64_t sweep_field_key(const plan_cfg *p, int field) {
    switch (field) {
    case SWEEP_F_DP:
        return p->dp;
    case SWEEP_F_TP:
        return p->tp;
    case SWEEP_F_PP:
        return p->pp;
    case SWEEP_F_CP:
        return p->cp;
    case SWEEP_F_ZERO:
        return p->zero;
    case SWEEP_F_SP:
        return p->sp;
    case SWEEP_F_MICRO:
        return p->micro_batch;
    case SWEEP_F_RECOMPUTE:
        return p->recompute;
    case SWEEP_F_SCHEDULE:
        return p->schedule;
    case SWEEP_F_VIRTUAL:
        return p->virtual_stages;
    case SWEEP_F_OFFLOAD:
        return p->offload_optimizer | p->offload_activations << 1;
    case SWEEP_F_OVERLAP:
        return p->overlap_dp | p->overlap_tp << 1 | p->overlap_pp << 2;
    case SWEEP_F_EP:
        return p->ep;
    case SWEEP_F_ETP:
        return plan_etp(p);
    case SWEEP_F_DISTILL_PLACEMENT:
        return p->distill.placement;
    case SWEEP_F_DISTILL_TOP_K:
        return p->distill.top_k;
    case SWEEP_F_PLACEMENT: {
        int64_t k = 0;
        for (int i = 0; i < PLAN_GROUPS; i++)
            k |= (int64_t)p->placement[i] << 8 * i;
        return k;
    }
    }
    return 0;
}

const char *sweep_field_text(int field, int64_t key, char *buf, int len) {
    plan_cfg c; /* the packed fields' names come from plan_cfg: only those fields are set */
    switch (field) {
    case SWEEP_F_SP:
        snprintf(buf, (size_t)len, "%s", key ? "on" : "off");
        break;
    case SWEEP_F_RECOMPUTE:
        snprintf(buf, (size_t)len, "%s", plan_recompute_names[key]);
        break;
    case SWEEP_F_SCHEDULE:
        snprintf(buf, (size_t)len, "%s", plan_schedule_names[key]);
        break;
    case SWEEP_F_OFFLOAD:
        c.offload_optimizer = key & 1, c.offload_activations = key >> 1 & 1;
        snprintf(buf, (size_t)len, "%s", plan_offload_name(&c));
        break;
    case SWEEP_F_OVERLAP:
        c.overlap_dp = key & 1, c.overlap_tp = key >> 1 & 1, c.overlap_pp = key >> 2 & 1;
        plan_overlap_name(&c, buf, len);
        break;
    case SWEEP_F_DISTILL_PLACEMENT:
        snprintf(buf, (size_t)len, "%s", plan_distill_placement_names[key ? 1 : 0]);
        break;
    case SWEEP_F_PLACEMENT:
        for (int i = 0; i < PLAN_GROUPS; i++)
            c.placement[i] = (uint8_t)(key >> 8 * i & 0xff);
        plan_placement_name(&c, buf, len);
        break;
    default:
        snprintf(buf, (size_t)len, "%lld", (long long)key);
    }
    return buf;
}

/* ---- the ranking ------------------------------------------------------------------------- */

int sweep_rank_init(sweep_rank *r, int cap) {
    memset(r, 0, sizeof *r);
    r->cap = cap > 0 ? cap : 0;
    r->n_bucket = 1;
    while (r->n_bucket < 2 * r->cap)
        r->n_bucket *= 2;
    size_t n = (size_t)(r->cap > 0 ? r->cap : 1);
    r->e = calloc(n, sizeof *r->e);
    r->heap = malloc(n * sizeof *r->heap);
    r->next = malloc(n * sizeof *r->next);
    r->bucket = malloc((size_t)r->n_bucket * sizeof *r->bucket);
    if (!r->e || !r->heap || !r->next || !r->bucket) {
        sweep_rank_free(r);
        return -1;
    }
    for (int i = 0; i < r->n_bucket; i++)
        r->bucket[i] = -1;
    return 0;
}

void sweep_rank_free(sweep_rank *r) {
    free(r->e);
    free(r->heap);
    free(r->next);
    free(r->bucket);
    r->e = NULL, r->heap = r->next = r->bucket = NULL;
}

static int close_rel(double a, double b) {
    return fabs(a - b) <= SWEEP_SAME_REL * fmax(fabs(a), fabs(b));
}

/* The same test on a point's numbers, so that a point need not be copied to be looked up. */
static int same_numbers(const sweep_entry *a, const step_time *t, int64_t peak, int64_t capacity) {
    return a->peak_bytes == peak && a->capacity_bytes == capacity &&
           close_rel(a->time.tokens_per_s, t->tokens_per_s) && close_rel(a->time.step, t->step) &&
           close_rel(a->time.mfu, t->mfu) && close_rel(a->time.hfu, t->hfu);
}

int sweep_same_prediction(const sweep_entry *a, const sweep_entry *b) {
    return same_numbers(a, &b->time, b->peak_bytes, b->capacity_bytes);
}

static int bucket_of(const sweep_rank *r, int64_t peak) {
    return (int)(((uint64_t)peak * 0x9E3779B97F4A7C15ull) >> 32 & (uint64_t)(r->n_bucket - 1));
}

static void hash_insert(sweep_rank *r, int slot) {
    int b = bucket_of(r, r->e[slot].peak_bytes);
    r->next[slot] = r->bucket[b];
    r->bucket[b] = slot;
}

static void hash_remove(sweep_rank *r, int slot) {
    int *at = &r->bucket[bucket_of(r, r->e[slot].peak_bytes)];
    while (*at != slot)
        at = &r->next[*at];
    *at = r->next[slot];
}

/* Is a worse than b (heap order: the worst kept plan at the root)? */
static int worse(const sweep_entry *a, const sweep_entry *b) {
    if (a->time.tokens_per_s != b->time.tokens_per_s)
        return a->time.tokens_per_s < b->time.tokens_per_s;
    return a->peak_bytes > b->peak_bytes;
}

static int heap_worse(const sweep_rank *r, int i, int j) {
    return worse(&r->e[r->heap[i]], &r->e[r->heap[j]]);
}

static void heap_swap(sweep_rank *r, int i, int j) {
    int t = r->heap[i];
    r->heap[i] = r->heap[j];
    r->heap[j] = t;
}

static void sift_down(sweep_rank *r, int i) {
    for (;;) {
        int l = 2 * i + 1, c = l + 1, w = i;
        if (l < r->n && heap_worse(r, l, w)) w = l;
        if (c < r->n && heap_worse(r, c, w)) w = c;
        if (w == i) return;
        heap_swap(r, i, w);
        i = w;
    }
}

static void sift_up(sweep_rank *r, int i) {
    while (i > 0 && heap_worse(r, i, (i - 1) / 2)) {
        heap_swap(r, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

/* Note p's values that differ from the kept plan's. */
static void equiv_add(sweep_entry *e, const plan_cfg *p) {
    sweep_equiv *q = &e->equiv;
    q->n++;
    for (int f = 0; f < SWEEP_FIELD_COUNT; f++) {
        int64_t k = sweep_field_key(p, f);
        if (k == sweep_field_key(&e->cfg, f)) continue;
        int i = 0;
        while (i < q->n_val[f] && q->val[f][i] != k)
            i++;
        if (i < q->n_val[f]) continue;
        if (i < SWEEP_EQUIV_VALUES)
            q->val[f][q->n_val[f]++] = k;
        else
            q->more[f] = true;
    }
}

void sweep_rank_add(sweep_rank *r, const sweep_point *pt) {
    r->points++;
    if (pt->reason != PLAN_OK) {
        r->rejected[pt->reason]++;
        return;
    }
    r->evaluated++;
    const eval_result *ev = pt->eval;
    if (!ev->fits) {
        r->no_fit++;
        return;
    }
    r->fit++;
    const step_time *t = &ev->time;
    if (t->tokens_per_s > r->best_tokens_per_s) r->best_tokens_per_s = t->tokens_per_s;
    if (r->cap <= 0) return;
    const int full = r->n == r->cap;
    /* Every kept plan is at least as fast as the root, so a point slower than it by more
     * than the tolerance neither enters nor matches one: most points stop here. */
    if (full && t->tokens_per_s < r->e[r->heap[0]].time.tokens_per_s * (1 - SWEEP_SAME_REL)) return;
    for (int s = r->bucket[bucket_of(r, ev->heavy.total)]; s >= 0; s = r->next[s])
        if (same_numbers(&r->e[s], t, ev->heavy.total, ev->capacity_bytes)) {
            equiv_add(&r->e[s], pt->cfg);
            return;
        }
    sweep_entry *x;
    int slot;
    if (!full) {
        slot = r->n;
        r->heap[r->n++] = slot;
    } else {
        slot = r->heap[0];
        const sweep_entry *root = &r->e[slot];
        if (t->tokens_per_s < root->time.tokens_per_s ||
            (t->tokens_per_s == root->time.tokens_per_s && ev->heavy.total >= root->peak_bytes))
            return; /* not better than the worst kept plan */
        hash_remove(r, slot);
    }
    x = &r->e[slot];
    x->cfg = *pt->cfg;
    x->time = *t;
    x->peak_bytes = ev->heavy.total;
    x->capacity_bytes = ev->capacity_bytes;
    memset(&x->equiv, 0, sizeof x->equiv);
    hash_insert(r, slot);
    if (full)
        sift_down(r, 0);
    else
        sift_up(r, r->n - 1);
}

static int better_first(const void *a, const void *b) {
    const sweep_entry *x = a, *y = b;
    return worse(y, x) ? -1 : worse(x, y) ? 1 : 0;
}

void sweep_rank_sort(sweep_rank *r) {
    qsort(r->e, (size_t)r->n, sizeof *r->e, better_first);
    for (int i = 0; i < r->n_bucket; i++)
        r->bucket[i] = -1; /* slots moved: no more adds */
}

/* ---- explanations ------------------------------------------------------------------------ */

/* Append "name a vs b" for each field where the plans differ. */
static void fields_diff(char *buf, int len, const plan_cfg *p, const plan_cfg *q) {
    for (int f = 0; f < SWEEP_FIELD_COUNT; f++) {
        int64_t a = sweep_field_key(p, f), b = sweep_field_key(q, f);
        size_t n = strlen(buf);
        if (a == b || (int)n >= len - 1) continue;
        char ta[32], tb[32];
        snprintf(buf + n, (size_t)len - n, "%s%s %s vs %s", n ? ", " : "", sweep_field_names[f],
                 sweep_field_text(f, a, ta, sizeof ta), sweep_field_text(f, b, tb, sizeof tb));
    }
}

const char *sweep_rank_why(const sweep_entry *a, const sweep_entry *b, char *buf, int len) {
    const step_time *x = &a->time, *y = &b->time;
    const char *what = "compute";
    double gain = y->compute - x->compute;
    static const char *const exposed[GROUP_COUNT] = {
        "exposed dp communication", "exposed tp communication", "exposed pp communication",
        "exposed cp communication", "exposed host transfer (offload)",
        "exposed ep all-to-all (MoE dispatch/combine)", "exposed edp communication (expert grads)"};
    if (y->bubble - x->bubble > gain) gain = y->bubble - x->bubble, what = "pipeline bubble";
    if (y->optimizer - x->optimizer > gain)
        gain = y->optimizer - x->optimizer, what = "optimizer time";
    for (int g = 0; g < GROUP_COUNT; g++)
        if (y->exposed[g] - x->exposed[g] > gain)
            gain = y->exposed[g] - x->exposed[g], what = exposed[g];
    char fields[256] = "";
    fields_diff(fields, sizeof fields, &a->cfg, &b->cfg);
    if (gain <= 0 && a->peak_bytes == b->peak_bytes)
        snprintf(buf, (size_t)len, "identical prediction (%s)", fields);
    else if (gain <= 0)
        snprintf(buf, (size_t)len, "ties on time; uses less memory (%s)", fields);
    else
        snprintf(buf, (size_t)len, "%.3f s less %s per step (%s)", gain, what,
                 fields[0] ? fields : "same fields");
    return buf;
}

const char *sweep_rank_equiv(const sweep_entry *e, char *buf, int len) {
    const sweep_equiv *q = &e->equiv;
    buf[0] = 0;
    for (int f = 0; f < SWEEP_FIELD_COUNT; f++) {
        if (!q->n_val[f]) continue;
        size_t n = strlen(buf);
        if ((int)n < len)
            snprintf(buf + n, (size_t)len - n, "%s%s", n ? "; " : "", sweep_field_names[f]);
        for (int i = 0; i < q->n_val[f]; i++) {
            char t[32];
            n = strlen(buf);
            if ((int)n < len)
                snprintf(buf + n, (size_t)len - n, "%s%s", i ? ", " : " ",
                         sweep_field_text(f, q->val[f][i], t, sizeof t));
        }
        n = strlen(buf);
        if (q->more[f] && (int)n < len) snprintf(buf + n, (size_t)len - n, ", …");
    }
    return buf;
}

const char *sweep_strategy(const plan_cfg *p, char *buf, int len) {
    buf[0] = 0;
    const char *names[] = {"tp", "cp", "pp", "dp"};
    const int64_t deg[] = {p->tp, p->cp, p->pp, p->dp};
    for (int i = 0; i < 4; i++)
        if (deg[i] > 1) {
            size_t n = strlen(buf);
            snprintf(buf + n, (size_t)len - n, "%s%s", n ? "+" : "", names[i]);
        }
    size_t n = strlen(buf);
    if (!n) snprintf(buf, (size_t)len, "single");
    n = strlen(buf);
    if (p->zero && p->dp * p->cp > 1) snprintf(buf + n, (size_t)len - n, " zero-%d", p->zero);
    n = strlen(buf);
    /* logit distillation: where the teacher runs, and top-k (the CSV's strategy column) */
    if (p->distill.set) {
        snprintf(buf + n, (size_t)len - n, " kd-%s",
                 plan_distill_placement_names[p->distill.placement ? 1 : 0]);
        n = strlen(buf);
        if (p->distill.top_k)
            snprintf(buf + n, (size_t)len - n, "-top%lld", (long long)p->distill.top_k);
    }
    return buf;
}
