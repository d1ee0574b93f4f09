/* rt_group.h — process groups: the world and, for this rank, its data-,
 * tensor-, pipeline- and context-parallel groups as MPI sub-communicators
 * (the program's roles say which world ranks play which part). */
#ifndef PS_RT_GROUP_H
#define PS_RT_GROUP_H

#include <mpi.h>

#include "program/program.h"
#include "rt_backend.h"

struct rt_group {
    MPI_Comm comm;
    int rank, size;
    const char *name;
};

typedef struct {
    rt_group world;
    rt_group group[GROUP_COUNT]; /* indexed by comm_group; GROUP_HOST unused; GROUP_EP
                                    and GROUP_EDP only with the program's ep > 1 */
    int role;                    /* index into program.roles */
    /* this rank's data-parallel index k: its place in its role's rank list.
     * (Its other coordinates are its role's tp_rank, stage and cp_rank, also
     * its ranks in group[GROUP_TP], [GROUP_PP] and [GROUP_CP]; its rank in
     * group[GROUP_DP], the gradient / ZeRO group over dp x cp (Megatron's
     * dp-cp group), is its shard index k * cp + cp rank.) */
    int dp_index;
} rt_groups;

/* Split the world by the program's roles (program.h: one role per stage, tp
 * rank and cp rank, ranks by data-parallel index): group[GROUP_DP] holds the
 * ranks of the same (stage, tp rank) ordered by shard index; group[GROUP_TP]
 * those of the same (stage, cp rank, k) by tp rank; group[GROUP_PP] the same
 * (tp rank, cp rank, k) by stage; group[GROUP_CP] the same (stage, tp rank, k)
 * by cp rank; with ep > 1 (no tp, pp, cp) group[GROUP_EP] the ep consecutive dp
 * ranks k - k % ep ... by k % ep (the ep rank, which picks the held experts) and
 * group[GROUP_EDP] those of the same k % ep by k / ep (they hold the same experts).
 * With tp = pp = cp = 1 the dp group is the role and the others
 * are single ranks. Every rank calls it; -1 with err
 * set when this rank plays no role (the caller has checked the world size).
 * The world and the groups return MPI errors (MPI_ERRORS_RETURN) so that a
 * failed collective is reported with its op instead of MPI's abort alone. */
int rt_groups_init(rt_groups *g, const program *p, ps_err *err);
void rt_groups_free(rt_groups *g);

/* Sum a metric (not a counted collective: losses, token counts) over a
 * group, or take its maximum over the world (step times). */
double rt_groups_sum(const rt_group *g, double v);
double rt_groups_max(const rt_groups *g, double v);

/* Every rank of the world passes its status (0 ok, nonzero failed with err);
 * returns -1 on every rank when any failed, with the lowest failing rank's
 * message in err, prefixed "rank N: " unless every rank failed. */
int rt_world_agree(int status, ps_err *err);
/* The same, with the lowest failing rank's message as it is (it names its rank). */
int rt_world_agree_first(int status, ps_err *err);

/* The collectives of the MPI backends (rt_backend.h semantics). */
int rt_mpi_all_reduce(rt_group *g, void *buf, int64_t n, rt_dtype t);
int rt_mpi_all_reduce_max(rt_group *g, float *buf, int64_t n);
int rt_mpi_reduce_scatter(rt_group *g, const void *send, void *recv, const int64_t *counts,
                          rt_dtype t);
int rt_mpi_all_gather(rt_group *g, const void *send, void *recv, const int64_t *counts,
                      const int64_t *displs, rt_dtype t);
int rt_mpi_broadcast(rt_group *g, void *buf, int64_t n, rt_dtype t, int root);
int rt_mpi_reduce(rt_group *g, const void *send, void *recv, int64_t n, rt_dtype t, int root);
int rt_mpi_send(rt_group *g, const void *buf, int64_t n, rt_dtype t, int peer);
int rt_mpi_recv(rt_group *g, void *buf, int64_t n, rt_dtype t, int peer);
int rt_mpi_isend(rt_group *g, const void *buf, int64_t n, rt_dtype t, int peer, int tag,
                 void **req);
int rt_mpi_recv_tag(rt_group *g, void *buf, int64_t n, rt_dtype t, int peer, int tag);
int rt_mpi_wait(void **req, int block);
int rt_mpi_sendrecv(rt_group *g, const void *send, int to, void *recv, int from, int64_t n,
                    rt_dtype t);
int rt_mpi_all_to_all(rt_group *g, const void *send, void *recv, int64_t n, rt_dtype t);
/* Why the last of them failed: MPI's error text, or the count that did not fit. */
const char *rt_mpi_error(void);

#endif
