/* program_load.c — read an execution plan back from its JSON (see program.h,
 * docs/plan-format.md §1). ynode parses it (JSON is YAML flow style), so
 * every error names file:line:col, the field (e.g. roles[0].ops[12].bytes),
 * what was expected and what was found. Unknown keys are errors, and so are
 * values that contradict the header (a step past train.steps, a unit the
 * role does not have, a range outside the flat space). Every size is bounded
 * before anything is allocated for it; then program_check (program_check.c)
 * walks the ops for what the replay and the runtime rely on, and its error
 * is located at the op's line.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "program/program_int.h"
#include "cost/states.h"
#include "spec/yget.h"

#define FIELD_MAX 160

static const char *const top_keys[] = {"format", "version", "header", "roles", NULL};
static const char *const header_keys[] = {"plan",     "cluster",   "model", "batch", "parallel",
                                          "recompute", "precision", "train", "distill", NULL};
static const char *const distill_keys[] = {"teacher", "weights", "group_size", "temperature",
                                           "alpha", "top_k", "checkpoint", "teacher_bytes", NULL};
static const char *const teacher_keys[] = {"name", "layers", "hidden", "heads", "kv_heads",
                                           "head_dim", "ffn_hidden", "vocab", "norm_eps",
                                           "rope_theta", NULL};
static const char *const hdr_model_keys[] = {"name",       "layers", "hidden",          "heads",
                                         "kv_heads",   "head_dim", "ffn_hidden",    "vocab",
                                         "tied_embeddings", "norm_eps", "rope_theta",
                                         "experts", "top_k", "expert_ffn", "expert_capacity",
                                         "aux_alpha", NULL};
static const char *const batch_keys[] = {"seq", "micro", "micro_batches", "global", NULL};
static const char *const parallel_keys[] = {"world", "dp",   "tp",           "pp",
                                            "cp",    "sp",   "zero", "bucket_bytes", "overlap_dp", "overlap_pp",
                                            "ep", NULL};
static const char *const precision_keys[] = {"params", "grads", "master", "optimizer",
                                             "activations", NULL};
static const char *const train_keys[] = {"steps", "seed",         "lr",   "beta1", "beta2",
                                         "eps",   "weight_decay", "data", NULL};
static const char *const role_keys[] = {"stage",       "tp_rank",     "cp_rank",
                                        "ranks",       "flat_elems",  "flat_padded",
                                        "shard_elems", "units",       "ops", NULL};
static const char *const unit_keys[] = {"name", "offset", "elems", NULL};

/* One of n names (the lists of program.c are not NULL-terminated). */
static int read_enum(const ynode *map, const char *path, const char *key,
                     const char *const *names, int n, int *out, ps_err *err) {
    char field[FIELD_MAX], list[512] = "", found[128];
    int used = 0;
    for (int i = 0; i < n && used < (int)sizeof list; i++)
        used += snprintf(list + used, sizeof list - (size_t)used, "%s%s", i ? ", " : "", names[i]);
    yget_field(path, key, field, sizeof field);
    const ynode *v = ynode_get(map, key);
    if (!v || v->kind == YN_NULL)
        return ps_err_at(err, v ? &v->loc : &map->loc, field, "missing field (expected one of %s)",
                         list);
    for (int i = 0; v->kind == YN_SCALAR && i < n; i++)
        if (!strcmp(v->str, names[i])) return *out = i, 0;
    return ps_err_at(err, &v->loc, field, "expected one of %s, found %s", list,
                     ynode_describe(v, found, sizeof found));
}

static int read_i32(const ynode *map, const char *path, const char *key, int64_t min,
                    int64_t max, int32_t *out, ps_err *err) {
    int64_t v = 0;
    if (yget_int(map, path, key, true, min, max, &v, err)) return -1;
    *out = (int32_t)v;
    return 0;
}

/* A required real number in [min, max], (min, max] or [min, max): every
 * number of a program is bounded, so that no sum or product the replay or
 * the runtime forms overflows or divides by zero (docs/plan-format.md §1). */
typedef enum { CLOSED, MIN_OPEN, MAX_OPEN } interval;

static int read_real(const ynode *map, const char *path, const char *key, double min,
                     interval iv, double max, double *out, ps_err *err) {
    double v = 0;
    char field[FIELD_MAX];
    if (yget_quantity(map, path, key, true, UNIT_NONE, -HUGE_VAL, &v, err)) return -1;
    if (v < min || (iv == MIN_OPEN && v == min) || v > max || (iv == MAX_OPEN && v == max)) {
        const ynode *n = ynode_get(map, key);
        return ps_err_at(err, &n->loc, yget_field(path, key, field, sizeof field),
                         "expected a number in %c%g, %g%c, found %s", iv == MIN_OPEN ? '(' : '[',
                         min, max, iv == MAX_OPEN ? ')' : ']', n->str);
    }
    *out = v;
    return 0;
}

/* ---- header ---------------------------------------------------------------------- */

/* Grouped-query attention: the query heads share kv_heads groups evenly. */
static int check_heads(const ynode *m, const program *p, ps_err *err) {
    if (p->kv_heads <= p->heads && p->heads % p->kv_heads == 0) return 0;
    return ps_err_at(err, &ynode_get(m, "kv_heads")->loc, "header.model.kv_heads",
                     "expected a divisor of heads = %lld, found %lld", (long long)p->heads,
                     (long long)p->kv_heads);
}

/* Mixture of experts (optional keys; docs/plan-format.md "Mixture of experts"): with
 * experts, every other MoE key is required. The dispatch buffer (experts x capacity
 * rows of hidden or expert_ffn values) is bounded by 2^40 elements. */
static int read_moe(const ynode *m, program *p, ps_err *err) {
    p->ep = 1;
    if (yget_int(m, "header.model", "experts", false, 0, PROGRAM_MAX_HEADS, &p->experts, err))
        return -1;
    if (!p->experts) {
        static const char *const only[] = {"top_k", "expert_ffn", "expert_capacity", "aux_alpha"};
        for (int i = 0; i < 4; i++) {
            const ynode *v = ynode_get(m, only[i]);
            char field[FIELD_MAX];
            if (v)
                return ps_err_at(err, &v->loc, yget_field("header.model", only[i], field, sizeof field),
                                 "expected no %s without experts (a dense model)", only[i]);
        }
        return 0;
    }
    if (yget_int(m, "header.model", "top_k", true, 1, p->experts, &p->top_k, err) ||
        yget_int(m, "header.model", "expert_ffn", true, 1, PROGRAM_MAX_WIDTH, &p->expert_ffn, err) ||
        yget_int(m, "header.model", "expert_capacity", true, 1, PROGRAM_MAX_MB_TOKENS,
                 &p->expert_capacity, err) ||
        read_real(m, "header.model", "aux_alpha", 0, CLOSED, 1, &p->aux_alpha, err))
        return -1;
    const int64_t w = p->hidden > p->expert_ffn ? p->hidden : p->expert_ffn;
    if (p->experts * p->expert_capacity > (1LL << 40) / w)
        return ps_err_at(err, &ynode_get(m, "expert_capacity")->loc,
                         "header.model.expert_capacity",
                         "expected experts * expert_capacity * max(hidden, expert_ffn) at most "
                         "2^40, found %lld * %lld * %lld",
                         (long long)p->experts, (long long)p->expert_capacity, (long long)w);
    return 0;
}

static int read_model(const ynode *h, program *p, ps_err *err) {
    const ynode *m;
    return yget_map(h, "header", "model", true, &m, err) ||
           yget_check_keys(m, "header.model", hdr_model_keys, err) ||
           yget_str(m, "header.model", "name", true, p->model_name, sizeof p->model_name, err) ||
           yget_int(m, "header.model", "layers", true, 1, 100000, &p->layers, err) ||
           yget_int(m, "header.model", "hidden", true, 1, PROGRAM_MAX_WIDTH, &p->hidden, err) ||
           yget_int(m, "header.model", "heads", true, 1, PROGRAM_MAX_HEADS, &p->heads, err) ||
           yget_int(m, "header.model", "kv_heads", true, 1, PROGRAM_MAX_HEADS, &p->kv_heads, err) ||
           yget_int(m, "header.model", "head_dim", true, 1, PROGRAM_MAX_WIDTH, &p->head_dim, err) ||
           yget_int(m, "header.model", "ffn_hidden", true, 1, PROGRAM_MAX_WIDTH, &p->ffn_hidden, err) ||
           yget_int(m, "header.model", "vocab", true, 1, PROGRAM_MAX_WIDTH, &p->vocab, err) ||
           yget_bool(m, "header.model", "tied_embeddings", true, &p->tied_embeddings, err) ||
           read_real(m, "header.model", "norm_eps", 0, MIN_OPEN, 1, &p->norm_eps, err) ||
           read_real(m, "header.model", "rope_theta", 0, MIN_OPEN, 1e12, &p->rope_theta, err) ||
           check_heads(m, p, err) || read_moe(m, p, err);
}

/* Tensor parallelism splits the heads, the kv heads and the MLP width over tp
 * ranks (Megatron-LM's column-parallel q/k/v and w1/w3); sequence parallelism
 * splits a micro-batch's tokens over them (docs/plan-format.md §2). */
static int check_tp(const ynode *par, const program *p, ps_err *err) {
    const ynode *at = ynode_get(par, "tp");
    const struct {
        const char *name;
        int64_t v;
    } w[] = {{"heads", p->heads}, {"kv_heads", p->kv_heads}, {"ffn_hidden", p->ffn_hidden},
             {"micro * seq (sequence parallelism)", p->sp ? p->micro_batch * p->seq : 0}};
    if (p->sp && p->tp < 2)
        return ps_err_at(err, &ynode_get(par, "sp")->loc, "header.parallel.sp",
                         "expected false with tp = 1 (sequence parallelism splits over tp ranks)");
    for (int i = 0; i < 4; i++)
        if (w[i].v % p->tp)
            return ps_err_at(err, &at->loc, "header.parallel.tp",
                             "expected a divisor of the model's %s (%lld), found %lld", w[i].name,
                             (long long)w[i].v, (long long)p->tp);
    return 0;
}

/* Expert parallelism: ep consecutive data-parallel ranks split the experts
 * (a divisor of dp and of experts); the runtime's MoE layer runs without tensor,
 * pipeline or context parallelism for now (docs/plan-format.md "Mixture of experts"). */
static int check_ep(const ynode *par, const program *p, ps_err *err) {
    const ynode *at = ynode_get(par, "ep");
    if (p->ep > 1 && !program_is_moe(p))
        return ps_err_at(err, &at->loc, "header.parallel.ep",
                         "expected 1 for a dense model (no experts), found %lld", (long long)p->ep);
    if (p->ep > 1 && (p->dp % p->ep || p->experts % p->ep || p->zero > 2))
        return ps_err_at(err, &at->loc, "header.parallel.ep",
                         "expected a divisor of dp (%lld) and of experts (%lld), with zero 0, 1 "
                         "or 2 (ZeRO-3 with ep is not emitted), found %lld with zero %d",
                         (long long)p->dp, (long long)p->experts, (long long)p->ep, p->zero);
    if (program_is_moe(p) && (p->tp > 1 || p->cp > 1))
        return ps_err_at(err, &ynode_get(par, p->tp > 1 ? "tp" : "cp")->loc,
                         p->tp > 1 ? "header.parallel.tp" : "header.parallel.cp",
                         "expected 1 with experts (the runtime's MoE layer runs with data, "
                         "expert and pipeline parallelism only), found %lld",
                         (long long)(p->tp > 1 ? p->tp : p->cp));
    return 0;
}

static int read_parallel(const ynode *h, program *p, ps_err *err) {
    const ynode *b, *par;
    int64_t zero = 0;
    p->overlap_pp = true; /* when absent */
    if (yget_map(h, "header", "batch", true, &b, err) ||
        yget_check_keys(b, "header.batch", batch_keys, err) ||
        yget_int(b, "header.batch", "seq", true, 1, PROGRAM_MAX_WIDTH, &p->seq, err) ||
        yget_int(b, "header.batch", "micro", true, 1, PROGRAM_MAX_WIDTH, &p->micro_batch, err) ||
        yget_int(b, "header.batch", "micro_batches", true, 1, PROGRAM_MAX_MICRO_BATCHES,
                 &p->micro_batches, err) ||
        yget_int(b, "header.batch", "global", true, 1, PROGRAM_MAX_OP_BYTES, &p->global_batch, err) ||
        yget_map(h, "header", "parallel", true, &par, err) ||
        yget_check_keys(par, "header.parallel", parallel_keys, err) ||
        yget_int(par, "header.parallel", "world", true, 1, 1 << 24, &p->world, err) ||
        yget_int(par, "header.parallel", "dp", true, 1, 1 << 24, &p->dp, err) ||
        yget_int(par, "header.parallel", "tp", true, 1, 1 << 10, &p->tp, err) ||
        yget_int(par, "header.parallel", "pp", true, 1, 1 << 10, &p->pp, err) ||
        yget_int(par, "header.parallel", "cp", true, 1, 1 << 10, &p->cp, err) ||
        yget_int(par, "header.parallel", "zero", true, 0, 3, &zero, err) ||
        yget_int(par, "header.parallel", "bucket_bytes", true, 0, PROGRAM_MAX_OP_BYTES,
                 &p->bucket_bytes, err) ||
        yget_bool(par, "header.parallel", "overlap_dp", true, &p->overlap_dp, err) ||
        yget_bool(par, "header.parallel", "overlap_pp", false, &p->overlap_pp, err) ||
        yget_bool(par, "header.parallel", "sp", false, &p->sp, err) ||
        yget_int(par, "header.parallel", "ep", false, 1, 1 << 10, &p->ep, err))
        return -1;
    p->zero = (int)zero; /* before check_ep, which reads it */
    if (check_ep(par, p, err)) return -1;
    /* dp <= 2^24 and tp, pp, cp <= 2^10: the product fits; micro, seq <= 2^24 */
    const int64_t ranks = p->dp * p->tp * p->pp * p->cp;
    if (p->world != ranks)
        return ps_err_at(err, &ynode_get(par, "world")->loc, "header.parallel.world",
                         "expected dp*tp*pp*cp = %lld, found %lld", (long long)ranks,
                         (long long)p->world);
    if (check_tp(par, p, err)) return -1;
    if (p->micro_batch * p->seq > PROGRAM_MAX_MB_TOKENS)
        return ps_err_at(err, &ynode_get(b, "micro")->loc, "header.batch.micro",
                         "expected micro * seq at most %d tokens, found %lld * %lld",
                         PROGRAM_MAX_MB_TOKENS, (long long)p->micro_batch, (long long)p->seq);
    if (p->micro_batch > INT64_MAX / p->micro_batches / p->dp ||
        p->global_batch != p->micro_batch * p->micro_batches * p->dp)
        return ps_err_at(err, &ynode_get(b, "global")->loc, "header.batch.global",
                         "expected micro * micro_batches * dp = %lld * %lld * %lld, found %lld",
                         (long long)p->micro_batch, (long long)p->micro_batches, (long long)p->dp,
                         (long long)p->global_batch);
    return 0;
}

static int read_precision(const ynode *h, program *p, ps_err *err) {
    const ynode *pr;
    int v[5], rc = 0;
    if (yget_map(h, "header", "precision", true, &pr, err) ||
        yget_check_keys(pr, "header.precision", precision_keys, err))
        return -1;
    for (int i = 0; i < 5 && !rc; i++)
        rc = read_enum(pr, "header.precision", precision_keys[i], dtype_names, DT_COUNT, &v[i], err);
    if (rc) return -1;
    p->precision = (plan_precision){(ps_dtype)v[0], (ps_dtype)v[1], (ps_dtype)v[2],
                                    (ps_dtype)v[3], (ps_dtype)v[4]};
    return 0;
}

static int read_train(const ynode *h, program *p, ps_err *err) {
    const ynode *t;
    int64_t steps = 0, seed = 0;
    char data[PS_LOC_FILE_MAX];
    if (yget_map(h, "header", "train", true, &t, err) ||
        yget_check_keys(t, "header.train", train_keys, err) ||
        yget_int(t, "header.train", "steps", true, 1, PROGRAM_MAX_STEPS, &steps, err) ||
        yget_int(t, "header.train", "seed", true, 0, INT64_MAX, &seed, err) ||
        read_real(t, "header.train", "lr", 0, MIN_OPEN, 1e3, &p->lr, err) ||
        read_real(t, "header.train", "beta1", 0, MAX_OPEN, 1, &p->beta1, err) ||
        read_real(t, "header.train", "beta2", 0, MAX_OPEN, 1, &p->beta2, err) ||
        read_real(t, "header.train", "eps", 0, MIN_OPEN, 1, &p->eps, err) ||
        read_real(t, "header.train", "weight_decay", 0, CLOSED, 1, &p->weight_decay, err) ||
        yget_str(t, "header.train", "data", true, data, sizeof data, err))
        return -1;
    if (!data[0])
        return ps_err_at(err, &ynode_get(t, "data")->loc, "header.train.data",
                         "expected synthetic or a path, found an empty string");
    p->steps = (int32_t)steps;
    p->seed = (uint64_t)seed;
    p->data = strcmp(data, "synthetic") ? DATA_TEXT : DATA_SYNTHETIC;
    snprintf(p->data_path, sizeof p->data_path, "%s", p->data == DATA_TEXT ? data : "");
    return 0;
}

/* header.distill (optional): logit distillation's teacher and loss
 * (docs/plan-format.md "Distillation"). The runtime runs it under pp 1, cp 1,
 * dense, over the student's vocabulary. */
static int read_distill(const ynode *h, program *p, ps_err *err) {
    const ynode *d = ynode_get(h, "distill"), *t;
    prog_distill *o = &p->distill;
    if (!d) return 0;
    int scheme = 0;
    int64_t n = 0;
    for (; program_teacher_schemes[n]; n++) {}
    if (yget_map(h, "header", "distill", true, &d, err) ||
        yget_check_keys(d, "header.distill", distill_keys, err) ||
        yget_map(d, "header.distill", "teacher", true, &t, err) ||
        yget_check_keys(t, "header.distill.teacher", teacher_keys, err) ||
        yget_str(t, "header.distill.teacher", "name", true, o->teacher_name, sizeof o->teacher_name, err) ||
        yget_int(t, "header.distill.teacher", "layers", true, 1, 100000, &o->layers, err) ||
        yget_int(t, "header.distill.teacher", "hidden", true, 1, PROGRAM_MAX_WIDTH, &o->hidden, err) ||
        yget_int(t, "header.distill.teacher", "heads", true, 1, PROGRAM_MAX_HEADS, &o->heads, err) ||
        yget_int(t, "header.distill.teacher", "kv_heads", true, 1, PROGRAM_MAX_HEADS, &o->kv_heads, err) ||
        yget_int(t, "header.distill.teacher", "head_dim", true, 1, PROGRAM_MAX_WIDTH, &o->head_dim, err) ||
        yget_int(t, "header.distill.teacher", "ffn_hidden", true, 1, PROGRAM_MAX_WIDTH, &o->ffn_hidden, err) ||
        yget_int(t, "header.distill.teacher", "vocab", true, 1, PROGRAM_MAX_WIDTH, &o->vocab, err) ||
        read_real(t, "header.distill.teacher", "norm_eps", 0, MIN_OPEN, 1, &o->norm_eps, err) ||
        read_real(t, "header.distill.teacher", "rope_theta", 0, MIN_OPEN, 1e12, &o->rope_theta, err) ||
        read_enum(d, "header.distill", "weights", program_teacher_schemes, (int)n, &scheme, err) ||
        yget_int(d, "header.distill", "group_size", true, 1, PROGRAM_MAX_WIDTH, &o->group_size, err) ||
        read_real(d, "header.distill", "temperature", 0, MIN_OPEN, 1000, &o->temperature, err) ||
        read_real(d, "header.distill", "alpha", 0, CLOSED, 1, &o->alpha, err) ||
        yget_int(d, "header.distill", "top_k", true, 0, PROGRAM_MAX_WIDTH, &o->top_k, err) ||
        yget_str(d, "header.distill", "checkpoint", true, o->checkpoint, sizeof o->checkpoint, err) ||
        yget_int(d, "header.distill", "teacher_bytes", true, 1, PROGRAM_MAX_OP_BYTES,
                 &o->teacher_bytes, err))
        return -1;
    snprintf(o->weights, sizeof o->weights, "%s", program_teacher_schemes[scheme]);
    char v[4][48];
    snprintf(v[0], sizeof v[0], "vocab %lld (the student's: %lld)", (long long)o->vocab,
             (long long)p->vocab);
    snprintf(v[1], sizeof v[1], "%lld", (long long)o->top_k);
    snprintf(v[2], sizeof v[2], "pp %lld, cp %lld%s", (long long)p->pp, (long long)p->cp,
             program_is_moe(p) ? ", experts" : "");
    snprintf(v[3], sizeof v[3], "tp %lld", (long long)p->tp);
    const struct {
        bool bad;
        const char *key, *expected, *found;
    } r[] = {
        {o->vocab != p->vocab, "teacher", "a teacher over the student's vocabulary", v[0]},
        {o->top_k > o->vocab, "top_k", "0 or at most the vocabulary", v[1]},
        {!o->checkpoint[0], "checkpoint", "the teacher checkpoint's path", "an empty string"},
        {p->pp > 1 || p->cp > 1 || program_is_moe(p), "teacher",
         "pp 1, cp 1 and a dense student (the runtime runs the teacher on the student's last "
         "stage with tp only)", v[2]},
        {o->heads % p->tp || o->kv_heads % p->tp || o->ffn_hidden % p->tp, "teacher",
         "the teacher's heads, kv_heads and ffn_hidden divisible by tp", v[3]},
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (r[i].bad) {
            char field[FIELD_MAX];
            yget_field("header.distill", r[i].key, field, sizeof field);
            return ps_err_at(err, &ynode_get(d, r[i].key)->loc, field, "expected %s, found %s",
                             r[i].expected, r[i].found);
        }
    o->on = true;
    return 0;
}

static int read_header(const ynode *root, program *p, ps_err *err) {
    const ynode *h;
    int rc = 0;
    if (yget_map(root, "", "header", true, &h, err) ||
        yget_check_keys(h, "header", header_keys, err) ||
        yget_str(h, "header", "plan", true, p->plan_name, sizeof p->plan_name, err) ||
        yget_str(h, "header", "cluster", true, p->cluster_name, sizeof p->cluster_name, err) ||
        read_model(h, p, err) || read_parallel(h, p, err) ||
        read_enum(h, "header", "recompute", plan_recompute_names, 3, &rc, err) ||
        read_precision(h, p, err) || read_train(h, p, err) || read_distill(h, p, err))
        return -1;
    p->recompute = (plan_recompute)rc;
    return 0;
}

/* ---- roles ----------------------------------------------------------------------- */

/* The units of a role: with one pipeline stage the embedding, every layer and
 * the head (layers + 2, §2); a stage of several holds fewer. */
static int read_units(const ynode *role, const char *path, const program *p, prog_role *r,
                      ps_err *err) {
    const ynode *us = ynode_get(role, "units");
    char field[FIELD_MAX], found[128], upath[64];
    const int64_t want = p->layers + 2;
    yget_field(path, "units", field, sizeof field);
    if (!us || us->kind != YN_SEQ || us->n < 1)
        return ps_err_at(err, us ? &us->loc : &role->loc, field,
                         "expected a list of units, found %s", ynode_describe(us, found, sizeof found));
    if (us->n > want || (p->pp == 1 && us->n != want))
        return ps_err_at(err, &us->loc, field,
                         "expected %s header.model.layers + 2 = %lld units (embed, the layers, "
                         "head), found %d", p->pp == 1 ? "" : "at most", (long long)want, us->n);
    r->units = calloc((size_t)us->n, sizeof *r->units);
    if (!r->units) return ps_err_set(err, "out of memory");
    r->n_units = us->n;
    int64_t off = 0;
    for (int32_t u = 0; u < us->n; u++) {
        const ynode *n = us->items[u];
        prog_unit *un = &r->units[u];
        snprintf(upath, sizeof upath, "%s.units[%d]", path, (int)u);
        if (n->kind != YN_MAP)
            return ps_err_at(err, &n->loc, upath, "expected {name, offset, elems}, found %s",
                             ynode_describe(n, found, sizeof found));
        if (yget_check_keys(n, upath, unit_keys, err) ||
            yget_str(n, upath, "name", true, un->name, sizeof un->name, err) ||
            yget_int(n, upath, "offset", true, 0, PROGRAM_MAX_OP_BYTES, &un->offset, err) ||
            yget_int(n, upath, "elems", true, 1, PROGRAM_MAX_OP_BYTES, &un->elems, err))
            return -1;
        for (int32_t k = 0; k < u; k++)
            if (!strcmp(r->units[k].name, un->name))
                return ps_err_at(err, &ynode_get(n, "name")->loc,
                                 yget_field(upath, "name", field, sizeof field),
                                 "expected distinct unit names, found \"%s\" twice", un->name);
        if (un->elems > PROGRAM_MAX_OP_BYTES - off)
            return ps_err_at(err, &ynode_get(n, "elems")->loc, yget_field(upath, "elems", field, sizeof field),
                             "expected the units to add up to at most %lld elements, found %lld "
                             "more after %lld", (long long)PROGRAM_MAX_OP_BYTES,
                             (long long)un->elems, (long long)off);
        if (un->offset != off)
            return ps_err_at(err, &ynode_get(n, "offset")->loc, yget_field(upath, "offset", field, sizeof field),
                             "expected %lld (units are contiguous, in order), found %lld",
                             (long long)off, (long long)un->offset);
        off += un->elems;
    }
    if (off != r->flat_elems)
        return ps_err_at(err, &ynode_get(role, "flat_elems")->loc, yget_field(path, "flat_elems", field, sizeof field),
                         "expected the units' total %lld, found %lld", (long long)off,
                         (long long)r->flat_elems);
    return 0;
}

/* seen: one byte per world rank, shared by the roles (each rank plays one). */
static int read_ranks(const ynode *role, const char *path, const program *p, prog_role *r,
                      unsigned char *seen, ps_err *err) {
    const ynode *n = ynode_get(role, "ranks");
    char field[FIELD_MAX], found[128];
    yget_field(path, "ranks", field, sizeof field);
    if (!n || n->kind != YN_SEQ || n->n < 1)
        return ps_err_at(err, n ? &n->loc : &role->loc, field,
                         "expected a list of world ranks, found %s",
                         ynode_describe(n, found, sizeof found));
    if (n->n != p->dp)
        return ps_err_at(err, &n->loc, field, "expected dp = %lld ranks, found %d",
                         (long long)p->dp, n->n);
    r->ranks = calloc((size_t)n->n, sizeof *r->ranks);
    if (!r->ranks) return ps_err_set(err, "out of memory");
    r->n_ranks = n->n;
    for (int i = 0; i < n->n; i++) {
        int64_t v;
        char item[FIELD_MAX + 16];
        snprintf(item, sizeof item, "%s[%d]", field, i);
        if (yget_node_int(n->items[i], item, 0, p->world - 1, &v, err)) return -1;
        if (seen[v]++)
            return ps_err_at(err, &n->items[i]->loc, item,
                             "expected distinct ranks (each world rank plays one role), found "
                             "%lld twice", (long long)v);
        r->ranks[i] = (int32_t)v;
    }
    return 0;
}

static int read_unit_name(const ynode *op, const ynode *v, const char *field,
                          const prog_role *r, int32_t *out, ps_err *err) {
    char found[128];
    if (!v)
        return ps_err_at(err, &op->loc, field, "missing field (expected a unit of this role, "
                         "%s ... %s)", r->units[0].name, r->units[r->n_units - 1].name);
    for (int32_t u = 0; v->kind == YN_SCALAR && u < r->n_units; u++)
        if (!strcmp(v->str, r->units[u].name)) return *out = u, 0;
    return ps_err_at(err, &v->loc, field, "expected a unit of this role (%s ... %s), found %s",
                     r->units[0].name, r->units[r->n_units - 1].name,
                     ynode_describe(v, found, sizeof found));
}

static const prog_field *field_for(const char *key, unsigned bit) {
    for (int i = 0; i < prog_n_fields; i++)
        if ((prog_fields[i].kinds & bit) && !strcmp(prog_fields[i].key, key)) return &prog_fields[i];
    return NULL;
}

static int read_field(const ynode *n, const char *path, const prog_field *f, const prog_role *r,
                      prog_op *o, ps_err *err) {
    char *dst = (char *)o + f->off, field[FIELD_MAX];
    const ynode *v = ynode_get(n, f->key);
    yget_field(path, f->key, field, sizeof field);
    switch (f->type) {
    case PF_I32: return read_i32(n, path, f->key, -1, INT32_MAX, (int32_t *)dst, err);
    case PF_I64: return yget_int(n, path, f->key, true, 0, PROGRAM_MAX_OP_BYTES, (int64_t *)dst, err);
    case PF_F64:
        return read_real(n, path, f->key, 0, CLOSED,
                         !strcmp(f->key, "flops") ? PROGRAM_MAX_OP_FLOPS : PROGRAM_MAX_OP_SECONDS, (double *)dst,
                         err);
    case PF_BOOL: return yget_bool(n, path, f->key, true, (bool *)dst, err);
    case PF_UNIT: return read_unit_name(n, v, field, r, (int32_t *)dst, err);
    case PF_ENUM: return read_enum(n, path, f->key, f->names, f->n_names, (int *)dst, err);
    }
    return 0;
}

/* What the header and the role bound: steps, micro-batches, units, ranges. */
static int check_op(const ynode *n, const char *path, const program *p, const prog_role *r,
                    const prog_op *o, ps_err *err) {
    char field[FIELD_MAX];
    const bool unit_buf = o->buf == BUF_UNIT_PARAMS || o->buf == BUF_UNIT_GRADS;
    const bool per_mb = o->kind == OP_FWD || o->kind == OP_BWD;
    if (o->step < 0)
        return ps_err_at(err, &ynode_get(n, "step")->loc, yget_field(path, "step", field, sizeof field),
                         "expected a step of 0 or more, found %d", (int)o->step);
    if (per_mb && o->mb < 0)
        return ps_err_at(err, &n->loc, yget_field(path, "mb", field, sizeof field),
                         "expected the micro-batch of this %s, found none", prog_kind_names[o->kind]);
    if (per_mb && o->unit < 0)
        return ps_err_at(err, &n->loc, yget_field(path, "unit", field, sizeof field),
                         "expected the unit of this %s, found none", prog_kind_names[o->kind]);
    if (o->step >= p->steps)
        return ps_err_at(err, &ynode_get(n, "step")->loc, yget_field(path, "step", field, sizeof field),
                         "expected a step below header.train.steps = %d, found %d", (int)p->steps,
                         (int)o->step);
    if (o->mb >= p->micro_batches)
        return ps_err_at(err, &ynode_get(n, "mb")->loc, yget_field(path, "mb", field, sizeof field),
                         "expected a micro-batch below header.batch.micro_batches = %lld, found %d",
                         (long long)p->micro_batches, (int)o->mb);
    if ((o->kind == OP_ALLOC || o->kind == OP_FREE) && unit_buf != (o->unit >= 0))
        return ps_err_at(err, &n->loc, yget_field(path, "unit", field, sizeof field),
                         "expected a unit with buf %s and only then, found %s",
                         prog_buf_names[o->buf], o->unit >= 0 ? "one" : "none");
    if (o->kind == OP_COLL || o->kind == OP_OPTIM) {
        /* a collective's range lies in the flat space, and in its unit when it
         * reads or writes a unit buffer; the optimizer's in what the rank holds */
        const bool src_unit = o->src == BUF_UNIT_PARAMS || o->src == BUF_UNIT_GRADS,
                   dst_unit = o->dst == BUF_UNIT_PARAMS || o->dst == BUF_UNIT_GRADS;
        int64_t lo = 0, hi = r->flat_elems;
        const char *within = "flat_elems";
        if (o->kind == OP_OPTIM) {
            int64_t first;
            hi = program_buf_held(p, r, BUF_ADAM_M, -1, 0, &first);
            within = "what the rank holds of the optimizer states";
        }
        if (o->kind == OP_COLL && (src_unit || dst_unit)) {
            if (o->unit < 0)
                return ps_err_at(err, &n->loc, yget_field(path, "unit", field, sizeof field),
                                 "expected the unit whose buffer the collective uses, found none");
            lo = r->units[o->unit].offset, hi = lo + r->units[o->unit].elems;
            within = "its unit";
        }
        if (o->offset < lo || o->offset > hi || o->elems > hi - o->offset)
            return ps_err_at(err, &ynode_get(n, "elems")->loc,
                             yget_field(path, "elems", field, sizeof field),
                             "expected the range to lie within %s [%lld, %lld), found offset %lld, "
                             "elems %lld", within, (long long)lo, (long long)hi,
                             (long long)o->offset, (long long)o->elems);
    }
    return 0;
}

static int read_op(const ynode *n, const char *path, const program *p, const prog_role *r,
                   prog_op *o, ps_err *err) {
    char found[128], field[FIELD_MAX];
    int kind = 0;
    if (n->kind != YN_MAP)
        return ps_err_at(err, &n->loc, path, "expected an op object, found %s",
                         ynode_describe(n, found, sizeof found));
    if (read_enum(n, path, "op", prog_kind_names, OP_KIND_COUNT, &kind, err)) return -1;
    prog_op_init(o, (prog_kind)kind, 0);
    const unsigned bit = 1u << kind;
    for (int k = 0; k < n->n; k++) {
        if (!strcmp(n->keys[k], "op") || field_for(n->keys[k], bit)) continue;
        char list[512] = "op";
        int used = 2;
        for (int i = 0; i < prog_n_fields; i++)
            if (prog_fields[i].kinds & bit)
                used += snprintf(list + used, sizeof list - (size_t)used, ", %s", prog_fields[i].key);
        return ps_err_at(err, &n->key_locs[k], yget_field(path, n->keys[k], field, sizeof field),
                         "unknown key for a %s op (expected one of: %s)", prog_kind_names[kind],
                         list);
    }
    for (int i = 0; i < prog_n_fields; i++) {
        const prog_field *f = &prog_fields[i];
        const ynode *v = ynode_get(n, f->key);
        if (!(f->kinds & bit)) continue;
        if (!v && !(f->required & bit)) continue;
        if (read_field(n, path, f, r, o, err)) return -1;
    }
    return check_op(n, path, p, r, o, err);
}

static int read_role(const ynode *n, int ri, const program *p, prog_role *r, unsigned char *seen,
                     ps_err *err) {
    char path[32], found[128], opath[64];
    snprintf(path, sizeof path, "roles[%d]", ri);
    if (n->kind != YN_MAP)
        return ps_err_at(err, &n->loc, path, "expected a role object, found %s",
                         ynode_describe(n, found, sizeof found));
    if (yget_check_keys(n, path, role_keys, err) ||
        read_i32(n, path, "stage", 0, p->pp - 1, &r->stage, err) ||
        read_i32(n, path, "tp_rank", 0, p->tp - 1, &r->tp_rank, err) ||
        read_i32(n, path, "cp_rank", 0, p->cp - 1, &r->cp_rank, err) ||
        read_ranks(n, path, p, r, seen, err) ||
        yget_int(n, path, "flat_elems", true, 1, PROGRAM_MAX_OP_BYTES, &r->flat_elems, err) ||
        yget_int(n, path, "flat_padded", true, 1, PROGRAM_MAX_OP_BYTES, &r->flat_padded, err) ||
        yget_int(n, path, "shard_elems", true, 1, PROGRAM_MAX_OP_BYTES, &r->shard_elems, err) ||
        read_units(n, path, p, r, err))
        return -1;
    /* the shard the header implies (program_role_spaces: under ep the experts apart) */
    prog_role want = *r;
    if (program_role_spaces(p, &want)) {
        char field[FIELD_MAX];
        return ps_err_at(err, &ynode_get(n, "units")->loc, yget_field(path, "units", field, sizeof field),
                         "expected each layer unit to hold its %lld elements of routed experts "
                         "(experts / ep x 3 x expert_ffn x hidden), found a smaller one",
                         (long long)want.unit_experts);
    }
    if (r->shard_elems != want.shard_elems || r->flat_padded != want.flat_padded) {
        char field[FIELD_MAX];
        return ps_err_at(err, &ynode_get(n, "shard_elems")->loc,
                         yget_field(path, "shard_elems", field, sizeof field),
                         "expected ceil(flat_elems%s / (dp*cp)) = %lld with flat_padded = %lld, "
                         "found %lld and %lld", want.expert_elems ? " less the routed experts" : "",
                         (long long)want.shard_elems, (long long)want.flat_padded,
                         (long long)r->shard_elems, (long long)r->flat_padded);
    }
    r->unit_experts = want.unit_experts, r->expert_elems = want.expert_elems;
    r->expert_shard = want.expert_shard;
    const ynode *ops = ynode_get(n, "ops");
    if (!ops || ops->kind != YN_SEQ)
        return ps_err_at(err, ops ? &ops->loc : &n->loc, yget_field(path, "ops", opath, sizeof opath),
                         "expected a list of ops, found %s", ynode_describe(ops, found, sizeof found));
    if (ops->n > PROGRAM_MAX_OPS)
        return ps_err_at(err, &ops->loc, yget_field(path, "ops", opath, sizeof opath),
                         "expected at most %d ops, found %d", PROGRAM_MAX_OPS, ops->n);
    r->ops = calloc((size_t)(ops->n ? ops->n : 1), sizeof *r->ops);
    if (!r->ops) return ps_err_set(err, "out of memory");
    r->n_ops = ops->n;
    for (int32_t i = 0; i < ops->n; i++) {
        snprintf(opath, sizeof opath, "%s.ops[%d]", path, (int)i);
        if (read_op(ops->items[i], opath, p, r, &r->ops[i], err)) return -1;
    }
    return 0;
}

static int decode(const ynode *root, program *p, ps_err *err) {
    char format[64], found[128];
    int64_t version = 0;
    if (root->kind != YN_MAP)
        return ps_err_at(err, &root->loc, NULL, "expected a program (a JSON object), found %s",
                         ynode_describe(root, found, sizeof found));
    if (yget_check_keys(root, "", top_keys, err) ||
        yget_str(root, "", "format", true, format, sizeof format, err))
        return -1;
    if (strcmp(format, PROGRAM_FORMAT_NAME))
        return ps_err_at(err, &ynode_get(root, "format")->loc, "format",
                         "expected \"%s\", found \"%s\"", PROGRAM_FORMAT_NAME, format);
    if (yget_int(root, "", "version", true, PROGRAM_FORMAT_VERSION, PROGRAM_FORMAT_VERSION,
                 &version, err) ||
        read_header(root, p, err))
        return -1;
    const ynode *roles = ynode_get(root, "roles");
    if (!roles || roles->kind != YN_SEQ || roles->n < 1)
        return ps_err_at(err, roles ? &roles->loc : &root->loc, "roles",
                         "expected a list of at least one role, found %s",
                         ynode_describe(roles, found, sizeof found));
    if (roles->n != p->tp * p->pp * p->cp)
        return ps_err_at(err, &roles->loc, "roles",
                         "expected tp*pp*cp = %lld roles (one per stage, tp rank and cp rank), "
                         "found %d", (long long)(p->tp * p->pp * p->cp), roles->n);
    p->roles = calloc((size_t)roles->n, sizeof *p->roles);
    if (!p->roles) return ps_err_set(err, "out of memory");
    p->n_roles = roles->n;
    /* world ranks, then (stage, tp rank, cp rank): each once */
    unsigned char *seen = calloc((size_t)(p->world + roles->n), 1), *role_seen = seen + p->world;
    if (!seen) return ps_err_set(err, "out of memory");
    int rc = 0;
    for (int i = 0; i < roles->n && !rc; i++) {
        prog_role *r = &p->roles[i];
        rc = read_role(roles->items[i], i, p, r, seen, err);
        const int64_t k = ((int64_t)r->stage * p->tp + r->tp_rank) * p->cp + r->cp_rank;
        if (!rc && role_seen[k]++)
            rc = ps_err_at(err, &roles->items[i]->loc, "roles",
                           "expected one role per (stage, tp_rank, cp_rank), found (%d, %d, %d) "
                           "twice", (int)r->stage, (int)r->tp_rank, (int)r->cp_rank);
    }
    free(seen);
    return rc;
}

/* Decode a parsed program and check its ops (program_check), locating an
 * op's error at its line. */
static int load_tree(ynode *root, program *out, ps_err *err) {
    int32_t role = -1, op = -1;
    int rc = decode(root, out, err);
    if (!rc && program_check(out, &role, &op, err)) {
        const ynode *ops = ynode_get(ynode_get(root, "roles")->items[role], "ops");
        char field[64], msg[PS_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        if (op >= 0) snprintf(field, sizeof field, "roles[%d].ops[%d]", (int)role, (int)op);
        else snprintf(field, sizeof field, "roles[%d].ops", (int)role);
        rc = ps_err_at(err, op >= 0 ? &ops->items[op]->loc : &ops->loc, field, "%s", msg);
    }
    ynode_free(root);
    if (rc) program_free(out);
    return rc;
}

/* Execution plans are larger than specs: about 9 bytes of JSON per value. The
 * tree costs about 450 bytes of memory per value (every node keeps its file
 * name for messages), so 8 M values bound reading to about 3.6 GB
 * (docs/plan-format.md §1). */
static const ynode_limits program_json_limits = {128LL << 20, 8000000, YNODE_MAX_DEPTH};

int program_load_text(const char *data, size_t len, const char *origin, program *out,
                      ps_err *err) {
    ynode *root = NULL;
    memset(out, 0, sizeof *out);
    if (ynode_load_bytes(data, len, origin, &program_json_limits, &root, err)) return -1;
    return load_tree(root, out, err);
}

int program_load_json(const char *path, program *out, ps_err *err) {
    ynode *root = NULL;
    memset(out, 0, sizeof *out);
    if (ynode_load_file_limits(path, &program_json_limits, &root, err)) return -1;
    return load_tree(root, out, err);
}
