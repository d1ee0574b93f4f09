/* yget.c — typed field reads with located errors (see yget.h). */
#include "spec/yget.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FIELD_MAX 160

const char *yget_field(const char *path, const char *key, char *buf, int buf_len) {
    if (path && path[0])
        snprintf(buf, (size_t)buf_len, "%s.%s", path, key);
    else
        snprintf(buf, (size_t)buf_len, "%s", key);
    return buf;
}

const char *yget_join(const char *const *names, char *buf, int buf_len) {
    int used = 0;
    buf[0] = 0;
    for (int i = 0; names[i] && used < buf_len; i++)
        used += snprintf(buf + used, (size_t)(buf_len - used), "%s%s", i ? ", " : "", names[i]);
    return buf;
}

int yget_parse_int(const char *text, int64_t *out) {
    const char *p = text;
    int neg = 0;
    int64_t v = 0;
    int digits = 0;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    for (; *p; p++) {
        if (*p == '_') continue;
        if (!isdigit((unsigned char)*p)) return -1;
        if (v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*p - '0');
        digits++;
    }
    if (!digits) return -1;
    *out = neg ? -v : v;
    return 0;
}

typedef struct {
    const char *name;
    double scale;
} unit_entry;

static const unit_entry bytes_units[] = {
    {"B", 1},       {"kB", 1e3},    {"KB", 1e3},    {"MB", 1e6},    {"GB", 1e9},
    {"TB", 1e12},   {"KiB", 1024.}, {"MiB", 1048576.}, {"GiB", 1073741824.},
    {"TiB", 1099511627776.}, {NULL, 0}};
static const unit_entry rate_units[] = {
    {"B/s", 1},          {"kB/s", 1e3},          {"KB/s", 1e3},          {"MB/s", 1e6},
    {"GB/s", 1e9},       {"TB/s", 1e12},         {"KiB/s", 1024.},       {"MiB/s", 1048576.},
    {"GiB/s", 1073741824.}, {"bit/s", 1. / 8},   {"Mbit/s", 1e6 / 8},    {"Gbit/s", 1e9 / 8},
    {"Gb/s", 1e9 / 8},   {"Tbit/s", 1e12 / 8},   {NULL, 0}};
static const unit_entry time_units[] = {
    {"s", 1}, {"ms", 1e-3}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"ns", 1e-9}, {NULL, 0}};
static const unit_entry flops_units[] = {
    {"FLOP/s", 1},     {"GFLOP/s", 1e9}, {"TFLOP/s", 1e12}, {"PFLOP/s", 1e15},
    {"FLOPS", 1},      {"GFLOPS", 1e9},  {"TFLOPS", 1e12},  {"PFLOPS", 1e15}, {NULL, 0}};

static const unit_entry *units_for(ps_unit unit) {
    switch (unit) {
    case UNIT_BYTES: return bytes_units;
    case UNIT_BYTES_PER_S: return rate_units;
    case UNIT_SECONDS: return time_units;
    case UNIT_FLOPS_PER_S: return flops_units;
    default: return NULL;
    }
}

static const char *unit_example(ps_unit unit) {
    switch (unit) {
    case UNIT_BYTES: return "a size such as 80 GiB, 25 MiB or a number of bytes";
    case UNIT_BYTES_PER_S: return "a bandwidth such as 450 GB/s, 400 Gbit/s or bytes per second";
    case UNIT_SECONDS: return "a time such as 2 us, 1.5 ms or seconds";
    case UNIT_FLOPS_PER_S: return "a rate such as 989 TFLOP/s or FLOP per second";
    default: return "a number";
    }
}

/* The quantity in text; *had_unit says whether a unit followed the number. */
static int parse_quantity(const char *text, ps_unit unit, double *out, int *had_unit,
                          ps_err *err) {
    char clean[128];
    size_t j = 0;
    *had_unit = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '_') continue;
        if (j + 1 == sizeof clean) /* no quantity is this long: never cut one short */
            return ps_err_set(err, "expected %s, found \"%.60s...\" (over %zu characters)",
                              unit_example(unit), text, sizeof clean - 1);
        clean[j++] = *p;
    }
    clean[j] = 0;
    char *end = NULL;
    double v = strtod(clean, &end);
    if (end == clean || !isfinite(v))
        return ps_err_set(err, "expected %s, found \"%s\"", unit_example(unit), text);
    while (*end == ' ') end++;
    if (!*end) {
        *out = v;
        return 0;
    }
    const unit_entry *units = units_for(unit);
    for (int i = 0; units && units[i].name; i++)
        if (!strcmp(end, units[i].name)) {
            /* finite before and after the unit: 1e300 PFLOP/s is not a rate */
            if (!isfinite(v * units[i].scale))
                return ps_err_set(err, "expected %s, found \"%s\" (too large to compute with)",
                                  unit_example(unit), text);
            *out = v * units[i].scale;
            *had_unit = 1;
            return 0;
        }
    return ps_err_set(err, "expected %s, found \"%s\" (unknown unit \"%s\")", unit_example(unit),
                      text, end);
}

int yget_parse_quantity(const char *text, ps_unit unit, double *out, ps_err *err) {
    int had_unit;
    return parse_quantity(text, unit, out, &had_unit, err);
}

static int need_scalar(const ynode *n, const char *field, const char *expected, ps_err *err) {
    char found[128];
    if (n->kind == YN_SCALAR) return 0;
    return ps_err_at(err, &n->loc, field, "expected %s, found %s", expected,
                     ynode_describe(n, found, sizeof found));
}

int yget_node_int(const ynode *n, const char *field, int64_t min, int64_t max, int64_t *out,
                  ps_err *err) {
    char expected[96];
    int64_t v;
    if (min == 1 && max == INT64_MAX)
        snprintf(expected, sizeof expected, "a positive integer");
    else if (max == INT64_MAX)
        snprintf(expected, sizeof expected, "an integer >= %lld", (long long)min);
    else
        snprintf(expected, sizeof expected, "an integer from %lld to %lld", (long long)min,
                 (long long)max);
    if (need_scalar(n, field, expected, err)) return -1;
    if (!n->plain || yget_parse_int(n->str, &v))
        return ps_err_at(err, &n->loc, field, "expected %s, found %s\"%s\"", expected,
                         n->plain ? "" : "the string ", n->str);
    if (v < min || v > max)
        return ps_err_at(err, &n->loc, field, "expected %s, found %lld", expected, (long long)v);
    *out = v;
    return 0;
}

/* Common front: look up key, handle absent/required. Returns 1 if present. */
static int lookup(const ynode *map, const char *path, const char *key, bool required,
                  const char *expected, const ynode **n, char *field, ps_err *err) {
    yget_field(path, key, field, FIELD_MAX);
    *n = ynode_get(map, key);
    if (*n && (*n)->kind != YN_NULL) return 1;
    if (!required) return 0;
    if (*n)
        return ps_err_at(err, &(*n)->loc, field, "expected %s, found nothing", expected);
    return ps_err_at(err, map ? &map->loc : NULL, field, "missing field (expected %s)", expected);
}

int yget_int(const ynode *map, const char *path, const char *key, bool required, int64_t min,
             int64_t max, int64_t *out, ps_err *err) {
    const ynode *n;
    char field[FIELD_MAX];
    int rc = lookup(map, path, key, required, min >= 1 ? "a positive integer" : "an integer", &n,
                    field, err);
    if (rc <= 0) return rc;
    return yget_node_int(n, field, min, max, out, err);
}

int yget_node_quantity(const ynode *n, const char *field, ps_unit unit, double min, double *out,
                       ps_err *err) {
    double v;
    int had_unit;
    if (need_scalar(n, field, unit_example(unit), err)) return -1;
    if (parse_quantity(n->str, unit, &v, &had_unit, err)) {
        ps_err inner = *err;
        return ps_err_at(err, &n->loc, field, "%s", inner.msg);
    }
    /* "80 GiB" may be quoted; a quoted "7" is a string, not a number */
    if (!n->plain && !had_unit)
        return ps_err_at(err, &n->loc, field, "expected %s, found the string \"%s\"",
                         unit_example(unit), n->str);
    if (v < min)
        return ps_err_at(err, &n->loc, field, "expected a value >= %g, found %s", min, n->str);
    *out = v;
    return 0;
}

int yget_quantity(const ynode *map, const char *path, const char *key, bool required,
                  ps_unit unit, double min, double *out, ps_err *err) {
    const ynode *n;
    char field[FIELD_MAX];
    int rc = lookup(map, path, key, required, unit_example(unit), &n, field, err);
    if (rc <= 0) return rc;
    return yget_node_quantity(n, field, unit, min, out, err);
}

int yget_bytes(const ynode *map, const char *path, const char *key, bool required, int64_t min,
               int64_t *out, ps_err *err) {
    double v = 0;
    char field[FIELD_MAX];
    const ynode *n = ynode_get(map, key);
    int rc = yget_quantity(map, path, key, required, UNIT_BYTES, (double)min, &v, err);
    if (rc || !n || n->kind == YN_NULL) return rc;
    if (v > 9.0e18 || v != floor(v))
        return ps_err_at(err, &n->loc, yget_field(path, key, field, sizeof field),
                         "expected a whole number of bytes, found %s", n->str);
    *out = (int64_t)v;
    return 0;
}

int yget_bool(const ynode *map, const char *path, const char *key, bool required, bool *out,
              ps_err *err) {
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    const ynode *n;
    char field[FIELD_MAX];
    int rc = lookup(map, path, key, required, "true or false", &n, field, err);
    if (rc <= 0) return rc;
    if (need_scalar(n, field, "true or false", err)) return -1;
    for (int i = 0; n->plain && yes[i]; i++)
        if (!strcasecmp(n->str, yes[i])) return *out = true, 0;
    for (int i = 0; n->plain && no[i]; i++)
        if (!strcasecmp(n->str, no[i])) return *out = false, 0;
    return ps_err_at(err, &n->loc, field, "expected true or false, found %s\"%s\"",
                     n->plain ? "" : "the string ", n->str);
}

int yget_enum(const ynode *map, const char *path, const char *key, bool required,
              const char *const *names, int *out, ps_err *err) {
    const ynode *n;
    char field[FIELD_MAX];
    char expected[512] = "one of ";
    yget_join(names, expected + 7, (int)sizeof expected - 7);
    int rc = lookup(map, path, key, required, expected, &n, field, err);
    if (rc <= 0) return rc;
    if (need_scalar(n, field, expected, err)) return -1;
    for (int i = 0; names[i]; i++)
        if (!strcmp(n->str, names[i])) return *out = i, 0;
    return ps_err_at(err, &n->loc, field, "expected %s, found \"%s\"", expected, n->str);
}

int yget_str(const ynode *map, const char *path, const char *key, bool required, char *buf,
             int buf_len, ps_err *err) {
    const ynode *n;
    char field[FIELD_MAX];
    int rc = lookup(map, path, key, required, "a name", &n, field, err);
    if (rc <= 0) return rc;
    if (need_scalar(n, field, "a name", err)) return -1;
    if ((int)strlen(n->str) >= buf_len)
        return ps_err_at(err, &n->loc, field, "expected at most %d characters, found %d",
                         buf_len - 1, (int)strlen(n->str));
    snprintf(buf, (size_t)buf_len, "%s", n->str);
    return 0;
}

int yget_map(const ynode *map, const char *path, const char *key, bool required,
             const ynode **out, ps_err *err) {
    const ynode *n;
    char field[FIELD_MAX];
    char found[128];
    *out = NULL;
    int rc = lookup(map, path, key, required, "a mapping", &n, field, err);
    if (rc <= 0) return rc;
    if (n->kind != YN_MAP)
        return ps_err_at(err, &n->loc, field, "expected a mapping, found %s",
                         ynode_describe(n, found, sizeof found));
    *out = n;
    return 0;
}

static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 40 || lb > 40) return 99;
    int d[41][41];
    for (int i = 0; i <= la; i++) d[i][0] = i;
    for (int j = 0; j <= lb; j++) d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

int yget_check_keys(const ynode *map, const char *path, const char *const *known, ps_err *err) {
    if (!map || map->kind != YN_MAP) return 0;
    for (int i = 0; i < map->n; i++) {
        int ok = 0, best = -1, best_d = 99;
        for (int k = 0; known[k] && !ok; k++) ok = !strcmp(map->keys[i], known[k]);
        if (ok) continue;
        /* the nearest known key, for the hint: only for an unknown key */
        for (int k = 0; known[k]; k++) {
            int d = edit_distance(map->keys[i], known[k]);
            if (d < best_d) best_d = d, best = k;
        }
        char field[FIELD_MAX], list[512], hint[96] = "";
        yget_join(known, list, sizeof list);
        if (best >= 0 && best_d <= 2) snprintf(hint, sizeof hint, "; did you mean '%s'?", known[best]);
        return ps_err_at(err, &map->key_locs[i], yget_field(path, map->keys[i], field, sizeof field),
                         "unknown key (expected one of: %s)%s", list, hint);
    }
    return 0;
}
