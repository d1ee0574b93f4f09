/* plot_profile.c — read a run profile back for the charts (see plot_profile.h). */
#include "report/plot_profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/yget.h"
#include "spec/ynode.h"

#define FIELD 200

static const ynode_limits profile_limits = {PLOT_PROFILE_MAX_BYTES, PLOT_PROFILE_MAX_NODES,
                                            YNODE_MAX_DEPTH};

/* The list under key, required. */
static int get_seq(const ynode *map, const char *path, const char *key, const ynode **out,
                   ps_err *err) {
    char field[FIELD], buf[64];
    yget_field(path, key, field, sizeof field);
    const ynode *n = ynode_get(map, key);
    if (!n) return ps_err_at(err, &map->loc, field, "missing (expected a list)");
    if (n->kind != YN_SEQ)
        return ps_err_at(err, &n->loc, field, "expected a list, found %s",
                         ynode_describe(n, buf, sizeof buf));
    *out = n;
    return 0;
}

/* Item i of a list, which must be a mapping. */
static int get_item_map(const ynode *seq, const char *field, int i, char *path, ps_err *err) {
    char buf[64];
    snprintf(path, FIELD, "%.160s[%d]", field, i);
    if (seq->items[i]->kind != YN_MAP)
        return ps_err_at(err, &seq->items[i]->loc, path, "expected a mapping, found %s",
                         ynode_describe(seq->items[i], buf, sizeof buf));
    return 0;
}

/* A list of MEM_COUNT byte counts in the profile's category order (cat[i]
 * is the category of position i) into out[category]. */
static int get_mem(const ynode *map, const char *path, const char *key, const int *cat,
                   int64_t out[MEM_COUNT], ps_err *err) {
    const ynode *n = NULL;
    char field[FIELD], item[FIELD + 16];
    if (get_seq(map, path, key, &n, err)) return -1;
    yget_field(path, key, field, sizeof field);
    if (n->n != MEM_COUNT)
        return ps_err_at(err, &n->loc, field,
                         "expected %d byte counts (one per category), found %d", MEM_COUNT, n->n);
    for (int i = 0; i < MEM_COUNT; i++) {
        snprintf(item, sizeof item, "%s[%d]", field, i);
        if (yget_node_int(n->items[i], item, 0, PROGRAM_MAX_BYTE_SUM, &out[cat[i]], err)) return -1;
    }
    return 0;
}

static int get_i32(const ynode *map, const char *path, const char *key, int64_t min, int64_t max,
                   int32_t *out, ps_err *err) {
    int64_t v = 0;
    if (yget_int(map, path, key, true, min, max, &v, err)) return -1;
    *out = (int32_t)v;
    return 0;
}

static int get_s(const ynode *map, const char *path, const char *key, double *out, ps_err *err) {
    return yget_quantity(map, path, key, true, UNIT_SECONDS, 0, out, err);
}

static int read_header(const ynode *root, plot_profile *p, int *cat, ps_err *err) {
    char buf[PS_LOC_FILE_MAX], field[FIELD];
    const ynode *f = ynode_get(root, "format");
    if (!f || f->kind != YN_SCALAR || strcmp(f->str, "parasim-profile"))
        return ps_err_at(err, f ? &f->loc : &root->loc, "format",
                         "expected \"parasim-profile\" (the JSON that parasim run -o writes), "
                         "found %s",
                         f ? ynode_describe(f, buf, sizeof buf) : "no format field");
    int64_t v = 0;
    if (yget_int(root, "", "version", true, 1, 1000, &v, err)) return -1;
    if (v != PLOT_PROFILE_VERSION)
        return ps_err_at(err, &ynode_get(root, "version")->loc, "version",
                         "expected %d, found %lld%s", PLOT_PROFILE_VERSION, (long long)v,
                         v < PLOT_PROFILE_VERSION
                             ? " (an older profile, rank 0 only: run parasim run again)"
                             : " (a newer parasim wrote it)");
    if (yget_str(root, "", "plan", true, p->plan, sizeof p->plan, err) ||
        yget_str(root, "", "model", true, p->model, sizeof p->model, err) ||
        yget_str(root, "", "cluster", true, p->cluster, sizeof p->cluster, err) ||
        yget_str(root, "", "backend", true, p->backend, sizeof p->backend, err) ||
        yget_str(root, "", "params_dtype", true, p->params_dtype, sizeof p->params_dtype, err) ||
        get_i32(root, "", "ranks", 1, PLOT_PROFILE_MAX_RANKS, &p->n_ranks, err) ||
        get_i32(root, "", "event_steps", 0, PROGRAM_MAX_STEPS, &p->event_steps, err))
        return -1;
    const ynode *par = NULL;
    if (yget_map(root, "", "parallel", true, &par, err) ||
        get_i32(par, "parallel", "dp", 1, INT32_MAX, &p->dp, err) ||
        get_i32(par, "parallel", "tp", 1, INT32_MAX, &p->tp, err) ||
        get_i32(par, "parallel", "pp", 1, INT32_MAX, &p->pp, err) ||
        get_i32(par, "parallel", "cp", 1, INT32_MAX, &p->cp, err) ||
        get_i32(par, "parallel", "zero", 0, 3, &p->zero, err))
        return -1;
    const ynode *c = NULL;
    if (get_seq(root, "", "categories", &c, err)) return -1;
    if (c->n != MEM_COUNT)
        return ps_err_at(err, &c->loc, "categories", "expected the %d memory categories, found %d",
                         MEM_COUNT, c->n);
    int seen[MEM_COUNT] = {0};
    for (int i = 0; i < MEM_COUNT; i++) {
        snprintf(field, sizeof field, "categories[%d]", i);
        const ynode *n = c->items[i];
        int k = -1;
        for (int j = 0; n->kind == YN_SCALAR && j < MEM_COUNT; j++)
            if (!strcmp(n->str, mem_cat_names[j])) k = j;
        if (k < 0 || seen[k])
            return ps_err_at(err, &n->loc, field,
                             "expected one of params, grads, master, optimizer, activations, "
                             "buffers, workspace (each once), found %s",
                             ynode_describe(n, buf, sizeof buf));
        seen[k] = 1;
        cat[i] = k;
    }
    return 0;
}

static int read_roles(const ynode *root, plot_profile *p, const int *cat, ps_err *err) {
    const ynode *s = NULL;
    char path[FIELD], sub[FIELD + 16];
    if (get_seq(root, "", "roles", &s, err)) return -1;
    if (s->n < 1) return ps_err_at(err, &s->loc, "roles", "expected at least one role, found none");
    p->n_roles = s->n;
    p->roles = calloc((size_t)s->n, sizeof *p->roles);
    if (!p->roles) return ps_err_set(err, "out of memory");
    for (int i = 0; i < s->n; i++) {
        prof_role *r = &p->roles[i];
        int32_t idx = 0;
        if (get_item_map(s, "roles", i, path, err)) return -1;
        const ynode *m = s->items[i];
        if (get_i32(m, path, "role", 0, INT32_MAX, &idx, err)) return -1;
        if (idx != i)
            return ps_err_at(err, &ynode_get(m, "role")->loc, yget_field(path, "role", sub, FIELD),
                             "expected %d (roles are listed in order), found %d", i, (int)idx);
        const ynode *pr = NULL;
        if (get_i32(m, path, "stage", 0, INT32_MAX, &r->stage, err) ||
            get_i32(m, path, "tp_rank", 0, INT32_MAX, &r->tp_rank, err) ||
            get_i32(m, path, "cp_rank", 0, INT32_MAX, &r->cp_rank, err) ||
            yget_map(m, path, "predicted", true, &pr, err))
            return -1;
        snprintf(sub, sizeof sub, "%s.predicted", path);
        if (get_mem(pr, sub, "peak", cat, r->ppeak, err) ||
            yget_int(pr, sub, "peak_total", true, 0, PROGRAM_MAX_BYTE_SUM, &r->ppeak_total, err))
            return -1;
    }
    return 0;
}

static int read_event(const ynode *m, const char *path, const int *cat, prof_event *e,
                      ps_err *err) {
    char field[FIELD];
    int kind = 0;
    const char *kinds[OP_KIND_COUNT + 1] = {NULL};
    for (int k = 0; k < OP_KIND_COUNT; k++)
        kinds[k] = prog_kind_names[k];
    e->mb = -1;
    int64_t mb = -1;
    if (get_i32(m, path, "op", 0, PROGRAM_MAX_OPS, &e->op, err) ||
        yget_enum(m, path, "kind", true, kinds, &kind, err) ||
        get_i32(m, path, "step", 1, PROGRAM_MAX_STEPS, &e->step, err) ||
        yget_int(m, path, "mb", false, 0, PROGRAM_MAX_MICRO_BATCHES, &mb, err) ||
        get_s(m, path, "start", &e->start, err) || get_s(m, path, "end", &e->end, err) ||
        get_s(m, path, "predicted_start", &e->pstart, err) ||
        get_s(m, path, "predicted_end", &e->pend, err) ||
        get_mem(m, path, "memory", cat, e->mem, err) ||
        get_mem(m, path, "predicted_memory", cat, e->pmem, err) ||
        yget_int(m, path, "peak_total", true, 0, PROGRAM_MAX_BYTE_SUM, &e->peak_total, err) ||
        yget_int(m, path, "predicted_peak_total", true, 0, PROGRAM_MAX_BYTE_SUM, &e->ppeak_total,
                 err))
        return -1;
    e->kind = (prog_kind)kind;
    e->mb = (int32_t)mb;
    if (e->end < e->start)
        return ps_err_at(err, &ynode_get(m, "end")->loc, yget_field(path, "end", field, FIELD),
                         "expected a time >= start (%.9g s), found %.9g s", e->start, e->end);
    if (e->pend < e->pstart)
        return ps_err_at(err, &ynode_get(m, "predicted_end")->loc,
                         yget_field(path, "predicted_end", field, FIELD),
                         "expected a time >= predicted_start (%.9g s), found %.9g s", e->pstart,
                         e->pend);
    return 0;
}

/* The list under key if present (NULL when absent), else as get_seq. */
static int get_seq_opt(const ynode *map, const char *path, const char *key, const ynode **out,
                       ps_err *err) {
    *out = NULL;
    return ynode_get(map, key) ? get_seq(map, path, key, out, err) : 0;
}

/* A rank's collectives (optional). */
static int read_colls(const ynode *m, const char *path, prof_rank *r, ps_err *err) {
    const ynode *cs = NULL;
    char sub[FIELD + 16], cpath[FIELD];
    if (get_seq_opt(m, path, "collectives", &cs, err)) return -1;
    if (!cs) return 0;
    r->colls = calloc((size_t)(cs->n ? cs->n : 1), sizeof *r->colls);
    if (!r->colls) return ps_err_set(err, "out of memory");
    snprintf(sub, sizeof sub, "%s.collectives", path);
    for (int k = 0; k < cs->n; k++) {
        prof_coll *c = &r->colls[k];
        const ynode *n = cs->items[k];
        if (get_item_map(cs, sub, k, cpath, err) ||
            yget_str(n, cpath, "group", true, c->group, sizeof c->group, err) ||
            yget_str(n, cpath, "coll", true, c->coll, sizeof c->coll, err) ||
            yget_int(n, cpath, "calls", true, 0, INT64_MAX, &c->calls, err) ||
            yget_int(n, cpath, "bytes", true, 0, INT64_MAX, &c->bytes, err) ||
            yget_int(n, cpath, "predicted_calls", true, 0, INT64_MAX, &c->pcalls, err) ||
            yget_int(n, cpath, "predicted_bytes", true, 0, INT64_MAX, &c->pbytes, err))
            return -1;
        r->n_colls = k + 1;
    }
    return 0;
}

/* The steps' measured and predicted seconds (optional). */
static int read_steps(const ynode *root, plot_profile *p, ps_err *err) {
    const ynode *s = NULL;
    char path[FIELD];
    if (get_seq_opt(root, "", "steps", &s, err)) return -1;
    if (!s) return 0;
    p->steps = calloc((size_t)(s->n ? s->n : 1), sizeof *p->steps);
    if (!p->steps) return ps_err_set(err, "out of memory");
    for (int k = 0; k < s->n; k++) {
        if (get_item_map(s, "steps", k, path, err) ||
            get_s(s->items[k], path, "seconds", &p->steps[k].seconds, err) ||
            get_s(s->items[k], path, "predicted_seconds", &p->steps[k].pseconds, err))
            return -1;
        p->n_steps = k + 1;
    }
    return 0;
}

static int read_rank(const ynode *s, int i, plot_profile *p, const int *cat, ps_err *err) {
    char path[FIELD], sub[FIELD + 16];
    prof_rank *r = &p->ranks[i];
    int32_t idx = 0;
    if (get_item_map(s, "rank_profiles", i, path, err)) return -1;
    const ynode *m = s->items[i], *me = NULL, *ev = NULL;
    if (get_i32(m, path, "rank", 0, INT32_MAX, &idx, err)) return -1;
    if (idx != i)
        return ps_err_at(err, &ynode_get(m, "rank")->loc, yget_field(path, "rank", sub, FIELD),
                         "expected %d (ranks are listed in order), found %d", i, (int)idx);
    if (get_i32(m, path, "role", 0, p->n_roles - 1, &r->role, err) ||
        yget_map(m, path, "measured", true, &me, err))
        return -1;
    snprintf(sub, sizeof sub, "%s.measured", path);
    if (get_mem(me, sub, "peak", cat, r->peak, err) ||
        yget_int(me, sub, "peak_total", true, 0, PROGRAM_MAX_BYTE_SUM, &r->peak_total, err) ||
        read_colls(m, path, r, err) || get_seq(m, path, "events", &ev, err))
        return -1;
    r->events = calloc((size_t)(ev->n ? ev->n : 1), sizeof *r->events);
    if (!r->events) return ps_err_set(err, "out of memory");
    for (int k = 0; k < ev->n; k++) {
        char epath[FIELD];
        snprintf(sub, sizeof sub, "%s.events", path);
        if (get_item_map(ev, sub, k, epath, err) ||
            read_event(ev->items[k], epath, cat, &r->events[k], err))
            return -1;
        if (k > 0 && r->events[k].op <= r->events[k - 1].op)
            return ps_err_at(err, &ynode_get(ev->items[k], "op")->loc,
                             yget_field(epath, "op", sub, FIELD),
                             "expected an op after %d (events are in op order), found %d",
                             (int)r->events[k - 1].op, (int)r->events[k].op);
        r->n_events = k + 1;
    }
    return 0;
}

int plot_profile_load(const char *path, plot_profile *out, ps_err *err) {
    ynode *root = NULL;
    memset(out, 0, sizeof *out);
    if (ynode_load_file_limits(path, &profile_limits, &root, err)) return -1;
    int cat[MEM_COUNT], rc = 0;
    char buf[64];
    const ynode *s = NULL;
    if (root->kind != YN_MAP)
        rc = ps_err_at(err, &root->loc, NULL,
                       "expected a parasim profile (a JSON object written by parasim run -o), "
                       "found %s",
                       ynode_describe(root, buf, sizeof buf));
    if (!rc) rc = read_header(root, out, cat, err);
    if (!rc) rc = read_roles(root, out, cat, err);
    if (!rc) rc = yget_quantity(root, "", "tokens_per_step", false, UNIT_NONE, 0,
                                &out->tokens_per_step, err);
    if (!rc) rc = read_steps(root, out, err);
    if (!rc) rc = get_seq(root, "", "rank_profiles", &s, err);
    if (!rc && s->n != out->n_ranks)
        rc = ps_err_at(err, &s->loc, "rank_profiles", "expected %d (ranks), found %d",
                       (int)out->n_ranks, s->n);
    if (!rc && !(out->ranks = calloc((size_t)out->n_ranks, sizeof *out->ranks)))
        rc = ps_err_set(err, "out of memory");
    for (int i = 0; !rc && i < out->n_ranks; i++)
        rc = read_rank(s, i, out, cat, err);
    ynode_free(root);
    if (rc) plot_profile_free(out);
    return rc;
}

const char *plot_profile_describe(const plot_profile *p, char *buf, int buf_len) {
    /* the layout that ran first: --set may have changed it, not the plan's name */
    snprintf(buf, (size_t)buf_len,
             "%s: dp %d x tp %d x pp %d x cp %d, ZeRO-%d, %s weights (plan: %s)", p->model,
             (int)p->dp, (int)p->tp, (int)p->pp, (int)p->cp, (int)p->zero, p->params_dtype,
             p->plan);
    return buf;
}

void plot_profile_free(plot_profile *p) {
    for (int i = 0; p->ranks && i < p->n_ranks; i++)
        free(p->ranks[i].events), free(p->ranks[i].colls);
    free(p->ranks);
    free(p->steps);
    free(p->roles);
    memset(p, 0, sizeof *p);
}
