/* infer.c — serving memory (see infer.h, docs/memory.md §8). */
#include "cost/infer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cost/kv_blocks.h"
#include "cost/params.h"
#include "base/sat_int.h"

const char *const infer_weights_names[] = {
    "bf16",       "fp16",       "fp8",        "int8",           "int4",
    "f32",        "int8-tensor", "int8-zeropoint", "int8-row", "int8-vector",
    "int8-decomp", "int8-block", "int4-block", NULL};
const char *const infer_kv_names[] = {"bf16", "fp16", "fp8", "f32", "int8", NULL};

void infer_cfg_init(infer_cfg *ic) {
    *ic = (infer_cfg){.batch = 1, .context = 8192, .tp = 1, .weights = WQ_BF16,
                      .kv_cache = KV_BF16, .group_size = 0, .prefill_chunk = 8192,
                      .block_size = 16, .prefix = 0, .compute = DT_BF16};
}

static bool scheme_is_block(infer_weights w) { return w == WQ_INT8_BLOCK || w == WQ_INT4_BLOCK; }

int64_t infer_group_size(const infer_cfg *ic) {
    if (ic->group_size) return ic->group_size;
    return scheme_is_block(ic->weights) ? 32 : 128;
}

static int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

/* How a linear of the scheme is multiplied (docs/memory.md §8, "The
 * inference engine"): a float weight directly when it is stored in the
 * compute element, else through the dequantization buffer; an int8 GEMM
 * (fp8, int8, int8-tensor/-zeropoint/-row/-vector) on the quantized input;
 * weight-only schemes (int4, int8-decomp, int8-block, int4-block) dequantize
 * W into the buffer. */
typedef enum { MM_FLOAT, MM_QINPUT, MM_DEQUANT } mm_path;

static mm_path scheme_path(infer_weights w) {
    switch (w) {
    case WQ_BF16:
    case WQ_FP16:
    case WQ_F32: return MM_FLOAT;
    case WQ_FP8:
    case WQ_INT8:
    case WQ_INT8_TENSOR:
    case WQ_INT8_ZEROPOINT:
    case WQ_INT8_ROW:
    case WQ_INT8_VECTOR: return MM_QINPUT;
    default: return MM_DEQUANT;
    }
}

/* Storage of one [rows x cols] linear weight shard (docs/memory.md §8,
 * "Weights"), its values and its scales in bytes:
 *   f32 4 B, bf16/fp16 2 B per element;
 *   fp8 (E4M3, Transformer Engine / vLLM) 1 B + one fp32 scale;
 *   int8-tensor 1 B + one fp32 absmax; int8-zeropoint + one fp32 zero too;
 *   int8, int8-row, -vector, -decomp 1 B + one fp32 scale per row (the
 *     shard's rows: a row-parallel shard keeps them all);
 *   int4 (GPTQ/AWQ) 4 bits + per group of g inputs of a row an fp16 scale
 *     and a 4-bit zero;
 *   int8-block / int4-block (ggml Q8_0 / Q4_0, fp32 scales) 1 B / 4 bits +
 *     one fp32 absmax per block of g inputs of a row.
 * 4-bit values are packed two per byte: ceil(rows cols / 2). */
static void linear_bytes(infer_weights w, int64_t rows, int64_t cols, int64_t g,
                         int64_t *values, int64_t *scales) {
    const int64_t n = rows * cols, groups = rows * ceil_div(cols, g);
    *scales = 0;
    switch (w) {
    case WQ_F32: *values = 4 * n; return;
    case WQ_BF16:
    case WQ_FP16: *values = 2 * n; return;
    case WQ_FP8:
    case WQ_INT8_TENSOR: *values = n, *scales = 4; return;
    case WQ_INT8_ZEROPOINT: *values = n, *scales = 8; return;
    case WQ_INT8:
    case WQ_INT8_ROW:
    case WQ_INT8_VECTOR:
    case WQ_INT8_DECOMP: *values = n, *scales = 4 * rows; return;
    case WQ_INT4: *values = ceil_div(n, 2), *scales = 2 * groups + ceil_div(groups, 2); return;
    case WQ_INT8_BLOCK: *values = n, *scales = 4 * groups; return;
    case WQ_INT4_BLOCK: *values = ceil_div(n, 2), *scales = 4 * groups; return;
    case WQ_COUNT: break;
    }
    *values = 0;
}

int64_t infer_linear_bytes(infer_weights w, int64_t out_f, int64_t in_f, int64_t g) {
    int64_t v, s;
    linear_bytes(w, out_f, in_f, g, &v, &s);
    return v + s;
}

/* One linear weight shape on a tp rank, `count` of them in the model. */
typedef struct {
    int64_t rows, cols, count;
} linear_shape;
#define LINEAR_SHAPES_MAX 16

static int add_mlp(linear_shape *s, int n, const model_cfg *m, int64_t f, int64_t count) {
    if (!count || !f) return n;
    s[n++] = (linear_shape){f, m->hidden, (m->mlp == MLP_SWIGLU ? 2 : 1) * count};
    s[n++] = (linear_shape){m->hidden, f, count};
    return n;
}

/* The linear weights of the model on one tp rank, as the shards' shapes
 * (rows = output features): attention's q, k, v (column-parallel: heads/tp
 * of the rows), o (row-parallel: every row, q/tp inputs); when tp exceeds
 * kv_heads each rank keeps one whole key/value head (vLLM replicates). MLA
 * (DeepSeek-V2 §2.1; vLLM DeepseekV2MLAAttention): the down projections q_a
 * (h -> r_q) and kv_a (h -> r_kv + d_r) whole (replicated), the up
 * projections q_b and kv_b split by heads, o split by heads (row-parallel);
 * without r_q the query is one h -> heads projection. A dense MLP of
 * ffn_hidden / tp: w1, w3 (or fc1) and w2. A MoE layer (docs/memory.md §8):
 * the shared experts as one MLP of shared_experts * expert_ffn_hidden / tp
 * (vLLM's DeepseekV2MoE.shared_experts) and every routed expert split by tp
 * (vLLM's FusedMoE without expert parallelism). The router is not here: it
 * stays 16-bit. Returns the number of shapes. */
static int linear_shapes(const model_cfg *m, int64_t tp, linear_shape *s) {
    const int64_t h = m->hidden, L = m->layers, moe = model_moe_layers(m);
    int n = 0;
    if (model_is_mla(m)) {
        const int64_t nh = m->heads / tp, r_q = m->q_lora_rank;
        const int64_t qk = m->qk_nope_head_dim + m->qk_rope_head_dim;
        if (r_q) {
            s[n++] = (linear_shape){r_q, h, L};
            s[n++] = (linear_shape){nh * qk, r_q, L};
        } else
            s[n++] = (linear_shape){nh * qk, h, L};
        s[n++] = (linear_shape){m->kv_lora_rank + m->qk_rope_head_dim, h, L};
        s[n++] = (linear_shape){nh * (m->qk_nope_head_dim + m->v_head_dim), m->kv_lora_rank, L};
        s[n++] = (linear_shape){h, nh * m->v_head_dim, L};
    } else {
        const int64_t q = model_q_width(m) / tp;
        const int64_t kv = m->kv_heads >= tp ? model_kv_width(m) / tp : m->head_dim;
        s[n++] = (linear_shape){q, h, L};
        s[n++] = (linear_shape){kv, h, 2 * L};
        s[n++] = (linear_shape){h, q, L};
    }
    n = add_mlp(s, n, m, m->ffn_hidden / tp, L - moe);
    if (moe) {
        const int64_t fe = m->expert_ffn_hidden / tp;
        n = add_mlp(s, n, m, m->shared_experts * fe, moe);
        n = add_mlp(s, n, m, fe, moe * m->experts);
    }
    return n;
}

/* Bias elements of one MLP of f features on a rank (params.c's layout: the
 * up projections' biases split, the down projection's replicated). */
static int64_t mlp_bias(const model_cfg *m, int64_t f) {
    return m->bias == BIAS_ALL ? (m->mlp == MLP_SWIGLU ? 2 : 1) * f + m->hidden : 0;
}

/* Elements on one tp rank outside the linear weights, kept in 16 bits (fp32
 * under f32): params_count's less its matmul weights — outside the layers
 * (embedding, position table, final norm, head: vocab-parallel, ceil(V/tp)
 * rows), per layer its norms and biases; a MoE layer swaps the dense MLP's
 * biases for the router (kept 16-bit, as vLLM builds the gate unquantized),
 * the shared experts' biases and every routed expert's biases split by tp. */
static int64_t rest_elems(const model_cfg *m, int64_t tp) {
    params_count pc;
    params_count_rank(m, tp, &pc);
    const int64_t moe = model_moe_layers(m), dense = m->layers - moe;
    const int64_t dense_rest = pc.layer - pc.matmul_per_layer;
    int64_t rest = pc.total - params_layers(m, &pc, 0, m->layers) + dense * dense_rest;
    if (moe) {
        const int64_t fe = m->expert_ffn_hidden / tp;
        rest += moe * (dense_rest - mlp_bias(m, m->ffn_hidden / tp) + pc.router +
                       (m->shared_experts ? mlp_bias(m, m->shared_experts * fe) : 0) +
                       m->experts * mlp_bias(m, fe));
    }
    return rest;
}

/* Forward bytes per token of one layer on a rank, every tensor live at once
 * (docs/memory.md §8, "Activations"), e bytes per element:
 *   x, xn, o (the residual, the norm output, a row-parallel output): 3h;
 *   attention: q, k, v, att (q/t, a_kv/t heads of d_h, at least one); with
 *     MLA the latents c_Q (r_q) and c_KV + k^R (r_kv + d_r), the per-head q
 *     and k (d_n + d_r), v (d_v) prefill decompresses and att (d_v);
 *   a dense MLP: a and b, 2f/t (SwiGLU's two up projections, the product
 *     written over a; GeLU's fc1 output and its activation);
 *   a MoE MLP: the router's scores (fp32, E) and the top-k ids and weights
 *     (int32 + fp32, k) — 4E + 8k bytes whatever e —, k dispatched rows per
 *     token each holding its input copy, a, b and its output before the
 *     weighted combine, k(2h + 2 f_e/t), and the shared experts' a and b,
 *     2 S f_e/t.
 * A layer is the larger of the MLP kinds the model has. */
static int64_t act_bytes_per_token(const model_cfg *m, int64_t tp, int64_t e) {
    const int64_t h = m->hidden;
    int64_t attn;
    if (model_is_mla(m)) {
        const int64_t qk = m->qk_nope_head_dim + m->qk_rope_head_dim;
        attn = m->q_lora_rank + m->kv_lora_rank + m->qk_rope_head_dim +
               m->heads / tp * (2 * qk + 2 * m->v_head_dim);
    } else {
        const int64_t kv_heads_rank = m->kv_heads >= tp ? m->kv_heads / tp : 1;
        attn = 2 * model_q_width(m) / tp + 2 * kv_heads_rank * m->head_dim;
    }
    const int64_t base = e * (3 * h + attn);
    const int64_t dense_mlp = e * 2 * (m->ffn_hidden / tp);
    if (!model_moe_layers(m)) return base + dense_mlp;
    const int64_t fe = m->expert_ffn_hidden / tp, k = m->experts_per_token;
    const int64_t moe_mlp = 4 * m->experts + 8 * k +
                            e * (k * (2 * h + 2 * fe) + 2 * m->shared_experts * fe);
    return base + (m->dense_layers && dense_mlp > moe_mlp ? dense_mlp : moe_mlp);
}

/* What one tp rank holds that does not depend on the batch or the context. */
typedef struct {
    int64_t values, scales;  /* weights: stored values of every tensor; scales */
    int64_t kv_per_token;    /* KV cache bytes per token, all layers */
    int64_t act_per_token;   /* forward bytes per token (act_bytes_per_token) */
    int64_t qin_per_token;   /* int8 GEMM input: C_max int8 + a scale and a zero */
    int64_t dequant;         /* the dequantization buffer */
    int64_t logits_per_seq;  /* fp32 over ceil(V/tp) */
} rank_sizes;

static void rank_sizes_compute(const model_cfg *m, const infer_cfg *ic, rank_sizes *r) {
    const int64_t tp = ic->tp, g = infer_group_size(ic), e = dtype_bytes(ic->compute);
    linear_shape s[LINEAR_SHAPES_MAX];
    const int n = linear_shapes(m, tp, s);
    const mm_path path = scheme_path(ic->weights);
    const int64_t rest_bytes = ic->weights == WQ_F32 ? 4 : 2;
    /* a float linear (stored as the rest is) needs the buffer when its element
     * is not the compute one */
    const bool linear_dequant = path == MM_DEQUANT || (path == MM_FLOAT && rest_bytes != e);
    int64_t values = 0, scales = 0, c_max = 0, dequant_elems = 0;
    for (int i = 0; i < n; i++) {
        int64_t v, sc;
        linear_bytes(ic->weights, s[i].rows, s[i].cols, g, &v, &sc);
        values += s[i].count * v;
        scales += s[i].count * sc;
        if (s[i].cols > c_max) c_max = s[i].cols;
        if (linear_dequant && s[i].rows * s[i].cols > dequant_elems)
            dequant_elems = s[i].rows * s[i].cols;
    }
    /* the head (lm_head, or the tied embedding) in 16 bits is dequantized too */
    const int64_t head = model_vocab_rows(m, tp) * m->hidden;
    if (rest_bytes != e && head > dequant_elems) dequant_elems = head;
    r->values = values + rest_bytes * rest_elems(m, tp);
    r->scales = scales;
    r->qin_per_token = path == MM_QINPUT ? c_max + 8 : 0;
    r->dequant = e * dequant_elems;
    r->act_per_token = act_bytes_per_token(m, tp, e);
    /* KV cache per token (docs/memory.md §8): K and V of kv_heads / tp heads
     * (one whole head when tp exceeds kv_heads); with MLA the latent c_KV and
     * the shared rotary key k^R, replicated on every tp rank (DeepSeek-V2
     * §2.1.2, Table 1: (d_c + d_h^R) l elements per token), int8 with one
     * fp32 absmax per (layer, K/V, token, kv head) — MLA's latent is one
     * head. Within the model's limits (2 * 2^16 layers * 2^20 wide * 8 B). */
    static const int64_t kv_elem[KV_COUNT] = {2, 2, 1, 4, 1};
    const int64_t kv_scale = ic->kv_cache == KV_INT8 ? 4 : 0;
    const int64_t kv_heads_rank = m->kv_heads >= tp ? m->kv_heads / tp : 1;
    r->kv_per_token =
        model_is_mla(m)
            ? m->layers * ((m->kv_lora_rank + m->qk_rope_head_dim) * kv_elem[ic->kv_cache] + kv_scale)
            : m->layers * 2 * kv_heads_rank * (m->head_dim * kv_elem[ic->kv_cache] + kv_scale);
    r->logits_per_seq = model_vocab_rows(m, tp) * 4;
}

/* Activations of a forward of n tokens: the live tensors, the quantized
 * input and the dequantization buffer. */
static int64_t act_bytes(const rank_sizes *r, int64_t n, int64_t *qin) {
    *qin = sat_mul(n, r->qin_per_token);
    return sat_add(sat_add(sat_mul(n, r->act_per_token), *qin), r->dequant);
}

int infer_tp_check(const model_cfg *m, int64_t tp, const char *model_path, ps_err *err) {
    const bool has_dense = !model_is_moe(m) || m->dense_layers > 0;
    if (tp >= 1 && !(m->heads % tp) && !(has_dense && m->ffn_hidden % tp) &&
        !(model_is_moe(m) && m->expert_ffn_hidden % tp) && !(m->kv_heads % tp && tp % m->kv_heads))
        return 0;
    if (!err) return -1;
    char widths[160];
    int n = snprintf(widths, sizeof widths, "heads = %lld", (long long)m->heads);
    if (has_dense)
        n += snprintf(widths + n, sizeof widths - (size_t)n, "%s ffn_hidden = %lld",
                      model_is_moe(m) ? "," : " and", (long long)m->ffn_hidden);
    if (model_is_moe(m))
        snprintf(widths + n, sizeof widths - (size_t)n, " and expert_ffn_hidden = %lld",
                 (long long)m->expert_ffn_hidden);
    return ps_err_set(err,
                      "--tp: expected a divisor of %s that divides or is a multiple of "
                      "kv_heads = %lld%s%s%s, found %lld",
                      widths, (long long)m->kv_heads, model_path ? " (" : "",
                      model_path ? model_path : "", model_path ? ")" : "", (long long)tp);
}

int infer_group_check(const model_cfg *m, const infer_cfg *ic, ps_err *err) {
    if (!scheme_is_block(ic->weights)) return 0;
    const int64_t g = infer_group_size(ic);
    if (g != 32 && g != 64 && g != 128)
        return ps_err_set(err, "--group-size: expected 32, 64 or 128 for --weights %s, found %lld",
                          infer_weights_names[ic->weights], (long long)g);
    linear_shape s[LINEAR_SHAPES_MAX];
    const int n = linear_shapes(m, ic->tp, s);
    for (int i = 0; i < n; i++)
        if (s[i].cols % g)
            return ps_err_set(err,
                              "--group-size: expected a block dividing every linear's inputs on a "
                              "tp rank (blocks split with the columns), found %lld, which does not "
                              "divide %lld (a %lld x %lld shard at tp %lld)",
                              (long long)g, (long long)s[i].cols, (long long)s[i].rows,
                              (long long)s[i].cols, (long long)ic->tp);
    return 0;
}

/* What both entry points need of ic beyond the command line's bounds: the
 * tp split, the block size, the compute element and the group. */
static int cfg_check(const model_cfg *m, const infer_cfg *ic, ps_err *err) {
    if (infer_tp_check(m, ic->tp, NULL, err)) return -1;
    if (ic->block_size < 1 || ic->block_size > INFER_BLOCK_MAX)
        return ps_err_set(err, "--block-size: expected an integer from 1 to %lld, found %lld",
                          INFER_BLOCK_MAX, (long long)ic->block_size);
    if (ic->compute != DT_FP32 && ic->compute != DT_BF16)
        return ps_err_set(err, "--compute: expected f32 or bf16, found %s",
                          ic->compute >= 0 && ic->compute < DT_COUNT ? dtype_names[ic->compute]
                                                                     : "an unknown dtype");
    if (ic->weights < 0 || ic->weights >= WQ_COUNT || ic->kv_cache < 0 || ic->kv_cache >= KV_COUNT)
        return ps_err_set(err, "--weights, --kv-cache: expected a scheme of infer_weights_names "
                               "and a kind of infer_kv_names, found %d and %d",
                          (int)ic->weights, (int)ic->kv_cache);
    return infer_group_check(m, ic, err);
}

/* Total bytes on a rank serving batch sequences of context tokens sharing
 * prefix (saturating). */
static int64_t total_at(const rank_sizes *r, const cluster_cfg *c, const infer_cfg *ic,
                        int64_t batch, int64_t context, int64_t prefix) {
    const int64_t blocks = kv_blocks_uniform(batch, context, prefix, ic->block_size);
    const int64_t chunk = ic->prefill_chunk < context ? ic->prefill_chunk : context;
    int64_t qin;
    const int64_t act = act_bytes(r, chunk > batch ? chunk : batch, &qin);
    int64_t t = sat_add(r->values, r->scales);
    t = sat_add(t, sat_mul(blocks, sat_mul(r->kv_per_token, ic->block_size)));
    t = sat_add(t, act);
    t = sat_add(t, sat_mul(batch, r->logits_per_seq));
    return sat_add(t, c->gpu_reserved_bytes);
}

/* What a question searches: the batch (prefix shared or not) or the context. */
typedef enum { SEARCH_BATCH, SEARCH_BATCH_UNSHARED, SEARCH_CONTEXT } search_kind;

typedef struct {
    const rank_sizes *r;
    const cluster_cfg *c;
    const infer_cfg *ic;
    search_kind kind;
} search_ctx;

static bool search_fits(const search_ctx *s, int64_t x) {
    const infer_cfg *ic = s->ic;
    const int64_t t =
        s->kind == SEARCH_CONTEXT ? total_at(s->r, s->c, ic, ic->batch, x, ic->prefix)
                                  : total_at(s->r, s->c, ic, x, ic->context,
                                             s->kind == SEARCH_BATCH ? ic->prefix : 0);
    return t <= s->c->gpu_memory_bytes;
}

/* The largest x in [lo, hi] that fits, by bisection: every total is monotone
 * in the batch and in the context (>= prefix). lo - 1 when none fits. */
static int64_t search_largest(const search_ctx *s, int64_t lo, int64_t hi) {
    while (lo <= hi) {
        const int64_t x = lo + (hi - lo) / 2;
        if (search_fits(s, x)) lo = x + 1;
        else hi = x - 1;
    }
    return hi;
}

int infer_compute(const model_cfg *m, const cluster_cfg *c, const infer_cfg *ic,
                  infer_result *out, ps_err *err) {
    if (cfg_check(m, ic, err)) return -1;
    if (ic->prefix < 0 || ic->prefix > ic->context)
        return ps_err_set(err, "--prefix: expected at most the context, %lld tokens, found %lld",
                          (long long)ic->context, (long long)ic->prefix);
    rank_sizes r;
    rank_sizes_compute(m, ic, &r);
    const int64_t bs = ic->block_size;
    out->weights = r.values + r.scales;
    out->weight_scales = r.scales;
    out->kv_per_token = r.kv_per_token;
    out->kv_block = sat_mul(r.kv_per_token, bs);
    out->kv_blocks = kv_blocks_uniform(ic->batch, ic->context, ic->prefix, bs);
    out->kv_cache = sat_mul(out->kv_blocks, out->kv_block);
    /* the cache without prefix caching is bounded too, so the saving is */
    const int64_t unshared = sat_mul(kv_blocks_uniform(ic->batch, ic->context, 0, bs), out->kv_block);
    if (unshared > INFER_BYTES_MAX)
        return ps_err_set(err,
                          "--batch, --context: KV cache too large: %lld bytes per token x batch "
                          "%lld x context %lld exceeds the limit of 2^60 bytes (1 EiB)",
                          (long long)out->kv_per_token, (long long)ic->batch,
                          (long long)ic->context);
    out->prefix_saved = unshared - out->kv_cache;
    const int64_t chunk = ic->prefill_chunk < ic->context ? ic->prefill_chunk : ic->context;
    out->fwd_tokens = chunk > ic->batch ? chunk : ic->batch;
    out->activations = act_bytes(&r, out->fwd_tokens, &out->act_quant_input);
    out->act_dequant = r.dequant;
    out->logits = ic->batch * r.logits_per_seq;
    out->reserved = c->gpu_reserved_bytes;
    /* weights <= 4 B x 2^48 parameters, logits <= 2^51, activations < 2^63
     * (a MoE layer's k*h*chunk reaches 2^62): saturating sums */
    const int64_t rest = sat_add(sat_add(sat_add(out->weights, out->activations), out->reserved),
                                 out->logits);
    out->total = sat_add(rest, out->kv_cache);
    if (out->total > INFER_BYTES_MAX)
        return ps_err_set(err, "--batch, --context: memory too large: %lld bytes of KV cache and "
                               "%lld of the rest exceed the limit of 2^60 bytes (1 EiB)",
                          (long long)out->kv_cache, (long long)rest);
    out->capacity = c->gpu_memory_bytes;
    out->fits = out->total <= out->capacity;
    /* The questions (docs/memory.md §8 "Questions"). */
    search_ctx q = {&r, c, ic, SEARCH_BATCH};
    out->max_batch = search_largest(&q, 1, INFER_BATCH_MAX);
    q.kind = SEARCH_BATCH_UNSHARED;
    out->max_batch_unshared = search_largest(&q, 1, INFER_BATCH_MAX);
    q.kind = SEARCH_CONTEXT;
    const int64_t ctx_lo = ic->prefix > 1 ? ic->prefix : 1;
    out->max_context = search_largest(&q, ctx_lo, INFER_CONTEXT_MAX);
    if (out->max_context < ctx_lo) out->max_context = 0;
    out->min_tp = 0;
    const int64_t gpus = cluster_gpus(c) < INFER_TP_MAX ? cluster_gpus(c) : INFER_TP_MAX;
    for (int64_t tp = 1; tp <= gpus && !out->min_tp; tp++) {
        infer_cfg t = *ic;
        t.tp = tp;
        if (infer_tp_check(m, tp, NULL, NULL) || infer_group_check(m, &t, NULL)) continue;
        rank_sizes rt;
        rank_sizes_compute(m, &t, &rt);
        if (total_at(&rt, c, &t, ic->batch, ic->context, ic->prefix) <= out->capacity)
            out->min_tp = tp;
    }
    return 0;
}

int infer_memory_predict(const model_cfg *m, const infer_cfg *ic, const int64_t *seq_tokens,
                         int64_t seqs, int64_t prefix_tokens, int64_t fwd_tokens, infer_mem *out,
                         ps_err *err) {
    if (cfg_check(m, ic, err)) return -1;
    if (seqs < 0 || prefix_tokens < 0 || fwd_tokens < 0)
        return ps_err_set(err, "sequences, prefix and forward tokens: expected counts >= 0, "
                               "found %lld, %lld and %lld",
                          (long long)seqs, (long long)prefix_tokens, (long long)fwd_tokens);
    for (int64_t i = 0; i < seqs; i++)
        if (seq_tokens[i] < prefix_tokens)
            return ps_err_set(err, "sequence %lld: expected at least the %lld shared prefix "
                                   "tokens, found %lld",
                              (long long)i, (long long)prefix_tokens, (long long)seq_tokens[i]);
    rank_sizes r;
    rank_sizes_compute(m, ic, &r);
    int64_t qin;
    out->weights = r.values;
    out->scales = r.scales;
    out->kv_cache = sat_mul(kv_blocks_held(seq_tokens, seqs, prefix_tokens, ic->block_size),
                            sat_mul(r.kv_per_token, ic->block_size));
    out->activations = act_bytes(&r, fwd_tokens, &qin);
    out->logits = sat_mul(seqs, r.logits_per_seq);
    if (out->kv_cache > INFER_BYTES_MAX || out->activations > INFER_BYTES_MAX ||
        out->logits > INFER_BYTES_MAX)
        return ps_err_set(err, "memory too large: KV cache %lld, activations %lld, logits %lld "
                               "bytes; the limit is 2^60 bytes (1 EiB)",
                          (long long)out->kv_cache, (long long)out->activations,
                          (long long)out->logits);
    return 0;
}
