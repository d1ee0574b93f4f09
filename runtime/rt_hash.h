/* rt_hash.h — counter-based randomness for the runtime: splitmix64's
 * finaliser (Steele, Lea and Flood 2014), so that a value depends only on
 * its (seed, index) and never on how many ranks drew before it. */
#ifndef PS_RT_HASH_H
#define PS_RT_HASH_H

#include <stdint.h>

static inline uint64_t rt_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
