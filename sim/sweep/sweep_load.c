/* sweep_load.c — read a sweep spec: a base plan plus a `space:` of values
 * (see sweep.h, docs/sweep.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sweep/sweep.h"
#include "spec/yget.h"

const char sweep_default_yaml[] =
    "# parasim's built-in default sweep: every layout of Llama 3 8B on two DGX H100 nodes\n"
    "name: built-in default sweep (llama3-8b, 16x H100)\n"
    "model: llama3-8b\n"
    "cluster: dgx-h100\n"
    "gpus: 16\n"
    "batch: {global: 256, seq: 4096}\n"
    "precision: bf16-mixed\n"
    "optimizer: adamw\n"
    "space:\n"
    "  tp: auto\n"
    "  pp: auto\n"
    "  cp: [1, 2]\n"
    "  zero: auto\n"
    "  micro: auto\n"
    "  recompute: auto\n"
    "  schedule: auto\n"
    "  virtual: auto\n"
    "  sp: auto\n";

static const char *const space_keys[] = {"tp",       "pp",        "cp",       "zero",
                                         "micro",    "recompute", "schedule", "virtual",
                                         "sp",       "offload",   "overlap_dp", "overlap_tp",
                                         "placement", "ep", "etp",
                                         /* logit distillation (a base plan with distill:) */
                                         "distill_placement", "distill_top_k", NULL};
static const char *const offload_names[] = {"none", "optimizer", "activations", "both", NULL};

/* Remove key from a mapping and return its value (caller frees), or NULL. */
static ynode *detach(ynode *map, const char *key) {
    int i = ynode_find(map, key);
    if (i < 0) return NULL;
    ynode *v = map->items[i];
    free(map->keys[i]);
    for (int j = i + 1; j < map->n; j++) {
        map->keys[j - 1] = map->keys[j];
        map->items[j - 1] = map->items[j];
        map->key_locs[j - 1] = map->key_locs[j];
    }
    map->n--;
    return v;
}

/* Set path ("key" or "map.key") to value unless the spec gives it. */
static int set_default(ynode *root, const char *path, const char *value, ps_err *err) {
    const char *dot = strchr(path, '.');
    char parent[32];
    if (dot) {
        snprintf(parent, sizeof parent, "%.*s", (int)(dot - path), path);
        const ynode *p = ynode_get(root, parent);
        if (p && ynode_get(p, dot + 1)) return 0;
    } else if (ynode_get(root, path)) {
        return 0;
    }
    ynode *v = NULL;
    if (ynode_load_string(value, "(sweep default)", &v, err)) return -1;
    return ynode_set_path(root, path, v, err);
}

/* Divisors of n (for "auto" degrees): at most SWEEP_MAX_VALUES, which every
 * n below 2^24 respects (the most divisors such an n has is 448). */
static void divisors(int64_t n, sweep_list *l) {
    l->n = 0;
    for (int64_t d = 1; d <= n && l->n < SWEEP_MAX_VALUES; d++)
        if (n % d == 0) l->v[l->n++] = d;
}

static void range(sweep_list *l, int64_t lo, int64_t hi) {
    l->n = 0;
    for (int64_t v = lo; v <= hi && l->n < SWEEP_MAX_VALUES; v++) l->v[l->n++] = v;
}

static void one(sweep_list *l, int64_t v) {
    l->n = 1;
    l->v[0] = v;
}

/* A list field: `auto`, one value, or a list of values in [lo, hi] (names !=
 * NULL: enum words). Repeated values are kept once. */
static int read_list_in(const ynode *space, const char *key, const char *const *names,
                        int64_t lo, int64_t hi, const sweep_list *autov, sweep_list *out,
                        ps_err *err) {
    const ynode *n = ynode_get(space, key);
    char field[48], found[128];
    snprintf(field, sizeof field, "space.%s", key);
    if (!n || n->kind == YN_NULL) return 0; /* keep the base value */
    if (n->kind == YN_SCALAR && !strcmp(n->str, "auto")) {
        *out = *autov;
        return 0;
    }
    const int count = n->kind == YN_SEQ ? n->n : 1;
    if (n->kind == YN_MAP || count < 1 || count > SWEEP_MAX_VALUES)
        return ps_err_at(err, &n->loc, field,
                         "expected auto, a value or a list of 1 to %d values, found %s",
                         SWEEP_MAX_VALUES, ynode_describe(n, found, sizeof found));
    out->n = 0;
    for (int i = 0; i < count; i++) {
        const ynode *it = n->kind == YN_SEQ ? n->items[i] : n;
        int64_t v = -1;
        if (names) {
            for (int k = 0; it->kind == YN_SCALAR && names[k]; k++)
                if (!strcmp(it->str, names[k])) v = k;
            if (v < 0) {
                char list[256];
                return ps_err_at(err, &it->loc, field, "expected one of %s, found %s",
                                 yget_join(names, list, sizeof list),
                                 ynode_describe(it, found, sizeof found));
            }
        } else if (yget_node_int(it, field, lo, hi, &v, err)) {
            return -1;
        }
        int seen = 0;
        for (int j = 0; j < out->n; j++) seen |= out->v[j] == v;
        if (!seen) out->v[out->n++] = v;
    }
    return 0;
}

/* Degrees, micro-batches and virtual stages: positive integers. */
static int read_list(const ynode *space, const char *key, const char *const *names,
                     const sweep_list *autov, sweep_list *out, ps_err *err) {
    return read_list_in(space, key, names, 1, 1 << 24, autov, out, err);
}

static int read_placements(const ynode *space, sweep_space *sp, ps_err *err) {
    const ynode *n = ynode_get(space, "placement");
    char found[128];
    if (!n || n->kind == YN_NULL) return 0;
    if (n->kind != YN_SEQ || n->n < 1 || n->n > SWEEP_MAX_PLACEMENTS)
        return ps_err_at(err, &n->loc, "space.placement",
                         "expected a list of up to %d orders such as [[tp, cp, pp, dp], "
                         "[dp, cp, pp, tp]], found %s",
                         SWEEP_MAX_PLACEMENTS, ynode_describe(n, found, sizeof found));
    sp->n_placement = 0;
    for (int i = 0; i < n->n; i++) {
        const ynode *o = n->items[i];
        unsigned seen = 0;
        if (o->kind != YN_SEQ || o->n != PLAN_GROUPS)
            return ps_err_at(err, &o->loc, "space.placement",
                             "expected an order of the four groups such as [tp, cp, pp, dp], "
                             "found %s", ynode_describe(o, found, sizeof found));
        for (int j = 0; j < PLAN_GROUPS; j++) {
            int k = -1;
            for (int g = 0; o->items[j]->kind == YN_SCALAR && plan_group_names[g]; g++)
                if (!strcmp(o->items[j]->str, plan_group_names[g])) k = g;
            if (k < 0 || (seen >> k & 1u))
                return ps_err_at(err, &o->items[j]->loc, "space.placement",
                                 "expected each of dp, tp, pp, cp exactly once, found %s",
                                 k < 0 ? ynode_describe(o->items[j], found, sizeof found)
                                       : "a repeat");
            seen |= 1u << k;
            sp->placement[sp->n_placement][j] = (uint8_t)k;
        }
        int repeat = 0; /* a repeated order counts once */
        for (int r = 0; r < sp->n_placement; r++)
            repeat |= !memcmp(sp->placement[r], sp->placement[sp->n_placement], PLAN_GROUPS);
        if (!repeat) sp->n_placement++;
    }
    return 0;
}

static const char *const bool_names[] = {"false", "true", NULL};

/* Logit distillation's axes (docs/sweep.md): distill_placement (auto: shared
 * and separate) and distill_top_k (auto: the base plan's), only for a base
 * plan with distill:; separate needs the base plan's distill.gpus. */
static int read_distill(const ynode *space, sweep_spec *s, ps_err *err) {
    sweep_space *sp = &s->space;
    const plan_distill *d = &s->base.cfg.distill;
    sweep_list a;
    one(&sp->distill_placement, d->placement);
    one(&sp->distill_top_k, d->top_k);
    const ynode *pl = ynode_get(space, "distill_placement"), *k = ynode_get(space, "distill_top_k");
    if (!d->set) {
        const ynode *n = pl ? pl : k;
        if (n)
            return ps_err_at(err, &n->loc, pl ? "space.distill_placement" : "space.distill_top_k",
                             "expected no distillation axis without a distill: section in the "
                             "base plan (it names the teacher), found one");
        return 0;
    }
    range(&a, 0, 1);
    if (read_list(space, "distill_placement", plan_distill_placement_names, &a,
                  &sp->distill_placement, err))
        return -1;
    one(&a, d->top_k);
    if (read_list_in(space, "distill_top_k", NULL, 0, s->base.model.cfg.vocab, &a,
                     &sp->distill_top_k, err))
        return -1;
    for (int i = 0; i < sp->distill_placement.n; i++)
        if (sp->distill_placement.v[i] == DISTILL_SEPARATE && d->gpus < 1)
            return ps_err_at(err, &pl->loc, "space.distill_placement",
                             "expected distill.gpus (the teacher's own GPUs) in the base plan to "
                             "sweep placement separate, found none");
    return 0;
}

static int read_space(const ynode *space, sweep_spec *s, ps_err *err) {
    const plan_cfg *b = &s->base.cfg;
    sweep_space *sp = &s->space;
    sweep_list a;
    one(&sp->tp, b->tp);
    one(&sp->pp, b->pp);
    one(&sp->cp, b->cp);
    one(&sp->zero, b->zero);
    one(&sp->micro, b->micro_batch);
    one(&sp->recompute, b->recompute);
    one(&sp->schedule, b->schedule);
    one(&sp->virt, b->virtual_stages);
    one(&sp->sp, b->sp);
    one(&sp->offload, (b->offload_optimizer ? 1 : 0) | (b->offload_activations ? 2 : 0));
    one(&sp->overlap_dp, b->overlap_dp);
    one(&sp->overlap_tp, b->overlap_tp);
    one(&sp->ep, b->ep);
    one(&sp->etp, b->etp);
    sp->n_placement = 1;
    memcpy(sp->placement[0], b->placement, PLAN_GROUPS);
    if (space && space->kind != YN_MAP) {
        char found[128];
        return ps_err_at(err, &space->loc, "space", "expected a mapping of plan fields to "
                         "values, found %s", ynode_describe(space, found, sizeof found));
    }
    if (yget_check_keys(space, "space", space_keys, err)) return -1;
    divisors(b->gpus, &a);
    if (read_list(space, "tp", NULL, &a, &sp->tp, err) ||
        read_list_in(space, "pp", NULL, 1, PLAN_MAX_STAGES, &a, &sp->pp, err) ||
        read_list(space, "cp", NULL, &a, &sp->cp, err))
        return -1;
    range(&a, 0, 3);
    if (read_list_in(space, "zero", NULL, 0, 3, &a, &sp->zero, err)) return -1;
    a.n = 0;
    for (int64_t v = 1; v <= 16; v *= 2) a.v[a.n++] = v;
    if (read_list(space, "micro", NULL, &a, &sp->micro, err)) return -1;
    range(&a, 0, 2);
    /* auto: today's three; op, gelu, gelu+norm when listed; a custom list is
     * the base plan's recompute: (docs/sweep.md) */
    if (read_list(space, "recompute", plan_recompute_policy_names, &a, &sp->recompute, err))
        return -1;
    range(&a, 0, 3);
    if (read_list(space, "schedule", plan_schedule_names, &a, &sp->schedule, err)) return -1;
    a.n = 0;
    for (int64_t v = 2; v <= 8; v++)
        if (v != 5 && v != 7) a.v[a.n++] = v;
    if (read_list_in(space, "virtual", NULL, 1, 1024, &a, &sp->virt, err)) return -1;
    range(&a, 0, 1);
    if (read_list(space, "sp", bool_names, &a, &sp->sp, err) ||
        read_list(space, "overlap_dp", bool_names, &a, &sp->overlap_dp, err) ||
        read_list(space, "overlap_tp", bool_names, &a, &sp->overlap_tp, err))
        return -1;
    range(&a, 0, 3);
    if (read_list(space, "offload", offload_names, &a, &sp->offload, err)) return -1;
    /* expert layout (MoE models; docs/sweep.md): ep auto = the divisors of the
     * experts, etp auto = as tp (0) and 1 */
    divisors(s->base.model.cfg.experts > 0 ? s->base.model.cfg.experts : 1, &a);
    if (read_list_in(space, "ep", NULL, 1, PLAN_DEGREE_MAX, &a, &sp->ep, err)) return -1;
    a.n = 2, a.v[0] = 0, a.v[1] = 1;
    if (read_list_in(space, "etp", NULL, 1, PLAN_DEGREE_MAX, &a, &sp->etp, err)) return -1;
    /* a dense model has no expert layout: a list for it would be ignored */
    if (!model_is_moe(&s->base.model.cfg))
        for (int i = 0; i < 2; i++) {
            const char *key = i ? "etp" : "ep";
            const ynode *n = ynode_get(space, key);
            if (n && !(n->kind == YN_SCALAR && !strcmp(n->str, "auto")))
                return ps_err_at(err, &n->loc, i ? "space.etp" : "space.ep",
                                 "expected no %s list for model '%s', a dense model (no "
                                 "experts: an expert layout varies only for a mixture of "
                                 "experts), found one",
                                 key, s->base.model.name);
        }
    if (read_distill(space, s, err)) return -1;
    return read_placements(space, sp, err);
}

static int load_root(ynode *root, const char *origin, sweep_spec *out, ps_err *err) {
    char found[128];
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", origin);
    if (root->kind != YN_MAP) {
        int rc = ps_err_at(err, &root->loc, NULL, "expected a sweep (a mapping of fields), "
                           "found %s", ynode_describe(root, found, sizeof found));
        ynode_free(root);
        return rc;
    }
    if (!ynode_get(root, "gpus")) {
        int rc = ps_err_at(err, &root->loc, "gpus", "missing field (expected the number of GPUs "
                           "the sweep lays plans out on)");
        ynode_free(root);
        return rc;
    }
    ynode *space = detach(root, "space");
    /* batch.micro only inside a batch the spec gives: a missing batch is
     * reported at the spec's root, not at an injected default */
    int rc = set_default(root, "parallel.dp", "auto", err) ||
             (ynode_get(root, "batch") && set_default(root, "batch.micro", "1", err));
    /* no recompute default here: a framework profile's (merged while the
     * plan loads) must reach the base plan, and decoding defaults to none */
    if (!rc) rc = plan_load_node(root, origin, false, &out->base, err);
    else ynode_free(root);
    if (!rc) {
        snprintf(out->name, sizeof out->name, "%s", out->base.name);
        rc = read_space(space, out, err);
    }
    ynode_free(space);
    return rc;
}

int sweep_load(const char *path, sweep_spec *out, ps_err *err) {
    if (!path) return sweep_load_text(sweep_default_yaml, "(built-in default sweep)", out, err);
    ynode *root = NULL;
    if (ynode_load_file(path, &root, err)) return -1;
    return load_root(root, path, out, err);
}

int sweep_load_text(const char *text, const char *origin, sweep_spec *out, ps_err *err) {
    ynode *root = NULL;
    if (ynode_load_string(text, origin, &root, err)) return -1;
    return load_root(root, origin, out, err);
}
