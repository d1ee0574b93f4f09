/* jsonw.c — streaming JSON writer (see jsonw.h). */
#include "base/jsonw.h"

#include <math.h>

void jsonw_init(jsonw *w, FILE *f) {
    w->f = f;
    w->depth = 0;
    w->first[0] = true;
}

static void put_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void prefix(jsonw *w, const char *key) {
    if (w->depth > 0) {
        fputs(w->first[w->depth] ? "\n" : ",\n", w->f);
        w->first[w->depth] = false;
        for (int i = 0; i < w->depth; i++) fputs("  ", w->f);
    }
    if (key) {
        put_str(w->f, key);
        fputs(": ", w->f);
    }
}

static void open_(jsonw *w, const char *key, char c) {
    prefix(w, key);
    fputc(c, w->f);
    if (w->depth + 1 < JSONW_MAX_DEPTH) w->depth++;
    w->first[w->depth] = true;
}

static void close_(jsonw *w, char c) {
    bool empty = w->first[w->depth];
    w->depth--;
    if (!empty) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++) fputs("  ", w->f);
    }
    fputc(c, w->f);
}

void jsonw_obj(jsonw *w, const char *key) { open_(w, key, '{'); }

void jsonw_raw(jsonw *w, const char *key, const char *json) {
    prefix(w, key);
    fputs(json, w->f);
}

void jsonw_obj_end(jsonw *w) { close_(w, '}'); }
void jsonw_arr(jsonw *w, const char *key) { open_(w, key, '['); }
void jsonw_arr_end(jsonw *w) { close_(w, ']'); }

void jsonw_int(jsonw *w, const char *key, int64_t v) {
    prefix(w, key);
    fprintf(w->f, "%lld", (long long)v);
}

void jsonw_num(jsonw *w, const char *key, double v) {
    prefix(w, key);
    if (!isfinite(v))
        fputs("null", w->f);
    else if (v == floor(v) && fabs(v) < 9e15)
        fprintf(w->f, "%.0f", v);
    else
        fprintf(w->f, "%.17g", v);
}

void jsonw_str(jsonw *w, const char *key, const char *v) {
    prefix(w, key);
    put_str(w->f, v ? v : "");
}

void jsonw_bool(jsonw *w, const char *key, bool v) {
    prefix(w, key);
    fputs(v ? "true" : "false", w->f);
}

void jsonw_end(jsonw *w) { fputc('\n', w->f); }
