/* sat_int.h — non-negative int64 arithmetic that saturates at INT64_MAX
 * instead of overflowing (docs/security.md §2).
 *
 * A size formed from bounded inputs can still pass 2^63; computed this way it
 * stays at INT64_MAX, which every "too large" check then refuses. */
#ifndef PS_SAT_INT_H
#define PS_SAT_INT_H

#include <stdint.h>

static inline int64_t sat_mul(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

static inline int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

#endif
