/* model_hf.c — read a Hugging Face config.json as a model spec.
 *
 * Supported model_type values: llama, mistral, qwen2, qwen3 (SwiGLU, RMSNorm,
 * RoPE, GQA; Qwen2 has q/k/v biases, Qwen3 per-head q/k norms), gpt2 (GeLU
 * MLP, LayerNorm, learned positions, biases, tied embeddings), and the
 * mixtures of experts mixtral, qwen3_moe, deepseek_v2 and deepseek_v3 (MLA,
 * MTP); MoE variants parasim cannot express (qwen2_moe, gpt_oss, ...) are
 * refused with the reason rather than miscounted (docs/specs.md). Defaults are those of the matching
 * transformers Config class when a key is absent (rms_norm_eps 1e-6 and
 * rope_theta 10000 for the Llama family, layer_norm_epsilon 1e-5 for GPT-2);
 * keys parasim does not model (initializer_range, rope_scaling, ...) are
 * ignored because a config.json carries many. Attention is taken as flash for the Llama family (SDPA/flash
 * kernels are the transformers default) and standard for GPT-2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/model.h"
#include "spec/yget.h"

static void name_from_path(const char *path, char *buf, int len) {
    /* ".../Meta-Llama-3-8B/config.json" -> "Meta-Llama-3-8B" */
    char tmp[PS_LOC_FILE_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *slash = strrchr(tmp, '/');
    if (slash) {
        *slash = 0;
        char *prev = strrchr(tmp, '/');
        snprintf(buf, (size_t)len, "%.63s", prev ? prev + 1 : tmp);
    } else {
        snprintf(buf, (size_t)len, "%s", "hf-model");
    }
}

/* The Llama family's keys (llama, mistral, qwen2, qwen3, and the attention and
 * dense-MLP keys of mixtral, qwen3_moe and deepseek); the caller records
 * where they were written. */
static int read_llama(const ynode *root, model_spec *out, int is_qwen2, ps_err *err) {
    model_cfg *c = &out->cfg;
    bool attn_bias = false, mlp_bias = false;
    double dropout = 0;
    char act[32] = "silu";
    c->tied_embeddings = false;
    out->norm_eps = 1e-6; /* LlamaConfig, MistralConfig, Qwen2Config */
    out->rope_theta = 10000.0;
    if (yget_int(root, "", "num_hidden_layers", true, 1, MODEL_LAYERS_MAX, &c->layers, err) ||
        yget_int(root, "", "hidden_size", true, 1, MODEL_WIDTH_MAX, &c->hidden, err) ||
        yget_int(root, "", "num_attention_heads", true, 1, MODEL_HEADS_MAX, &c->heads, err) ||
        yget_int(root, "", "intermediate_size", true, 1, MODEL_FFN_MAX, &c->ffn_hidden, err) ||
        yget_int(root, "", "vocab_size", true, 1, MODEL_VOCAB_MAX, &c->vocab, err) ||
        yget_int(root, "", "head_dim", false, 1, MODEL_HEADS_MAX, &c->head_dim, err) ||
        yget_bool(root, "", "tie_word_embeddings", false, &c->tied_embeddings, err) ||
        yget_bool(root, "", "attention_bias", false, &attn_bias, err) ||
        yget_bool(root, "", "mlp_bias", false, &mlp_bias, err) ||
        yget_quantity(root, "", "attention_dropout", false, UNIT_NONE, 0, &dropout, err) ||
        yget_str(root, "", "hidden_act", false, act, sizeof act, err) ||
        model_read_positive(root, "rms_norm_eps", MODEL_NORM_EPS_MAX, &out->norm_eps, err) ||
        model_read_positive(root, "rope_theta", MODEL_ROPE_THETA_MAX, &out->rope_theta, err))
        return -1;
    c->kv_heads = c->heads;
    if (yget_int(root, "", "num_key_value_heads", false, 1, MODEL_HEADS_MAX, &c->kv_heads, err))
        return -1;
    if (strcmp(act, "silu") && strcmp(act, "swish")) {
        const ynode *n = ynode_get(root, "hidden_act");
        return ps_err_at(err, &n->loc, "hidden_act",
                         "expected silu (a SwiGLU MLP) for this model_type, found \"%s\"", act);
    }
    c->mlp = MLP_SWIGLU;
    c->norm = NORM_RMSNORM;
    c->position = POS_ROPE;
    c->attention = ATTN_FLASH;
    c->dropout = dropout;
    c->bias = (attn_bias && mlp_bias) ? BIAS_ALL : (attn_bias || is_qwen2) ? BIAS_QKV : BIAS_NONE;
    return 0;
}

static int read_gpt2(const ynode *root, model_spec *out, ps_err *err) {
    model_cfg *c = &out->cfg;
    double dropout = 0.1;
    c->tied_embeddings = true;
    c->ffn_hidden = 0;
    out->norm_eps = 1e-5; /* GPT2Config.layer_norm_epsilon */
    out->rope_theta = MODEL_ROPE_THETA_DEFAULT; /* unused: learned positions */
    if (yget_int(root, "", "n_layer", true, 1, MODEL_LAYERS_MAX, &c->layers, err) ||
        yget_int(root, "", "n_embd", true, 1, MODEL_WIDTH_MAX, &c->hidden, err) ||
        yget_int(root, "", "n_head", true, 1, MODEL_HEADS_MAX, &c->heads, err) ||
        yget_int(root, "", "n_inner", false, 1, MODEL_FFN_MAX, &c->ffn_hidden, err) ||
        yget_int(root, "", "vocab_size", true, 1, MODEL_VOCAB_MAX, &c->vocab, err) ||
        yget_int(root, "", "n_positions", true, 1, MODEL_POSITIONS_MAX, &c->max_position, err) ||
        yget_bool(root, "", "tie_word_embeddings", false, &c->tied_embeddings, err) ||
        yget_quantity(root, "", "resid_pdrop", false, UNIT_NONE, 0, &dropout, err) ||
        model_read_positive(root, "layer_norm_epsilon", MODEL_NORM_EPS_MAX, &out->norm_eps,
                            err))
        return -1;
    if (!c->ffn_hidden) c->ffn_hidden = 4 * c->hidden;
    c->kv_heads = c->heads;
    c->mlp = MLP_GELU;
    c->norm = NORM_LAYERNORM;
    c->position = POS_LEARNED;
    c->attention = ATTN_STANDARD;
    c->bias = BIAS_ALL;
    c->dropout = dropout;
    return 0;
}

/* ---- Mixture-of-experts families (docs/specs.md "Hugging Face config.json") */

/* An optional integer key that must equal want when present (a layout knob
 * parasim has one value for: moe_layer_freq, decoder_sparse_step). */
static int require_int(const ynode *root, const char *key, int64_t want, const char *why,
                       ps_err *err) {
    int64_t v = want;
    if (yget_int(root, "", key, false, INT64_MIN, INT64_MAX, &v, err)) return -1;
    if (v != want)
        return ps_err_at(err, &ynode_get(root, key)->loc, key, "expected %lld (%s), found %lld",
                         (long long)want, why, (long long)v);
    return 0;
}

/* Mixtral (transformers MixtralSparseMoeBlock): every layer is a MoE layer of
 * num_local_experts experts of intermediate_size, a router without bias. */
static int read_mixtral(const ynode *root, model_cfg *c, ps_err *err) {
    c->expert_ffn_hidden = c->ffn_hidden;
    return yget_int(root, "", "num_local_experts", true, 1, MODEL_EXPERTS_MAX, &c->experts,
                    err) ||
                   yget_int(root, "", "num_experts_per_tok", true, 1, MODEL_EXPERTS_MAX,
                            &c->experts_per_token, err)
               ? -1
               : 0;
}

/* Qwen3-MoE (transformers Qwen3MoeDecoderLayer): layer i is sparse when it is
 * not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0. parasim
 * expresses dense layers only as the first dense_layers, so the dense layers
 * must be 0 .. k-1; q_norm and k_norm per head. num_experts 0: dense. */
static int read_qwen3_moe(const ynode *root, model_cfg *c, ps_err *err) {
    int64_t step = 1;
    const ynode *only = ynode_get(root, "mlp_only_layers");
    char found[128];
    c->qk_norm = true;
    if (yget_int(root, "", "num_experts", true, 0, MODEL_EXPERTS_MAX, &c->experts, err) ||
        yget_int(root, "", "decoder_sparse_step", false, 1, MODEL_LAYERS_MAX, &step, err))
        return -1;
    if (!c->experts) return 0;
    if (yget_int(root, "", "num_experts_per_tok", true, 1, MODEL_EXPERTS_MAX,
                 &c->experts_per_token, err) ||
        yget_int(root, "", "moe_intermediate_size", true, 1, MODEL_FFN_MAX,
                 &c->expert_ffn_hidden, err))
        return -1;
    if (step != 1 && step <= c->layers)
        return ps_err_at(err, &ynode_get(root, "decoder_sparse_step")->loc,
                         "decoder_sparse_step",
                         "expected 1 (parasim's dense layers are only the first dense_layers; "
                         "a step > 1 interleaves dense and MoE layers), found %lld",
                         (long long)step);
    if (step > c->layers) { /* no layer is sparse: a dense model */
        c->experts = c->experts_per_token = c->expert_ffn_hidden = 0;
        return 0;
    }
    if (!only || only->kind == YN_NULL) return 0;
    if (only->kind != YN_SEQ)
        return ps_err_at(err, &only->loc, "mlp_only_layers",
                         "expected a list of layer indices, found %s",
                         ynode_describe(only, found, sizeof found));
    /* the listed layers below num_hidden_layers must be exactly 0 .. k-1 */
    unsigned char *dense = calloc((size_t)c->layers, 1);
    if (!dense) return ps_err_at(err, &only->loc, "mlp_only_layers", "out of memory");
    int64_t max_dense = -1;
    const ynode *max_item = NULL;
    for (int j = 0; j < only->n; j++) {
        int64_t idx;
        if (yget_node_int(only->items[j], "mlp_only_layers", 0, INT64_MAX, &idx, err)) {
            free(dense);
            return -1;
        }
        if (idx >= c->layers) continue; /* transformers never asks about it */
        dense[idx] = 1;
        if (idx > max_dense) max_dense = idx, max_item = only->items[j];
    }
    int64_t gap = 0;
    while (gap < max_dense && dense[gap]) gap++;
    free(dense);
    if (gap < max_dense)
        return ps_err_at(err, &max_item->loc, "mlp_only_layers",
                         "expected the dense layers to be the first ones (0, 1, ..., k-1: "
                         "parasim's dense_layers), found layer %lld listed but not layer %lld",
                         (long long)max_dense, (long long)gap);
    c->dense_layers = max_dense + 1;
    return 0;
}

/* DeepSeek-V2 / V3 (the DeepseekV2/V3 transformers classes and DeepSeek's own
 * modeling_deepseek.py): multi-head latent attention, first_k_dense_replace
 * dense layers then MoE layers of n_routed_experts plus n_shared_experts
 * experts of moe_intermediate_size; V3's router has e_score_correction_bias
 * (topk_method noaux_tc) and its checkpoint num_nextn_predict_layers MTP
 * modules. head_dim is ignored (DeepseekV3Config sets it to the rope width);
 * parasim's is qk_nope_head_dim + qk_rope_head_dim. */
static int read_deepseek(const ynode *root, model_cfg *c, bool v3, ps_err *err) {
    c->head_dim = 0;
    c->router_bias = v3;
    if (yget_int(root, "", "n_routed_experts", true, 1, MODEL_EXPERTS_MAX, &c->experts, err) ||
        yget_int(root, "", "num_experts_per_tok", true, 1, MODEL_EXPERTS_MAX,
                 &c->experts_per_token, err) ||
        yget_int(root, "", "n_shared_experts", false, 0, MODEL_EXPERTS_MAX, &c->shared_experts,
                 err) ||
        yget_int(root, "", "moe_intermediate_size", true, 1, MODEL_FFN_MAX,
                 &c->expert_ffn_hidden, err) ||
        yget_int(root, "", "first_k_dense_replace", false, 0, MODEL_LAYERS_MAX,
                 &c->dense_layers, err) ||
        require_int(root, "moe_layer_freq", 1,
                    "parasim's MoE layers are every layer after the dense ones", err) ||
        yget_int(root, "", "q_lora_rank", false, 1, MODEL_WIDTH_MAX, &c->q_lora_rank, err) ||
        yget_int(root, "", "kv_lora_rank", true, 1, MODEL_WIDTH_MAX, &c->kv_lora_rank, err) ||
        yget_int(root, "", "qk_nope_head_dim", true, 1, MODEL_HEADS_MAX, &c->qk_nope_head_dim,
                 err) ||
        yget_int(root, "", "qk_rope_head_dim", true, 1, MODEL_HEADS_MAX, &c->qk_rope_head_dim,
                 err) ||
        yget_int(root, "", "v_head_dim", true, 1, MODEL_HEADS_MAX, &c->v_head_dim, err) ||
        yget_int(root, "", "num_nextn_predict_layers", false, 0, MODEL_MTP_LAYERS_MAX,
                 &c->mtp_layers, err))
        return -1;
    return 0;
}

/* MoE model types parasim refuses rather than miscount, with the reason. */
static const struct {
    const char *type, *why;
} refused_types[] = {
    {"qwen2_moe", "its shared expert has its own width (shared_expert_intermediate_size) and a "
                  "sigmoid gate (shared_expert_gate), which parasim's shared_experts do not "
                  "express"},
    {"gpt_oss", "its experts have biases, its attention sinks and alternating sliding-window "
                "layers are not expressed by parasim's model spec"},
    {"deepseek_v32", "its sparse-attention indexer is not expressed by parasim's model spec"},
};

/* The keys the Llama family of Hugging Face configs shares (llama, mistral,
 * qwen2/3 and their MoE variants, deepseek_v2/v3). */
#define HF_LLAMA_FAMILY_KEYS                                                                   \
    .layers = "num_hidden_layers", .hidden = "hidden_size", .heads = "num_attention_heads",   \
    .kv_heads = "num_key_value_heads", .ffn_hidden = "intermediate_size",                     \
    .vocab = "vocab_size", .tied_embeddings = "tie_word_embeddings", .mlp = "hidden_act",     \
    .bias = "attention_bias", .dropout = "attention_dropout"

int model_from_hf(const ynode *root, const char *path, model_spec *out, ps_err *err) {
    enum { T_LLAMA, T_MISTRAL, T_QWEN2, T_GPT2, T_QWEN3, T_MIXTRAL, T_QWEN3_MOE, T_DSV3, T_DSV2 };
    static const char *const types[] = {"llama",  "mistral",   "qwen2",       "gpt2",
                                        "qwen3",  "mixtral",   "qwen3_moe",   "deepseek_v3",
                                        "deepseek_v2", NULL};
    static const model_keys llama_keys = {HF_LLAMA_FAMILY_KEYS,
                                       .experts = "num_local_experts",
                                       .experts_per_token = "num_experts_per_tok",
                                       .expert_ffn_hidden = "intermediate_size"};
    static const model_keys qwen3_moe_keys = {HF_LLAMA_FAMILY_KEYS,
                                       .experts = "num_experts",
                                       .experts_per_token = "num_experts_per_tok",
                                       .expert_ffn_hidden = "moe_intermediate_size",
                                       .dense_layers = "mlp_only_layers"};
    static const model_keys deepseek_keys = {HF_LLAMA_FAMILY_KEYS,
                                       .experts = "n_routed_experts",
                                       .experts_per_token = "num_experts_per_tok",
                                       .shared_experts = "n_shared_experts",
                                       .expert_ffn_hidden = "moe_intermediate_size",
                                       .dense_layers = "first_k_dense_replace",
                                       .q_lora_rank = "q_lora_rank",
                                       .kv_lora_rank = "kv_lora_rank",
                                       .qk_nope_head_dim = "qk_nope_head_dim",
                                       .qk_rope_head_dim = "qk_rope_head_dim",
                                       .v_head_dim = "v_head_dim",
                                       .mtp_layers = "num_nextn_predict_layers"};
    static const model_keys gpt2_keys = {.layers = "n_layer",
                                         .hidden = "n_embd",
                                         .heads = "n_head",
                                         .kv_heads = "n_head",
                                         .ffn_hidden = "n_inner",
                                         .vocab = "vocab_size",
                                         .max_position = "n_positions",
                                         .tied_embeddings = "tie_word_embeddings",
                                         .position = "n_positions",
                                         .dropout = "resid_pdrop"};
    int type = 0, rc;
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    const ynode *mt = ynode_get(root, "model_type");
    for (size_t i = 0; mt && mt->kind == YN_SCALAR && i < sizeof refused_types / sizeof *refused_types;
         i++)
        if (!strcmp(mt->str, refused_types[i].type))
            return ps_err_at(err, &mt->loc, "model_type",
                             "model_type \"%s\" is not supported: %s (supported: llama, "
                             "mistral, qwen2, qwen3, gpt2, mixtral, qwen3_moe, deepseek_v2, "
                             "deepseek_v3)",
                             mt->str, refused_types[i].why);
    if (yget_enum(root, "", "model_type", true, types, &type, err)) return -1;
    name_from_path(path, out->name, sizeof out->name);
    snprintf(out->source, sizeof out->source, "Hugging Face config.json (%s): %s", types[type],
             path);
    model_cfg *c = &out->cfg;
    const model_keys *keys = &llama_keys;
    switch (type) {
    case T_GPT2:
        rc = read_gpt2(root, out, err);
        keys = &gpt2_keys;
        break;
    case T_MIXTRAL:
        rc = read_llama(root, out, 0, err) || read_mixtral(root, c, err);
        break;
    case T_QWEN3_MOE:
        rc = read_llama(root, out, 0, err) || read_qwen3_moe(root, c, err);
        keys = &qwen3_moe_keys;
        break;
    case T_DSV3:
    case T_DSV2:
        rc = read_llama(root, out, 0, err) || read_deepseek(root, c, type == T_DSV3, err);
        keys = &deepseek_keys;
        break;
    default:
        rc = read_llama(root, out, type == T_QWEN2, err);
        c->qk_norm = type == T_QWEN3;
        break;
    }
    if (rc) return -1;
    model_set_locs(out, root, keys);
    return model_check(out, err);
}
