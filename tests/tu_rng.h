/* tu_rng.h — the kernel tests' random inputs: uniform in [-1, 1) from xorshift64*
 * (Marsaglia 2003; Vigna's * multiplier), each test file with its own state. */
#ifndef PS_TU_RNG_H
#define PS_TU_RNG_H

#include <stdint.h>

static inline float tu_rnd(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    const uint64_t r = *state * 0x2545F4914F6CDD1Dull;
    return (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

#endif
