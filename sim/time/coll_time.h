/* coll_time.h — how long a collective takes: the link its group crosses
 * (rank placement) and an alpha-beta cost per algorithm (docs/time.md §3).
 *
 * Ranks are laid out with the plan's placement order, innermost first
 * (default tp, cp, dp, pp, Megatron-LM's): a group of n ranks at stride
 * `stride` (the product of the groups inside it) stays inside a node when
 * stride * n divides the GPUs per node (or the whole job fits in one node);
 * data-parallel collectives span dp x cp. A group that crosses nodes with k
 * members in each node drives k NICs (one per GPU, rail-optimised, as on DGX
 * clusters; NCCL runs a ring per rail): its bus bandwidth is min(k x NIC,
 * NVLink), k the fewest members any node holds. With links.nics_per_node
 * below gpus_per_node the node's NICs are shared by the gpus_per_node / k
 * instances on it: k x nics_per_node / gpus_per_node NICs each (at most k).
 * A send between two ranks uses one NIC (its share of one, likewise).
 *
 * Ring algorithms take (n-1) steps per pass: all-reduce 2(n-1) steps and
 * 2(n-1)/n S bytes per rank, reduce-scatter and all-gather (n-1) steps and
 * (n-1)/n S, broadcast and reduce (pipelined) (n-1) steps and S, send/recv one
 * step and S; each step pays the link latency, bytes move at the link's bus
 * bandwidth (datasheet x efficiency, as nccl-tests measures busbw). All-reduce
 * may use a tree instead: 2 ceil(log2 n) latencies and 2 S bytes, chosen
 * when cheaper, as NCCL does for small messages.
 */
#ifndef PS_COLL_TIME_H
#define PS_COLL_TIME_H

#include <stdbool.h>
#include <stdint.h>

#include "spec/cluster.h"
#include "cost/comm.h"
#include "spec/plan.h"

/* The physical link a group's traffic uses: groups on the same one share it. */
typedef enum { LINK_NVLINK, LINK_NIC, LINK_HOST, LINK_COUNT } coll_link_kind;

typedef struct {
    double bytes_per_s;     /* collectives: bus bandwidth achieved */
    double p2p_bytes_per_s; /* send/recv between two ranks */
    double latency_s;
    bool inter_node;
    int64_t stride;           /* rank distance between group neighbours */
    int64_t members_per_node; /* of one group instance, when it crosses nodes: the fewest in a node */
    coll_link_kind link;
    /* links.ring_latency: nccl (docs/time.md §3): an inter-node ring's steps
     * inside a node cost intra_latency_s, its node crossings latency_s */
    bool nccl_steps;
    int64_t nodes;          /* nodes one group instance spans (set under nccl_steps, else 1) */
    double intra_latency_s;
    /* the cluster's links.collectives (each collective's share of the bus bandwidth, in
     * comm_coll order); NULL: 1 for every collective */
    const double *coll_eff;
} coll_link;

/* Seconds of latency of one call under NCCL's tuning model (nccl
 * src/graph/tuning.cc, ncclTopoTuneModel): a ring of `steps` steps over
 * `nodes` nodes crosses nodes `passes` x (nodes - 1) times, at the inter-node
 * latency, and takes its other steps at the intra-node one; a tree
 * all-reduce 2 ((ranks per node - 1) intra + floor(log2 nodes) inter). */
double coll_ring_latency(int64_t steps, int64_t passes, const coll_link *l);
double coll_tree_latency(int64_t n, const coll_link *l);

/* The link group g's collectives cross under p's placement on cluster c. */
void coll_group_link(const cluster_cfg *c, const plan_cfg *p, comm_group g, coll_link *out);

/* The link between two ranks outside any plan group (a distillation
 * teacher's GPUs and the student's, time/distill_time.h): a node's NVLink,
 * or when inter_node one GPU's share of its node's NICs. */
void coll_pair_link(const cluster_cfg *c, bool inter_node, coll_link *out);

/* Seconds for one call of coll over a buffer of `bytes` (the full size, as in
 * comm_entry) on n ranks. */
double coll_time(comm_coll coll, int64_t n, int64_t bytes, const coll_link *l);

/* Seconds of one MoE all-to-all (docs/time.md §3 "All-to-all") over the ep
 * group's link l: one rank sends intra_bytes over NVLink (l->bytes_per_s) and
 * inter_bytes through its NIC (l->p2p_bytes_per_s) at once, the two links in
 * parallel; the busiest rank receives `factor` times the mean (the routing
 * imbalance), and the call ends when it has: one latency plus factor x the
 * slower link's time. */
double coll_alltoall_time(int64_t intra_bytes, int64_t inter_bytes, double factor,
                          const coll_link *l);

#endif
