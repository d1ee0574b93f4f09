/* rt_gen.h — the inference engine behind `parasim generate`: a trained (or
 * random) Llama-style decoder from an rt_ckpt, its 7 linears per layer in a
 * weight scheme (kern_quant.h; docs/quantization.md), served with a paged KV
 * cache and prefix caching (rt_kv.h) under tensor parallelism over a tp group
 * of MPI ranks; prefill one request at a time in chunks, decode of every live
 * sequence together, greedy or seeded (Gumbel-max) sampling identical for
 * every tp degree. Every byte passes the tracked allocator in the categories
 * of docs/runtime.md ("Inference"): weights MEM_PARAMS, scales RT_MEM_SCALES,
 * KV blocks RT_MEM_KV, forward tensors MEM_ACTIVATIONS, logits RT_MEM_LOGITS,
 * kernel scratch MEM_WORKSPACE.
 */
#ifndef PS_RT_GEN_H
#define PS_RT_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "kern_infer.h"
#include "kern_quant.h"
#include "rt_backend.h"
#include "rt_ckpt.h"
#include "rt_kv.h"
#include "rt_mem.h"

/* ---- weight schemes (the contract's names; rt_gen_scheme.c) ---------------- */
typedef enum {
    RT_W_F32, RT_W_BF16, RT_W_I8_TENSOR, RT_W_I8_ZEROPOINT, RT_W_I8_ROW, RT_W_I8_VECTOR,
    RT_W_I8_DECOMP, RT_W_I8_BLOCK, RT_W_I4_BLOCK, RT_W_COUNT
} rt_wscheme;
extern const char *const *const rt_wscheme_names; /* RT_W_COUNT names, NULL-terminated */
/* -1 when name is none of them */
int rt_wscheme_parse(const char *name);
/* The linears are int8 x int8 GEMMs with a quantized input (tensor, zeropoint, row, vector). */
bool rt_wscheme_int8_gemm(rt_wscheme s);
/* The linears are multiplied from an fp32 copy of the weight (bf16, blocks, decomposition). */
bool rt_wscheme_dequant(rt_wscheme s);
/* How the weights are quantized (false for f32 / bf16). */
bool rt_wscheme_weight_spec(rt_wscheme s, int64_t group, quant_spec *out);
/* The LLM.int8() outlier threshold of int8-decomp. */
#define RT_GEN_DECOMP_THRESHOLD 6.0f

typedef struct {
    rt_wscheme weights;
    int64_t group;         /* block schemes: 32, 64, 128 */
    kern_kv_dtype kv;
    int64_t block_size;    /* tokens per KV block */
    int64_t prefill_chunk; /* most tokens per prefill forward */
    int64_t batch;         /* most sequences live at once */
    int64_t kv_budget_bytes; /* most bytes of KV blocks per rank (0: no budget; rt_gen_run) */
    bool no_cache;         /* recompute every sequence each step (no KV cache) */
    bool prefix_cache;     /* share full blocks of equal prefixes */
    double temperature;    /* 0: greedy */
    uint64_t seed;         /* sampling */
    int64_t outlier_k;     /* --inject-outliers K:SCALE (0: none) */
    double outlier_scale;
    bool teacher;          /* a distillation teacher inside training (docs/runtime.md "Logit
                              distillation"): weights and scales in MEM_TEACHER, forward
                              tensors and logits in MEM_WORKSPACE */
} rt_gen_cfg;

/* One quantized (or plain) linear shard W[R][C]. */
typedef struct {
    int64_t R, C;
    void *w;              /* f32, bf16 or quantized values (MEM_PARAMS) */
    float *scale, *zero;  /* RT_MEM_SCALES (NULL when none) */
    quant_spec qs;
} rt_gen_lin;

enum { RT_LIN_Q, RT_LIN_K, RT_LIN_V, RT_LIN_O, RT_LIN_W1, RT_LIN_W3, RT_LIN_W2, RT_LINS };

typedef struct {
    void *attn_norm, *mlp_norm; /* [h] in the storage dtype */
    rt_gen_lin lin[RT_LINS];
} rt_gen_layer;

typedef struct {
    int64_t prefill_tokens, decode_tokens; /* computed (prefix-cache hits not counted) */
    double prefill_s, decode_s;
    int64_t cached_tokens;                 /* prompt tokens taken from the prefix cache */
    int64_t max_forward_tokens;            /* the largest forward (n of the activations) */
    int64_t max_sampled_rows;              /* the most logits rows at once */
    int64_t max_live;                      /* the most requests live at once */
    int64_t kv_budget_blocks;              /* floor(kv_budget_bytes / block bytes); 0: none */
    /* the KV cache when it held the most blocks */
    int64_t kv_blocks, kv_logical_blocks, kv_shared_blocks, kv_block_bytes;
} rt_gen_stats;

typedef struct rt_gen {
    const rt_backend *be;
    rt_mem *mem;
    rt_group *tp; /* NULL: one rank */
    int tp_size, tp_rank;
    rt_gen_cfg cfg;
    rt_ckpt_model m;
    int64_t L, h, H, KVH, D, f, Vr, vfirst, vvalid; /* this rank's shapes */
    rt_dtype sdt;       /* storage of everything but the linears: bf16, f32 under f32 */
    rt_gen_layer *layers;
    void *wte, *final_norm, *lm_head;
    int64_t cmax;       /* widest input of the rank's linears */
    int64_t deq_elems;  /* the fp32 dequantization buffer (0: none) */
    rt_kv kv;
    rt_gen_stats st;
    /* the memory categories of the weights, the scales, the forward tensors and the
       logits (docs/runtime.md "Inference"; cfg.teacher: those of training) */
    int cat_weights, cat_scales, cat_act, cat_logits;
} rt_gen;

/* Build the engine from the one-rank weights of ck on tp rank `rank` of `size`
 * (tp: the group, NULL when size is 1): quantize each linear whole, keep this
 * rank's shard. 0, or -1 with err (a shape tp does not divide, a group size that
 * does not divide a shard, out of memory). */
int rt_gen_init(rt_gen *g, const rt_ckpt *ck, const rt_gen_cfg *cfg, const rt_backend *be,
                rt_mem *mem, rt_group *tp, int size, int rank, ps_err *err);
void rt_gen_free(rt_gen *g);

/* Requests: tokens[n] (the prefix already prepended), max_new tokens to generate. */
typedef struct {
    const int32_t *tokens;
    int64_t n, max_new;
    int32_t *out; /* [max_new]: the generated tokens (caller's) */
} rt_gen_request;

/* Serve the requests (at most cfg.batch at once, in order). Under a KV budget
 * (cfg.kv_budget_bytes) the next request waits until the blocks it will hold
 * for its whole life, ceil((n + max_new - 1) / block_size) less those the
 * prefix cache gives it now, fit beside the blocks held and still to come of
 * the live ones (vLLM's admission by free blocks): the cache never passes
 * kv_budget_blocks. 0, or -1 with err (a request that alone needs more blocks
 * than the budget, refused before any work; out of memory, a failed collective). */
int rt_gen_run(rt_gen *g, rt_gen_request *req, int64_t n_req, ps_err *err);
/* Blocks a request holds at its end: ceil((n + max_new - 1) / block_size). */
int64_t rt_gen_request_blocks(const rt_gen *g, const rt_gen_request *r);

/* Eval mode: the model over consecutive windows of window tokens of text[n]
 * (the last one shorter), predicting each next token. nll: the summed negative
 * log-likelihood (nats); kl: with ref (the f32 model), the summed
 * KL(p_ref || p_this) (nats); *count: predicted tokens. 0 or -1 with err. */
int rt_gen_eval(rt_gen *g, rt_gen *ref, const int32_t *text, int64_t n, int64_t window,
                double *nll, double *kl, int64_t *count, ps_err *err);

/* ---- weights (rt_gen_weights.c) ------------------------------------------- */
/* Random weights for model m: N(0, 0.02) matrices, 0.02/sqrt(2L) for wo and w2,
 * norms 1 (rt_model_init_values' rule), from a counter-based hash of (seed, index).
 * 0 or -1 (out of host memory). */
int rt_gen_ckpt_random(rt_ckpt *ck, const rt_ckpt_model *m, uint64_t seed);
/* --inject-outliers: K hidden channels (chosen by a fixed seed) of the norms times
 * scale, the matching input columns of wq, wk, wv, w1, w3 and lm_head divided by it
 * (function-preserving; LLM.int8() §4's outlier features). 0, or -1 out of host memory. */
int rt_gen_inject_outliers(rt_ckpt *ck, int64_t k, double scale);
/* Check that model m can be served at tp `size` with cfg (divisibility); 0 or -1 with err. */
int rt_gen_check(const rt_ckpt_model *m, const rt_gen_cfg *cfg, int size, ps_err *err);
int rt_gen_load(rt_gen *g, const rt_ckpt *ck, ps_err *err);

/* ---- one forward (rt_gen_fwd.c) ------------------------------------------- */
/* A run of rows of one sequence: rows [row, row + n) at positions p0 .. p0 + n - 1;
 * seq: its cache (NULL: no cache, the rows are the whole sequence from position 0). */
typedef struct {
    rt_kv_seq *seq;
    int64_t row, p0, n;
} rt_gen_seg;
/* Forward of n tokens; logits[n_out][Vr] (RT_MEM_LOGITS, allocated here, the caller
 * frees it) of the rows out_rows. 0 or -1 with err. */
int rt_gen_fwd(rt_gen *g, const int32_t *tokens, int64_t n, const rt_gen_seg *segs,
               int64_t n_segs, const int64_t *out_rows, int64_t n_out, float **logits,
               ps_err *err);

#endif
