/* workspace.h — the op working set: memory a training op holds only while it
 * runs (docs/memory.md §6): activation gradients, the head's logits and
 * their gradient, fp32 copies of bf16 weights, gradients and saved tensors,
 * attention scratch, and the hidden state (forward) or its gradient
 * (backward) handed from one unit's op to the next.
 *
 * One number per op kind: the most workspace live at once inside the op,
 * derived allocation by allocation from the runtime's ops (runtime/rt_model.c
 * and rt_exec.c), so that the replay (on the execution plan's ops) and the
 * closed form (eval.c) decide "does not fit" on the peak the runtime
 * measures. Every width is the one a rank holds: q, kv, ffn, heads and
 * vocabulary rows divided by tp, tokens b*s/cp, a unit's parameters as
 * params.c counts them per tp rank; the first pipeline stage runs the
 * embedding's ops, the last the head's.
 */
#ifndef PS_WORKSPACE_H
#define PS_WORKSPACE_H

#include <stdbool.h>
#include <stdint.h>

#include "spec/model.h"
#include "spec/plan.h"

/* Query rows of one flash-attention block: the scores of a block and their
 * gradient (2 x rows x keys fp32) are the attention scratch of one compute
 * thread (the CPU kernel's ATTN_BQ, kernels/cpu/attention.c). */
#define WS_ATTN_BLOCK_ROWS 64

typedef struct {
    int64_t embed_fwd, embed_bwd;
    int64_t layer_fwd;    /* saving its tensors, or (full recompute) keeping them as workspace */
    int64_t layer_bwd;    /* after rebuilding its tensors first under full recompute */
    int64_t head_fwd, head_bwd;
    int64_t layer_bwd_w;  /* zero-bubble's weight part W of a layer's backward (without
                             the stash, which its input part B left live) */
    int64_t zb_stash;     /* zero-bubble: the GEMMs' output gradients a layer's B keeps
                             for its W (workspace from B's start to W's end) */
    /* DualPipe's queued W (dualpipe.py WeightGradStore; docs/memory.md §4): what
     * one layer's W closures keep from its B to its W, the linears' inputs (in
     * the activation dtype) and their output gradients (c bytes), split into
     * the attention block (multi-head latent attention's five projections by
     * their widths on an MLA model) and the dense MLP; a MoE layer's MLP part
     * is moe_zb_queued_bytes'. Without MLA zb_attn_grads + zb_mlp_grads is
     * zb_stash. */
    int64_t zb_attn_inputs, zb_attn_grads, zb_mlp_inputs, zb_mlp_grads;
    int64_t grad_elem;    /* c: bytes of one activation-gradient element */
    int64_t stream_fwd;   /* the hidden state between two forward ops (activation dtype) */
    int64_t stream_bwd;   /* its gradient between two backward ops (fp32) */
    int64_t attn_scratch; /* flash: one thread's block of scores and their gradient;
                             standard attention: the scores' and probabilities'
                             gradients (an estimate: the runtime builds flash only) */
} ws_bytes;

/* The peak workspace of each compute op of one micro-batch on one rank.
 * kernels_fp32 (cluster_cfg.kernels_fp32, gpu.kernel_dtype: fp32): kernels
 * compute in fp32, so every 16-bit weight, gradient and saved activation an
 * op reads is widened to an fp32 copy, activation gradients are fp32, and
 * tensor-parallel collectives stage 16-bit copies (parasim's CPU runtime);
 * otherwise kernels read the storage dtype and activation gradients are in
 * the activation dtype (cuBLAS, Megatron-LM). */
void ws_compute(const model_cfg *m, const plan_cfg *p, bool kernels_fp32, ws_bytes *out);

/* The largest of them on a pipeline stage: the embedding's ops on the first,
 * the layers' when it holds any, the head's on the last. */
int64_t ws_stage_compute(const ws_bytes *w, bool first, int64_t layers, bool last);

/* The same over every op but a layer's backward: the ops that never run
 * beside a recompute's rebuilt tensors (eval.c), which live only inside a
 * layer's backward. */
int64_t ws_stage_other_ops(const ws_bytes *w, bool first, int64_t layers, bool last);

/* The optimizer step over `elems` elements: bf16 (any non-fp32) gradients
 * are widened to fp32 for the update, on every cluster (Megatron-LM's
 * optimizer copies them to fp32 main grads likewise); none under a framework
 * whose optimizer kernel reads them (plan_framework.optimizer_grad_copy_none). */
int64_t ws_optimizer_bytes(const plan_cfg *p, int64_t elems);

/* A reduce-scatter that lands `part_elems` gradient elements on this rank:
 * the receive buffer (64-byte aligned) and, for non-fp32 gradients under
 * fp32 kernels, the two fp32 operands of the accumulation. */
int64_t ws_reduce_scatter_bytes(const plan_cfg *p, bool kernels_fp32, int64_t part_elems);

/* A pipeline send's or receive's block of `msg_bytes` (runtime/rt_pipe.c): a
 * forward's is the activation itself; a gradient travels in the activation
 * dtype, converted from or to the gradient stream (ws_bytes.stream_bwd) when
 * that is wider, which is then live beside it. */
int64_t ws_p2p_bytes(const ws_bytes *ws, int64_t msg_bytes, bool gradient);

#endif
