/* published.c — published cases to plans (see published.h, docs/accuracy.md). */
#include "spec/published.h"

#include <stdio.h>
#include <string.h>

#include "spec/yget.h"

const char *const published_use_names[] = {"fit", "held_out", NULL};
/* One family per paper or framework release whose runs share a software stack
 * (docs/accuracy.md §1); a closed list, so a misspelt family cannot open a new
 * one and escape the leave-one-family-out check. */
const char *const published_family_names[] = {
    "megatron-ptdp", "megatron-sp", "deepspeed-zero3", "megatron-deepspeed", "llama3", "nemo",
    "llm-foundry",   "torchtitan",  "megatron-core",
    /* issue 12, mixture-of-experts runs (bench/published/moe-*.yaml): DeepSeek's
     * HAI-LLM, NeMo's MoE recipes, the Megatron-Core MoE README, NeMo AutoModel
     * (FSDP2 + expert parallelism) */
    "deepseek", "nemo-moe", "megatron-core-moe", "automodel", NULL};
const char *const published_mem_names[] = {"max_memory_allocated", "max_memory_reserved",
                                           "nvidia-smi", NULL};
const char *const published_mem_stage_names[] = {"heaviest", "last", NULL};

int64_t published_predicted_memory(published_mem mem, int64_t total, int64_t outside_allocator,
                                   int64_t fragmentation) {
    switch (mem) {
    case PUB_MEM_ALLOCATED: return total - outside_allocator - fragmentation;
    case PUB_MEM_RESERVED: return total - outside_allocator;
    case PUB_MEM_DEVICE:
    case PUB_MEM_NONE: break;
    }
    return total;
}

double published_flops_eq3(double B, double s, double l, double h, double V) {
    return 96.0 * B * s * l * h * h * (1.0 + s / (6.0 * h) + V / (16.0 * l * h));
}

const ynode *published_cases(const ynode *root, int *n, ps_err *err) {
    const ynode *c = ynode_get(root, "cases");
    char found[128];
    if (!c || c->kind != YN_SEQ) {
        ps_err_at(err, c ? &c->loc : &root->loc, "cases", "expected a list of cases, found %s",
                  ynode_describe(c, found, sizeof found));
        return NULL;
    }
    *n = c->n;
    return c;
}

/* Append YAML flow text of n to buf. */
static void flow(const ynode *n, char *buf, size_t cap) {
    size_t len = strlen(buf);
    if (!n || n->kind == YN_NULL) {
        snprintf(buf + len, cap - len, "null");
    } else if (n->kind == YN_SCALAR) {
        snprintf(buf + len, cap - len, n->plain ? "%s" : "\"%s\"", n->str);
    } else {
        snprintf(buf + len, cap - len, n->kind == YN_MAP ? "{" : "[");
        for (int i = 0; i < n->n; i++) {
            len = strlen(buf);
            if (n->kind == YN_MAP) snprintf(buf + len, cap - len, "%s%s: ", i ? ", " : "", n->keys[i]);
            else if (i) snprintf(buf + len, cap - len, ", ");
            flow(n->items[i], buf, cap);
        }
        len = strlen(buf);
        snprintf(buf + len, cap - len, n->kind == YN_MAP ? "}" : "]");
    }
}

static void line(char *buf, size_t cap, const char *key, const ynode *v) {
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s: ", key);
    flow(v, buf, cap);
    len = strlen(buf);
    snprintf(buf + len, cap - len, "\n");
}

/* A GPT-style model from an inline shape (Narayanan et al. 2021 §5.1: GPT-2/3
 * architecture, 4h MLP, learned positions, tied embeddings). */
static const char *str_of(const ynode *map, const char *key, const char *dflt) {
    const ynode *n = ynode_get(map, key);
    return n && n->kind == YN_SCALAR ? n->str : dflt;
}

static void gpt_model(const ynode *m, int64_t seq, char *buf, size_t cap) {
    int64_t h = 0;
    char ffn[32], pos[32];
    yget_parse_int(str_of(m, "hidden", "0"), &h);
    snprintf(ffn, sizeof ffn, "%lld", (long long)(4 * h));
    snprintf(pos, sizeof pos, "%lld", (long long)seq);
    const char *heads = str_of(m, "heads", "null");
    /* the GPT defaults; a key the case's shape sets replaces its default and
     * any other key of the shape is passed verbatim (model_load checks it) */
    const char *const keys[] = {"layers",   "hidden",          "heads", "kv_heads",  "ffn_hidden",
                                "vocab",    "tied_embeddings", "norm",  "mlp",       "attention",
                                "dropout",  "position",        "max_position", "bias", NULL};
    const char *const dflt[] = {"null", "null", heads,      heads,     ffn,     "null",   "true",
                                "layernorm", "gelu", "standard", "0.1", "learned", pos,  "true"};
    /* max_position only for learned positions (a rotary model has none) */
    const bool learned = !strcmp(str_of(m, "position", "learned"), "learned");
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "model: {name: inline");
    for (int i = 0; keys[i]; i++) {
        if (!strcmp(keys[i], "max_position") && !learned && !ynode_get(m, keys[i])) continue;
        len = strlen(buf);
        snprintf(buf + len, cap - len, ", %s: ", keys[i]);
        const ynode *v = ynode_get(m, keys[i]);
        if (v) flow(v, buf, cap);
        else snprintf(buf + strlen(buf), cap - strlen(buf), "%s", dflt[i]);
    }
    for (int i = 0; i < m->n; i++) {
        int known = !strcmp(m->keys[i], "seq");
        for (int j = 0; keys[j] && !known; j++) known = !strcmp(m->keys[i], keys[j]);
        if (known) continue;
        len = strlen(buf);
        snprintf(buf + len, cap - len, ", %s: ", m->keys[i]);
        flow(m->items[i], buf, cap);
    }
    snprintf(buf + strlen(buf), cap - strlen(buf), "}\n");
}

static int read_published(const ynode *c, const char *path, published_case *info, ps_err *err) {
    const ynode *pub;
    /* a measured time first, then throughput, then MFU, then TFLOP/s */
    static const char *const keys[] = {"step_time_s", "tokens_per_s", "tokens_per_s_per_gpu",
                                       "mfu", "tflops_per_gpu"};
    static const published_kind kinds[] = {PUB_STEP_TIME, PUB_TOKENS_PER_S,
                                           PUB_TOKENS_PER_S_PER_GPU, PUB_MFU, PUB_TFLOPS_EQ3};
    if (yget_map(c, path, "published", true, &pub, err)) return -1;
    info->kind = PUB_NO_TIME;
    for (int k = 0; k < 5; k++) {
        if (!ynode_get(pub, keys[k])) continue;
        info->kind = kinds[k];
        if (yget_quantity(pub, "published", keys[k], true, UNIT_NONE, 1e-9, &info->value, err))
            return -1;
        break;
    }
    int mem = PUB_MEM_NONE;
    if (ynode_get(pub, "peak_memory")) {
        if (yget_quantity(pub, "published", "peak_memory", true, UNIT_BYTES, 1.0, &info->mem_bytes,
                          err) ||
            yget_enum(pub, "published", "measured_by", true, published_mem_names, &mem, err))
            return -1;
        int stage = 0;
        if (yget_enum(pub, "published", "memory_stage", false, published_mem_stage_names, &stage,
                      err))
            return -1;
        info->mem_last_stage = stage == 1;
    }
    info->mem = (published_mem)mem;
    if (info->kind == PUB_NO_TIME && info->mem == PUB_MEM_NONE)
        return ps_err_at(err, &pub->loc, "published",
                         "expected step_time_s, tokens_per_s, tokens_per_s_per_gpu, mfu, "
                         "tflops_per_gpu or peak_memory, found none of them");
    return 0;
}

/* The mapping a case's `key` is read from: the case when it sets the key,
 * else the file (its default for every case). */
static const ynode *case_or_file(const ynode *root, const ynode *c, const char *key) {
    return ynode_get(c, key) ? c : root;
}

/* A string field of the case, or the file's default for it: `use` and
 * `family` are declared for every row before any fitting. */
static int read_declared(const ynode *root, const ynode *c, const char *key,
                         const char *const *names, const char *expected, int *out, ps_err *err) {
    const ynode *from = case_or_file(root, c, key);
    if (!ynode_get(from, key)) {
        char field[32];
        snprintf(field, sizeof field, "case.%s", key);
        return ps_err_at(err, &c->loc, field,
                         "missing field (expected %s, in the case or as the file's default)",
                         expected);
    }
    return yget_enum(from, from == c ? "case" : "", key, true, names, out, err);
}

static int read_use_family(const ynode *root, const ynode *c, published_case *info, ps_err *err) {
    int use = 0, family = 0;
    if (read_declared(root, c, "use", published_use_names, "fit or held_out", &use, err) ||
        read_declared(root, c, "family", published_family_names,
                      "a family of published_family_names (sim/spec/published.c)", &family, err))
        return -1;
    info->use = (published_use)use;
    snprintf(info->family, sizeof info->family, "%s", published_family_names[family]);
    return 0;
}

/* The case's fields, checked where they are written (so errors name the
 * file's own lines) before the plan text is generated from them. */
typedef struct {
    int64_t gpus, global, micro, seq, virt;
    int schedule, recompute;
    bool sp;
    const ynode *model, *parallel, *layers;
    const ynode *recompute_list; /* a list of saved-tensor names, passed verbatim */
} case_fields;

/* A case's schedule: any name of plan_schedule_names (so a schedule the plan
 * format gains, e.g. `dualpipe`, is accepted here without a second list), or
 * `unknown` (the source does not say: the non-interleaved default, 1f1b). */
static int read_schedule(const ynode *c, int *schedule, ps_err *err) {
    const ynode *n = ynode_get(c, "schedule");
    if (n && n->kind == YN_SCALAR && !strcmp(n->str, "unknown")) {
        *schedule = SCHED_1F1B;
        return 0;
    }
    return yget_enum(c, "case", "schedule", false, plan_schedule_names, schedule, err);
}

static int read_case(const ynode *c, case_fields *k, ps_err *err) {
    char found[128];
    memset(k, 0, sizeof *k);
    k->micro = k->virt = 1;
    k->schedule = SCHED_1F1B;
    k->model = ynode_get(c, "model");
    k->layers = ynode_get(c, "layers");
    const ynode *recompute = ynode_get(c, "recompute");
    if (yget_int(c, "case", "gpus", true, 1, 1 << 24, &k->gpus, err) ||
        yget_map(c, "case", "parallel", true, &k->parallel, err) ||
        yget_int(c, "case", "global_batch", true, 1, INT64_MAX, &k->global, err) ||
        yget_int(c, "case", "micro_batch", false, 1, INT64_MAX, &k->micro, err) ||
        yget_int(c, "case", "virtual", false, 1, 1024, &k->virt, err) ||
        read_schedule(c, &k->schedule, err) ||
        (recompute && recompute->kind == YN_SEQ
             ? (k->recompute_list = recompute, 0)
             : yget_enum(c, "case", "recompute", true, plan_recompute_policy_names,
                         &k->recompute, err)) ||
        yget_bool(c, "case", "sp", false, &k->sp, err) ||
        yget_int(c, "case", "seq", false, 1, INT64_MAX, &k->seq, err))
        return -1;
    if (!k->model || (k->model->kind != YN_SCALAR && k->model->kind != YN_MAP))
        return ps_err_at(err, k->model ? &k->model->loc : &c->loc, "case.model",
                         "expected a model name or a shape mapping, found %s",
                         ynode_describe(k->model, found, sizeof found));
    if (k->model->kind == YN_MAP &&
        yget_int(k->model, "case.model", "seq", false, 1, INT64_MAX, &k->seq, err))
        return -1;
    if (!k->seq)
        return ps_err_at(err, &c->loc, "case.seq",
                         "missing field (expected the sequence length, in the case or its model)");
    if (k->layers && k->layers->kind != YN_SEQ)
        return ps_err_at(err, &k->layers->loc, "case.layers",
                         "expected a list of layers per stage, found %s",
                         ynode_describe(k->layers, found, sizeof found));
    return 0;
}

int published_plan(const ynode *root, const ynode *c, const char *path, plan_spec *out,
                   published_case *info, ps_err *err) {
    char text[8192] = "";
    case_fields k;
    memset(info, 0, sizeof *info);
    info->mem = PUB_MEM_NONE;
    if (yget_str(c, "case", "name", true, info->name, sizeof info->name, err) ||
        read_use_family(root, c, info, err) || read_published(c, "case", info, err) ||
        read_case(c, &k, err))
        return -1;
    line(text, sizeof text, "cluster", ynode_get(root, "cluster"));
    snprintf(text + strlen(text), sizeof text - strlen(text), "gpus: %lld\n", (long long)k.gpus);
    if (k.model->kind == YN_MAP)
        gpt_model(k.model, k.seq, text, sizeof text);
    else
        line(text, sizeof text, "model", k.model);
    size_t len = strlen(text);
    snprintf(text + len, sizeof text - len, "parallel: ");
    flow(k.parallel, text, sizeof text);
    len = strlen(text) - 1; /* drop "}" to add sp */
    snprintf(text + len, sizeof text - len, "%ssp: %s}\n", k.parallel->n ? ", " : "",
             k.sp ? "true" : "false");
    len = strlen(text);
    snprintf(text + len, sizeof text - len,
             "batch: {global: %lld, micro: %lld, seq: %lld}\npipeline: {schedule: %s, virtual: %lld",
             (long long)k.global, (long long)k.micro, (long long)k.seq,
             plan_schedule_names[k.schedule], (long long)k.virt);
    if (k.layers) {
        snprintf(text + strlen(text), sizeof text - strlen(text), ", layers: ");
        flow(k.layers, text, sizeof text);
    }
    /* Megatron-LM's uneven split options, deallocate_outputs and partition_messages,
     * passed through to the plan's pipeline: (their
     * values are checked where the plan reads them) */
    static const char *const split_keys[] = {"first_stage_layers", "last_stage_layers",
                                             "account_for_embedding", "account_for_loss",
                                             "deallocate_outputs", "partition_messages"};
    for (size_t i = 0; i < sizeof split_keys / sizeof split_keys[0]; i++) {
        const ynode *v = ynode_get(c, split_keys[i]);
        if (!v) continue;
        snprintf(text + strlen(text), sizeof text - strlen(text), ", %s: ", split_keys[i]);
        flow(v, text, sizeof text);
    }
    snprintf(text + strlen(text), sizeof text - strlen(text), "}\n");
    if (k.recompute_list)
        line(text, sizeof text, "recompute", k.recompute_list);
    else
        snprintf(text + strlen(text), sizeof text - strlen(text), "recompute: %s\n",
                 plan_recompute_names[k.recompute]);
    /* the framework profile (case, else file), verbatim: plan_load checks it */
    const ynode *fw = ynode_get(case_or_file(root, c, "framework"), "framework");
    if (fw) line(text, sizeof text, "framework", fw);
    /* plan fields for every case (file "plan:"), unless the case sets its own */
    const ynode *fp = ynode_get(root, "plan"), *cp = ynode_get(c, "plan");
    for (int i = 0; fp && i < fp->n; i++)
        if (!ynode_get(cp, fp->keys[i])) line(text, sizeof text, fp->keys[i], fp->items[i]);
    for (int i = 0; cp && i < cp->n; i++) line(text, sizeof text, cp->keys[i], cp->items[i]);
    if (!fw && !ynode_get(fp, "precision") && !ynode_get(cp, "precision"))
        snprintf(text + strlen(text), sizeof text - strlen(text), "precision: bf16-mixed\n");
    if (!ynode_get(fp, "optimizer") && !ynode_get(cp, "optimizer"))
        snprintf(text + strlen(text), sizeof text - strlen(text), "optimizer: adamw\n");
    char origin[PS_LOC_FILE_MAX];
    snprintf(origin, sizeof origin, "%s (case %.60s, as a plan)", path, info->name);
    if (plan_load_text(text, origin, NULL, 0, out, err)) return -1;
    const plan_cfg *p = &out->cfg;
    const model_cfg *m = &out->model.cfg;
    switch (info->kind) {
    case PUB_TFLOPS_EQ3:
        info->step_s = published_flops_eq3((double)p->global_batch, (double)p->seq,
                                           (double)m->layers, (double)m->hidden,
                                           (double)m->vocab) /
                       (info->value * 1e12 * (double)p->gpus);
        break;
    case PUB_STEP_TIME: info->step_s = info->value; break;
    case PUB_TOKENS_PER_S:
        info->step_s = (double)p->global_batch * (double)p->seq / info->value;
        break;
    case PUB_TOKENS_PER_S_PER_GPU:
        info->step_s = (double)p->global_batch * (double)p->seq / (info->value * (double)p->gpus);
        break;
    case PUB_MFU: /* the caller compares MFU directly */
    case PUB_NO_TIME: info->step_s = 0; break;
    }
    return 0;
}
