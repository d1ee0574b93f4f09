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
#include "kern_math.h"

/* kern_bf16_round (kern_elem.h, shared with the CUDA twin) over a chunk, vectorised */
KERN_SIMD_CLONES static void to_bf16_chunk(uint16_t *out, const float *in, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, in + i, sizeof u);
        out[i] = kern_bf16_round(u);
    }
}

void kern_f32_to_bf16(uint16_t *out, const float *in, int64_t n) {
    enum { CHUNK = 16384 };
#pragma omp parallel for if (n >= 65536)
    for (int64_t c = 0; c < n; c += CHUNK)
        to_bf16_chunk(out + c, in + c, n - c < CHUNK ? n - c : CHUNK);
}

void kern_bf16_to_f32(float *out, const uint16_t *in, int64_t n) {
#pragma omp parallel for if (n >= 65536)
    for (int64_t i = 0; i < n; i++) {
        const uint32_t u = (uint32_t)in[i] << 16;
        memcpy(out + i, &u, sizeof u);
    }
}
