/* plan_check.c — plan validity rules and their explanations (see plan_check.h). */
#include "plan_check.h"

#include <stdio.h>

static const char *const reason_ids[PLAN_REASON_COUNT] = {
    "ok",           "gpus-exceed-cluster", "degrees-product", "tp-heads",
    "tp-kv-heads",  "tp-ffn",              "sp-needs-tp",     "sp-seq",
    "cp-attention", "cp-seq",              "seq-positions",   "batch-division",
    "pp-layers",    "stage-split",         "virtual-schedule", "interleaved-pp",
    "interleaved-layers", "interleaved-micro", "pp-max"};

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
    "pp * virtual does not divide the layers",
    "interleaved schedule needs micro-batches a multiple of pp",
    "more pipeline stages than parasim models (256)"};

const char *plan_reason_text(plan_reason r) {
    return r >= 0 && r < PLAN_REASON_COUNT ? reason_texts[r] : "unknown";
}

const char *plan_reason_id(plan_reason r) {
    return r >= 0 && r < PLAN_REASON_COUNT ? reason_ids[r] : "unknown";
}

static int has_split(const plan_cfg *p) { return p->stage_layers[0] != 0; }

static int split_ok(const model_cfg *m, const plan_cfg *p) {
    int64_t sum = 0;
    int n = 0;
    while (n < PLAN_MAX_STAGES && p->stage_layers[n]) sum += p->stage_layers[n++];
    return n == p->pp && sum == m->layers;
}

plan_reason plan_check_cfg(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p) {
    const int64_t seq_local = p->seq / p->cp;
    if (p->gpus > cluster_gpus(c)) return PLAN_GPUS_EXCEED_CLUSTER;
    if (p->dp * p->tp * p->pp * p->cp != p->gpus) return PLAN_DEGREES_PRODUCT;
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
    if (has_split(p)) {
        if (!split_ok(m, p)) return PLAN_STAGE_SPLIT;
    } else if (p->pp > m->layers || m->layers % p->pp) {
        return PLAN_PP_LAYERS;
    }
    if (p->schedule == SCHED_INTERLEAVED) {
        if (p->pp < 2 || p->virtual_stages < 2) return PLAN_INTERLEAVED_PP;
        if (has_split(p) || m->layers % (p->pp * p->virtual_stages)) return PLAN_INTERLEAVED_LAYERS;
        if (plan_micro_batches(p) % p->pp) return PLAN_INTERLEAVED_MICRO;
    } else if (p->virtual_stages != 1) {
        return PLAN_VIRTUAL_SCHEDULE;
    }
    return PLAN_OK;
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
    case PLAN_OK: return 0;
    case PLAN_GPUS_EXCEED_CLUSTER:
        return ps_err_at(err, &l->gpus, "gpus",
                         "expected at most the %lld GPUs of cluster %s (%lld nodes x %lld, %s), "
                         "found %lld",
                         (long long)cluster_gpus(c), s->cluster.name, (long long)c->nodes,
                         (long long)c->gpus_per_node, ps_loc_str(&s->cluster.nodes, at, sizeof at),
                         (long long)p->gpus);
    case PLAN_DEGREES_PRODUCT: {
        char locs[4][PS_LOC_FILE_MAX + 32];
        return ps_err_at(err, &l->parallel, "parallel",
                         "expected dp*tp*pp*cp to equal the %lld GPUs of the plan, found "
                         "%lld*%lld*%lld*%lld = %lld (dp from %s, tp from %s, pp from %s, cp "
                         "from %s)",
                         (long long)p->gpus, (long long)p->dp, (long long)p->tp,
                         (long long)p->pp, (long long)p->cp,
                         (long long)(p->dp * p->tp * p->pp * p->cp),
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
        return ps_err_at(err, &l->virtual_stages, "pipeline.virtual",
                         "expected pp*virtual to divide the model's layers = %lld evenly (%s; "
                         "interleaving takes no uneven split), found %lld*%lld",
                         (long long)m->layers, ps_loc_str(&ml->layers, at, sizeof at),
                         (long long)p->pp, (long long)p->virtual_stages);
    case PLAN_INTERLEAVED_MICRO:
        return ps_err_at(err, &l->global, "batch.global",
                         "expected the micro-batches per step, global/(micro*dp) = %lld, to be a "
                         "multiple of pp = %lld for the interleaved schedule (Megatron-LM's "
                         "rule)",
                         (long long)plan_micro_batches(p), (long long)p->pp);
    default: return ps_err_set(err, "internal error: unknown plan check result");
    }
}
