/* coll_time.c — placement and alpha-beta collective cost (see coll_time.h, docs/time.md §3). */
#include "coll_time.h"

static int64_t group_size(const plan_cfg *p, int g) {
    switch (g) {
    case GROUP_DP: return p->dp;
    case GROUP_TP: return p->tp;
    case GROUP_PP: return p->pp;
    default: return p->cp;
    }
}

void coll_group_link(const cluster_cfg *c, const plan_cfg *p, comm_group g, coll_link *out) {
    int64_t stride = 1;
    for (int i = 0; i < PLAN_GROUPS && p->placement[i] != g; i++)
        stride *= group_size(p, p->placement[i]);
    const int64_t span = stride * group_size(p, g);
    out->stride = stride;
    out->inter_node = span > c->gpus_per_node || c->gpus_per_node % span != 0;
    if (group_size(p, g) <= 1) out->inter_node = false;
    out->bytes_per_s = out->inter_node ? c->inter_bytes_per_s * c->eff.inter
                                       : c->intra_bytes_per_s * c->eff.intra;
    out->latency_s = out->inter_node ? c->inter_latency_s : c->intra_latency_s;
}

static int64_t ceil_log2(int64_t n) {
    int64_t k = 0;
    while ((1LL << k) < n) k++;
    return k;
}

double coll_time(comm_coll coll, int64_t n, int64_t bytes, const coll_link *l) {
    if (n <= 1 || bytes <= 0) return 0;
    const double sent = (double)comm_bytes_sent(coll, n, bytes), a = l->latency_s;
    double steps = (double)(n - 1);
    if (coll == COLL_ALL_REDUCE) steps *= 2;
    if (coll == COLL_SEND) steps = 1;
    double t = steps * a + sent / l->bytes_per_s;
    if (coll == COLL_ALL_REDUCE) {
        double tree = 2.0 * (double)ceil_log2(n) * a + 2.0 * (double)bytes / l->bytes_per_s;
        if (tree < t) t = tree;
    }
    return t;
}
