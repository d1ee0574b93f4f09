/* spec_limit.h — upper and lower bounds on spec quantities beyond what the
 * typed getters of yget.h check (docs/specs.md "Limits").
 *
 * The getters read a value and check its type and minimum; spec_limit then
 * holds the value read to the range the formulas are meant for, with an error
 * at the value's node that says the range and why.
 */
#ifndef PS_SPEC_LIMIT_H
#define PS_SPEC_LIMIT_H

#include "base/err.h"
#include "spec/ynode.h"

/* When map holds key, v (the value read from it) must be finite and lie in
 * [lo, hi]; otherwise an error at the node: "path.key: expected <range>, found
 * <text>". range says the range in words and units, such as "a latency from 0
 * to 1 s". Returns 0 or -1. */
int spec_limit(const ynode *map, const char *path, const char *key, double v, double lo,
               double hi, const char *range, ps_err *err);

#endif
