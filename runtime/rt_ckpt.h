/* rt_ckpt.h — model checkpoints: the trained weights of the Llama-style decoder
 * in the one-rank model's flat layout, written by `parasim run --save-weights`
 * and read by the inference engine (`parasim generate`, runtime/rt_gen.h).
 * Issue 14 extends the file with optimizer states, data position and RNG.
 *
 * File (docs/runtime.md "Checkpoints"; little-endian):
 *   "PSCKPT1\n" (8 bytes); a one-line JSON header ending in '\n' (at most
 *   64 KiB) naming the format, the model's shape (the fields of rt_ckpt_model)
 *   and `elems`; then `elems` fp32 values, the flat space of
 *   rt_model_init_values: wte [V][h]; per layer attn_norm [h], wq [H D][h],
 *   wk [KVH D][h], wv [KVH D][h], wo [h][H D], mlp_norm [h], w1 [f][h],
 *   w3 [f][h], w2 [h][f]; final_norm [h]; lm_head [V][h]. Dense models only.
 * Written atomically (temporary file, then rename: sim/base/atomic_file.h).
 */
#ifndef PS_RT_CKPT_H
#define PS_RT_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct {
    char model[128]; /* the model spec's name (informative) */
    int64_t layers, hidden, heads, kv_heads, head_dim, ffn_hidden, vocab, seq_len;
    double norm_eps, rope_theta;
    int64_t steps; /* training steps behind these weights */
} rt_ckpt_model;

typedef struct {
    rt_ckpt_model m;
    int64_t elems;
    float *data; /* [elems], malloc'd (host memory; the engine copies what a rank holds) */
} rt_ckpt;

/* Offsets (in elements) of the one-rank flat layout above. */
typedef struct {
    int64_t wte, layer0, layer_elems; /* layer i starts at layer0 + i * layer_elems */
    int64_t attn_norm, wq, wk, wv, wo, mlp_norm, w1, w3, w2; /* inside a layer */
    int64_t final_norm, lm_head, elems;
} rt_ckpt_layout;
void rt_ckpt_layout_of(const rt_ckpt_model *m, rt_ckpt_layout *l);
/* Flat element k's name for messages: "wte[r][c]", "layer 3 wq[r][c]", "final_norm[i]". */
void rt_ckpt_element_name(const rt_ckpt_model *m, int64_t k, char *buf, size_t len);

/* 0, or -1 with err naming the path and what failed. */
int rt_ckpt_write(const char *path, const rt_ckpt *ck, ps_err *err);
/* Reads and checks a checkpoint: magic, header fields present and within the model
 * limits, elems equal to the layout's, the file exactly that long, every value
 * finite. 0, or -1 with err naming the path, the field, expected and found. */
int rt_ckpt_read(const char *path, rt_ckpt *ck, ps_err *err);
void rt_ckpt_free(rt_ckpt *ck);

#endif
