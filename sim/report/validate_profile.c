/* validate_profile.c — a run's profile against its own prediction (see validate_profile.h). */
#include "report/validate_profile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/median.h"
#include "report/plot_profile.h"

const char *const validate_kind_names[VALIDATE_KINDS] = {"fwd", "bwd", "optim", "comm"};

int validate_tol_parse(const char *text, validate_tol *t, ps_err *err) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        double *dst = NULL;
        if (eq) {
            *eq = 0;
            dst = !strcmp(item, "memory") ? &t->memory
                  : !strcmp(item, "time") ? &t->time
                  : !strcmp(item, "bytes") ? &t->bytes
                                          : NULL;
        }
        if (!dst)
            return ps_err_set(err, "--tolerance: expected memory=, time= or bytes= followed by a "
                                   "fraction or a percentage, found \"%s\"", eq ? item : item);
        char *end = NULL;
        double v = strtod(eq + 1, &end);
        if (end && *end == '%') v /= 100, end++;
        if (end == eq + 1 || (end && *end) || !(v >= 0) || v > 10)
            return ps_err_set(err, "--tolerance: %s: expected a fraction or a percentage from 0 "
                                   "to 1000%%, found \"%s\"", item, eq + 1);
        *dst = v;
    }
    return 0;
}

/* ---- the profile against its prediction ------------------------------------------- */

static double rel(double meas, double pred) {
    if (pred == 0) return meas == 0 ? 0 : INFINITY;
    return fabs(meas - pred) / pred;
}

/* One op list stands for every data-parallel rank of a role, and the replay's peaks are
 * those of its heaviest rank (ZeRO's uneven shard parts: program_emit.c rs_workspace):
 * each role's prediction against the most any of its ranks measured, category by
 * category and in total. */
static void memory(const plot_profile *p, validate_result *r) {
    r->ranks = p->n_ranks;
    r->total_err = r->cat_err = -1;
    for (int role = 0; role < p->n_roles; role++) {
        const prof_role *pr = &p->roles[role];
        int64_t mt = -1, m[MEM_COUNT];
        int rank_t = -1, rank_c[MEM_COUNT];
        for (int c = 0; c < MEM_COUNT; c++) m[c] = -1, rank_c[c] = -1;
        for (int i = 0; i < p->n_ranks; i++) {
            const prof_rank *rk = &p->ranks[i];
            if (rk->role != role) continue;
            if (rk->peak_total > mt) mt = rk->peak_total, rank_t = i;
            for (int c = 0; c < MEM_COUNT; c++)
                if (rk->peak[c] > m[c]) m[c] = rk->peak[c], rank_c[c] = i;
        }
        if (rank_t < 0) continue; /* no rank plays it */
        const double e = rel((double)mt, (double)pr->ppeak_total);
        if (e > r->total_err)
            r->total_err = e, r->total_rank = rank_t, r->total_meas = mt,
            r->total_pred = pr->ppeak_total;
        for (int c = 0; c < MEM_COUNT; c++) {
            const double ec = rel((double)m[c], (double)pr->ppeak[c]);
            if (ec > r->cat_err) {
                r->cat_err = ec, r->cat_rank = rank_c[c], r->cat_meas = m[c];
                r->cat_pred = pr->ppeak[c];
                snprintf(r->cat, sizeof r->cat, "%s", mem_cat_names[c]);
            }
        }
    }
}

static void bytes(const plot_profile *p, validate_result *r) {
    for (int i = 0; i < p->n_ranks; i++)
        for (int k = 0; k < p->ranks[i].n_colls; k++) {
            const prof_coll *c = &p->ranks[i].colls[k];
            const double e = fmax(rel((double)c->bytes, (double)c->pbytes),
                                  rel((double)c->calls, (double)c->pcalls));
            r->colls++;
            if (e > r->bytes_err || !r->bytes_what[0])
                snprintf(r->bytes_what, sizeof r->bytes_what, "rank %d %s %s", i, c->group,
                         c->coll);
            if (e > r->bytes_err) r->bytes_err = e;
        }
}

static int times(const plot_profile *p, const char *path, validate_result *r, ps_err *err) {
    if (p->n_steps < 1 || !(p->tokens_per_step > 0))
        return ps_err_set(err, "%s: the profile has no steps or no tokens_per_step to time "
                               "(parasim run writes both)", path);
    double *m = malloc(sizeof *m * (size_t)p->n_steps), *q = malloc(sizeof *q * (size_t)p->n_steps);
    if (!m || !q) return free(m), free(q), ps_err_set(err, "out of memory");
    /* the steps after the first (it allocates the optimizer states); all of one step alone */
    int n = 0;
    for (int k = p->n_steps > 1 ? 1 : 0; k < p->n_steps; k++, n++)
        m[n] = p->steps[k].seconds, q[n] = p->steps[k].pseconds;
    r->steps = n;
    r->step_meas = ps_median(m, n), r->step_pred = ps_median(q, n);
    r->step_err = (r->step_meas - r->step_pred) / r->step_pred;
    r->tokens_per_s = p->tokens_per_step / r->step_meas;
    free(m), free(q);
    for (int i = 0; i < p->n_ranks; i++)
        for (int k = 0; k < p->ranks[i].n_events; k++) {
            const prof_event *e = &p->ranks[i].events[k];
            const int K = e->kind == OP_FWD     ? VALIDATE_FWD
                          : e->kind == OP_BWD   ? VALIDATE_BWD
                          : e->kind == OP_OPTIM ? VALIDATE_OPTIM
                          : e->kind == OP_COLL || e->kind == OP_SEND || e->kind == OP_RECV
                              ? VALIDATE_COMM
                              : -1;
            if (K < 0 || e->step < 2) continue; /* as the steps: after the first */
            r->kind_meas[K] += e->end - e->start;
            r->kind_pred[K] += e->pend - e->pstart;
        }
    return 0;
}

int validate_profile(const char *path, validate_result *out, ps_err *err) {
    plot_profile p;
    memset(out, 0, sizeof *out);
    if (plot_profile_load(path, &p, err)) return -1;
    snprintf(out->plan, sizeof out->plan, "%s", p.plan);
    memory(&p, out);
    bytes(&p, out);
    const int rc = times(&p, path, out, err);
    plot_profile_free(&p);
    return rc;
}

int validate_over(const validate_result *r, const validate_tol *t) {
    return (r->total_err > t->memory) | (r->bytes_err > t->bytes) << 1 |
           (fabs(r->step_err) > t->time) << 2;
}

static const char *verdict(int over) { return over ? "OVER" : "ok"; }

void validate_print(FILE *f, const validate_result *r, const validate_tol *t) {
    const int over = validate_over(r, t);
    fprintf(f, "%s: %d ranks\n", r->plan, r->ranks);
    fprintf(f, "  peak memory   worst role, its heaviest rank %d: %lld measured, %lld predicted bytes: %+.2f%% "
               "(tolerance %.1f%%) %s\n",
            r->total_rank, (long long)r->total_meas, (long long)r->total_pred,
            r->total_pred ? 100.0 * ((double)r->total_meas - (double)r->total_pred) /
                                (double)r->total_pred
                          : 0.0,
            100 * t->memory, verdict(over & 1));
    if (r->cat_err == 0)
        fprintf(f, "  by category   every category's peak exact on every rank\n");
    else
        fprintf(f, "  by category   worst: rank %d %s, %lld measured, %lld predicted bytes (%.2f%%)\n",
                r->cat_rank, r->cat, (long long)r->cat_meas, (long long)r->cat_pred,
                isfinite(r->cat_err) ? 100 * r->cat_err : 100.0);
    fprintf(f, "  collectives   %d (rank, collective) pairs: calls and bytes %s%s%s (tolerance "
               "%.1f%%) %s\n",
            r->colls, r->bytes_err == 0 ? "exact" : "off, worst ", r->bytes_err == 0 ? "" : r->bytes_what,
            "", 100 * t->bytes, verdict(over & 2));
    fprintf(f, "  step time     median of %d steps: %.4f s measured, %.4f s predicted: %+.1f%% "
               "(tolerance %.1f%%) %s; %.0f tokens/s\n",
            r->steps, r->step_meas, r->step_pred, 100 * r->step_err, 100 * t->time,
            verdict(over & 4), r->tokens_per_s);
    fprintf(f, "  by op kind    (all ranks, the profile's steps after the first)");
    for (int k = 0; k < VALIDATE_KINDS; k++)
        if (r->kind_pred[k] > 0 || r->kind_meas[k] > 0)
            fprintf(f, " %s %.4f/%.4f s", validate_kind_names[k], r->kind_meas[k], r->kind_pred[k]);
    fprintf(f, " (measured/predicted)\n");
}

void validate_csv_header(FILE *f) {
    fprintf(f, "plan,ranks,peak_measured,peak_predicted,peak_error,bytes_error,step_measured_s,"
               "step_predicted_s,step_error,tokens_per_s,fwd_measured_s,fwd_predicted_s,"
               "bwd_measured_s,bwd_predicted_s,optim_measured_s,optim_predicted_s,"
               "comm_measured_s,comm_predicted_s,within\n");
}

void validate_csv_row(FILE *f, const validate_result *r, const validate_tol *t) {
    fputc('"', f);
    for (const char *p = r->plan; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fprintf(f, "\",%d,%lld,%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g", r->ranks, (long long)r->total_meas,
            (long long)r->total_pred, r->total_err, r->bytes_err, r->step_meas, r->step_pred,
            r->step_err, r->tokens_per_s);
    for (int k = 0; k < VALIDATE_KINDS; k++) fprintf(f, ",%.6g,%.6g", r->kind_meas[k], r->kind_pred[k]);
    fprintf(f, ",%s\n", validate_over(r, t) ? "no" : "yes");
}
