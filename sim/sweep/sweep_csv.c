/* sweep_csv.c — CSV rows of sweep points (see sweep_csv.h). Numbers are
 * formatted by hand: printf's %g dominated the sweep's time. */
#include "sweep/sweep_csv.h"

#include <math.h>
#include <string.h>

#include "sweep/sweep_rank.h"

void sweep_csv_header(FILE *f) {
    fputs("dp,tp,pp,cp,zero,sp,micro,recompute,schedule,virtual,placement,offload,overlap,"
          "strategy,status,"
          "peak_gib,headroom_gib,step_s,tokens_per_s,mfu,hfu,compute_s,bubble_s,exposed_dp_s,"
          "exposed_tp_s,exposed_pp_s,exposed_cp_s,exposed_host_s,optimizer_s\n",
          f);
}

static char *put_s(char *o, const char *s) {
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

static char *put_u(char *o, uint64_t v) {
    char t[24];
    int n = 0;
    do t[n++] = (char)('0' + v % 10); while ((v /= 10));
    while (n) *o++ = t[--n];
    return o;
}

static char *put_i(char *o, int64_t v) {
    if (v < 0) *o++ = '-', v = -v;
    return put_u(o, (uint64_t)v);
}

/* Fixed-point with d decimals (d <= 9); non-finite values as empty fields. */
static char *put_f(char *o, double v, int d) {
    static const double scale[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
    if (!isfinite(v) || fabs(v) > 9e18 / scale[d]) return o;
    if (v < 0) *o++ = '-', v = -v;
    uint64_t x = (uint64_t)llround(v * scale[d]), div = (uint64_t)scale[d];
    o = put_u(o, x / div);
    if (d) {
        *o++ = '.';
        uint64_t frac = x % div;
        for (int i = d - 1; i >= 0; i--) {
            o[i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        o += d;
    }
    return o;
}

void sweep_csv_row(FILE *f, const sweep_point *pt) {
    const plan_cfg *p = pt->cfg;
    char buf[512], *o = buf, label[64];
    o = put_i(o, p->dp), *o++ = ',';
    o = put_i(o, p->tp), *o++ = ',';
    o = put_i(o, p->pp), *o++ = ',';
    o = put_i(o, p->cp), *o++ = ',';
    o = put_i(o, p->zero), *o++ = ',';
    o = put_s(o, p->sp ? "true," : "false,");
    o = put_i(o, p->micro_batch), *o++ = ',';
    o = put_s(o, plan_recompute_names[p->recompute]), *o++ = ',';
    o = put_s(o, plan_schedule_names[p->schedule]), *o++ = ',';
    o = put_i(o, p->virtual_stages), *o++ = ',';
    o = put_s(o, plan_placement_name(p, label, sizeof label)), *o++ = ',';
    o = put_s(o, plan_offload_name(p)), *o++ = ',';
    o = put_s(o, plan_overlap_name(p, label, sizeof label)), *o++ = ',';
    o = put_s(o, sweep_strategy(p, label, sizeof label)), *o++ = ',';
    const eval_result *r = pt->eval;
    if (!r) {
        o = put_s(o, plan_reason_id(pt->reason));
        o = put_s(o, ",,,,,,,,,,,,,,\n");
    } else {
        const step_time *t = &r->time;
        const double gib = 1024.0 * 1024.0 * 1024.0;
        o = put_s(o, r->fits ? "ok," : "no-fit,");
        o = put_f(o, (double)r->heavy.total / gib, 3), *o++ = ',';
        o = put_f(o, (double)(r->capacity_bytes - r->heavy.total) / gib, 3), *o++ = ',';
        o = put_f(o, t->step, 6), *o++ = ',';
        o = put_f(o, t->tokens_per_s, 1), *o++ = ',';
        o = put_f(o, t->mfu, 4), *o++ = ',';
        o = put_f(o, t->hfu, 4), *o++ = ',';
        o = put_f(o, t->compute, 6), *o++ = ',';
        o = put_f(o, t->bubble, 6), *o++ = ',';
        /* (the columns of the header: the MoE groups' time is in step_s only) */
        for (int g = 0; g <= GROUP_HOST; g++) o = put_f(o, t->exposed[g], 6), *o++ = ',';
        o = put_f(o, t->optimizer, 6), *o++ = '\n';
    }
    fwrite(buf, 1, (size_t)(o - buf), f);
}
