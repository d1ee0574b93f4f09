/* infer.h — memory to serve a model: weights (optionally quantized, with their
 * scale overhead), the KV cache, and the forward pass's working set
 * (docs/memory.md §8). The rule of thumb "inference needs about 2x the
 * parameter count in bytes" is the bf16 weights alone.
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
#define INFER_CONTEXT_MAX (1LL << 24) /* context, prefill chunk (tokens) */
#define INFER_TP_MAX (1LL << 16)
#define INFER_GROUP_MAX (1LL << 20)
#define INFER_BYTES_MAX (1LL << 60)

typedef enum { WQ_BF16, WQ_FP16, WQ_FP8, WQ_INT8, WQ_INT4 } infer_weights;

typedef struct {
    int64_t batch;         /* sequences served at once */
    int64_t context;       /* tokens per sequence held in the KV cache */
    int64_t tp;            /* tensor-parallel GPUs */
    infer_weights weights; /* how the transformer layers' linear weights are stored */
    ps_dtype kv_dtype;     /* KV cache element type (bf16, fp16, fp8) */
    int64_t group_size;    /* int4 quantization group (input elements per scale) */
    int64_t prefill_chunk; /* tokens processed in one forward during prefill */
} infer_cfg;

typedef struct {
    int64_t weights;           /* bytes per GPU, scales included */
    int64_t weight_scales;     /* of which quantization scales / zero points */
    int64_t kv_per_token;      /* bytes per token per GPU, all layers: K and V, or MLA's latent */
    int64_t kv_cache;          /* kv_per_token * batch * context */
    int64_t activations;       /* prefill working set of one layer */
    int64_t logits;            /* fp32 logits of the last token of each sequence */
    int64_t reserved;          /* cluster's reserved bytes */
    int64_t total;
    int64_t capacity;
    bool fits;
    int64_t max_batch;         /* largest batch at this context that fits (0 if none) */
} infer_result;

extern const char *const infer_weights_names[];

/* Bytes per parameter of a quantized linear weight, scales included, for an
 * [out x in] matrix (exposed for tests and docs). */
int64_t infer_linear_bytes(infer_weights w, int64_t out_features, int64_t in_features,
                           int64_t group_size);

/* ic's fields within the limits above and m a checked model. Returns 0, or -1
 * with err when a total exceeds INFER_BYTES_MAX (2^60 bytes). */
int infer_compute(const model_cfg *m, const cluster_cfg *c, const infer_cfg *ic,
                  infer_result *out, ps_err *err);

#endif
