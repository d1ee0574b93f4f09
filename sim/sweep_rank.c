/* sweep_rank.c — best-plans heap, tallies and explanations (see sweep_rank.h). */
#include "sweep_rank.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sweep_rank_init(sweep_rank *r, int cap) {
    memset(r, 0, sizeof *r);
    r->cap = cap;
    r->e = calloc((size_t)(cap > 0 ? cap : 1), sizeof *r->e);
    return r->e ? 0 : -1;
}

void sweep_rank_free(sweep_rank *r) {
    free(r->e);
    r->e = NULL;
}

/* Is a worse than b (heap order: the worst kept plan at the root)? */
static int worse(const sweep_entry *a, const sweep_entry *b) {
    if (a->time.tokens_per_s != b->time.tokens_per_s)
        return a->time.tokens_per_s < b->time.tokens_per_s;
    return a->peak_bytes > b->peak_bytes;
}

static void swap(sweep_entry *a, sweep_entry *b) {
    sweep_entry t = *a;
    *a = *b;
    *b = t;
}

static void sift_down(sweep_entry *e, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && worse(&e[l], &e[w])) w = l;
        if (r < n && worse(&e[r], &e[w])) w = r;
        if (w == i) return;
        swap(&e[i], &e[w]);
        i = w;
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
    if (ev->time.tokens_per_s > r->best_tokens_per_s) r->best_tokens_per_s = ev->time.tokens_per_s;
    if (r->cap <= 0) return;
    sweep_entry x = {*pt->cfg, ev->time, ev->heavy.total, ev->capacity_bytes};
    if (r->n < r->cap) {
        int i = r->n++;
        r->e[i] = x;
        while (i > 0 && worse(&r->e[i], &r->e[(i - 1) / 2])) {
            swap(&r->e[i], &r->e[(i - 1) / 2]);
            i = (i - 1) / 2;
        }
    } else if (worse(&r->e[0], &x)) {
        r->e[0] = x;
        sift_down(r->e, r->n, 0);
    }
}

static int better_first(const void *a, const void *b) {
    const sweep_entry *x = a, *y = b;
    return worse(y, x) ? -1 : worse(x, y) ? 1 : 0;
}

void sweep_rank_sort(sweep_rank *r) { qsort(r->e, (size_t)r->n, sizeof *r->e, better_first); }

static void diff(char *buf, int len, const char *name, int64_t a, int64_t b) {
    size_t n = strlen(buf);
    if (a != b && (int)n < len)
        snprintf(buf + n, (size_t)len - n, "%s%s %lld vs %lld", n ? ", " : "", name,
                 (long long)a, (long long)b);
}

/* Append "name a vs b" when the two names differ. */
static void diff_str(char *buf, int len, const char *name, const char *a, const char *b) {
    size_t n = strlen(buf);
    if (strcmp(a, b) && (int)n < len)
        snprintf(buf + n, (size_t)len - n, "%s%s %s vs %s", n ? ", " : "", name, a, b);
}

static void diff_name(char *buf, int len, const char *name, const char *const *names, int a,
                      int b) {
    diff_str(buf, len, name, names[a], names[b]);
}

const char *sweep_rank_why(const sweep_entry *a, const sweep_entry *b, char *buf, int len) {
    const step_time *x = &a->time, *y = &b->time;
    const char *what = "compute";
    double gain = y->compute - x->compute;
    static const char *const exposed[GROUP_COUNT] = {
        "exposed dp communication", "exposed tp communication", "exposed pp communication",
        "exposed cp communication", "exposed host transfer (offload)"};
    if (y->bubble - x->bubble > gain) gain = y->bubble - x->bubble, what = "pipeline bubble";
    if (y->optimizer - x->optimizer > gain) gain = y->optimizer - x->optimizer, what = "optimizer time";
    for (int g = 0; g < GROUP_COUNT; g++)
        if (y->exposed[g] - x->exposed[g] > gain) gain = y->exposed[g] - x->exposed[g], what = exposed[g];
    char fields[256] = "";
    const plan_cfg *p = &a->cfg, *q = &b->cfg;
    diff(fields, sizeof fields, "dp", p->dp, q->dp);
    diff(fields, sizeof fields, "tp", p->tp, q->tp);
    diff(fields, sizeof fields, "pp", p->pp, q->pp);
    diff(fields, sizeof fields, "cp", p->cp, q->cp);
    diff(fields, sizeof fields, "zero", p->zero, q->zero);
    diff(fields, sizeof fields, "sp", p->sp, q->sp);
    diff(fields, sizeof fields, "micro", p->micro_batch, q->micro_batch);
    diff_name(fields, sizeof fields, "recompute", plan_recompute_names, p->recompute, q->recompute);
    diff_name(fields, sizeof fields, "schedule", plan_schedule_names, p->schedule, q->schedule);
    diff(fields, sizeof fields, "v", p->virtual_stages, q->virtual_stages);
    diff_str(fields, sizeof fields, "offload", plan_offload_name(p), plan_offload_name(q));
    static const char *const onoff[] = {"off", "on"};
    diff_name(fields, sizeof fields, "overlap.dp", onoff, p->overlap_dp, q->overlap_dp);
    diff_name(fields, sizeof fields, "overlap.tp", onoff, p->overlap_tp, q->overlap_tp);
    diff_name(fields, sizeof fields, "overlap.pp", onoff, p->overlap_pp, q->overlap_pp);
    char pa[32], pb[32];
    diff_str(fields, sizeof fields, "placement", plan_placement_name(p, pa, sizeof pa),
             plan_placement_name(q, pb, sizeof pb));
    if (gain <= 0 && a->peak_bytes == b->peak_bytes)
        snprintf(buf, (size_t)len, "identical prediction (%s)", fields);
    else if (gain <= 0)
        snprintf(buf, (size_t)len, "ties on time; uses less memory (%s)", fields);
    else
        snprintf(buf, (size_t)len, "%.3f s less %s per step (%s)", gain, what,
                 fields[0] ? fields : "same fields");
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
    return buf;
}
