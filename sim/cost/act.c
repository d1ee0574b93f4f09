/* act.c — saved-tensor tables and activation bytes (see act.h, docs/memory.md §3). */
#include "cost/act.h"

#include <stdio.h>
#include <string.h>

const char *const act_tensor_names[] = {
    "attn_norm.input", "attn_norm.stats", "qkv.input", "attn.q", "attn.k", "attn.v",
    "attn.out=o.input", "attn.lse", "attn.k(expanded)", "attn.softmax", "attn.dropout.mask",
    "attn.dropout.out", "attn.v(expanded)", "o.input", "attn.resid_dropout.mask",
    "mlp_norm.input", "mlp_norm.stats", "w1w3.input", "w1.out", "w3.out", "w2.input",
    "fc1.input", "gelu.input", "fc2.input", "mlp.resid_dropout.mask", NULL};

/* The forward op that produces each named tensor (what rebuilding it replays;
 * docs/memory.md §3, "Recompute policies"). */
static const uint8_t name_op[AN_COUNT] = {
    [AN_ATTN_NORM_INPUT] = ACT_OP_INPUT, [AN_ATTN_NORM_STATS] = ACT_OP_NORM1,
    [AN_QKV_INPUT] = ACT_OP_NORM1,       [AN_ATTN_Q] = ACT_OP_Q,
    [AN_ATTN_K] = ACT_OP_K,              [AN_ATTN_V] = ACT_OP_V,
    [AN_ATTN_OUT] = ACT_OP_ATTN,         [AN_ATTN_LSE] = ACT_OP_ATTN,
    [AN_ATTN_K_EXPANDED] = ACT_OP_K,     [AN_ATTN_SOFTMAX] = ACT_OP_SOFTMAX,
    [AN_ATTN_DROPOUT_MASK] = ACT_OP_SOFTMAX, [AN_ATTN_DROPOUT_OUT] = ACT_OP_SOFTMAX,
    [AN_ATTN_V_EXPANDED] = ACT_OP_V,     [AN_O_INPUT] = ACT_OP_ATTN,
    [AN_ATTN_RESID_MASK] = ACT_OP_RESID1, [AN_MLP_NORM_INPUT] = ACT_OP_RESID1,
    [AN_MLP_NORM_STATS] = ACT_OP_NORM2,  [AN_W1W3_INPUT] = ACT_OP_NORM2,
    [AN_W1_OUT] = ACT_OP_UP,             [AN_W3_OUT] = ACT_OP_GATE,
    [AN_W2_INPUT] = ACT_OP_ACT,          [AN_FC1_INPUT] = ACT_OP_NORM2,
    [AN_GELU_INPUT] = ACT_OP_UP,         [AN_FC2_INPUT] = ACT_OP_ACT,
    [AN_MLP_RESID_MASK] = ACT_OP_RESID2};

/* A layer tensor: its name's id (name_op[] gives its producer); drop_ =
 * ACT_DROP_* bits. */
#define ADD(id_, by_, w_, d_, s_, score_, stat_, drop_)                                      \
    out[k++] = (act_tensor){.name = act_tensor_names[id_], .saved_by = by_, .width = w_,     \
                            .dtype = d_, .split = s_, .score = score_, .stat = stat_,        \
                            .name_id = id_, .drop = drop_}
/* A first/last-stage extra: no layer name, never recomputed. */
#define ADD_EXTRA(n_, by_, w_, d_, s_, stat_)                                                \
    out[k++] = (act_tensor){.name = n_, .saved_by = by_, .width = w_, .dtype = d_,           \
                            .split = s_, .stat = stat_, .name_id = AN_NONE}

enum { OP = ACT_DROP_OP, GELU = ACT_DROP_GELU, NORM = ACT_DROP_NORM };

/* A norm saves its input and its per-token statistics: RMSNorm 1/rms,
 * LayerNorm mean and 1/sigma (fp32, as Apex/TE fused norms do). Its output is
 * the next linear's input, listed by the caller. torchtitan's op policy
 * replays every norm; llm.c -r 2 rebuilds the output from the kept statistics. */
static int add_norm(const model_cfg *m, act_tensor *out, int k, act_name input, act_name stats) {
    ADD(input, "norm", AW_HIDDEN, AD_ACT, AS_SEQ, false, false, input == AN_ATTN_NORM_INPUT ? 0 : OP);
    ADD(stats, "norm", AW_ONE, AD_FP32, AS_SEQ, false, true, OP);
    if (m->norm == NORM_LAYERNORM) ADD(stats, "norm (mean)", AW_ONE, AD_FP32, AS_SEQ, false, true, OP);
    return k;
}

int act_layer_tensors(const model_cfg *m, act_tensor *out) {
    int k = 0;
    const bool dropout = m->dropout > 0;
    /* attention sub-block */
    k = add_norm(m, out, k, AN_ATTN_NORM_INPUT, AN_ATTN_NORM_STATS);
    ADD(AN_QKV_INPUT, "q/k/v linear", AW_HIDDEN, AD_ACT, AS_SEQ, false, false, OP | NORM);
    /* torchtitan's op policy saves every other linear in call order (wq 1st,
     * wk 2nd, wv 3rd, wo 4th, w1 / fc1 5th, w3 6th, w2 7th / fc2 6th): k and
     * everything after wo's output are rebuilt; the attention kernel's outputs
     * (flash: out and lse; standard: both batched GEMMs) are saved. */
    if (m->attention == ATTN_FLASH) {
        /* flash attention keeps q, k, v (unexpanded under GQA), its output and
         * the log-sum-exp; the score matrix is rebuilt in backward. Its output
         * is the o projection's input: one tensor, counted once. */
        ADD(AN_ATTN_Q, "flash attention", AW_Q, AD_ACT, AS_TP, false, false, 0);
        ADD(AN_ATTN_K, "flash attention", AW_KV, AD_ACT, AS_TP, false, false, OP);
        ADD(AN_ATTN_V, "flash attention", AW_KV, AD_ACT, AS_TP, false, false, 0);
        ADD(AN_ATTN_OUT, "flash attention, o linear", AW_Q, AD_ACT, AS_TP, false, false, 0);
        ADD(AN_ATTN_LSE, "flash attention", AW_HEADS, AD_FP32, AS_TP, false, false, 0);
    } else {
        /* standard attention: Q K^T keeps q and k, softmax keeps its output,
         * dropout its mask, (softmax or dropout output) @ V keeps both operands.
         * Under GQA, K and V are expanded to every query head first (Megatron-LM
         * repeat_interleave, transformers repeat_kv), so they are q-wide. The
         * op policy replays softmax and dropout from QK^T's cached output
         * (act_cached_tensors). */
        ADD(AN_ATTN_Q, "Q K^T", AW_Q, AD_ACT, AS_TP, false, false, 0);
        ADD(AN_ATTN_K_EXPANDED, "Q K^T", AW_Q, AD_ACT, AS_TP, false, false, OP);
        ADD(AN_ATTN_SOFTMAX, "softmax, P V", AW_SCORES, AD_ACT, AS_TP, true, false, OP);
        if (dropout) {
            ADD(AN_ATTN_DROPOUT_MASK, "attention dropout", AW_SCORES, AD_BYTE, AS_TP, true, false, OP);
            ADD(AN_ATTN_DROPOUT_OUT, "P V", AW_SCORES, AD_ACT, AS_TP, true, false, OP);
        }
        ADD(AN_ATTN_V_EXPANDED, "P V", AW_Q, AD_ACT, AS_TP, false, false, 0);
        ADD(AN_O_INPUT, "o linear", AW_Q, AD_ACT, AS_TP, false, false, 0);
    }
    if (dropout) ADD(AN_ATTN_RESID_MASK, "dropout", AW_HIDDEN, AD_BYTE, AS_SEQ, false, false, OP);
    /* MLP sub-block */
    k = add_norm(m, out, k, AN_MLP_NORM_INPUT, AN_MLP_NORM_STATS);
    if (m->mlp == MLP_SWIGLU) {
        ADD(AN_W1W3_INPUT, "w1 and w3 linears", AW_HIDDEN, AD_ACT, AS_SEQ, false, false, OP | NORM);
        ADD(AN_W1_OUT, "silu(a)*b", AW_FFN, AD_ACT, AS_TP, false, false, 0);
        ADD(AN_W3_OUT, "silu(a)*b", AW_FFN, AD_ACT, AS_TP, false, false, OP);
        ADD(AN_W2_INPUT, "w2 linear", AW_FFN, AD_ACT, AS_TP, false, false, OP | GELU);
    } else {
        ADD(AN_FC1_INPUT, "fc1 linear", AW_HIDDEN, AD_ACT, AS_SEQ, false, false, OP | NORM);
        ADD(AN_GELU_INPUT, "gelu", AW_FFN, AD_ACT, AS_TP, false, false, 0);
        ADD(AN_FC2_INPUT, "fc2 linear", AW_FFN, AD_ACT, AS_TP, false, false, OP | GELU);
    }
    if (dropout) ADD(AN_MLP_RESID_MASK, "dropout", AW_HIDDEN, AD_BYTE, AS_SEQ, false, false, OP);
    return k;
}

int act_first_stage_tensors(const model_cfg *m, act_tensor *out) {
    int k = 0;
    ADD_EXTRA("input_ids", "embedding", AW_ONE, AD_INT64, AS_NONE, false);
    if (m->dropout > 0) ADD_EXTRA("embed.dropout.mask", "dropout", AW_HIDDEN, AD_BYTE, AS_SEQ, false);
    return k;
}

int act_last_stage_tensors(const model_cfg *m, act_tensor *out) {
    int k = 0;
    ADD_EXTRA("final_norm.input", "norm", AW_HIDDEN, AD_ACT, AS_SEQ, false);
    ADD_EXTRA("final_norm.stats", "norm", AW_ONE, AD_FP32, AS_SEQ, true);
    if (m->norm == NORM_LAYERNORM)
        ADD_EXTRA("final_norm.stats", "norm (mean)", AW_ONE, AD_FP32, AS_SEQ, true);
    ADD_EXTRA("head.input", "output linear", AW_HIDDEN, AD_ACT, AS_SEQ, false);
    ADD_EXTRA("loss.softmax", "cross-entropy (fp32)", AW_VOCAB, AD_FP32, AS_TP, false);
    ADD_EXTRA("labels", "cross-entropy", AW_ONE, AD_INT64, AS_NONE, false);
    return k;
}

#undef ADD
#undef ADD_EXTRA

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

bool act_tensor_kept(const act_tensor *t, int index, const plan_cfg *p) {
    switch (p->recompute) {
    case RECOMPUTE_NONE: return true;
    case RECOMPUTE_SELECTIVE: return !t->score;
    case RECOMPUTE_FULL: return index == 0; /* attn_norm.input: the layer input */
    case RECOMPUTE_OP: return !(t->drop & ACT_DROP_OP);
    case RECOMPUTE_GELU: return !(t->drop & ACT_DROP_GELU);
    case RECOMPUTE_GELU_NORM: return !(t->drop & (ACT_DROP_GELU | ACT_DROP_NORM));
    case RECOMPUTE_CUSTOM:
        return t->name_id >= AN_COUNT || !(p->recompute_tensors >> t->name_id & 1u);
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

#define BIT(op_) (1u << (op_))

uint32_t act_replay_ops(const model_cfg *m, const plan_cfg *p) {
    const bool flash = m->attention == ATTN_FLASH, swiglu = m->mlp == MLP_SWIGLU;
    const uint32_t all = (BIT(ACT_OP_COUNT) - 1) & ~BIT(ACT_OP_INPUT) &
                         ~(flash ? BIT(ACT_OP_SOFTMAX) : 0) &
                         ~(m->position == POS_ROPE ? 0 : BIT(ACT_OP_ROPE)) &
                         ~(swiglu ? 0 : BIT(ACT_OP_GATE));
    uint32_t r = 0;
    switch (p->recompute) {
    case RECOMPUTE_NONE: return 0;
    case RECOMPUTE_SELECTIVE: return flash ? 0 : BIT(ACT_OP_ATTN) | BIT(ACT_OP_SOFTMAX);
    case RECOMPUTE_FULL: return all;
    case RECOMPUTE_OP:
        /* saved: wq, wv (1st, 3rd linears), the attention kernel, w1/fc1 (5th),
         * SwiGLU's w2 (7th); fc2 is a GELU MLP's 6th and is replayed */
        return all & ~(BIT(ACT_OP_Q) | BIT(ACT_OP_V) | BIT(ACT_OP_ATTN) | BIT(ACT_OP_UP) |
                       (swiglu ? BIT(ACT_OP_DOWN) : 0));
    case RECOMPUTE_GELU: return BIT(ACT_OP_ACT);
    case RECOMPUTE_GELU_NORM: return BIT(ACT_OP_ACT) | BIT(ACT_OP_NORM1) | BIT(ACT_OP_NORM2);
    case RECOMPUTE_CUSTOM:
        for (uint32_t b = p->recompute_tensors; b; b &= b - 1) {
            const int id = __builtin_ctz(b);
            if (id < AN_COUNT) r |= BIT(name_op[id]);
        }
        /* inputs no tensor of the table holds: q and k are saved after RoPE;
         * the residual add needs wo's output; softmax needs QK^T's, so
         * dropping the scores replays the attention core as Megatron's
         * selective recompute does */
        if (r & (BIT(ACT_OP_Q) | BIT(ACT_OP_K)) && m->position == POS_ROPE) r |= BIT(ACT_OP_ROPE);
        if (r & BIT(ACT_OP_RESID1)) r |= BIT(ACT_OP_O);
        if (r & BIT(ACT_OP_SOFTMAX)) r |= BIT(ACT_OP_ATTN);
        return r & ~BIT(ACT_OP_INPUT);
    }
    return 0;
}

#undef BIT

int act_cached_tensors(const model_cfg *m, const plan_cfg *p, act_tensor *out) {
    int k = 0;
    if (p->recompute != RECOMPUTE_OP) return 0;
    /* w2's output as its mm writes it: under TP a partial sum over every
     * token, reduce-scattered (SP) or all-reduced afterwards */
    if (m->mlp == MLP_SWIGLU)
        out[k++] = (act_tensor){.name = "w2.out (cached)", .saved_by = "op-level AC",
                                .width = AW_HIDDEN, .dtype = AD_ACT,
                                .split = p->tp > 1 ? AS_NONE : AS_SEQ, .name_id = AN_NONE};
    /* under TP + SP the reduce-scatters after wo and w2 are saved ops too */
    if (p->tp > 1 && p->sp) {
        out[k++] = (act_tensor){.name = "attn.reduce_scatter (cached)", .saved_by = "op-level AC",
                                .width = AW_HIDDEN, .dtype = AD_ACT, .split = AS_SEQ,
                                .name_id = AN_NONE};
        out[k++] = (act_tensor){.name = "mlp.reduce_scatter (cached)", .saved_by = "op-level AC",
                                .width = AW_HIDDEN, .dtype = AD_ACT, .split = AS_SEQ,
                                .name_id = AN_NONE};
    }
    if (m->attention == ATTN_STANDARD)
        out[k++] = (act_tensor){.name = "attn.scores (cached)", .saved_by = "op-level AC",
                                .width = AW_SCORES, .dtype = AD_ACT, .split = AS_TP,
                                .score = true, .name_id = AN_NONE};
    return k;
}

int act_name_find(const char *name) {
    for (int i = 0; i < AN_COUNT; i++)
        if (!strcmp(name, act_tensor_names[i])) return i;
    return -1;
}

bool act_layer_has(const model_cfg *m, int name_id) {
    act_tensor t[ACT_MAX_TENSORS];
    const int n = act_layer_tensors(m, t);
    for (int i = 0; i < n; i++)
        if (t[i].name_id == name_id) return true;
    return false;
}

const char *act_layer_names(const model_cfg *m, char *buf, int len) {
    act_tensor t[ACT_MAX_TENSORS];
    const int n = act_layer_tensors(m, t);
    int used = 0;
    buf[0] = 0;
    for (int i = 0; i < n && used < len; i++) {
        if (i > 0 && t[i].name_id == t[i - 1].name_id) continue; /* LayerNorm's two statistics */
        int w = snprintf(buf + used, (size_t)(len - used), "%s%s", used ? ", " : "", t[i].name);
        if (w < 0) break;
        used += w;
    }
    return buf;
}

static int64_t sum_bytes(const model_cfg *m, const plan_cfg *p, const act_tensor *t, int n) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += act_tensor_bytes(m, p, &t[i]);
    return total;
}

void act_compute(const model_cfg *m, const plan_cfg *p, act_bytes *out) {
    act_tensor t[ACT_MAX_TENSORS];
    int n = act_layer_tensors(m, t);
    out->layer_full = out->layer_saved = out->layer_working = 0;
    for (int i = 0; i < n; i++) {
        int64_t b = act_tensor_bytes(m, p, &t[i]);
        out->layer_full += b;
        /* what a recomputed layer rebuilds is live while that layer runs backward */
        if (act_tensor_kept(&t[i], i, p)) out->layer_saved += b;
        else out->layer_working += b;
    }
    if (p->recompute == RECOMPUTE_OP) {
        n = act_cached_tensors(m, p, t);
        out->layer_saved += sum_bytes(m, p, t, n);
    }
    n = act_first_stage_tensors(m, t);
    out->first_stage = sum_bytes(m, p, t, n);
    n = framework_loss_tensors(p, t, act_last_stage_tensors(m, t));
    out->last_stage = sum_bytes(m, p, t, n);
}

int64_t act_kv_block_bytes(const model_cfg *m, const plan_cfg *p) {
    return 2 * plan_tokens_per_rank(p) * (model_kv_width(m) / p->tp) *
           dtype_bytes(p->precision.activations);
}

int64_t act_cp_buffer_bytes(const model_cfg *m, const plan_cfg *p, bool backward) {
    if (p->cp <= 1) return 0;
    /* all-gather: the gathered K/V of all cp blocks; backward also the
     * full-length dK/dV before their reduce-scatter (TE AttnFuncWithCPAndKVAllGather) */
    if (p->cp_algorithm == CP_ALL_GATHER)
        return (backward ? 2 : 1) * p->cp * act_kv_block_bytes(m, p);
    return (backward ? 4 : 2) * act_kv_block_bytes(m, p);
}
