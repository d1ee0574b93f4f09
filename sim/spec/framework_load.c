/* framework_load.c — load a framework profile and merge its plan defaults
 * (see framework_load.h, docs/specs.md "Framework profiles"). */
#include "spec/framework_load.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "spec/spec_path.h"
#include "spec/yget.h"

const char *const framework_loss_names[] = {"fp32-softmax", "fused", "chunked", "cross-entropy", NULL};

static const char *const profile_keys[] = {"name", "description", "source", "memory",
                                           "kernels", "plan", NULL};
static const char *const kernels_keys[] = {"attention", "dropout", NULL};
const char *const framework_attention_names[] = {"model", "standard", "flash", NULL};
const char *const framework_dropout_names[] = {"model", "none", NULL};
static const char *const memory_keys[] = {"grad_bucket", "param_copy", "optimizer_grad_copy",
                                          "loss",        "loss_chunks", NULL};
const char *const framework_grad_bucket_names[] = {"separate", "none", NULL};
const char *const framework_param_copy_names[] = {"persistent", "transient", NULL};
const char *const framework_optimizer_grad_copy_names[] = {"fp32", "none", NULL};
/* Plan fields that say which run this is, not how a framework runs it. */
static const char *const run_fields[] = {"name",  "description", "model", "cluster", "gpus",
                                         "batch", "train",       "framework", NULL};
/* Of `parallel:`, only the ZeRO stage is a framework's choice (the degrees are the run's). */
static const char *const parallel_fields[] = {"zero", NULL};

/* The profile's `memory:` constants (all optional; absent: parasim's model). */
static int read_memory(const ynode *prof, plan_framework *fw, ps_err *err) {
    const ynode *mem;
    int bucket = 0, copy = 0, grad_copy = 0, loss = FW_LOSS_FP32_SOFTMAX;
    int64_t chunks = 1;
    if (yget_map(prof, "", "memory", false, &mem, err) ||
        yget_check_keys(mem, "memory", memory_keys, err) ||
        yget_enum(mem, "memory", "grad_bucket", false, framework_grad_bucket_names, &bucket, err) ||
        yget_enum(mem, "memory", "param_copy", false, framework_param_copy_names, &copy, err) ||
        yget_enum(mem, "memory", "optimizer_grad_copy", false,
                  framework_optimizer_grad_copy_names, &grad_copy, err) ||
        yget_enum(mem, "memory", "loss", false, framework_loss_names, &loss, err) ||
        yget_int(mem, "memory", "loss_chunks", false, 1, 1 << 20, &chunks, err))
        return -1;
    const ynode *c = ynode_get(mem, "loss_chunks");
    if (c && c->kind != YN_NULL && loss != FW_LOSS_CHUNKED)
        return ps_err_at(err, &c->loc, "memory.loss_chunks",
                         "expected no loss_chunks unless memory.loss is chunked, found %s",
                         c->str);
    fw->grad_bucket_none = bucket == 1;
    fw->param_copy_transient = copy == 1;
    fw->optimizer_grad_copy_none = grad_copy == 1;
    fw->loss = (uint8_t)loss;
    fw->loss_chunks = loss == FW_LOSS_CHUNKED ? (int32_t)chunks : 0;
    return 0;
}

/* The profile's `kernels:` (optional): the attention kernel and dropout the
 * framework runs, whatever the model file says (model: keep the model's). */
static int read_kernels(const ynode *prof, plan_framework *fw, ps_err *err) {
    const ynode *k;
    int attn = 0, dropout = 0;
    if (yget_map(prof, "", "kernels", false, &k, err) ||
        yget_check_keys(k, "kernels", kernels_keys, err) ||
        yget_enum(k, "kernels", "attention", false, framework_attention_names, &attn, err) ||
        yget_enum(k, "kernels", "dropout", false, framework_dropout_names, &dropout, err))
        return -1;
    fw->attention = (uint8_t)attn; /* 1 + ATTN_STANDARD / ATTN_FLASH, in the names' order */
    fw->no_dropout = dropout == 1;
    return 0;
}

void framework_apply_model(const plan_framework *fw, model_cfg *m) {
    if (fw->attention) m->attention = fw->attention == 2 ? ATTN_FLASH : ATTN_STANDARD;
    if (fw->no_dropout) m->dropout = 0;
}

static int in_list(const char *key, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(key, list[i])) return 1;
    return 0;
}

/* The profile's `plan:` may set only what a framework decides. */
static int check_defaults(const ynode *plan, ps_err *err) {
    for (int i = 0; i < plan->n; i++) {
        char field[96];
        snprintf(field, sizeof field, "plan.%s", plan->keys[i]);
        if (in_list(plan->keys[i], run_fields))
            return ps_err_at(err, &plan->key_locs[i], field,
                             "expected a default a framework decides (precision, optimizer, "
                             "recompute, memory, parallel.zero, ...), found %s, which the plan "
                             "itself gives",
                             plan->keys[i]);
        const ynode *v = plan->items[i];
        if (strcmp(plan->keys[i], "parallel") || v->kind != YN_MAP) continue;
        for (int j = 0; j < v->n; j++)
            if (!in_list(v->keys[j], parallel_fields))
                return ps_err_at(err, &v->key_locs[j], "plan.parallel",
                                 "expected only zero (the degrees are the plan's own), found %s",
                                 v->keys[j]);
    }
    return 0;
}

/* Merge src's fields under dst (the mapping at `path` of root, "" for root
 * itself): a field dst lacks, or leaves null, takes src's value (shared, not
 * copied: src's tree is freed after); two mappings merge key by key; anything
 * else keeps dst's. */
static int merge_under(ynode *root, const ynode *dst, const char *path, const ynode *src,
                       ps_err *err) {
    for (int i = 0; i < src->n; i++) {
        char sub[256];
        const char *key = src->keys[i];
        if (strchr(key, '.'))
            return ps_err_at(err, &src->key_locs[i], key,
                             "expected a plain field name, found one with a '.'");
        int w = snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
        if (w < 0 || w >= (int)sizeof sub)
            return ps_err_at(err, &src->key_locs[i], key, "expected a shorter field path");
        ynode *v = src->items[i];
        const ynode *have = ynode_get(dst, key);
        if (!have || have->kind == YN_NULL) {
            v->refs++; /* root shares it; ynode_free drops one owner at a time */
            if (ynode_set_path(root, sub, v, err)) return -1;
        } else if (have->kind == YN_MAP && v->kind == YN_MAP) {
            if (merge_under(root, have, sub, v, err)) return -1;
        }
    }
    return 0;
}

int framework_apply(ynode *root, plan_spec *out, ps_err *err) {
    const ynode *n = root->kind == YN_MAP ? ynode_get(root, "framework") : NULL;
    char found[128], path[PATH_MAX];
    if (!n || n->kind == YN_NULL) return 0;
    if (n->kind != YN_SCALAR || !n->str[0])
        return ps_err_at(err, &n->loc, "framework",
                         "expected megatron, deepspeed, fsdp2, llmc or the path of a profile, "
                         "found %s",
                         n->kind == YN_SCALAR ? "an empty value" : ynode_describe(n, found, sizeof found));
    if (spec_path_resolve(n->str, "plans/frameworks", out->path, &n->loc, "framework", path,
                          sizeof path, err))
        return -1;
    ynode *prof = NULL;
    if (ynode_load_file(path, &prof, err)) return -1;
    const ynode *plan = NULL;
    int rc = 0;
    if (prof->kind != YN_MAP)
        rc = ps_err_at(err, &prof->loc, NULL,
                       "expected a framework profile (a mapping of name, source, memory, kernels, "
                       "plan), "
                       "found %s",
                       ynode_describe(prof, found, sizeof found));
    if (!rc)
        rc = yget_check_keys(prof, "", profile_keys, err) ||
             yget_str(prof, "", "name", false, out->framework_name, sizeof out->framework_name,
                      err) ||
             yget_str(prof, "", "source", true, out->framework_source,
                      sizeof out->framework_source, err) ||
             read_memory(prof, &out->cfg.framework, err) ||
             read_kernels(prof, &out->cfg.framework, err) ||
             yget_map(prof, "", "plan", false, &plan, err) ||
             (plan && check_defaults(plan, err)) ||
             (plan && merge_under(root, root, "", plan, err));
    if (!rc) {
        if (!out->framework_name[0])
            snprintf(out->framework_name, sizeof out->framework_name, "%.63s", n->str);
        snprintf(out->framework_path, sizeof out->framework_path, "%.*s",
                 (int)sizeof out->framework_path - 1, path);
    }
    ynode_free(prof);
    return rc ? -1 : 0;
}
