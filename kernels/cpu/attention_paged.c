/* attention_paged.c — attention over a paged KV cache (vLLM's PagedAttention,
 * Kwon et al. 2023) and the cache's writes, CPU versions (kern_infer.h).
 *
 * Per query row i (position p = p0 + i) and head h (kv head g = h / (H / KVH)):
 *   m = -inf, l = 0, acc = 0; for each key j <= p:
 *     s = scale q.k_j; m' = max(m, s); acc = acc e^(m - m') + e^(s - m') v_j;
 *     l = l e^(m - m') + e^(s - m'); m = m'
 *   out = acc / l
 * (the online softmax, Milakov & Gimelshein 2018, as FlashAttention's forward),
 * so nothing of size p is stored: one D-float accumulator per thread. Keys and
 * values are read block by block through the sequence's block table and
 * converted to fp32 element by element (bf16: exact; int8: q * scale).
 * Threads split the (row, head) pairs, which are independent.
 */
#include <math.h>
#include <string.h>

#include "kern.h"
#include "kern_infer.h"
#include "kern_math.h"

const char *const kern_kv_dtype_names[] = {"f32", "bf16", "int8", NULL};

void kern_kv_view_layer(kern_kv_view *v, kern_kv_dtype dt, int64_t L, int64_t l,
                        int64_t block_size, int64_t KVH, int64_t D, void *const *blocks) {
    const int64_t plane = block_size * KVH * D * kern_kv_elem_bytes(dt);
    const int64_t splane = block_size * KVH * (int64_t)sizeof(float);
    v->dt = dt, v->block_size = block_size, v->KVH = KVH, v->D = D, v->blocks = blocks;
    v->k_off = (2 * l) * plane, v->v_off = (2 * l + 1) * plane;
    v->ks_off = dt == KERN_KV_I8 ? 2 * L * plane + (2 * l) * splane : 0;
    v->vs_off = dt == KERN_KV_I8 ? 2 * L * plane + (2 * l + 1) * splane : 0;
}

static inline float bf16_to_f32(uint16_t b) {
    const uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* One row (token slot t of a block, kv head g) of a plane: store D values. */
static void store_row(const kern_kv_view *kv, char *blk, int64_t off, int64_t soff, int64_t t,
                      int64_t g, const float *x) {
    const int64_t D = kv->D, idx = (t * kv->KVH + g) * D;
    if (kv->dt == KERN_KV_F32) {
        memcpy((float *)(blk + off) + idx, x, (size_t)D * sizeof(float));
    } else if (kv->dt == KERN_KV_BF16) {
        kern_f32_to_bf16((uint16_t *)(blk + off) + idx, x, D);
    } else {
        float amax = 0.0f;
        for (int64_t d = 0; d < D; d++)
            amax = fmaxf(amax, fabsf(x[d]));
        const float s = amax / 127.0f;
        int8_t *q = (int8_t *)(blk + off) + idx;
        for (int64_t d = 0; d < D; d++)
            q[d] = s > 0.0f ? (int8_t)lroundf(x[d] / s) : 0;
        ((float *)(blk + soff))[t * kv->KVH + g] = s;
    }
}

void kern_kv_write(const kern_kv_view *kv, int64_t p0, int64_t n, const float *k, const float *v) {
    const int64_t w = kv->KVH * kv->D;
    for (int64_t i = 0; i < n; i++) {
        const int64_t p = p0 + i, t = p % kv->block_size;
        char *blk = kv->blocks[p / kv->block_size];
        for (int64_t g = 0; g < kv->KVH; g++) {
            store_row(kv, blk, kv->k_off, kv->ks_off, t, g, k + i * w + g * kv->D);
            store_row(kv, blk, kv->v_off, kv->vs_off, t, g, v + i * w + g * kv->D);
        }
    }
}

int64_t kern_attn_paged_scratch_floats(int64_t D) { return (int64_t)kern_max_threads() * D; }

/* q . (row t, kv head g of a plane) */
static float dot_row(const kern_kv_view *kv, const char *blk, int64_t off, int64_t soff,
                     int64_t t, int64_t g, const float *q) {
    const int64_t D = kv->D, idx = (t * kv->KVH + g) * D;
    float s = 0.0f;
    if (kv->dt == KERN_KV_F32) {
        const float *x = (const float *)(blk + off) + idx;
        for (int64_t d = 0; d < D; d++)
            s += q[d] * x[d];
    } else if (kv->dt == KERN_KV_BF16) {
        const uint16_t *x = (const uint16_t *)(blk + off) + idx;
        for (int64_t d = 0; d < D; d++)
            s += q[d] * bf16_to_f32(x[d]);
    } else {
        const int8_t *x = (const int8_t *)(blk + off) + idx;
        for (int64_t d = 0; d < D; d++)
            s += q[d] * (float)x[d];
        s *= ((const float *)(blk + soff))[t * kv->KVH + g];
    }
    return s;
}

/* acc = acc * c + w * (row t, kv head g of a plane) */
static void axpy_row(const kern_kv_view *kv, const char *blk, int64_t off, int64_t soff,
                     int64_t t, int64_t g, float c, float w, float *acc) {
    const int64_t D = kv->D, idx = (t * kv->KVH + g) * D;
    if (kv->dt == KERN_KV_F32) {
        const float *x = (const float *)(blk + off) + idx;
        for (int64_t d = 0; d < D; d++)
            acc[d] = acc[d] * c + w * x[d];
    } else if (kv->dt == KERN_KV_BF16) {
        const uint16_t *x = (const uint16_t *)(blk + off) + idx;
        for (int64_t d = 0; d < D; d++)
            acc[d] = acc[d] * c + w * bf16_to_f32(x[d]);
    } else {
        const int8_t *x = (const int8_t *)(blk + off) + idx;
        const float ws = w * ((const float *)(blk + soff))[t * kv->KVH + g];
        for (int64_t d = 0; d < D; d++)
            acc[d] = acc[d] * c + ws * (float)x[d];
    }
}

void kern_attn_paged_fwd(float *out, const float *q, const kern_kv_view *kv, int64_t p0,
                         int64_t nq, int64_t H, float *scratch) {
    if (nq <= 0 || H <= 0 || kv->D <= 0) return;
    const int64_t D = kv->D, group = H / kv->KVH, units = nq * H, bs = kv->block_size;
    const float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for schedule(dynamic, 1) if (units > 1 && p0 + nq > 64)
    for (int64_t u = 0; u < units; u++) {
        const int64_t i = u / H, h = u % H, g = h / group, p = p0 + i;
        const float *qh = q + (i * H + h) * D;
        float *acc = scratch + kern_thread_num() * D;
        float m = -INFINITY, l = 0.0f;
        memset(acc, 0, (size_t)D * sizeof *acc);
        for (int64_t j = 0; j <= p; j++) {
            const char *blk = kv->blocks[j / bs];
            const int64_t t = j % bs;
            const float s = scale * dot_row(kv, blk, kv->k_off, kv->ks_off, t, g, qh);
            const float mn = s > m ? s : m;
            const float c = expf(m - mn), w = expf(s - mn);
            l = l * c + w;
            axpy_row(kv, blk, kv->v_off, kv->vs_off, t, g, c, w, acc);
            m = mn;
        }
        float *oh = out + (i * H + h) * D;
        for (int64_t d = 0; d < D; d++)
            oh[d] = acc[d] / l;
    }
}
