/* model_hf.c — read a Hugging Face config.json as a model spec.
 *
 * Supported model_type values: llama, mistral, qwen2 (SwiGLU, RMSNorm, RoPE,
 * GQA; Qwen2 has q/k/v biases) and gpt2 (GeLU MLP, LayerNorm, learned
 * positions, biases, tied embeddings). Defaults are those of the matching
 * transformers Config class when a key is absent (rms_norm_eps 1e-6 and
 * rope_theta 10000 for the Llama family, layer_norm_epsilon 1e-5 for GPT-2);
 * keys parasim does not model (initializer_range, rope_scaling, ...) are
 * ignored because a config.json carries many. Attention is taken as flash for the Llama family (SDPA/flash
 * kernels are the transformers default) and standard for GPT-2.
 */
#include <stdio.h>
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
    static const model_keys keys = {.layers = "num_hidden_layers",
                                    .hidden = "hidden_size",
                                    .heads = "num_attention_heads",
                                    .kv_heads = "num_key_value_heads",
                                    .ffn_hidden = "intermediate_size",
                                    .vocab = "vocab_size",
                                    .tied_embeddings = "tie_word_embeddings",
                                    .mlp = "hidden_act",
                                    .bias = "attention_bias",
                                    .dropout = "attention_dropout"};
    model_set_locs(out, root, &keys);
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
    static const model_keys keys = {.layers = "n_layer",
                                    .hidden = "n_embd",
                                    .heads = "n_head",
                                    .kv_heads = "n_head",
                                    .ffn_hidden = "n_inner",
                                    .vocab = "vocab_size",
                                    .max_position = "n_positions",
                                    .tied_embeddings = "tie_word_embeddings",
                                    .position = "n_positions",
                                    .dropout = "resid_pdrop"};
    model_set_locs(out, root, &keys);
    return 0;
}

int model_from_hf(const ynode *root, const char *path, model_spec *out, ps_err *err) {
    static const char *const types[] = {"llama", "mistral", "qwen2", "gpt2", NULL};
    int type = 0;
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    if (yget_enum(root, "", "model_type", true, types, &type, err)) return -1;
    name_from_path(path, out->name, sizeof out->name);
    snprintf(out->source, sizeof out->source, "Hugging Face config.json (%s): %s", types[type],
             path);
    int rc = type == 3 ? read_gpt2(root, out, err) : read_llama(root, out, type == 2, err);
    return rc ? rc : model_check(out, err);
}
