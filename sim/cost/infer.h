/* infer.h — memory to serve a model: weights (optionally quantized, with their
 * scale overhead), the paged KV cache (with prefix caching), the forward pass's
 * live tensors and the logits (docs/memory.md §8). The rule of thumb
 * "inference needs about 2x the parameter count in bytes" is the bf16 weights
 * alone.
 *
 * The runtime's inference engine (runtime/rt_gen.h) stores and allocates
 * exactly what these formulas count (the contract in docs/memory.md §8,
 * "The inference engine"), so `parasim generate` compares its measured
 * memory per category with infer_memory_predict.
 *
 * Tensor parallelism only: a mixture of experts' tp ranks each hold every
 * routed expert split by tp (vLLM's default without expert parallelism), the
 * router in 16 bits; multi-head latent attention caches its latent c_KV and
 * rotary key on every rank.
 */
#ifndef PS_INFER_H
#define PS_INFER_H

#include <stdbool.h>
#include <stdint.h>

#include "spec/cluster.h"
#include "base/dtype.h"
#include "base/err.h"
#include "spec/model.h"

/* Bounds on the serving inputs (docs/specs.md "Limits"; the command line
 * holds them): far above real serving, small enough that the per-token and
 * per-sequence sizes fit in 64 bits. What they still allow to overflow
 * (kv_per_token * batch * context) infer_compute refuses. */
#define INFER_BATCH_MAX (1LL << 24)
#define INFER_CONTEXT_MAX (1LL << 24) /* context, prefill chunk, prefix (tokens) */
#define INFER_TP_MAX (1LL << 16)
#define INFER_GROUP_MAX (1LL << 20)
#define INFER_BLOCK_MAX (1LL << 16) /* KV cache block size (tokens) */
#define INFER_BYTES_MAX (1LL << 60)

/* How the 7 linear weights of each layer (wq wk wv wo w1 w3 w2, or MLA's and
 * the experts' matrices) are stored. The first five are the planner's
 * serving formats; the rest are the runtime's schemes (docs/quantization.md,
 * docs/memory.md §8), named as `parasim generate --weights` names them. */
typedef enum {
    WQ_BF16,           /* 2 B */
    WQ_FP16,           /* 2 B */
    WQ_FP8,            /* 1 B + one fp32 scale per tensor (Transformer Engine, vLLM) */
    WQ_INT8,           /* 1 B + one fp32 scale per output row (LLM.int8() storage) */
    WQ_INT4,           /* 4 bits + per group an fp16 scale and a 4-bit zero (GPTQ) */
    WQ_F32,            /* 4 B; every other tensor in fp32 too */
    WQ_INT8_TENSOR,    /* 1 B + one fp32 absmax per tensor; int8 GEMM */
    WQ_INT8_ZEROPOINT, /* 1 B + one fp32 scale and one fp32 zero per tensor; int8 GEMM */
    WQ_INT8_ROW,       /* 1 B + one fp32 absmax per output row; int8 GEMM */
    WQ_INT8_VECTOR,    /* as int8-row (X per token row); int8 GEMM */
    WQ_INT8_DECOMP,    /* as int8-vector, + LLM.int8() decomposition; dequantizes W */
    WQ_INT8_BLOCK,     /* 1 B + one fp32 absmax per block of group inputs; weight-only */
    WQ_INT4_BLOCK,     /* 4 bits + one fp32 absmax per block of group inputs; weight-only */
    WQ_COUNT
} infer_weights;

/* KV cache element: int8 adds one fp32 absmax per (layer, K/V, token, kv head). */
typedef enum { KV_BF16, KV_FP16, KV_FP8, KV_F32, KV_INT8, KV_COUNT } infer_kv;

typedef struct {
    int64_t batch;         /* sequences served at once */
    int64_t context;       /* tokens per sequence held in the KV cache */
    int64_t tp;            /* tensor-parallel GPUs */
    infer_weights weights; /* how the layers' linear weights are stored */
    infer_kv kv_cache;     /* KV cache element */
    int64_t group_size;    /* inputs per scale of int4 / int8-block / int4-block; 0: the
                            * scheme's default (infer_group_size) */
    int64_t prefill_chunk; /* tokens processed in one forward during prefill */
    int64_t block_size;    /* KV cache tokens per block (vLLM's default 16; 1 = unpaged) */
    int64_t prefix;        /* tokens shared by every sequence (prefix caching), <= context */
    ps_dtype compute;      /* DT_FP32 or DT_BF16: the forward's element (the runtime: fp32) */
} infer_cfg;

typedef struct {
    int64_t weights;       /* bytes per GPU, scales included */
    int64_t weight_scales; /* of which quantization scales / zero points */
    int64_t kv_per_token;  /* bytes per token per GPU, all layers: K and V, or MLA's latent
                            * (int8: with its scales) */
    int64_t kv_block;      /* bytes of one block: kv_per_token * block_size */
    int64_t kv_blocks;     /* blocks held by the batch, shared prefix blocks once */
    int64_t kv_cache;      /* kv_blocks * kv_block */
    int64_t prefix_saved;  /* bytes prefix caching saves: (batch - 1) floor(prefix/bs) blocks */
    int64_t fwd_tokens;    /* largest forward: max(min(prefill_chunk, context), batch) */
    int64_t activations;   /* live tensors of that forward, the two below included */
    int64_t act_quant_input; /* of which the int8 GEMM's quantized input */
    int64_t act_dequant;     /* of which the dequantization buffer */
    int64_t logits;        /* fp32 logits of the last token of each sequence */
    int64_t reserved;      /* cluster's reserved bytes */
    int64_t total;
    int64_t capacity;
    bool fits;
    /* The questions (docs/memory.md §8 "Questions"), each the boundary of `fits`: */
    int64_t max_batch;          /* largest batch at this context that fits, prefix shared
                                 * (0 if none; at most INFER_BATCH_MAX) */
    int64_t max_batch_unshared; /* the same without prefix caching */
    int64_t max_context;        /* longest context >= max(prefix, 1) that fits at this batch
                                 * (0 if none; at most INFER_CONTEXT_MAX) */
    int64_t min_tp;             /* smallest valid tp up to the cluster's GPUs that fits at
                                 * this batch and context (0 if none) */
} infer_result;

/* The runtime's memory per category (runtime/rt_mem.h), per tp rank. */
typedef struct {
    int64_t weights;     /* MEM_PARAMS: stored values of every weight, scales excluded */
    int64_t scales;      /* RT_MEM_SCALES: fp32 scales (and zero points) */
    int64_t kv_cache;    /* RT_MEM_KV: the blocks held */
    int64_t activations; /* MEM_ACTIVATIONS: the largest forward's live tensors */
    int64_t logits;      /* RT_MEM_LOGITS */
} infer_mem;

extern const char *const infer_weights_names[]; /* WQ_* order, NULL-terminated */
extern const char *const infer_kv_names[];      /* KV_* order, NULL-terminated */

/* Defaults of `parasim infer`: batch 1, context 8192, tp 1, bf16 weights and
 * KV cache, group_size 0 (the scheme's), prefill chunk 8192, block 16, no
 * prefix, bf16 compute. */
void infer_cfg_init(infer_cfg *ic);

/* The group size in effect: ic->group_size, or when 0 the scheme's default,
 * 32 for int8-block / int4-block (ggml Q8_0 / Q4_0, the runtime's default) and
 * 128 for int4 (GPTQ). */
int64_t infer_group_size(const infer_cfg *ic);

/* Bytes of a quantized [out x in] linear weight, scales included, with group
 * g (exposed for tests and docs). */
int64_t infer_linear_bytes(infer_weights w, int64_t out_features, int64_t in_features,
                           int64_t group_size);

/* Whether tp can split m: it divides heads, ffn_hidden (where the model has
 * dense layers) and expert_ffn_hidden (a MoE model), and divides or is a
 * multiple of kv_heads (docs/memory.md §8). Returns 0, or -1 with err (may be
 * NULL) naming "--tp", the widths, kv_heads, model_path (when not NULL) and tp. */
int infer_tp_check(const model_cfg *m, int64_t tp, const char *model_path, ps_err *err);

/* For int8-block / int4-block: the group is 32, 64 or 128 and divides every
 * linear's input width on a tp rank (blocks split with the columns). Returns
 * 0, or -1 with err naming "--group-size", the width it does not divide and
 * the group. Other schemes: 0. */
int infer_group_check(const model_cfg *m, const infer_cfg *ic, ps_err *err);

/* ic's fields within the limits above, ic->prefix <= ic->context, tp valid
 * (infer_tp_check, infer_group_check) and m a checked model. Fills every
 * field of out, the questions included. Returns 0, or -1 with err when a
 * total exceeds INFER_BYTES_MAX (2^60 bytes) or the group does not fit. */
int infer_compute(const model_cfg *m, const cluster_cfg *c, const infer_cfg *ic,
                  infer_result *out, ps_err *err);

/* The inference engine's memory per tp rank, by category, as it allocates
 * it (docs/memory.md §8, "The inference engine"), for the runtime
 * comparison (cli/cmd_generate.c):
 *   m:          the model (a checked model_cfg);
 *   ic:         weights (scheme), group_size, kv_cache, tp, block_size and
 *               compute are used; batch, context, prefix and prefill_chunk
 *               are not (the arguments below say them);
 *   seq_tokens: seqs >= 0 sequence lengths n_i (prompt + generated tokens
 *               held in the cache), each >= prefix_tokens;
 *   prefix_tokens: tokens P every sequence shares (prefix caching; 0: none):
 *               floor(P / block_size) full blocks are held once;
 *   fwd_tokens: the largest forward in tokens (>= 0), e.g.
 *               max(min(prefill_chunk, longest prompt), seqs);
 *   out:        weights (values of every tensor, scales excluded), scales,
 *               kv_cache (block_bytes x (floor(P/bs) + sum_i (ceil(n_i/bs)
 *               - floor(P/bs)))), activations of a forward of fwd_tokens,
 *               logits (fp32, seqs x ceil(vocab/tp)).
 * Returns 0, or -1 with err on an invalid tp or group, a sequence shorter
 * than the prefix, a negative count, or a category past 2^60 bytes. */
int infer_memory_predict(const model_cfg *m, const infer_cfg *ic, const int64_t *seq_tokens,
                         int64_t seqs, int64_t prefix_tokens, int64_t fwd_tokens,
                         infer_mem *out, ps_err *err);

#endif
