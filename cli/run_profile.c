/* run_profile.c — measured vs predicted reports of `parasim run` (see
 * run_profile.h). */
#include "run_profile.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/fmt.h"
#include "base/jsonw.h"

static int64_t mem_available_bytes(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

int run_profile_check_memory(const program *p, const replay_result *rp, int local_ranks,
                             ps_err *err) {
    int64_t worst = 0;
    for (int r = 0; r < rp->n_roles; r++)
        if (rp->roles[r].peak_total.bytes > worst) worst = rp->roles[r].peak_total.bytes;
    const int64_t avail = mem_available_bytes();
    if (avail < 0) return 0; /* not Linux: nothing to compare with */
    if (worst * local_ranks > avail) {
        char a[32], b[32], c[32];
        fmt_bytes(worst, a, sizeof a);
        fmt_bytes(worst * local_ranks, b, sizeof b);
        fmt_bytes(avail, c, sizeof c);
        return ps_err_set(err, "%s (%s) does not fit in host memory: the replay predicts a peak "
                               "of %s per rank, %s for the %d ranks on this node, and %s is "
                               "available (MemAvailable); use a smaller model or batch, more "
                               "ranks, ZeRO or recomputation (parasim plan shows the breakdown)",
                          p->plan_name, p->model_name, a, b, local_ranks, c);
    }
    return 0;
}

int run_profile_check_output(const char *path, ps_err *err) {
    atomic_file af;
    if (atomic_file_open(&af, path, err)) return -1;
    atomic_file_abort(&af);
    return 0;
}

/* One collective kind of one group, measured and predicted side by side. */
typedef struct {
    comm_group group;
    comm_coll coll;
    const rt_coll_stat *measured;
    int64_t predicted_calls, predicted_bytes; /* summed over the replay's phases */
} coll_row;

/* The kinds either side saw, in group then collective order. Returns the count. */
static int coll_rows(const replay_role *rr, const rt_result *r,
                     coll_row out[GROUP_COUNT * (COLL_ALL_TO_ALL + 1)]) {
    int n = 0;
    for (int g = 0; g < GROUP_COUNT; g++)
        for (int c = 0; c <= COLL_ALL_TO_ALL; c++) {
            coll_row row = {(comm_group)g, (comm_coll)c, &r->coll[g][c], 0, 0};
            for (int i = 0; i < rr->n_colls; i++)
                if (rr->colls[i].group == row.group && rr->colls[i].coll == row.coll) {
                    row.predicted_bytes += rr->colls[i].bytes;
                    row.predicted_calls += rr->colls[i].calls;
                }
            if (row.measured->calls || row.predicted_calls) out[n++] = row;
        }
    return n;
}

/* Steady-state step time: the mean over the steps after the first (the
 * first one also creates the optimizer states and warms the caches). */
static double steady_seconds(const rt_result *r) {
    if (r->steps < 2) return r->step_seconds[0];
    double s = 0;
    for (int i = 1; i < r->steps; i++) s += r->step_seconds[i];
    return s / (r->steps - 1);
}

/* The rank with the highest measured peak of category c (MEM_COUNT: all
 * together); the lowest rank on a tie. */
static int heaviest_rank(const run_gather *x, int c) {
    int best = 0;
    for (int i = 1; i < x->n_ranks; i++) {
        const int64_t a = c < MEM_COUNT ? x->ranks[i].peak[c] : x->ranks[i].peak_total;
        const int64_t b = c < MEM_COUNT ? x->ranks[best].peak[c] : x->ranks[best].peak_total;
        if (a > b) best = i;
    }
    return best;
}

/* The slowest stage: the rank (and so the role) with the most measured
 * compute seconds (fwd, bwd, optim ops) over the run; the lowest on a tie. */
static int slowest_rank(const run_gather *x) {
    int best = 0;
    for (int i = 1; i < x->n_ranks; i++)
        if (x->ranks[i].compute_s > x->ranks[best].compute_s) best = i;
    return best;
}

/* The role the replay predicts to compute longest (the first on a tie). */
static int slowest_predicted_role(const replay_result *rp) {
    int best = 0;
    for (int i = 1; i < rp->n_roles; i++)
        if (rp->roles[i].compute_s > rp->roles[best].compute_s) best = i;
    return best;
}

static void print_ranks(FILE *f, const program *p, const replay_result *rp, const run_gather *x) {
    if (!x || x->n_ranks < 1) return;
    char b1[32], b2[32];
    fprintf(f, "\nheaviest rank per category (peak; %d ranks, %d role%s)\n", (int)x->n_ranks,
            (int)p->n_roles, p->n_roles == 1 ? "" : "s");
    fprintf(f, "%-12s %5s %5s %13s %13s\n", "category", "rank", "role", "measured", "predicted");
    for (int c = 0; c <= MEM_COUNT; c++) {
        const run_rank *k = &x->ranks[heaviest_rank(x, c)];
        const replay_role *rr = &rp->roles[k->role];
        const int64_t m = c < MEM_COUNT ? k->peak[c] : k->peak_total;
        const int64_t pr = c < MEM_COUNT ? rr->peak[c].bytes : rr->peak_total.bytes;
        fprintf(f, "%-12s %5d %5d %13s %13s\n", c < MEM_COUNT ? mem_cat_names[c] : "total",
                (int)k->rank, (int)k->role, fmt_bytes(m, b1, sizeof b1),
                fmt_bytes(pr, b2, sizeof b2));
    }
    const run_rank *s = &x->ranks[slowest_rank(x)];
    const prog_role *ro = &p->roles[s->role];
    const int pr = slowest_predicted_role(rp);
    const prog_role *pro = &p->roles[pr];
    fprintf(f, "slowest stage: role %d (stage %d, tp %d, cp %d) on rank %d, %.3f s of compute "
               "over %d steps (predicted %.3f s); predicted slowest: role %d (stage %d, tp %d, "
               "cp %d)\n",
            (int)s->role, (int)ro->stage, (int)ro->tp_rank, (int)ro->cp_rank, (int)s->rank,
            s->compute_s, (int)s->steps, rp->roles[s->role].compute_s, pr, (int)pro->stage,
            (int)pro->tp_rank, (int)pro->cp_rank);
}

void run_profile_print_summary(FILE *f, const program *p, const rt_groups *g,
                               const replay_result *rp, const rt_result *r, const run_gather *x) {
    const replay_role *rr = &rp->roles[g->role];
    char b1[32], b2[32], b3[32], b4[32];
    fprintf(f, "\nmemory per rank (rank %d)     end of step 1            peak\n", g->world.rank);
    fprintf(f, "%-12s %13s %13s %13s %13s\n", "category", "measured", "predicted", "measured",
            "predicted");
    for (int c = 0; c < MEM_COUNT; c++)
        fprintf(f, "%-12s %13s %13s %13s %13s\n", mem_cat_names[c],
                fmt_bytes(r->end_of_step0[c], b1, sizeof b1),
                fmt_bytes(rp->n_roles ? rr->steps[0].end_bytes[c] : 0, b2, sizeof b2),
                fmt_bytes(r->peak[c], b3, sizeof b3), fmt_bytes(rr->peak[c].bytes, b4, sizeof b4));
    fprintf(f, "%-12s %13s %13s %13s %13s\n", "total", "", "", fmt_bytes(r->peak_total, b3, sizeof b3),
            fmt_bytes(rr->peak_total.bytes, b4, sizeof b4));
    fprintf(f, "(workspace: each op's temporaries -- activation gradients, logits, fp32 copies of\n"
               " bf16 tensors, attention scratch, receive buffers -- predicted per op,\n"
               " docs/memory.md §6)\n");
    coll_row rows[GROUP_COUNT * (COLL_ALL_TO_ALL + 1)];
    const int n_rows = coll_rows(rr, r, rows);
    if (n_rows)
        fprintf(f, "\ncollectives (all steps)  calls  measured bytes  predicted bytes   "
                   "seconds   algbw\n");
    for (int i = 0; i < n_rows; i++) {
        const rt_coll_stat *s = rows[i].measured;
        fprintf(f, "%-3s %-18s %7lld %15lld %16lld %9.4f %7s/s\n", comm_group_names[rows[i].group],
                comm_coll_names[rows[i].coll], (long long)s->calls, (long long)s->bytes,
                (long long)rows[i].predicted_bytes, s->seconds,
                fmt_bytes(s->seconds > 0 ? (int64_t)(s->bytes / s->seconds) : 0, b1, sizeof b1));
    }
    const double steady = steady_seconds(r);
    double pred = rp->n_roles && rr->n_steps > 1 ? rr->steps[1].seconds : rr->end_s;
    char which[32];
    if (r->steps > 2) snprintf(which, sizeof which, "steps 2..%d", r->steps);
    else if (r->steps == 2) snprintf(which, sizeof which, "step 2");
    else snprintf(which, sizeof which, "step 1");
    fprintf(f, "\nstep time (%s)  measured %.3f s (%.0f tokens/s)   predicted %.3f s "
               "on the plan's cluster (%s)\n",
            which, steady, r->tokens_per_step / steady, pred, p->cluster_name);
    print_ranks(f, p, rp, x);
}

/* A memory array in the order of mem_cat_names (the profile's "categories"). */
static void mem_arr(jsonw *w, const char *key, const int64_t *b) {
    char s[MEM_COUNT * 24 + 4];
    int n = snprintf(s, sizeof s, "[");
    for (int c = 0; c < MEM_COUNT; c++)
        n += snprintf(s + n, sizeof s - (size_t)n, "%s%lld", c ? ", " : "", (long long)b[c]);
    snprintf(s + n, sizeof s - (size_t)n, "]");
    jsonw_raw(w, key, s);
}

/* A one-line JSON object built in memory (events, collectives). */
typedef struct {
    char s[1024];
    int n;
} line;

static void line_put(line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_put(line *l, const char *fmt, ...) {
    if (l->n >= (int)sizeof l->s - 1) return;
    va_list ap;
    va_start(ap, fmt);
    l->n += vsnprintf(l->s + l->n, sizeof l->s - (size_t)l->n, fmt, ap);
    va_end(ap);
}

static void line_mem(line *l, const char *key, const int64_t *b) {
    line_put(l, ", \"%s\": [", key);
    for (int c = 0; c < MEM_COUNT; c++) line_put(l, "%s%lld", c ? ", " : "", (long long)b[c]);
    line_put(l, "]");
}

/* The collectives of one rank, measured and predicted, one per line. */
static void write_colls(jsonw *w, const replay_role *rr, const rt_result *r) {
    coll_row rows[GROUP_COUNT * (COLL_ALL_TO_ALL + 1)];
    const int n_rows = coll_rows(rr, r, rows);
    jsonw_arr(w, "collectives");
    for (int c = 0; c < n_rows; c++) {
        line l = {.n = 0};
        line_put(&l, "{\"group\": \"%s\", \"coll\": \"%s\", \"calls\": %lld, \"bytes\": %lld, "
                     "\"seconds\": %.9g, \"predicted_calls\": %lld, \"predicted_bytes\": %lld}",
                 comm_group_names[rows[c].group], comm_coll_names[rows[c].coll],
                 (long long)rows[c].measured->calls, (long long)rows[c].measured->bytes,
                 rows[c].measured->seconds, (long long)rows[c].predicted_calls,
                 (long long)rows[c].predicted_bytes);
        jsonw_raw(w, NULL, l.s);
    }
    jsonw_arr_end(w);
}

static void write_event(jsonw *w, const prog_role *role, const replay_role *rr, const rt_event *e) {
    const prog_op *o = &role->ops[e->op];
    const replay_op *po = &rr->ops[e->op];
    line l = {.n = 0};
    line_put(&l, "{\"op\": %d, \"kind\": \"%s\", \"step\": %d", (int)e->op,
             prog_kind_names[o->kind], (int)o->step + 1);
    if (o->mb >= 0) line_put(&l, ", \"mb\": %d", (int)o->mb);
    if (o->unit >= 0) line_put(&l, ", \"unit\": \"%s\"", role->units[o->unit].name);
    if (o->kind == OP_BWD && o->part != BWD_ALL) /* zero-bubble's B and W */
        line_put(&l, ", \"part\": \"%s\"", prog_bwd_part_names[o->part]);
    line_put(&l, ", \"start\": %.9g, \"end\": %.9g, \"predicted_start\": %.9g, "
                 "\"predicted_end\": %.9g",
             e->start, e->end, po->start_s, po->end_s);
    if (o->kind == OP_COLL || o->kind == OP_SEND || o->kind == OP_RECV)
        line_put(&l, ", \"group\": \"%s\", \"coll\": \"%s\", \"bytes\": %lld, "
                     "\"predicted_bytes\": %lld",
                 comm_group_names[o->group],
                 comm_coll_names[o->kind == OP_COLL ? o->coll : COLL_SEND],
                 (long long)e->coll_bytes, (long long)o->bytes);
    else if (o->ring_passes > 0) /* the cp ring's passes inside a layer's fwd / bwd */
        line_put(&l, ", \"group\": \"cp\", \"coll\": \"%s\", \"bytes\": %lld, "
                     "\"predicted_bytes\": %lld",
                 comm_coll_names[COLL_SEND], (long long)e->coll_bytes,
                 (long long)(o->ring_passes * o->ring_bytes));
    line_mem(&l, "memory", e->current);
    line_mem(&l, "predicted_memory", po->bytes);
    line_put(&l, ", \"peak_total\": %lld, \"predicted_peak_total\": %lld}", (long long)e->peak_total,
             (long long)po->peak_total);
    jsonw_raw(w, NULL, l.s);
}

static void mem_obj(jsonw *w, const char *key, const int64_t *b) {
    jsonw_obj(w, key);
    for (int c = 0; c < MEM_COUNT; c++) jsonw_int(w, mem_cat_names[c], b[c]);
    jsonw_obj_end(w);
}

/* Rank 0's memory and collectives, as version 1 of the profile had them (by name). */
static void write_rank0(jsonw *w, const replay_result *rp, const rt_result *r, const run_gather *x) {
    const int role = x->ranks[0].role;
    const replay_role *rr = &rp->roles[role];
    jsonw_int(w, "rank", 0);
    jsonw_int(w, "role", role);
    jsonw_obj(w, "memory");
    mem_obj(w, "measured_end_of_step1", r->end_of_step0);
    mem_obj(w, "predicted_end_of_step1", rr->steps[0].end_bytes);
    mem_obj(w, "measured_peak", r->peak);
    int64_t pp[MEM_COUNT];
    for (int c = 0; c < MEM_COUNT; c++) pp[c] = rr->peak[c].bytes;
    mem_obj(w, "predicted_peak", pp);
    jsonw_int(w, "measured_peak_total", r->peak_total);
    jsonw_int(w, "predicted_peak_total", rr->peak_total.bytes);
    jsonw_obj_end(w);
    write_colls(w, rr, r);
}

static void write_role(jsonw *w, const program *p, const replay_result *rp, int i) {
    const prog_role *ro = &p->roles[i];
    const replay_role *rr = &rp->roles[i];
    jsonw_obj(w, NULL);
    jsonw_int(w, "role", i);
    jsonw_int(w, "stage", ro->stage);
    jsonw_int(w, "tp_rank", ro->tp_rank);
    jsonw_int(w, "cp_rank", ro->cp_rank);
    char s[64];
    line l = {.n = 0};
    line_put(&l, "[");
    for (int k = 0; k < ro->n_ranks; k++) {
        snprintf(s, sizeof s, "%s%d", k ? ", " : "", (int)ro->ranks[k]);
        line_put(&l, "%s", s);
    }
    line_put(&l, "]");
    jsonw_raw(w, "ranks", l.s);
    jsonw_int(w, "ops", ro->n_ops);
    jsonw_obj(w, "predicted");
    int64_t pk[MEM_COUNT];
    for (int c = 0; c < MEM_COUNT; c++) pk[c] = rr->peak[c].bytes;
    mem_arr(w, "peak", pk);
    jsonw_int(w, "peak_total", rr->peak_total.bytes);
    if (rr->n_steps > 0) mem_arr(w, "end_of_step1", rr->steps[0].end_bytes);
    jsonw_num(w, "compute_seconds", rr->compute_s);
    jsonw_num(w, "comm_seconds", rr->comm_s);
    jsonw_num(w, "end_seconds", rr->end_s);
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}

static void write_rank(jsonw *w, const program *p, const replay_result *rp, const run_gather *x,
                       int i) {
    const run_rank *k = &x->ranks[i];
    const prog_role *role = &p->roles[k->role];
    const replay_role *rr = &rp->roles[k->role];
    jsonw_obj(w, NULL);
    jsonw_int(w, "rank", k->rank);
    jsonw_int(w, "role", k->role);
    jsonw_obj(w, "measured");
    mem_arr(w, "peak", k->peak);
    jsonw_int(w, "peak_total", k->peak_total);
    mem_arr(w, "end_of_step1", k->end_of_step0);
    jsonw_num(w, "compute_seconds", k->compute_s);
    jsonw_num(w, "comm_seconds", k->comm_s);
    jsonw_obj_end(w);
    rt_result one = {.steps = k->steps};
    memcpy(one.coll, k->coll, sizeof one.coll);
    write_colls(w, rr, &one);
    jsonw_arr(w, "events");
    for (int e = 0; e < k->n_events; e++) write_event(w, role, rr, &x->events[i][e]);
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}

static void write_summary(jsonw *w, const program *p, const replay_result *rp,
                          const run_gather *x) {
    jsonw_obj(w, "summary");
    jsonw_obj(w, "heaviest");
    for (int c = 0; c <= MEM_COUNT; c++) {
        const run_rank *k = &x->ranks[heaviest_rank(x, c)];
        const replay_role *rr = &rp->roles[k->role];
        char s[256];
        snprintf(s, sizeof s, "{\"rank\": %d, \"role\": %d, \"bytes\": %lld, "
                              "\"predicted_bytes\": %lld}",
                 (int)k->rank, (int)k->role,
                 (long long)(c < MEM_COUNT ? k->peak[c] : k->peak_total),
                 (long long)(c < MEM_COUNT ? rr->peak[c].bytes : rr->peak_total.bytes));
        jsonw_raw(w, c < MEM_COUNT ? mem_cat_names[c] : "total", s);
    }
    jsonw_obj_end(w);
    const run_rank *s = &x->ranks[slowest_rank(x)];
    const int pr = slowest_predicted_role(rp);
    jsonw_obj(w, "slowest");
    jsonw_int(w, "rank", s->rank);
    jsonw_int(w, "role", s->role);
    jsonw_int(w, "stage", p->roles[s->role].stage);
    jsonw_num(w, "compute_seconds", s->compute_s);
    jsonw_num(w, "predicted_compute_seconds", rp->roles[s->role].compute_s);
    jsonw_int(w, "predicted_slowest_role", pr);
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}

int run_profile_write(const char *path, const program *p, const replay_result *rp,
                      const rt_result *r, const run_gather *x, int threads, ps_err *err) {
    atomic_file af;
    if (atomic_file_open(&af, path, err)) return -1;
    jsonw w;
    jsonw_init(&w, af.f);
    jsonw_obj(&w, NULL);
    jsonw_str(&w, "format", "parasim-profile");
    jsonw_int(&w, "version", RUN_PROFILE_VERSION);
    jsonw_str(&w, "plan", p->plan_name);
    jsonw_str(&w, "model", p->model_name);
    jsonw_str(&w, "cluster", p->cluster_name);
    jsonw_str(&w, "backend", "cpu");
    jsonw_int(&w, "ranks", x->n_ranks);
    line par = {.n = 0};
    line_put(&par, "{\"dp\": %lld, \"tp\": %lld, \"pp\": %lld, \"cp\": %lld, \"zero\": %d}",
             (long long)p->dp, (long long)p->tp, (long long)p->pp, (long long)p->cp, p->zero);
    jsonw_raw(&w, "parallel", par.s);
    jsonw_str(&w, "params_dtype", dtype_names[p->precision.params]);
    jsonw_int(&w, "threads_per_rank", threads);
    jsonw_num(&w, "tokens_per_step", r->tokens_per_step);
    line cats = {.n = 0};
    line_put(&cats, "[");
    for (int c = 0; c < MEM_COUNT; c++) line_put(&cats, "%s\"%s\"", c ? ", " : "", mem_cat_names[c]);
    line_put(&cats, "]");
    jsonw_raw(&w, "categories", cats.s);
    jsonw_int(&w, "event_steps", RUN_PROFILE_EVENT_STEPS);
    write_rank0(&w, rp, r, x);
    jsonw_arr(&w, "steps");
    for (int s = 0; s < r->steps; s++) {
        double pred = 0; /* the slowest role's */
        for (int i = 0; i < rp->n_roles; i++)
            if (s < rp->roles[i].n_steps && rp->roles[i].steps[s].seconds > pred)
                pred = rp->roles[i].steps[s].seconds;
        line l = {.n = 0};
        /* the loss with 17 digits: a double read back exactly (resumed runs compare
         * bit for bit); steps numbered in the training, a resumed run's included */
        line_put(&l, "{\"step\": %lld, \"loss\": %.17g, \"seconds\": %.9g, "
                     "\"tokens_per_s\": %.9g, \"predicted_seconds\": %.9g}",
                 (long long)(r->first_step + s + 1), r->loss[s], r->step_seconds[s],
                 r->tokens_per_step / r->step_seconds[s],
                 pred);
        jsonw_raw(&w, NULL, l.s);
    }
    jsonw_arr_end(&w);
    jsonw_arr(&w, "roles");
    for (int i = 0; i < p->n_roles; i++) write_role(&w, p, rp, i);
    jsonw_arr_end(&w);
    jsonw_arr(&w, "rank_profiles");
    for (int i = 0; i < x->n_ranks; i++) write_rank(&w, p, rp, x, i);
    jsonw_arr_end(&w);
    write_summary(&w, p, rp, x);
    jsonw_obj_end(&w);
    jsonw_end(&w);
    return atomic_file_commit(&af, err);
}
