/* spec_limit.c — bounds on spec quantities (see spec_limit.h). */
#include "spec/spec_limit.h"

#include <math.h>
#include <stddef.h>

#include "spec/yget.h"

int spec_limit(const ynode *map, const char *path, const char *key, double v, double lo,
               double hi, const char *range, ps_err *err) {
    const ynode *n = map ? ynode_get(map, key) : NULL;
    char field[96], found[128];
    if (!n || n->kind == YN_NULL || (isfinite(v) && v >= lo && v <= hi)) return 0;
    return ps_err_at(err, &n->loc, yget_field(path, key, field, sizeof field),
                     "expected %s, found %s", range, ynode_describe(n, found, sizeof found));
}
