/* ynode.h — a YAML (or JSON) document as a small tree that remembers where
 * every value came from.
 *
 * libyaml parses; this module copies its document into plain nodes carrying a
 * ps_loc each, so that every later error can name file, line and column. JSON
 * is YAML, so Hugging Face config.json files and parasim's own JSON output load
 * the same way. Duplicate keys, non-scalar keys and recursive aliases are
 * errors, not silent choices.
 */
#ifndef PS_YNODE_H
#define PS_YNODE_H

#include "err.h"

typedef enum { YN_NULL, YN_SCALAR, YN_SEQ, YN_MAP } yn_kind;

typedef struct ynode ynode;
struct ynode {
    yn_kind kind;
    char *str;      /* scalar text; NULL otherwise */
    int plain;      /* scalar was written without quotes */
    ps_loc loc;     /* where the value starts */
    int n;          /* number of items (seq) or pairs (map) */
    ynode **items;  /* seq items, or map values */
    char **keys;    /* map keys */
    ps_loc *key_locs;
};

/* Load a whole file. On success *out owns a tree to free with ynode_free. */
int ynode_load_file(const char *path, ynode **out, ps_err *err);

/* Load from memory; origin names the text in locations. */
int ynode_load_string(const char *text, const char *origin, ynode **out, ps_err *err);

void ynode_free(ynode *n);

/* Value of key in a mapping, or NULL when absent or when map is not a mapping. */
const ynode *ynode_get(const ynode *map, const char *key);

/* Index of key in a mapping, or -1. */
int ynode_find(const ynode *map, const char *key);

/* Replace (or create) the value at a dotted path such as "parallel.tp", creating
 * intermediate mappings. Takes ownership of value. Fails when a component on the
 * way is not a mapping. */
int ynode_set_path(ynode *root, const char *dotted, ynode *value, ps_err *err);

/* Set the location of n and all nodes under it (used for command-line values). */
void ynode_relocate(ynode *n, const ps_loc *loc);

/* A short description of a node for "found ..." messages: the scalar text in
 * quotes, "a mapping", "a list" or "nothing". */
const char *ynode_describe(const ynode *n, char *buf, int buf_len);

#endif
