/* validate_profile.c — a run's profile against its own prediction (see validate_profile.h). */
#include "report/validate_profile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report/plot_profile.h"
#include "spec/yget.h"
#include "spec/ynode.h"

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

/* ---- reading the profile ------------------------------------------------------------ */

static const ynode *get(const ynode *n, const char *key) {
    return n && n->kind == YN_MAP ? ynode_get(n, key) : NULL;
}

static int num(const ynode *n, double *out) {
    int64_t i;
    if (!n || n->kind != YN_SCALAR) return -1;
    if (!yget_parse_int(n->str, &i)) return *out = (double)i, 0;
    char *end = NULL;
    *out = strtod(n->str, &end);
    return end && !*end && end != n->str ? 0 : -1;
}

static double rel(double meas, double pred) {
    if (pred == 0) return meas == 0 ? 0 : INFINITY;
    return fabs(meas - pred) / pred;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int bad(ps_err *err, const char *path, const char *what) {
    return ps_err_set(err, "%s: not a parasim run profile (%s)", path, what);
}

static int memory(const ynode *root, const char *path, validate_result *r, ps_err *err) {
    const ynode *ranks = get(root, "rank_profiles"), *roles = get(root, "roles");
    const ynode *cats = get(root, "categories");
    if (!ranks || ranks->kind != YN_SEQ || !roles || roles->kind != YN_SEQ || !cats ||
        cats->kind != YN_SEQ)
        return bad(err, path, "rank_profiles, roles or categories missing");
    r->ranks = ranks->n;
    r->total_err = r->cat_err = -1;
    /* One op list stands for every data-parallel rank of a role, and the replay's peaks are
     * those of its heaviest rank (ZeRO's uneven shard parts: program_emit.c rs_workspace):
     * each role's prediction against the most any of its ranks measured, category by
     * category and in total. */
    for (int role = 0; role < roles->n; role++) {
        const ynode *pred = get(roles->items[role], "predicted"), *pp = get(pred, "peak");
        double pt, mt = -1, m[16], mr[16];
        int rank_t = -1, rank_c[16], n_c = 0;
        if (num(get(pred, "peak_total"), &pt) || !pp || pp->kind != YN_SEQ || pp->n > 16 ||
            pp->n > cats->n)
            return bad(err, path, "a role's predicted peaks");
        n_c = pp->n;
        for (int c = 0; c < n_c; c++) m[c] = -1, rank_c[c] = -1;
        for (int i = 0; i < ranks->n; i++) {
            const ynode *rp = ranks->items[i], *meas = get(rp, "measured"), *mp = get(meas, "peak");
            double rl, t;
            if (num(get(rp, "role"), &rl) || rl < 0 || rl >= roles->n)
                return bad(err, path, "a rank's role");
            if ((int)rl != role) continue;
            if (num(get(meas, "peak_total"), &t) || !mp || mp->kind != YN_SEQ || mp->n != n_c)
                return bad(err, path, "a rank's peaks");
            if (t > mt) mt = t, rank_t = i;
            for (int c = 0; c < n_c; c++) {
                if (num(mp->items[c], &mr[c])) return bad(err, path, "a peak");
                if (mr[c] > m[c]) m[c] = mr[c], rank_c[c] = i;
            }
        }
        if (rank_t < 0) continue; /* no rank plays it */
        const double e = rel(mt, pt);
        if (e > r->total_err)
            r->total_err = e, r->total_rank = rank_t, r->total_meas = (int64_t)mt,
            r->total_pred = (int64_t)pt;
        for (int c = 0; c < n_c; c++) {
            double p;
            if (num(pp->items[c], &p)) return bad(err, path, "a peak");
            const double ec = rel(m[c], p);
            if (ec > r->cat_err) {
                r->cat_err = ec, r->cat_rank = rank_c[c], r->cat_meas = (int64_t)m[c];
                r->cat_pred = (int64_t)p;
                snprintf(r->cat, sizeof r->cat, "%s",
                         cats->items[c]->kind == YN_SCALAR ? cats->items[c]->str : "?");
            }
        }
    }
    return 0;
}

static int bytes(const ynode *root, const char *path, validate_result *r, ps_err *err) {
    const ynode *ranks = get(root, "rank_profiles");
    r->bytes_err = 0;
    for (int i = 0; i < ranks->n; i++) {
        const ynode *cs = get(ranks->items[i], "collectives");
        if (!cs || cs->kind != YN_SEQ) return bad(err, path, "a rank's collectives");
        for (int k = 0; k < cs->n; k++) {
            const ynode *c = cs->items[k];
            double b, pb, n, pn;
            if (num(get(c, "bytes"), &b) || num(get(c, "predicted_bytes"), &pb) ||
                num(get(c, "calls"), &n) || num(get(c, "predicted_calls"), &pn))
                return bad(err, path, "a collective's bytes or calls");
            const double e = fmax(rel(b, pb), rel(n, pn));
            const ynode *g = get(c, "group"), *o = get(c, "coll");
            r->colls++;
            if (e > r->bytes_err || !r->bytes_what[0])
                snprintf(r->bytes_what, sizeof r->bytes_what, "rank %d %s %s", i,
                         g && g->str ? g->str : "?", o && o->str ? o->str : "?");
            if (e > r->bytes_err) r->bytes_err = e;
        }
    }
    return 0;
}

static int times(const ynode *root, const char *path, validate_result *r, ps_err *err) {
    const ynode *steps = get(root, "steps"), *ranks = get(root, "rank_profiles");
    double tokens;
    if (!steps || steps->kind != YN_SEQ || steps->n < 1 || num(get(root, "tokens_per_step"), &tokens))
        return bad(err, path, "steps or tokens_per_step missing");
    double *m = malloc(sizeof *m * (size_t)steps->n), *p = malloc(sizeof *p * (size_t)steps->n);
    if (!m || !p) return free(m), free(p), ps_err_set(err, "out of memory");
    /* the steps after the first (it allocates the optimizer states); all of one step alone */
    const int from = steps->n > 1 ? 1 : 0;
    int n = 0;
    for (int k = from; k < steps->n; k++, n++)
        if (num(get(steps->items[k], "seconds"), &m[n]) ||
            num(get(steps->items[k], "predicted_seconds"), &p[n]))
            return free(m), free(p), bad(err, path, "a step's seconds");
    r->steps = n;
    r->step_meas = median(m, n), r->step_pred = median(p, n);
    r->step_err = (r->step_meas - r->step_pred) / r->step_pred;
    r->tokens_per_s = tokens / r->step_meas;
    free(m), free(p);
    for (int i = 0; i < ranks->n; i++) {
        const ynode *ev = get(ranks->items[i], "events");
        if (!ev || ev->kind != YN_SEQ) return bad(err, path, "a rank's events");
        for (int k = 0; k < ev->n; k++) {
            const ynode *e = ev->items[k], *kind = get(e, "kind");
            double step, s, t, ps, pt;
            if (!kind || !kind->str || num(get(e, "step"), &step) || num(get(e, "start"), &s) ||
                num(get(e, "end"), &t) || num(get(e, "predicted_start"), &ps) ||
                num(get(e, "predicted_end"), &pt))
                return bad(err, path, "an event");
            if (step < 2) continue; /* as the steps: after the first */
            const char *kn = kind->str;
            const int K = !strcmp(kn, "fwd")     ? VALIDATE_FWD
                          : !strcmp(kn, "bwd")   ? VALIDATE_BWD
                          : !strcmp(kn, "optim") ? VALIDATE_OPTIM
                          : !strcmp(kn, "coll") || !strcmp(kn, "send") || !strcmp(kn, "recv")
                              ? VALIDATE_COMM
                              : -1;
            if (K < 0) continue;
            r->kind_meas[K] += t - s;
            r->kind_pred[K] += pt - ps;
        }
    }
    return 0;
}

int validate_profile(const char *path, validate_result *out, ps_err *err) {
    static const ynode_limits limits = {PLOT_PROFILE_MAX_BYTES, PLOT_PROFILE_MAX_NODES,
                                        YNODE_MAX_DEPTH};
    ynode *root = NULL;
    memset(out, 0, sizeof *out);
    if (ynode_load_file_limits(path, &limits, &root, err)) return -1;
    const ynode *plan = get(root, "plan"), *fmt = get(root, "format");
    int rc = !fmt || !fmt->str || strcmp(fmt->str, "parasim-profile")
                 ? bad(err, path, "format is not parasim-profile")
                 : 0;
    if (!rc) snprintf(out->plan, sizeof out->plan, "%s", plan && plan->str ? plan->str : "?");
    if (!rc) rc = memory(root, path, out, err);
    if (!rc) rc = bytes(root, path, out, err);
    if (!rc) rc = times(root, path, out, err);
    ynode_free(root);
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
