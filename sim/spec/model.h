/* model.h — a decoder-only transformer: its shape, as read from a model spec.
 *
 * model_cfg holds only numbers (cheap to copy into sweeps); model_spec adds
 * the name, the citation and where each field was written, for errors that
 * involve a plan (a tp that does not divide heads names both files).
 */
#ifndef PS_MODEL_H
#define PS_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "spec/ynode.h"

typedef enum { NORM_RMSNORM, NORM_LAYERNORM } model_norm;
typedef enum { MLP_SWIGLU, MLP_GELU } model_mlp;
typedef enum { ATTN_FLASH, ATTN_STANDARD } model_attn;
typedef enum { POS_ROPE, POS_LEARNED } model_pos;
typedef enum { BIAS_NONE, BIAS_ALL, BIAS_QKV } model_bias;

typedef struct {
    int64_t layers, hidden, heads, kv_heads, head_dim, ffn_hidden, vocab;
    int64_t max_position; /* learned position table rows; 0 for rope */
    bool tied_embeddings;
    model_norm norm;
    model_mlp mlp;
    model_attn attention;
    model_pos position;
    model_bias bias;
    double dropout;
    /* ---- Mixture of experts (docs/specs.md "Mixture of experts"; experts 0 = a
     * dense model, and every field below is 0). A MoE layer replaces the dense
     * MLP with a router (experts x hidden, plus `experts` bias terms when
     * router_bias: DeepSeek-V3's e_score_correction_bias), `experts` routed
     * experts of which each token uses experts_per_token, and shared_experts
     * experts every token uses; each expert is an MLP of the model's kind
     * (`mlp`) with expert_ffn_hidden hidden features. The first dense_layers
     * layers keep the dense MLP of ffn_hidden (DeepSeek-V3 first_k_dense_replace). */
    int64_t experts, experts_per_token, shared_experts, expert_ffn_hidden, dense_layers;
    bool router_bias;
    /* Per-head RMSNorm of queries and keys before RoPE (Qwen3's q_norm and
     * k_norm: head_dim weights each per layer, replicated across tp). Not
     * MoE-specific (Qwen3 dense has it too); false = today's attention. */
    bool qk_norm;
    /* ---- Multi-head latent attention (DeepSeek-V2 §2.1; kv_lora_rank 0 =
     * standard multi-head / grouped attention). q_lora_rank 0: the query is
     * projected from the hidden state directly. Per head, queries and keys are
     * qk_nope_head_dim + qk_rope_head_dim wide, values v_head_dim. */
    int64_t q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim, v_head_dim;
    /* ---- Multi-token prediction (DeepSeek-V3 §2.2): MTP modules after the main
     * model, each a projection (2h x h), two norms and one transformer layer of
     * the MoE kind, sharing the embedding and the output head. Counted apart
     * from the main model's parameters (params_count.mtp), as DeepSeek does. */
    int64_t mtp_layers;
} model_cfg;

/* A mixture-of-experts model (experts > 0), and whether layer i (0-based) is a
 * MoE layer. */
static inline bool model_is_moe(const model_cfg *m) { return m->experts > 0; }
static inline bool model_layer_is_moe(const model_cfg *m, int64_t i) {
    return m->experts > 0 && i >= m->dense_layers;
}
/* Layers with a MoE MLP / a dense MLP in the main model. */
static inline int64_t model_moe_layers(const model_cfg *m) {
    return m->experts > 0 ? m->layers - m->dense_layers : 0;
}
static inline bool model_is_mla(const model_cfg *m) { return m->kv_lora_rank > 0; }

typedef struct {
    ps_loc self, layers, hidden, heads, kv_heads, ffn_hidden, vocab, max_position, attention;
    ps_loc tied_embeddings, norm, mlp, position, bias, dropout;
    /* ---- MoE, MLA and MTP fields (an absent key points at the model mapping) */
    ps_loc experts, experts_per_token, shared_experts, expert_ffn_hidden, dense_layers,
        router_bias, qk_norm, q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim,
        v_head_dim, mtp_layers;
} model_locs;

/* Bounds on a model's shape (docs/specs.md "Limits"): far above any real
 * model, and small enough that every product the formulas form (parameters,
 * bytes, FLOPs) fits in 64 bits. heads*head_dim (the query width) is held to
 * MODEL_WIDTH_MAX as hidden is, and the parameter count to MODEL_PARAMS_MAX. */
#define MODEL_LAYERS_MAX (1LL << 16)
#define MODEL_WIDTH_MAX (1LL << 20)  /* hidden, heads*head_dim */
#define MODEL_HEADS_MAX (1LL << 16)  /* heads, kv_heads, head_dim */
#define MODEL_FFN_MAX (1LL << 24)
#define MODEL_VOCAB_MAX (1LL << 24)
#define MODEL_POSITIONS_MAX (1LL << 24)
#define MODEL_PARAMS_MAX (1LL << 48)
/* MoE, MLA and MTP bounds (docs/specs.md "Mixture of experts"): a layer's
 * routed experts together (experts * expert_ffn_hidden) and its shared experts
 * together are held to MODEL_FFN_MAX, as a dense MLP is, and MLA's
 * heads*(qk_nope_head_dim + qk_rope_head_dim) and heads*v_head_dim to
 * MODEL_WIDTH_MAX, so that the counts above still fit in 64 bits. */
#define MODEL_EXPERTS_MAX (1LL << 16)
#define MODEL_MTP_LAYERS_MAX 64

#define MODEL_NAME_MAX 64
/* Defaults of norm_eps and rope_theta for parasim model specs (Hugging Face
 * configs take their transformers class's defaults instead; docs/specs.md). */
#define MODEL_NORM_EPS_DEFAULT 1e-5
#define MODEL_ROPE_THETA_DEFAULT 10000.0
/* Their upper bounds: an epsilon is a small guard (1e-6 .. 1e-5 in practice),
 * RoPE bases run to ~1e7 (Llama 3: 5e5). */
#define MODEL_NORM_EPS_MAX 1.0
#define MODEL_ROPE_THETA_MAX 1e12
#define MODEL_SOURCE_MAX 256

typedef struct {
    char name[MODEL_NAME_MAX];
    char source[MODEL_SOURCE_MAX]; /* citation for the numbers */
    char path[PS_LOC_FILE_MAX];
    model_cfg cfg;
    /* What only the runtime needs (the closed form does not depend on it):
     * the norm's epsilon and the RoPE base. */
    double norm_eps, rope_theta;
    model_locs locs;
} model_spec;

/* Rows of a vocab-parallel table on one of tp ranks: the vocabulary padded up
 * to a multiple of tp, as Megatron-LM pads it (docs/memory.md §1). */
static inline int64_t model_vocab_rows(const model_cfg *m, int64_t tp) {
    return (m->vocab + tp - 1) / tp;
}

/* Query width (heads * head_dim) and key/value width (kv_heads * head_dim). */
static inline int64_t model_q_width(const model_cfg *m) { return m->heads * m->head_dim; }
static inline int64_t model_kv_width(const model_cfg *m) { return m->kv_heads * m->head_dim; }

/* A parasim model spec mapping (a models/ YAML file, or inline in a plan). */
int model_from_node(const ynode *root, const char *path, model_spec *out, ps_err *err);

/* A Hugging Face config.json (llama, mistral, qwen2, gpt2 families). */
int model_from_hf(const ynode *root, const char *path, model_spec *out, ps_err *err);

/* Load either kind of file: a mapping with "model_type" is a Hugging Face config. */
int model_load_file(const char *path, model_spec *out, ps_err *err);

/* A model as a plan names one (`model:`, `distill.teacher`): an inline mapping,
 * or a name or path resolved under models/ relative to the plan at plan_path
 * (spec_path_resolve) and loaded. n is present and not null; field names it in
 * errors ("model", "distill.teacher"). */
int model_from_plan_node(const ynode *n, const char *plan_path, const char *field,
                         model_spec *out, ps_err *err);

/* The keys a spec format uses for the shape fields, so that errors about them
 * point at the right line (NULL: the field is not written in that format). */
typedef struct {
    const char *layers, *hidden, *heads, *kv_heads, *ffn_hidden, *vocab, *max_position,
        *attention;
    const char *tied_embeddings, *norm, *mlp, *position, *bias, *dropout;
    /* ---- MoE, MLA and MTP (model_locs' block, in its order) */
    const char *experts, *experts_per_token, *shared_experts, *expert_ffn_hidden,
        *dense_layers, *router_bias, *qk_norm, *q_lora_rank, *kv_lora_rank, *qk_nope_head_dim,
        *qk_rope_head_dim, *v_head_dim, *mtp_layers;
} model_keys;

/* Record where each shape field was written; an absent key points at root. */
void model_set_locs(model_spec *m, const ynode *root, const model_keys *keys);

/* Read an optional number in (0, max] (norm_eps, rope_theta) into *out. */
int model_read_positive(const ynode *root, const char *key, double max, double *out,
                        ps_err *err);

/* Cross-field checks shared by both readers (head_dim, GQA groups, dropout,
 * the query width and the parameter count against their limits). */
int model_check(model_spec *m, ps_err *err);

extern const char *const model_norm_names[], *const model_mlp_names[],
    *const model_attn_names[], *const model_pos_names[], *const model_bias_names[];

#endif
