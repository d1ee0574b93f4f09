/* program_ranks.c — where each rank role's ranks sit in the world: the
 * plan's `placement` lays the four groups out innermost first (default tp,
 * cp, dp, pp, Megatron-LM's order; docs/time.md §3), so a rank's world index
 * is its coordinates in mixed radix with those strides (see program.h). */
#include "program/program.h"

int64_t program_world_rank(const plan_cfg *p, int64_t dp_i, int64_t tp_i, int64_t pp_i,
                           int64_t cp_i) {
    int64_t coord[GROUP_COUNT] = {0}, size[GROUP_COUNT] = {0};
    coord[GROUP_DP] = dp_i, coord[GROUP_TP] = tp_i, coord[GROUP_PP] = pp_i, coord[GROUP_CP] = cp_i;
    size[GROUP_DP] = p->dp, size[GROUP_TP] = p->tp, size[GROUP_PP] = p->pp, size[GROUP_CP] = p->cp;
    int64_t rank = 0, stride = 1;
    for (int i = 0; i < PLAN_GROUPS; i++) {
        const int g = p->placement[i];
        rank += coord[g] * stride;
        stride *= size[g];
    }
    return rank;
}

int32_t program_role_index(const program *p, int64_t stage, int64_t tp_rank, int64_t cp_rank) {
    return (int32_t)((stage * p->tp + tp_rank) * p->cp + cp_rank);
}
