/* convert.c — fp32 <-> bfloat16 (the upper 16 bits of an IEEE-754 binary32).
 *
 * Why this way: rounding is to nearest, ties to even, on the raw bits:
 * add 0x7FFF plus the lowest kept bit, then truncate; a carry out of the
 * mantissa correctly bumps the exponent (so FLT_MAX rounds to +inf, as in
 * PyTorch). A NaN is handled first, because the addition could carry a
 * NaN with a low payload into infinity: it keeps its sign and top payload
 * bits and gets the quiet bit (0x0040) set. Source: c10::round_to_nearest_even
 * (PyTorch c10/util/BFloat16.h) and Intel's BF16 whitepaper (2018).
 * bf16 -> fp32 is exact: the bits shifted left by 16.
 */
#include <string.h>

#include "kern.h"
#include "kern_elem.h"

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return kern_bf16_round(u); /* kern_elem.h, shared with the CUDA twin */
}

void kern_f32_to_bf16(uint16_t *out, const float *in, int64_t n) {
#pragma omp parallel for if (n >= 65536)
    for (int64_t i = 0; i < n; i++)
        out[i] = f32_to_bf16(in[i]);
}

void kern_bf16_to_f32(float *out, const uint16_t *in, int64_t n) {
#pragma omp parallel for if (n >= 65536)
    for (int64_t i = 0; i < n; i++) {
        const uint32_t u = (uint32_t)in[i] << 16;
        memcpy(out + i, &u, sizeof u);
    }
}
