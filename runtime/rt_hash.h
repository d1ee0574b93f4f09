/* rt_hash.h — counter-based randomness for the runtime: splitmix64's
 * finaliser (Steele, Lea and Flood 2014), so that a value depends only on
 * its (seed, index) and never on how many ranks drew before it. */
#ifndef PS_RT_HASH_H
#define PS_RT_HASH_H

#include <math.h>
#include <stdint.h>

static inline uint64_t rt_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A standard normal that depends only on (seed, i): Box-Muller on two
 * counter-based uniforms in (0, 1]. The training model's initialisation
 * (rt_model_init_values) and the inference engine's random weights. */
static inline double rt_normal_at(uint64_t seed, int64_t i) {
    const uint64_t a = rt_mix64(seed * 0x9e3779b97f4a7c15ULL + 2 * (uint64_t)i + 1);
    const uint64_t b = rt_mix64(a ^ 0xd1b54a32d192ed03ULL);
    const double u1 = ((double)(a >> 11) + 1.0) / 9007199254740992.0;
    const double u2 = (double)(b >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
