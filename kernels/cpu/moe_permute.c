/* moe_permute.c — dispatch of tokens to fixed-size per-expert slots and the
 * weighted combine back (GShard, Lepikhin et al. 2020 §2.2, expert capacity;
 * Megatron-LM's --moe-pad-expert-input-to-capacity, moe_utils.py permute /
 * unpermute).
 * Slots: expert e owns rows [e*Cap, (e+1)*Cap) of the dispatch buffer
 * [E*Cap][H]. Choices (n, j) take the next free row of expert idx[n][j] in
 * token order (n, then j); a choice past the expert's capacity is dropped
 * (slot -1: it contributes 0 to the combine). Rows no choice took stay 0, so
 * the buffer is dense and its size does not depend on the routing: the
 * all-to-all that moves it has a fixed, predictable size.
 *   permute:   buf[slot[n][j]] = x[n]               (dx[n] += sum_j dbuf[slot[n][j]])
 *   unpermute: out[n] = sum_j gate[n][j] buf[slot[n][j]]
 *              (dbuf[slot] += gate dout[n];  dgate[n][j] += dout[n] . buf[slot[n][j]])
 * Why this way: a slot belongs to one choice, so threads split tokens with
 * no two writing the same row; slot assignment is a sequential scan (its
 * order decides who is dropped, and it must be the same on every rank). */
#include <string.h>

#include "kern.h"

void kern_moe_slots(int32_t *slot, int64_t *count, const int32_t *idx, int64_t N, int64_t K,
                    int64_t E, int64_t cap) {
    for (int64_t e = 0; e < E; e++)
        count[e] = 0;
    for (int64_t i = 0; i < N * K; i++) {
        const int64_t e = idx[i];
        slot[i] = count[e] < cap ? (int32_t)(e * cap + count[e]) : -1;
        count[e]++;
    }
}

void kern_moe_permute_fwd(float *buf, const float *x, const int32_t *slot, int64_t N, int64_t K,
                          int64_t H, int64_t rows) {
    memset(buf, 0, (size_t)(rows * H) * sizeof *buf);
#pragma omp parallel for if (N * K * H >= 32768)
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < K; j++)
            if (slot[n * K + j] >= 0)
                memcpy(buf + (int64_t)slot[n * K + j] * H, x + n * H, (size_t)H * sizeof *buf);
}

void kern_moe_permute_bwd(float *dx, const float *dbuf, const int32_t *slot, int64_t N, int64_t K,
                          int64_t H) {
    if (!dx) return;
#pragma omp parallel for if (N * K * H >= 32768)
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < K; j++) {
            if (slot[n * K + j] < 0) continue;
            const float *s = dbuf + (int64_t)slot[n * K + j] * H;
            float *d = dx + n * H;
            for (int64_t c = 0; c < H; c++)
                d[c] += s[c];
        }
}

void kern_moe_unpermute_fwd(float *out, const float *buf, const float *gate, const int32_t *slot,
                            int64_t N, int64_t K, int64_t H) {
#pragma omp parallel for if (N * K * H >= 32768)
    for (int64_t n = 0; n < N; n++) {
        float *o = out + n * H;
        memset(o, 0, (size_t)H * sizeof *o);
        for (int64_t j = 0; j < K; j++) {
            if (slot[n * K + j] < 0) continue;
            const float *s = buf + (int64_t)slot[n * K + j] * H, w = gate[n * K + j];
            for (int64_t c = 0; c < H; c++)
                o[c] += w * s[c];
        }
    }
}

void kern_moe_unpermute_bwd(float *dbuf, float *dgate, const float *dout, const float *buf,
                            const float *gate, const int32_t *slot, int64_t N, int64_t K,
                            int64_t H) {
#pragma omp parallel for if (N * K * H >= 32768)
    for (int64_t n = 0; n < N; n++) {
        const float *g = dout + n * H;
        for (int64_t j = 0; j < K; j++) {
            const int32_t s = slot[n * K + j];
            if (s < 0) continue;
            if (dbuf) {
                float *d = dbuf + (int64_t)s * H;
                const float w = gate[n * K + j];
                for (int64_t c = 0; c < H; c++)
                    d[c] += w * g[c];
            }
            if (dgate) {
                const float *b = buf + (int64_t)s * H;
                float dot = 0.0f;
                for (int64_t c = 0; c < H; c++)
                    dot += g[c] * b[c];
                dgate[n * K + j] += dot;
            }
        }
    }
}
