/* kern_infer.h — kernels of the inference engine (runtime/rt_gen.h): the paged
 * KV cache's writes and attention over it (vLLM's PagedAttention, Kwon et al.
 * 2023, on the CPU). The formulas are in docs/runtime.md ("Inference").
 *
 * A KV block holds block_size tokens of every layer (runtime/rt_kv.h):
 *   [layers][K,V][block_size][KVH][D] values in the cache dtype, then for int8
 *   [layers][K,V][block_size][KVH] fp32 absmax scales (value = q * scale).
 * A kern_kv_view is one layer of one sequence: its blocks in order and where
 * that layer's planes sit inside a block.
 */
#ifndef PS_KERN_INFER_H
#define PS_KERN_INFER_H

#include <stdint.h>

typedef enum { KERN_KV_F32, KERN_KV_BF16, KERN_KV_I8 } kern_kv_dtype;
extern const char *const kern_kv_dtype_names[]; /* "f32", "bf16", "int8", NULL */

static inline int64_t kern_kv_elem_bytes(kern_kv_dtype t) {
    return t == KERN_KV_F32 ? 4 : t == KERN_KV_BF16 ? 2 : 1;
}

typedef struct {
    kern_kv_dtype dt;
    int64_t block_size, KVH, D;
    void *const *blocks;    /* the sequence's blocks, token t in blocks[t / block_size] */
    int64_t k_off, v_off;   /* byte offsets of this layer's K and V planes in a block */
    int64_t ks_off, vs_off; /* int8: byte offsets of their scales */
} kern_kv_view;

/* The view of layer l of a cache with L layers (offsets as the block layout above). */
void kern_kv_view_layer(kern_kv_view *v, kern_kv_dtype dt, int64_t L, int64_t l,
                        int64_t block_size, int64_t KVH, int64_t D, void *const *blocks);

/* Store n tokens at positions p0 .. p0 + n - 1: k, v [n][KVH * D] fp32 (bf16 rounds to
 * nearest even; int8 takes absmax / 127 per token and kv head, round half away from 0). */
void kern_kv_write(const kern_kv_view *kv, int64_t p0, int64_t n, const float *k, const float *v);

/* Causal grouped-query attention of nq query rows at positions p0 .. p0 + nq - 1 of one
 * sequence against its cache (keys 0 .. p0 + i for row i, already written), scale
 * 1/sqrt(D), one pass with the online softmax (Milakov & Gimelshein 2018): no score
 * matrix. q, out: [nq][H][D] (H a multiple of KVH). scratch:
 * kern_attn_paged_scratch_floats(D) floats (one D-sized accumulator per OpenMP thread,
 * sized after setting the thread count). */
int64_t kern_attn_paged_scratch_floats(int64_t D);
void kern_attn_paged_fwd(float *out, const float *q, const kern_kv_view *kv, int64_t p0,
                         int64_t nq, int64_t H, float *scratch);

#endif
