/* program_json.c — write an execution plan as JSON (see program.h,
 * docs/plan-format.md §1): the header as an indented object, then each role
 * with one unit and one op per line, so that two programs diff line by line.
 * Numbers are written so that strtod reads back the same double; the file
 * is replaced atomically.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/jsonw.h"
#include "program/program_int.h"

/* A one-line JSON object built in memory. */
typedef struct {
    char s[2048];
    int n;
} line;

static void line_add(line *l, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void line_add(line *l, const char *key, const char *fmt, ...) {
    va_list ap;
    if (l->n >= (int)sizeof l->s - 1) return;
    l->n += snprintf(l->s + l->n, sizeof l->s - (size_t)l->n, "%s\"%s\": ", l->n > 1 ? ", " : "",
                     key);
    if (l->n >= (int)sizeof l->s - 1) return;
    va_start(ap, fmt);
    l->n += vsnprintf(l->s + l->n, sizeof l->s - (size_t)l->n, fmt, ap);
    va_end(ap);
}

static void line_open(line *l) {
    l->s[0] = '{';
    l->s[1] = 0;
    l->n = 1;
}

static void line_close(line *l) {
    if (l->n < (int)sizeof l->s - 1) l->s[l->n++] = '}';
    l->s[l->n < (int)sizeof l->s ? l->n : (int)sizeof l->s - 1] = 0;
}

/* An array item (or keyed value) written verbatim on its own line, with the
 * separators and indentation jsonw uses for its own items. */
static void put_line(jsonw *w, const char *key, const char *text) {
    fputs(w->first[w->depth] ? "\n" : ",\n", w->f);
    w->first[w->depth] = false;
    for (int i = 0; i < w->depth; i++) fputs("  ", w->f);
    if (key) fprintf(w->f, "\"%s\": ", key);
    fputs(text, w->f);
}

/* Is field f of op o written? Required fields always; optional ones when
 * they differ from prog_op_init's default. */
static bool field_written(const prog_field *f, const prog_op *o, const prog_op *dflt) {
    const unsigned bit = 1u << o->kind;
    if (!(f->kinds & bit)) return false;
    if (f->required & bit) return true;
    const char *a = (const char *)o + f->off, *b = (const char *)dflt + f->off;
    switch (f->type) {
    case PF_I32:
    case PF_UNIT: return *(const int32_t *)a != *(const int32_t *)b;
    case PF_I64: return *(const int64_t *)a != *(const int64_t *)b;
    case PF_F64: return *(const double *)a != *(const double *)b;
    case PF_BOOL: return *(const bool *)a != *(const bool *)b;
    case PF_ENUM: return *(const int *)a != *(const int *)b;
    }
    return false;
}

static void op_line(const prog_role *r, const prog_op *o, line *l) {
    prog_op dflt;
    char num[40];
    prog_op_init(&dflt, o->kind, o->step);
    line_open(l);
    line_add(l, "op", "\"%s\"", prog_kind_names[o->kind]);
    for (int i = 0; i < prog_n_fields; i++) {
        const prog_field *f = &prog_fields[i];
        const char *v = (const char *)o + f->off;
        if (!field_written(f, o, &dflt)) continue;
        switch (f->type) {
        case PF_I32: line_add(l, f->key, "%d", (int)*(const int32_t *)v); break;
        case PF_I64: line_add(l, f->key, "%lld", (long long)*(const int64_t *)v); break;
        case PF_F64: line_add(l, f->key, "%s", prog_fmt_num(*(const double *)v, num, sizeof num)); break;
        case PF_BOOL: line_add(l, f->key, "%s", *(const bool *)v ? "true" : "false"); break;
        case PF_UNIT: {
            const int32_t u = *(const int32_t *)v;
            line_add(l, f->key, "\"%s\"", u >= 0 && u < r->n_units ? r->units[u].name : "?");
            break;
        }
        case PF_ENUM: {
            const int e = *(const int *)v;
            line_add(l, f->key, "\"%s\"", e >= 0 && e < f->n_names ? f->names[e] : "?");
            break;
        }
        }
    }
    line_close(l);
}

static void write_role(jsonw *w, const prog_role *r) {
    line l;
    jsonw_obj(w, NULL);
    jsonw_int(w, "stage", r->stage);
    jsonw_int(w, "tp_rank", r->tp_rank);
    jsonw_int(w, "cp_rank", r->cp_rank);
    /* the rank list on one line, however long (dp can be thousands) */
    size_t cap = 16 + 12 * (size_t)r->n_ranks, n = 1;
    char *ranks = malloc(cap);
    if (ranks) {
        ranks[0] = '[';
        for (int32_t i = 0; i < r->n_ranks; i++)
            n += (size_t)snprintf(ranks + n, cap - n, "%s%d", i ? ", " : "", (int)r->ranks[i]);
        snprintf(ranks + n, cap - n, "]");
        put_line(w, "ranks", ranks);
        free(ranks);
    }
    jsonw_int(w, "flat_elems", r->flat_elems);
    jsonw_int(w, "flat_padded", r->flat_padded);
    jsonw_int(w, "shard_elems", r->shard_elems);
    jsonw_arr(w, "units");
    for (int32_t u = 0; u < r->n_units; u++) {
        line_open(&l);
        line_add(&l, "name", "\"%s\"", r->units[u].name);
        line_add(&l, "offset", "%lld", (long long)r->units[u].offset);
        line_add(&l, "elems", "%lld", (long long)r->units[u].elems);
        line_close(&l);
        put_line(w, NULL, l.s);
    }
    jsonw_arr_end(w);
    jsonw_arr(w, "ops");
    for (int32_t i = 0; i < r->n_ops; i++) {
        op_line(r, &r->ops[i], &l);
        put_line(w, NULL, l.s);
    }
    jsonw_arr_end(w);
    jsonw_obj_end(w);
}

static void write_header(jsonw *w, const program *p) {
    char num[40];
    jsonw_obj(w, "header");
    jsonw_str(w, "plan", p->plan_name);
    jsonw_str(w, "cluster", p->cluster_name);
    jsonw_obj(w, "model");
    jsonw_str(w, "name", p->model_name);
    jsonw_int(w, "layers", p->layers);
    jsonw_int(w, "hidden", p->hidden);
    jsonw_int(w, "heads", p->heads);
    jsonw_int(w, "kv_heads", p->kv_heads);
    jsonw_int(w, "head_dim", p->head_dim);
    jsonw_int(w, "ffn_hidden", p->ffn_hidden);
    jsonw_int(w, "vocab", p->vocab);
    jsonw_bool(w, "tied_embeddings", p->tied_embeddings);
    put_line(w, "norm_eps", prog_fmt_num(p->norm_eps, num, sizeof num));
    put_line(w, "rope_theta", prog_fmt_num(p->rope_theta, num, sizeof num));
    if (program_is_moe(p)) { /* optional: a dense model when absent */
        jsonw_int(w, "experts", p->experts);
        jsonw_int(w, "top_k", p->top_k);
        jsonw_int(w, "expert_ffn", p->expert_ffn);
        jsonw_int(w, "expert_capacity", p->expert_capacity);
        put_line(w, "aux_alpha", prog_fmt_num(p->aux_alpha, num, sizeof num));
    }
    jsonw_obj_end(w);
    jsonw_obj(w, "batch");
    jsonw_int(w, "seq", p->seq);
    jsonw_int(w, "micro", p->micro_batch);
    jsonw_int(w, "micro_batches", p->micro_batches);
    jsonw_int(w, "global", p->global_batch);
    jsonw_obj_end(w);
    jsonw_obj(w, "parallel");
    jsonw_int(w, "world", p->world);
    jsonw_int(w, "dp", p->dp);
    jsonw_int(w, "tp", p->tp);
    jsonw_int(w, "pp", p->pp);
    jsonw_int(w, "cp", p->cp);
    if (p->sp) jsonw_bool(w, "sp", p->sp); /* optional: false when absent */
    jsonw_int(w, "zero", p->zero);
    if (p->ep > 1) jsonw_int(w, "ep", p->ep); /* optional: 1 when absent */
    jsonw_int(w, "bucket_bytes", p->bucket_bytes);
    jsonw_bool(w, "overlap_dp", p->overlap_dp);
    if (!p->overlap_pp) jsonw_bool(w, "overlap_pp", false); /* optional: true when absent */
    jsonw_obj_end(w);
    jsonw_str(w, "recompute", plan_recompute_names[p->recompute]);
    jsonw_obj(w, "precision");
    jsonw_str(w, "params", dtype_names[p->precision.params]);
    jsonw_str(w, "grads", dtype_names[p->precision.grads]);
    jsonw_str(w, "master", dtype_names[p->precision.master]);
    jsonw_str(w, "optimizer", dtype_names[p->precision.optimizer]);
    jsonw_str(w, "activations", dtype_names[p->precision.activations]);
    jsonw_obj_end(w);
    jsonw_obj(w, "train");
    jsonw_int(w, "steps", p->steps);
    jsonw_int(w, "seed", (int64_t)p->seed);
    put_line(w, "lr", prog_fmt_num(p->lr, num, sizeof num));
    put_line(w, "beta1", prog_fmt_num(p->beta1, num, sizeof num));
    put_line(w, "beta2", prog_fmt_num(p->beta2, num, sizeof num));
    put_line(w, "eps", prog_fmt_num(p->eps, num, sizeof num));
    put_line(w, "weight_decay", prog_fmt_num(p->weight_decay, num, sizeof num));
    jsonw_str(w, "data", p->data == DATA_SYNTHETIC ? "synthetic" : p->data_path);
    jsonw_obj_end(w);
    if (p->distill.on) { /* optional: plain training when absent */
        const prog_distill *d = &p->distill;
        jsonw_obj(w, "distill");
        jsonw_obj(w, "teacher");
        jsonw_str(w, "name", d->teacher_name);
        jsonw_int(w, "layers", d->layers);
        jsonw_int(w, "hidden", d->hidden);
        jsonw_int(w, "heads", d->heads);
        jsonw_int(w, "kv_heads", d->kv_heads);
        jsonw_int(w, "head_dim", d->head_dim);
        jsonw_int(w, "ffn_hidden", d->ffn_hidden);
        jsonw_int(w, "vocab", d->vocab);
        put_line(w, "norm_eps", prog_fmt_num(d->norm_eps, num, sizeof num));
        put_line(w, "rope_theta", prog_fmt_num(d->rope_theta, num, sizeof num));
        jsonw_obj_end(w);
        jsonw_str(w, "weights", d->weights);
        jsonw_int(w, "group_size", d->group_size);
        put_line(w, "temperature", prog_fmt_num(d->temperature, num, sizeof num));
        put_line(w, "alpha", prog_fmt_num(d->alpha, num, sizeof num));
        jsonw_int(w, "top_k", d->top_k);
        jsonw_str(w, "checkpoint", d->checkpoint);
        jsonw_int(w, "teacher_bytes", d->teacher_bytes);
        jsonw_obj_end(w);
    }
    jsonw_obj_end(w);
}

static int write_json(const program *p, FILE *f) {
    jsonw w;
    jsonw_init(&w, f);
    jsonw_obj(&w, NULL);
    jsonw_str(&w, "format", PROGRAM_FORMAT_NAME);
    jsonw_int(&w, "version", PROGRAM_FORMAT_VERSION);
    write_header(&w, p);
    jsonw_arr(&w, "roles");
    for (int32_t i = 0; i < p->n_roles; i++) write_role(&w, &p->roles[i]);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    jsonw_end(&w);
    return ferror(f) ? -1 : 0;
}

int program_write_json(const program *p, const char *path, ps_err *err) {
    if (!path || !path[0] || !strcmp(path, "-")) {
        if (write_json(p, stdout) || fflush(stdout))
            return ps_err_set(err, "cannot write the program to standard output");
        return 0;
    }
    atomic_file a;
    if (atomic_file_open(&a, path, err)) return -1;
    if (write_json(p, a.f)) {
        atomic_file_abort(&a);
        return ps_err_set(err, "%s: cannot write the program", path);
    }
    return atomic_file_commit(&a, err);
}
