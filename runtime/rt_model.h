/* rt_model.h — the Llama-style decoder the runtime trains, one unit at a
 * time (the program's units: "embed", "layer.i", "head").
 *
 * Each forward saves exactly the tensors act.h lists for a flash-attention
 * RMSNorm/SwiGLU block (attn_norm.input, its 1/rms, q/k/v after RoPE, the
 * attention output and log-sum-exp, ...), in the plan's activation dtype,
 * through the tracked allocator as MEM_ACTIVATIONS, and its backward frees
 * them; so the measured activation memory is the predicted one tensor by
 * tensor. Compute is fp32; bf16 storage is converted at the edges (weights
 * and saved tensors to fp32 workspace, gradients rounded back), so a
 * bf16-mixed plan keeps bf16 bytes where the plan says bf16.
 *
 * The hidden state passes from one unit's forward to the next as a
 * workspace block that the consumer adopts as its saved input; the gradient
 * passes backward as an fp32 workspace block.
 */
#ifndef PS_RT_MODEL_H
#define PS_RT_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "program/program.h"
#include "rt_backend.h"
#include "rt_mem.h"
#include "rt_tp.h"

/* Offsets of one layer's tensors inside its unit, in elements. */
typedef struct {
    int64_t attn_norm, wq, wk, wv, wo, mlp_norm, w1, w3, w2;
    /* a MoE layer (program_is_moe; docs/plan-format.md §2): w1, w3, w2 are the shared
     * experts' MLP, then the router [experts][h] and the held routed experts, each
     * w1, w3 [expert_ffn][h] and w2 [h][expert_ffn] (expert_elems apart); 0 when dense */
    int64_t router, experts, expert_elems, experts_held;
    int64_t elems;
} rt_layer_layout;

/* How tensor parallelism splits a layer tensor: replicated, by rows
 * (column-parallel: output features) or by columns (row-parallel: input
 * features). */
typedef enum { RT_SPLIT_REPL, RT_SPLIT_ROWS, RT_SPLIT_COLS } rt_split;
typedef struct {
    rt_split how;
    int64_t rows, cols; /* the whole (one-rank) tensor */
} rt_layer_tensor;

/* A layer's tensors in their flat order: attn_norm, wq, wk, wv, wo,
 * mlp_norm, w1, w3, w2 (rt_layer_layout's offsets are of their tp shards). */
#define RT_LAYER_TENSORS 9
void rt_model_layer_tensors(const program *p, rt_layer_tensor t[RT_LAYER_TENSORS]);
/* Rows *R and columns *C of t's shard on one of tp ranks. */
static inline void rt_layer_tensor_shard(const rt_layer_tensor *t, int64_t tp, int64_t *R,
                                         int64_t *C) {
    *R = t->how == RT_SPLIT_ROWS ? t->rows / tp : t->rows;
    *C = t->how == RT_SPLIT_COLS ? t->cols / tp : t->cols;
}

#define RT_SAVED_MAX 32

typedef struct {
    void *t[RT_SAVED_MAX]; /* saved blocks (tracked), NULL when absent */
    int n;
    float *stash; /* zero-bubble: the layer's GEMM output gradients, from B until W (workspace) */
} rt_saved;

struct rt_ring;

typedef struct rt_model {
    const rt_backend *be;
    rt_mem *mem;
    /* shape: H, KVH, f are this tp rank's heads, kv heads and MLP width; V its
     * vocabulary columns that are real (rt_tp_vocab_range); T and N = B * T this
     * rank's tokens of a micro-batch (seq / cp per sequence), Nl those of the
     * norm regions (N / tp under sequence parallelism, else N) */
    int64_t L, h, H, KVH, D, f, V, B, T, N, Nl;
    const program *p;
    rt_tp tp;
    /* context parallelism (rt_ring.h; NULL when cp = 1): the ring, and the
     * global positions of this rank's T rows */
    struct rt_ring *ring;
    const int64_t *pos;
    float eps, theta;
    rt_dtype act_dt, param_dt, grad_dt;
    int64_t units, micro_batches;
    rt_layer_layout lay;
    int64_t embed_elems, head_elems; /* parameters of the first and last unit */
    /* per (unit, micro-batch) saved tensors, and the streams between units */
    rt_saved *saved;   /* [units * micro_batches] */
    void **hidden;     /* [micro_batches]: output of the last forward (workspace) */
    float **dhidden;   /* [micro_batches]: gradient for the next backward (workspace) */
    int32_t *tokens, *targets; /* [micro_batches][N]: this step's batch (workspace-free: staged
                                  by the executor from the data loader) */
    float loss_scale;          /* d(loss)/d(token loss): 1 / tokens in the global batch */
    double loss_sum;           /* sum of token losses this rank computed since reset */
    /* mixture of experts (program_is_moe): E experts, K per token, fe features each,
     * cap rows per expert per micro-batch, El held here (E / ep); aux_alpha the
     * load-balancing loss's weight, aux_sum its values this rank computed since reset
     * (in token-loss units: each micro-batch's loss times N, so that it joins the
     * cross-entropy sum's 1 / tokens scaling as 1 / micro-batches); ep the expert-
     * parallel group (NULL: one rank holds every expert) and where its all-to-alls
     * are counted */
    int64_t E, K, fe, cap, El;
    float aux_alpha;
    double aux_sum;
    rt_group *ep;
    rt_coll_stat *ep_stats;
    /* logit distillation (program.distill; docs/runtime.md "Logit distillation"): the
     * teacher (the inference engine on this rank's tp group; NULL until the program's
     * alloc of the teacher ran) and the loss's T, alpha, top_k */
    struct rt_gen *teacher;
    kern_kd_cfg kd;
    /* per-op workspace, freed at the op's end */
    void *tmp[64];
    int n_tmp;
} rt_model;

/* The global unit a role's unit name stands for: "embed" 0, "layer.i" i + 1,
 * "head" L + 1; -1 for anything else (a bad number included). */
int32_t rt_model_global_unit(const program *p, const char *name);

/* The expert-parallel hook (ep > 1): the ep group and where its all-to-alls are
 * counted; call after rt_model_init. */
void rt_model_set_ep(rt_model *m, rt_group *g, rt_coll_stat *stats);

/* Elements of unit u (0 embed, 1..L layers, L+1 head): one tp rank's shard
 * (the program header's tp; params.c's counts). */
int64_t rt_model_unit_elems(const program *p, int64_t unit);
void rt_model_layer_layout(const program *p, rt_layer_layout *out);
/* The one-rank model's layer (tp 1, every expert). */
void rt_model_full_layout(const program *p, rt_layer_layout *out);
/* Where unit u (0 embed, 1..L layers, L+1 head) starts in the one-rank
 * model's flat space (the index space of rt_model_init_values). */
int64_t rt_model_full_offset(const program *p, int64_t unit);

int rt_model_init(rt_model *m, const program *p, const rt_backend *be, rt_mem *mem,
                  ps_err *err);
void rt_model_free(rt_model *m);

/* The tensor-parallel hook: the tp group (its rank is this rank's tp rank)
 * and where its collectives are counted. Call after rt_model_init when the
 * program's tp > 1. */
void rt_model_set_tp(rt_model *m, rt_group *g, rt_coll_stat *stats);

/* Deterministic initial value of flat parameter i of the one-rank model
 * (independent of sharding; rt_tp_init_values maps a tp shard's elements):
 * N(0, 0.02) for matrices, 0.02/sqrt(2L) for wo and w2 (GPT-2's scaled
 * residual init), 1 for norm weights, 0 for the padding. Fills out[0..n) with
 * elements [first, first + n) as fp32. */
void rt_model_init_values(const program *p, uint64_t seed, int64_t first, int64_t n, float *out);

/* Forward of unit for micro-batch mb with the unit's weights w (dtype wdt).
 * save: keep the saved tensors (false under full recompute: only the layer
 * input stays). Returns 0 or -1 (out of memory) with err set. */
int rt_model_fwd(rt_model *m, int64_t unit, int64_t mb, const void *w, rt_dtype wdt, bool save,
                 ps_err *err);
/* Backward: accumulates the unit's weight gradient into g (dtype gdt, the
 * unit's slice of the gradient buffer). recompute: rebuild the forward's
 * tensors first (full recomputation). */
int rt_model_bwd(rt_model *m, int64_t unit, int64_t mb, const void *w, rt_dtype wdt, void *g,
                 rt_dtype gdt, bool recompute, ps_err *err);
/* The same for one part of a layer's backward (zero-bubble, Qi et al. 2023):
 * BWD_INPUT computes the input gradient and the norm weights' gradients, and
 * keeps the saved tensors and the GEMMs' output gradients (the stash,
 * workspace); BWD_WEIGHT then computes the GEMMs' weight gradients from them
 * and frees both. BWD_ALL is rt_model_bwd. The embedding and the head run
 * whole. */
int rt_model_bwd_part(rt_model *m, int64_t unit, int64_t mb, const void *w, rt_dtype wdt,
                      void *g, rt_dtype gdt, bool recompute, prog_bwd_part part, ps_err *err);

#endif
