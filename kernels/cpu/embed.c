/* embed.c — token embedding lookup, out[n] = wte[tokens[n]].
 *
 * Why this way: the forward is a row copy per token, parallel over tokens.
 * The backward is a scatter-add, dwte[tokens[n]] += dout[n]; a token that
 * occurs twice would race if threads split the tokens, so threads split the
 * channels instead (each owns a column range of dwte and walks all tokens in
 * order), which is race-free and deterministic without atomics or scratch.
 * Formula: torch.nn.Embedding (the gradient of a gather is a scatter-add).
 */
#include <string.h>

#include "kern.h"

/* Channels per thread's share in the backward: one 64-byte cache line. */
#define EMBED_CHUNK 16

void kern_embed_fwd(float *out, const int32_t *tokens, const float *wte, int64_t N, int64_t C) {
#pragma omp parallel for if (N * C >= 32768)
    for (int64_t n = 0; n < N; n++)
        memcpy(out + n * C, wte + (int64_t)tokens[n] * C, (size_t)C * sizeof *out);
}

void kern_embed_bwd(float *dwte, const float *dout, const int32_t *tokens, int64_t N, int64_t C) {
    if (!dwte) return;
    const int64_t chunks = (C + EMBED_CHUNK - 1) / EMBED_CHUNK;
#pragma omp parallel for if (N * C >= 32768)
    for (int64_t ch = 0; ch < chunks; ch++) {
        const int64_t c0 = ch * EMBED_CHUNK;
        const int64_t c1 = c0 + EMBED_CHUNK < C ? c0 + EMBED_CHUNK : C;
        for (int64_t n = 0; n < N; n++) {
            float *dst = dwte + (int64_t)tokens[n] * C;
            const float *src = dout + n * C;
            for (int64_t c = c0; c < c1; c++)
                dst[c] += src[c];
        }
    }
}
