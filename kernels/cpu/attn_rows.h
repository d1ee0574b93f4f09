/* attn_rows.h — the row and block helpers that the causal attention kernel
 * (attention.c) and the ring-attention block kernel (attention_block.c)
 * share (internal to kernels/cpu): scores of a query block as one GEMM, and
 * the per-row softmax, recomputed probabilities and dS = P o (dP - Drow)
 * over the first n of nk keys (the rest masked to 0), and the backward of a
 * query block given how many keys each of its rows sees. */
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

/* The backward of query rows [i0, i0 + bs) of one (b, h) against keys
 * [0, nk), row r seeing its first n_row[r] keys: P = exp(S - lse) recomputed
 * into s, then
 *   dV[0:nk] += P^T dO,  dP = dO V^T,  dS = P o (dP - Drow) (in dp),
 *   dQ[i0:i0+bs] += scale dS K[0:nk],  dK[0:nk] += scale dS^T Q[i0:i0+bs];
 * a NULL dqh / dkh / dvh is not computed. s and dp hold bs x nk floats each. */
static inline void attn_bwd_rows(float *dqh, float *dkh, float *dvh, const float *doh,
                                 const float *qh, const float *kh, const float *vh, const float *oh,
                                 const float *lseh, int64_t i0, int64_t bs, int64_t nk,
                                 const int64_t *n_row, int64_t H, int64_t D, int64_t qs, int64_t ks,
                                 float scale, float *s, float *dp) {
    attn_scores(s, qh, kh, i0, bs, nk, D, qs, ks, scale);
    for (int64_t r = 0; r < bs; r++)
        attn_exp_row(s + r * nk, n_row[r], nk, lseh[(i0 + r) * H]);
    if (dvh)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)nk, (blasint)D, (blasint)bs,
                    1.0f, s, (blasint)nk, doh + i0 * qs, (blasint)qs, 1.0f, dvh, (blasint)ks);
    if (!dqh && !dkh) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)bs, (blasint)nk, (blasint)D, 1.0f,
                doh + i0 * qs, (blasint)qs, vh, (blasint)ks, 0.0f, dp, (blasint)nk);
    for (int64_t r = 0; r < bs; r++) {
        const int64_t i = i0 + r;
        attn_ds_row(dp + r * nk, s + r * nk, n_row[r], nk, doh + i * qs, oh + i * qs, D);
    }
    if (dqh)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)bs, (blasint)D, (blasint)nk,
                    scale, dp, (blasint)nk, kh, (blasint)ks, 1.0f, dqh + i0 * qs, (blasint)qs);
    if (dkh)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)nk, (blasint)D, (blasint)bs,
                    scale, dp, (blasint)nk, qh + i0 * qs, (blasint)qs, 1.0f, dkh, (blasint)ks);
}

#endif
