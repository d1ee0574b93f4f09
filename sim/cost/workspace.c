/* workspace.c — the op working set (see workspace.h; the derivation,
 * allocation by allocation, is docs/memory.md §6). */
#include "cost/workspace.h"

#include <string.h>

#include "base/dtype.h"
#include "cost/act.h"
#include "cost/params.h"

static int64_t max64(int64_t a, int64_t b) {
    return a > b ? a : b;
}

/* Bytes of the fp32 copy that fp32 kernels make of a tensor stored in dtype
 * t: 0 when t is fp32 already, or when kernels read the storage dtype. */
static int64_t widen(bool kernels_fp32, ps_dtype t) {
    return kernels_fp32 && dtype_bytes(t) != 4 ? 4 : 0;
}

/* The workspace live inside one op, followed allocation by allocation in the
 * runtime's order (runtime/rt_model.c, rt_tp.c): add, drop, and spike (a
 * block that lives only inside one call: a collective's staging copies). */
typedef struct {
    int64_t live, peak;
} trace;

static void add(trace *t, int64_t b) {
    t->live += b;
    t->peak = max64(t->peak, t->live);
}
static void drop(trace *t, int64_t b) {
    t->live -= b;
}
static void spike(trace *t, int64_t b) {
    add(t, b), drop(t, b);
}

/* One layer's saved tensors on this rank (act.c's list: what a recomputing
 * backward rebuilds too), split where the MLP sub-block starts
 * ("mlp_norm.input"): elements stored in the activation dtype, bytes of the
 * others (fp32 statistics, byte masks), the layer input's elements. */
typedef struct {
    int64_t attn_elems, attn_other, mlp_elems, mlp_other, input_elems;
} saved_set;

static saved_set layer_saved_set(const model_cfg *m, const plan_cfg *p) {
    act_tensor t[ACT_MAX_TENSORS];
    const int n = act_layer_tensors(m, t);
    const int64_t a = dtype_bytes(p->precision.activations);
    saved_set s = {0, 0, 0, 0, act_tensor_bytes(m, p, &t[0]) / a};
    bool mlp = false;
    for (int i = 1; i < n; i++) {
        const int64_t b = act_tensor_bytes(m, p, &t[i]);
        mlp = mlp || !strcmp(t[i].name, "mlp_norm.input");
        if (t[i].dtype == AD_ACT)
            *(mlp ? &s.mlp_elems : &s.attn_elems) += b / a;
        else
            *(mlp ? &s.mlp_other : &s.attn_other) += b;
    }
    return s;
}

/* Per-rank shapes and element sizes of one micro-batch's ops. */
typedef struct {
    int64_t N, Nl, h, q, kv, f, H, V, up, S;
    int64_t S_fwd, S_bwd; /* attention's scratch in a layer's forward, backward (ring: more) */
    int64_t a;  /* stored activation bytes */
    int64_t w;  /* an activation's fp32 copy (0: none) */
    int64_t c;  /* an activation gradient or other computed tensor: 4 under fp32
                   kernels, the activation dtype otherwise */
    int64_t cb; /* the 16-bit staging copy of a tensor-parallel collective of
                   fp32 views (2 bytes; 0 when none is made) */
    int64_t pw, gw;
    bool tp, sp;
    saved_set sv;
} shapes;

/* Sequence parallelism's all-gather of [Nl, h] to [N, h]: the gathered
 * tensor (kept by the caller), its staging copies inside the call. */
static void gather(const shapes *s, trace *t) {
    if (!s->sp) return;
    add(t, s->c * s->N * s->h);
    spike(t, s->cb * (s->Nl + s->N) * s->h);
}
static void gather_free(const shapes *s, trace *t) {
    if (s->sp) drop(t, s->c * s->N * s->h);
}

/* A row-parallel output [N, h] summed over tp into y: all-reduce in place, or
 * (sp) a partial sum reduce-scattered to [Nl, h]; the same staging for a
 * column-parallel input gradient, whose [N, h] partial sum (held by the
 * caller, `held`) becomes [Nl, h] under sp. */
static void tp_sum(const shapes *s, trace *t) {
    if (!s->tp) return;
    if (!s->sp) return spike(t, s->cb * s->N * s->h);
    add(t, s->c * s->N * s->h);
    spike(t, s->cb * (s->N + s->Nl) * s->h);
    drop(t, s->c * s->N * s->h);
}
static int64_t column_grad(const shapes *s, trace *t) {
    if (!s->tp || !s->sp) {
        if (s->tp) spike(t, s->cb * s->N * s->h);
        return s->c * s->N * s->h;
    }
    add(t, s->c * s->Nl * s->h);
    spike(t, s->cb * (s->N + s->Nl) * s->h);
    drop(t, s->c * s->N * s->h);
    return s->c * s->Nl * s->h;
}

/* rt_model.c layer_body: keep = the saved tensors are activations (only
 * their fp32 copies are workspace), else workspace themselves (full
 * recompute's forward); out = the output stream is kept. Leaves live what
 * the runtime frees only at the op's end. */
static void layer_body(const shapes *s, trace *t, bool keep, bool out) {
    const int64_t K = keep ? s->w : s->a + s->w, F = keep ? 0 : 1;
    const int64_t N = s->N, Nl = s->Nl, h = s->h;
    add(t, s->w * Nl * h);              /* the input's copy */
    add(t, K * Nl * h + F * 4 * Nl);    /* normed input, 1/rms */
    gather(s, t);                       /* (sp) the normed input gathered */
    add(t, K * N * (s->q + 2 * s->kv)); /* q, k, v */
    gather_free(s, t);
    /* the rest of attention's tensors (its output; standard attention's
     * scores), the log-sum-exp, then the flash scratch */
    add(t,
        K * (s->sv.attn_elems - Nl * h - N * (s->q + 2 * s->kv)) + F * (s->sv.attn_other - 4 * Nl));
    spike(t, s->S_fwd);
    add(t, K * Nl * h);                       /* the residual sum x_mid */
    tp_sum(s, t);                             /* o's output summed over tp */
    add(t, K * Nl * h + F * s->sv.mlp_other); /* normed input, its statistics */
    gather(s, t);
    add(t, K * s->up * N * s->f); /* the up-projections' outputs */
    gather_free(s, t);
    add(t, K * (s->sv.mlp_elems - 2 * Nl * h - s->up * N * s->f)); /* the rest: swiglu's g */
    if (out || s->tp) {
        add(t, (s->a + s->w) * Nl * h); /* the output (stream, or a recompute's scratch) */
        tp_sum(s, t);                   /* w2's output summed over tp */
    }
}

/* rt_model.c layer_backward, after the op's weights, gradients and incoming
 * gradient stream (and a recompute's rebuilt tensors) are live. */
static void layer_backward(const shapes *s, trace *t) {
    const int64_t N = s->N, Nl = s->Nl, h = s->h, c = s->c, nf = c * N * s->f;
    add(t, s->w * (s->sv.input_elems + s->sv.attn_elems + s->sv.mlp_elems)); /* loads */
    if (s->sp) add(t, 4 * 2 * h);    /* the norms' weight gradients of this rank's tokens */
    add(t, c * Nl * h);              /* dx_mid, becoming dx_in: the outgoing stream */
    add(t, nf);                      /* the down-projection input's gradient */
    gather(s, t), gather_free(s, t); /* (sp) the incoming gradient gathered */
    add(t, s->up * nf), drop(t, nf); /* the up-projections' output gradients */
    add(t, c * N * h);               /* their input's gradient */
    gather(s, t), gather_free(s, t); /* (sp) the normed input re-gathered */
    drop(t, s->up * nf);
    drop(t, column_grad(s, t));
    add(t, c * N * s->q);               /* attention output's gradient */
    gather(s, t), gather_free(s, t);    /* (sp) dx_mid gathered */
    add(t, c * N * (s->q + 2 * s->kv)); /* dq, dk, dv */
    spike(t, s->S_bwd);
    drop(t, c * N * s->q);
    add(t, c * N * h); /* q/k/v's input gradient */
    gather(s, t), gather_free(s, t);
    drop(t, c * N * (s->q + 2 * s->kv));
    column_grad(s, t); /* stays until the op's end */
}

/* DualPipe's queued W of one layer (workspace.h; docs/memory.md §4): each
 * linear's W closure (DualPipe examples/example_dualpipe.py LinearFunc:
 * grad_weight_fn captures `input` and `grad_output`) keeps its input and its
 * output gradient. Standard attention: q/k/v's input (the normed input, N_l
 * rows of h) and o's (q wide); gradients of q, k, v and o's output, as
 * zb_stash. Multi-head latent attention (DeepSeek-V2 §2.1; params.c
 * mla_weights): q_a and kv_a share the normed input; q_b reads the normed
 * c_Q (r_q), kv_b the normed c_KV (r_kv), o the heads' values (n_h/t d_v);
 * output gradients of q_a (r_q), q_b (n_h/t (d_n + d_r)), kv_a (r_kv + d_r),
 * kv_b (n_h/t (d_n + d_v)) and o (h); without q_lora one q_proj. The dense
 * MLP: w1/w3 (fc1) read the normed input, w2 (fc2) the f-wide activation;
 * gradients of up f and h. */
static void zb_queued(const model_cfg *m, const plan_cfg *p, const shapes *s, ws_bytes *o) {
    const int64_t N = s->N, Nl = s->Nl, h = s->h, a = s->a, c = s->c;
    o->grad_elem = c;
    o->zb_mlp_inputs = a * (Nl * h + N * s->f);
    o->zb_mlp_grads = c * N * (s->up * s->f + h);
    if (!model_is_mla(m)) {
        o->zb_attn_inputs = a * (Nl * h + N * s->q);
        o->zb_attn_grads = c * N * (h + s->q + 2 * s->kv);
        return;
    }
    const int64_t nh = m->heads / p->tp, rq = m->q_lora_rank, rkv = m->kv_lora_rank;
    const int64_t dn = m->qk_nope_head_dim, dr = m->qk_rope_head_dim, dv = m->v_head_dim;
    o->zb_attn_inputs = a * (Nl * h + N * (rq + rkv + nh * dv));
    o->zb_attn_grads = c * N * (rq + nh * (dn + dr) + rkv + dr + nh * (dn + dv) + h);
}

void ws_compute(const model_cfg *m, const plan_cfg *p, bool kernels_fp32, ws_bytes *o) {
    params_count pc;
    params_count_rank(m, p->tp, &pc);
    /* per-rank shapes; standard attention expands k and v to every query
     * head and materialises the scores (one row of H*T per token) */
    const bool flash = m->attention == ATTN_FLASH;
    const ps_dtype act = p->precision.activations;
    shapes s = {.N = plan_tokens_per_rank(p),
                .h = m->hidden,
                .q = model_q_width(m) / p->tp,
                .f = m->ffn_hidden / p->tp,
                .H = m->heads / p->tp,
                .V = model_vocab_rows(m, p->tp),
                .up = m->mlp == MLP_SWIGLU ? 2 : 1,
                .a = dtype_bytes(act),
                .w = widen(kernels_fp32, act),
                .c = kernels_fp32 ? 4 : dtype_bytes(act),
                .cb = kernels_fp32 && dtype_bytes(act) != 4 ? 2 : 0,
                .pw = widen(kernels_fp32, p->precision.params),
                .gw = widen(kernels_fp32, p->precision.grads),
                .tp = p->tp > 1,
                .sp = p->tp > 1 && p->sp,
                .sv = layer_saved_set(m, p)};
    s.kv = flash ? model_kv_width(m) / p->tp : s.q;
    s.Nl = s.sp ? s.N / p->tp : s.N;
    const int64_t T = p->seq / p->cp, N = s.N, Nl = s.Nl, h = s.h, V = s.V;
    /* flash: one block's scores and their gradient (the CPU kernel's fp32 scratch);
     * standard: the score matrix's two gradients, activation gradients (c).
     * On kernels that read the storage dtype (GPU frameworks, PyTorch
     * autograd), with attention dropout one score-sized tensor beyond the
     * saved ones: the forward's pre-softmax scores (saved by no op: the
     * softmax keeps its output, QK^T its operands), and in backward the
     * engine frees a node's saved tensors as soon as it has run
     * (torch/csrc/autograd/engine.cpp evaluate_function: release_variables),
     * so when dropout's backward makes dP beside dP_drop the saved dropout
     * output is gone, and when the softmax's backward makes dS (or Megatron's
     * fused kernel writes it in place) dP_drop and the mask are: +1 at every
     * moment. Without dropout the unfused softmax backward holds dP and dS
     * while its saved output lives: 2 (docs/memory.md §6, "standard attention
     * on GPUs"). */
    const int64_t scores = !kernels_fp32 && m->dropout > 0 ? 1 : 2;
    s.S = flash ? 2 * (T < WS_ATTN_BLOCK_ROWS ? T : WS_ATTN_BLOCK_ROWS) * T * 4
                : scores * s.c * N * s.H * T;
    /* context parallelism: ring attention (runtime/rt_ring.c) runs the block
     * kernel instead, whose scratch also holds a block of output rows, and with
     * fp32 kernels on 16-bit activations adds the fp32 copy of the K/V block
     * received (backward: and of the dK/dV sum it adds into); its pass buffers
     * are `buffers` (act.c) */
    const int64_t bq = T < WS_ATTN_BLOCK_ROWS ? T : WS_ATTN_BLOCK_ROWS;
    const bool ring = flash && p->cp > 1;
    const int64_t Sr = 4 * (2 * bq * T + bq * m->head_dim);
    s.S_fwd = ring ? Sr + 2 * s.w * N * s.kv : s.S;
    s.S_bwd = ring ? Sr + 4 * s.w * N * s.kv : s.S;
    const int64_t Pe = pc.embedding + pc.position, Pl = pc.layer, Ph = pc.final_norm + pc.output;
    o->attn_scratch = s.S;
    o->stream_fwd = s.a * Nl * h;
    o->stream_bwd = s.c * Nl * h;

    /* embedding forward: the table's copy; the output (kept as the stream)
     * and its fp32 copy; under tp the vocab-parallel lookup summed over tp */
    trace t = {0, 0};
    add(&t, s.pw * Pe + (s.a + s.w) * Nl * h);
    tp_sum(&s, &t);
    o->embed_fwd = t.peak;

    /* embedding backward: weights' and gradients' copies, int32 token ids,
     * the incoming stream (sp: gathered), then, once the stream is freed,
     * the old gradient to add into */
    t = (trace){0, 0};
    add(&t, (s.pw + s.gw) * Pe + 4 * N + s.c * Nl * h);
    gather(&s, &t);
    drop(&t, s.c * Nl * h);
    spike(&t, s.gw * Pe);
    o->embed_bwd = t.peak;

    /* a layer's forward: weights' copy, then the body (saved tensors
     * workspace under full recompute) with its output stream */
    const bool full = p->recompute == RECOMPUTE_FULL;
    t = (trace){0, 0};
    add(&t, s.pw * Pl);
    layer_body(&s, &t, !full, true);
    o->layer_fwd = t.peak;

    /* a layer's backward: weights' and gradients' copies, the incoming
     * stream, (full recompute) the rebuilt tensors' copies, the backward,
     * then the stream freed and the old gradient added into */
    t = (trace){0, 0};
    add(&t, (s.pw + s.gw) * Pl + s.c * Nl * h);
    if (full) layer_body(&s, &t, true, false);
    layer_backward(&s, &t);
    drop(&t, s.c * Nl * h);
    spike(&t, s.gw * Pl);
    o->layer_bwd = t.peak;

    /* zero-bubble (runtime/rt_model.c layer_backward, split): the input part
     * B allocates the stash of every GEMM's output gradient -- dy, up f-wide
     * ones, dx_mid, dq, dk, dv -- before its first gradient and leaves it for
     * W, so B's peak is layer_bwd plus it (B's trace only adds before that
     * point). W, with the stash live: the gradients' copy, the four GEMM
     * inputs' copies (normed inputs, attention output, swiglu's g; whole:
     * zero-bubble refuses sp), the old gradient to add into. */
    o->zb_stash = s.c * N * (2 * h + s.up * s.f + s.q + 2 * s.kv);
    o->layer_bwd_w = 2 * s.gw * Pl + s.w * N * (2 * h + s.q + s.f);
    zb_queued(m, p, &s, o);

    /* head forward: weights' copy, the input's and the normed input's
     * copies, the logits (stored, and widened to fp32 for the loss on every
     * cluster: Megatron-LM's cross entropy calls .float() on them), the
     * per-token losses, (sp) the normed input gathered, (tp) the loss's
     * per-token maximum, target logit and sum (fp32) */
    const int64_t wl = dtype_bytes(act) == 4 ? 0 : 4;
    /* framework profile (docs/memory.md "Framework profiles"): the logits
     * live at once are a chunk's under a chunked loss (torchtitan), and none
     * are the op's own under a fused classifier (llm.c: they are the saved
     * tensor, act.c, and their gradient is written into them in place) */
    const int64_t Nv = p->framework.loss == FW_LOSS_CHUNKED
                           ? (N + p->framework.loss_chunks - 1) / p->framework.loss_chunks
                           : N;
    const bool fused = p->framework.loss == FW_LOSS_FUSED;
    t = (trace){0, 0};
    add(&t, s.pw * Ph + 2 * s.w * Nl * h + (fused ? 0 : (s.a + wl) * Nv * V) + 4 * N);
    gather(&s, &t);
    if (s.tp) spike(&t, 3 * 4 * N);
    o->head_fwd = t.peak;

    /* head backward: weights' and gradients' copies, the two saved inputs'
     * copies, int32 labels, the logits' gradient (fp32), the normed input's
     * gradient, the outgoing stream, (sp) the norm's weight gradient and the
     * normed input re-gathered, the input gradient summed over tp, then the
     * old gradient to add into */
    t = (trace){0, 0};
    add(&t, (s.pw + s.gw) * Ph + 2 * s.w * Nl * h + 4 * N + (fused ? 0 : s.c * Nv * V) + s.c * N * h +
                s.c * Nl * h + (s.sp ? 4 * h : 0));
    gather(&s, &t);
    column_grad(&s, &t);
    spike(&t, s.gw * Ph);
    /* framework profile, loss cross-entropy (PyTorch's F.cross_entropy on
     * logits.float(): log_softmax then nll_loss, torchtitan 9dec370a
     * train.py): nll_loss's backward makes a dense fp32 N x V gradient, and
     * log_softmax's backward a second one beside it while its saved fp32
     * output (an activation, act.c) still lives (autograd frees it only
     * after the node has run): 8NV; then the bf16 cast's backward turns the
     * fp32 gradient into the c-byte one the trace above starts with */
    if (p->framework.loss == FW_LOSS_CROSS_ENTROPY)
        t.peak = max64(t.peak, (s.pw + s.gw) * Ph + 2 * s.w * Nl * h + 4 * N + 2 * 4 * N * V);
    o->head_bwd = t.peak;
}

int64_t ws_stage_other_ops(const ws_bytes *w, bool first, int64_t layers, bool last) {
    int64_t x = 0;
    if (first) x = max64(w->embed_fwd, w->embed_bwd);
    if (layers > 0) x = max64(x, w->layer_fwd);
    if (last) x = max64(x, max64(w->head_fwd, w->head_bwd));
    return x;
}

int64_t ws_stage_compute(const ws_bytes *w, bool first, int64_t layers, bool last) {
    return max64(ws_stage_other_ops(w, first, layers, last), layers > 0 ? w->layer_bwd : 0);
}

int64_t ws_optimizer_bytes(const plan_cfg *p, int64_t elems) {
    /* framework profile: llm.c's AdamW kernel widens each bf16 gradient in
     * registers (llmc/adamw.cuh), so no copy (docs/memory.md "Framework profiles") */
    if (p->framework.optimizer_grad_copy_none) return 0;
    return (dtype_bytes(p->precision.grads) == 4 ? 0 : 4) * elems;
}

int64_t ws_reduce_scatter_bytes(const plan_cfg *p, bool kernels_fp32, int64_t part_elems) {
    const int64_t recv = (part_elems * dtype_bytes(p->precision.grads) + 63) / 64 * 64;
    return recv + 2 * widen(kernels_fp32, p->precision.grads) * part_elems;
}

int64_t ws_p2p_bytes(const ws_bytes *ws, int64_t msg_bytes, bool gradient) {
    return msg_bytes + (gradient && ws->stream_bwd != msg_bytes ? ws->stream_bwd : 0);
}
