/* attention_block.c — one block of ring attention (context parallelism: Liu et
 * al. 2023, "Ring Attention with Blockwise Transformers"; the causal,
 * load-balanced zig-zag layout of Megatron-LM / TransformerEngine's
 * AttnFuncWithCPAndKVP2P): the Tq queries a rank holds against one rank's Tk
 * keys and values, the causal mask decided by the tokens' global positions:
 * query i sees key j iff kpos[j] <= qpos[i]. qpos and kpos ascend, so the
 * keys a query sees are a prefix of the block, as in attention.c.
 *
 * Forward (the online-softmax merge, Milakov & Gimelshein 2018; FlashAttention,
 * Dao et al. 2022): the block's own softmax gives O_b and lse_b per row, merged
 * into the running (out, lse) by
 *   lse' = log(exp(lse) + exp(lse_b)),
 *   out' = exp(lse - lse') out + exp(lse_b - lse') O_b,
 * the running state starting at out = 0, lse = -inf (a row that sees no key of
 * the block keeps its state). After every block of the ring, (out, lse) are
 * those of the whole causal attention.
 * Backward: with the final out and lse saved, the block's probabilities are
 * P = exp(S - lse) exactly, so each block adds its share independently:
 *   dV += P^T dO,  dS = P o (dO V^T - Drow),  dQ += scale dS K,  dK += scale dS^T Q,
 * Drow = dO . out — attention.c's backward with the block's mask.
 * Why this way: the same GEMM-per-query-block structure and row helpers as
 * attention.c (attn_rows.h), so a block costs what the causal kernel costs
 * for the same scores; whole blocks that no query sees are skipped.
 */
#include <cblas.h>
#include <math.h>

#include "attn_rows.h"
#include "kern.h"
#include "kern_elem.h"
#include "kern_math.h"

/* Per thread: scores and their gradient (bq x Tk each), and the block's
 * output rows (bq x D). */
int64_t kern_attn_block_scratch_floats(int64_t Tq, int64_t Tk, int64_t D) {
    return (int64_t)kern_max_threads() * (2 * attn_bq(Tq) * Tk + attn_bq(Tq) * D);
}

/* Keys of the block that query row i (position qi) sees: the first n. */
static int64_t visible(const int64_t *kpos, int64_t Tk, int64_t qi, int64_t from) {
    int64_t n = from;
    while (n < Tk && kpos[n] <= qi)
        n++;
    return n;
}

/* Rows [i0, i0 + bs) of one (b, h) against kv head g, merged into oh / lseh. */
static void block_fwd_rows(float *oh, float *lseh, const float *qh, const float *kh,
                           const float *vh, const int64_t *qpos, const int64_t *kpos, int64_t i0,
                           int64_t bs, int64_t Tk, int64_t H, int64_t D, int64_t qs, int64_t ks,
                           float *s, float *ob) {
    const int64_t nk = visible(kpos, Tk, qpos[i0 + bs - 1], 0);
    if (nk == 0) return; /* no query of these rows sees this block */
    attn_scores(s, qh, kh, i0, bs, nk, D, qs, ks, 1.0f / sqrtf((float)D));
    float lb[ATTN_BQ];
    for (int64_t r = 0, n = 0; r < bs; r++) {
        n = visible(kpos, nk, qpos[i0 + r], n);
        lb[r] = n ? attn_softmax_row(s + r * nk, n, nk) : -INFINITY;
        if (!n)
            for (int64_t j = 0; j < nk; j++)
                s[r * nk + j] = 0.0f;
    }
    /* O_b = P V[0:nk] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)bs, (blasint)D, (blasint)nk,
                1.0f, s, (blasint)nk, vh, (blasint)ks, 0.0f, ob, (blasint)D);
    for (int64_t r = 0; r < bs; r++) {
        float *o = oh + (i0 + r) * qs, *l = lseh + (i0 + r) * H;
        const float *b = ob + r * D;
        if (lb[r] == -INFINITY) continue;
        if (*l == -INFINITY) {
            for (int64_t d = 0; d < D; d++)
                o[d] = b[d];
            *l = lb[r];
            continue;
        }
        float ca, cb;
        const float lse = kern_lse_merge(*l, lb[r], &ca, &cb);
        for (int64_t d = 0; d < D; d++)
            o[d] = ca * o[d] + cb * b[d];
        *l = lse;
    }
}

void kern_attn_block_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                         const int64_t *qpos, const int64_t *kpos, int64_t B, int64_t Tq,
                         int64_t Tk, int64_t H, int64_t KVH, int64_t D, float *scratch) {
    if (B <= 0 || Tq <= 0 || Tk <= 0 || H <= 0 || D <= 0) return;
    const int64_t qs = H * D, ks = KVH * D, group = H / KVH;
    const int64_t bq = attn_bq(Tq), nblk = (Tq + bq - 1) / bq, units = B * H * nblk;
    const int64_t per_thread = 2 * bq * Tk + bq * D;
    kern_blas_single_thread();
#pragma omp parallel for schedule(dynamic, 1) if (units > 1)
    for (int64_t u = 0; u < units; u++) {
        const int64_t blk = nblk - 1 - u % nblk, bh = u / nblk, b = bh / H, h = bh % H;
        const int64_t g = h / group, i0 = blk * bq, bs = i0 + bq < Tq ? bq : Tq - i0;
        float *s = scratch + kern_thread_num() * per_thread;
        block_fwd_rows(out + b * Tq * qs + h * D, lse + b * Tq * H + h, q + b * Tq * qs + h * D,
                       k + b * Tk * ks + g * D, v + b * Tk * ks + g * D, qpos, kpos, i0, bs, Tk, H,
                       D, qs, ks, s, s + 2 * bq * Tk);
    }
}

/* One (b, h): adds its share into dq (its own rows), dk and dv (the group's). */
static void block_bwd_head(float *dqh, float *dkh, float *dvh, const float *doh, const float *qh,
                           const float *kh, const float *vh, const float *oh, const float *lseh,
                           const int64_t *qpos, const int64_t *kpos, int64_t Tq, int64_t Tk,
                           int64_t H, int64_t D, int64_t qs, int64_t ks, float *s, float *dp) {
    const float scale = 1.0f / sqrtf((float)D);
    const int64_t bq = attn_bq(Tq);
    for (int64_t i0 = 0; i0 < Tq; i0 += bq) {
        const int64_t bs = i0 + bq < Tq ? bq : Tq - i0;
        const int64_t nk = visible(kpos, Tk, qpos[i0 + bs - 1], 0);
        if (nk == 0) continue;
        int64_t n_row[ATTN_BQ];
        for (int64_t r = 0, n = 0; r < bs; r++)
            n_row[r] = n = visible(kpos, nk, qpos[i0 + r], n);
        attn_bwd_rows(dqh, dkh, dvh, doh, qh, kh, vh, oh, lseh, i0, bs, nk, n_row, H, D, qs, ks,
                      scale, s, dp);
    }
}

void kern_attn_block_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                         const float *k, const float *v, const float *out, const float *lse,
                         const int64_t *qpos, const int64_t *kpos, int64_t B, int64_t Tq,
                         int64_t Tk, int64_t H, int64_t KVH, int64_t D, float *scratch) {
    if (B <= 0 || Tq <= 0 || Tk <= 0 || H <= 0 || D <= 0 || (!dq && !dk && !dv)) return;
    const int64_t qs = H * D, ks = KVH * D, group = H / KVH, units = B * KVH;
    const int64_t bqT = attn_bq(Tq) * Tk, per_thread = 2 * bqT + attn_bq(Tq) * D;
    kern_blas_single_thread();
#pragma omp parallel for schedule(dynamic, 1) if (units > 1)
    for (int64_t u = 0; u < units; u++) {
        const int64_t b = u / KVH, g = u % KVH;
        float *s = scratch + kern_thread_num() * per_thread;
        for (int64_t h = g * group; h < (g + 1) * group; h++) {
            const int64_t qo = b * Tq * qs + h * D, ko = b * Tk * ks + g * D;
            block_bwd_head(dq ? dq + qo : NULL, dk ? dk + ko : NULL, dv ? dv + ko : NULL, dout + qo,
                           q + qo, k + ko, v + ko, out + qo, lse + b * Tq * H + h, qpos, kpos, Tq,
                           Tk, H, D, qs, ks, s, s + bqT);
        }
    }
}
