/* ynode.h — a YAML (or JSON) document as a small tree that remembers where
 * every value came from.
 *
 * libyaml parses; this module builds plain nodes carrying a ps_loc each from
 * its events, so that every later error can name file, line and column. JSON
 * is YAML, so Hugging Face config.json files and parasim's own JSON output load
 * the same way. Duplicate keys, non-scalar keys, recursive or undefined
 * aliases, tags other than the core ones (!!str, !!int, !!float, !!bool,
 * !!null, !!seq, !!map), text holding a NUL character and a second document
 * (`---`) are errors, not silent choices. A scalar that is quoted or tagged
 * !!str is a string: `plain` is 0 and yget's number readers refuse it.
 *
 * Limits, enforced while parsing so that hostile input fails fast with a
 * located error (docs/specs.md, "Limits"):
 *   - input size: ynode_limits.max_bytes, 64 MiB for specs (checked with
 *     fstat before reading a file);
 *   - nodes: max_nodes, 1,000,000 for specs, keys included and each alias
 *     counting as every node it repeats (a "billion laughs" stops at the alias
 *     that crosses it; an alias shares its anchor's nodes, it never copies);
 *   - nesting: max_depth, 64 levels of lists and mappings, aliases expanded.
 * A file must be a regular file: a FIFO, device or directory is refused
 * without reading it (the file is opened non-blocking).
 */
#ifndef PS_YNODE_H
#define PS_YNODE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define YNODE_MAX_DEPTH 64
#define YNODE_SPEC_MAX_BYTES (64LL << 20)
#define YNODE_SPEC_MAX_NODES 1000000

typedef struct {
    int64_t max_bytes; /* size of the file or text */
    int64_t max_nodes; /* values and keys, aliases expanded (at most INT32_MAX) */
    int max_depth;     /* levels of nesting, aliases expanded */
} ynode_limits;

/* The limits of ynode_load_file, ynode_load_string and of a NULL limits
 * argument: YNODE_SPEC_MAX_BYTES, YNODE_SPEC_MAX_NODES, YNODE_MAX_DEPTH. */
extern const ynode_limits ynode_spec_limits;

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
    int refs;       /* owners beyond the first: aliases share a node (0 when calloc'd) */
};

/* Load a whole file within the spec limits. On success *out owns a tree to
 * free with ynode_free. Errors name the file and say why it could not be read
 * (the errno reason, "found a FIFO", its size against the limit). */
int ynode_load_file(const char *path, ynode **out, ps_err *err);

/* The same with other limits (NULL: the spec limits), for larger inputs such
 * as execution-plan JSON. */
int ynode_load_file_limits(const char *path, const ynode_limits *limits, ynode **out,
                           ps_err *err);

/* Load a NUL-terminated text within the spec limits; origin names the text in
 * locations. */
int ynode_load_string(const char *text, const char *origin, ynode **out, ps_err *err);

/* Load len bytes that may hold anything, NULs included (a NUL is reported as
 * an error at its byte); limits NULL means the spec limits. The entry point
 * for fuzzers. */
int ynode_load_bytes(const char *data, size_t len, const char *origin,
                     const ynode_limits *limits, ynode **out, ps_err *err);

/* Release n: frees it and its children, or only drops one owner when an alias
 * still shares it. */
void ynode_free(ynode *n);

/* Value of key in a mapping, or NULL when absent or when map is not a mapping. */
const ynode *ynode_get(const ynode *map, const char *key);

/* Index of key in a mapping, or -1. */
int ynode_find(const ynode *map, const char *key);

/* Replace (or create) the value at a dotted path such as "parallel.tp", creating
 * intermediate mappings. Takes ownership of value. Fails when a component on the
 * way is not a mapping. A mapping on the way that an alias shares is copied
 * first, so that the change does not show through the alias. */
int ynode_set_path(ynode *root, const char *dotted, ynode *value, ps_err *err);

/* Set the location of n and all nodes under it (used for command-line values). */
void ynode_relocate(ynode *n, const ps_loc *loc);

/* A short description of a node for "found ..." messages: the scalar text in
 * quotes, "a mapping", "a list" or "nothing". */
const char *ynode_describe(const ynode *n, char *buf, int buf_len);

#endif
