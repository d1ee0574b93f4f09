/* run_profile.c — measured vs predicted reports of `parasim run` (see
 * run_profile.h). */
#include "run_profile.h"

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
                     coll_row out[GROUP_COUNT * (COLL_SEND + 1)]) {
    int n = 0;
    for (int g = 0; g < GROUP_COUNT; g++)
        for (int c = 0; c <= COLL_SEND; c++) {
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

void run_profile_print_summary(FILE *f, const program *p, const rt_groups *g,
                               const replay_result *rp, const rt_result *r) {
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
    fprintf(f, "(workspace: the prediction holds the logits only; the runtime's other temporaries\n"
               " -- activation gradients, attention scratch, bf16 widening, the hidden state\n"
               " between ops -- are measured, not predicted)\n");
    coll_row rows[GROUP_COUNT * (COLL_SEND + 1)];
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
}

static void mem_obj(jsonw *w, const char *key, const int64_t *b) {
    jsonw_obj(w, key);
    for (int c = 0; c < MEM_COUNT; c++) jsonw_int(w, mem_cat_names[c], b[c]);
    jsonw_obj_end(w);
}

int run_profile_write(const char *path, const program *p, const rt_groups *g,
                      const replay_result *rp, const rt_result *r, int threads, ps_err *err) {
    atomic_file af;
    if (atomic_file_open(&af, path, err)) return -1;
    const prog_role *role = &p->roles[g->role];
    const replay_role *rr = &rp->roles[g->role];
    jsonw w;
    jsonw_init(&w, af.f);
    jsonw_obj(&w, NULL);
    jsonw_str(&w, "format", "parasim-profile");
    jsonw_int(&w, "version", 1);
    jsonw_str(&w, "plan", p->plan_name);
    jsonw_str(&w, "model", p->model_name);
    jsonw_str(&w, "cluster", p->cluster_name);
    jsonw_str(&w, "backend", "cpu");
    jsonw_int(&w, "ranks", g->world.size);
    jsonw_int(&w, "threads_per_rank", threads);
    jsonw_int(&w, "rank", g->world.rank);
    jsonw_int(&w, "role", g->role);
    jsonw_num(&w, "tokens_per_step", r->tokens_per_step);
    jsonw_arr(&w, "steps");
    for (int s = 0; s < r->steps; s++) {
        jsonw_obj(&w, NULL);
        jsonw_int(&w, "step", s + 1);
        jsonw_num(&w, "loss", r->loss[s]);
        jsonw_num(&w, "seconds", r->step_seconds[s]);
        jsonw_num(&w, "tokens_per_s", r->tokens_per_step / r->step_seconds[s]);
        if (s < rr->n_steps) jsonw_num(&w, "predicted_seconds", rr->steps[s].seconds);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_obj(&w, "memory");
    mem_obj(&w, "measured_end_of_step1", r->end_of_step0);
    mem_obj(&w, "predicted_end_of_step1", rr->steps[0].end_bytes);
    mem_obj(&w, "measured_peak", r->peak);
    int64_t pp[MEM_COUNT];
    for (int c = 0; c < MEM_COUNT; c++) pp[c] = rr->peak[c].bytes;
    mem_obj(&w, "predicted_peak", pp);
    jsonw_int(&w, "measured_peak_total", r->peak_total);
    jsonw_int(&w, "predicted_peak_total", rr->peak_total.bytes);
    jsonw_obj_end(&w);
    jsonw_arr(&w, "collectives");
    coll_row rows[GROUP_COUNT * (COLL_SEND + 1)];
    const int n_rows = coll_rows(rr, r, rows);
    for (int i = 0; i < n_rows; i++) {
        jsonw_obj(&w, NULL);
        jsonw_str(&w, "group", comm_group_names[rows[i].group]);
        jsonw_str(&w, "coll", comm_coll_names[rows[i].coll]);
        jsonw_int(&w, "calls", rows[i].measured->calls);
        jsonw_int(&w, "bytes", rows[i].measured->bytes);
        jsonw_num(&w, "seconds", rows[i].measured->seconds);
        jsonw_int(&w, "predicted_calls", rows[i].predicted_calls);
        jsonw_int(&w, "predicted_bytes", rows[i].predicted_bytes);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_arr(&w, "events");
    for (int i = 0; i < r->n_events; i++) {
        const rt_event *e = &r->events[i];
        const prog_op *o = &role->ops[e->op];
        const replay_op *po = &rr->ops[e->op];
        jsonw_obj(&w, NULL);
        jsonw_int(&w, "op", e->op);
        jsonw_str(&w, "kind", prog_kind_names[o->kind]);
        jsonw_int(&w, "step", o->step);
        if (o->mb >= 0) jsonw_int(&w, "mb", o->mb);
        if (o->unit >= 0) jsonw_str(&w, "unit", role->units[o->unit].name);
        jsonw_num(&w, "start", e->start);
        jsonw_num(&w, "seconds", e->end - e->start);
        jsonw_num(&w, "predicted_seconds", o->seconds);
        if (o->kind == OP_COLL) {
            jsonw_int(&w, "bytes", e->coll_bytes);
            jsonw_int(&w, "predicted_bytes", o->bytes);
        } else if (o->ring_passes > 0) { /* the cp ring's passes inside a layer's op */
            jsonw_int(&w, "bytes", e->coll_bytes);
            jsonw_int(&w, "predicted_bytes", o->ring_passes * o->ring_bytes);
        }
        mem_obj(&w, "measured", e->current);
        mem_obj(&w, "predicted", po->bytes);
        jsonw_int(&w, "measured_peak_total", e->peak_total);
        jsonw_int(&w, "predicted_peak_total", po->peak_total);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    jsonw_end(&w);
    return atomic_file_commit(&af, err);
}
