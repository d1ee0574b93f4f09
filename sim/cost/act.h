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

typedef struct {
    const char *name;     /* e.g. "attn_norm.input" */
    const char *saved_by; /* the op whose backward needs it */
    act_width width;
    act_dtype dtype;
    act_split split;
    bool score;     /* attention-score tensor: dropped by selective recompute */
    bool stat;      /* per-token statistic Korthikanti et al. leave out */
} act_tensor;

#define ACT_MAX_TENSORS 24

/* Tensors one layer saves for backward with no recomputation. Returns count. */
int act_layer_tensors(const model_cfg *m, act_tensor *out);
/* Extra tensors of the first stage (embedding) and of the last (final norm,
 * output head, cross-entropy), per micro-batch. */
int act_first_stage_tensors(const model_cfg *m, act_tensor *out);
int act_last_stage_tensors(const model_cfg *m, act_tensor *out);

/* Does the recompute policy keep tensor `index` of act_layer_tensors()'s list
 * for backward? none: all; selective: all but the attention scores
 * (Korthikanti et al. 2022 §5); full: only the layer input (index 0). */
bool act_tensor_kept(const act_tensor *t, int index, plan_recompute rc);

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

/* The ring's communication buffers while one layer runs (0 when cp = 1):
 * forward, the block being passed and the one arriving (2 K/V blocks);
 * backward, those and the dK/dV block being passed and arriving (4). */
int64_t act_cp_ring_buffer_bytes(const model_cfg *m, const plan_cfg *p, bool backward);

#endif
