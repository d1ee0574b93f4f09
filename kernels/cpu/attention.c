/* attention.c — causal grouped-query attention that saves only the output and
 * the log-sum-exp of each score row (the memory-efficient form of Rabe &
 * Staats 2021 and FlashAttention, Dao et al. 2022, Algorithms 1-2; GQA:
 * Ainslie et al. 2023). Per batch b and query head h, with kv head
 * g = h / (H / KVH) and scale = 1/sqrt(D) (Vaswani et al. 2017, eq. 1):
 *   S = scale Q K^T,  S[i][j] = -inf for j > i,
 *   lse[i] = log sum_j exp S[i][j],  P = exp(S - lse),  O = P V.
 * Backward (P is recomputed from Q, K and lse, so nothing T x T is saved):
 *   dV += P^T dO,  dP = dO V^T,  Drow[i] = sum_d dO[i][d] O[i][d],
 *   dS = P o (dP - Drow),  dQ += scale dS K,  dK += scale dS^T Q.
 * Why this way: the four products per head are GEMMs (cblas_sgemm), which
 * read the strided heads in place (row stride H*D for q/out, KVH*D for k/v:
 * sgemm's leading dimension). Queries are taken in blocks of ATTN_BQ rows;
 * a block only needs the keys up to its last row, so the masked upper
 * triangle is (mostly) not computed, and the scores of a block fit in
 * ATTN_BQ x T floats of scratch. The softmax rows are vectorised loops
 * (kern_expf). Threads (OpenMP; single-threaded sgemm inside, see matmul.c)
 * split the forward over (b, h, query block), which are independent, and
 * the backward over (b, g), since the query heads of a group and all query
 * blocks add into the same dK, dV rows.
 */
#include <cblas.h>
#include <math.h>

#include "attn_rows.h"
#include "kern.h"
#include "kern_math.h"

/* Per thread: the scores/probabilities of one query block and their
 * gradient (ATTN_BQ x T each). One copy per OpenMP thread: the thread count
 * must not grow between sizing the scratch and calling the kernels. */
int64_t kern_attn_scratch_floats(int64_t T) {
    return (int64_t)kern_max_threads() * 2 * attn_bq(T) * T;
}

/* Rows [i0, i0 + bs) of one (b, h): their out rows and lse, against kv head g. */
static void attn_fwd_block(float *oh, float *lseh, const float *qh, const float *kh,
                           const float *vh, int64_t i0, int64_t bs, int64_t H, int64_t D,
                           int64_t qs, int64_t ks, float *s) {
    const int64_t nk = i0 + bs; /* the keys these rows see */
    attn_scores(s, qh, kh, i0, bs, nk, D, qs, ks, 1.0f / sqrtf((float)D));
    for (int64_t r = 0; r < bs; r++)
        lseh[(i0 + r) * H] = attn_softmax_row(s + r * nk, i0 + r + 1, nk);
    /* O[i0:i0+bs] = P V[0:nk] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)bs, (blasint)D, (blasint)nk,
                1.0f, s, (blasint)nk, vh, (blasint)ks, 0.0f, oh + i0 * qs, (blasint)qs);
}

/* The forward's units of work are (b, h, query block), independent of each
 * other; the last blocks (the most keys) are handed out first. */
void kern_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                   int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D, float *scratch) {
    if (B <= 0 || T <= 0 || H <= 0 || D <= 0) return;
    const int64_t qs = H * D, ks = KVH * D, group = H / KVH;
    const int64_t bq = attn_bq(T), nblk = (T + bq - 1) / bq, units = B * H * nblk;
    const int64_t per_thread = 2 * bq * T;
    kern_blas_single_thread();
#pragma omp parallel for schedule(dynamic, 1) if (units > 1)
    for (int64_t u = 0; u < units; u++) {
        const int64_t blk = nblk - 1 - u % nblk, bh = u / nblk, b = bh / H, h = bh % H;
        const int64_t g = h / group, i0 = blk * bq, bs = i0 + bq < T ? bq : T - i0;
        attn_fwd_block(out + b * T * qs + h * D, lse + b * T * H + h, q + b * T * qs + h * D,
                       k + b * T * ks + g * D, v + b * T * ks + g * D, i0, bs, H, D, qs, ks,
                       scratch + kern_thread_num() * per_thread);
    }
}

/* One (b, h): adds its share into dq (its own rows), dk and dv (the group's). */
static void attn_bwd_head(float *dqh, float *dkh, float *dvh, const float *doh, const float *qh,
                          const float *kh, const float *vh, const float *oh, const float *lseh,
                          int64_t T, int64_t H, int64_t D, int64_t qs, int64_t ks, float *s,
                          float *dp) {
    const float scale = 1.0f / sqrtf((float)D);
    const int64_t bq = attn_bq(T);
    for (int64_t i0 = 0; i0 < T; i0 += bq) {
        const int64_t bs = i0 + bq < T ? bq : T - i0, nk = i0 + bs;
        int64_t n_row[ATTN_BQ];
        for (int64_t r = 0; r < bs; r++)
            n_row[r] = i0 + r + 1; /* causal: row i sees keys 0..i */
        attn_bwd_rows(dqh, dkh, dvh, doh, qh, kh, vh, oh, lseh, i0, bs, nk, n_row, H, D, qs, ks,
                      scale, s, dp);
    }
}

void kern_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                   const float *k, const float *v, const float *out, const float *lse, int64_t B,
                   int64_t T, int64_t H, int64_t KVH, int64_t D, float *scratch) {
    if (B <= 0 || T <= 0 || H <= 0 || D <= 0 || (!dq && !dk && !dv)) return;
    const int64_t qs = H * D, ks = KVH * D, group = H / KVH, units = B * KVH;
    const int64_t bqT = attn_bq(T) * T, per_thread = 2 * bqT;
    kern_blas_single_thread();
#pragma omp parallel for schedule(dynamic, 1) if (units > 1)
    for (int64_t u = 0; u < units; u++) {
        const int64_t b = u / KVH, g = u % KVH;
        float *s = scratch + kern_thread_num() * per_thread;
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
            const int64_t qo = b * T * qs + h * D, ko = b * T * ks + g * D;
            attn_bwd_head(dq ? dq + qo : NULL, dk ? dk + ko : NULL, dv ? dv + ko : NULL, dout + qo,
                          q + qo, k + ko, v + ko, out + qo, lse + b * T * H + h, T, H, D, qs, ks, s,
                          s + bqT);
        }
    }
}
