/* distill_load.c — read and check a plan's `distill:` section (see
 * distill_load.h, docs/specs.md "distill"). */
#include "spec/distill_load.h"

#include <stdio.h>
#include <string.h>

#include "cost/distill.h"
#include "cost/infer.h"
#include "spec/spec_limit.h"
#include "spec/spec_path.h"
#include "spec/yget.h"

const char *const plan_distill_placement_names[] = {"shared", "separate", NULL};

static const char *const distill_keys[] = {"teacher", "weights",     "group_size", "placement",
                                           "gpus",    "temperature", "alpha",      "top_k",
                                           "checkpoint", NULL};

static void loc_of(ps_loc *loc, const ynode *map, const char *key) {
    const ynode *n = ynode_get(map, key);
    if (n) *loc = n->loc;
    else ps_loc_set(loc, "", 0, 0);
}

/* distill.teacher: as `model:` names one (a name in models/, a path, or an
 * inline mapping); a dense model over the student's vocabulary. */
static int load_teacher(const ynode *d, plan_spec *out, ps_err *err) {
    const ynode *t = ynode_get(d, "teacher");
    if (!t || t->kind == YN_NULL)
        return ps_err_at(err, t ? &t->loc : &d->loc, "distill.teacher",
                         "missing field (expected the teacher's model: a name such as tiny-10m, "
                         "a path to a model YAML or config.json, or an inline mapping)");
    if (model_from_plan_node(t, out->path, "distill.teacher", &out->teacher, err)) return -1;
    const model_cfg *tm = &out->teacher.cfg, *sm = &out->model.cfg;
    if (tm->vocab != sm->vocab)
        return ps_err_at(err, &t->loc, "distill.teacher",
                         "expected a teacher over the student's vocabulary of %lld tokens (%s; "
                         "the KD loss compares two distributions over one vocabulary), found "
                         "%s with vocab %lld",
                         (long long)sm->vocab, out->model.name, out->teacher.name,
                         (long long)tm->vocab);
    if (model_is_moe(tm))
        return ps_err_at(err, &t->loc, "distill.teacher",
                         "expected a dense teacher (a mixture-of-experts teacher's forward is "
                         "not costed yet), found %s with %lld experts",
                         out->teacher.name, (long long)tm->experts);
    return 0;
}

int distill_load(const ynode *root, plan_spec *out, ps_err *err) {
    plan_distill *o = &out->cfg.distill;
    const ynode *d = NULL;
    char found[128];
    *o = (plan_distill){.set = false, .placement = DISTILL_SHARED, .temperature = 1.0,
                        .alpha = 0.5};
    out->distill_checkpoint[0] = 0;
    if (yget_map(root, "", "distill", false, &d, err)) return -1;
    if (!d) return 0;
    /* default scheme: f32 for an fp32 plan (the runtime's), else bf16 */
    int weights = out->cfg.precision.params == DT_FP32 ? WQ_F32 : WQ_BF16;
    int placement = DISTILL_SHARED;
    if (yget_check_keys(d, "distill", distill_keys, err) || load_teacher(d, out, err) ||
        yget_enum(d, "distill", "weights", false, infer_weights_names, &weights, err) ||
        yget_int(d, "distill", "group_size", false, 0, INFER_GROUP_MAX, &o->group_size, err) ||
        yget_enum(d, "distill", "placement", false, plan_distill_placement_names, &placement,
                  err) ||
        yget_int(d, "distill", "gpus", false, 0, DISTILL_GPUS_MAX, &o->gpus, err) ||
        yget_quantity(d, "distill", "temperature", false, UNIT_NONE, -1e308, &o->temperature,
                      err) ||
        yget_quantity(d, "distill", "alpha", false, UNIT_NONE, -1e308, &o->alpha, err) ||
        spec_limit(d, "distill", "alpha", o->alpha, 0, 1, "a weight in [0, 1]", err) ||
        yget_int(d, "distill", "top_k", false, 0, out->model.cfg.vocab, &o->top_k, err))
        return -1;
    const ynode *n = ynode_get(d, "temperature");
    if (n && !(o->temperature > 0 && o->temperature <= DISTILL_TEMPERATURE_MAX))
        return ps_err_at(err, &n->loc, "distill.temperature",
                         "expected a temperature in (0, %g], found %s", DISTILL_TEMPERATURE_MAX,
                         n->str); /* (a number: yget_quantity read it) */
    o->weights = weights;
    o->placement = (uint8_t)placement;
    n = ynode_get(d, "checkpoint");
    if (n && (n->kind != YN_SCALAR || !n->str[0]))
        return ps_err_at(err, &n->loc, "distill.checkpoint",
                         "expected the path of a checkpoint (parasim run --save-weights), found "
                         "%s",
                         n->kind == YN_SCALAR ? "an empty value"
                                              : ynode_describe(n, found, sizeof found));
    if (n && yget_str(d, "distill", "checkpoint", false, out->distill_checkpoint,
                      sizeof out->distill_checkpoint, err))
        return -1;
    n = ynode_get(d, "gpus");
    if (o->placement == DISTILL_SEPARATE && o->gpus < 1)
        return ps_err_at(err, n ? &n->loc : &d->loc, "distill.gpus",
                         "expected the teacher's GPUs (an integer >= 1) with placement: "
                         "separate, found %s",
                         n ? n->str : "none"); /* (an integer: yget_int read it) */
    /* (gpus under shared is ignored: a sweep over distill_placement reads it
     * for its separate points) */
    /* the scheme's group on an unsplit teacher (a tp split is distill_spec_check's) */
    infer_cfg ic;
    infer_cfg_init(&ic);
    ic.weights = (infer_weights)o->weights;
    ic.group_size = o->group_size;
    ps_err g = {{0}};
    if (infer_group_check(&out->teacher.cfg, &ic, &g)) {
        const ynode *gs = ynode_get(d, "group_size");
        return ps_err_at(err, gs ? &gs->loc : &d->loc, "distill.group_size", "%s (teacher %s)",
                         g.msg, out->teacher.name);
    }
    o->set = true;
    loc_of(&out->distill_locs.teacher, d, "teacher");
    loc_of(&out->distill_locs.weights, d, "weights");
    loc_of(&out->distill_locs.group_size, d, "group_size");
    loc_of(&out->distill_locs.placement, d, "placement");
    loc_of(&out->distill_locs.gpus, d, "gpus");
    loc_of(&out->distill_locs.temperature, d, "temperature");
    loc_of(&out->distill_locs.alpha, d, "alpha");
    loc_of(&out->distill_locs.top_k, d, "top_k");
    loc_of(&out->distill_locs.checkpoint, d, "checkpoint");
    out->distill_locs.self = d->loc;
    return 0;
}

int distill_spec_check(const plan_spec *s, ps_err *err) {
    const plan_cfg *p = &s->cfg;
    const plan_distill *d = &p->distill;
    const model_cfg *t = &s->teacher.cfg;
    const cluster_cfg *c = &s->cluster.cfg;
    const ps_loc *self = &s->distill_locs.self;
    char at[PS_LOC_FILE_MAX + 32], msg[sizeof(ps_err) + 160];
    switch (distill_check_cfg(t, c, p)) {
    case PLAN_OK: return 0;
    case PLAN_DISTILL_TP: {
        infer_cfg ic;
        ps_err e = {{0}};
        infer_cfg_init(&ic);
        ic.weights = (infer_weights)d->weights;
        ic.group_size = d->group_size;
        if (d->placement == DISTILL_SEPARATE)
            return ps_err_at(err, &s->distill_locs.gpus, "distill.gpus",
                             "expected a GPU count that some tensor-parallel degree up to "
                             "min(gpus, %lld GPUs per node) splits teacher %s into (heads = "
                             "%lld, kv_heads = %lld, and the weight scheme %s's groups), found "
                             "%lld",
                             (long long)c->gpus_per_node, s->teacher.name, (long long)t->heads,
                             (long long)t->kv_heads, infer_weights_names[d->weights],
                             (long long)d->gpus);
        ic.tp = p->tp;
        if (infer_tp_check(t, p->tp, s->teacher.path, &e)) {
            /* infer names the --tp option: say the plan's field instead */
            const char *rest = strncmp(e.msg, "--tp: ", 6) ? e.msg : e.msg + 6;
            snprintf(msg, sizeof msg, "%s", rest);
        } else {
            infer_group_check(t, &ic, &e);
            snprintf(msg, sizeof msg, "a tp whose shards the teacher's weight groups split (%s)",
                     e.msg);
        }
        return ps_err_at(err, &s->locs.tp, "parallel.tp",
                         "with distill.placement shared (%s) the plan's tp splits the teacher "
                         "%s too: %s",
                         ps_loc_str(self, at, sizeof at), s->teacher.name, msg);
    }
    case PLAN_DISTILL_PP:
        return ps_err_at(err, &s->locs.pp, "parallel.pp",
                         "with distill.placement shared (%s) the plan's pp splits the teacher "
                         "too: expected a divisor of the teacher's layers = %lld (%s), found %lld",
                         ps_loc_str(self, at, sizeof at), (long long)t->layers, s->teacher.name,
                         (long long)p->pp);
    case PLAN_DISTILL_GPUS:
        return ps_err_at(err, &s->distill_locs.gpus, "distill.gpus",
                         "expected the student's %lld GPUs and the teacher's to fit the %lld "
                         "GPUs of cluster %s, found %lld teacher GPUs (%lld in all)",
                         (long long)p->gpus, (long long)cluster_gpus(c), s->cluster.name,
                         (long long)d->gpus, (long long)(p->gpus + d->gpus));
    default: return ps_err_set(err, "internal error: unknown distill check result");
    }
}
