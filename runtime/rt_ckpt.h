/* rt_ckpt.h — model checkpoints: the trained weights of the Llama-style decoder
 * in the one-rank model's flat layout, written by `parasim run --save-weights`
 * and read by the inference engine (`parasim generate`, runtime/rt_gen.h);
 * and the training state of `parasim run --save` / `--resume`: the same
 * weights, then AdamW's m and v in the same layout, with the settings a
 * resumed run must share in the header (version 2).
 *
 * File (docs/runtime.md "Checkpoints"; little-endian):
 *   "PSCKPT1\n" (8 bytes); a one-line JSON header ending in '\n' (at most
 *   64 KiB) naming the format, the model's shape (the fields of rt_ckpt_model)
 *   and `elems`; then `elems` fp32 values, the flat space of
 *   rt_model_init_values: wte [V][h]; per layer attn_norm [h], wq [H D][h],
 *   wk [KVH D][h], wv [KVH D][h], wo [h][H D], mlp_norm [h], w1 [f][h],
 *   w3 [f][h], w2 [h][f]; final_norm [h]; lm_head [V][h]. Dense models only.
 *   Version 1: the weights only. Version 2 (training state): the header adds
 *   the fields of rt_ckpt_train, and the data holds 3 * `elems` values: the
 *   fp32 weights, then AdamW's m, then v.
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

/* What a resumed run must share with the run that saved (version 2). */
typedef struct {
    int64_t seed, global_batch; /* the data position is steps * global_batch sequences */
    char optimizer[16];         /* "adamw" */
    double lr, beta1, beta2, eps, weight_decay;
    char precision[64]; /* "params=bf16 grads=bf16 master=fp32 optimizer=fp32" */
} rt_ckpt_train;

typedef struct {
    rt_ckpt_model m;
    int64_t elems;
    float *data; /* [elems], malloc'd (host memory; the engine copies what a rank holds);
                  * with train state, [3 * elems]: the weights, then adam_m, adam_v */
    int has_train; /* version 2: train, adam_m and adam_v are set */
    rt_ckpt_train train;
    float *adam_m, *adam_v; /* data + elems, data + 2 * elems (not separately allocated) */
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

/* 0, or -1 with err naming the path and what failed. Writes version 2 (the
 * training state) when has_train is set, else version 1 (the weights). */
int rt_ckpt_write(const char *path, const rt_ckpt *ck, ps_err *err);
/* Reads and checks a checkpoint: magic, header fields present and within the model
 * limits, elems equal to the layout's, the file exactly that long (3 arrays in
 * version 2), every value finite, the training fields (version 2 only) within
 * the plan loader's bounds. Nothing is kept from a refused file. 0, or -1 with err naming the path, the field, expected and found. */
int rt_ckpt_read(const char *path, rt_ckpt *ck, ps_err *err);
void rt_ckpt_free(rt_ckpt *ck);

#endif
