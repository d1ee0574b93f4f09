/* model_load.c — read a parasim model spec (a YAML file in models/) into a model_spec.
 *
 * Every field the memory model depends on is required: a guessed block shape
 * is exactly how estimators go wrong. Only head_dim (default hidden/heads),
 * max_position (required for learned positions), the descriptive fields
 * source/description, and the mixture-of-experts, latent-attention and MTP
 * block (absent: a dense model with standard attention; its fields are
 * required together, model_check) are optional.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "spec/model.h"
#include "cost/params.h"
#include "spec/spec_path.h"
#include "spec/yget.h"

const char *const model_norm_names[] = {"rmsnorm", "layernorm", NULL};
const char *const model_mlp_names[] = {"swiglu", "gelu", NULL};
const char *const model_attn_names[] = {"flash", "standard", NULL};
const char *const model_pos_names[] = {"rope", "learned", NULL};
const char *const model_bias_names[] = {"false", "true", "qkv", NULL};

static const char *const spec_keys[] = {
    "name",  "layers",  "hidden",   "heads",     "kv_heads",        "head_dim",
    "ffn_hidden", "vocab", "tied_embeddings", "norm", "mlp", "attention",
    "dropout", "position", "max_position", "bias", "norm_eps", "rope_theta",
    "source", "description",
    /* MoE, MLA and MTP (docs/specs.md "Mixture of experts") */
    "experts", "experts_per_token", "shared_experts", "expert_ffn_hidden", "dense_layers",
    "router_bias", "qk_norm", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
    "qk_rope_head_dim", "v_head_dim", "mtp_layers", NULL};

static void set_loc(ps_loc *loc, const ynode *map, const char *key) {
    const ynode *n = key ? ynode_get(map, key) : NULL;
    *loc = n ? n->loc : map->loc;
}

void model_set_locs(model_spec *m, const ynode *root, const model_keys *k) {
    model_locs *l = &m->locs;
    l->self = root->loc;
    set_loc(&l->layers, root, k->layers);
    set_loc(&l->hidden, root, k->hidden);
    set_loc(&l->heads, root, k->heads);
    set_loc(&l->kv_heads, root, k->kv_heads);
    set_loc(&l->ffn_hidden, root, k->ffn_hidden);
    set_loc(&l->vocab, root, k->vocab);
    set_loc(&l->max_position, root, k->max_position);
    set_loc(&l->attention, root, k->attention);
    set_loc(&l->tied_embeddings, root, k->tied_embeddings);
    set_loc(&l->norm, root, k->norm);
    set_loc(&l->mlp, root, k->mlp);
    set_loc(&l->position, root, k->position);
    set_loc(&l->bias, root, k->bias);
    set_loc(&l->dropout, root, k->dropout);
    set_loc(&l->experts, root, k->experts);
    set_loc(&l->experts_per_token, root, k->experts_per_token);
    set_loc(&l->shared_experts, root, k->shared_experts);
    set_loc(&l->expert_ffn_hidden, root, k->expert_ffn_hidden);
    set_loc(&l->dense_layers, root, k->dense_layers);
    set_loc(&l->router_bias, root, k->router_bias);
    set_loc(&l->qk_norm, root, k->qk_norm);
    set_loc(&l->q_lora_rank, root, k->q_lora_rank);
    set_loc(&l->kv_lora_rank, root, k->kv_lora_rank);
    set_loc(&l->qk_nope_head_dim, root, k->qk_nope_head_dim);
    set_loc(&l->qk_rope_head_dim, root, k->qk_rope_head_dim);
    set_loc(&l->v_head_dim, root, k->v_head_dim);
    set_loc(&l->mtp_layers, root, k->mtp_layers);
}

/* A real number in (0, max] (norm_eps, rope_theta), left untouched when absent. */
int model_read_positive(const ynode *root, const char *key, double max, double *out,
                        ps_err *err) {
    const ynode *n = ynode_get(root, key);
    if (yget_quantity(root, "", key, false, UNIT_NONE, 0, out, err)) return -1;
    if (n && n->kind != YN_NULL && !(*out > 0))
        return ps_err_at(err, &n->loc, key, "expected a positive number, found %s", n->str);
    if (n && n->kind != YN_NULL && !(*out <= max))
        return ps_err_at(err, &n->loc, key, "expected a positive number up to %g, found %s", max,
                         n->str);
    return 0;
}

/* bias accepts a YAML boolean or "qkv". */
static int read_bias(const ynode *root, model_bias *out, ps_err *err) {
    const ynode *n = ynode_get(root, "bias");
    bool b;
    if (n && n->kind == YN_SCALAR && !strcmp(n->str, "qkv")) {
        *out = BIAS_QKV;
        return 0;
    }
    if (n && n->kind == YN_SCALAR && n->plain &&
        strcmp(n->str, "true") && strcmp(n->str, "false") && strcmp(n->str, "yes") &&
        strcmp(n->str, "no"))
        return ps_err_at(err, &n->loc, "bias", "expected true, false or qkv, found \"%s\"",
                         n->str);
    if (yget_bool(root, "", "bias", true, &b, err)) return -1;
    *out = b ? BIAS_ALL : BIAS_NONE;
    return 0;
}

/* The optional MoE, MLA and MTP fields (absent: 0 / false, a dense model with
 * standard attention); model_check relates them. */
static int read_moe(const ynode *root, model_cfg *c, ps_err *err) {
    return yget_int(root, "", "experts", false, 0, MODEL_EXPERTS_MAX, &c->experts, err) ||
                   yget_int(root, "", "experts_per_token", false, 1, MODEL_EXPERTS_MAX,
                            &c->experts_per_token, err) ||
                   yget_int(root, "", "shared_experts", false, 0, MODEL_EXPERTS_MAX,
                            &c->shared_experts, err) ||
                   yget_int(root, "", "expert_ffn_hidden", false, 1, MODEL_FFN_MAX,
                            &c->expert_ffn_hidden, err) ||
                   yget_int(root, "", "dense_layers", false, 0, MODEL_LAYERS_MAX,
                            &c->dense_layers, err) ||
                   yget_bool(root, "", "router_bias", false, &c->router_bias, err) ||
                   yget_bool(root, "", "qk_norm", false, &c->qk_norm, err) ||
                   yget_int(root, "", "q_lora_rank", false, 0, MODEL_WIDTH_MAX, &c->q_lora_rank,
                            err) ||
                   yget_int(root, "", "kv_lora_rank", false, 0, MODEL_WIDTH_MAX,
                            &c->kv_lora_rank, err) ||
                   yget_int(root, "", "qk_nope_head_dim", false, 1, MODEL_HEADS_MAX,
                            &c->qk_nope_head_dim, err) ||
                   yget_int(root, "", "qk_rope_head_dim", false, 1, MODEL_HEADS_MAX,
                            &c->qk_rope_head_dim, err) ||
                   yget_int(root, "", "v_head_dim", false, 1, MODEL_HEADS_MAX, &c->v_head_dim,
                            err) ||
                   yget_int(root, "", "mtp_layers", false, 0, MODEL_MTP_LAYERS_MAX,
                            &c->mtp_layers, err)
               ? -1
               : 0;
}

int model_from_node(const ynode *root, const char *path, model_spec *out, ps_err *err) {
    char found[128];
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    if (root->kind != YN_MAP)
        return ps_err_at(err, &root->loc, "model", "expected a mapping of model fields, found %s",
                         ynode_describe(root, found, sizeof found));
    model_cfg *c = &out->cfg;
    int norm = 0, mlp = 0, attn = 0, pos = 0;
    double dropout = 0;
    out->norm_eps = MODEL_NORM_EPS_DEFAULT;
    out->rope_theta = MODEL_ROPE_THETA_DEFAULT;
    if (yget_check_keys(root, "", spec_keys, err) ||
        yget_str(root, "", "name", true, out->name, sizeof out->name, err) ||
        yget_int(root, "", "layers", true, 1, MODEL_LAYERS_MAX, &c->layers, err) ||
        yget_int(root, "", "hidden", true, 1, MODEL_WIDTH_MAX, &c->hidden, err) ||
        yget_int(root, "", "heads", true, 1, MODEL_HEADS_MAX, &c->heads, err) ||
        yget_int(root, "", "kv_heads", true, 1, MODEL_HEADS_MAX, &c->kv_heads, err) ||
        yget_int(root, "", "head_dim", false, 1, MODEL_HEADS_MAX, &c->head_dim, err) ||
        yget_int(root, "", "ffn_hidden", true, 1, MODEL_FFN_MAX, &c->ffn_hidden, err) ||
        yget_int(root, "", "vocab", true, 1, MODEL_VOCAB_MAX, &c->vocab, err) ||
        yget_bool(root, "", "tied_embeddings", true, &c->tied_embeddings, err) ||
        yget_enum(root, "", "norm", true, model_norm_names, &norm, err) ||
        yget_enum(root, "", "mlp", true, model_mlp_names, &mlp, err) ||
        yget_enum(root, "", "attention", true, model_attn_names, &attn, err) ||
        yget_quantity(root, "", "dropout", true, UNIT_NONE, 0, &dropout, err) ||
        yget_enum(root, "", "position", true, model_pos_names, &pos, err) ||
        yget_int(root, "", "max_position", false, 1, MODEL_POSITIONS_MAX, &c->max_position,
                 err) ||
        read_bias(root, &c->bias, err) ||
        model_read_positive(root, "norm_eps", MODEL_NORM_EPS_MAX, &out->norm_eps, err) ||
        model_read_positive(root, "rope_theta", MODEL_ROPE_THETA_MAX, &out->rope_theta,
                            err) ||
        yget_str(root, "", "source", false, out->source, sizeof out->source, err) ||
        read_moe(root, c, err))
        return -1;
    c->norm = (model_norm)norm;
    c->mlp = (model_mlp)mlp;
    c->attention = (model_attn)attn;
    c->position = (model_pos)pos;
    c->dropout = dropout;
    static const model_keys own = {"layers",     "hidden",   "heads",        "kv_heads",
                                   "ffn_hidden", "vocab",    "max_position", "attention",
                                   "tied_embeddings", "norm", "mlp",         "position",
                                   "bias",       "dropout",
                                   "experts", "experts_per_token", "shared_experts",
                                   "expert_ffn_hidden", "dense_layers", "router_bias", "qk_norm",
                                   "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
                                   "qk_rope_head_dim", "v_head_dim", "mtp_layers"};
    model_set_locs(out, root, &own);
    if (c->position == POS_LEARNED && !c->max_position)
        return ps_err_at(err, &root->loc, "max_position",
                         "missing field (expected the number of learned position rows, "
                         "required with position: learned)");
    if (c->position == POS_ROPE && c->max_position)
        return ps_err_at(err, &out->locs.max_position, "max_position",
                         "expected no max_position with position: rope (rotary embeddings have "
                         "no parameters), found %lld",
                         (long long)c->max_position);
    return model_check(out, err);
}

/* A field of the MoE block set (non-zero) on a model without experts. */
static int refuse_without(const ps_loc *loc, const char *field, int64_t v, const char *needs,
                          ps_err *err) {
    return v ? ps_err_at(err, loc, field,
                         "expected no %s on a model without %s, found %lld", field, needs,
                         (long long)v)
             : 0;
}

/* Mixture-of-experts fields: top-k within the experts, an expert width, the
 * dense layers within the model, and the layer's experts together within the
 * MLP width limit (so that every count stays in 64 bits). */
static int check_moe(const model_spec *m, ps_err *err) {
    const model_cfg *c = &m->cfg;
    const model_locs *l = &m->locs;
    if (!c->experts) {
        const char *needs = "experts (a dense model)";
        if (refuse_without(&l->experts_per_token, "experts_per_token", c->experts_per_token,
                           needs, err) ||
            refuse_without(&l->shared_experts, "shared_experts", c->shared_experts, needs,
                           err) ||
            refuse_without(&l->expert_ffn_hidden, "expert_ffn_hidden", c->expert_ffn_hidden,
                           needs, err) ||
            refuse_without(&l->dense_layers, "dense_layers", c->dense_layers, needs, err) ||
            /* the planner places MTP modules as MoE layers (cost/moe.c); a dense
             * model's would be counted and never costed */
            refuse_without(&l->mtp_layers, "mtp_layers", c->mtp_layers,
                           "experts (multi-token prediction is modelled for MoE models, "
                           "DeepSeek-V3's, only)", err))
            return -1;
        if (c->router_bias)
            return ps_err_at(err, &l->router_bias, "router_bias",
                             "expected no router_bias on a model without %s, found true", needs);
        return 0;
    }
    if (!c->experts_per_token)
        return ps_err_at(err, &l->experts_per_token, "experts_per_token",
                         "missing field (expected the routed experts each token uses, from 1 to "
                         "experts = %lld)",
                         (long long)c->experts);
    if (c->experts_per_token > c->experts)
        return ps_err_at(err, &l->experts_per_token, "experts_per_token",
                         "expected the routed experts each token uses, from 1 to experts = %lld, "
                         "found %lld",
                         (long long)c->experts, (long long)c->experts_per_token);
    if (!c->expert_ffn_hidden)
        return ps_err_at(err, &l->expert_ffn_hidden, "expert_ffn_hidden",
                         "missing field (expected each expert's MLP hidden size, required with "
                         "experts = %lld)",
                         (long long)c->experts);
    if (c->dense_layers > c->layers)
        return ps_err_at(err, &l->dense_layers, "dense_layers",
                         "expected at most layers = %lld dense layers, found %lld",
                         (long long)c->layers, (long long)c->dense_layers);
    if (c->experts * c->expert_ffn_hidden > MODEL_FFN_MAX)
        return ps_err_at(err, &l->experts, "experts",
                         "model too large: experts*expert_ffn_hidden = %lld*%lld = %lld exceeds "
                         "the limit of %lld on a layer's expert width",
                         (long long)c->experts, (long long)c->expert_ffn_hidden,
                         (long long)(c->experts * c->expert_ffn_hidden), (long long)MODEL_FFN_MAX);
    if (c->shared_experts * c->expert_ffn_hidden > MODEL_FFN_MAX)
        return ps_err_at(err, &l->shared_experts, "shared_experts",
                         "model too large: shared_experts*expert_ffn_hidden = %lld*%lld = %lld "
                         "exceeds the limit of %lld on a layer's expert width",
                         (long long)c->shared_experts, (long long)c->expert_ffn_hidden,
                         (long long)(c->shared_experts * c->expert_ffn_hidden),
                         (long long)MODEL_FFN_MAX);
    return 0;
}

/* Multi-head latent attention: kv_lora_rank with the three per-head widths,
 * one key/value head per query head (MLA decompresses a K and V per head), no
 * biases (DeepSeek's projections have none) and no qk_norm. Without
 * kv_lora_rank none of its fields may be set. Sets head_dim to the query/key
 * width per head (nope + rope) when not given. */
static int check_mla(model_spec *m, ps_err *err) {
    model_cfg *c = &m->cfg;
    const model_locs *l = &m->locs;
    if (!c->kv_lora_rank) {
        const char *needs = "kv_lora_rank (standard attention)";
        return refuse_without(&l->q_lora_rank, "q_lora_rank", c->q_lora_rank, needs, err) ||
                       refuse_without(&l->qk_nope_head_dim, "qk_nope_head_dim",
                                      c->qk_nope_head_dim, needs, err) ||
                       refuse_without(&l->qk_rope_head_dim, "qk_rope_head_dim",
                                      c->qk_rope_head_dim, needs, err) ||
                       refuse_without(&l->v_head_dim, "v_head_dim", c->v_head_dim, needs, err)
                   ? -1
                   : 0;
    }
    const struct { const ps_loc *loc; const char *name; int64_t v; } dims[] = {
        {&l->qk_nope_head_dim, "qk_nope_head_dim", c->qk_nope_head_dim},
        {&l->qk_rope_head_dim, "qk_rope_head_dim", c->qk_rope_head_dim},
        {&l->v_head_dim, "v_head_dim", c->v_head_dim}};
    for (int i = 0; i < 3; i++)
        if (!dims[i].v)
            return ps_err_at(err, dims[i].loc, dims[i].name,
                             "missing field (expected a positive integer, required with "
                             "kv_lora_rank = %lld: multi-head latent attention)",
                             (long long)c->kv_lora_rank);
    const int64_t qk = c->qk_nope_head_dim + c->qk_rope_head_dim;
    if (c->head_dim && c->head_dim != qk)
        return ps_err_at(err, &l->self, "head_dim",
                         "expected qk_nope_head_dim + qk_rope_head_dim = %lld with multi-head "
                         "latent attention (or no head_dim), found %lld",
                         (long long)qk, (long long)c->head_dim);
    c->head_dim = qk;
    if (c->kv_heads != c->heads)
        return ps_err_at(err, &l->kv_heads, "kv_heads",
                         "expected kv_heads = heads = %lld with multi-head latent attention "
                         "(each head decompresses its own key and value), found %lld",
                         (long long)c->heads, (long long)c->kv_heads);
    if (c->bias != BIAS_NONE)
        return ps_err_at(err, &l->bias, "bias",
                         "expected false with multi-head latent attention (its projections have "
                         "no biases), found %s",
                         model_bias_names[c->bias]);
    if (c->qk_norm)
        return ps_err_at(err, &l->qk_norm, "qk_norm",
                         "expected false with multi-head latent attention (its latent norms "
                         "replace it), found true");
    if (c->heads * (c->v_head_dim > qk ? c->v_head_dim : qk) > MODEL_WIDTH_MAX)
        return ps_err_at(err, &l->heads, "heads",
                         "model too large: heads*max(qk_nope_head_dim + qk_rope_head_dim, "
                         "v_head_dim) = %lld exceeds the limit of %lld on the query width",
                         (long long)(c->heads * (c->v_head_dim > qk ? c->v_head_dim : qk)),
                         (long long)MODEL_WIDTH_MAX);
    return 0;
}

int model_check(model_spec *m, ps_err *err) {
    model_cfg *c = &m->cfg;
    if (check_mla(m, err) || check_moe(m, err)) return -1;
    if (!c->head_dim) {
        if (c->hidden % c->heads)
            return ps_err_at(err, &m->locs.heads, "heads",
                             "expected a divisor of hidden = %lld (or give head_dim), found %lld",
                             (long long)c->hidden, (long long)c->heads);
        c->head_dim = c->hidden / c->heads;
    }
    if (c->kv_heads > c->heads || c->heads % c->kv_heads)
        return ps_err_at(err, &m->locs.kv_heads, "kv_heads",
                         "expected a divisor of heads = %lld (grouped-query attention shares each "
                         "key/value head among heads/kv_heads query heads), found %lld",
                         (long long)c->heads, (long long)c->kv_heads);
    if (c->dropout >= 1.0)
        return ps_err_at(err, &m->locs.dropout, "dropout",
                         "expected a probability in [0, 1), found %g", c->dropout);
    if (model_q_width(c) > MODEL_WIDTH_MAX)
        return ps_err_at(err, &m->locs.heads, "heads",
                         "model too large: heads*head_dim = %lld*%lld = %lld exceeds the limit "
                         "of %lld on the query width",
                         (long long)c->heads, (long long)c->head_dim,
                         (long long)model_q_width(c), (long long)MODEL_WIDTH_MAX);
    /* with every field within its limit the count itself fits (about 2^62 at most) */
    const int64_t params = params_total(c);
    if (params > MODEL_PARAMS_MAX)
        return ps_err_at(err, &m->locs.self, "model",
                         "model too large: %lld parameters (layers = %lld, hidden = %lld, "
                         "ffn_hidden = %lld, vocab = %lld, experts = %lld, expert_ffn_hidden = "
                         "%lld) exceeds the limit of %lld (2^48)",
                         (long long)params, (long long)c->layers, (long long)c->hidden,
                         (long long)c->ffn_hidden, (long long)c->vocab, (long long)c->experts,
                         (long long)c->expert_ffn_hidden, (long long)MODEL_PARAMS_MAX);
    return 0;
}

int model_load_file(const char *path, model_spec *out, ps_err *err) {
    ynode *root = NULL;
    if (ynode_load_file(path, &root, err)) return -1;
    int rc = ynode_get(root, "model_type") ? model_from_hf(root, path, out, err)
                                           : model_from_node(root, path, out, err);
    ynode_free(root);
    return rc;
}

int model_from_plan_node(const ynode *n, const char *plan_path, const char *field,
                         model_spec *out, ps_err *err) {
    char path[PATH_MAX], found[128];
    if (n->kind == YN_MAP) return model_from_node(n, plan_path, out, err);
    if (n->kind != YN_SCALAR)
        return ps_err_at(err, &n->loc, field, "expected a model name, path or mapping, found %s",
                         ynode_describe(n, found, sizeof found));
    return spec_path_resolve(n->str, "models", plan_path, &n->loc, field, path, sizeof path,
                             err) ||
                   model_load_file(path, out, err)
               ? -1
               : 0;
}
