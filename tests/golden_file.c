/* golden_file.c — reader for tools/golden_ref.py's golden files (format in
 * golden_file.h). Reads the whole file, then walks it with bounds checks, so
 * a bad or truncated file gives a message, never a crash. */
#include "golden_file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN_MAGIC "PSGOLDEN"
#define GOLDEN_VERSION 1
#define GOLDEN_MAX_ENTRIES 4096
#define GOLDEN_MAX_DIM ((int64_t)1 << 40)

typedef struct {
    const unsigned char *p;
    size_t len, off;
    const char *path;
    char *err;
    int err_len;
} reader;

static void set_err(char *err, int err_len, const char *fmt, ...) {
    if (!err || err_len <= 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, (size_t)err_len, fmt, ap);
    va_end(ap);
}

/* Check that n more bytes are there; what names the item being read. */
static int need(reader *r, size_t n, const char *what) {
    if (n > r->len - r->off) {
        set_err(r->err, r->err_len, "%s: truncated at byte %zu reading %s (needs %zu bytes from byte %zu)",
                r->path, r->len, what, n, r->off);
        return -1;
    }
    return 0;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p) {
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int rd_i32(reader *r, const char *what, int32_t *v) {
    if (need(r, 4, what)) return -1;
    uint32_t u = le32(r->p + r->off);
    memcpy(v, &u, 4);
    r->off += 4;
    return 0;
}

static int rd_i64(reader *r, const char *what, int64_t *v) {
    if (need(r, 8, what)) return -1;
    uint64_t u = le64(r->p + r->off);
    memcpy(v, &u, 8);
    r->off += 8;
    return 0;
}

/* A NUL-padded name field of width n into out[n+1]; must be non-empty and
 * printable. */
static int rd_name(reader *r, size_t n, char *out, const char *what) {
    if (need(r, n, what)) return -1;
    size_t start = r->off;
    memcpy(out, r->p + r->off, n);
    out[n] = '\0';
    r->off += n;
    size_t k = strlen(out);
    for (size_t i = 0; i < k; i++)
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] > 0x7e) {
            set_err(r->err, r->err_len, "%s: %s at byte %zu has a non-printable character", r->path,
                    what, start);
            return -1;
        }
    for (size_t i = k; i < n; i++)
        if (out[i] != '\0') {
            set_err(r->err, r->err_len, "%s: %s at byte %zu is not NUL-padded", r->path, what, start);
            return -1;
        }
    if (k == 0) {
        set_err(r->err, r->err_len, "%s: %s at byte %zu is empty", r->path, what, start);
        return -1;
    }
    return 0;
}

static int read_file(const char *path, unsigned char **buf, size_t *len, char *err, int err_len) {
    *buf = NULL, *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        set_err(err, err_len, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    if (!b) goto nomem;
    for (;;) {
        if (n == cap) {
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) goto nomem;
            b = nb, cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    if (ferror(fp)) {
        set_err(err, err_len, "%s: read error", path);
        free(b);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    *buf = b, *len = n;
    return 0;
nomem:
    set_err(err, err_len, "%s: out of memory reading the file", path);
    free(b);
    fclose(fp);
    return -1;
}

void golden_free(golden *g) {
    if (!g) return;
    if (g->tensors)
        for (int i = 0; i < g->n_tensors; i++) free(g->tensors[i].u.data);
    free(g->tensors);
    free(g->config);
    memset(g, 0, sizeof *g);
}

static int parse(reader *r, golden *g) {
    char what[96];
    if (need(r, 8, "the magic")) return -1;
    if (memcmp(r->p, GOLDEN_MAGIC, 8) != 0) {
        set_err(r->err, r->err_len, "%s: bad magic (not a PSGOLDEN file)", r->path);
        return -1;
    }
    r->off = 8;
    int32_t v, n;
    if (rd_i32(r, "the version", &v)) return -1;
    if (v != GOLDEN_VERSION) {
        set_err(r->err, r->err_len, "%s: version %d, this reader knows version %d", r->path, (int)v,
                GOLDEN_VERSION);
        return -1;
    }
    g->version = v;

    if (rd_i32(r, "the config count", &n)) return -1;
    if (n < 0 || n > GOLDEN_MAX_ENTRIES) {
        set_err(r->err, r->err_len, "%s: bad config count %d at byte %zu", r->path, (int)n, r->off - 4);
        return -1;
    }
    g->config = calloc(n ? (size_t)n : 1, sizeof *g->config);
    if (!g->config) goto nomem;
    for (int i = 0; i < n; i++) {
        snprintf(what, sizeof what, "config entry %d", i);
        golden_cfg_entry *c = &g->config[i];
        if (rd_name(r, GOLDEN_NAME_CONFIG, c->name, what) || rd_i64(r, what, &c->value)) return -1;
        g->n_config = i + 1;
    }

    if (rd_i32(r, "the tensor count", &n)) return -1;
    if (n < 0 || n > GOLDEN_MAX_ENTRIES) {
        set_err(r->err, r->err_len, "%s: bad tensor count %d at byte %zu", r->path, (int)n, r->off - 4);
        return -1;
    }
    g->tensors = calloc(n ? (size_t)n : 1, sizeof *g->tensors);
    if (!g->tensors) goto nomem;
    for (int i = 0; i < n; i++) {
        golden_tensor *t = &g->tensors[i];
        size_t hdr = r->off;
        snprintf(what, sizeof what, "the name of tensor %d", i);
        if (rd_name(r, GOLDEN_NAME_TENSOR, t->name, what)) return -1;
        snprintf(what, sizeof what, "the header of tensor '%s'", t->name);
        int32_t dt, nd;
        if (rd_i32(r, what, &dt) || rd_i32(r, what, &nd)) return -1;
        if (dt != GOLDEN_F32 && dt != GOLDEN_I32) {
            set_err(r->err, r->err_len, "%s: tensor '%s' (byte %zu): unknown dtype %d", r->path, t->name,
                    hdr, (int)dt);
            return -1;
        }
        if (nd < 1 || nd > GOLDEN_MAX_DIMS) {
            set_err(r->err, r->err_len, "%s: tensor '%s' (byte %zu): bad ndim %d", r->path, t->name, hdr,
                    (int)nd);
            return -1;
        }
        t->dtype = (golden_dtype)dt, t->ndim = nd;
        int64_t count = 1;
        for (int d = 0; d < GOLDEN_MAX_DIMS; d++) {
            if (rd_i64(r, what, &t->dims[d])) return -1;
            if (t->dims[d] < 1 || t->dims[d] > GOLDEN_MAX_DIM || (d >= nd && t->dims[d] != 1)) {
                set_err(r->err, r->err_len, "%s: tensor '%s' (byte %zu): bad dim %d = %lld", r->path,
                        t->name, hdr, d, (long long)t->dims[d]);
                return -1;
            }
            count *= t->dims[d];
            if (count > GOLDEN_MAX_DIM) {
                set_err(r->err, r->err_len, "%s: tensor '%s' (byte %zu): too many elements", r->path,
                        t->name, hdr);
                return -1;
            }
        }
        t->count = count;
        for (int j = 0; j < i; j++)
            if (strcmp(g->tensors[j].name, t->name) == 0) {
                set_err(r->err, r->err_len, "%s: tensor '%s' appears twice", r->path, t->name);
                return -1;
            }
        size_t bytes = (size_t)count * 4;
        snprintf(what, sizeof what, "the data of tensor '%s'", t->name);
        if (need(r, bytes, what)) return -1;
        t->u.data = malloc(bytes);
        if (!t->u.data) goto nomem;
        g->n_tensors = i + 1;
        const unsigned char *src = r->p + r->off;
        for (int64_t k = 0; k < count; k++) {
            uint32_t u = le32(src + 4 * k);
            if (t->dtype == GOLDEN_F32) {
                float f;
                memcpy(&f, &u, 4);
                t->u.f32[k] = f;
            } else {
                int32_t x;
                memcpy(&x, &u, 4);
                t->u.i32[k] = x;
            }
        }
        r->off += bytes;
    }
    if (r->off != r->len) {
        set_err(r->err, r->err_len, "%s: %zu bytes of trailing data after the last tensor (byte %zu)",
                r->path, r->len - r->off, r->off);
        return -1;
    }
    return 0;
nomem:
    set_err(r->err, r->err_len, "%s: out of memory", r->path);
    return -1;
}

int golden_load(const char *path, golden *out, char *err, int err_len) {
    memset(out, 0, sizeof *out);
    if (err && err_len > 0) err[0] = '\0';
    unsigned char *buf;
    size_t len;
    if (read_file(path, &buf, &len, err, err_len)) return -1;
    reader r = {buf, len, 0, path, err, err_len};
    int rc = parse(&r, out);
    free(buf);
    if (rc) golden_free(out);
    return rc;
}

const golden_tensor *golden_get(const golden *g, const char *name) {
    for (int i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

int64_t golden_config(const golden *g, const char *name) {
    for (int i = 0; i < g->n_config; i++)
        if (strcmp(g->config[i].name, name) == 0) return g->config[i].value;
    return -1;
}
