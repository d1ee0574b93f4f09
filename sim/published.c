/* published.c — published cases to plans (see published.h, docs/accuracy.md). */
#include "published.h"

#include <stdio.h>
#include <string.h>

#include "yget.h"

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

int published_plan(const ynode *root, const ynode *c, const char *path, plan_spec *out,
                   published_case *info, ps_err *err) {
    char text[8192] = "";
    const ynode *model = ynode_get(c, "model"), *cluster = ynode_get(root, "cluster");
    int64_t seq = 0;
    memset(info, 0, sizeof *info);
    if (yget_str(c, "case", "name", true, info->name, sizeof info->name, err) ||
        read_published(c, "case", info, err))
        return -1;
    if (yget_int(c, "case", "seq", false, 1, INT64_MAX, &seq, err) ||
        yget_int(model, "model", "seq", false, 1, INT64_MAX, &seq, err))
        return -1;
    line(text, sizeof text, "name", ynode_get(c, "name"));
    line(text, sizeof text, "cluster", cluster);
    line(text, sizeof text, "gpus", ynode_get(c, "gpus"));
    if (model && model->kind == YN_MAP)
        gpt_model(model, seq, text, sizeof text);
    else
        line(text, sizeof text, "model", model);
    size_t len = strlen(text);
    snprintf(text + len, sizeof text - len, "parallel: ");
    flow(ynode_get(c, "parallel"), text, sizeof text);
    len = strlen(text) - 1; /* drop "}" to add sp */
    const ynode *sp = ynode_get(c, "sp");
    snprintf(text + len, sizeof text - len, ", sp: %s}\n", sp && sp->str ? sp->str : "false");
    const ynode *micro = ynode_get(c, "micro_batch"), *sched = ynode_get(c, "schedule");
    const ynode *virt = ynode_get(c, "virtual"), *layers = ynode_get(c, "layers");
    len = strlen(text);
    snprintf(text + len, sizeof text - len, "batch: {global: %s, micro: %s, seq: %lld}\n",
             ynode_get(c, "global_batch") ? ynode_get(c, "global_batch")->str : "null",
             micro ? micro->str : "1", (long long)seq);
    len = strlen(text);
    snprintf(text + len, sizeof text - len, "pipeline: {schedule: %s, virtual: %s",
             sched && strcmp(sched->str, "unknown") ? sched->str : "1f1b",
             virt ? virt->str : "1");
    if (layers) {
        snprintf(text + strlen(text), sizeof text - strlen(text), ", layers: ");
        flow(layers, text, sizeof text);
    }
    snprintf(text + strlen(text), sizeof text - strlen(text), "}\n");
    line(text, sizeof text, "recompute", ynode_get(c, "recompute"));
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
    snprintf(origin, sizeof origin, "%s (case %.60s)", path, info->name);
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
