/* attn_rows.h — the row and block helpers that the causal attention kernel
 * (attention.c) and the ring-attention block kernel (attention_block.c)
 * share (internal to kernels/cpu): scores of a query block as one GEMM, and
 * the per-row softmax, recomputed probabilities and dS = P o (dP - Drow)
 * over the first n of nk keys (the rest masked to 0). */
#ifndef PS_ATTN_ROWS_H
#define PS_ATTN_ROWS_H

#include <cblas.h>
#include <math.h>

#include "kern_math.h"

/* Query rows per block. */
#ifndef ATTN_BQ
#define ATTN_BQ 64
#endif

static inline int64_t attn_bq(int64_t T) {
    return T < ATTN_BQ ? T : ATTN_BQ;
}

/* S = scale Q[i0:i0+bs] K[0:nk]^T into s (bs x nk, row stride nk). */
static inline void attn_scores(float *s, const float *qh, const float *kh, int64_t i0, int64_t bs,
                               int64_t nk, int64_t D, int64_t qs, int64_t ks, float scale) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)bs, (blasint)nk, (blasint)D,
                scale, qh + i0 * qs, (blasint)qs, kh, (blasint)ks, 0.0f, s, (blasint)nk);
}

/* One score row: row[0..n) = softmax(row[0..n)), row[n..nk) = 0 (the causal
 * mask); returns the row's log-sum-exp. */
static inline float attn_softmax_row(float *row, int64_t n, int64_t nk) {
    float mx, sum;
    kern_softmax_row(row, row, n, &mx, &sum);
    for (int64_t j = n; j < nk; j++)
        row[j] = 0.0f;
    return mx + logf(sum);
}

/* P recomputed: row[0..n) = exp(row - lse), row[n..nk) = 0. */
KERN_SIMD_CLONES static inline void attn_exp_row(float *row, int64_t n, int64_t nk, float lse) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        row[j] = kern_expf(row[j] - lse);
    for (int64_t j = n; j < nk; j++)
        row[j] = 0.0f;
}

/* dS = P o (dP - Drow) in place of dP, Drow = dO . O (this query's row). */
KERN_SIMD_CLONES static inline void attn_ds_row(float *ds, const float *p, int64_t n, int64_t nk,
                                                const float *dO, const float *o, int64_t D) {
    float drow = 0.0f;
#pragma omp simd reduction(+ : drow)
    for (int64_t d = 0; d < D; d++)
        drow += dO[d] * o[d];
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        ds[j] = p[j] * (ds[j] - drow);
    for (int64_t j = n; j < nk; j++)
        ds[j] = 0.0f;
}

#endif
