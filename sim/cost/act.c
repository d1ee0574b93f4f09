/* act.c — saved-tensor tables and activation bytes (see act.h, docs/memory.md §3). */
#include "cost/act.h"

#include <string.h>

#define ADD(n_, by_, w_, d_, s_, score_, stat_)                                         \
    out[k++] = (act_tensor){.name = n_, .saved_by = by_, .width = w_, .dtype = d_,      \
                            .split = s_, .score = score_, .stat = stat_}

/* A norm saves its input and its per-token statistics: RMSNorm 1/rms,
 * LayerNorm mean and 1/sigma (fp32, as Apex/TE fused norms do). */
static int add_norm(const model_cfg *m, act_tensor *out, int k, const char *input,
                    const char *stat_name) {
    ADD(input, "norm", AW_HIDDEN, AD_ACT, AS_SEQ, false, false);
    ADD(stat_name, "norm", AW_ONE, AD_FP32, AS_SEQ, false, true);
    if (m->norm == NORM_LAYERNORM) ADD(stat_name, "norm (mean)", AW_ONE, AD_FP32, AS_SEQ, false, true);
    return k;
}

int act_layer_tensors(const model_cfg *m, act_tensor *out) {
    int k = 0;
    const bool dropout = m->dropout > 0;
    /* attention sub-block */
    k = add_norm(m, out, k, "attn_norm.input", "attn_norm.stats");
    ADD("qkv.input", "q/k/v linear", AW_HIDDEN, AD_ACT, AS_SEQ, false, false);
    if (m->attention == ATTN_FLASH) {
        /* flash attention keeps q, k, v (unexpanded under GQA), its output and
         * the log-sum-exp; the score matrix is rebuilt in backward. Its output
         * is the o projection's input: one tensor, counted once. */
        ADD("attn.q", "flash attention", AW_Q, AD_ACT, AS_TP, false, false);
        ADD("attn.k", "flash attention", AW_KV, AD_ACT, AS_TP, false, false);
        ADD("attn.v", "flash attention", AW_KV, AD_ACT, AS_TP, false, false);
        ADD("attn.out=o.input", "flash attention, o linear", AW_Q, AD_ACT, AS_TP, false, false);
        ADD("attn.lse", "flash attention", AW_HEADS, AD_FP32, AS_TP, false, false);
    } else {
        /* standard attention: Q K^T keeps q and k, softmax keeps its output,
         * dropout its mask, (softmax or dropout output) @ V keeps both operands.
         * Under GQA, K and V are expanded to every query head first (Megatron-LM
         * repeat_interleave, transformers repeat_kv), so they are q-wide. */
        ADD("attn.q", "Q K^T", AW_Q, AD_ACT, AS_TP, false, false);
        ADD("attn.k(expanded)", "Q K^T", AW_Q, AD_ACT, AS_TP, false, false);
        ADD("attn.softmax", "softmax, P V", AW_SCORES, AD_ACT, AS_TP, true, false);
        if (dropout) {
            ADD("attn.dropout.mask", "attention dropout", AW_SCORES, AD_BYTE, AS_TP, true, false);
            ADD("attn.dropout.out", "P V", AW_SCORES, AD_ACT, AS_TP, true, false);
        }
        ADD("attn.v(expanded)", "P V", AW_Q, AD_ACT, AS_TP, false, false);
        ADD("o.input", "o linear", AW_Q, AD_ACT, AS_TP, false, false);
    }
    if (dropout) ADD("attn.resid_dropout.mask", "dropout", AW_HIDDEN, AD_BYTE, AS_SEQ, false, false);
    /* MLP sub-block */
    k = add_norm(m, out, k, "mlp_norm.input", "mlp_norm.stats");
    if (m->mlp == MLP_SWIGLU) {
        ADD("w1w3.input", "w1 and w3 linears", AW_HIDDEN, AD_ACT, AS_SEQ, false, false);
        ADD("w1.out", "silu(a)*b", AW_FFN, AD_ACT, AS_TP, false, false);
        ADD("w3.out", "silu(a)*b", AW_FFN, AD_ACT, AS_TP, false, false);
        ADD("w2.input", "w2 linear", AW_FFN, AD_ACT, AS_TP, false, false);
    } else {
        ADD("fc1.input", "fc1 linear", AW_HIDDEN, AD_ACT, AS_SEQ, false, false);
        ADD("gelu.input", "gelu", AW_FFN, AD_ACT, AS_TP, false, false);
        ADD("fc2.input", "fc2 linear", AW_FFN, AD_ACT, AS_TP, false, false);
    }
    if (dropout) ADD("mlp.resid_dropout.mask", "dropout", AW_HIDDEN, AD_BYTE, AS_SEQ, false, false);
    return k;
}

int act_first_stage_tensors(const model_cfg *m, act_tensor *out) {
    int k = 0;
    ADD("input_ids", "embedding", AW_ONE, AD_INT64, AS_NONE, false, false);
    if (m->dropout > 0) ADD("embed.dropout.mask", "dropout", AW_HIDDEN, AD_BYTE, AS_SEQ, false, false);
    return k;
}

int act_last_stage_tensors(const model_cfg *m, act_tensor *out) {
    int k = 0;
    k = add_norm(m, out, k, "final_norm.input", "final_norm.stats");
    ADD("head.input", "output linear", AW_HIDDEN, AD_ACT, AS_SEQ, false, false);
    ADD("loss.softmax", "cross-entropy (fp32)", AW_VOCAB, AD_FP32, AS_TP, false, false);
    ADD("labels", "cross-entropy", AW_ONE, AD_INT64, AS_NONE, false, false);
    return k;
}

#undef ADD

static int64_t width_elems(const model_cfg *m, const plan_cfg *p, act_width w) {
    switch (w) {
    case AW_HIDDEN: return m->hidden;
    case AW_Q: return model_q_width(m);
    case AW_KV: return model_kv_width(m);
    case AW_FFN: return m->ffn_hidden;
    case AW_SCORES: return m->heads * p->seq;
    case AW_HEADS: return m->heads;
    case AW_ONE: return 1;
    case AW_VOCAB: return model_vocab_rows(m, p->tp) * p->tp;
    }
    return 0;
}

static int64_t dtype_size(const plan_cfg *p, act_dtype d) {
    switch (d) {
    case AD_ACT: return dtype_bytes(p->precision.activations);
    case AD_FP32: return 4;
    case AD_BYTE: return 1;
    case AD_INT64: return 8;
    }
    return 0;
}

int64_t act_tensor_bytes(const model_cfg *m, const plan_cfg *p, const act_tensor *t) {
    int64_t tokens = plan_tokens_per_rank(p);
    int64_t width = width_elems(m, p, t->width);
    if (t->split == AS_TP) width /= p->tp;
    if (t->split == AS_SEQ && p->sp) tokens /= p->tp;
    return tokens * width * dtype_size(p, t->dtype);
}

bool act_tensor_kept(const act_tensor *t, int index, plan_recompute rc) {
    switch (rc) {
    case RECOMPUTE_NONE: return true;
    case RECOMPUTE_SELECTIVE: return !t->score;
    case RECOMPUTE_FULL: return index == 0; /* attn_norm.input: the layer input */
    }
    return true;
}

/* Framework hook (plan_cfg.framework.loss; docs/memory.md "Framework
 * profiles"): how the loss keeps what its backward needs, as a change to the
 * last stage's list. fp32-softmax: the list as it is (Megatron-LM's
 * vocab-parallel cross-entropy saves its fp32 softmax). fused: llm.c's fused
 * classifier writes the logits' gradient in place into the logits, which stay
 * in the activation dtype until the head's backward (train_gpt2.cu keeps them
 * in acts.output). chunked: torchtitan's ChunkedLossWrapper runs the head,
 * the loss and their backward chunk by chunk inside the forward, so nothing
 * vocabulary-wide is kept for the backward. Returns the new count. */
static int framework_loss_tensors(const plan_cfg *p, act_tensor *t, int n) {
    for (int i = 0; i < n; i++) {
        if (strcmp(t[i].name, "loss.softmax")) continue;
        if (p->framework.loss == FW_LOSS_FUSED) {
            t[i].name = "logits (fused classifier)";
            t[i].saved_by = "fused classifier (gradient in place)";
            t[i].dtype = AD_ACT;
        } else if (p->framework.loss == FW_LOSS_CHUNKED) {
            for (int j = i + 1; j < n; j++) t[j - 1] = t[j];
            n--;
        }
        break;
    }
    return n;
}

static int64_t sum_bytes(const model_cfg *m, const plan_cfg *p, const act_tensor *t, int n) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += act_tensor_bytes(m, p, &t[i]);
    return total;
}

void act_compute(const model_cfg *m, const plan_cfg *p, act_bytes *out) {
    act_tensor t[ACT_MAX_TENSORS];
    int n = act_layer_tensors(m, t);
    out->layer_full = out->layer_saved = 0;
    for (int i = 0; i < n; i++) {
        int64_t b = act_tensor_bytes(m, p, &t[i]);
        out->layer_full += b;
        if (act_tensor_kept(&t[i], i, p->recompute)) out->layer_saved += b;
    }
    /* what a recomputed layer rebuilds is live while that layer runs backward */
    out->layer_working = out->layer_full - out->layer_saved;
    n = act_first_stage_tensors(m, t);
    out->first_stage = sum_bytes(m, p, t, n);
    n = framework_loss_tensors(p, t, act_last_stage_tensors(m, t));
    out->last_stage = sum_bytes(m, p, t, n);
}

int64_t act_kv_block_bytes(const model_cfg *m, const plan_cfg *p) {
    return 2 * plan_tokens_per_rank(p) * (model_kv_width(m) / p->tp) *
           dtype_bytes(p->precision.activations);
}

int64_t act_cp_ring_buffer_bytes(const model_cfg *m, const plan_cfg *p, bool backward) {
    return p->cp > 1 ? (backward ? 4 : 2) * act_kv_block_bytes(m, p) : 0;
}
