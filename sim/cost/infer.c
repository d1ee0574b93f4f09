/* infer.c — serving memory (see infer.h, docs/memory.md §8). */
#include "cost/infer.h"

#include <stdbool.h>
#include <stddef.h>

#include "cost/params.h"
#include "base/sat_int.h"

const char *const infer_weights_names[] = {"bf16", "fp16", "fp8", "int8", "int4", NULL};

/* Storage of one [out x in] linear weight:
 *   bf16/fp16: 2 bytes per element;
 *   fp8 (E4M3, per-tensor scale as in Transformer Engine / vLLM): 1 byte + one fp32 scale;
 *   int8 (LLM.int8() vector-wise, bitsandbytes): 1 byte + one fp32 scale per output row;
 *   int4 (GPTQ/AWQ group-wise): 4 bits + per group of g inputs an fp16 scale and
 *   a 4-bit zero point, per output row.
 * With scales = 0 only the elements themselves are counted. */
static int64_t linear_bytes(infer_weights w, int64_t out_f, int64_t in_f, int64_t g, int scales) {
    const int64_t n = out_f * in_f;
    const int64_t groups = out_f * ((in_f + g - 1) / g);
    switch (w) {
    case WQ_BF16:
    case WQ_FP16: return 2 * n;
    case WQ_FP8: return n + (scales ? 4 : 0);
    case WQ_INT8: return n + (scales ? 4 * out_f : 0);
    case WQ_INT4: return (n + 1) / 2 + (scales ? groups * 2 + (groups + 1) / 2 : 0);
    }
    return 0;
}

int64_t infer_linear_bytes(infer_weights w, int64_t out_f, int64_t in_f, int64_t g) {
    return linear_bytes(w, out_f, in_f, g, 1);
}

/* Linear weights of one layer on one tp rank: q, k, v, o and the MLP. When tp
 * exceeds kv_heads each rank keeps one whole key/value head (vLLM replicates). */
static int64_t layer_linear_bytes(const model_cfg *m, int64_t tp, infer_weights w, int64_t g,
                                  int scales) {
    const int64_t h = m->hidden, q = model_q_width(m) / tp;
    const int64_t kv = m->kv_heads >= tp ? model_kv_width(m) / tp : m->head_dim;
    const int64_t f = m->ffn_hidden / tp;
    const int64_t ups = m->mlp == MLP_SWIGLU ? 2 : 1;
    return linear_bytes(w, q, h, g, scales) + 2 * linear_bytes(w, kv, h, g, scales) +
           linear_bytes(w, h, q, g, scales) + ups * linear_bytes(w, f, h, g, scales) +
           linear_bytes(w, h, f, g, scales);
}


int infer_compute(const model_cfg *m, const cluster_cfg *c, const infer_cfg *ic,
                  infer_result *out, ps_err *err) {
    const int64_t tp = ic->tp;
    const int64_t kv_heads_rank = m->kv_heads >= tp ? m->kv_heads / tp : 1;
    params_count pc;
    params_count_rank(m, tp, &pc);
    /* everything but the layers' linear weights stays in 16 bits: embeddings,
     * head, norms and biases (GPTQ, AWQ and LLM.int8() keep them) */
    const int64_t rest_elems = pc.total - m->layers * pc.matmul_per_layer;
    const int64_t lin = layer_linear_bytes(m, tp, ic->weights, ic->group_size, 1);
    out->weights = m->layers * lin + 2 * rest_elems;
    out->weight_scales =
        m->layers * (lin - layer_linear_bytes(m, tp, ic->weights, ic->group_size, 0));
    /* within the model's limits (2 * 2^16 layers * 2^20 wide * 4 B = 2^39) */
    out->kv_per_token = 2 * m->layers * kv_heads_rank * m->head_dim * dtype_bytes(ic->kv_dtype);
    const int64_t kv_per_seq = sat_mul(out->kv_per_token, ic->context);
    out->kv_cache = sat_mul(kv_per_seq, ic->batch);
    if (out->kv_cache > INFER_BYTES_MAX)
        return ps_err_set(err,
                          "--batch, --context: KV cache too large: %lld bytes per token x batch "
                          "%lld x context %lld exceeds the limit of 2^60 bytes (1 EiB)",
                          (long long)out->kv_per_token, (long long)ic->batch,
                          (long long)ic->context);
    /* prefill working set of one layer in bf16: residual, norm output, q/k/v,
     * and the MLP's two up projections and their product */
    const int64_t chunk = ic->prefill_chunk < ic->context ? ic->prefill_chunk : ic->context;
    const int64_t width = 2 * m->hidden + model_q_width(m) / tp + 2 * kv_heads_rank * m->head_dim +
                          3 * (m->ffn_hidden / tp);
    out->activations = chunk * width * 2;
    const int64_t logits_per_seq = model_vocab_rows(m, tp) * 4;
    out->logits = ic->batch * logits_per_seq;
    out->reserved = c->gpu_reserved_bytes;
    /* weights <= 2 B x 2^48 parameters, activations and logits <= 2^51: no overflow */
    const int64_t fixed = out->weights + out->activations + out->reserved;
    out->total = sat_add(fixed + out->logits, out->kv_cache);
    if (out->total > INFER_BYTES_MAX)
        return ps_err_set(err, "--batch, --context: memory too large: %lld bytes of KV cache and "
                               "%lld of the rest exceed the limit of 2^60 bytes (1 EiB)",
                          (long long)out->kv_cache, (long long)(fixed + out->logits));
    out->capacity = c->gpu_memory_bytes;
    out->fits = out->total <= out->capacity;
    const int64_t per_seq = kv_per_seq + logits_per_seq; /* both <= 2^60 */
    out->max_batch = fixed >= out->capacity ? 0 : (out->capacity - fixed) / per_seq;
    return 0;
}
