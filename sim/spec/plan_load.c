/* plan_load.c — read a plan spec, apply --set overrides, load the model and
 * cluster it names, and check the whole (see plan.h, docs/specs.md). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost/act.h"
#include "spec/distill_load.h"
#include "spec/framework_load.h"
#include "spec/plan.h"
#include "spec/plan_check.h"
#include "spec/spec_limit.h"
#include "spec/spec_path.h"
#include "spec/yget.h"

const char *const plan_group_names[] = {"dp", "tp", "pp", "cp", NULL};
const char *const plan_schedule_names[] = {"afab", "1f1b", "interleaved", "zero-bubble",
                                            "dualpipe", NULL};
const char *const plan_recompute_names[] = {"none", "selective", "full",   "op",
                                            "gelu", "gelu+norm", "custom", NULL};
const char *const plan_recompute_policy_names[] = {"none", "selective", "full", "op",
                                                   "gelu", "gelu+norm", NULL};
const char *const plan_optimizer_names[] = {"adamw", "sgd", "sgd-momentum", NULL};
const char *const plan_cp_algorithm_names[] = {"ring", "all-gather", NULL};

const char plan_default_yaml[] =
    "# parasim's built-in default plan: Llama 3 8B on one DGX H100, ZeRO-1\n"
    "name: built-in default (llama3-8b, 8x H100, ZeRO-1)\n"
    "model: llama3-8b\n"
    "cluster: dgx-h100\n"
    "gpus: 8\n"
    "parallel: {dp: 8, tp: 1, pp: 1, cp: 1, zero: 1, sp: false}\n"
    "batch: {global: 64, micro: 1, seq: 4096}\n"
    "pipeline: {schedule: 1f1b, virtual: 1}\n"
    "recompute: none\n"
    "precision: bf16-mixed\n"
    "optimizer: adamw\n";

#define DEFAULT_ORIGIN "(built-in default plan)"

static const char *const top_keys[] = {"name",     "description", "model",     "cluster",
                                       "gpus",     "parallel",    "batch",     "pipeline",
                                       "recompute", "precision",  "optimizer", "offload",
                                       "memory",   "placement",   "overlap",   "train",
                                       "zero3",
                                       /* mixture of experts (read_moe) */
                                       "moe",
                                       /* framework profiles (framework_load.h) */
                                       "framework",
                                       /* named kernels of the cluster (resolve_kernels) */
                                       "kernels",
                                       /* logit distillation (distill_load.h) */
                                       "distill",
                                       NULL};
static const char *const kernels_keys[] = {"attention", "grad_accumulation_fusion", "elementwise",
                                            NULL};
static const char *const parallel_keys[] = {"dp", "tp",  "pp", "cp", "zero",
                                            "sp", "cp_algorithm",
                                            /* mixture of experts (read_moe) */
                                            "ep", "etp", NULL};
static const char *const moe_keys[] = {"capacity_factor", "imbalance", "node_limit", "aux_loss",
                                       /* helper moeacc */
                                       "dispatcher", "pad_to_capacity", NULL};
const char *const plan_moe_dispatcher_names[] = {"alltoall", "deepep", NULL};
static const char *const batch_keys[] = {"global", "micro", "seq", NULL};
static const char *const pipeline_keys[] = {"schedule",           "virtual",
                                            "layers",             "first_stage_layers",
                                            "last_stage_layers",  "account_for_embedding",
                                            "account_for_loss",   "deallocate_outputs",
                                            "partition_messages", NULL};
static const char *const precision_keys[] = {"params", "grads", "master", "optimizer",
                                             "activations", NULL};
static const char *const offload_keys[] = {"optimizer", "activations", NULL};
static const char *const memory_keys[] = {"bucket", "workspace", "fragmentation", NULL};
static const char *const overlap_keys[] = {"dp", "tp", "pp", NULL};
static const char *const zero3_keys[] = {"unit", "bucket", "prefetch", "reshard_after_forward",
                                         "recompute_gather", "launch", "launch_per_rank",
                                         "copy_out", NULL};
const char *const plan_zero3_unit_names[] = {"layer", "param", "bucket", NULL};
static const char *const train_keys[] = {"steps", "seed",         "lr",   "betas",
                                         "eps",   "weight_decay", "data", NULL};

void plan_cfg_defaults(plan_cfg *c) {
    c->tp = c->pp = c->cp = 1;
    c->virtual_stages = 1;
    c->schedule = SCHED_1F1B;
    c->bucket_bytes = 25LL << 20;    /* PyTorch DDP bucket_cap_mb default */
    c->workspace_bytes = 32LL << 20; /* cuBLAS workspace on Hopper (docs/memory.md §6) */
    /* tp, cp, dp, pp: Megatron-LM's default order "tp-cp-ep-dp-pp" */
    const uint8_t order[PLAN_GROUPS] = {GROUP_ORDER_TP, GROUP_ORDER_CP, GROUP_ORDER_DP,
                                        GROUP_ORDER_PP};
    memcpy(c->placement, order, sizeof order);
    c->overlap_dp = c->overlap_pp = true; /* Megatron-LM --overlap-grad-reduce, p2p overlap */
    c->overlap_tp = false;
    /* zero3: absent = today's model (docs/time.md §4.1) */
    c->zero3 = (plan_zero3){.set = false, .unit = ZERO3_UNIT_LAYER, .bucket_bytes = 0,
                            .prefetch = 1, .reshard_after_forward = true,
                            .recompute_gather = false, .launch_s = 0,
                            .launch_per_rank_s = 0, .copy_out = false};
    /* mixture of experts: experts not split, etp as tp, dropless and balanced */
    c->ep = 1;
    c->etp = 0;
    c->moe_capacity_factor = 0;
    c->moe_imbalance = 1.0;
    c->moe_node_limit = 0;
    c->moe_aux_loss = true;
    c->moe_dispatcher = MOE_DISPATCHER_ALLTOALL;
}

void plan_train_defaults(plan_train *t) {
    memset(t, 0, sizeof *t);
    t->steps = 10;
    t->seed = 1234;
    t->lr = 1.0e-3;
    t->beta1 = 0.9;
    t->beta2 = 0.95;
    t->eps = 1.0e-8;
    t->weight_decay = 0.1;
    snprintf(t->data, sizeof t->data, "synthetic");
}

const char *plan_offload_name(const plan_cfg *p) {
    static const char *const names[] = {"none", "optimizer", "activations", "both"};
    return names[(p->offload_optimizer ? 1 : 0) | (p->offload_activations ? 2 : 0)];
}

const char *plan_overlap_name(const plan_cfg *p, char *buf, int len) {
    snprintf(buf, (size_t)len, "%s%s%s%s%s", p->overlap_dp ? "dp" : "",
             p->overlap_dp && (p->overlap_tp || p->overlap_pp) ? "+" : "", p->overlap_tp ? "tp" : "",
             p->overlap_tp && p->overlap_pp ? "+" : "", p->overlap_pp ? "pp" : "");
    if (!buf[0]) snprintf(buf, (size_t)len, "-");
    return buf;
}

const char *plan_placement_name(const plan_cfg *p, char *buf, int len) {
    snprintf(buf, (size_t)len, "%s-%s-%s-%s", plan_group_names[p->placement[0]],
             plan_group_names[p->placement[1]], plan_group_names[p->placement[2]],
             plan_group_names[p->placement[3]]);
    return buf;
}

/* placement: [tp, cp, dp, pp] — each group once, innermost first. */
static int read_placement(const ynode *root, plan_cfg *c, ps_err *err) {
    const ynode *n = ynode_get(root, "placement");
    char found[128];
    if (!n || n->kind == YN_NULL) return 0;
    if (n->kind != YN_SEQ || n->n != PLAN_GROUPS)
        return ps_err_at(err, &n->loc, "placement",
                         "expected the four groups innermost first, such as [tp, cp, pp, dp], "
                         "found %s", ynode_describe(n, found, sizeof found));
    unsigned seen = 0;
    for (int i = 0; i < n->n; i++) {
        const ynode *g = n->items[i];
        int k = -1;
        for (int j = 0; g->kind == YN_SCALAR && plan_group_names[j]; j++)
            if (!strcmp(g->str, plan_group_names[j])) k = j;
        if (k < 0 || (seen >> k & 1u))
            return ps_err_at(err, &g->loc, "placement",
                             "expected each of dp, tp, pp, cp exactly once, found %s",
                             k < 0 ? ynode_describe(g, found, sizeof found) : "a repeat");
        seen |= 1u << k;
        c->placement[i] = (uint8_t)k;
    }
    return 0;
}

static int read_overlap(const ynode *root, plan_cfg *c, ps_err *err) {
    const ynode *o;
    return yget_map(root, "", "overlap", false, &o, err) ||
           yget_check_keys(o, "overlap", overlap_keys, err) ||
           yget_bool(o, "overlap", "dp", false, &c->overlap_dp, err) ||
           yget_bool(o, "overlap", "tp", false, &c->overlap_tp, err) ||
           yget_bool(o, "overlap", "pp", false, &c->overlap_pp, err);
}

/* train.betas: [beta1, beta2], each in [0, 1). */
/* ---- the `zero3:` section (helper zero3; docs/time.md §4.1, docs/specs.md) ---- */
static int read_zero3(const ynode *root, plan_cfg *c, ps_err *err) {
    const ynode *z = ynode_get(root, "zero3"), *n;
    plan_zero3 *o = &c->zero3;
    int unit = ZERO3_UNIT_LAYER;
    if (!z) return 0;
    if (yget_map(root, "", "zero3", false, &z, err) || yget_check_keys(z, "zero3", zero3_keys, err) ||
        yget_enum(z, "zero3", "unit", false, plan_zero3_unit_names, &unit, err) ||
        yget_bytes(z, "zero3", "bucket", false, 1, &o->bucket_bytes, err) ||
        spec_limit(z, "zero3", "bucket", (double)o->bucket_bytes, 0, PLAN_BUFFER_MAX,
                   "a bucket of at most 1 TiB", err) ||
        yget_int(z, "zero3", "prefetch", false, 0, ZERO3_PREFETCH_MAX, &o->prefetch, err) ||
        yget_bool(z, "zero3", "reshard_after_forward", false, &o->reshard_after_forward, err) ||
        yget_bool(z, "zero3", "recompute_gather", false, &o->recompute_gather, err) ||
        yget_quantity(z, "zero3", "launch", false, UNIT_SECONDS, 0, &o->launch_s, err) ||
        spec_limit(z, "zero3", "launch", o->launch_s, 0, 1, "a launch time from 0 to 1 s", err) ||
        yget_quantity(z, "zero3", "launch_per_rank", false, UNIT_SECONDS, 0,
                      &o->launch_per_rank_s, err) ||
        spec_limit(z, "zero3", "launch_per_rank", o->launch_per_rank_s, 0, 1e-3,
                   "a time per rank from 0 to 1 ms", err) ||
        yget_bool(z, "zero3", "copy_out", false, &o->copy_out, err))
        return -1;
    o->unit = (plan_zero3_unit)unit;
    if (o->unit == ZERO3_UNIT_BUCKET && o->bucket_bytes <= 0)
        return ps_err_at(err, &z->loc, "zero3.bucket",
                         "expected a bucket size (e.g. 50 MB) with unit: bucket, found none");
    if (o->unit != ZERO3_UNIT_BUCKET && (n = ynode_get(z, "bucket")))
        return ps_err_at(err, &n->loc, "zero3.bucket",
                         "expected no bucket unless unit: bucket, found one with unit: %s",
                         plan_zero3_unit_names[o->unit]);
    o->set = true;
    return 0;
}

static int read_betas(const ynode *train, plan_train *t, ps_err *err) {
    const ynode *n = ynode_get(train, "betas");
    char found[128];
    double b[2];
    if (!n || n->kind == YN_NULL) return 0;
    if (n->kind != YN_SEQ || n->n != 2)
        return ps_err_at(err, &n->loc, "train.betas",
                         "expected two numbers [beta1, beta2] such as [0.9, 0.95], found %s",
                         n->kind == YN_SEQ ? "a list of another length"
                                           : ynode_describe(n, found, sizeof found));
    for (int i = 0; i < 2; i++) {
        const ynode *x = n->items[i];
        char field[32];
        snprintf(field, sizeof field, "train.betas[%d]", i);
        if (yget_node_quantity(x, field, UNIT_NONE, 0, &b[i], err)) return -1;
        if (b[i] >= 1)
            return ps_err_at(err, &x->loc, field, "expected a number in [0, 1), found %s",
                             ynode_describe(x, found, sizeof found));
    }
    t->beta1 = b[0];
    t->beta2 = b[1];
    return 0;
}

/* A number >= min (or > min when open), left untouched when absent. */
/* The same ranges as an execution plan's header (docs/plan-format.md §1), so
 * that every plan emits a program the loader accepts. */
static int read_real(const ynode *train, const char *key, double min, bool open, double max,
                     double *out, ps_err *err) {
    const ynode *n = ynode_get(train, key);
    char field[48];
    if (yget_quantity(train, "train", key, false, UNIT_NONE, -1e308, out, err)) return -1;
    if (n && n->kind != YN_NULL && (*out < min || (open && *out == min) || *out > max))
        return ps_err_at(err, &n->loc, yget_field("train", key, field, sizeof field),
                         "expected a number in %c%g, %g], found %s", open ? '(' : '[', min, max,
                         n->str);
    return 0;
}

/* train.data: "synthetic" or a path (not required to exist here: the runtime
 * opens it); an empty value is an error. */
static int read_data(const ynode *train, plan_train *t, ps_err *err) {
    const ynode *n = ynode_get(train, "data");
    if (!n) return 0;
    if (n->kind == YN_NULL || (n->kind == YN_SCALAR && !n->str[0]))
        return ps_err_at(err, &n->loc, "train.data",
                         "expected synthetic or the path of a text file or directory, found "
                         "an empty value");
    return yget_str(train, "train", "data", true, t->data, sizeof t->data, err);
}

static int read_train(const ynode *root, plan_train *t, ps_err *err) {
    const ynode *tr;
    int64_t steps = t->steps, seed = (int64_t)t->seed;
    if (yget_map(root, "", "train", false, &tr, err) ||
        yget_check_keys(tr, "train", train_keys, err) ||
        yget_int(tr, "train", "steps", false, 1, INT32_MAX, &steps, err) ||
        yget_int(tr, "train", "seed", false, 0, INT64_MAX, &seed, err) ||
        read_real(tr, "lr", 0, true, 1e3, &t->lr, err) || read_betas(tr, t, err) ||
        read_real(tr, "eps", 0, true, 1, &t->eps, err) ||
        read_real(tr, "weight_decay", 0, false, 1, &t->weight_decay, err) ||
        read_data(tr, t, err))
        return -1;
    t->steps = (int32_t)steps;
    t->seed = (uint64_t)seed;
    return 0;
}

typedef struct {
    const char *name;
    plan_precision p;
} precision_preset;

/* params + grads + master + Adam m + Adam v bytes: docs/memory.md §2 */
static const precision_preset presets[] = {
    {"bf16-mixed", {DT_BF16, DT_BF16, DT_FP32, DT_FP32, DT_BF16}},    /* 2+2+4+4+4 */
    {"fp16-mixed", {DT_FP16, DT_FP16, DT_FP32, DT_FP32, DT_FP16}},    /* 2+2+4+4+4 */
    {"bf16-fp32grad", {DT_BF16, DT_FP32, DT_FP32, DT_FP32, DT_BF16}}, /* 2+4+4+4+4 */
    {"fp32", {DT_FP32, DT_FP32, DT_NONE, DT_FP32, DT_FP32}},          /* 4+4+0+4+4 */
    {NULL, {0, 0, 0, 0, 0}}};

int plan_precision_preset(const char *name, plan_precision *out) {
    for (int i = 0; presets[i].name; i++)
        if (!strcmp(name, presets[i].name)) {
            *out = presets[i].p;
            return 0;
        }
    return -1;
}

/* Where key was written; "(default)" when it was not. */
static void loc_of(ps_loc *loc, const ynode *map, const char *key) {
    const ynode *n = map ? ynode_get(map, key) : NULL;
    if (n)
        *loc = n->loc;
    else
        ps_loc_set(loc, "", 0, 0);
}

static int read_precision(const ynode *root, plan_spec *out, ps_err *err) {
    const ynode *n = ynode_get(root, "precision");
    plan_precision *p = &out->cfg.precision;
    char found[128];
    if (!n || n->kind == YN_NULL) {
        const char *names[] = {"bf16-mixed", "fp16-mixed", "bf16-fp32grad", "fp32", NULL};
        char list[128];
        return ps_err_at(err, n ? &n->loc : &root->loc, "precision",
                         "missing field (expected one of %s, or a mapping of params, grads, "
                         "master, optimizer[, activations] dtypes)",
                         yget_join(names, list, sizeof list));
    }
    if (n->kind == YN_SCALAR) {
        if (plan_precision_preset(n->str, p))
            return ps_err_at(err, &n->loc, "precision",
                             "expected one of bf16-mixed, fp16-mixed, bf16-fp32grad, fp32, or a "
                             "mapping of dtypes, found \"%s\"",
                             n->str);
        snprintf(out->precision_name, sizeof out->precision_name, "%s", n->str);
        return 0;
    }
    if (n->kind != YN_MAP)
        return ps_err_at(err, &n->loc, "precision", "expected a preset name or a mapping, found %s",
                         ynode_describe(n, found, sizeof found));
    int params = 0, grads = 0, master = 0, opt = 0, act = -1;
    if (yget_check_keys(n, "precision", precision_keys, err) ||
        yget_enum(n, "precision", "params", true, dtype_names, &params, err) ||
        yget_enum(n, "precision", "grads", true, dtype_names, &grads, err) ||
        yget_enum(n, "precision", "master", true, dtype_names, &master, err) ||
        yget_enum(n, "precision", "optimizer", true, dtype_names, &opt, err) ||
        yget_enum(n, "precision", "activations", false, dtype_names, &act, err))
        return -1;
    if (params == DT_NONE || grads == DT_NONE || act == DT_NONE) {
        const char *key = params == DT_NONE ? "params" : grads == DT_NONE ? "grads" : "activations";
        const ynode *bad = ynode_get(n, key);
        char field[64];
        return ps_err_at(err, &bad->loc, yget_field("precision", key, field, sizeof field),
                         "expected a dtype (fp8, bf16, fp16, fp32), found none");
    }
    p->params = (ps_dtype)params;
    p->grads = (ps_dtype)grads;
    p->master = (ps_dtype)master;
    p->optimizer = (ps_dtype)opt;
    p->activations = act < 0 ? p->params : (ps_dtype)act;
    snprintf(out->precision_name, sizeof out->precision_name, "custom");
    return 0;
}

static int read_offload(const ynode *root, plan_cfg *c, ps_err *err) {
    static const char *const words[] = {"none", "optimizer", "activations", "both", NULL};
    const ynode *n = ynode_get(root, "offload");
    if (!n || n->kind == YN_NULL) return 0;
    if (n->kind == YN_MAP)
        return yget_check_keys(n, "offload", offload_keys, err) ||
               yget_bool(n, "offload", "optimizer", false, &c->offload_optimizer, err) ||
               yget_bool(n, "offload", "activations", false, &c->offload_activations, err);
    int w = 0;
    if (yget_enum(root, "", "offload", true, words, &w, err)) return -1;
    c->offload_optimizer = w == 1 || w == 3;
    c->offload_activations = w == 2 || w == 3;
    return 0;
}

static int read_stage_layers(const ynode *pipe, plan_cfg *c, ps_err *err) {
    const ynode *n = ynode_get(pipe, "layers");
    char found[128];
    if (!n || n->kind == YN_NULL) return 0;
    if (n->kind != YN_SEQ)
        return ps_err_at(err, &n->loc, "pipeline.layers",
                         "expected a list of layers per stage such as [9, 10, 10, 9], found %s",
                         ynode_describe(n, found, sizeof found));
    if (n->n > PLAN_MAX_STAGES)
        return ps_err_at(err, &n->loc, "pipeline.layers",
                         "expected at most %d stages, found %d", PLAN_MAX_STAGES, n->n);
    for (int i = 0; i < n->n; i++) {
        int64_t v;
        char field[48];
        snprintf(field, sizeof field, "pipeline.layers[%d]", i);
        if (yget_node_int(n->items[i], field, 1, 1 << 20, &v, err)) return -1;
        c->stage_layers[i] = (int32_t)v;
    }
    return 0;
}

/* Megatron-LM's uneven split options (plan.h): stage sizes of at least one
 * layer, as Megatron's --decoder-first/last-pipeline-num-layers require. */
static int read_uneven_split(const ynode *pipe, plan_cfg *c, ps_err *err) {
    int64_t first = 0, last = 0;
    if (yget_int(pipe, "pipeline", "first_stage_layers", false, 1, 1 << 20, &first, err) ||
        yget_int(pipe, "pipeline", "last_stage_layers", false, 1, 1 << 20, &last, err) ||
        yget_bool(pipe, "pipeline", "account_for_embedding", false, &c->account_for_embedding,
                  err) ||
        yget_bool(pipe, "pipeline", "account_for_loss", false, &c->account_for_loss, err))
        return -1;
    c->first_stage_layers = (int32_t)first;
    c->last_stage_layers = (int32_t)last;
    return 0;
}

/* dp may be "auto": GPUs / (tp * pp * cp), resolved after the cluster is known. */
static int read_dp(const ynode *par, plan_cfg *c, bool *dp_auto, ps_err *err) {
    const ynode *n = ynode_get(par, "dp");
    *dp_auto = n && n->kind == YN_SCALAR && !strcmp(n->str, "auto");
    if (*dp_auto) return 0;
    return yget_int(par, "parallel", "dp", true, 1, PLAN_GPUS_MAX, &c->dp, err);
}

static int load_model_and_cluster(const ynode *root, plan_spec *out, ps_err *err) {
    char path[PATH_MAX];
    const ynode *m = ynode_get(root, "model"), *cl = ynode_get(root, "cluster");
    if (!m || m->kind == YN_NULL)
        return ps_err_at(err, m ? &m->loc : &root->loc, "model",
                         "missing field (expected a model name such as llama3-8b, a path to a "
                         "model YAML or config.json, or an inline mapping)");
    if (model_from_plan_node(m, out->path, "model", &out->model, err)) return -1;
    if (!cl || cl->kind == YN_NULL)
        return ps_err_at(err, cl ? &cl->loc : &root->loc, "cluster",
                         "missing field (expected a cluster name such as dgx-h100, a path, or "
                         "an inline mapping)");
    if (cl->kind == YN_MAP) return cluster_from_node(cl, out->path, &out->cluster, err);
    if (cl->kind != YN_SCALAR)
        return ps_err_at(err, &cl->loc, "cluster", "expected a cluster name, path or mapping, found a list");
    return spec_path_resolve(cl->str, "plans/clusters", out->path, &cl->loc, "cluster", path,
                             sizeof path, err) ||
           cluster_load_file(path, &out->cluster, err);
}

static int apply_override(ynode *root, const char *text, ps_err *err) {
    const char *eq = strchr(text, '=');
    ps_loc loc;
    char key[256];
    ps_loc_set(&loc, "", 0, 0);
    snprintf(loc.file, sizeof loc.file, "--set %s", text);
    if (!eq || eq == text || (size_t)(eq - text) >= sizeof key)
        return ps_err_at(err, &loc, NULL, "expected --set key.path=value, such as "
                         "--set parallel.tp=8");
    memcpy(key, text, (size_t)(eq - text));
    key[eq - text] = 0;
    ynode *value = NULL;
    if (ynode_load_string(eq + 1, loc.file, &value, err)) {
        /* an empty value parses as an empty document: keep it as an explicit null */
        if (eq[1]) return -1;
        value = calloc(1, sizeof *value);
        if (!value) return ps_err_set(err, "out of memory");
        value->kind = YN_NULL;
    }
    ynode_relocate(value, &loc);
    return ynode_set_path(root, key, value, err);
}

/* recompute: a policy name, or a list of saved-tensor names to recompute
 * (cost/act.h act_tensor_names; docs/specs.md, docs/memory.md §3). Which of
 * the names this model's layer has is checked once the model is loaded
 * (check_recompute_tensors). */
static int read_recompute(const ynode *root, plan_cfg *c, ps_err *err) {
    const ynode *n = ynode_get(root, "recompute");
    char found[128], names[1024];
    c->recompute = RECOMPUTE_NONE;
    c->recompute_tensors = 0;
    if (!n || n->kind == YN_NULL) return 0;
    if (n->kind == YN_SCALAR) {
        for (int i = 0; plan_recompute_policy_names[i]; i++)
            if (!strcmp(n->str, plan_recompute_policy_names[i]))
                return c->recompute = (plan_recompute)i, 0;
    }
    if (n->kind != YN_SEQ || n->n < 1)
        return ps_err_at(err, &n->loc, "recompute",
                         "expected one of %s, or a list of saved-tensor names to recompute, "
                         "found %s",
                         yget_join(plan_recompute_policy_names, names, sizeof names),
                         n->kind == YN_SEQ ? "an empty list"
                                           : ynode_describe(n, found, sizeof found));
    for (int i = 0; i < n->n; i++) {
        const ynode *it = n->items[i];
        const int id = it->kind == YN_SCALAR ? act_name_find(it->str) : -1;
        if (id < 0)
            return ps_err_at(err, &it->loc, "recompute",
                             "expected the name of a saved tensor (%s), found %s",
                             yget_join(act_tensor_names, names, sizeof names),
                             ynode_describe(it, found, sizeof found));
        if (id == AN_ATTN_NORM_INPUT)
            return ps_err_at(err, &it->loc, "recompute",
                             "expected a tensor a layer can rebuild, found attn_norm.input, the "
                             "layer input that every policy keeps (recompute: full keeps only "
                             "it)");
        c->recompute_tensors |= 1u << id;
    }
    c->recompute = RECOMPUTE_CUSTOM;
    return 0;
}

/* A custom list names only tensors this model's layer saves. */
static int check_recompute_tensors(const ynode *root, const plan_spec *s, ps_err *err) {
    const ynode *n = ynode_get(root, "recompute");
    char names[1024];
    if (s->cfg.recompute != RECOMPUTE_CUSTOM || !n || n->kind != YN_SEQ) return 0;
    for (int i = 0; i < n->n; i++) {
        const ynode *it = n->items[i];
        if (!act_layer_has(&s->model.cfg, act_name_find(it->str)))
            return ps_err_at(err, &it->loc, "recompute",
                             "expected a tensor that a layer of %s saves (%s), found %s",
                             s->model.name, act_layer_names(&s->model.cfg, names, sizeof names),
                             it->str);
    }
    return 0;
}

/* Mixture of experts (docs/specs.md "Expert parallelism"): parallel.ep,
 * parallel.etp (absent: as tp) and the moe: section. Cross-field rules (ep
 * divides the experts, the folding, node_limit vs the nodes an ep group
 * spans) are plan_check's. */
#define MOE_FACTOR_MAX 1024.0 /* capacity factor, imbalance: far above real use */
static int read_moe(const ynode *root, const ynode *par, plan_spec *out, ps_err *err) {
    plan_cfg *c = &out->cfg;
    plan_locs *l = &out->locs;
    const ynode *moe = NULL;
    if (yget_int(par, "parallel", "ep", false, 1, PLAN_DEGREE_MAX, &c->ep, err) ||
        yget_int(par, "parallel", "etp", false, 1, PLAN_DEGREE_MAX, &c->etp, err) ||
        yget_map(root, "", "moe", false, &moe, err) || yget_check_keys(moe, "moe", moe_keys, err) ||
        yget_quantity(moe, "moe", "capacity_factor", false, UNIT_NONE, 0,
                      &c->moe_capacity_factor, err) ||
        spec_limit(moe, "moe", "capacity_factor", c->moe_capacity_factor, 0, MOE_FACTOR_MAX,
                   "0 (dropless) or a capacity factor up to 1024", err) ||
        yget_quantity(moe, "moe", "imbalance", false, UNIT_NONE, 1, &c->moe_imbalance, err) ||
        spec_limit(moe, "moe", "imbalance", c->moe_imbalance, 1, MOE_FACTOR_MAX,
                   "the busiest expert rank's tokens over the mean, from 1 to 1024", err) ||
        yget_int(moe, "moe", "node_limit", false, 0, PLAN_GPUS_MAX, &c->moe_node_limit, err) ||
        yget_bool(moe, "moe", "aux_loss", false, &c->moe_aux_loss, err) ||
        yget_bool(moe, "moe", "pad_to_capacity", false, &c->moe_pad, err))
        return -1;
    int dispatcher = MOE_DISPATCHER_ALLTOALL;
    if (yget_enum(moe, "moe", "dispatcher", false, plan_moe_dispatcher_names, &dispatcher, err))
        return -1;
    c->moe_dispatcher = (plan_moe_dispatcher)dispatcher;
    loc_of(&l->ep, par, "ep");
    loc_of(&l->etp, par, "etp");
    loc_of(&l->moe_capacity_factor, moe, "capacity_factor");
    loc_of(&l->moe_imbalance, moe, "imbalance");
    loc_of(&l->moe_node_limit, moe, "node_limit");
    loc_of(&l->moe_pad, moe, "pad_to_capacity");
    return 0;
}

static int decode(const ynode *root, plan_spec *out, bool *dp_auto, ps_err *err) {
    plan_cfg *c = &out->cfg;
    const ynode *par, *batch, *pipe, *mem;
    char found[128];
    int sched = SCHED_1F1B, opt = OPT_ADAMW; /* Megatron-LM's, DeepSpeed's */
    int64_t zero = 0;
    int cp_alg = CP_RING;
    if (root->kind != YN_MAP)
        return ps_err_at(err, &root->loc, NULL, "expected a plan (a mapping of fields), found %s",
                         ynode_describe(root, found, sizeof found));
    plan_cfg_defaults(c);
    plan_train_defaults(&out->train);
    if (yget_check_keys(root, "", top_keys, err) ||
        yget_str(root, "", "name", false, out->name, sizeof out->name, err) ||
        yget_int(root, "", "gpus", false, 1, PLAN_GPUS_MAX, &c->gpus, err) ||
        yget_map(root, "", "parallel", true, &par, err) ||
        yget_check_keys(par, "parallel", parallel_keys, err) || read_dp(par, c, dp_auto, err) ||
        yget_int(par, "parallel", "tp", false, 1, PLAN_DEGREE_MAX, &c->tp, err) ||
        yget_int(par, "parallel", "pp", false, 1, PLAN_MAX_STAGES, &c->pp, err) ||
        yget_int(par, "parallel", "cp", false, 1, PLAN_DEGREE_MAX, &c->cp, err) ||
        yget_int(par, "parallel", "zero", false, 0, 3, &zero, err) ||
        yget_bool(par, "parallel", "sp", false, &c->sp, err) ||
        yget_enum(par, "parallel", "cp_algorithm", false, plan_cp_algorithm_names, &cp_alg, err) ||
        yget_map(root, "", "batch", true, &batch, err) ||
        yget_check_keys(batch, "batch", batch_keys, err) ||
        yget_int(batch, "batch", "global", true, 1, PLAN_BATCH_MAX, &c->global_batch, err) ||
        yget_int(batch, "batch", "micro", true, 1, PLAN_BATCH_MAX, &c->micro_batch, err) ||
        yget_int(batch, "batch", "seq", true, 1, PLAN_SEQ_MAX, &c->seq, err) ||
        yget_map(root, "", "pipeline", false, &pipe, err) ||
        yget_check_keys(pipe, "pipeline", pipeline_keys, err) ||
        yget_enum(pipe, "pipeline", "schedule", false, plan_schedule_names, &sched, err) ||
        yget_int(pipe, "pipeline", "virtual", false, 1, 1024, &c->virtual_stages, err) ||
        read_stage_layers(pipe, c, err) || read_uneven_split(pipe, c, err) ||
        yget_bool(pipe, "pipeline", "deallocate_outputs", false, &c->deallocate_outputs, err) ||
        yget_bool(pipe, "pipeline", "partition_messages", false, &c->partition_messages, err) ||
        read_recompute(root, c, err) ||
        read_precision(root, out, err) ||
        yget_enum(root, "", "optimizer", false, plan_optimizer_names, &opt, err) ||
        read_offload(root, c, err) || yget_map(root, "", "memory", false, &mem, err) ||
        yget_check_keys(mem, "memory", memory_keys, err) ||
        yget_bytes(mem, "memory", "bucket", false, 0, &c->bucket_bytes, err) ||
        spec_limit(mem, "memory", "bucket", (double)c->bucket_bytes, 0, PLAN_BUFFER_MAX,
                   "a bucket of at most 1 TiB", err) ||
        yget_bytes(mem, "memory", "workspace", false, 0, &c->workspace_bytes, err) ||
        spec_limit(mem, "memory", "workspace", (double)c->workspace_bytes, 0, PLAN_BUFFER_MAX,
                   "a workspace of at most 1 TiB", err) ||
        yget_quantity(mem, "memory", "fragmentation", false, UNIT_NONE, 0, &c->fragmentation,
                      err) ||
        read_placement(root, c, err) || read_overlap(root, c, err) ||
        read_train(root, &out->train, err) || read_zero3(root, c, err) ||
        read_moe(root, par, out, err))
        return -1;
    c->zero = (int)zero;
    c->cp_algorithm = (uint8_t)cp_alg;
    c->schedule = (plan_schedule)sched;
    c->optimizer = (plan_optimizer)opt;
    plan_locs *l = &out->locs;
    l->self = root->loc;
    loc_of(&l->gpus, root, "gpus");
    l->parallel = par->loc;
    loc_of(&l->dp, par, "dp");
    loc_of(&l->tp, par, "tp");
    loc_of(&l->pp, par, "pp");
    loc_of(&l->cp, par, "cp");
    loc_of(&l->zero, par, "zero");
    loc_of(&l->sp, par, "sp");
    loc_of(&l->cp_algorithm, par, "cp_algorithm");
    loc_of(&l->deallocate_outputs, pipe, "deallocate_outputs");
    loc_of(&l->partition_messages, pipe, "partition_messages");
    loc_of(&l->global, batch, "global");
    loc_of(&l->micro, batch, "micro");
    loc_of(&l->seq, batch, "seq");
    loc_of(&l->schedule, pipe, "schedule");
    loc_of(&l->virtual_stages, pipe, "virtual");
    loc_of(&l->stage_layers, pipe, "layers");
    loc_of(&l->first_stage_layers, pipe, "first_stage_layers");
    loc_of(&l->last_stage_layers, pipe, "last_stage_layers");
    loc_of(&l->account_for_embedding, pipe, "account_for_embedding");
    loc_of(&l->account_for_loss, pipe, "account_for_loss");
    loc_of(&l->recompute, root, "recompute");
    loc_of(&l->precision, root, "precision");
    loc_of(&l->placement, root, "placement");
    if (c->fragmentation >= 1.0) {
        const ynode *n = ynode_get(mem, "fragmentation");
        return ps_err_at(err, &n->loc, "memory.fragmentation",
                         "expected a fraction in [0, 1), found %s", n->str);
    }
    return 0;
}

/* kernels: {attention: NAME}: one of the cluster's named attention kernels
 * (gpu.efficiency.attention_kernels; docs/time.md §1), looked up once the
 * cluster is loaded. Absent: the cluster's flat attention efficiency.
 * kernels.grad_accumulation_fusion: bool, default true (docs/time.md §2).
 * kernels.elementwise: fused (default) | eager (docs/time.md §2). */
static int resolve_kernels(const ynode *root, plan_spec *out, ps_err *err) {
    const ynode *k = NULL;
    char name[64] = "", elementwise[16] = "fused";
    bool fused = true;
    out->cfg.attn_kernel = 0;
    out->cfg.grad_acc_unfused = false;
    out->cfg.eager_elementwise = false;
    if (yget_map(root, "", "kernels", false, &k, err)) return -1;
    if (!k) return 0;
    if (yget_check_keys(k, "kernels", kernels_keys, err) ||
        yget_bool(k, "kernels", "grad_accumulation_fusion", false, &fused, err) ||
        yget_str(k, "kernels", "elementwise", false, elementwise, sizeof elementwise, err) ||
        yget_str(k, "kernels", "attention", false, name, sizeof name, err))
        return -1;
    out->cfg.grad_acc_unfused = !fused;
    if (strcmp(elementwise, "fused") && strcmp(elementwise, "eager"))
        return ps_err_at(err, &ynode_get(k, "elementwise")->loc, "kernels.elementwise",
                         "expected fused or eager, found '%s'", elementwise);
    out->cfg.eager_elementwise = !strcmp(elementwise, "eager");
    const ynode *a = ynode_get(k, "attention");
    if (!a) return 0;
    const cluster_eff *e = &out->cluster.cfg.eff;
    char known[CLUSTER_ATTN_KERNELS * (CLUSTER_KERNEL_NAME + 2) + 8] = "";
    for (int i = 0; i < e->attn_kernel_n; i++) {
        if (!strcmp(name, e->attn_kernel[i].name)) {
            out->cfg.attn_kernel = i + 1;
            return 0;
        }
        strcat(known, i ? ", " : "");
        strcat(known, e->attn_kernel[i].name);
    }
    return ps_err_at(err, &a->loc, "kernels.attention",
                     "expected an attention kernel that cluster '%s' measures "
                     "(gpu.efficiency.attention_kernels: %s), found '%s'",
                     out->cluster.name, e->attn_kernel_n ? known : "none", name);
}

/* A plan's name says what --set changed, unless a --set names it: "NAME (--set k=v, ...)",
 * cut with "..." where it does not fit, so that no header, profile or chart shows the file's
 * name over a plan the command line changed. */
static void name_overrides(char *name, size_t size, const plan_override *ov, int n) {
    if (n <= 0 || size < 8) return;
    for (int i = 0; i < n; i++)
        if (!strncmp(ov[i].text, "name=", 5)) return;
    int cut = 0;
    for (int i = 0; i <= n && !cut; i++) {
        const size_t at = strlen(name);
        const int w = i < n ? snprintf(name + at, size - at, "%s%s", i ? ", " : " (--set ", ov[i].text)
                            : snprintf(name + at, size - at, ")");
        cut = w < 0 || (size_t)w >= size - at;
    }
    if (cut) memcpy(name + size - 5, "...)", 5);
}

static int load_from(ynode *root, const plan_override *overrides, int n_overrides, bool check,
                     plan_spec *out, ps_err *err) {
    bool dp_auto = false;
    int rc = 0;
    for (int i = 0; i < n_overrides && !rc; i++)
        rc = apply_override(root, overrides[i].text, err);
    /* framework profile: its plan defaults go under the plan's own fields
     * (--set included) before they are read (framework_load.h) */
    if (!rc) rc = framework_apply(root, out, err);
    if (!rc) rc = decode(root, out, &dp_auto, err);
    if (!rc) rc = load_model_and_cluster(root, out, err);
    if (!rc) framework_apply_model(&out->cfg.framework, &out->model.cfg);
    if (!rc) rc = check_recompute_tensors(root, out, err);
    if (!rc) rc = resolve_kernels(root, out, err);
    if (!rc) rc = distill_load(root, out, err);
    ynode_free(root);
    if (rc) return -1;
    plan_cfg *c = &out->cfg;
    if (!out->name[0]) snprintf(out->name, sizeof out->name, "%.127s", out->path);
    name_overrides(out->name, sizeof out->name, overrides, n_overrides);
    /* gpus: left out, the plan's own degrees (the cluster's size is a limit, not
     * a request); with dp: auto there are no degrees to multiply, so the whole
     * cluster */
    if (!c->gpus) {
        out->locs.gpus = out->locs.parallel; /* errors about the count point at the degrees */
        out->gpus_derived = !dp_auto;
        if (dp_auto) {
            c->gpus = cluster_gpus(&out->cluster.cfg);
        } else if (!plan_degrees_product(c, &c->gpus) || c->gpus > PLAN_GPUS_MAX) {
            return ps_err_at(err, &out->locs.parallel, "parallel",
                             "expected dp*tp*pp*cp (the GPUs of a plan without gpus:) to be at "
                             "most %lld, found %lld*%lld*%lld*%lld",
                             (long long)PLAN_GPUS_MAX, (long long)c->dp, (long long)c->tp,
                             (long long)c->pp, (long long)c->cp);
        }
    }
    if (dp_auto) {
        int64_t rest = c->tp * c->pp * c->cp;
        if (c->gpus % rest)
            return ps_err_at(err, &out->locs.dp, "parallel.dp",
                             "expected tp*pp*cp = %lld to divide the %lld GPUs so that dp: auto "
                             "can be derived, found a remainder of %lld",
                             (long long)rest, (long long)c->gpus, (long long)(c->gpus % rest));
        c->dp = c->gpus / rest;
    }
    return check ? plan_check(out, err) : 0;
}

int plan_load_node(ynode *root, const char *origin, bool check, plan_spec *out, ps_err *err) {
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", origin);
    return load_from(root, NULL, 0, check, out, err);
}

int plan_load(const char *path, const plan_override *overrides, int n_overrides,
              plan_spec *out, ps_err *err) {
    if (!path) return plan_load_text(plan_default_yaml, DEFAULT_ORIGIN, overrides, n_overrides, out, err);
    ynode *root = NULL;
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    if (ynode_load_file(path, &root, err)) return -1;
    return load_from(root, overrides, n_overrides, true, out, err);
}

int plan_load_text(const char *text, const char *origin, const plan_override *overrides,
                   int n_overrides, plan_spec *out, ps_err *err) {
    ynode *root = NULL;
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", origin);
    if (ynode_load_string(text, origin, &root, err)) return -1;
    return load_from(root, overrides, n_overrides, true, out, err);
}
