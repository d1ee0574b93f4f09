/* yget.h — typed, located reads of spec fields from a ynode mapping.
 *
 * Each getter names the field by its dotted path ("parallel.tp") in errors,
 * says what was expected and quotes what was found. A missing optional field
 * leaves *out untouched (callers set the documented default first); a missing
 * required field is an error at the enclosing mapping. Quantities accept units
 * ("80 GiB", "900 GB/s", "2 us", "989 TFLOP/s"); a bare number is in the base
 * unit (bytes, bytes/s, seconds, FLOP/s). Numbers must be plain scalars: a
 * quoted or !!str value ("7" in JSON) is a string and is refused with "found
 * the string", except a quantity written with its unit ("80 GiB"). Every
 * quantity read is finite, its unit multiplier applied.
 */
#ifndef PS_YGET_H
#define PS_YGET_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "spec/ynode.h"

typedef enum { UNIT_NONE, UNIT_BYTES, UNIT_BYTES_PER_S, UNIT_SECONDS, UNIT_FLOPS_PER_S } ps_unit;

/* Parse a quantity string in the given unit kind. Returns 0 and a finite
 * *out, or -1 with a message (no location) in err. */
int yget_parse_quantity(const char *text, ps_unit unit, double *out, ps_err *err);

/* Parse a decimal integer (digits, optional sign and '_' separators). */
int yget_parse_int(const char *text, int64_t *out);

/* Read a scalar node as an integer in [min, max]; field names it in errors. */
int yget_node_int(const ynode *n, const char *field, int64_t min, int64_t max, int64_t *out,
                  ps_err *err);

/* Read a scalar node as a quantity >= min; field names it in errors. */
int yget_node_quantity(const ynode *n, const char *field, ps_unit unit, double min, double *out,
                       ps_err *err);

int yget_int(const ynode *map, const char *path, const char *key, bool required, int64_t min,
             int64_t max, int64_t *out, ps_err *err);
int yget_quantity(const ynode *map, const char *path, const char *key, bool required,
                  ps_unit unit, double min, double *out, ps_err *err);
int yget_bytes(const ynode *map, const char *path, const char *key, bool required, int64_t min,
               int64_t *out, ps_err *err);
int yget_bool(const ynode *map, const char *path, const char *key, bool required, bool *out,
              ps_err *err);
/* names is a NULL-terminated list; *out receives the index. */
int yget_enum(const ynode *map, const char *path, const char *key, bool required,
              const char *const *names, int *out, ps_err *err);
int yget_str(const ynode *map, const char *path, const char *key, bool required, char *buf,
             int buf_len, ps_err *err);

/* The mapping under key (NULL when absent and not required). A value that is
 * not a mapping is an error. */
int yget_map(const ynode *map, const char *path, const char *key, bool required,
             const ynode **out, ps_err *err);

/* Every key of map must be in known (NULL-terminated); otherwise an error that
 * lists the known keys and suggests the closest one. */
int yget_check_keys(const ynode *map, const char *path, const char *const *known, ps_err *err);

/* "path.key" (or "key" when path is empty) into buf. */
const char *yget_field(const char *path, const char *key, char *buf, int buf_len);

/* Comma-separated list of names, for "expected one of ..." messages. */
const char *yget_join(const char *const *names, char *buf, int buf_len);

#endif
