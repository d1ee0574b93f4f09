/* comm.c — per-collective communication volume (see comm.h, docs/memory.md §5). */
#include "cost/comm.h"

#include <string.h>

#include "cost/act.h"
#include "cost/moe.h"
#include "cost/pipe.h"
#include "spec/plan_check.h"
#include "cost/states.h"

const char *const comm_group_names[GROUP_COUNT] = {"dp", "tp", "pp", "cp", "host", "ep", "edp"};
const char *const comm_coll_names[] = {"all-reduce", "reduce-scatter", "all-gather", "broadcast",
                                       "reduce",     "send/recv",      "all-to-all"};

int64_t comm_bytes_sent(comm_coll coll, int64_t n, int64_t bytes) {
    if (n <= 1 || bytes <= 0) return 0;
    int64_t chunk = (bytes + n - 1) / n;
    switch (coll) {
    case COLL_ALL_REDUCE: return 2 * (n - 1) * chunk;
    case COLL_REDUCE_SCATTER:
    case COLL_ALL_GATHER:
    case COLL_ALL_TO_ALL: return (n - 1) * chunk; /* uniform: 1/n of S stays on the rank */
    case COLL_BROADCAST:
    case COLL_REDUCE:
    case COLL_SEND: return bytes;
    }
    return 0;
}

/* Record `rounds` passes over a buffer of bytes_total split into `units`
 * calls each (ZeRO-3 gathers a stage unit by unit; everything else has
 * units = 1). */
static void add_split(comm_list *l, comm_group g, comm_coll c, comm_phase ph, const char *what,
                      int64_t n, int64_t rounds, int64_t units, int64_t bytes_total) {
    if (rounds <= 0 || bytes_total <= 0 || n <= 1 || l->n >= COMM_MAX_ENTRIES) return;
    comm_entry *e = &l->e[l->n++];
    e->group = g;
    e->coll = c;
    e->phase = ph;
    e->what = what;
    e->group_size = n;
    e->calls = rounds * units;
    e->bytes_per_call = (bytes_total + units - 1) / units;
    e->bytes_sent = rounds * comm_bytes_sent(c, n, bytes_total);
    l->group_bytes[g] += e->bytes_sent;
}

static void add(comm_list *l, comm_group g, comm_coll c, comm_phase ph, const char *what,
                int64_t n, int64_t calls, int64_t bytes) {
    add_split(l, g, c, ph, what, n, calls, 1, bytes);
}

/* Data parallel (group dp x cp): naive DP all-reduces gradients once per step
 * (accumulation runs without sync); ZeRO-1 reduce-scatters them once and
 * all-gathers updated parameters; ZeRO-2 reduce-scatters every micro-batch
 * (DeepSpeed: the partitioned gradient has no full buffer to accumulate in);
 * ZeRO-3 all-gathers each unit in forward and again in backward and
 * reduce-scatters its gradients, every micro-batch. With a `zero3:` section
 * (docs/time.md §4.1) the backward gather goes when the forward's gather is
 * kept (reshard_after_forward: false, FSDP2), and a full-recompute replay
 * gathers once more where the framework's hooks re-fetch for it
 * (recompute_gather, DeepSpeed's per-module pre-forward hook). */
static void dp_comm(const plan_cfg *p, comm_group group, int64_t d, int64_t elems,
                    int64_t units, comm_list *l) {
    const int64_t mb = pipe_stage_micro_batches(p);
    const int64_t n = states_shard(elems, d) * d; /* padded flat buffer */
    const int64_t pb = dtype_bytes(p->precision.params), gb = dtype_bytes(p->precision.grads);
    switch (p->zero) {
    case 0: add(l, group, COLL_ALL_REDUCE, COMM_GRADS, "gradients", d, 1, n * gb); break;
    case 1:
        add(l, group, COLL_REDUCE_SCATTER, COMM_GRADS, "gradients", d, 1, n * gb);
        add(l, group, COLL_ALL_GATHER, COMM_PARAMS, "updated parameters", d, 1, n * pb);
        break;
    case 2:
        add(l, group, COLL_REDUCE_SCATTER, COMM_BWD, "gradients (every micro-batch)", d, mb, n * gb);
        add(l, group, COLL_ALL_GATHER, COMM_PARAMS, "updated parameters", d, 1, n * pb);
        break;
    default: {
        const plan_zero3 *z = &p->zero3;
        const int64_t regather = z->set && z->recompute_gather && p->recompute == RECOMPUTE_FULL;
        add_split(l, group, COLL_ALL_GATHER, COMM_FWD, "parameters (forward)", d, mb, units, n * pb);
        add_split(l, group, COLL_ALL_GATHER, COMM_BWD, "parameters (recompute)", d,
                  regather ? mb : 0, units, n * pb);
        add_split(l, group, COLL_ALL_GATHER, COMM_BWD, "parameters (backward)", d,
                  !z->set || z->reshard_after_forward ? mb : 0, units, n * pb);
        add_split(l, group, COLL_REDUCE_SCATTER, COMM_BWD, "gradients", d, mb, units, n * gb);
        break;
    }
    }
}

int64_t comm_zero3_expert_units(const plan_cfg *p, int64_t moe_layers, int64_t expert_bytes) {
    const plan_zero3 *z = &p->zero3;
    int64_t u = moe_layers;
    if (z->set && z->unit == ZERO3_UNIT_PARAM) u = ZERO3_EXPERT_MATRICES * moe_layers;
    if (z->set && z->unit == ZERO3_UNIT_BUCKET && z->bucket_bytes > 0)
        u = (expert_bytes + z->bucket_bytes - 1) / z->bucket_bytes;
    return u > 0 ? u : 1;
}

int64_t comm_zero3_units(const plan_cfg *p, int64_t layers, bool first, bool last,
                         int64_t stage_bytes) {
    const plan_zero3 *z = &p->zero3;
    const int64_t ends = (first ? 1 : 0) + (last ? 1 : 0);
    int64_t u = layers + ends;
    if (z->set && z->unit == ZERO3_UNIT_PARAM) u = ZERO3_MATRICES_PER_LAYER * layers + ends;
    if (z->set && z->unit == ZERO3_UNIT_BUCKET && z->bucket_bytes > 0)
        u = (stage_bytes + z->bucket_bytes - 1) / z->bucket_bytes;
    return u > 0 ? u : 1;
}

/* Tensor parallel, per layer and micro-batch (Megatron-LM; Korthikanti et al.
 * 2022 §4.2.2): without SP, two all-reduces in forward (after o and w2) and two
 * in backward (before q/k/v and w1); with SP each becomes an all-gather plus a
 * reduce-scatter, and backward all-gathers the saved sequence-sharded inputs of
 * q/k/v and w1 once more for the weight gradients. Full recompute replays the
 * forward collectives. The first stage adds the vocab-parallel embedding's
 * reduction, the last the head's input/gradient collectives and the three
 * per-token fp32 all-reduces of the vocab-parallel cross-entropy. */
static void tp_comm(const model_cfg *m, const plan_cfg *p, const comm_stage_info *s,
                    comm_list *l) {
    const int64_t t = p->tp, mb = pipe_stage_micro_batches(p);
    if (t <= 1) return;
    const int64_t tokens = plan_tokens_per_rank(p);
    const int64_t T = tokens * m->hidden * dtype_bytes(p->precision.activations);
    const int64_t replay = p->recompute == RECOMPUTE_FULL ? 1 : 0;
    const int64_t L = s->layers;
    /* tp-split halves of the layers (attention, MLP): a MoE layer's routed
     * experts take the sequence-sharded tokens as they are (the dispatcher
     * gathers over etp itself, moe.c), so only a shared-expert MLP adds a half
     * (Megatron-Core moe_layer.py / shared_experts.py) */
    const int64_t H = L * 2 - (m->shared_experts ? 0 : s->moe_layers);
    const int first = pipe_stage_has_embedding(p, s->stage), last = pipe_stage_has_head(p, s->stage);
    /* a full-recompute replay runs its forward collectives again during the backward */
    if (!p->sp) {
        add(l, GROUP_TP, COLL_ALL_REDUCE, COMM_FWD, "layer outputs (forward)", t, mb * H, T);
        add(l, GROUP_TP, COLL_ALL_REDUCE, COMM_BWD, "layer outputs (recompute)", t,
            mb * H * replay, T);
        add(l, GROUP_TP, COLL_ALL_REDUCE, COMM_BWD, "input gradients (backward)", t, mb * H, T);
        add(l, GROUP_TP, COLL_ALL_REDUCE, COMM_FWD, "embedding output", t, first ? mb : 0, T);
        add(l, GROUP_TP, COLL_ALL_REDUCE, COMM_BWD, "head input gradient", t, last ? mb : 0, T);
    } else {
        add(l, GROUP_TP, COLL_ALL_GATHER, COMM_FWD, "sequence gather (forward)", t,
            mb * (H + (last ? 1 : 0)), T);
        add(l, GROUP_TP, COLL_REDUCE_SCATTER, COMM_FWD, "sequence scatter (forward)", t,
            mb * (H + (first ? 1 : 0)), T);
        add(l, GROUP_TP, COLL_ALL_GATHER, COMM_BWD, "sequence gather (recompute)", t,
            mb * H * replay, T);
        add(l, GROUP_TP, COLL_REDUCE_SCATTER, COMM_BWD, "sequence scatter (recompute)", t,
            mb * H * replay, T);
        add(l, GROUP_TP, COLL_REDUCE_SCATTER, COMM_BWD, "gradient scatter (backward)", t,
            mb * (H + (last ? 1 : 0)), T);
        add(l, GROUP_TP, COLL_ALL_GATHER, COMM_BWD, "gradient gather (backward)", t,
            mb * (H + (first ? 1 : 0)), T);
        add(l, GROUP_TP, COLL_ALL_GATHER, COMM_BWD, "input re-gather for weight grads", t,
            mb * (H + (last ? 1 : 0)), T);
    }
    add(l, GROUP_TP, COLL_ALL_REDUCE, COMM_FWD, "cross-entropy max/sum/target (fp32)", t,
        last ? 3 * mb : 0, tokens * 4);
    /* under SP a replicated norm weight sees only its rank's tokens: its gradient
     * is summed over tp (fp32), per backward of a layer (2 norms) and of the head */
    add(l, GROUP_TP, COLL_ALL_REDUCE, COMM_BWD, "norm weight gradients (SP, fp32)", t,
        p->sp ? mb * L : 0, 2 * m->hidden * 4);
    add(l, GROUP_TP, COLL_ALL_REDUCE, COMM_BWD, "final norm weight gradient (SP, fp32)", t,
        p->sp && last ? mb : 0, m->hidden * 4);
}

int comm_tp_unit(const model_cfg *m, const plan_cfg *p, comm_unit u, bool bwd,
                 comm_tp_call out[COMM_TP_UNIT_MAX]) {
    const int64_t T = plan_tokens_per_rank(p) * m->hidden * dtype_bytes(p->precision.activations);
    const int64_t replay = p->recompute == RECOMPUTE_FULL ? 2 : 0, h4 = m->hidden * 4;
    const comm_coll AR = COLL_ALL_REDUCE, RS = COLL_REDUCE_SCATTER, AG = COLL_ALL_GATHER;
    int n = 0;
#define CALL(c, k, b) \
    if ((k) > 0) out[n++] = (comm_tp_call){c, k, b}
    if (p->tp <= 1) return 0;
    if (!p->sp) {
        if (u == COMM_UNIT_EMBED && !bwd) CALL(AR, 1, T);
        if (u == COMM_UNIT_LAYER) CALL(AR, bwd ? 2 + replay : 2, T);
        if (u == COMM_UNIT_HEAD) CALL(AR, bwd ? 1 : 0, T);
    } else if (u == COMM_UNIT_EMBED) {
        CALL(bwd ? AG : RS, 1, T);
    } else if (u == COMM_UNIT_LAYER) {
        /* forward: gather before q/k/v and w1/w3, scatter after o and w2;
         * backward: gather the output gradients and re-gather the inputs,
         * scatter the input gradients, and replay the forward under recompute */
        CALL(AG, bwd ? 4 + replay : 2, T);
        CALL(RS, bwd ? 2 + replay : 2, T);
        CALL(AR, bwd ? 1 : 0, 2 * h4);
    } else {
        CALL(AG, 1, T); /* forward: gather the head input; backward: re-gather it */
        CALL(RS, bwd ? 1 : 0, T);
        CALL(AR, bwd ? 1 : 0, h4);
    }
    if (u == COMM_UNIT_HEAD && !bwd) CALL(AR, 3, plan_tokens_per_rank(p) * 4);
#undef CALL
    return n;
}

/* Pipeline: each micro-batch crosses every stage boundary once forward
 * (activations) and once backward (their gradients); interleaving multiplies
 * the boundaries by v. Messages are b*s*h (divided by tp under SP, where the
 * tensor is sequence-sharded). Tied embeddings add an all-reduce of the
 * word-embedding gradient between the first and last stage once per step. */
int64_t comm_p2p_bytes(const model_cfg *m, const plan_cfg *p) {
    const int64_t tokens = plan_tokens_per_rank(p) / (p->sp ? p->tp : 1);
    return tokens * m->hidden * dtype_bytes(p->precision.activations);
}

static void pp_comm(const model_cfg *m, const plan_cfg *p, const comm_stage_info *s,
                    comm_list *l) {
    const int64_t pp = p->pp, v = pipe_chunks(p), mb = pipe_stage_micro_batches(p);
    if (pp <= 1) return;
    const int64_t P = comm_p2p_bytes(m, p);
    /* DualPipe: the end ranks' embedding chunk receives nothing, their head
     * chunk sends nothing (mb = m/2 per chunk) */
    const int first = pipe_stage_has_embedding(p, s->stage), last = pipe_stage_has_head(p, s->stage);
    /* DeepSpeed's partitioned messages (pipeline.partition_messages, without
     * SP): each tp rank sends its 1/tp, the receiver all-gathers the message
     * over tp before using it (engine.py _exec_recv_activations / _exec_recv_grads) */
    const int64_t part = p->partition_messages && !p->sp && p->tp > 1 ? p->tp : 1;
    const int64_t sends_fwd = mb * v - (last ? mb : 0), sends_bwd = mb * v - (first ? mb : 0);
    add(l, GROUP_PP, COLL_SEND, COMM_P2P, "activations (forward)", pp, sends_fwd, (P + part - 1) / part);
    add(l, GROUP_PP, COLL_SEND, COMM_P2P, "activation gradients (backward)", pp, sends_bwd,
        (P + part - 1) / part);
    if (part > 1) {
        add(l, GROUP_TP, COLL_ALL_GATHER, COMM_FWD, "received activations (partitioned)", part,
            mb * v - (first ? mb : 0), P);
        add(l, GROUP_TP, COLL_ALL_GATHER, COMM_BWD, "received gradients (partitioned)", part,
            mb * v - (last ? mb : 0), P);
    }
    if (m->tied_embeddings && (first || last))
        add(l, GROUP_PP, COLL_ALL_REDUCE, COMM_GRADS, "tied embedding gradients", 2, 1,
            s->tied_rows_params * dtype_bytes(p->precision.grads));
    /* the MTP modules embed the next tokens with the word embedding, so the
     * last stage holds a copy whose gradients are summed with the first
     * stage's, as tied ones are (Megatron-Core gpt_model.py builds the
     * embedding where pre_process or mtp_process); DualPipe's end ranks hold
     * both stages, and their twin all-reduce covers it */
    else if (m->mtp_layers > 0 && (first || last) && p->schedule != SCHED_DUALPIPE)
        add(l, GROUP_PP, COLL_ALL_REDUCE, COMM_GRADS, "MTP embedding gradients", 2, 1,
            s->tied_rows_params * dtype_bytes(p->precision.grads));
    /* DualPipe: rank s and rank pp-1-s hold the same two stages (each the
     * other's chunk 0 as its chunk 1); their gradients are summed over the pair
     * before the optimizer, as deepseek-ai/DualPipe's example does, once per
     * step: the part of the stage's gradients this rank updates (its ZeRO shard
     * from ZeRO-1 on). docs/schedule.md "DualPipe". */
    if (p->schedule == SCHED_DUALPIPE) {
        const int64_t d = p->dp * p->cp, edp = s->moe ? s->moe->edp : 1;
        int64_t n = p->zero >= 1 ? states_shard(s->rank_params, d) : s->rank_params;
        /* the rank's experts, held twice as well (sharded over edp) */
        n += p->zero >= 1 ? states_shard(s->expert_params, edp) : s->expert_params;
        add(l, GROUP_PP, COLL_ALL_REDUCE, COMM_GRADS, "DualPipe twin-stage gradients", 2, 1,
            n * dtype_bytes(p->precision.grads));
    }
}

/* Context parallel, ring attention (Liu et al. 2023; Megatron-LM/TE
 * implementation): per layer and micro-batch each rank passes its K and V
 * blocks cp-1 times in forward; backward passes K/V again and the dK/dV
 * partial sums, cp-1 times each. Recomputing the layer replays the forward. */
int64_t comm_cp_passes(const plan_cfg *p, bool backward) {
    const int64_t c = p->cp, replay = p->recompute == RECOMPUTE_FULL ? 1 : 0;
    if (c <= 1) return 0;
    return backward ? (2 + replay) * (c - 1) : c - 1;
}

/* Context parallel, all-gather (Llama 3 §3.3.2; TE AttnFuncWithCPAndKVAllGather):
 * per layer and micro-batch the forward all-gathers K and V of the whole
 * sequence (cp blocks), saves only the local block, so the backward gathers
 * them again and reduce-scatters the full-length dK/dV; recomputing the layer
 * replays the forward gather. All of it is exposed (step_time.c). */
static void cp_all_gather_comm(const plan_cfg *p, const comm_stage_info *s, int64_t KV,
                               comm_list *l) {
    const int64_t c = p->cp, rounds = pipe_stage_micro_batches(p) * s->layers;
    const int64_t replay = p->recompute == RECOMPUTE_FULL ? 1 : 0;
    add(l, GROUP_CP, COLL_ALL_GATHER, COMM_FWD, "K/V (forward)", c, rounds, c * KV);
    add(l, GROUP_CP, COLL_ALL_GATHER, COMM_BWD, "K/V (recompute)", c, rounds * replay, c * KV);
    add(l, GROUP_CP, COLL_ALL_GATHER, COMM_BWD, "K/V (backward)", c, rounds, c * KV);
    add(l, GROUP_CP, COLL_REDUCE_SCATTER, COMM_BWD, "dK/dV (backward)", c, rounds, c * KV);
}

static void cp_comm(const model_cfg *m, const plan_cfg *p, const comm_stage_info *s,
                    comm_list *l) {
    const int64_t c = p->cp, mb = pipe_stage_micro_batches(p);
    if (c <= 1) return;
    const int64_t KV = act_kv_block_bytes(m, p);
    if (p->cp_algorithm == CP_ALL_GATHER) {
        cp_all_gather_comm(p, s, KV, l);
        return;
    }
    /* one trip around the ring (comm_cp_passes' forward); the backward's
     * comm_cp_passes are its K/V trip, its dK/dV trip and a replayed forward */
    const int64_t trip = mb * s->layers * comm_cp_passes(p, false);
    const int64_t replay = comm_cp_passes(p, true) / comm_cp_passes(p, false) - 2;
    add(l, GROUP_CP, COLL_SEND, COMM_FWD, "K/V blocks (forward)", c, trip, KV);
    add(l, GROUP_CP, COLL_SEND, COMM_BWD, "K/V blocks (recompute)", c, trip * replay, KV);
    add(l, GROUP_CP, COLL_SEND, COMM_BWD, "K/V blocks (backward)", c, trip, KV);
    add(l, GROUP_CP, COLL_SEND, COMM_BWD, "dK/dV blocks (backward)", c, trip, KV);
}

/* Activation offload: each micro-batch's saved activations go to host memory
 * as the forward produces them and come back for the backward, over PCIe
 * (all but the two layers kept on the device; docs/memory.md §3). */
static void host_comm(const plan_cfg *p, const comm_stage_info *s, comm_list *l) {
    const int64_t mb = pipe_stage_micro_batches(p);
    if (!p->offload_activations || s->offload_bytes <= 0) return;
    add(l, GROUP_HOST, COLL_SEND, COMM_FWD, "activations to host (offload)", 2, mb, s->offload_bytes);
    add(l, GROUP_HOST, COLL_SEND, COMM_BWD, "activations from host (offload)", 2, mb,
        s->offload_bytes);
}

/* Expert parallelism (cost/moe.h; docs/memory.md §10), per MoE layer and
 * micro-batch: the dispatch and combine all-to-alls over ep (their bytes
 * split by link, moe.c a2a_split), forward and backward, replayed under full
 * recompute; with etp > 1 the gather of the received tokens over the etp
 * ranks after the dispatch and the reduce-scatter before the combine
 * (token_dispatcher.py dispatch_postprocess / combine_preprocess; filed
 * under tp, the ranks the etp group shares). Expert weights' gradients go
 * over edp (dp_comm with the expert elements); under ZeRO-3 so do their
 * per-unit gathers, one unit per MoE layer (comm_zero3_expert_units), while
 * the layer's other parameters gather over dp x cp with the layer's unit
 * (docs/memory.md §10). */
static void ep_comm(const plan_cfg *p, const comm_stage_info *s, comm_list *l) {
    const moe_layout *x = s->moe;
    const int64_t mb = pipe_stage_micro_batches(p), rounds = mb * s->moe_layers;
    if (x->edp > 1)
        dp_comm(p, GROUP_EDP, x->edp, s->expert_params, s->expert_units > 0 ? s->expert_units : 1, l);
    if (rounds <= 0) return;
    if (x->ep > 1) {
        static const char *const what[2] = {"tokens dispatch+combine (forward)",
                                            "tokens dispatch+combine (backward)"};
        for (int bwd = 0; bwd < 2; bwd++) {
            const int64_t calls = rounds * moe_a2a_calls(p, bwd);
            if (l->n >= COMM_MAX_ENTRIES) return;
            comm_entry *e = &l->e[l->n++];
            *e = (comm_entry){GROUP_EP, COLL_ALL_TO_ALL, bwd ? COMM_BWD : COMM_FWD, what[bwd],
                              x->ep, calls, x->a2a_bytes, calls * (x->a2a_intra + x->a2a_inter)};
            l->group_bytes[GROUP_EP] += e->bytes_sent;
        }
    }
    const int64_t replay = p->recompute == RECOMPUTE_FULL ? 1 : 0;
    add(l, GROUP_TP, COLL_ALL_GATHER, COMM_FWD, "expert tokens gather (etp)", x->etp, rounds,
        x->etp_bytes);
    add(l, GROUP_TP, COLL_REDUCE_SCATTER, COMM_FWD, "expert outputs scatter (etp)", x->etp,
        rounds, x->etp_bytes);
    add(l, GROUP_TP, COLL_ALL_GATHER, COMM_BWD, "expert tokens gather (etp, backward)", x->etp,
        rounds * (1 + replay), x->etp_bytes);
    add(l, GROUP_TP, COLL_REDUCE_SCATTER, COMM_BWD, "expert grads scatter (etp, backward)",
        x->etp, rounds * (1 + replay), x->etp_bytes);
}

void comm_stage(const model_cfg *m, const plan_cfg *p, const comm_stage_info *s, comm_list *out) {
    out->n = 0;
    for (int g = 0; g < GROUP_COUNT; g++) out->group_bytes[g] = 0;
    if (p->dp * p->cp > 1) dp_comm(p, GROUP_DP, p->dp * p->cp, s->rank_params, s->units, out);
    if (s->moe) ep_comm(p, s, out);
    tp_comm(m, p, s, out);
    pp_comm(m, p, s, out);
    cp_comm(m, p, s, out);
    host_comm(p, s, out);
}

void comm_list_copy(comm_list *dst, const comm_list *src) {
    dst->n = src->n;
    memcpy(dst->e, src->e, (size_t)src->n * sizeof src->e[0]);
    memcpy(dst->group_bytes, src->group_bytes, sizeof dst->group_bytes);
}
