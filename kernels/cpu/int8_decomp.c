/* int8_decomp.c — LLM.int8()'s mixed-precision decomposition (kern_quant.h).
 *
 * Formula (Dettmers et al. 2022, "LLM.int8()", arXiv 2208.07339, §3.2, eq. 7;
 * docs/quantization.md, "Kernels"): with O = { c : |x[n][c]| >= threshold for
 * some n } the outlier feature columns,
 *   out = sum_{c in O} x[:, c] w[:, c]^T                  (floating point)
 *       + sx sw^T * (xq[:, not O] . wq[:, not O]^T)       (vector-wise int8)
 * where xq is x quantized absmax per row over the columns outside O only, and wq,
 * ws the weight quantized absmax per output row (computed once by the caller).
 * The outlier part uses w's fp32 columns, or wq's dequantized ones (w == NULL: no
 * fp32 copy of the weight kept, as bitsandbytes does once its weights are int8).
 * Why this way: the int8 part is kern_quantize (absmax, per row) of a copy of x
 * whose outlier columns are zeroed — zeros leave the row's absmax alone and give
 * code 0, so those columns drop out of the int32 product — followed by
 * kern_matmul_int8_fwd; the same two calls make plain vector-wise int8, so with
 * no outliers (threshold = INFINITY) the result is the same bits. The outlier
 * part is few columns (a handful per layer in the paper's models): x's outlier
 * columns gathered into a compact [N][K] matrix, w's per block of 16 output
 * columns (so out is written a cache line at a time), dot products in double;
 * OpenMP over the output column blocks.
 * Inputs must be finite (a NaN is never an outlier).
 */
#include <math.h>
#include <string.h>

#include "kern_math.h"
#include "kern_quant.h"

/* The scratch layout: each part 64-byte aligned. */
#define DECOMP_ALIGN(b) (((b) + 63) / 64 * 64)
#define DECOMP_K        64 /* outlier columns of w gathered at a time */
#define DECOMP_O        16 /* output columns per block */

typedef struct {
    float *xf;     /* [N][C] x with the outlier columns zeroed */
    int8_t *xq;    /* [N][C] its codes */
    float *sx;     /* [N] its row scales */
    int32_t *acc;  /* [N][OC] */
    int64_t *cols; /* [C] the outlier columns */
} decomp_scratch;

static int64_t decomp_layout(decomp_scratch *d, void *base, int64_t N, int64_t C, int64_t OC) {
    const int64_t sz[5] = {N * C * 4, N * C, N * 4, N * OC * 4, C * 8};
    int64_t off[5], total = 0;
    for (int i = 0; i < 5; i++) {
        off[i] = total;
        total += DECOMP_ALIGN(sz[i]);
    }
    if (d) {
        char *b = base;
        d->xf = (float *)(void *)(b + off[0]);
        d->xq = (int8_t *)(b + off[1]);
        d->sx = (float *)(void *)(b + off[2]);
        d->acc = (int32_t *)(void *)(b + off[3]);
        d->cols = (int64_t *)(void *)(b + off[4]);
    }
    return total;
}

int64_t kern_int8_decomp_scratch_bytes(int64_t N, int64_t C, int64_t OC) {
    return decomp_layout(NULL, NULL, N, C, OC);
}

int64_t kern_matmul_int8_decomp_fwd(float *out, const float *x, const float *w, const int8_t *wq,
                                    const float *ws, int64_t N, int64_t C, int64_t OC,
                                    float threshold, void *scratch) {
    if (N <= 0 || OC <= 0) return 0;
    if (C <= 0) { /* an empty sum */
        memset(out, 0, (size_t)(N * OC) * sizeof *out);
        return 0;
    }
    decomp_scratch d;
    decomp_layout(&d, scratch, N, C, OC);
    /* the outlier columns: any |x[n][c]| >= threshold */
    int64_t K = 0;
    memset(d.cols, 0, (size_t)C * sizeof *d.cols); /* first as flags, row by row */
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            d.cols[c] |= fabsf(x[n * C + c]) >= threshold;
    for (int64_t c = 0; c < C; c++) /* then compacted in place into the list (K <= c) */
        if (d.cols[c]) d.cols[K++] = c;
    memcpy(d.xf, x, (size_t)(N * C) * sizeof *x);
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            d.xf[n * C + d.cols[k]] = 0.0f;
    const quant_spec vec = {QK_ABSMAX, QG_ROW, 8, 0};
    kern_quantize(d.xq, d.sx, NULL, d.xf, N, C, &vec);
    kern_matmul_int8_fwd(out, d.xq, d.sx, NULL, QG_ROW, wq, ws, NULL, QG_ROW, N, C, OC, d.acc);
    if (K == 0) return 0;
    /* x's outlier columns, compact: xo[N][K] in xf's place (quantized, it is not needed) */
    const int64_t *cols = d.cols;
    float *xo = d.xf;
    for (int64_t n = 0; n < N; n++)
        for (int64_t k = 0; k < K; k++)
            xo[n * K + k] = x[n * C + cols[k]];
    /* out[n][o] += xo[n] . w[o][cols], by blocks of DECOMP_O output columns: their
     * outlier weights gathered DECOMP_K columns at a time, each chunk's dot products
     * summed in double and added once */
    const int64_t oblocks = (OC + DECOMP_O - 1) / DECOMP_O;
#pragma omp parallel for if (N * K * OC >= (1 << 16))
    for (int64_t ob = 0; ob < oblocks; ob++) {
        const int64_t o0 = ob * DECOMP_O, on = OC - o0 < DECOMP_O ? OC - o0 : DECOMP_O;
        float wk[DECOMP_K][DECOMP_O]; /* [k][output]: the inner loop runs over outputs */
        for (int64_t k0 = 0; k0 < K; k0 += DECOMP_K) {
            const int64_t kn = K - k0 < DECOMP_K ? K - k0 : DECOMP_K;
            for (int64_t k = 0; k < kn; k++)
                for (int64_t i = 0; i < DECOMP_O; i++) {
                    const int64_t o = o0 + i, c = cols[k0 + k];
                    wk[k][i] = i >= on ? 0.0f : w ? w[o * C + c] : (float)wq[o * C + c] * ws[o];
                }
            for (int64_t n = 0; n < N; n++) {
                const float *xk = xo + n * K + k0;
                double s[DECOMP_O] = {0};
                for (int64_t k = 0; k < kn; k++) {
                    const double xv = xk[k];
#pragma omp simd
                    for (int64_t i = 0; i < DECOMP_O; i++)
                        s[i] += xv * (double)wk[k][i];
                }
                float *out_n = out + n * OC + o0;
                for (int64_t i = 0; i < on; i++)
                    out_n[i] = (float)((double)out_n[i] + s[i]);
            }
        }
    }
    return K;
}
