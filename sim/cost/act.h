/* act.h — activation memory, derived from the tensors each op saves for its
 * backward pass (docs/memory.md §3).
 *
 * act_layer_tensors lists, for one transformer layer of a given block shape,
 * every tensor kept for backward: its width per token, its dtype and how it
 * is split under tensor/sequence parallelism. Sums over that list give the
 * per-layer bytes; with a GPT-3 block they reproduce Korthikanti et al. 2022
 * Table 2 term by term, plus the per-token norm statistics that the paper
 * leaves out. Recomputation decides which of them stay.
 */
#ifndef PS_ACT_H
#define PS_ACT_H

#include <stdbool.h>
#include <stdint.h>

#include "spec/model.h"
#include "spec/plan.h"

typedef enum {
    AW_HIDDEN, /* h */
    AW_Q,      /* heads * head_dim */
    AW_KV,     /* kv_heads * head_dim */
    AW_FFN,    /* ffn_hidden */
    AW_SCORES, /* heads * seq: the attention score matrix row of one token */
    AW_HEADS,  /* heads: one value per head (flash attention's log-sum-exp) */
    AW_ONE,    /* one value per token (norm statistics, token ids) */
    AW_VOCAB   /* vocabulary (padded to a multiple of tp) */
} act_width;

typedef enum { AD_ACT, AD_FP32, AD_BYTE, AD_INT64 } act_dtype;

typedef enum {
    AS_SEQ,  /* replicated across tp ranks, split by tp under sequence parallelism */
    AS_TP,   /* split across tp ranks (heads, ffn or vocab dimension) */
    AS_NONE  /* full on every tp rank (token ids) */
} act_split;

/* The forward ops of one layer, in execution order: what produces each saved
 * tensor, and what a recompute policy replays in backward (recompute FLOPs in
 * flops.c, time in kernel_time.c). Q, K, V are separate linears (torchtitan's
 * wq, wk, wv); UP is w1 (SwiGLU) or fc1, GATE w3 (SwiGLU only); ATTN is the
 * flash kernel or standard attention's two batched GEMMs, SOFTMAX standard
 * attention's softmax (+ dropout) pass. */
typedef enum {
    ACT_OP_INPUT, /* the layer input: the previous layer's output, never replayed */
    ACT_OP_NORM1,
    ACT_OP_Q,
    ACT_OP_K,
    ACT_OP_V,
    ACT_OP_ROPE,
    ACT_OP_ATTN,
    ACT_OP_SOFTMAX,
    ACT_OP_O,
    ACT_OP_RESID1, /* residual add (+ dropout) after attention */
    ACT_OP_NORM2,
    ACT_OP_UP,
    ACT_OP_GATE,
    ACT_OP_ACT, /* gelu, or silu(w1)*w3 */
    ACT_OP_DOWN,
    ACT_OP_RESID2,
    ACT_OP_COUNT
} act_op;

/* Names of the layer's saved tensors (act_layer_tensors' entries), over every
 * block shape: a custom recompute policy (plan_cfg.recompute_tensors) is a bit
 * mask over this list, bit i = act_tensor_names[i]. */
typedef enum {
    AN_ATTN_NORM_INPUT, AN_ATTN_NORM_STATS, AN_QKV_INPUT, AN_ATTN_Q, AN_ATTN_K, AN_ATTN_V,
    AN_ATTN_OUT, AN_ATTN_LSE, AN_ATTN_K_EXPANDED, AN_ATTN_SOFTMAX, AN_ATTN_DROPOUT_MASK,
    AN_ATTN_DROPOUT_OUT, AN_ATTN_V_EXPANDED, AN_O_INPUT, AN_ATTN_RESID_MASK, AN_MLP_NORM_INPUT,
    AN_MLP_NORM_STATS, AN_W1W3_INPUT, AN_W1_OUT, AN_W3_OUT, AN_W2_INPUT, AN_FC1_INPUT,
    AN_GELU_INPUT, AN_FC2_INPUT, AN_MLP_RESID_MASK, AN_COUNT,
    AN_NONE = 0xff /* first/last-stage extras: not a layer tensor */
} act_name;
extern const char *const act_tensor_names[]; /* AN_COUNT names, NULL-terminated */

/* Which named table policies drop a tensor (act_tensor.drop bits). */
enum {
    ACT_DROP_OP = 1,   /* torchtitan op-level selective AC (docs/memory.md §3, "Recompute policies") */
    ACT_DROP_GELU = 2, /* llm.c -r 1: the activation function's output */
    ACT_DROP_NORM = 4  /* llm.c -r 2 adds the norm outputs (statistics kept) */
};

typedef struct {
    const char *name;     /* e.g. "attn_norm.input" */
    const char *saved_by; /* the op whose backward needs it */
    act_width width;
    act_dtype dtype;
    act_split split;
    bool score;     /* attention-score tensor: dropped by selective recompute */
    bool stat;      /* per-token statistic Korthikanti et al. leave out */
    uint8_t name_id; /* act_name (AN_NONE for the stage extras); act.c maps each name
                        to the act_op producing it, what rebuilding it replays */
    uint8_t drop;    /* ACT_DROP_* bits of the named policies that drop it */
} act_tensor;

#define ACT_MAX_TENSORS 24

/* Tensors one layer saves for backward with no recomputation. Returns count. */
int act_layer_tensors(const model_cfg *m, act_tensor *out);
/* Extra tensors of the first stage (embedding) and of the last (final norm,
 * output head, cross-entropy), per micro-batch. */
int act_first_stage_tensors(const model_cfg *m, act_tensor *out);
int act_last_stage_tensors(const model_cfg *m, act_tensor *out);

/* Does the plan's recompute policy keep tensor `index` of act_layer_tensors()'s
 * list for backward? none: all; selective: all but the attention scores
 * (Korthikanti et al. 2022 §5); full: only the layer input (index 0); op, gelu,
 * gelu+norm: those without the policy's ACT_DROP_* bit; custom: those not in
 * p->recompute_tensors. */
bool act_tensor_kept(const act_tensor *t, int index, const plan_cfg *p);

/* The forward ops (bit i = act_op i) the policy replays in one layer's
 * backward: none; selective: standard attention's core (ATTN, SOFTMAX);
 * full: all; op: all but torchtitan's saved ops (odd-numbered linears, the
 * attention kernel or its batched GEMMs); gelu: ACT; gelu+norm: ACT, NORM1,
 * NORM2; custom: the producers of the named tensors, with the ops whose
 * outputs they need and no table tensor holds (RoPE for q or k, wo for
 * mlp_norm.input, QK^T for the softmax). */
uint32_t act_replay_ops(const model_cfg *m, const plan_cfg *p);

/* Tensors torchtitan's op-level policy caches that no op saves without
 * recompute: outputs of saved ops consumed only by replayed ops (SwiGLU's
 * w2 output, 7th linear, a partial sum over all tokens under TP; under TP +
 * SP the reduce-scatters after wo and w2; standard attention's QK^T scores,
 * kept in place of the dropped softmax). At most ACT_MAX_CACHED; returns the
 * count (0 for every other policy). */
#define ACT_MAX_CACHED 4
int act_cached_tensors(const model_cfg *m, const plan_cfg *p, act_tensor *out);

/* Custom policies. act_name_find: the act_name of `name`, or -1. act_layer_has:
 * does this model's layer save that tensor? act_layer_names: its names,
 * comma-separated, into buf. */
int act_name_find(const char *name);
bool act_layer_has(const model_cfg *m, int name_id);
const char *act_layer_names(const model_cfg *m, char *buf, int len);

/* Bytes of one tensor for one micro-batch on one tp rank. */
int64_t act_tensor_bytes(const model_cfg *m, const plan_cfg *p, const act_tensor *t);

typedef struct {
    int64_t layer_full;      /* one layer, one micro-batch, nothing recomputed */
    int64_t layer_saved;     /* one layer, one micro-batch, after the recompute policy */
    int64_t layer_working;   /* transient: what one layer's recompute rebuilds in backward */
    int64_t first_stage;     /* embedding extras, per micro-batch */
    int64_t last_stage;      /* final norm + head + loss extras, per micro-batch */
} act_bytes;

void act_compute(const model_cfg *m, const plan_cfg *p, act_bytes *out);

/* Layer sets activation offload keeps on the device: the layer computing and
 * the one in transfer (docs/memory.md §3). */
#define ACT_OFFLOAD_ON_DEVICE 2

/* One ring-attention block: K and V of one micro-batch's local tokens on one
 * tp rank. Context parallelism sends it around the ring (comm.c) and double-
 * buffers it and its gradient (eval.c; docs/memory.md §3, §5). */
int64_t act_kv_block_bytes(const model_cfg *m, const plan_cfg *p);

/* Context parallelism's communication buffers while one layer runs (0 when
 * cp = 1). Ring: forward, the block being passed and the one arriving (2 K/V
 * blocks); backward, those and the dK/dV block being passed and arriving (4).
 * All-gather: forward, the gathered K/V (cp blocks); backward, those and the
 * full-length dK/dV before the reduce-scatter (2 cp blocks). */
int64_t act_cp_buffer_bytes(const model_cfg *m, const plan_cfg *p, bool backward);

#endif
