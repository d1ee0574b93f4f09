/* program.c — names, buffer sizes, shard arithmetic and the op field table of
 * an execution plan (see program.h, program_int.h, docs/plan-format.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "program/program_int.h"
#include "cost/states.h"

const char *const mem_cat_names[MEM_COUNT] = {"params",      "grads",   "master",   "optimizer",
                                              "activations", "buffers", "workspace", "teacher"};
const char *const prog_buf_names[BUF_COUNT] = {"params", "grads",       "master",    "adam.m",
                                               "adam.v", "unit_params", "unit_grads", "teacher"};
/* rt_gen's schemes (runtime/rt_gen_scheme.c; the planner-only fp16, fp8, int8 and
 * int4 of cost/infer.h are not among them) */
const char *const program_teacher_schemes[] = {
    "f32", "bf16", "int8-tensor", "int8-zeropoint", "int8-row", "int8-vector",
    "int8-decomp", "int8-block", "int4-block", NULL};
const char *const prog_bwd_part_names[BWD_PART_COUNT] = {"all", "input", "weight"};
const char *const prog_kind_names[OP_KIND_COUNT] = {"alloc", "free", "zero_grad", "fwd", "bwd",
                                                    "coll",  "send", "recv",      "optim"};
const char *const prog_phase_names[] = {"fwd", "bwd", "grads", "params", "p2p"};

void prog_op_init(prog_op *o, prog_kind kind, int32_t step) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->step = step;
    o->mb = -1;
    o->unit = -1;
    o->peer = -1;
}

void program_free(program *p) {
    if (!p) return;
    for (int32_t i = 0; p->roles && i < p->n_roles; i++) {
        free(p->roles[i].ranks);
        free(p->roles[i].units);
        free(p->roles[i].ops);
    }
    free(p->roles);
    p->roles = NULL;
    p->n_roles = 0;
}

/* The model states of a role, from the module that owns the formula. */
static void role_states(const program *p, const prog_role *r, states_bytes *out) {
    plan_cfg c;
    memset(&c, 0, sizeof c);
    plan_cfg_defaults(&c);
    c.dp = p->dp, c.tp = p->tp, c.pp = p->pp, c.cp = p->cp;
    c.zero = p->zero;
    c.precision = p->precision;
    c.optimizer = OPT_ADAMW;
    /* the closed form's layout: the experts sharded over edp apart (states.h) */
    const int64_t edp = p->ep > 1 ? p->dp * p->cp / p->ep : 1;
    states_compute_moe(r->flat_elems - r->expert_elems, r->expert_elems, edp, &c, out);
}

int64_t program_buf_bytes(const program *p, const prog_role *r, prog_buf b, int32_t unit) {
    states_bytes sb;
    const int unit_ok = unit >= 0 && unit < r->n_units;
    switch (b) {
    case BUF_UNIT_PARAMS: return unit_ok ? r->units[unit].elems * dtype_bytes(p->precision.params) : 0;
    case BUF_UNIT_GRADS: return unit_ok ? r->units[unit].elems * dtype_bytes(p->precision.grads) : 0;
    case BUF_TEACHER: return p->distill.on && r->stage == p->pp - 1 ? p->distill.teacher_bytes : 0;
    default: break;
    }
    role_states(p, r, &sb);
    switch (b) {
    case BUF_PARAMS: return sb.params;
    case BUF_GRADS: return sb.grads;
    case BUF_MASTER: return sb.master;
    case BUF_ADAM_M:
    case BUF_ADAM_V: return sb.optimizer / states_per_param(OPT_ADAMW);
    default: return 0;
    }
}

/* Bytes of one element of buffer b. */
static int64_t buf_elem_bytes(const program *p, prog_buf b) {
    switch (b) {
    case BUF_PARAMS:
    case BUF_UNIT_PARAMS: return dtype_bytes(p->precision.params);
    case BUF_GRADS:
    case BUF_UNIT_GRADS: return dtype_bytes(p->precision.grads);
    case BUF_MASTER: return dtype_bytes(p->precision.master);
    default: return dtype_bytes(p->precision.optimizer);
    }
}

int64_t program_buf_held(const program *p, const prog_role *r, prog_buf b, int32_t unit,
                         int32_t dp_rank, int64_t *first) {
    *first = 0;
    if (b == BUF_TEACHER) return 0; /* not a part of the flat space */
    if (b == BUF_UNIT_PARAMS || b == BUF_UNIT_GRADS) {
        if (unit < 0 || unit >= r->n_units) return 0;
        *first = r->units[unit].offset;
        return r->units[unit].elems;
    }
    const int64_t eb = buf_elem_bytes(p, b);
    const int64_t held = eb ? program_buf_bytes(p, r, b, unit) / eb : 0;
    /* a shard (under ep its dense part's start: program_shard_index places the rest) */
    if (held && held != r->flat_elems) *first = (int64_t)dp_rank * r->shard_elems;
    return held;
}

static bool is_layer(const prog_unit *u) { return !strncmp(u->name, "layer.", 6); }

/* Flat element i's index in its space: the held routed experts (*expert), or
 * the rest of the flat space; i itself without ep. */
static int64_t space_index(const prog_role *r, int64_t i, bool *expert) {
    int64_t before = 0; /* expert elements below i */
    *expert = false;
    for (int32_t u = 0; r->unit_experts && u < r->n_units; u++) {
        if (!is_layer(&r->units[u])) continue;
        const int64_t hi = r->units[u].offset + r->units[u].elems, lo = hi - r->unit_experts;
        if (i < lo) break;
        if (i < hi) {
            *expert = true;
            return before + i - lo;
        }
        before += r->unit_experts;
    }
    return i - before;
}

int64_t program_shard_part(const prog_role *r, int64_t offset, int64_t elems, int32_t dp_rank,
                           int64_t *first) {
    bool ex;
    const int64_t s = space_index(r, offset, &ex), sh = ex ? r->expert_shard : r->shard_elems;
    const int64_t s0 = (int64_t)dp_rank * sh, s1 = s0 + sh;
    const int64_t lo = s > s0 ? s : s0, end = s + elems;
    const int64_t hi = end < s1 ? end : s1;
    if (first) *first = offset + (hi > lo ? lo : s0) - s;
    return hi > lo ? hi - lo : 0;
}

int program_role_spaces(const program *p, prog_role *r) {
    const int64_t d = p->dp * p->cp;
    r->unit_experts = r->expert_elems = r->expert_shard = 0;
    if (p->ep > 1 && program_is_moe(p)) {
        r->unit_experts = p->experts / p->ep * program_expert_elems(p);
        for (int32_t u = 0; u < r->n_units; u++)
            if (is_layer(&r->units[u])) {
                if (r->units[u].elems < r->unit_experts) return -1;
                r->expert_elems += r->unit_experts;
            }
        r->expert_shard = states_shard(r->expert_elems, d / p->ep);
    }
    r->shard_elems = states_shard(r->flat_elems - r->expert_elems, d);
    r->flat_padded = r->shard_elems * d;
    return 0;
}

int64_t program_segment_end(const prog_role *r, int64_t i, bool *expert) {
    *expert = false;
    for (int32_t u = 0; r->unit_experts && u < r->n_units; u++) {
        if (!is_layer(&r->units[u])) continue;
        const int64_t hi = r->units[u].offset + r->units[u].elems, lo = hi - r->unit_experts;
        if (i < lo) return lo;
        if (i < hi) {
            *expert = true;
            return hi;
        }
    }
    return r->flat_elems;
}

int64_t program_shard_index(const program *p, const prog_role *r, int32_t dp_rank, int64_t i) {
    bool ex;
    const int64_t s = space_index(r, i, &ex);
    const int64_t k = ex ? s - (int64_t)(dp_rank / p->ep) * r->expert_shard
                         : s - (int64_t)dp_rank * r->shard_elems;
    if (k < 0 || k >= (ex ? r->expert_shard : r->shard_elems)) return -1;
    return ex ? r->shard_elems + k : k;
}

const char *prog_fmt_num(double v, char *buf, int len) {
    if (!isfinite(v))
        snprintf(buf, (size_t)len, "null");
    else if (v == floor(v) && fabs(v) < 9e15)
        snprintf(buf, (size_t)len, "%.0f", v);
    else
        snprintf(buf, (size_t)len, "%.17g", v);
    return buf;
}

/* ---- the op fields of the JSON format (docs/plan-format.md §1) ---------------------- */

#define K(k) (1u << (k))
#define ALL ((1u << OP_KIND_COUNT) - 1)
#define COMPUTE (K(OP_FWD) | K(OP_BWD))
#define P2P (K(OP_SEND) | K(OP_RECV))
#define F(key, type, field, names, n, kinds, req) \
    {key, type, offsetof(prog_op, field), names, n, kinds, req}

const prog_field prog_fields[] = {
    F("step", PF_I32, step, NULL, 0, ALL, ALL),
    F("mb", PF_I32, mb, NULL, 0, COMPUTE | K(OP_COLL) | P2P, COMPUTE | P2P),
    F("buf", PF_ENUM, buf, prog_buf_names, BUF_COUNT, K(OP_ALLOC) | K(OP_FREE),
      K(OP_ALLOC) | K(OP_FREE)),
    F("unit", PF_UNIT, unit, NULL, 0, K(OP_ALLOC) | K(OP_FREE) | COMPUTE | K(OP_COLL) | P2P,
      COMPUTE),
    F("cat", PF_ENUM, cat, mem_cat_names, MEM_COUNT, K(OP_ALLOC), K(OP_ALLOC)),
    F("coll", PF_ENUM, coll, comm_coll_names, COLL_SEND + 1, K(OP_COLL), K(OP_COLL)),
    F("group", PF_ENUM, group, comm_group_names, GROUP_COUNT, K(OP_COLL) | P2P, K(OP_COLL) | P2P),
    F("phase", PF_ENUM, phase, prog_phase_names, PROG_PHASE_COUNT, K(OP_COLL) | P2P, K(OP_COLL)),
    F("src", PF_ENUM, src, prog_buf_names, BUF_COUNT, COMPUTE | K(OP_COLL), COMPUTE | K(OP_COLL)),
    F("dst", PF_ENUM, dst, prog_buf_names, BUF_COUNT, K(OP_BWD) | K(OP_COLL),
      K(OP_BWD) | K(OP_COLL)),
    F("peer", PF_I32, peer, NULL, 0, P2P, P2P),
    F("offset", PF_I64, offset, NULL, 0, K(OP_COLL) | K(OP_OPTIM), K(OP_COLL) | K(OP_OPTIM)),
    F("elems", PF_I64, elems, NULL, 0, K(OP_COLL) | K(OP_OPTIM), K(OP_COLL) | K(OP_OPTIM)),
    F("bytes", PF_I64, bytes, NULL, 0, K(OP_ALLOC) | K(OP_FREE) | K(OP_COLL) | P2P,
      K(OP_ALLOC) | K(OP_FREE) | K(OP_COLL) | P2P),
    F("saves", PF_I64, bytes, NULL, 0, K(OP_FWD), K(OP_FWD)),
    F("frees", PF_I64, bytes, NULL, 0, K(OP_BWD), K(OP_BWD)),
    F("sent", PF_I64, sent_bytes, NULL, 0, K(OP_COLL) | P2P, K(OP_COLL) | P2P),
    F("transient", PF_I64, transient_bytes, NULL, 0, COMPUTE, 0),
    F("workspace", PF_I64, workspace_bytes, NULL, 0, COMPUTE | K(OP_COLL) | K(OP_OPTIM) | P2P, 0),
    F("stash", PF_I64, stash_bytes, NULL, 0, K(OP_BWD), 0),
    F("buffers", PF_I64, buffer_bytes, NULL, 0, COMPUTE, 0),
    F("ring", PF_I64, ring_bytes, NULL, 0, COMPUTE, 0),
    F("passes", PF_I32, ring_passes, NULL, 0, COMPUTE, 0),
    F("ring_seconds", PF_F64, ring_seconds, NULL, 0, COMPUTE, 0),
    F("recompute", PF_BOOL, recompute, NULL, 0, K(OP_BWD), 0),
    F("part", PF_ENUM, part, prog_bwd_part_names, BWD_PART_COUNT, K(OP_BWD), 0),
    F("flops", PF_F64, flops, NULL, 0, COMPUTE | K(OP_OPTIM), COMPUTE | K(OP_OPTIM)),
    F("seconds", PF_F64, seconds, NULL, 0, ALL, COMPUTE | K(OP_COLL) | P2P | K(OP_OPTIM)),
#define TP(name, k)                                                          \
    F("tp_" name, PF_I64, tp_calls[k], NULL, 0, COMPUTE, 0),                 \
        F("tp_" name "_bytes", PF_I64, tp_bytes[k], NULL, 0, COMPUTE, 0),    \
        F("tp_" name "_sent", PF_I64, tp_sent[k], NULL, 0, COMPUTE, 0),      \
        F("tp_" name "_seconds", PF_F64, tp_seconds[k], NULL, 0, COMPUTE, 0)
    TP("all_reduce", COLL_ALL_REDUCE),
    TP("reduce_scatter", COLL_REDUCE_SCATTER),
    TP("all_gather", COLL_ALL_GATHER),
#undef TP
    F("ep_all_to_all", PF_I64, ep_calls, NULL, 0, COMPUTE, 0),
    F("ep_all_to_all_bytes", PF_I64, ep_bytes, NULL, 0, COMPUTE, 0),
    F("ep_all_to_all_sent", PF_I64, ep_sent, NULL, 0, COMPUTE, 0),
    F("ep_all_to_all_seconds", PF_F64, ep_seconds, NULL, 0, COMPUTE, 0),
};
const int prog_n_fields = (int)(sizeof prog_fields / sizeof prog_fields[0]);

#undef F
#undef P2P
#undef COMPUTE
#undef ALL
#undef K
