/* states.c — ZeRO-sharded model states (see states.h, docs/memory.md §2). */
#include "cost/states.h"

int states_per_param(plan_optimizer opt) {
    switch (opt) {
    case OPT_ADAMW: return 2;
    case OPT_SGD: return 0;
    case OPT_SGD_MOMENTUM: return 1;
    }
    return 0;
}

/* Elements of n held by one of d ranks at ZeRO stage `stage` or above. */
static int64_t held(int64_t n, int64_t d, const plan_cfg *p, int stage) {
    return p->zero >= stage ? states_shard(n, d) : n;
}

void states_compute_moe(int64_t n, int64_t ne, int64_t edp, const plan_cfg *p, states_bytes *out) {
    const int64_t d = p->dp * p->cp;
    const plan_precision *pr = &p->precision;
    out->params = (held(n, d, p, 3) + held(ne, edp, p, 3)) * dtype_bytes(pr->params);
    /* framework profile (docs/memory.md "Framework profiles"): where the
     * fp32 parameters are the master weights (FSDP2's sharded fp32
     * parameters under MixedPrecisionPolicy(param_dtype=bf16)), the 16-bit
     * copies exist only while a unit computes (ZeRO-3's gather buffers, eval.c) */
    if (p->framework.param_copy_transient && pr->master != DT_NONE) out->params = 0;
    out->grads = (held(n, d, p, 2) + held(ne, edp, p, 2)) * dtype_bytes(pr->grads);
    const int64_t opt = held(n, d, p, 1) + held(ne, edp, p, 1);
    out->master = opt * dtype_bytes(pr->master);
    out->optimizer = opt * states_per_param(p->optimizer) * dtype_bytes(pr->optimizer);
    out->host = 0;
    if (p->offload_optimizer) { /* ZeRO-Offload: master weights and Adam states on the CPU */
        out->host = out->master + out->optimizer;
        out->master = out->optimizer = 0;
    }
}

void states_compute(int64_t n, const plan_cfg *p, states_bytes *out) {
    states_compute_moe(n, 0, 1, p, out);
}
