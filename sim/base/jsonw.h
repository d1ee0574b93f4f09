/* jsonw.h — a small streaming JSON writer (pretty-printed, two-space indent).
 * Keys are emitted in call order, so output is stable and diffable. */
#ifndef PS_JSONW_H
#define PS_JSONW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSONW_MAX_DEPTH 32

typedef struct {
    FILE *f;
    int depth;
    bool first[JSONW_MAX_DEPTH];
} jsonw;

void jsonw_init(jsonw *w, FILE *f);
/* key is NULL inside arrays and for the top-level value. */
void jsonw_obj(jsonw *w, const char *key);
void jsonw_obj_end(jsonw *w);
void jsonw_arr(jsonw *w, const char *key);
void jsonw_arr_end(jsonw *w);
void jsonw_int(jsonw *w, const char *key, int64_t v);
void jsonw_num(jsonw *w, const char *key, double v);
void jsonw_str(jsonw *w, const char *key, const char *v);
void jsonw_bool(jsonw *w, const char *key, bool v);
/* A value already written as JSON text (a one-line object, say), placed with the
 * separators and indentation of the other values. */
void jsonw_raw(jsonw *w, const char *key, const char *json);
/* Finish the document with a newline. */
void jsonw_end(jsonw *w);

#endif
