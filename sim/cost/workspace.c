/* workspace.c — the op working set (see workspace.h; the derivation,
 * allocation by allocation, is docs/memory.md §6). */
#include "cost/workspace.h"

#include "base/dtype.h"
#include "cost/act.h"
#include "cost/params.h"

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Bytes of the fp32 copy the runtime makes of a tensor stored in dtype t
 * (to compute in fp32): 0 when t is fp32 already. */
static int64_t widen(ps_dtype t) { return dtype_bytes(t) == 4 ? 0 : 4; }

/* One layer's saved tensors on this rank (act.c's list, all of them: what a
 * recomputing backward rebuilds too): elements stored in the activation
 * dtype, bytes of the others (fp32 statistics, byte masks), and the layer
 * input's elements. */
typedef struct {
    int64_t act_elems, other_bytes, input_elems;
} saved_set;

static saved_set layer_saved_set(const model_cfg *m, const plan_cfg *p) {
    act_tensor t[ACT_MAX_TENSORS];
    const int n = act_layer_tensors(m, t);
    const int64_t a = dtype_bytes(p->precision.activations);
    saved_set s = {0, 0, act_tensor_bytes(m, p, &t[0]) / a};
    for (int i = 0; i < n; i++) {
        const int64_t b = act_tensor_bytes(m, p, &t[i]);
        if (t[i].dtype == AD_ACT)
            s.act_elems += b / a;
        else
            s.other_bytes += b;
    }
    return s;
}

void ws_compute(const model_cfg *m, const plan_cfg *p, ws_bytes *o) {
    params_count pc;
    params_count_rank(m, p->tp, &pc);
    /* per-rank shapes; standard attention expands k and v to every query
     * head and materialises the scores (one row of H*T per token) */
    const bool flash = m->attention == ATTN_FLASH;
    const int64_t N = plan_tokens_per_rank(p), h = m->hidden, q = model_q_width(m) / p->tp,
                  kv = flash ? model_kv_width(m) / p->tp : q, f = m->ffn_hidden / p->tp,
                  H = m->heads / p->tp, V = model_vocab_rows(m, p->tp), T = p->seq / p->cp;
    /* up-projections of the MLP: w1 and w3 (SwiGLU), fc1 (GeLU) */
    const int64_t up = m->mlp == MLP_SWIGLU ? 2 : 1;
    /* a: stored activation bytes; w, pw, gw: the fp32 copies of activations,
     * parameters and gradients kept in 16 bits */
    const int64_t a = dtype_bytes(p->precision.activations), w = widen(p->precision.activations),
                  pw = widen(p->precision.params), gw = widen(p->precision.grads);
    const int64_t Pe = pc.embedding + pc.position, Pl = pc.layer, Ph = pc.final_norm + pc.output;
    const int64_t S = flash ? 2 * (T < WS_ATTN_BLOCK_ROWS ? T : WS_ATTN_BLOCK_ROWS) * T * 4
                            : 8 * N * H * T; /* flash: one block's scores and their gradient;
                                                standard: the score matrix's two gradients */
    /* context parallelism: ring attention (runtime/rt_ring.c) runs the block
     * kernel instead, whose scratch also holds a block of output rows, and in 16
     * bits adds the fp32 copy of the K/V block received (backward: and of the
     * dK/dV sum it adds into); its pass buffers are `buffers` (act.c) */
    const int64_t bq = T < WS_ATTN_BLOCK_ROWS ? T : WS_ATTN_BLOCK_ROWS;
    const bool ring = flash && p->cp > 1;
    const int64_t Sr = 4 * (2 * bq * T + bq * m->head_dim);
    const int64_t S_fwd = ring ? Sr + 2 * w * N * kv : S, S_bwd = ring ? Sr + 4 * w * N * kv : S;
    const bool full = p->recompute == RECOMPUTE_FULL;
    const saved_set sv = layer_saved_set(m, p);
    o->attn_scratch = S;
    o->stream_fwd = a * N * h;
    o->stream_bwd = 4 * N * h;

    /* embedding: the table's fp32 copy; the output (kept as the stream) and its fp32 view */
    o->embed_fwd = pw * Pe + (a + w) * N * h;
    /* weights and gradient copies, int32 token ids; the incoming gradient
     * stream until the kernel has used it, then the old gradient to add into */
    o->embed_bwd = (pw + gw) * Pe + 4 * N + max64(4 * N * h, gw * Pe);

    /* a layer's forward, at attention (its scratch live) or at the end: the
     * weights' fp32 copy, the input's fp32 view, every saved tensor's fp32
     * view, the output stream and its view. Under full recompute the saved
     * tensors are workspace themselves (stored and viewed, statistics too). */
    const int64_t attn_in = N * (h + 2 * q + 2 * kv); /* normed input, q, k, v, output */
    if (full)
        o->layer_fwd =
            pw * Pl + w * sv.input_elems +
            max64((a + w) * attn_in + 4 * N + 4 * N * H + S_fwd,
                  (a + w) * (sv.act_elems - sv.input_elems) + sv.other_bytes + (a + w) * N * h);
    else
        o->layer_fwd = pw * Pl + max64(w * (N * h + attn_in) + S_fwd,
                                       w * sv.act_elems + (a + w) * N * h);

    /* a layer's backward: the gradient stream in and out (fp32), the
     * weights' and gradients' fp32 copies, fp32 copies of the saved tensors
     * it reads (and, under full recompute, of the ones it rebuilt), then the
     * largest of: the MLP (the down-projection input's gradient and the
     * up-projections' outputs'), the up-projections' input gradient once the
     * first is freed, attention (output gradient, dq, dk, dv, scratch), q/k/v's
     * input gradient, and, once the incoming stream is freed, the old
     * gradient to add into. */
    const int64_t base = 8 * N * h + (pw + gw) * Pl + (full ? 2 : 1) * w * sv.act_elems;
    o->layer_bwd = base + max64(max64(4 * (1 + up) * N * f, 4 * up * N * f + 4 * N * h),
                                max64(8 * N * q + 8 * N * kv + S_bwd,
                                      4 * N * q + 8 * N * kv + max64(4 * N * h, gw * Pl)));

    /* head forward: weights' copy, the input's and the normed input's fp32
     * views, the logits (stored and viewed) until the loss has turned them
     * into the saved fp32 softmax, the per-token losses */
    o->head_fwd = pw * Ph + 2 * w * N * h + (a + w) * N * V + 4 * N;
    /* head backward: weights' and gradients' copies and the old gradient,
     * the two saved inputs' views, int32 labels, the logits' gradient
     * (fp32), the normed input's gradient and the outgoing stream */
    o->head_bwd = (pw + 2 * gw) * Ph + 2 * w * N * h + 4 * N + 4 * N * V + 8 * N * h;
}

int64_t ws_stage_compute(const ws_bytes *w, bool first, int64_t layers, bool last) {
    int64_t x = 0;
    if (first) x = max64(w->embed_fwd, w->embed_bwd);
    if (layers > 0) x = max64(x, max64(w->layer_fwd, w->layer_bwd));
    if (last) x = max64(x, max64(w->head_fwd, w->head_bwd));
    return x;
}

int64_t ws_optimizer_bytes(const plan_cfg *p, int64_t elems) {
    return widen(p->precision.grads) * elems;
}

int64_t ws_reduce_scatter_bytes(const plan_cfg *p, int64_t part_elems) {
    const int64_t recv = (part_elems * dtype_bytes(p->precision.grads) + 63) / 64 * 64;
    return recv + 2 * widen(p->precision.grads) * part_elems;
}
