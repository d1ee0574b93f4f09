/* rt_comm_mpi.c — the CPU backend's collectives on MPI sub-communicators,
 * and the process groups. bf16 travels as 16-bit words and is summed by a
 * user-defined MPI operation that adds in fp32 and rounds to nearest even,
 * as NCCL's bf16 reductions do per step. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "kern.h"
#include "rt_group.h"

static MPI_Op bf16_sum_op = MPI_OP_NULL;

static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *dt) {
    (void)dt;
    enum { CHUNK = 2048 };
    float x[CHUNK], y[CHUNK];
    const uint16_t *a = in;
    uint16_t *b = inout;
    for (int i = 0; i < *len; i += CHUNK) {
        int n = *len - i < CHUNK ? *len - i : CHUNK;
        kern_bf16_to_f32(x, a + i, n);
        kern_bf16_to_f32(y, b + i, n);
        for (int k = 0; k < n; k++) y[k] += x[k];
        kern_f32_to_bf16(b + i, y, n);
    }
}

static MPI_Datatype mpi_type(rt_dtype t) { return t == RT_BF16 ? MPI_UINT16_T : MPI_FLOAT; }

static MPI_Op sum_op(rt_dtype t) {
    if (t != RT_BF16) return MPI_SUM;
    if (bf16_sum_op == MPI_OP_NULL) MPI_Op_create(bf16_sum, 1, &bf16_sum_op);
    return bf16_sum_op;
}

/* ---- errors ----------------------------------------------------------------- */

static char last_error[MPI_MAX_ERROR_STRING + 64];

const char *rt_mpi_error(void) { return last_error; }

/* 0 on MPI_SUCCESS; otherwise -1 with MPI's text kept for rt_mpi_error. */
static int mpi_rc(int rc) {
    if (rc == MPI_SUCCESS) return 0;
    char text[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, text, &len);
    snprintf(last_error, sizeof last_error, "%s (MPI error %d)", text, rc);
    return -1;
}

static int too_large(void) {
    snprintf(last_error, sizeof last_error, "a count exceeds 2^31 elements (MPI's int counts)");
    return -1;
}

/* The reductions of metrics and agreements are not ops: when one fails (a
 * peer died), say so and end the job, as a failed op does. */
static void mpi_or_abort(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    mpi_rc(rc);
    int rank = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    fprintf(stderr, "parasim run: rank %d: %s failed: %s -- a peer rank died or its link broke\n",
            rank, what, last_error);
    fflush(stderr);
    atomic_file_remove_temporaries();
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static int fits_int(int64_t n) { return n >= 0 && n <= INT_MAX; }

int rt_mpi_all_reduce(rt_group *g, void *buf, int64_t n, rt_dtype t) {
    if (!fits_int(n)) return too_large();
    return mpi_rc(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(t), sum_op(t), g->comm));
}

int rt_mpi_all_reduce_max(rt_group *g, float *buf, int64_t n) {
    if (!fits_int(n)) return too_large();
    return mpi_rc(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_MAX, g->comm));
}

int rt_mpi_reduce_scatter(rt_group *g, const void *send, void *recv, const int64_t *counts,
                          rt_dtype t) {
    int *c = malloc(sizeof(int) * (size_t)g->size);
    if (!c) return snprintf(last_error, sizeof last_error, "out of host memory"), -1;
    int64_t total = 0;
    for (int r = 0; r < g->size; r++) {
        total += counts[r];
        c[r] = (int)counts[r];
    }
    int rc = fits_int(total) ? mpi_rc(MPI_Reduce_scatter(send, recv, c, mpi_type(t), sum_op(t),
                                                         g->comm))
                             : too_large();
    free(c);
    return rc;
}

int rt_mpi_all_gather(rt_group *g, const void *send, void *recv, const int64_t *counts,
                      const int64_t *displs, rt_dtype t) {
    int *c = malloc(sizeof(int) * 2 * (size_t)g->size);
    if (!c) return snprintf(last_error, sizeof last_error, "out of host memory"), -1;
    int *d = c + g->size, ok = 1;
    for (int r = 0; r < g->size; r++) {
        ok &= fits_int(counts[r]) && fits_int(displs[r]) && fits_int(displs[r] + counts[r]);
        c[r] = (int)counts[r];
        d[r] = (int)displs[r];
    }
    int rc = too_large();
    if (ok) {
        const void *s = send ? send : MPI_IN_PLACE;
        rc = mpi_rc(MPI_Allgatherv(s, c[g->rank], mpi_type(t), recv, c, d, mpi_type(t), g->comm));
    }
    free(c);
    return rc;
}

int rt_mpi_broadcast(rt_group *g, void *buf, int64_t n, rt_dtype t, int root) {
    if (!fits_int(n)) return too_large();
    return mpi_rc(MPI_Bcast(buf, (int)n, mpi_type(t), root, g->comm));
}

int rt_mpi_reduce(rt_group *g, const void *send, void *recv, int64_t n, rt_dtype t, int root) {
    if (!fits_int(n)) return too_large();
    const void *s = send ? send : MPI_IN_PLACE;
    if (!send && g->rank != root) s = recv; /* MPI_IN_PLACE is only valid at the root */
    return mpi_rc(MPI_Reduce(s, recv, (int)n, mpi_type(t), sum_op(t), root, g->comm));
}

int rt_mpi_send(rt_group *g, const void *buf, int64_t n, rt_dtype t, int peer) {
    if (!fits_int(n)) return too_large();
    return mpi_rc(MPI_Send(buf, (int)n, mpi_type(t), peer, 0, g->comm));
}

int rt_mpi_recv(rt_group *g, void *buf, int64_t n, rt_dtype t, int peer) {
    if (!fits_int(n)) return too_large();
    return mpi_rc(MPI_Recv(buf, (int)n, mpi_type(t), peer, 0, g->comm, MPI_STATUS_IGNORE));
}

/* Pipeline sends do not block (rt_pipe.c): a stage that sends an activation
 * and then waits for a gradient never waits for its peer to receive first. */
int rt_mpi_isend(rt_group *g, const void *buf, int64_t n, rt_dtype t, int peer, int tag,
                 void **req) {
    if (!fits_int(n)) return too_large();
    MPI_Request *r = malloc(sizeof *r);
    if (!r) return snprintf(last_error, sizeof last_error, "out of host memory"), -1;
    int rc = mpi_rc(MPI_Isend(buf, (int)n, mpi_type(t), peer, tag, g->comm, r));
    if (rc) free(r);
    else *req = r;
    return rc;
}

int rt_mpi_recv_tag(rt_group *g, void *buf, int64_t n, rt_dtype t, int peer, int tag) {
    if (!fits_int(n)) return too_large();
    return mpi_rc(MPI_Recv(buf, (int)n, mpi_type(t), peer, tag, g->comm, MPI_STATUS_IGNORE));
}

int rt_mpi_wait(void **req, int block) {
    MPI_Request *r = *req;
    int done = 1, rc;
    if (block) rc = mpi_rc(MPI_Wait(r, MPI_STATUS_IGNORE));
    else rc = mpi_rc(MPI_Test(r, &done, MPI_STATUS_IGNORE));
    if (rc) return -1;
    if (!done) return 0;
    free(r);
    *req = NULL;
    return 1;
}

int rt_mpi_sendrecv(rt_group *g, const void *send, int to, void *recv, int from, int64_t n,
                    rt_dtype t) {
    if (!fits_int(n)) return too_large();
    return mpi_rc(MPI_Sendrecv(send, (int)n, mpi_type(t), to, 1, recv, (int)n, mpi_type(t), from,
                               1, g->comm, MPI_STATUS_IGNORE));
}

/* Equal blocks of n elements to and from every rank of the group (MPI_Alltoall):
 * expert parallelism's fixed-capacity dispatch and combine. */
int rt_mpi_all_to_all(rt_group *g, const void *send, void *recv, int64_t n, rt_dtype t) {
    if (!fits_int(n)) return too_large();
    return mpi_rc(MPI_Alltoall(send, (int)n, mpi_type(t), recv, (int)n, mpi_type(t), g->comm));
}

/* ---- groups ---------------------------------------------------------------- */

static void group_set(rt_group *g, MPI_Comm c, const char *name) {
    g->comm = c;
    g->name = name;
    MPI_Comm_rank(c, &g->rank);
    MPI_Comm_size(c, &g->size);
}

/* Split the world into one group of each kind: the ranks that share every
 * other coordinate, ordered by their own (rt_group.h). Every rank takes part
 * in every split, even one without a role (MPI_UNDEFINED). */
static void split(rt_group *out, const char *name, int has_role, int64_t color, int64_t key) {
    MPI_Comm c;
    MPI_Comm_split(MPI_COMM_WORLD, has_role ? (int)color : MPI_UNDEFINED, (int)key, &c);
    if (has_role) group_set(out, c, name);
}

int rt_groups_init(rt_groups *g, const program *p, ps_err *err) {
    memset(g, 0, sizeof *g);
    for (int i = 0; i < GROUP_COUNT; i++) g->group[i].comm = MPI_COMM_NULL;
    /* errors come back (splits inherit the handler): a failed collective names its op */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    group_set(&g->world, MPI_COMM_WORLD, "world");
    g->role = -1;
    int k = 0;
    for (int r = 0; r < p->n_roles && g->role < 0; r++)
        for (int i = 0; i < p->roles[r].n_ranks; i++)
            if (p->roles[r].ranks[i] == g->world.rank) g->role = r, k = i;
    const int has = g->role >= 0;
    const prog_role *r = has ? &p->roles[g->role] : NULL;
    const int64_t s = has ? r->stage : 0, t = has ? r->tp_rank : 0, c = has ? r->cp_rank : 0;
    const int64_t tp = p->tp, cp = p->cp, dp = p->dp;
    g->dp_index = k;
    /* dp: the gradient / ZeRO group over dp x cp, by shard index; the others: one
     * coordinate varies. Each group holds every value of its key once, so a rank's
     * place in it is its key. */
    split(&g->group[GROUP_DP], "dp", has, s * tp + t, k * cp + c);
    split(&g->group[GROUP_TP], "tp", has, (s * cp + c) * dp + k, t);
    split(&g->group[GROUP_PP], "pp", has, (t * cp + c) * dp + k, s);
    split(&g->group[GROUP_CP], "cp", has, (s * tp + t) * dp + k, c);
    if (p->ep > 1) { /* expert parallelism (tp = cp = 1): within a stage */
        split(&g->group[GROUP_EP], "ep", has, s * dp + k / p->ep, k % p->ep);
        split(&g->group[GROUP_EDP], "edp", has, s * p->ep + k % p->ep, k / p->ep);
    }
    if (!has)
        return ps_err_set(err, "rank %d of %d plays no role in the program (%d ranks in its roles)",
                          g->world.rank, g->world.size, (int)p->world);
    return 0;
}

void rt_groups_free(rt_groups *g) {
    for (int i = 0; i < GROUP_COUNT; i++)
        if (g->group[i].comm != MPI_COMM_NULL) MPI_Comm_free(&g->group[i].comm);

    if (bf16_sum_op != MPI_OP_NULL) MPI_Op_free(&bf16_sum_op);
}

static int world_agree(int status, ps_err *err, int name_rank) {
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int mine = status ? rank : size, first = 0, failed = status ? 1 : 0, failures = 0;
    mpi_or_abort(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD),
                 "the ranks' agreement (all-reduce)");
    if (first == size) return 0;
    mpi_or_abort(MPI_Allreduce(&failed, &failures, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD),
                 "the ranks' agreement (all-reduce)");
    char msg[PS_ERR_MSG_MAX];
    if (rank == first) memcpy(msg, err->msg, sizeof msg);
    mpi_or_abort(MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, MPI_COMM_WORLD),
                 "the ranks' agreement (broadcast)");
    msg[sizeof msg - 1] = 0;
    /* when only some ranks failed, "rank N: " says which (then as much of the
     * message as fits); when all did, they read the same input */
    int k = name_rank && failures < size ? snprintf(err->msg, sizeof err->msg, "rank %d: ", first)
                                         : 0;
    size_t room = sizeof err->msg - (size_t)k - 1, len = strlen(msg);
    memcpy(err->msg + k, msg, len < room ? len : room);
    err->msg[k + (len < room ? len : room)] = 0;
    return -1;
}

int rt_world_agree(int status, ps_err *err) { return world_agree(status, err, 1); }
int rt_world_agree_first(int status, ps_err *err) { return world_agree(status, err, 0); }

double rt_groups_sum(const rt_group *g, double v) {
    double out = v;
    mpi_or_abort(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, g->comm),
                 "the step's loss (all-reduce)");
    return out;
}

double rt_groups_max(const rt_groups *g, double v) {
    double out = v;
    mpi_or_abort(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, g->world.comm),
                 "the step's time (all-reduce)");
    return out;
}
