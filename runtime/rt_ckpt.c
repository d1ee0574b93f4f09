/* rt_ckpt.c — model checkpoints: the file format of rt_ckpt.h, written
 * atomically and read back with every field checked (docs/runtime.md,
 * "Checkpoints").
 *
 * The header is one line of JSON, a flat object of numbers and strings that
 * this file writes and parses itself (runtime/ may not use spec/'s YAML
 * reader). Bounds on the shape are the execution plan loader's on
 * header.model (sim/program/program_load.c: widths up to PROGRAM_MAX_WIDTH,
 * heads up to PROGRAM_MAX_HEADS, layers up to 100000, norm_eps in (0, 1],
 * rope_theta in (0, 1e12]); the model spec's own limits (sim/spec/model.h)
 * are out of runtime/'s reach and lie within these. A file may hold at most
 * RT_CKPT_MAX_ELEMS values (2^40: 4 TiB of fp32), and its length is checked
 * against the header before anything is allocated, so a short file claiming a
 * large model costs nothing.
 */
#include "rt_ckpt.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/regular_file.h"
#include "base/sat_int.h"
#include "program/program.h"

#define MAGIC "PSCKPT1\n"
#define MAGIC_LEN 8
#define FORMAT_NAME "parasim-checkpoint"
#define FORMAT_VERSION 1
#define HEADER_MAX (64 * 1024) /* the JSON line, its newline included */
#define RT_CKPT_MAX_LAYERS 100000 /* program_load.c's header.model.layers */
#define RT_CKPT_MAX_ELEMS (1LL << 40)

/* ---- layout ------------------------------------------------------------------------ */

void rt_ckpt_layout_of(const rt_ckpt_model *m, rt_ckpt_layout *l) {
    const int64_t h = m->hidden, q = sat_mul(m->heads, m->head_dim),
                  kv = sat_mul(m->kv_heads, m->head_dim), f = m->ffn_hidden;
    const int64_t vh = sat_mul(m->vocab, h);
    memset(l, 0, sizeof *l);
    l->wte = 0;
    l->layer0 = vh;
    int64_t n = 0;
    l->attn_norm = n, n = sat_add(n, h);
    l->wq = n, n = sat_add(n, sat_mul(q, h));
    l->wk = n, n = sat_add(n, sat_mul(kv, h));
    l->wv = n, n = sat_add(n, sat_mul(kv, h));
    l->wo = n, n = sat_add(n, sat_mul(h, q));
    l->mlp_norm = n, n = sat_add(n, h);
    l->w1 = n, n = sat_add(n, sat_mul(f, h));
    l->w3 = n, n = sat_add(n, sat_mul(f, h));
    l->w2 = n, n = sat_add(n, sat_mul(h, f));
    l->layer_elems = n;
    l->final_norm = sat_add(l->layer0, sat_mul(m->layers, n));
    l->lm_head = sat_add(l->final_norm, h);
    l->elems = sat_add(l->lm_head, vh);
}

void rt_ckpt_element_name(const rt_ckpt_model *m, int64_t k, char *buf, size_t len) {
    rt_ckpt_layout lay;
    rt_ckpt_layout_of(m, &lay);
    const rt_ckpt_layout *l = &lay;
    const int64_t h = m->hidden;
    if (k < l->layer0) {
        snprintf(buf, len, "wte[%lld][%lld]", (long long)(k / h), (long long)(k % h));
        return;
    }
    if (k >= l->lm_head) {
        k -= l->lm_head;
        snprintf(buf, len, "lm_head[%lld][%lld]", (long long)(k / h), (long long)(k % h));
        return;
    }
    if (k >= l->final_norm) {
        snprintf(buf, len, "final_norm[%lld]", (long long)(k - l->final_norm));
        return;
    }
    const int64_t layer = (k - l->layer0) / l->layer_elems, j = (k - l->layer0) % l->layer_elems;
    const struct {
        const char *name;
        int64_t at, cols;
    } t[] = {{"attn_norm", l->attn_norm, h}, {"wq", l->wq, h},
             {"wk", l->wk, h},               {"wv", l->wv, h},
             {"wo", l->wo, m->heads * m->head_dim}, {"mlp_norm", l->mlp_norm, h},
             {"w1", l->w1, h},               {"w3", l->w3, h},
             {"w2", l->w2, m->ffn_hidden}};
    int i = 8;
    while (i > 0 && j < t[i].at) i--;
    const int64_t e = j - t[i].at;
    if (t[i].at == l->attn_norm || t[i].at == l->mlp_norm)
        snprintf(buf, len, "layer %lld %s[%lld]", (long long)layer, t[i].name, (long long)e);
    else
        snprintf(buf, len, "layer %lld %s[%lld][%lld]", (long long)layer, t[i].name,
                 (long long)(e / t[i].cols), (long long)(e % t[i].cols));
}

/* ---- the header's fields ------------------------------------------------------------- */

typedef enum { F_STR, F_INT, F_REAL } field_kind;

typedef struct {
    const char *name;
    field_kind kind;
    double lo, hi; /* F_INT: [lo, hi]; F_REAL: (lo, hi], or as lo_closed / hi_open say */
    size_t at;     /* offset in rt_ckpt; NOT_STORED: read into locals (format, version, ...) */
    int version;   /* 1: in every file; 2: in version 2 files (the training state) only */
    int lo_closed, hi_open;
    size_t cap; /* F_STR stored at `at`: its buffer's size */
} field;

#define MF(x) offsetof(rt_ckpt, m.x)
#define TF(x) offsetof(rt_ckpt, train.x)
#define NOT_STORED ((size_t)-1)
#define MAX_VERSION 2
enum { FLD_FORMAT, FLD_VERSION, FLD_DTYPE, FLD_ELEMS, FLD_MODEL };
/* The training fields' bounds are the plan loader's on train: (sim/spec/plan_load.c). */
static const field fields[] = {
    {"format", F_STR, 0, 0, NOT_STORED, 1, 0, 0, 0},
    {"version", F_INT, 1, MAX_VERSION, NOT_STORED, 1, 0, 0, 0},
    {"dtype", F_STR, 0, 0, NOT_STORED, 1, 0, 0, 0},
    {"elems", F_INT, 1, (double)RT_CKPT_MAX_ELEMS, NOT_STORED, 1, 0, 0, 0},
    {"model", F_STR, 0, 0, MF(model), 1, 0, 0, sizeof(((rt_ckpt_model *)0)->model)},
    {"layers", F_INT, 1, RT_CKPT_MAX_LAYERS, MF(layers), 1, 0, 0, 0},
    {"hidden", F_INT, 1, PROGRAM_MAX_WIDTH, MF(hidden), 1, 0, 0, 0},
    {"heads", F_INT, 1, PROGRAM_MAX_HEADS, MF(heads), 1, 0, 0, 0},
    {"kv_heads", F_INT, 1, PROGRAM_MAX_HEADS, MF(kv_heads), 1, 0, 0, 0},
    {"head_dim", F_INT, 1, PROGRAM_MAX_WIDTH, MF(head_dim), 1, 0, 0, 0},
    {"ffn_hidden", F_INT, 1, PROGRAM_MAX_WIDTH, MF(ffn_hidden), 1, 0, 0, 0},
    {"vocab", F_INT, 1, PROGRAM_MAX_WIDTH, MF(vocab), 1, 0, 0, 0},
    {"seq_len", F_INT, 1, PROGRAM_MAX_WIDTH, MF(seq_len), 1, 0, 0, 0},
    {"norm_eps", F_REAL, 0, 1, MF(norm_eps), 1, 0, 0, 0},
    {"rope_theta", F_REAL, 0, 1e12, MF(rope_theta), 1, 0, 0, 0},
    {"steps", F_INT, 0, PROGRAM_MAX_STEPS, MF(steps), 1, 0, 0, 0},
    {"seed", F_INT, 0, (double)INT64_MAX, TF(seed), 2, 0, 0, 0},
    {"global_batch", F_INT, 1, PROGRAM_MAX_WIDTH, TF(global_batch), 2, 0, 0, 0},
    {"optimizer", F_STR, 0, 0, TF(optimizer), 2, 0, 0, sizeof(((rt_ckpt_train *)0)->optimizer)},
    {"lr", F_REAL, 0, 1e3, TF(lr), 2, 0, 0, 0},
    {"beta1", F_REAL, 0, 1, TF(beta1), 2, 1, 1, 0},
    {"beta2", F_REAL, 0, 1, TF(beta2), 2, 1, 1, 0},
    {"eps", F_REAL, 0, 1, TF(eps), 2, 0, 0, 0},
    {"weight_decay", F_REAL, 0, 1, TF(weight_decay), 2, 1, 0, 0},
    {"precision", F_STR, 0, 0, TF(precision), 2, 0, 0, sizeof(((rt_ckpt_train *)0)->precision)},
};
enum { N_FIELDS = sizeof fields / sizeof *fields };

static int real_ok(const field *f, double v) {
    return isfinite(v) && (f->lo_closed ? v >= f->lo : v > f->lo) &&
           (f->hi_open ? v < f->hi : v <= f->hi);
}

static int field_range(const field *f, char *buf, size_t len) {
    if (f->kind == F_INT)
        return snprintf(buf, len, "an integer in [%.0f, %.0f]", f->lo, f->hi);
    return snprintf(buf, len, "a number in %c%g, %g%c", f->lo_closed ? '[' : '(', f->lo, f->hi,
                    f->hi_open ? ')' : ']');
}

/* The shape's own consistency, beyond each field's range (a reader and the
 * writer check the same). */
static int check_shape(const char *path, const rt_ckpt_model *m, ps_err *err) {
    if (m->kv_heads > m->heads || m->heads % m->kv_heads)
        return ps_err_set(err, "%s: header field \"kv_heads\": expected a divisor of heads = %lld, "
                               "found %lld", path, (long long)m->heads, (long long)m->kv_heads);
    if (m->head_dim % 2)
        return ps_err_set(err, "%s: header field \"head_dim\": expected an even number (rotary "
                               "embeddings rotate pairs), found %lld",
                          path, (long long)m->head_dim);
    if (m->heads * m->head_dim > PROGRAM_MAX_WIDTH)
        return ps_err_set(err, "%s: header field \"head_dim\": expected heads * head_dim at most "
                               "%lld, found %lld * %lld", path, (long long)PROGRAM_MAX_WIDTH,
                          (long long)m->heads, (long long)m->head_dim);
    rt_ckpt_layout l;
    rt_ckpt_layout_of(m, &l);
    if (l.elems > RT_CKPT_MAX_ELEMS)
        return ps_err_set(err, "%s: the model's shape has %lld parameters, more than a checkpoint "
                               "holds (2^40)", path, (long long)l.elems);
    return 0;
}

/* ---- writing ----------------------------------------------------------------------- */

static void write_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}

/* ", \"name\": v" with the fewest digits (15 to 17) that read back as v. */
static void write_real(FILE *f, const char *name, double v) {
    char buf[40];
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, v);
        if (strtod(buf, NULL) == v) break;
    }
    fprintf(f, ", \"%s\": %s", name, buf);
}

/* The values as little-endian fp32 (this file's byte order on any host). */
static int write_values(FILE *f, const float *v, int64_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        u = __builtin_bswap32(u);
        if (fwrite(&u, 4, 1, f) != 1) return -1;
    }
    return 0;
#else
    return fwrite(v, 4, (size_t)n, f) == (size_t)n ? 0 : -1;
#endif
}

/* Values [0, n) of array `what` (NULL: the weights) finite, else -1 with err at the first. */
static int check_finite(const char *path, const rt_ckpt_model *m, const char *what,
                        const float *v, int64_t n, ps_err *err) {
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(v[k])) {
            char where[160];
            rt_ckpt_element_name(m, k, where, sizeof where);
            return ps_err_set(err, "%s: %s%svalue at element %lld (%s) is %s: expected a finite "
                                   "number", path, what ? what : "", what ? " " : "",
                              (long long)k, where, isnan(v[k]) ? "nan" : "inf");
        }
    return 0;
}

/* The arrays after the weights in a version 2 file, in order. */
static const char *const train_arrays[] = {"adam_m", "adam_v"};

int rt_ckpt_write(const char *path, const rt_ckpt *ck, ps_err *err) {
    const rt_ckpt_model *m = &ck->m;
    /* the fields as a reader checks them */
    for (int i = FLD_MODEL + 1; i < N_FIELDS; i++) {
        const field *fd = &fields[i];
        if (fd->version > 1 && !ck->has_train) continue;
        const char *at = (const char *)ck + fd->at;
        if (fd->kind == F_STR) {
            if (!memchr(at, 0, fd->cap))
                return ps_err_set(err, "%s: header field \"%s\": not terminated", path, fd->name);
            continue;
        }
        const double v = fd->kind == F_INT ? (double)*(const int64_t *)at : *(const double *)at;
        const int ok = fd->kind == F_INT ? v >= fd->lo && v <= fd->hi : real_ok(fd, v);
        if (!ok) {
            char range[96];
            field_range(fd, range, sizeof range);
            return ps_err_set(err, "%s: header field \"%s\": expected %s, found %g", path,
                              fd->name, range, v);
        }
    }
    if (!memchr(m->model, 0, sizeof m->model))
        return ps_err_set(err, "%s: header field \"model\": not terminated", path);
    if (check_shape(path, m, err)) return -1;
    rt_ckpt_layout l;
    rt_ckpt_layout_of(m, &l);
    if (ck->elems != l.elems)
        return ps_err_set(err, "%s: header field \"elems\": expected %lld (the layout of this "
                               "shape), found %lld", path, (long long)l.elems,
                          (long long)ck->elems);
    if (check_finite(path, m, NULL, ck->data, ck->elems, err)) return -1;
    const float *extra[2] = {ck->adam_m, ck->adam_v};
    for (int a = 0; ck->has_train && a < 2; a++)
        if (!extra[a] ? ps_err_set(err, "%s: no %s values to write", path, train_arrays[a])
                      : check_finite(path, m, train_arrays[a], extra[a], ck->elems, err))
            return -1;
    atomic_file a;
    if (atomic_file_open(&a, path, err)) return -1;
    FILE *f = a.f;
    fputs(MAGIC, f);
    fprintf(f, "{\"format\": \"" FORMAT_NAME "\", \"version\": %d, \"dtype\": \"f32\", \"model\": ",
            ck->has_train ? 2 : 1);
    write_json_str(f, m->model);
    fprintf(f, ", \"layers\": %lld, \"hidden\": %lld, \"heads\": %lld, \"kv_heads\": %lld, "
               "\"head_dim\": %lld, \"ffn_hidden\": %lld, \"vocab\": %lld, \"seq_len\": %lld, "
               "\"norm_eps\": %.17g, \"rope_theta\": %.17g, \"steps\": %lld, \"elems\": %lld",
            (long long)m->layers, (long long)m->hidden, (long long)m->heads,
            (long long)m->kv_heads, (long long)m->head_dim, (long long)m->ffn_hidden,
            (long long)m->vocab, (long long)m->seq_len, m->norm_eps, m->rope_theta,
            (long long)m->steps, (long long)ck->elems);
    if (ck->has_train) {
        const rt_ckpt_train *t = &ck->train;
        fprintf(f, ", \"seed\": %lld, \"global_batch\": %lld, \"optimizer\": ",
                (long long)t->seed, (long long)t->global_batch);
        write_json_str(f, t->optimizer);
        write_real(f, "lr", t->lr);
        write_real(f, "beta1", t->beta1);
        write_real(f, "beta2", t->beta2);
        write_real(f, "eps", t->eps);
        write_real(f, "weight_decay", t->weight_decay);
        fputs(", \"precision\": ", f);
        write_json_str(f, t->precision);
    }
    fputs("}\n", f);
    /* the header (strings at most 127 + 15 + 63 bytes, escaped: 6 bytes each) fits in 64 KiB */
    int bad = write_values(f, ck->data, ck->elems);
    for (int k = 0; ck->has_train && k < 2 && !bad; k++) bad = write_values(f, extra[k], ck->elems);
    if (bad || ferror(f)) {
        atomic_file_abort(&a);
        return ps_err_set(err, "%s: cannot write: %s", path, strerror(errno));
    }
    return atomic_file_commit(&a, err);
}

/* ---- reading the header --------------------------------------------------------------- */

typedef struct {
    const char *path;
    const char *s; /* the header line, without its newline */
    size_t n, i;
    ps_err *err;
} parser;

static void skip_ws(parser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\r')) p->i++;
}

/* "'x'", "the end of the line", or "byte 0x01". */
static const char *found_at(const parser *p, char *buf, size_t len) {
    if (p->i >= p->n) return "the end of the header line";
    const unsigned char c = (unsigned char)p->s[p->i];
    if (c >= 0x20 && c < 0x7f) snprintf(buf, len, "'%c'", c);
    else snprintf(buf, len, "byte 0x%02x", c);
    return buf;
}

static int syntax(parser *p, const char *expected) {
    char buf[32];
    return ps_err_set(p->err, "%s: header, byte %zu of the file: expected %s, found %s", p->path,
                      MAGIC_LEN + p->i, expected, found_at(p, buf, sizeof buf));
}

/* A JSON string into out (len bytes, NUL-terminated); -1 when it does not fit
 * (*too_long set) or is malformed. Escapes: \" \\ \/ \b \f \n \r \t and \u00XX. */
static int parse_string(parser *p, char *out, size_t len, int *too_long) {
    *too_long = 0;
    if (p->i >= p->n || p->s[p->i] != '"') return syntax(p, "a string");
    p->i++;
    size_t k = 0;
    for (;;) {
        if (p->i >= p->n) return syntax(p, "the closing '\"' of a string");
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') break;
        if (c < 0x20) return syntax(p, "a printable character in a string");
        if (c == '\\') {
            p->i++;
            const char e = p->i < p->n ? p->s[p->i] : 0;
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            const char *at = e ? strchr(from, e) : NULL;
            if (at) {
                c = (unsigned char)to[at - from];
            } else if (e == 'u' && p->i + 4 < p->n && !strncmp(p->s + p->i + 1, "00", 2) &&
                       strchr("01234567", p->s[p->i + 3]) && p->s[p->i + 3] &&
                       strchr("0123456789abcdefABCDEF", p->s[p->i + 4]) && p->s[p->i + 4]) {
                char hex[3] = {p->s[p->i + 3], p->s[p->i + 4], 0};
                c = (unsigned char)strtol(hex, NULL, 16);
                p->i += 4;
                if (!c) return syntax(p, "no \\u0000 in a string");
            } else {
                return syntax(p, "an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u0001 .. "
                                 "\\u007f) after '\\'");
            }
        }
        if (k + 1 >= len) *too_long = 1;
        else out[k++] = (char)c;
        p->i++;
    }
    p->i++;
    out[k] = 0;
    return 0;
}

/* A JSON number's text (at most 63 characters) into tok. */
static int number_token(parser *p, char *tok, size_t len) {
    size_t k = 0;
    while (p->i < p->n && strchr("+-0123456789.eE", p->s[p->i]) && p->s[p->i]) {
        if (k + 1 < len) tok[k++] = p->s[p->i];
        p->i++;
    }
    tok[k] = 0;
    return k ? 0 : syntax(p, "a number or a string");
}

/* The value of field f as the text it was, for messages. */
static int bad_value(const parser *p, const field *f, const char *text) {
    char range[96];
    if (f->kind == F_STR)
        return ps_err_set(p->err, "%s: header field \"%s\": expected a string, found %s", p->path,
                          f->name, text);
    field_range(f, range, sizeof range);
    return ps_err_set(p->err, "%s: header field \"%s\": expected %s, found %s", p->path, f->name,
                      range, text);
}

/* Parse the header line into ck (shape, training fields), *elems and *version:
 * every field of the file's version present, known, once and within its range. */
static int parse_header(parser *p, rt_ckpt *ck, int64_t *elems, int64_t *version) {
    int seen[N_FIELDS] = {0};
    char format[64] = "", dtype[16] = "";
    memset(&ck->m, 0, sizeof ck->m);
    memset(&ck->train, 0, sizeof ck->train);
    skip_ws(p);
    if (p->i >= p->n || p->s[p->i] != '{') return syntax(p, "'{' (a JSON object)");
    p->i++;
    skip_ws(p);
    int first = 1;
    while (!(p->i < p->n && p->s[p->i] == '}')) {
        if (!first) {
            if (p->i >= p->n || p->s[p->i] != ',') return syntax(p, "',' or '}'");
            p->i++;
            skip_ws(p);
        }
        first = 0;
        char key[64];
        int too_long;
        if (parse_string(p, key, sizeof key, &too_long)) return -1;
        int fi = -1;
        for (int i = 0; i < N_FIELDS && !too_long; i++)
            if (!strcmp(key, fields[i].name)) fi = i;
        if (fi < 0) {
            char names[512];
            size_t k = 0;
            for (int i = 0; i < N_FIELDS; i++)
                k += (size_t)snprintf(names + k, sizeof names - k, "%s%s", i ? ", " : "",
                                      fields[i].name);
            return ps_err_set(p->err, "%s: header field \"%.60s%s\": unknown (expected one of %s)",
                              p->path, key, too_long ? "..." : "", names);
        }
        const field *f = &fields[fi];
        if (seen[fi])
            return ps_err_set(p->err, "%s: header field \"%s\": given twice", p->path, f->name);
        seen[fi] = 1;
        skip_ws(p);
        if (p->i >= p->n || p->s[p->i] != ':') return syntax(p, "':' after a key");
        p->i++;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == '"') {
            char text[160], shown[200];
            if (parse_string(p, text, sizeof text, &too_long)) return -1;
            snprintf(shown, sizeof shown, "\"%.120s%s\"", text, too_long ? "..." : "");
            if (f->kind != F_STR) return bad_value(p, f, shown);
            char *dst = fi == FLD_FORMAT ? format : fi == FLD_DTYPE ? dtype : (char *)ck + f->at;
            const size_t cap = fi == FLD_FORMAT ? sizeof format
                               : fi == FLD_DTYPE ? sizeof dtype
                                                 : f->cap;
            if (too_long || strlen(text) >= cap)
                return ps_err_set(p->err, "%s: header field \"%s\": expected at most %zu bytes, "
                                          "found %s", p->path, f->name, cap - 1, shown);
            memcpy(dst, text, strlen(text) + 1);
        } else {
            char tok[64];
            if (number_token(p, tok, sizeof tok)) return -1;
            if (f->kind == F_STR) return bad_value(p, f, tok);
            char *end = NULL;
            errno = 0;
            if (f->kind == F_INT) {
                const long long v = strtoll(tok, &end, 10);
                if (*end || errno || end == tok || v < f->lo || (double)v > f->hi)
                    return bad_value(p, f, tok);
                if (fi == FLD_ELEMS) *elems = v;
                else if (fi == FLD_VERSION) *version = v;
                else *(int64_t *)((char *)ck + f->at) = v;
            } else {
                const double v = strtod(tok, &end);
                if (*end || end == tok || !real_ok(f, v)) return bad_value(p, f, tok);
                *(double *)((char *)ck + f->at) = v;
            }
        }
        skip_ws(p);
    }
    p->i++;
    skip_ws(p);
    if (p->i < p->n) return syntax(p, "the end of the header line after '}'");
    if (!seen[FLD_VERSION])
        return ps_err_set(p->err, "%s: header field \"version\": missing", p->path);
    for (int i = 0; i < N_FIELDS; i++) {
        if (!seen[i] && fields[i].version <= *version)
            return ps_err_set(p->err, "%s: header field \"%s\": missing", p->path,
                              fields[i].name);
        if (seen[i] && fields[i].version > *version)
            return ps_err_set(p->err, "%s: header field \"%s\": expected only in a version %d "
                                      "file (a training state), found in version %lld", p->path,
                              fields[i].name, fields[i].version, (long long)*version);
    }
    if (strcmp(format, FORMAT_NAME))
        return ps_err_set(p->err, "%s: header field \"format\": expected \"" FORMAT_NAME "\", "
                                  "found \"%s\"", p->path, format);
    if (strcmp(dtype, "f32"))
        return ps_err_set(p->err, "%s: header field \"dtype\": expected \"f32\", found \"%s\"",
                          p->path, dtype);
    if (*version >= 2 && strcmp(ck->train.optimizer, "adamw"))
        return ps_err_set(p->err, "%s: header field \"optimizer\": expected \"adamw\" (the "
                                  "runtime's one optimizer), found \"%s\"", p->path,
                          ck->train.optimizer);
    return 0;
}

/* ---- reading ------------------------------------------------------------------------ */

/* Up to len bytes at the descriptor's position; the count read, -1 on an error. */
static int64_t read_full(int fd, void *buf, int64_t len) {
    int64_t got = 0;
    while (got < len) {
        const size_t want = len - got > (1 << 30) ? (size_t)1 << 30 : (size_t)(len - got);
        const ssize_t r = read(fd, (char *)buf + got, want);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += r;
    }
    return got;
}

static int read_fd(int fd, const char *path, int64_t size, rt_ckpt *ck, ps_err *err) {
    char *head = malloc(MAGIC_LEN + HEADER_MAX);
    if (!head) return ps_err_set(err, "%s: out of memory", path);
    const int64_t got = read_full(fd, head, MAGIC_LEN + HEADER_MAX);
    int rc = -1;
    if (got < 0) {
        ps_err_set(err, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (got < MAGIC_LEN || memcmp(head, MAGIC, MAGIC_LEN)) {
        char shown[40];
        size_t k = 0;
        for (int64_t i = 0; i < got && i < MAGIC_LEN && k + 5 < sizeof shown; i++) {
            const unsigned char c = (unsigned char)head[i];
            k += (size_t)snprintf(shown + k, sizeof shown - k, c >= 0x20 && c < 0x7f && c != '"'
                                                                   ? "%c" : "\\x%02x", c);
        }
        ps_err_set(err, "%s: bad magic: expected a parasim checkpoint, starting with "
                        "\"PSCKPT1\\n\", found \"%s\"%s", path, shown,
                   got < MAGIC_LEN ? " (the whole file)" : "");
        goto out;
    }
    const char *nl = memchr(head + MAGIC_LEN, '\n', (size_t)(got - MAGIC_LEN));
    if (!nl) {
        if (got == MAGIC_LEN + HEADER_MAX)
            ps_err_set(err, "%s: the header is longer than 64 KiB (no newline in the %d bytes "
                            "after the magic)", path, HEADER_MAX);
        else
            ps_err_set(err, "%s: truncated header: the file ends after %lld bytes without the "
                            "header's newline", path, (long long)got);
        goto out;
    }
    parser p = {path, head + MAGIC_LEN, (size_t)(nl - head - MAGIC_LEN), 0, err};
    int64_t elems = 0, version = 0;
    if (parse_header(&p, ck, &elems, &version) || check_shape(path, &ck->m, err)) goto out;
    const int64_t arrays = version >= 2 ? 3 : 1;
    rt_ckpt_layout l;
    rt_ckpt_layout_of(&ck->m, &l);
    if (elems != l.elems) {
        ps_err_set(err, "%s: header field \"elems\": expected %lld (the layout of a model of "
                        "this shape), found %lld", path, (long long)l.elems, (long long)elems);
        goto out;
    }
    /* elems <= 2^40 (its bound), so 3 arrays of fp32 take at most 12 * 2^40 bytes */
    const int64_t data_at = nl + 1 - head, want = arrays * elems * 4;
    const char *what = arrays > 1 ? " (the weights, adam_m and adam_v)" : "";
    if (size - data_at < want) {
        ps_err_set(err, "%s: truncated data: expected %lld values%s (%lld bytes) after the "
                        "header, found %lld bytes", path, (long long)(arrays * elems), what,
                   (long long)want, (long long)(size - data_at));
        goto out;
    }
    if (size - data_at > want) {
        ps_err_set(err, "%s: %lld trailing bytes after the %lld values%s: the file should end at "
                        "byte %lld", path, (long long)(size - data_at - want),
                   (long long)(arrays * elems), what, (long long)(data_at + want));
        goto out;
    }
    ck->elems = elems;
    ck->data = malloc((size_t)want);
    if (!ck->data) {
        ps_err_set(err, "%s: out of memory for %lld values", path, (long long)(arrays * elems));
        goto out;
    }
    /* the part of the data already read with the header, then the rest */
    const int64_t have = got - data_at < want ? got - data_at : want;
    memcpy(ck->data, head + data_at, (size_t)have);
    const int64_t rest = read_full(fd, (char *)ck->data + have, want - have);
    if (rest != want - have) {
        ps_err_set(err, "%s: truncated data: the file shrank while it was read", path);
        goto out;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (int64_t k = 0; k < arrays * elems; k++) {
        uint32_t u;
        memcpy(&u, &ck->data[k], 4);
        u = __builtin_bswap32(u);
        memcpy(&ck->data[k], &u, 4);
    }
#endif
    if (check_finite(path, &ck->m, NULL, ck->data, elems, err)) goto out;
    for (int a = 1; a < arrays; a++)
        if (check_finite(path, &ck->m, train_arrays[a - 1], ck->data + a * elems, elems, err))
            goto out;
    if (arrays > 1) {
        ck->has_train = 1;
        ck->adam_m = ck->data + elems;
        ck->adam_v = ck->data + 2 * elems;
    }
    rc = 0;
out:
    free(head);
    return rc;
}

int rt_ckpt_read(const char *path, rt_ckpt *ck, ps_err *err) {
    memset(ck, 0, sizeof *ck);
    struct stat st;
    const int fd = regular_file_open(path, &st);
    if (fd == -2)
        return ps_err_set(err, "%s: is %s, not a regular file: expected a checkpoint written by "
                               "parasim run --save-weights or --save", path,
                          regular_file_kind(st.st_mode));
    if (fd < 0) return ps_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    const int rc = read_fd(fd, path, (int64_t)st.st_size, ck, err);
    close(fd);
    if (rc) rt_ckpt_free(ck);
    return rc;
}

void rt_ckpt_free(rt_ckpt *ck) {
    free(ck->data);
    ck->data = ck->adam_m = ck->adam_v = NULL;
    ck->elems = 0;
    ck->has_train = 0;
}
