/* ynode.c — libyaml events -> ynode tree, within limits (see ynode.h).
 *
 * The tree is built from libyaml's event stream (yaml_parser_parse), not from
 * the document yaml_parser_load would build, so that every limit holds while
 * parsing: input nested too deep stops at the first level past the limit, and
 * an alias that would take the document past its node budget stops at that
 * alias, before libyaml or this module has read the rest. An anchor table maps
 * each anchor to its finished node, the nodes it counts for and its height; an
 * alias then shares that node (refs) instead of copying it. Map keys and
 * anchors are looked up through hash tables, so a mapping with many keys or a
 * document with many aliases stays linear.
 */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, O_NOCTTY */
#include "spec/ynode.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "base/regular_file.h"

const ynode_limits ynode_spec_limits = {YNODE_SPEC_MAX_BYTES, YNODE_SPEC_MAX_NODES,
                                        YNODE_MAX_DEPTH};

static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz);
    if (!p) abort(); /* out of memory while parsing a spec file: nothing sane to do */
    return p;
}

static void *xrealloc(void *p, size_t n, size_t sz) {
    p = realloc(p, (n ? n : 1) * sz); /* n * sz <= max_nodes * 256: no overflow */
    if (!p) abort();
    return p;
}

static char *xstrdup(const char *s) {
    size_t len = strlen(s);
    char *p = xcalloc(len + 1, 1);
    memcpy(p, s, len);
    return p;
}

/* Names to indices: an open-addressing table of index + 1 (0 = empty) over an
 * array of names owned by the caller. */
typedef struct {
    int *slots;
    size_t cap; /* a power of two, or 0 */
    size_t used;
} name_table;

static size_t name_hash(const char *s) {
    size_t h = 14695981039346656037ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int name_find(const name_table *t, char *const *names, const char *name) {
    if (!t->cap) return -1;
    for (size_t h = name_hash(name) & (t->cap - 1);; h = (h + 1) & (t->cap - 1)) {
        int s = t->slots[h];
        if (!s) return -1;
        if (!strcmp(names[s - 1], name)) return s - 1;
    }
}

/* Map names[index] to index, replacing an earlier index of the same name. */
static void name_put(name_table *t, char *const *names, int index) {
    if ((t->used + 1) * 2 > t->cap) {
        name_table g = {xcalloc(t->cap ? t->cap * 2 : 16, sizeof *g.slots),
                        t->cap ? t->cap * 2 : 16, t->used};
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slots[i]) continue;
            size_t h = name_hash(names[t->slots[i] - 1]) & (g.cap - 1);
            while (g.slots[h])
                h = (h + 1) & (g.cap - 1);
            g.slots[h] = t->slots[i];
        }
        free(t->slots);
        *t = g;
    }
    size_t h = name_hash(names[index]) & (t->cap - 1);
    while (t->slots[h] && strcmp(names[t->slots[h] - 1], names[index]))
        h = (h + 1) & (t->cap - 1);
    if (!t->slots[h]) t->used++;
    t->slots[h] = index + 1;
}

typedef struct {
    ynode *node;   /* NULL while the anchored node is being built */
    int64_t nodes; /* nodes it counts for, aliases inside it expanded */
    int height;    /* levels of nesting below it */
} anchor;

typedef struct {
    yaml_parser_t parser;
    char origin[PS_LOC_FILE_MAX];
    const unsigned char *text;
    size_t len;
    ynode_limits lim;
    int64_t nodes; /* counted so far */
    char **anchor_names;
    anchor *anchors;
    int n_anchors, cap_anchors;
    name_table anchor_index;
    ps_err *err;
} builder;

/* b->origin is already shortened to fit a ps_loc (ynode_load_bytes), so it is
 * copied as it is: this runs for every value and key. */
static void loc_at(const builder *b, yaml_mark_t mark, ps_loc *loc) {
    memcpy(loc->file, b->origin, strlen(b->origin) + 1);
    loc->line = (int)mark.line + 1;
    loc->col = (int)mark.column + 1;
}

/* Line and column (in characters, as libyaml counts) of a byte offset. */
static void loc_of_offset(const builder *b, size_t offset, ps_loc *loc) {
    int line = 1, col = 1;
    if (offset > b->len) offset = b->len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char c = b->text[i];
        if (c == '\n' || (c == '\r' && (i + 1 == b->len || b->text[i + 1] != '\n')))
            line++, col = 1;
        else if (c != '\r' && (c & 0xC0) != 0x80)
            col++;
    }
    ps_loc_set(loc, b->origin, line, col);
}

static int parse_error(builder *b) {
    const yaml_parser_t *p = &b->parser;
    ps_loc loc;
    if (p->error == YAML_MEMORY_ERROR) return ps_err_set(b->err, "%s: out of memory", b->origin);
    if (p->error == YAML_READER_ERROR) { /* libyaml gives the byte, not the line */
        char value[32] = "";
        loc_of_offset(b, p->problem_offset, &loc);
        if (p->problem_value >= 0) snprintf(value, sizeof value, " 0x%02X", p->problem_value);
        return ps_err_at(b->err, &loc, NULL, "not valid YAML/JSON: %s%s at byte offset %zu",
                         p->problem ? p->problem : "unreadable input", value, p->problem_offset);
    }
    ps_loc_set(&loc, b->origin, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1);
    return ps_err_at(b->err, &loc, NULL, "not valid YAML/JSON: %s%s%s",
                     p->problem ? p->problem : "parse error", p->context ? " " : "",
                     p->context ? p->context : "");
}

static int next_event(builder *b, yaml_event_t *ev) {
    return yaml_parser_parse(&b->parser, ev) ? 0 : parse_error(b);
}

/* Count n more nodes against the budget. */
static int count_nodes(builder *b, int64_t n, const ps_loc *loc) {
    if (n > b->lim.max_nodes - b->nodes)
        return ps_err_at(b->err, loc, NULL,
                         "the document has more than %lld values, counting each alias as the "
                         "values it repeats (the limit for one file)",
                         (long long)b->lim.max_nodes);
    b->nodes += n;
    return 0;
}

static int too_deep(builder *b, const ps_loc *loc) {
    return ps_err_at(b->err, loc, NULL, "nesting deeper than %d levels", b->lim.max_depth);
}

enum { TAG_NONE, TAG_STR, TAG_TYPED, TAG_NULL };

#define CORE_TAG "tag:yaml.org,2002:"

/* Check a node's tag; *kind says what it makes of a scalar. */
static int check_tag(builder *b, const yaml_char_t *tag, yaml_event_type_t type, const ps_loc *loc,
                     int *kind) {
    static const char *const scalar_tags[] = {"str", "int", "float", "bool", "null", NULL};
    static const int scalar_kinds[] = {TAG_STR, TAG_TYPED, TAG_TYPED, TAG_TYPED, TAG_NULL};
    const char *t = (const char *)tag;
    *kind = TAG_NONE;
    if (!t) return 0;
    size_t core = strlen(CORE_TAG);
    if (!strncmp(t, CORE_TAG, core)) {
        const char *name = t + core;
        if (type == YAML_SCALAR_EVENT)
            for (int i = 0; scalar_tags[i]; i++)
                if (!strcmp(name, scalar_tags[i])) return *kind = scalar_kinds[i], 0;
        if ((type == YAML_SEQUENCE_START_EVENT && !strcmp(name, "seq")) ||
            (type == YAML_MAPPING_START_EVENT && !strcmp(name, "map")))
            return 0;
    }
    const char *allowed = type == YAML_SCALAR_EVENT ? "!!str, !!int, !!float, !!bool or !!null"
                          : type == YAML_SEQUENCE_START_EVENT ? "!!seq"
                                                              : "!!map";
    char shown[72];
    snprintf(shown, sizeof shown, "%s%.60s", strncmp(t, CORE_TAG, core) ? "" : "!!",
             strncmp(t, CORE_TAG, core) ? t : t + core);
    return ps_err_at(b->err, loc, NULL, "expected no tag (or %s), found the tag \"%s\"", allowed,
                     shown);
}

static int is_null_text(const char *v) {
    return !v[0] || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
           !strcmp(v, "NULL");
}

/* What a scalar event is: *kind YN_NULL or YN_SCALAR, *plain whether a number
 * reader may read it; text holding a NUL, or !!null on other text, is an error
 * at loc. */
static int scalar_kind(builder *b, const yaml_event_t *ev, int tag, const ps_loc *loc,
                       yn_kind *kind, int *plain) {
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (strlen(v) != len) {
        int shown = strlen(v) > 40 ? 40 : (int)strlen(v);
        return ps_err_at(b->err, loc, NULL,
                         "expected text without NUL characters, found a NUL (\\u0000) after "
                         "\"%.*s\"",
                         shown, v);
    }
    int untagged_plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (tag == TAG_NULL || (tag == TAG_NONE && untagged_plain && is_null_text(v))) {
        if (!is_null_text(v))
            return ps_err_at(b->err, loc, NULL, "expected nothing after !!null, found \"%.60s\"",
                             v);
        *kind = YN_NULL;
        *plain = 0;
        return 0;
    }
    *kind = YN_SCALAR;
    *plain = tag == TAG_STR ? 0 : tag == TAG_TYPED ? 1 : untagged_plain;
    return 0;
}

static int fill_scalar(builder *b, const yaml_event_t *ev, int tag, ynode *n) {
    if (scalar_kind(b, ev, tag, &n->loc, &n->kind, &n->plain)) return -1;
    if (n->kind == YN_SCALAR) n->str = xstrdup((const char *)ev->data.scalar.value);
    return 0;
}

static int build(builder *b, const yaml_event_t *ev, int depth, ynode **out, int *height);

static int fill_seq(builder *b, int depth, ynode *n, int *height) {
    int cap = 0;
    n->kind = YN_SEQ;
    for (;;) {
        yaml_event_t ev;
        int h = 0;
        if (next_event(b, &ev)) return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (n->n == cap) {
            cap = cap ? cap * 2 : 4;
            n->items = xrealloc(n->items, (size_t)cap, sizeof *n->items);
        }
        n->items[n->n++] = NULL;
        int rc = build(b, &ev, depth + 1, &n->items[n->n - 1], &h);
        yaml_event_delete(&ev);
        if (rc) return -1;
        if (h + 1 > *height) *height = h + 1;
    }
}

/* Read a mapping key (a scalar, or an alias of one) into a new string. */
static int read_key(builder *b, const yaml_event_t *ev, int depth, const ps_loc *kloc, char **key) {
    ynode *k = NULL;
    int h = 0;
    if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT)
        return ps_err_at(b->err, kloc, NULL, "expected a plain key, found a %s",
                         ev->type == YAML_MAPPING_START_EVENT ? "mapping" : "list");
    if (ev->type == YAML_SCALAR_EVENT && !ev->data.scalar.anchor) {
        /* the common key: checked as build() would, without making a node */
        int tag, plain;
        yn_kind kind;
        if (depth > b->lim.max_depth) return too_deep(b, kloc);
        if (count_nodes(b, 1, kloc) || check_tag(b, ev->data.scalar.tag, ev->type, kloc, &tag) ||
            scalar_kind(b, ev, tag, kloc, &kind, &plain))
            return -1;
        *key = xstrdup((const char *)ev->data.scalar.value);
        return 0;
    }
    int rc = build(b, ev, depth, &k, &h);
    if (!rc && k->kind != YN_SCALAR && k->kind != YN_NULL)
        rc = ps_err_at(b->err, kloc, NULL, "expected a plain key, found a %s",
                       k->kind == YN_MAP ? "mapping" : "list");
    if (!rc)
        *key = xstrdup(ev->type == YAML_SCALAR_EVENT ? (const char *)ev->data.scalar.value
                       : k->str                      ? k->str
                                                     : "");
    ynode_free(k);
    return rc;
}

/* Keys of a mapping up to this many are checked for duplicates by a scan. */
#define SMALL_MAP 8

static int fill_map(builder *b, int depth, ynode *n, int *height) {
    name_table seen = {0};
    int cap = 0, rc = 0;
    n->kind = YN_MAP;
    for (;;) {
        yaml_event_t ev;
        ps_loc kloc;
        char *key = NULL;
        int h = 0;
        if ((rc = next_event(b, &ev))) break;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        loc_at(b, ev.start_mark, &kloc);
        rc = read_key(b, &ev, depth + 1, &kloc, &key);
        yaml_event_delete(&ev);
        if (rc) break;
        int first = -1; /* a small mapping is searched in order, a larger one hashed */
        if (seen.cap)
            first = name_find(&seen, n->keys, key);
        else
            for (int i = 0; i < n->n && first < 0; i++)
                if (!strcmp(n->keys[i], key)) first = i;
        if (first >= 0) {
            char where[PS_LOC_FILE_MAX + 32];
            rc = ps_err_at(b->err, &kloc, key, "duplicate key (first given at %s)",
                           ps_loc_str(&n->key_locs[first], where, sizeof where));
            free(key);
            break;
        }
        if (n->n == cap) {
            cap = cap ? cap * 2 : 4;
            n->items = xrealloc(n->items, (size_t)cap, sizeof *n->items);
            n->keys = xrealloc(n->keys, (size_t)cap, sizeof *n->keys);
            n->key_locs = xrealloc(n->key_locs, (size_t)cap, sizeof *n->key_locs);
        }
        n->keys[n->n] = key;
        n->key_locs[n->n] = kloc;
        n->items[n->n] = NULL;
        n->n++;
        if (seen.cap)
            name_put(&seen, n->keys, n->n - 1);
        else if (n->n == SMALL_MAP)
            for (int i = 0; i < n->n; i++)
                name_put(&seen, n->keys, i);
        if ((rc = next_event(b, &ev))) break;
        rc = build(b, &ev, depth + 1, &n->items[n->n - 1], &h);
        yaml_event_delete(&ev);
        if (rc) break;
        if (h + 1 > *height) *height = h + 1;
    }
    free(seen.slots);
    return rc;
}

static int build_alias(builder *b, const yaml_event_t *ev, const ps_loc *loc, int depth,
                       ynode **out, int *height) {
    const char *name = (const char *)ev->data.alias.anchor;
    int i = name_find(&b->anchor_index, b->anchor_names, name);
    if (i < 0)
        return ps_err_at(b->err, loc, NULL,
                         "expected an alias of an anchor defined before it, "
                         "found *%.60s with no &%.60s above",
                         name, name);
    const anchor *a = &b->anchors[i];
    if (!a->node)
        return ps_err_at(b->err, loc, NULL,
                         "recursive alias: *%.60s repeats the value &%.60s that contains it", name,
                         name);
    if (a->height > b->lim.max_depth - depth) return too_deep(b, loc);
    if (count_nodes(b, a->nodes, loc)) return -1;
    a->node->refs++;
    *out = a->node;
    *height = a->height;
    return 0;
}

/* Build the node that starts with ev (which the caller deletes). On error *out
 * may hold a partial node for the caller to free. */
static int build(builder *b, const yaml_event_t *ev, int depth, ynode **out, int *height) {
    ps_loc loc;
    const yaml_char_t *anchor_name = NULL, *tag = NULL;
    int tag_kind;
    *out = NULL;
    *height = 0;
    loc_at(b, ev->start_mark, &loc);
    if (depth > b->lim.max_depth) return too_deep(b, &loc);
    if (ev->type == YAML_ALIAS_EVENT) return build_alias(b, ev, &loc, depth, out, height);
    if (ev->type == YAML_SCALAR_EVENT)
        anchor_name = ev->data.scalar.anchor, tag = ev->data.scalar.tag;
    else if (ev->type == YAML_SEQUENCE_START_EVENT)
        anchor_name = ev->data.sequence_start.anchor, tag = ev->data.sequence_start.tag;
    else if (ev->type == YAML_MAPPING_START_EVENT)
        anchor_name = ev->data.mapping_start.anchor, tag = ev->data.mapping_start.tag;
    else
        return ps_err_at(b->err, &loc, NULL, "not valid YAML/JSON: expected a value");
    int64_t first = b->nodes;
    if (count_nodes(b, 1, &loc) || check_tag(b, tag, ev->type, &loc, &tag_kind)) return -1;
    int a = -1;
    if (anchor_name) { /* registered now, so that an alias inside it is seen as recursive */
        if (b->n_anchors == b->cap_anchors) {
            b->cap_anchors = b->cap_anchors ? b->cap_anchors * 2 : 8;
            b->anchors = xrealloc(b->anchors, (size_t)b->cap_anchors, sizeof *b->anchors);
            b->anchor_names =
                xrealloc(b->anchor_names, (size_t)b->cap_anchors, sizeof *b->anchor_names);
        }
        a = b->n_anchors++;
        b->anchors[a] = (anchor){NULL, 0, 0};
        b->anchor_names[a] = xstrdup((const char *)anchor_name);
        name_put(&b->anchor_index, b->anchor_names, a);
    }
    ynode *n = xcalloc(1, sizeof *n);
    n->loc = loc;
    *out = n;
    int rc = ev->type == YAML_SCALAR_EVENT           ? fill_scalar(b, ev, tag_kind, n)
             : ev->type == YAML_SEQUENCE_START_EVENT ? fill_seq(b, depth, n, height)
                                                     : fill_map(b, depth, n, height);
    if (rc) return -1;
    if (a >= 0) {
        b->anchors[a] = (anchor){n, b->nodes - first, *height};
        n->refs++; /* the table's reference, dropped when loading ends */
    }
    return 0;
}

static int load_document(builder *b, ynode **out) {
    yaml_event_t ev;
    ps_loc loc;
    int h, rc;
    if (next_event(b, &ev)) return -1; /* stream start */
    yaml_event_delete(&ev);
    if (next_event(b, &ev)) return -1;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        ps_loc_set(&loc, b->origin, 1, 1);
        return ps_err_at(b->err, &loc, NULL, "empty document: expected a mapping of fields");
    }
    yaml_event_delete(&ev); /* document start */
    if (next_event(b, &ev)) return -1;
    rc = build(b, &ev, 0, out, &h);
    yaml_event_delete(&ev);
    if (rc || next_event(b, &ev)) return -1; /* document end */
    yaml_event_delete(&ev);
    if (next_event(b, &ev)) return -1;
    rc = 0;
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        loc_at(b, ev.start_mark, &loc);
        rc = ps_err_at(b->err, &loc, NULL,
                       "expected one YAML document, found a second one (a file holds one spec; "
                       "remove the '---' line and what follows, or split the file)");
    }
    yaml_event_delete(&ev);
    return rc;
}

int ynode_load_bytes(const char *data, size_t len, const char *origin, const ynode_limits *limits,
                     ynode **out, ps_err *err) {
    builder b;
    memset(&b, 0, sizeof b);
    *out = NULL;
    b.lim = limits ? *limits : ynode_spec_limits;
    if (b.lim.max_nodes > INT_MAX) b.lim.max_nodes = INT_MAX;
    b.text = (const unsigned char *)data;
    b.len = len;
    b.err = err;
    ps_path_short(origin ? origin : "", b.origin, sizeof b.origin);
    if (len > (uint64_t)b.lim.max_bytes)
        return ps_err_set(err,
                          "%s: expected at most %lld bytes (the limit for one file), found %zu",
                          b.origin, (long long)b.lim.max_bytes, len);
    if (!yaml_parser_initialize(&b.parser)) return ps_err_set(err, "%s: out of memory", b.origin);
    yaml_parser_set_input_string(&b.parser, b.text, len);
    int rc = load_document(&b, out);
    if (rc) {
        ynode_free(*out);
        *out = NULL;
    }
    for (int i = 0; i < b.n_anchors; i++) {
        ynode_free(b.anchors[i].node);
        free(b.anchor_names[i]);
    }
    free(b.anchors);
    free(b.anchor_names);
    free(b.anchor_index.slots);
    yaml_parser_delete(&b.parser);
    return rc;
}

int ynode_load_string(const char *text, const char *origin, ynode **out, ps_err *err) {
    return ynode_load_bytes(text, strlen(text), origin, NULL, out, err);
}

int ynode_load_file_limits(const char *path, const ynode_limits *limits, ynode **out, ps_err *err) {
    const ynode_limits *lim = limits ? limits : &ynode_spec_limits;
    char shown[PS_LOC_FILE_MAX];
    struct stat st;
    *out = NULL;
    ps_path_short(path, shown, sizeof shown);
    int fd = regular_file_open(path, &st);
    if (fd == -1) return ps_err_set(err, "%s: cannot open: %s", shown, strerror(errno));
    if (fd == -2 && S_ISDIR(st.st_mode))
        return ps_err_set(err, "%s: expected a YAML or JSON file, found a directory", shown);
    if (fd == -2)
        return ps_err_set(err, "%s: expected a regular file, found %s", shown,
                          regular_file_kind(st.st_mode));
    if (st.st_size > lim->max_bytes) {
        close(fd);
        return ps_err_set(err,
                          "%s: expected at most %lld bytes (the limit for one file), found %lld",
                          shown, (long long)lim->max_bytes, (long long)st.st_size);
    }
    /* one byte more than the size, to see a file that grew past the limit */
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = xcalloc(cap, 1);
    for (;;) {
        if (len == cap) {
            if ((int64_t)len > lim->max_bytes) break;
            cap = cap * 2 < (size_t)lim->max_bytes + 1 ? cap * 2 : (size_t)lim->max_bytes + 1;
            buf = xrealloc(buf, cap, 1);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return ps_err_set(err, "%s: cannot read: %s", shown, strerror(e));
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    int rc = ynode_load_bytes(buf, len, path, lim, out, err);
    free(buf);
    return rc;
}

int ynode_load_file(const char *path, ynode **out, ps_err *err) {
    return ynode_load_file_limits(path, NULL, out, err);
}

void ynode_free(ynode *n) {
    if (!n) return;
    if (n->refs > 0) { /* an alias still shares it */
        n->refs--;
        return;
    }
    for (int i = 0; i < n->n; i++) {
        ynode_free(n->items[i]);
        if (n->keys) free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->key_locs);
    free(n->str);
    free(n);
}

int ynode_find(const ynode *map, const char *key) {
    if (!map || map->kind != YN_MAP) return -1;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key)) return i;
    return -1;
}

const ynode *ynode_get(const ynode *map, const char *key) {
    int i = ynode_find(map, key);
    return i < 0 ? NULL : map->items[i];
}

static void map_append(ynode *map, const char *key, ynode *value, const ps_loc *loc) {
    map->items = realloc(map->items, (size_t)(map->n + 1) * sizeof *map->items);
    map->keys = realloc(map->keys, (size_t)(map->n + 1) * sizeof *map->keys);
    map->key_locs = realloc(map->key_locs, (size_t)(map->n + 1) * sizeof *map->key_locs);
    if (!map->items || !map->keys || !map->key_locs) abort();
    map->items[map->n] = value;
    map->keys[map->n] = xstrdup(key);
    map->key_locs[map->n] = *loc;
    map->n++;
}

/* A private copy of a shared node, sharing its children (copied in turn when
 * ynode_set_path walks into them); drops one owner of n. */
static ynode *unshare(ynode *n) {
    ynode *c = xcalloc(1, sizeof *c);
    c->kind = n->kind;
    c->plain = n->plain;
    c->loc = n->loc;
    c->str = n->str ? xstrdup(n->str) : NULL;
    c->n = n->n;
    if (n->n) {
        c->items = xcalloc((size_t)n->n, sizeof *c->items);
        for (int i = 0; i < n->n; i++)
            if ((c->items[i] = n->items[i])) c->items[i]->refs++;
    }
    if (n->keys) {
        c->keys = xcalloc((size_t)n->n, sizeof *c->keys);
        c->key_locs = xcalloc((size_t)n->n, sizeof *c->key_locs);
        for (int i = 0; i < n->n; i++)
            c->keys[i] = xstrdup(n->keys[i]);
        memcpy(c->key_locs, n->key_locs, (size_t)n->n * sizeof *c->key_locs);
    }
    ynode_free(n);
    return c;
}

int ynode_set_path(ynode *root, const char *dotted, ynode *value, ps_err *err) {
    char path[256];
    snprintf(path, sizeof path, "%s", dotted);
    ynode *cur = root;
    char *save = NULL;
    char *part = strtok_r(path, ".", &save);
    char walked[256] = "";
    while (part) {
        char *next = strtok_r(NULL, ".", &save);
        if (cur->kind == YN_NULL) { /* an empty section: make it a mapping */
            cur->kind = YN_MAP;
        }
        if (cur->kind != YN_MAP) {
            char found[128];
            ynode_free(value);
            return ps_err_at(err, &cur->loc, walked[0] ? walked : "(top level)",
                             "cannot set '%s' inside it: expected a mapping, found %s", dotted,
                             ynode_describe(cur, found, sizeof found));
        }
        size_t wl = strlen(walked);
        snprintf(walked + wl, sizeof walked - wl, "%s%s", wl ? "." : "", part);
        int i = ynode_find(cur, part);
        if (!next) {
            if (i >= 0) {
                ynode_free(cur->items[i]);
                cur->items[i] = value;
                cur->key_locs[i] = value->loc;
            } else {
                map_append(cur, part, value, &value->loc);
            }
            return 0;
        }
        if (i < 0) {
            ynode *m = xcalloc(1, sizeof *m);
            m->kind = YN_MAP;
            m->loc = value->loc;
            map_append(cur, part, m, &value->loc);
            i = cur->n - 1;
        }
        if (cur->items[i]->refs) cur->items[i] = unshare(cur->items[i]);
        cur = cur->items[i];
        part = next;
    }
    ynode_free(value);
    return ps_err_set(err, "--set: empty field path in '%s'", dotted);
}

void ynode_relocate(ynode *n, const ps_loc *loc) {
    if (!n) return;
    n->loc = *loc;
    for (int i = 0; i < n->n; i++) {
        ynode_relocate(n->items[i], loc);
        if (n->key_locs) n->key_locs[i] = *loc;
    }
}

const char *ynode_describe(const ynode *n, char *buf, int buf_len) {
    if (!n || n->kind == YN_NULL)
        snprintf(buf, (size_t)buf_len, "nothing");
    else if (n->kind == YN_MAP)
        snprintf(buf, (size_t)buf_len, "a mapping");
    else if (n->kind == YN_SEQ)
        snprintf(buf, (size_t)buf_len, "a list");
    else if (strlen(n->str) > 60)
        snprintf(buf, (size_t)buf_len, "\"%.57s...\"", n->str);
    else
        snprintf(buf, (size_t)buf_len, "\"%s\"", n->str);
    return buf;
}
