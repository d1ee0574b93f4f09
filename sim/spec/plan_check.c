/* plan_check.c — plan validity rules and their explanations (see plan_check.h). */
#include "spec/plan_check.h"

#include <stdio.h>

#include "cost/act.h"
#include "cost/params.h"
#include "cost/pipe.h"
#include "spec/distill_load.h"
#include "base/sat_int.h"

static const char *const reason_ids[PLAN_REASON_COUNT] = {
    "ok",           "gpus-exceed-cluster", "degrees-product", "tp-heads",
    "tp-kv-heads",  "tp-ffn",              "sp-needs-tp",     "sp-seq",
    "cp-attention", "cp-seq",              "seq-positions",   "batch-division",
    "pp-layers",    "stage-split",         "virtual-schedule", "interleaved-pp",
    "interleaved-layers", "interleaved-micro", "pp-max", "too-large",
    "split-options", "split-middle", "split-account",
    "ep-dense", "ep-experts", "ep-fold", "etp-ffn", "moe-sp", "moe-node-limit",
    "moe-placement",
    "dualpipe-pp", "dualpipe-micro",
    "distill-tp", "distill-pp", "distill-gpus"};

static const char *const reason_texts[PLAN_REASON_COUNT] = {
    "valid",
    "more GPUs than the cluster has",
    "dp*tp*pp*cp is not the GPU count",
    "tp does not divide the attention heads",
    "tp does not divide the key/value heads",
    "tp does not divide the MLP width",
    "sequence parallelism without tp > 1",
    "tp does not divide the sequence (sequence parallelism)",
    "context parallelism needs flash attention",
    "2*cp does not divide the sequence",
    "sequence longer than the learned position table",
    "micro-batch * dp does not divide the global batch",
    "pp does not divide the layers",
    "explicit stage split does not match pp or the layers",
    "virtual stages without the interleaved schedule",
    "interleaved schedule needs pp > 1 and virtual > 1",
    "a stage's layers do not split evenly over its virtual chunks",
    "interleaved schedule needs micro-batches a multiple of pp",
    "more pipeline stages than parasim models (256)",
    "sizes beyond what parasim computes (2^60 bytes)",
    "conflicting pipeline split options",
    "first/last stage layers leave layers the middle stages cannot share evenly",
    "pp does not divide layers + embedding + loss (account_for_*)",
    "expert parallelism on a dense model",
    "ep does not divide the routed experts",
    "etp*ep does not divide tp*cp*dp (MoE parallel folding)",
    "etp does not divide the experts' hidden size",
    "MoE with tp > 1 needs sequence parallelism",
    "node_limit above the nodes an ep group spans",
    "expert parallelism with pp inside the placement",
    "DualPipe needs an even pp >= 2",
    "DualPipe needs an even number of micro-batches, at least 2*pp",
    "tp does not split the teacher (distill)",
    "pp does not divide the teacher's layers (distill)",
    "student and teacher GPUs exceed the cluster (distill)"};

const char *plan_reason_text(plan_reason r) {
    return r >= 0 && r < PLAN_REASON_COUNT ? reason_texts[r] : "unknown";
}

const char *plan_reason_id(plan_reason r) {
    return r >= 0 && r < PLAN_REASON_COUNT ? reason_ids[r] : "unknown";
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

bool plan_degrees_product(const plan_cfg *p, int64_t *out) {
    return !__builtin_mul_overflow(p->dp, p->tp, out) &&
           !__builtin_mul_overflow(*out, p->pp, out) && !__builtin_mul_overflow(*out, p->cp, out);
}

/* Each term names the formula it bounds. Activation dtypes are at most 8 bytes
 * (int64 labels), parameter dtypes at most 4, and a collective sends at most
 * twice its buffer plus one element per rank (comm_bytes_sent). Valid degrees
 * are assumed (dp*tp*pp*cp = gpus <= 2^24, so mb fits). */
void plan_size_bound(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                     plan_size *out) {
    plan_size_bound_n(m, c, p, params_total(m), out);
}

void plan_size_bound_n(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                       int64_t params, plan_size *out) {
    const int64_t mb = p->global_batch / max64(1, sat_mul(p->micro_batch, p->dp));
    const int64_t L = m->layers, v = p->virtual_stages, cp = p->cp;
    const int64_t tok = sat_mul(p->micro_batch, p->seq / cp + 1); /* plan_tokens_per_rank */
    /* params = params_total(m) <= 2^48: model_check */
    /* act.c: a layer's saved tensors (the score matrix under standard
     * attention is heads*seq wide) and the first and last stages' (the vocab) */
    int64_t w_layer = max64(max64(m->hidden, model_q_width(m)), m->ffn_hidden);
    w_layer = max64(w_layer, m->attention == ATTN_STANDARD ? sat_mul(m->heads, p->seq) : m->heads);
    const int64_t w_edge = sat_add(w_layer, m->vocab + p->tp);
    const int64_t layer = sat_mul(sat_mul(tok, w_layer), 8 * ACT_MAX_TENSORS);
    const int64_t edge = sat_mul(sat_mul(tok, w_edge), 8 * ACT_MAX_TENSORS);
    /* pipe.c: micro-batches a stage holds (AFAB: all; 1F1B, zero-bubble: pp;
     * interleaved: 2(pp-1) + (v-1)pp + 1; the first stage's extras: 2pp) */
    const int64_t inflight = p->pp == 1                     ? 1
                             : p->schedule == SCHED_AFAB    ? mb
                                                            : sat_mul(v + 1, p->pp) + 1;
    /* eval.c: states (<= 20 B/param of a stage, which holds at most the model
     * and a second copy of a tied embedding) and the ZeRO-3 unit buffers, the
     * in-flight layers and stage extras, the working layer, cp's K/V buffers,
     * logits, buffers and the reserve */
    int64_t mem = sat_mul(params, 64);
    mem = sat_add(mem, sat_mul(inflight, sat_add(sat_mul(L, layer), sat_mul(edge, 2))));
    mem = sat_add(mem, sat_add(sat_mul(layer, 2), edge));
    mem = sat_add(mem, sat_add(sat_add(p->bucket_bytes, p->workspace_bytes),
                               c->gpu_reserved_bytes));
    /* cp all-gather: the gathered K/V and full-length dK/dV, 2 cp blocks of
     * at most 4 bytes x 2 x tok x kv width (act_cp_buffer_bytes) */
    if (cp > 1)
        mem = sat_add(mem, sat_mul(sat_mul(2 * cp, tok), sat_mul(model_kv_width(m), 8)));
    /* comm.c: dp (3 collectives of the padded parameters, 4 with
     * zero3.recompute_gather (bounded as 4 always), mb rounds under
     * ZeRO-2/3, else 1), tp (8 of b*s*h, mb*(2L+1) rounds), pp (2 of b*s*h,
     * mb*v rounds, and the tied embedding), cp (4 of the K/V block,
     * mb*L*(cp-1) rounds) and host (2 of the offloaded layers, mb rounds); a
     * group of one sends nothing */
    const int64_t d = sat_mul(p->dp, cp), ranks = max64(d, max64(p->tp, max64(p->pp, cp)));
    const int64_t t_bytes = sat_add(sat_mul(sat_mul(tok, m->hidden), 4), ranks);
    const int64_t kv_bytes = sat_add(sat_mul(sat_mul(tok, model_kv_width(m)), 8), ranks);
    const int64_t padded = sat_add(sat_mul(params, 2), d); /* a stage's flat buffer */
    int64_t comm = 0;
    /* (a MoE model's expert part goes over edp, which may exceed 1 when d is
     * 1; dense and expert parts together are at most the model) */
    if (d > 1 || model_is_moe(m))
        comm = sat_mul(sat_mul(p->zero >= 2 ? mb : 1, 8), sat_add(sat_mul(padded, 4), ranks));
    if (p->tp > 1) comm = sat_add(comm, sat_mul(sat_mul(mb, 16 * (2 * L + 1)), t_bytes));
    if (p->pp > 1) {
        comm = sat_add(comm, sat_mul(sat_mul(mb, 4 * v), t_bytes));
        comm = sat_add(comm, sat_mul(sat_mul(m->vocab + p->tp, m->hidden), 8));
        /* DualPipe: the twin copies' gradients, all-reduced over 2 ranks (comm.c) */
        if (p->schedule == SCHED_DUALPIPE) comm = sat_add(comm, sat_mul(padded, 8));
    }
    if (cp > 1) comm = sat_add(comm, sat_mul(sat_mul(sat_mul(mb, 8 * L), cp), kv_bytes));
    if (p->offload_activations)
        comm = sat_add(comm, sat_mul(sat_mul(mb, 4), sat_add(sat_mul(L, layer), ranks)));
    /* moe.c (a MoE model): a MoE layer's saved tensors on at most
     * tok*k*ep*etp rows (the busiest rank's share is capped at ep) of up to
     * 2h + 3 f_e + 16 bytes-wide entries, its router tensors (experts wide)
     * and shared experts (3 shared*f_e); its all-to-alls (6 calls of the
     * tok*k*h buffer per layer and micro-batch) and etp collectives (4 of
     * etp times that) */
    if (model_is_moe(m)) {
        const int64_t etp = p->etp > 0 ? p->etp : p->tp, k = m->experts_per_token;
        const int64_t rows = sat_mul(sat_mul(tok, k), sat_mul(p->ep, etp));
        const int64_t w = sat_add(sat_add(sat_mul(2, m->hidden), sat_mul(3, m->expert_ffn_hidden)), 16);
        const int64_t w_tok = sat_add(m->experts, sat_mul(3, sat_mul(m->shared_experts, m->expert_ffn_hidden)));
        const int64_t moe = sat_add(sat_mul(sat_mul(rows, w), 8), sat_mul(sat_mul(tok, w_tok), 16));
        mem = sat_add(mem, sat_mul(sat_add(sat_mul(inflight, L), 2), moe));
        const int64_t buf = sat_add(sat_mul(sat_mul(sat_mul(tok, k), m->hidden), 8), ranks);
        comm = sat_add(comm, sat_mul(sat_mul(mb, sat_mul(L, 6 + 4 * etp)), buf));
    }
    out->memory = mem;
    out->comm = comm;
}

static int has_split(const plan_cfg *p) { return p->stage_layers[0] != 0; }
static bool first_last(const plan_cfg *p) { return p->first_stage_layers || p->last_stage_layers; }
static bool accounts(const plan_cfg *p) { return p->account_for_embedding || p->account_for_loss; }

/* Megatron-LM's uneven split options (TransformerConfig.__post_init__'s
 * checks): they exclude one another and pipeline.layers; first/last stage
 * sizes leave the rest to the middle stages in equal parts (none left when
 * there are no middle stages); the account_for options need pp to divide the
 * layers plus one slot each for the embedding and the loss. */
static plan_reason split_options_check(const model_cfg *m, const plan_cfg *p) {
    if (has_split(p) || (first_last(p) && accounts(p)) || (first_last(p) && p->pp < 2))
        return PLAN_SPLIT_OPTIONS;
    if (first_last(p)) {
        int64_t rest;
        const int64_t middle = pipe_middle_split(m, p, &rest);
        if (rest < 0 || (rest > 0) != (middle > 0) || (middle > 0 && rest % middle))
            return PLAN_SPLIT_MIDDLE;
    } else if (pipe_account_layers(m, p) % p->pp) {
        return PLAN_SPLIT_ACCOUNT;
    }
    return PLAN_OK;
}

/* Interleaved with a given layout: the first stage whose layers (layer slots
 * under account_for_*) do not split evenly over its v chunks, as Megatron-LM
 * requires (get_num_layers_to_build); -1 when all do. */
static int64_t unsplittable_stage(const model_cfg *m, const plan_cfg *p, int64_t *count) {
    for (int64_t s = 0; s < p->pp; s++) {
        *count = !has_split(p) && !first_last(p) && accounts(p) ? pipe_account_slots(m, p)
                                                                : pipe_stage_layers(m, p, s);
        if (*count % p->virtual_stages) return s;
    }
    return -1;
}

static int split_ok(const model_cfg *m, const plan_cfg *p) {
    int64_t sum = 0;
    int n = 0;
    while (n < PLAN_MAX_STAGES && p->stage_layers[n]) sum += p->stage_layers[n++];
    return n == p->pp && sum == m->layers;
}

/* Nodes one ep group spans: etp innermost, then ep (cost/moe.h). */
static int64_t ep_group_nodes(const cluster_cfg *c, const plan_cfg *p) {
    const int64_t gpn = c->gpus_per_node, etp = plan_etp(p);
    if (p->gpus <= gpn) return 1;
    const int64_t per = gpn % etp ? 1 : (p->ep < gpn / etp ? p->ep : gpn / etp);
    return (p->ep + per - 1) / per;
}

/* Nodes the plan's GPUs fill. */
static int64_t plan_nodes(const cluster_cfg *c, const plan_cfg *p) {
    return (p->gpus + c->gpus_per_node - 1) / c->gpus_per_node;
}

/* The expert layout's rules (docs/specs.md "Expert parallelism"). */
static plan_reason moe_check(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p) {
    if (!model_is_moe(m))
        return p->ep != 1 || (p->etp && p->etp != p->tp) ? PLAN_EP_DENSE : PLAN_OK;
    const int64_t etp = plan_etp(p);
    if (m->experts % p->ep) return PLAN_EP_EXPERTS;
    if ((p->tp * p->cp * p->dp) % (etp * p->ep)) return PLAN_EP_FOLD;
    if (m->expert_ffn_hidden % etp) return PLAN_ETP_FFN;
    if (p->tp > 1 && !p->sp) return PLAN_MOE_SP;
    /* a node_limit at or above the nodes an ep group spans limits nothing
     * (cost/moe.c takes min(M, nodes)), so a sweep over ep keeps the small
     * groups; a limit above the nodes of the whole plan is a mistake */
    if (p->moe_node_limit > plan_nodes(c, p)) return PLAN_MOE_NODE_LIMIT;
    /* the expert layout folds the tp*cp*dp ranks of a stage, consecutive
     * when pp is outermost (Megatron-Core's orders end in pp); cost/moe.c's
     * ep-group span assumes it */
    if (p->ep > 1 && p->pp > 1 && p->placement[PLAN_GROUPS - 1] != GROUP_ORDER_PP)
        return PLAN_MOE_PLACEMENT;
    return PLAN_OK;
}

plan_reason plan_check_cfg(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p) {
    return plan_check_cfg_n(m, c, p, params_total(m));
}

plan_reason plan_check_cfg_n(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                             int64_t params) {
    const int64_t seq_local = p->seq / p->cp;
    if (p->gpus > cluster_gpus(c)) return PLAN_GPUS_EXCEED_CLUSTER;
    int64_t degrees;
    if (!plan_degrees_product(p, &degrees) || degrees != p->gpus) return PLAN_DEGREES_PRODUCT;
    if (m->heads % p->tp) return PLAN_TP_HEADS;
    if (m->kv_heads % p->tp) return PLAN_TP_KV_HEADS;
    if (m->ffn_hidden % p->tp) return PLAN_TP_FFN;
    if (p->sp && p->tp == 1) return PLAN_SP_NEEDS_TP;
    if (p->cp > 1 && m->attention != ATTN_FLASH) return PLAN_CP_ATTENTION;
    if (p->cp > 1 && p->seq % (2 * p->cp)) return PLAN_CP_SEQ;
    if (p->sp && (p->seq % p->cp || seq_local % p->tp)) return PLAN_SP_SEQ;
    if (m->position == POS_LEARNED && p->seq > m->max_position) return PLAN_SEQ_POSITIONS;
    if (p->global_batch % (p->micro_batch * p->dp)) return PLAN_BATCH_DIVISION;
    if (p->pp > PLAN_MAX_STAGES) return PLAN_PP_MAX;
    if (p->schedule == SCHED_DUALPIPE) { /* before the split checks: they name other fixes */
        const int64_t mb = plan_micro_batches(p);
        if (p->pp < 2 || p->pp % 2) return PLAN_DUALPIPE_PP;
        if (mb % 2 || mb < 2 * p->pp) return PLAN_DUALPIPE_MICRO;
    }
    if (first_last(p) || accounts(p)) {
        const plan_reason r = split_options_check(m, p);
        if (r != PLAN_OK) return r;
    } else if (has_split(p)) {
        if (!split_ok(m, p)) return PLAN_STAGE_SPLIT;
    } else if (p->pp > m->layers || m->layers % p->pp) {
        return PLAN_PP_LAYERS;
    }
    if (p->schedule == SCHED_INTERLEAVED) {
        if (p->pp < 2 || p->virtual_stages < 2) return PLAN_INTERLEAVED_PP;
        int64_t count;
        if (pipe_layout_given(p) ? unsplittable_stage(m, p, &count) >= 0
                                 : m->layers % (p->pp * p->virtual_stages) != 0)
            return PLAN_INTERLEAVED_LAYERS;
        if (plan_micro_batches(p) % p->pp) return PLAN_INTERLEAVED_MICRO;
    } else if (p->virtual_stages != 1) {
        return PLAN_VIRTUAL_SCHEDULE;
    }
    if (model_is_moe(m) || p->ep != 1 || p->etp) { /* (one branch for a dense plan) */
        const plan_reason r = moe_check(m, c, p);
        if (r != PLAN_OK) return r;
    }
    plan_size size;
    plan_size_bound_n(m, c, p, params, &size);
    if (size.memory > PLAN_SIZE_MAX || size.comm > PLAN_SIZE_MAX) return PLAN_TOO_LARGE;
    return PLAN_OK;
}

/* The split options' refusals (split_options_check), at the field that
 * brought the conflict in. */
static int explain_split_options(const plan_spec *s, ps_err *err) {
    const model_cfg *m = &s->model.cfg;
    const plan_cfg *p = &s->cfg;
    const plan_locs *l = &s->locs;
    const ps_loc *fl = p->first_stage_layers ? &l->first_stage_layers : &l->last_stage_layers;
    const ps_loc *ac = p->account_for_embedding ? &l->account_for_embedding : &l->account_for_loss;
    const char *fl_name = p->first_stage_layers ? "pipeline.first_stage_layers"
                                                : "pipeline.last_stage_layers";
    const char *ac_name = p->account_for_embedding ? "pipeline.account_for_embedding"
                                                   : "pipeline.account_for_loss";
    char at[PS_LOC_FILE_MAX + 32];
    if (has_split(p))
        return ps_err_at(err, &l->stage_layers, "pipeline.layers",
                         "expected either pipeline.layers or Megatron-LM's split options, not "
                         "both: %s is also given (%s)",
                         first_last(p) ? fl_name : ac_name,
                         ps_loc_str(first_last(p) ? fl : ac, at, sizeof at));
    if (accounts(p) && first_last(p))
        return ps_err_at(err, fl, fl_name,
                         "expected either first_stage_layers / last_stage_layers or "
                         "account_for_embedding / account_for_loss (Megatron-LM refuses them "
                         "together), found %s: true as well (%s)",
                         ac_name, ps_loc_str(ac, at, sizeof at));
    if (first_last(p) && p->pp < 2)
        return ps_err_at(err, fl, fl_name,
                         "expected pp >= 2 for a first or last stage of its own, found pp = %lld",
                         (long long)p->pp);
    if (first_last(p)) {
        const int64_t first = p->first_stage_layers, last = p->last_stage_layers;
        int64_t rest;
        const int64_t middle = pipe_middle_split(m, p, &rest);
        return ps_err_at(err, fl, fl_name,
                         "expected the model's layers = %lld (%s) less first_stage_layers = "
                         "%lld and last_stage_layers = %lld to split evenly over the %lld "
                         "middle stage(s) (Megatron-LM's rule; none left when there are no "
                         "middle stages), found %lld layers left",
                         (long long)m->layers, ps_loc_str(&s->model.locs.layers, at, sizeof at),
                         (long long)first, (long long)last, (long long)middle, (long long)rest);
    }
    const int64_t n = pipe_account_layers(m, p);
    return ps_err_at(err, ac, ac_name,
                     "expected pp = %lld to divide the model's layers = %lld (%s) plus %d for "
                     "the embedding and the loss counted as layers (Megatron-LM's "
                     "account_for_*_in_pipeline_split), found %lld, remainder %lld",
                     (long long)p->pp, (long long)m->layers,
                     ps_loc_str(&s->model.locs.layers, at, sizeof at),
                     p->account_for_embedding + p->account_for_loss, (long long)n,
                     (long long)(n % p->pp));
}

/* A given layout whose stage does not split over the virtual chunks. */
static int explain_unsplittable(const plan_spec *s, ps_err *err) {
    const model_cfg *m = &s->model.cfg;
    const plan_cfg *p = &s->cfg;
    const plan_locs *l = &s->locs;
    int64_t count = 0;
    const int64_t st = unsplittable_stage(m, p, &count);
    const char *from = "the middle stages' even share";
    char field[48];
    if (has_split(p)) {
        snprintf(field, sizeof field, "pipeline.layers[%lld]", (long long)st);
        from = field;
    } else if (accounts(p) && !first_last(p)) {
        from = "(layers + embedding + loss) / pp, the layer slots of every stage";
    } else if (st == 0 && p->first_stage_layers) {
        from = "pipeline.first_stage_layers";
    } else if (st == p->pp - 1 && p->last_stage_layers) {
        from = "pipeline.last_stage_layers";
    }
    return ps_err_at(err, &l->virtual_stages, "pipeline.virtual",
                     "expected every stage's layers to split evenly over its %lld chunks "
                     "(Megatron-LM builds a stage's layers / virtual per chunk), found stage "
                     "%lld with %lld (%s)",
                     (long long)p->virtual_stages, (long long)st, (long long)count, from);
}

/* DualPipe's refusals (docs/schedule.md "DualPipe"): rank s holds stage s of
 * one pipeline and stage pp-1-s of the mirrored one, so pp is even; dualpipe.py
 * (DualPipe.step) asserts num_chunks even and >= 2 num_ranks. The layer split
 * is checked as for any schedule. */
static int explain_dualpipe(const plan_spec *s, ps_err *err) {
    const plan_cfg *p = &s->cfg;
    const plan_locs *l = &s->locs;
    if (p->pp < 2 || p->pp % 2)
        return ps_err_at(err, &l->pp, "parallel.pp",
                         "expected an even pp >= 2 for pipeline.schedule: dualpipe (rank s holds "
                         "stage s and stage pp-1-s of two mirrored pipelines; DeepSeek's "
                         "dualpipe.py asserts an even number of ranks), found %lld",
                         (long long)p->pp);
    return ps_err_at(err, &l->global, "batch.global",
                     "expected the micro-batches per step, global/(micro*dp) = %lld, to be even "
                     "and at least 2*pp = %lld for pipeline.schedule: dualpipe (half go each "
                     "way; DeepSeek's dualpipe.py asserts num_chunks %% 2 == 0 and num_chunks "
                     ">= 2 num_ranks)",
                     (long long)plan_micro_batches(p), (long long)(2 * p->pp));
}

int plan_check(const plan_spec *s, ps_err *err) {
    const model_cfg *m = &s->model.cfg;
    const model_locs *ml = &s->model.locs;
    const cluster_cfg *c = &s->cluster.cfg;
    const plan_cfg *p = &s->cfg;
    const plan_locs *l = &s->locs;
    char at[PS_LOC_FILE_MAX + 32];
    const int64_t mb = p->micro_batch * p->dp;
    switch (plan_check_cfg(m, c, p)) {
    case PLAN_OK: return p->distill.set ? distill_spec_check(s, err) : 0;
    case PLAN_GPUS_EXCEED_CLUSTER:
        return ps_err_at(err, &l->gpus, "gpus",
                         "expected at most the %lld GPUs of cluster %s (%lld nodes x %lld, %s), "
                         "found %s%lld",
                         (long long)cluster_gpus(c), s->cluster.name, (long long)c->nodes,
                         (long long)c->gpus_per_node, ps_loc_str(&s->cluster.nodes, at, sizeof at),
                         s->gpus_derived ? "dp*tp*pp*cp = " : "", (long long)p->gpus);
    case PLAN_DEGREES_PRODUCT: {
        char locs[4][PS_LOC_FILE_MAX + 32], product[32];
        int64_t degrees;
        if (plan_degrees_product(p, &degrees))
            snprintf(product, sizeof product, "%lld", (long long)degrees);
        else
            snprintf(product, sizeof product, "more than 2^63");
        return ps_err_at(err, &l->parallel, "parallel",
                         "expected dp*tp*pp*cp to equal the %lld GPUs of the plan, found "
                         "%lld*%lld*%lld*%lld = %s (dp from %s, tp from %s, pp from %s, cp "
                         "from %s)",
                         (long long)p->gpus, (long long)p->dp, (long long)p->tp,
                         (long long)p->pp, (long long)p->cp, product,
                         ps_loc_str(&l->dp, locs[0], sizeof locs[0]),
                         ps_loc_str(&l->tp, locs[1], sizeof locs[1]),
                         ps_loc_str(&l->pp, locs[2], sizeof locs[2]),
                         ps_loc_str(&l->cp, locs[3], sizeof locs[3]));
    }
    case PLAN_TP_HEADS:
        return ps_err_at(err, &l->tp, "parallel.tp",
                         "expected a divisor of the model's heads = %lld (%s), found %lld",
                         (long long)m->heads, ps_loc_str(&ml->heads, at, sizeof at),
                         (long long)p->tp);
    case PLAN_TP_KV_HEADS:
        return ps_err_at(err, &l->tp, "parallel.tp",
                         "expected a divisor of the model's kv_heads = %lld (%s; Megatron needs "
                         "whole key/value groups per rank), found %lld",
                         (long long)m->kv_heads, ps_loc_str(&ml->kv_heads, at, sizeof at),
                         (long long)p->tp);
    case PLAN_TP_FFN:
        return ps_err_at(err, &l->tp, "parallel.tp",
                         "expected a divisor of the model's ffn_hidden = %lld (%s), found %lld",
                         (long long)m->ffn_hidden, ps_loc_str(&ml->ffn_hidden, at, sizeof at),
                         (long long)p->tp);
    case PLAN_SP_NEEDS_TP:
        return ps_err_at(err, &l->sp, "parallel.sp",
                         "expected false with tp = 1 (sequence parallelism splits the tensor-"
                         "parallel group's replicated activations), found true");
    case PLAN_CP_ATTENTION:
        return ps_err_at(err, &l->cp, "parallel.cp",
                         "expected 1 for a model with attention: standard (%s): ring attention "
                         "needs flash-style attention that keeps no score matrix, found %lld",
                         ps_loc_str(&ml->attention, at, sizeof at), (long long)p->cp);
    case PLAN_CP_SEQ:
        return ps_err_at(err, &l->seq, "batch.seq",
                         "expected a multiple of 2*cp = %lld (the load-balanced causal layout "
                         "gives each cp rank two chunks), found %lld",
                         (long long)(2 * p->cp), (long long)p->seq);
    case PLAN_SP_SEQ:
        return ps_err_at(err, &l->seq, "batch.seq",
                         "expected a multiple of cp*tp = %lld with sequence parallelism, found %lld",
                         (long long)(p->cp * p->tp), (long long)p->seq);
    case PLAN_SEQ_POSITIONS:
        return ps_err_at(err, &l->seq, "batch.seq",
                         "expected at most the model's max_position = %lld (%s: learned "
                         "positions), found %lld",
                         (long long)m->max_position, ps_loc_str(&ml->max_position, at, sizeof at),
                         (long long)p->seq);
    case PLAN_BATCH_DIVISION:
        return ps_err_at(err, &l->global, "batch.global",
                         "expected a multiple of micro*dp = %lld*%lld = %lld sequences, found %lld",
                         (long long)p->micro_batch, (long long)p->dp, (long long)mb,
                         (long long)p->global_batch);
    case PLAN_PP_MAX:
        return ps_err_at(err, &l->pp, "parallel.pp", "expected at most %d stages, found %lld",
                         PLAN_MAX_STAGES, (long long)p->pp);
    case PLAN_PP_LAYERS:
        return ps_err_at(err, &l->pp, "parallel.pp",
                         "expected a divisor of the model's layers = %lld (%s), found %lld "
                         "(give pipeline.layers for an uneven split)",
                         (long long)m->layers, ps_loc_str(&ml->layers, at, sizeof at),
                         (long long)p->pp);
    case PLAN_STAGE_SPLIT: {
        int64_t sum = 0;
        int n = 0;
        for (; n < PLAN_MAX_STAGES && p->stage_layers[n]; n++) sum += p->stage_layers[n];
        return ps_err_at(err, &l->stage_layers, "pipeline.layers",
                         "expected pp = %lld stage sizes summing to the model's layers = %lld "
                         "(%s), found %d stages summing to %lld",
                         (long long)p->pp, (long long)m->layers,
                         ps_loc_str(&ml->layers, at, sizeof at), n, (long long)sum);
    }
    case PLAN_VIRTUAL_SCHEDULE:
        return ps_err_at(err, &l->virtual_stages, "pipeline.virtual",
                         "expected 1 unless pipeline.schedule is interleaved, found %lld",
                         (long long)p->virtual_stages);
    case PLAN_INTERLEAVED_PP:
        return ps_err_at(err, &l->schedule, "pipeline.schedule",
                         "expected pp >= 2 and pipeline.virtual >= 2 for the interleaved "
                         "schedule, found pp = %lld, virtual = %lld",
                         (long long)p->pp, (long long)p->virtual_stages);
    case PLAN_INTERLEAVED_LAYERS:
        if (pipe_layout_given(p)) return explain_unsplittable(s, err);
        return ps_err_at(err, &l->virtual_stages, "pipeline.virtual",
                         "expected pp*virtual to divide the model's layers = %lld evenly (%s; "
                         "for an uneven split give pipeline.layers, first_stage_layers / "
                         "last_stage_layers or account_for_embedding / account_for_loss), found "
                         "%lld*%lld",
                         (long long)m->layers, ps_loc_str(&ml->layers, at, sizeof at),
                         (long long)p->pp, (long long)p->virtual_stages);
    case PLAN_INTERLEAVED_MICRO:
        return ps_err_at(err, &l->global, "batch.global",
                         "expected the micro-batches per step, global/(micro*dp) = %lld, to be a "
                         "multiple of pp = %lld for the interleaved schedule (Megatron-LM's "
                         "rule)",
                         (long long)plan_micro_batches(p), (long long)p->pp);
    case PLAN_TOO_LARGE: {
        plan_size size;
        plan_size_bound(m, c, p, &size);
        const bool mem = size.memory > PLAN_SIZE_MAX;
        return ps_err_at(err, mem ? &l->micro : &l->global, mem ? "batch.micro" : "batch.global",
                         "plan too large: its %s, bounded by %lld*%lld tokens per micro-batch "
                         "(batch.micro*batch.seq), %lld micro-batches per step and the model's "
                         "%lld layers of width up to %lld, reaches %s%lld bytes, which exceeds "
                         "the limit of 2^60 bytes (1 EiB) that keeps parasim's 64-bit sizes "
                         "exact",
                         mem ? "memory per GPU" : "communication per GPU per step",
                         (long long)p->micro_batch, (long long)p->seq,
                         (long long)plan_micro_batches(p), (long long)m->layers,
                         (long long)(m->ffn_hidden > m->hidden ? m->ffn_hidden : m->hidden),
                         (mem ? size.memory : size.comm) == INT64_MAX ? "more than " : "",
                         (long long)(mem ? size.memory : size.comm));
    }
    case PLAN_SPLIT_OPTIONS:
    case PLAN_SPLIT_MIDDLE:
    case PLAN_SPLIT_ACCOUNT: return explain_split_options(s, err);
    case PLAN_EP_DENSE:
        return ps_err_at(err, p->ep != 1 ? &l->ep : &l->etp, p->ep != 1 ? "parallel.ep" : "parallel.etp",
                         "expected %s for model '%s', a dense model (no experts: field experts "
                         "absent or 0, %s), found %lld",
                         p->ep != 1 ? "1" : "no etp, or etp = tp", s->model.name,
                         ps_loc_str(&ml->self, at, sizeof at),
                         (long long)(p->ep != 1 ? p->ep : p->etp));
    case PLAN_EP_EXPERTS:
        return ps_err_at(err, &l->ep, "parallel.ep",
                         "expected a divisor of the model's experts = %lld (%s: each ep rank "
                         "holds experts/ep whole experts), found %lld",
                         (long long)m->experts, ps_loc_str(&ml->experts, at, sizeof at),
                         (long long)p->ep);
    case PLAN_EP_FOLD:
        return ps_err_at(err, p->ep > 1 ? &l->ep : &l->etp, p->ep > 1 ? "parallel.ep" : "parallel.etp",
                         "expected etp*ep = %lld*%lld to divide tp*cp*dp = %lld*%lld*%lld = %lld "
                         "(Megatron-Core's MoE parallel folding: the expert layers use the same "
                         "ranks of a pipeline stage as etp x ep x edp; etp %s), found a "
                         "remainder of %lld",
                         (long long)plan_etp(p), (long long)p->ep, (long long)p->tp,
                         (long long)p->cp, (long long)p->dp,
                         (long long)(p->tp * p->cp * p->dp), p->etp ? "given" : "= tp by default",
                         (long long)((p->tp * p->cp * p->dp) % (plan_etp(p) * p->ep)));
    case PLAN_ETP_FFN:
        return ps_err_at(err, p->etp ? &l->etp : &l->tp, p->etp ? "parallel.etp" : "parallel.tp",
                         "expected a divisor of the model's expert_ffn_hidden = %lld (%s; the "
                         "expert tensor-parallel degree%s splits each expert's hidden "
                         "features), found %lld",
                         (long long)m->expert_ffn_hidden,
                         ps_loc_str(&ml->expert_ffn_hidden, at, sizeof at),
                         p->etp ? "" : ", etp = tp by default,", (long long)plan_etp(p));
    case PLAN_MOE_SP:
        return ps_err_at(err, &l->sp, "parallel.sp",
                         "expected true for a MoE model with tp = %lld > 1 (Megatron-Core refuses "
                         "MoE training with tensor parallelism without sequence parallelism: "
                         "megatron/core/transformer/moe/moe_layer.py), found false",
                         (long long)p->tp);
    case PLAN_MOE_NODE_LIMIT: {
        return ps_err_at(err, &l->moe_node_limit, "moe.node_limit",
                         "expected at most the %lld node(s) the plan's %lld GPUs fill (%lld "
                         "GPUs per node; node-limited routing, DeepSeek-V3 §2.1.2, sends each "
                         "token to at most node_limit nodes; a limit at or above the %lld "
                         "node(s) one ep group of ep = %lld spans limits nothing), found %lld",
                         (long long)plan_nodes(c, p), (long long)p->gpus,
                         (long long)c->gpus_per_node, (long long)ep_group_nodes(c, p),
                         (long long)p->ep,
                         (long long)p->moe_node_limit);
    }
    case PLAN_MOE_PLACEMENT: {
        char pl[64];
        return ps_err_at(err, &l->placement, "placement",
                         "expected pp outermost (last) with expert parallelism (ep = %lld): "
                         "the expert layers fold a stage's tp*cp*dp ranks as etp x ep x edp "
                         "(Megatron-Core parallel_state.py), which parasim places on "
                         "consecutive ranks; found %s",
                         (long long)p->ep, plan_placement_name(p, pl, sizeof pl));
    }
    case PLAN_DUALPIPE_PP:
    case PLAN_DUALPIPE_MICRO: return explain_dualpipe(s, err);
    default: return ps_err_set(err, "internal error: unknown plan check result");
    }
}
