/* ynode.c — libyaml document -> ynode tree (see ynode.h). */
#include "ynode.h"

#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define YNODE_MAX_DEPTH 64

static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz);
    if (!p) abort(); /* out of memory while parsing a spec file: nothing sane to do */
    return p;
}

static char *xstrdup(const char *s) {
    size_t len = strlen(s);
    char *p = xcalloc(len + 1, 1);
    memcpy(p, s, len);
    return p;
}

static int is_null_scalar(const yaml_node_t *node) {
    const char *v = (const char *)node->data.scalar.value;
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    return !v[0] || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
           !strcmp(v, "NULL");
}

static int convert(yaml_document_t *doc, yaml_node_t *node, const char *origin, int depth,
                   ynode **out, ps_err *err) {
    ps_loc loc;
    ps_loc_set(&loc, origin, (int)node->start_mark.line + 1, (int)node->start_mark.column + 1);
    if (depth > YNODE_MAX_DEPTH)
        return ps_err_at(err, &loc, NULL,
                         "nesting deeper than %d levels (a recursive alias?)", YNODE_MAX_DEPTH);
    ynode *n = xcalloc(1, sizeof *n);
    n->loc = loc;
    *out = n;
    switch (node->type) {
    case YAML_SCALAR_NODE:
        if (is_null_scalar(node)) {
            n->kind = YN_NULL;
            return 0;
        }
        n->kind = YN_SCALAR;
        n->str = xstrdup((const char *)node->data.scalar.value);
        n->plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        return 0;
    case YAML_SEQUENCE_NODE: {
        n->kind = YN_SEQ;
        int count = (int)(node->data.sequence.items.top - node->data.sequence.items.start);
        n->items = xcalloc((size_t)count, sizeof *n->items);
        for (int i = 0; i < count; i++) {
            yaml_node_t *child = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
            n->n = i + 1;
            if (convert(doc, child, origin, depth + 1, &n->items[i], err)) return -1;
        }
        return 0;
    }
    case YAML_MAPPING_NODE: {
        n->kind = YN_MAP;
        int count = (int)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
        n->items = xcalloc((size_t)count, sizeof *n->items);
        n->keys = xcalloc((size_t)count, sizeof *n->keys);
        n->key_locs = xcalloc((size_t)count, sizeof *n->key_locs);
        for (int i = 0; i < count; i++) {
            yaml_node_pair_t *pair = &node->data.mapping.pairs.start[i];
            yaml_node_t *k = yaml_document_get_node(doc, pair->key);
            yaml_node_t *v = yaml_document_get_node(doc, pair->value);
            ps_loc kloc;
            ps_loc_set(&kloc, origin, (int)k->start_mark.line + 1, (int)k->start_mark.column + 1);
            if (k->type != YAML_SCALAR_NODE)
                return ps_err_at(err, &kloc, NULL, "expected a plain key, found a %s",
                                 k->type == YAML_MAPPING_NODE ? "mapping" : "list");
            const char *key = (const char *)k->data.scalar.value;
            for (int j = 0; j < i; j++)
                if (!strcmp(n->keys[j], key)) {
                    char first[PS_LOC_FILE_MAX + 32];
                    return ps_err_at(err, &kloc, key, "duplicate key (first given at %s)",
                                     ps_loc_str(&n->key_locs[j], first, sizeof first));
                }
            n->keys[i] = xstrdup(key);
            n->key_locs[i] = kloc;
            n->n = i + 1;
            if (convert(doc, v, origin, depth + 1, &n->items[i], err)) return -1;
        }
        return 0;
    }
    default:
        n->kind = YN_NULL;
        return 0;
    }
}

static int load_with(yaml_parser_t *parser, const char *origin, ynode **out, ps_err *err) {
    yaml_document_t doc;
    *out = NULL;
    if (!yaml_parser_load(parser, &doc)) {
        ps_loc loc;
        ps_loc_set(&loc, origin, (int)parser->problem_mark.line + 1,
                   (int)parser->problem_mark.column + 1);
        int rc = ps_err_at(err, &loc, NULL, "not valid YAML/JSON: %s%s%s",
                           parser->problem ? parser->problem : "parse error",
                           parser->context ? " " : "", parser->context ? parser->context : "");
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = 0;
    if (!root) {
        ps_loc loc;
        ps_loc_set(&loc, origin, 1, 1);
        rc = ps_err_at(err, &loc, NULL, "empty document: expected a mapping of fields");
    } else {
        rc = convert(&doc, root, origin, 0, out, err);
        if (rc) {
            ynode_free(*out);
            *out = NULL;
        }
    }
    yaml_document_delete(&doc);
    return rc;
}

int ynode_load_file(const char *path, ynode **out, ps_err *err) {
    struct stat st;
    *out = NULL;
    if (!stat(path, &st) && S_ISDIR(st.st_mode))
        return ps_err_set(err, "%s: expected a YAML or JSON file, found a directory", path);
    FILE *f = fopen(path, "rb");
    if (!f) return ps_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int rc = load_with(&parser, path, out, err);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

int ynode_load_string(const char *text, const char *origin, ynode **out, ps_err *err) {
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    int rc = load_with(&parser, origin, out, err);
    yaml_parser_delete(&parser);
    return rc;
}

void ynode_free(ynode *n) {
    if (!n) return;
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
