/* coll_time.c — placement and alpha-beta collective cost (see coll_time.h, docs/time.md §3). */
#include "time/coll_time.h"

_Static_assert(COLL_ALL_TO_ALL + 1 == CLUSTER_COLLS && COLL_SEND == 5,
               "links.collectives (cluster.h) follows comm_coll's order");

static int64_t group_size(const plan_cfg *p, int g) {
    switch (g) {
    case GROUP_DP: return p->dp;
    case GROUP_TP: return p->tp;
    case GROUP_PP: return p->pp;
    default: return p->cp;
    }
}

/* Rank distance between neighbours along dimension g: the product of the
 * dimensions placed inside it. */
static int64_t stride_of(const plan_cfg *p, int g) {
    int64_t stride = 1;
    for (int i = 0; i < PLAN_GROUPS && p->placement[i] != g; i++)
        stride *= group_size(p, p->placement[i]);
    return stride;
}

/* Members of one instance of a dimension (stride st, size n) in the node
 * that holds the fewest of them, for an instance that crosses nodes: full
 * nodes hold gpn / st, the last one the remainder. Layouts where st does not
 * divide the node are counted as one per node (conservative). */
static int64_t fewest_per_node(int64_t gpn, int64_t st, int64_t n) {
    if (n <= 1) return 1;
    if (st >= gpn || gpn % st) return 1;
    const int64_t per = gpn / st, r = n % per;
    if (n <= per) return n;
    return r ? r : per;
}

/* Are dimensions a and b next to each other in the placement (nothing of
 * size > 1 between them)? */
static int adjacent(const plan_cfg *p, int a, int b) {
    int ia = -1, ib = -1;
    for (int i = 0; i < PLAN_GROUPS; i++) {
        if (p->placement[i] == a) ia = i;
        if (p->placement[i] == b) ib = i;
    }
    if (ia > ib) {
        int t = ia;
        ia = ib, ib = t;
    }
    for (int i = ia + 1; i < ib; i++)
        if (group_size(p, p->placement[i]) > 1) return 0;
    return 1;
}

/* One GPU's inter-node bandwidth: its share of the node's NICs (default one each). */
static double nic_bytes_per_s(const cluster_cfg *c) {
    double nic = c->inter_bytes_per_s * c->eff.inter;
    if (c->nics_per_node > 0 && c->nics_per_node < c->gpus_per_node)
        nic *= (double)c->nics_per_node / (double)c->gpus_per_node;
    return nic;
}

void coll_group_link(const cluster_cfg *c, const plan_cfg *p, comm_group g, coll_link *out) {
    if (g == GROUP_HOST) { /* each GPU's own PCIe link */
        *out = (coll_link){c->host_bytes_per_s * c->eff.host, c->host_bytes_per_s * c->eff.host,
                           c->host_latency_s, false, 1, 1, LINK_HOST, false, 1, c->host_latency_s,
                           NULL};
        return;
    }
    const int64_t gpn = c->gpus_per_node;
    int64_t n = 1, block = 1, inner = 0;
    const bool expert = g == GROUP_EP || g == GROUP_EDP;
    if (expert) {
        /* the expert layers' ranks (cost/moe.h): etp innermost, then ep, then edp */
        const int64_t etp = plan_etp(p), ep = p->ep;
        n = g == GROUP_EP ? ep : p->tp * p->cp * p->dp / (etp * ep);
        inner = g == GROUP_EP ? etp : etp * ep;
        block = inner * n;
        out->stride = inner;
    } else {
        /* data-parallel collectives run over dp x cp (comm.c): both dimensions */
        const int dims[2] = {g, g == GROUP_DP ? GROUP_CP : -1};
        out->stride = stride_of(p, g);
        for (int i = 0; i < 2 && dims[i] >= 0; i++) {
            const int64_t size = group_size(p, dims[i]), stride = stride_of(p, dims[i]);
            if (size <= 1) continue;
            n *= size;
            if (stride * size > block) block = stride * size;
            if (!inner || stride < inner) inner = stride;
        }
    }
    /* Ranks are laid out in aligned blocks of `block`; the group stays in a
     * node when its block divides the node, or the whole job fits in one. */
    out->inter_node = n > 1 && p->gpus > gpn && (block > gpn || gpn % block != 0);
    if (!out->inter_node)
        out->members_per_node = n;
    else if (!expert && g == GROUP_DP && p->dp > 1 && p->cp > 1 && !adjacent(p, GROUP_DP, GROUP_CP))
        out->members_per_node = fewest_per_node(gpn, stride_of(p, GROUP_DP), p->dp) *
                                fewest_per_node(gpn, stride_of(p, GROUP_CP), p->cp);
    else
        out->members_per_node = fewest_per_node(gpn, inner, n);
    const double intra = c->intra_bytes_per_s * c->eff.intra, nic = nic_bytes_per_s(c);
    /* NCCL runs one ring per rail: k members of a group in a node drive k NICs */
    const double multi = nic * (double)out->members_per_node;
    out->bytes_per_s = out->inter_node ? (multi < intra ? multi : intra) : intra;
    out->p2p_bytes_per_s = out->inter_node ? nic : intra;
    /* an all-to-all drives NVLink and each GPU's NIC at once (coll_alltoall_time) */
    if (g == GROUP_EP) out->bytes_per_s = intra;
    out->latency_s = out->inter_node ? c->inter_latency_s : c->intra_latency_s;
    out->link = out->inter_node ? LINK_NIC : LINK_NVLINK;
    out->nccl_steps = out->inter_node && c->ring_latency_nccl;
    /* (only the nccl latency model needs the node count: sweeps skip the division) */
    out->nodes = out->nccl_steps ? (n + out->members_per_node - 1) / out->members_per_node : 1;
    out->intra_latency_s = c->intra_latency_s;
    out->coll_eff = c->eff.coll;
}

void coll_pair_link(const cluster_cfg *c, bool inter_node, coll_link *out) {
    const double bw = inter_node ? nic_bytes_per_s(c) : c->intra_bytes_per_s * c->eff.intra;
    *out = (coll_link){bw, bw, inter_node ? c->inter_latency_s : c->intra_latency_s, inter_node,
                       1, 1, inter_node ? LINK_NIC : LINK_NVLINK, false, 1, c->intra_latency_s,
                       c->eff.coll};
}

static inline double ring_latency(int64_t steps, int64_t passes, const coll_link *l) {
    if (!l->nccl_steps) return (double)steps * l->latency_s;
    int64_t inter = passes * (l->nodes - 1);
    if (inter > steps) inter = steps;
    return (double)(steps - inter) * l->intra_latency_s + (double)inter * l->latency_s;
}

double coll_ring_latency(int64_t steps, int64_t passes, const coll_link *l) {
    return ring_latency(steps, passes, l);
}

static int64_t floor_log2(int64_t n) {
    int64_t k = 0;
    while (n > 1) n >>= 1, k++;
    return k;
}

static int64_t ceil_log2(int64_t n) {
    int64_t k = 0;
    while ((1LL << k) < n) k++;
    return k;
}

static inline double tree_latency(int64_t n, const coll_link *l) {
    if (!l->nccl_steps) return 2.0 * (double)ceil_log2(n) * l->latency_s;
    const int64_t ppn = n / (l->nodes > 0 ? l->nodes : 1);
    return 2.0 * ((double)(ppn > 1 ? ppn - 1 : 0) * l->intra_latency_s +
                  (double)floor_log2(l->nodes) * l->latency_s);
}

double coll_tree_latency(int64_t n, const coll_link *l) { return tree_latency(n, l); }

double coll_time(comm_coll coll, int64_t n, int64_t bytes, const coll_link *l) {
    if (n <= 1 || bytes <= 0) return 0;
    const double a = l->latency_s, eff = l->coll_eff ? l->coll_eff[coll] : 1;
    if (coll == COLL_SEND) return a + (double)bytes / (l->p2p_bytes_per_s * eff);
    if (coll == COLL_ALL_TO_ALL) { /* uniform, within the group's link (coll_alltoall_time) */
        const double sent = (double)(n - 1) * (double)((bytes + n - 1) / n);
        return a + sent / ((l->inter_node ? l->p2p_bytes_per_s : l->bytes_per_s) * eff);
    }
    /* the bytes of comm_bytes_sent: chunks of ceil(S / n) */
    const double chunk = (double)((bytes + n - 1) / n), n1 = (double)(n - 1);
    const double inv_bw = 1.0 / (l->bytes_per_s * eff);
    switch (coll) {
    case COLL_ALL_REDUCE: {
        const double ring = ring_latency(2 * (n - 1), 2, l) + 2 * n1 * chunk * inv_bw;
        const double tree = tree_latency(n, l) + 2.0 * (double)bytes * inv_bw;
        return tree < ring ? tree : ring;
    }
    case COLL_REDUCE_SCATTER:
    case COLL_ALL_GATHER: return ring_latency(n - 1, 1, l) + n1 * chunk * inv_bw;
    default: return ring_latency(n - 1, 1, l) + (double)bytes * inv_bw; /* broadcast, reduce */
    }
}

double coll_alltoall_time(int64_t intra_bytes, int64_t inter_bytes, double factor,
                          const coll_link *l) {
    if (intra_bytes + inter_bytes <= 0) return 0;
    const double eff = l->coll_eff ? l->coll_eff[COLL_ALL_TO_ALL] : 1;
    const double nv = (double)intra_bytes / (l->bytes_per_s * eff);
    const double ib = inter_bytes > 0 ? (double)inter_bytes / (l->p2p_bytes_per_s * eff) : 0;
    return l->latency_s + factor * (nv > ib ? nv : ib);
}
