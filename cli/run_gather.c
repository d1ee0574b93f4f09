/* run_gather.c — every rank's measurements to rank 0 (see run_gather.h). */
#include "run_gather.h"

#include <stdlib.h>
#include <string.h>

int32_t run_gather_kept(const prog_role *role, const rt_result *r, int32_t steps, int32_t max) {
    int32_t n = 0;
    while (n < r->n_events && n < max && r->events[n].op < role->n_ops &&
           role->ops[r->events[n].op].step < steps)
        n++;
    return n;
}

static void rank_record(const program *p, const rt_groups *g, const rt_result *r, int32_t max,
                        run_rank *out) {
    const prog_role *role = &p->roles[g->role];
    memset(out, 0, sizeof *out);
    out->rank = g->world.rank;
    out->role = g->role;
    out->steps = r->steps;
    out->n_events = run_gather_kept(role, r, RUN_PROFILE_EVENT_STEPS, max);
    memcpy(out->peak, r->peak, sizeof out->peak);
    out->peak_total = r->peak_total;
    memcpy(out->end_of_step0, r->end_of_step0, sizeof out->end_of_step0);
    memcpy(out->coll, r->coll, sizeof out->coll);
    for (int32_t i = 0; i < r->n_events; i++) {
        const rt_event *e = &r->events[i];
        const prog_kind k = role->ops[e->op].kind;
        if (k == OP_FWD || k == OP_BWD || k == OP_OPTIM)
            out->compute_s += e->end - e->start;
        else if (k == OP_COLL || k == OP_SEND || k == OP_RECV)
            out->comm_s += e->end - e->start;
    }
}

int run_gather_all(const program *p, const rt_groups *g, const rt_result *r, run_gather *out,
                   ps_err *err) {
    memset(out, 0, sizeof *out);
    const int world = g->world.size, root = g->world.rank == 0;
    /* a bounded profile, whose events' bytes also fit MPI's int counts */
    int64_t max = RUN_PROFILE_MAX_EVENTS_TOTAL / world;
    if (max > RUN_PROFILE_MAX_EVENTS) max = RUN_PROFILE_MAX_EVENTS;
    run_rank me;
    rank_record(p, g, r, (int32_t)max, &me);
    int bad = 0;
    int *counts = NULL, *displs = NULL;
    if (root) {
        out->n_ranks = world;
        out->ranks = calloc((size_t)world, sizeof *out->ranks);
        out->events = calloc((size_t)world, sizeof *out->events);
        counts = calloc((size_t)world, sizeof *counts);
        displs = calloc((size_t)world, sizeof *displs);
        bad = !out->ranks || !out->events || !counts || !displs;
    }
    /* rank 0's allocation decides for all: nobody enters a gather alone */
    MPI_Bcast(&bad, 1, MPI_INT, 0, g->world.comm);
    int rc = MPI_SUCCESS;
    if (!bad)
        rc = MPI_Gather(&me, (int)sizeof me, MPI_BYTE, out->ranks, (int)sizeof me, MPI_BYTE, 0,
                        g->world.comm);
    if (!bad && rc == MPI_SUCCESS) {
        if (root) {
            int64_t total = 0;
            for (int i = 0; i < world; i++) {
                counts[i] = out->ranks[i].n_events * (int)sizeof(rt_event);
                displs[i] = (int)(total * (int64_t)sizeof(rt_event));
                total += out->ranks[i].n_events;
            }
            out->block = malloc((size_t)(total ? total : 1) * sizeof *out->block);
            bad = !out->block;
        }
        MPI_Bcast(&bad, 1, MPI_INT, 0, g->world.comm);
        if (!bad)
            rc = MPI_Gatherv(r->events, me.n_events * (int)sizeof(rt_event), MPI_BYTE, out->block,
                             counts, displs, MPI_BYTE, 0, g->world.comm);
        if (root && !bad && rc == MPI_SUCCESS)
            for (int i = 0, at = 0; i < world; at += out->ranks[i].n_events, i++)
                out->events[i] = out->block + at;
    }
    free(counts);
    free(displs);
    int status = 0;
    if (bad)
        status = ps_err_set(err, "out of host memory for the profile");
    else if (rc != MPI_SUCCESS)
        status = ps_err_set(err, "gathering the ranks' profiles failed (MPI error %d)", rc);
    if (rt_world_agree(status, err)) {
        run_gather_free(out);
        return -1;
    }
    return 0;
}

void run_gather_free(run_gather *x) {
    free(x->ranks);
    free(x->events);
    free(x->block);
    memset(x, 0, sizeof *x);
}
