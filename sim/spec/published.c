/* published.c — published cases to plans (see published.h, docs/accuracy.md). */
#include "spec/published.h"

#include <stdio.h>
#include <string.h>

#include "spec/yget.h"

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
    char ffn[32];
    yget_parse_int(str_of(m, "hidden", "0"), &h);
    snprintf(ffn, sizeof ffn, "%lld", (long long)(4 * h));
    const char *heads = str_of(m, "heads", "null");
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len,
             "model: {name: inline, layers: %s, hidden: %s, heads: %s, kv_heads: %s, "
             "ffn_hidden: %s, vocab: %s, tied_embeddings: true, norm: layernorm, mlp: gelu, "
             "attention: standard, dropout: 0.1, position: learned, max_position: %lld, "
             "bias: true}\n",
             str_of(m, "layers", "null"), str_of(m, "hidden", "null"), heads,
             str_of(m, "kv_heads", heads), str_of(m, "ffn_hidden", ffn),
             str_of(m, "vocab", "null"), (long long)seq);
}

static int read_published(const ynode *c, const char *path, published_case *info, ps_err *err) {
    const ynode *pub;
    static const char *const keys[] = {"tflops_per_gpu", "step_time_s", "mfu", NULL};
    static const int order[] = {1, 2, 0}; /* a measured time first, then MFU, then TFLOP/s */
    if (yget_map(c, path, "published", true, &pub, err)) return -1;
    for (int i = 0; i < 3; i++) {
        const int k = order[i];
        if (!ynode_get(pub, keys[k])) continue;
        info->kind = (published_kind)k;
        return yget_quantity(pub, "published", keys[k], true, UNIT_NONE, 1e-9, &info->value, err);
    }
    return ps_err_at(err, &pub->loc, "published",
                     "expected tflops_per_gpu, step_time_s or mfu, found none of them");
}

/* The case's fields, checked where they are written (so errors name the
 * file's own lines) before the plan text is generated from them. */
typedef struct {
    int64_t gpus, global, micro, seq, virt;
    int schedule, recompute;
    bool sp;
    const ynode *model, *parallel, *layers;
} case_fields;

static int read_case(const ynode *c, case_fields *k, ps_err *err) {
    static const char *const schedules[] = {"afab", "1f1b", "interleaved", "zero-bubble",
                                            "unknown", NULL};
    char found[128];
    memset(k, 0, sizeof *k);
    k->micro = k->virt = 1;
    k->schedule = SCHED_1F1B;
    k->model = ynode_get(c, "model");
    k->layers = ynode_get(c, "layers");
    if (yget_int(c, "case", "gpus", true, 1, 1 << 24, &k->gpus, err) ||
        yget_map(c, "case", "parallel", true, &k->parallel, err) ||
        yget_int(c, "case", "global_batch", true, 1, INT64_MAX, &k->global, err) ||
        yget_int(c, "case", "micro_batch", false, 1, INT64_MAX, &k->micro, err) ||
        yget_int(c, "case", "virtual", false, 1, 1024, &k->virt, err) ||
        yget_enum(c, "case", "schedule", false, schedules, &k->schedule, err) ||
        yget_enum(c, "case", "recompute", true, plan_recompute_names, &k->recompute, err) ||
        yget_bool(c, "case", "sp", false, &k->sp, err) ||
        yget_int(c, "case", "seq", false, 1, INT64_MAX, &k->seq, err))
        return -1;
    if (k->schedule == 4) k->schedule = SCHED_1F1B; /* unknown: the non-interleaved default */
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
    if (yget_str(c, "case", "name", true, info->name, sizeof info->name, err) ||
        read_published(c, "case", info, err) || read_case(c, &k, err))
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
    /* Megatron-LM's uneven split options, passed through to the plan's pipeline: (their
     * values are checked where the plan reads them) */
    static const char *const split_keys[] = {"first_stage_layers", "last_stage_layers",
                                             "account_for_embedding", "account_for_loss"};
    for (size_t i = 0; i < sizeof split_keys / sizeof split_keys[0]; i++) {
        const ynode *v = ynode_get(c, split_keys[i]);
        if (!v) continue;
        snprintf(text + strlen(text), sizeof text - strlen(text), ", %s: ", split_keys[i]);
        flow(v, text, sizeof text);
    }
    snprintf(text + strlen(text), sizeof text - strlen(text), "}\nrecompute: %s\n",
             plan_recompute_names[k.recompute]);
    /* plan fields for every case (file "plan:"), unless the case sets its own */
    const ynode *fp = ynode_get(root, "plan"), *cp = ynode_get(c, "plan");
    for (int i = 0; fp && i < fp->n; i++)
        if (!ynode_get(cp, fp->keys[i])) line(text, sizeof text, fp->keys[i], fp->items[i]);
    for (int i = 0; cp && i < cp->n; i++) line(text, sizeof text, cp->keys[i], cp->items[i]);
    if (!ynode_get(fp, "precision") && !ynode_get(cp, "precision"))
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
    case PUB_MFU: info->step_s = 0; break; /* the caller compares MFU directly */
    }
    return 0;
}
