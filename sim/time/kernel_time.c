/* kernel_time.c — per-op compute time (see kernel_time.h, docs/time.md §1–§2). */
#include "time/kernel_time.h"

#include <math.h>
#include <string.h>

#include "cost/act.h"
#include "cost/moe.h"
#include "cost/states.h"

#define BIT(op_) (1u << (op_))

/* Tag the op just added with the layer ops (act_op bits) its forward computes. */
static void tag(kt_part *o, uint32_t replays) { o->op[o->n - 1].replays = replays; }

/* A curve [[x, fraction]] at v strictly inside its ends, log-log between the
 * points around it: y0 (v / x0)^slope, the slope into point i taken from
 * `slope` when prepared (cluster_eff_prepare), else computed. */
static double curve_loglog(const double *x, const double *y, const double *slope, double v) {
    int i = 1;
    while (v > x[i]) i++;
    return y[i - 1] * pow(v / x[i - 1], slope ? slope[i] : cluster_curve_slope(x, y, i));
}

double kt_gemm_efficiency(const cluster_eff *e, double dim) {
    const int n = e->gemm_n;
    if (n <= 0) return 1.0;
    if (dim <= e->gemm_dim[0]) return e->gemm_frac[0] * dim / e->gemm_dim[0];
    if (dim >= e->gemm_dim[n - 1]) return e->gemm_frac[n - 1];
    return curve_loglog(e->gemm_dim, e->gemm_frac, e->gemm_slope, dim);
}

/* A measured curve [[x, fraction]] at v: log-log between points, flat beyond
 * the ends (a kernel's efficiency does not keep falling below the shortest
 * sequence measured, nor rising above the longest). */
static double curve_flat(const double *x, const double *y, int n, double v) {
    if (v <= x[0]) return y[0];
    if (v >= x[n - 1]) return y[n - 1];
    return curve_loglog(x, y, NULL, v);
}

void kt_attn_efficiency(const cluster_cfg *c, const plan_cfg *p, double seq, double *fwd,
                        double *bwd) {
    *fwd = c->eff.attn_fwd;
    *bwd = c->eff.attn_bwd;
    if (p->attn_kernel <= 0 || p->attn_kernel > c->eff.attn_kernel_n) return;
    const cluster_attn_kernel *k = &c->eff.attn_kernel[p->attn_kernel - 1];
    *fwd = curve_flat(k->fwd_seq, k->fwd, k->fwd_n, seq);
    *bwd = curve_flat(k->bwd_seq, k->bwd, k->bwd_n, seq);
}

double kt_peak(const cluster_cfg *c, const plan_cfg *p) {
    double peak = c->peak_flops_per_s[p->precision.activations];
    return peak > 0 ? peak : c->peak_flops_per_s[DT_BF16];
}

double kt_gemm(const cluster_cfg *c, const plan_cfg *p, double batch, double M, double N,
               double K) {
    const double flops = 2.0 * batch * M * N * K;
    if (flops <= 0) return 0;
    double dim = M < N ? M : N;
    if (K < dim) dim = K;
    return flops / (kt_peak(c, p) * kt_gemm_efficiency(&c->eff, dim));
}

double kt_mem(const cluster_cfg *c, double bytes) {
    return bytes / (c->hbm_bytes_per_s * c->eff.hbm);
}

/* A matmul (tokens x in) x (in x out), batch of them. With weights, the
 * backward is an input gradient (tokens x out)(out x in) and a weight gradient
 * (in x tokens)(tokens x out): the same three dimensions, so the same time
 * each. Without weights (attention's batched products) both backward
 * products go to the input gradient. */
static void add_gemm(kt_part *o, const cluster_cfg *c, const plan_cfg *p, const char *name,
                     double batch, double tokens, double in, double out, int has_weight) {
    kt_op *op = &o->op[o->n++];
    double t = kt_gemm(c, p, batch, tokens, out, in);
    const double flops = 2.0 * batch * tokens * in * out;
    *op = (kt_op){name, KT_GEMM, flops, 0, 2 * flops, t, has_weight ? t : 2 * t,
                  has_weight ? t : 0, 0, has_weight ? in * out : 0};
}

/* A memory-bound op moving `fwd` bytes forward and `bwd` bytes backward
 * (reads of the saved inputs and the output gradient, writes of the input
 * gradient; docs/time.md §2 counts each op). */
static void add_mem(kt_part *o, const cluster_cfg *c, const char *name, double fwd, double bwd) {
    if (fwd <= 0) return;
    kt_op *op = &o->op[o->n++];
    *op = (kt_op){name, KT_MEM, 0, fwd, 0, kt_mem(c, fwd), kt_mem(c, bwd), 0, 0, 0};
}

/* Without gradient-accumulation fusion (Megatron-LM
 * --no-gradient-accumulation-fusion) the weight-gradient GEMM writes its
 * result in the activation dtype and the backward hook adds it into the
 * gradient buffer, param.main_grad.add_(param.grad)
 * (megatron/core/distributed/distributed_data_parallel.py): per weight element
 * and micro-batch a read of the a-byte gradient and a read and write of the
 * g-byte accumulated one, memory-bound, in the weight-gradient phase
 * (docs/time.md §2). Fused (the default), the GEMM accumulates in place. */
static void add_grad_accumulation(kt_part *o, const cluster_cfg *c, const plan_cfg *p, int from) {
    if (!p->grad_acc_unfused) return;
    const double a = (double)dtype_bytes(p->precision.activations);
    const double g = (double)dtype_bytes(p->precision.grads);
    for (int i = from; i < o->n; i++)
        if (o->op[i].weights > 0) o->op[i].bwd_w += kt_mem(c, o->op[i].weights * (a + 2 * g));
}

static void sum_part(kt_part *o) {
    o->fwd = o->bwd_in = o->bwd_w = 0;
    for (int i = 0; i < o->n; i++) {
        o->fwd += o->op[i].fwd;
        o->bwd_in += o->op[i].bwd_in;
        o->bwd_w += o->op[i].bwd_w;
    }
}

/* Attention core: flash attention computes the causal half of the square in
 * one fused kernel, and its backward recomputes the scores (2.5x the forward
 * FLOPs; Dao 2023); standard attention materialises the full square with two
 * batched GEMMs around a softmax (+ dropout) pass over the scores. */
static void add_attention(kt_part *o, const model_cfg *m, const cluster_cfg *c,
                          const plan_cfg *p, double a) {
    const double b = (double)p->micro_batch, sq = (double)(p->seq / p->cp), sk = (double)p->seq;
    const double heads = (double)(m->heads / p->tp);
    /* MLA: QK^T over nope + rope (head_dim), PV over v_head_dim: their mean */
    const double d = model_is_mla(m) ? 0.5 * (double)(m->head_dim + m->v_head_dim)
                                     : (double)m->head_dim;
    double before = 0;
    for (int i = 0; i < o->n; i++) before += o->op[i].fwd;
    if (m->attention == ATTN_FLASH) {
        double flops, bwd;
        const double peak = kt_peak(c, p);
        kt_flash_attn_flops(b * heads, sq, sk, d, &flops, &bwd);
        double ef, eb; /* each kernel call attends over s/cp (ring attention's blocks) */
        kt_attn_efficiency(c, p, sq, &ef, &eb);
        kt_op *op = &o->op[o->n++];
        *op = (kt_op){"flash_attention", KT_ATTN, flops, 0, bwd, flops / (peak * ef),
                      bwd / (peak * eb), 0, BIT(ACT_OP_ATTN), 0};
    } else {
        const double elems = b * heads * sq * sk;
        add_gemm(o, c, p, "attn_scores", b * heads, sq, d, sk, 0);   /* (sq x d)(d x sk) */
        tag(o, BIT(ACT_OP_ATTN));
        const double drop = m->dropout > 0 ? 2 * a + 1 : 0; /* r, w, 1-byte mask */
        add_mem(o, c, "softmax_dropout", elems * (2 * a + drop), elems * (3 * a + drop));
        tag(o, BIT(ACT_OP_SOFTMAX));
        add_gemm(o, c, p, "attn_context", b * heads, sq, sk, d, 0);  /* (sq x sk)(sk x d) */
        tag(o, BIT(ACT_OP_ATTN));
    }
    double after = 0;
    for (int i = 0; i < o->n; i++) after += o->op[i].fwd;
    o->attn_core_fwd = after - before;
}

/* Bytes per element of the memory-bound ops that PyTorch eager mode runs as
 * several kernels (kernels.elementwise: eager; docs/time.md §2), a the
 * activation bytes, fp32 intermediates 4 bytes; each kernel reads its inputs
 * and writes its output once. torchtitan 9dec370a, torchtitan/models/norms.py
 * RMSNorm: x.float() (a + 4), pow(2) (8), mean(-1) (4), x * rsqrt (8),
 * type_as (4 + a), * weight (2a) = 28 + 4a; its autograd backward: * weight
 * (dy*w 2a, dy*out and the token sum 4a), type_as (a + 4), x * r (g*r 8,
 * g*x and the row sum 16), mean (4), pow (pow_backward: self.pow(1) 8,
 * 2 * 8, grad * 12), the two gradients of x.float() summed (12), float() (4 + a)
 * = 76 + 8a. models/llama/model.py apply_rotary_emb, per q and k element:
 * float() (a + 4), complex multiply (8), type_as (4 + a) = 16 + 2a, backward
 * the same three in reverse. FeedForward silu(w1 x) * w3 x: silu (2a), mul
 * (3a) = 5a; backward mul (3a + 3a), silu_backward (3a) = 9a. GELU and
 * LayerNorm are one ATen kernel each in eager mode: unchanged. */
static double kt_norm_fwd_bytes(const model_cfg *m, const plan_cfg *p, double a) {
    return p->eager_elementwise && m->norm == NORM_RMSNORM ? 28 + 4 * a : 2 * a;
}

static double kt_norm_bwd_bytes(const model_cfg *m, const plan_cfg *p, double a) {
    return p->eager_elementwise && m->norm == NORM_RMSNORM ? 76 + 8 * a : 3 * a;
}

void kt_layer(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, kt_part *o) {
    memset(o, 0, sizeof *o);
    const double a = (double)dtype_bytes(p->precision.activations);
    const double T = (double)plan_tokens_per_rank(p), t = (double)p->tp, h = (double)m->hidden;
    const double hs = p->sp ? h / t : h; /* residual stream width per rank */
    const double qw = (double)model_q_width(m), kvw = (double)model_kv_width(m);
    const double f = (double)m->ffn_hidden;
    const double drop = m->dropout > 0 ? 1 : 0;
    /* norm: r x, w y; backward r x, dy, w dx (fused; eager: kt_norm_fwd_bytes) */
    const double norm_f = kt_norm_fwd_bytes(m, p, a), norm_b = kt_norm_bwd_bytes(m, p, a);
    const double rope = p->eager_elementwise ? 16 + 2 * a : 2 * a;
    add_mem(o, c, "attn_norm", T * hs * norm_f, T * hs * norm_b);
    tag(o, BIT(ACT_OP_NORM1));
    const uint32_t qkv_ops = BIT(ACT_OP_Q) | BIT(ACT_OP_K) | BIT(ACT_OP_V);
    double o_in = qw / t; /* the attention output projection's input width */
    if (model_is_mla(m)) {
        /* multi-head latent attention (DeepSeek-V2 §2.1; params.c mla_weights):
         * the down projections replicated, the up projections and the output
         * split by heads; per head queries/keys nope + rope wide, values v.
         * attn.q comes from q_up (or q_proj), attn.k and attn.v from kv_up:
         * only those are tagged; the down projections make the latents,
         * which no recompute policy drops (flops.c replay_flops) */
        const double nh = (double)(m->heads / p->tp), ql = (double)m->q_lora_rank;
        const double qk = (double)(m->qk_nope_head_dim + m->qk_rope_head_dim);
        const double kl = (double)m->kv_lora_rank, v = (double)m->v_head_dim;
        if (ql > 0) {
            add_gemm(o, c, p, "q_down", 1, T, h, ql, 1);
            add_gemm(o, c, p, "q_up", 1, T, ql, nh * qk, 1);
        } else {
            add_gemm(o, c, p, "q_proj", 1, T, h, nh * qk, 1);
        }
        tag(o, BIT(ACT_OP_Q));
        add_gemm(o, c, p, "kv_down", 1, T, h, kl + (double)m->qk_rope_head_dim, 1);
        add_gemm(o, c, p, "kv_up", 1, T, kl, nh * ((double)m->qk_nope_head_dim + v), 1);
        tag(o, BIT(ACT_OP_K) | BIT(ACT_OP_V));
        o_in = nh * v;
    } else {
        add_gemm(o, c, p, "qkv", 1, T, h, (qw + 2 * kvw) / t, 1);
        tag(o, qkv_ops);
    }
    if (m->position == POS_ROPE) {
        add_mem(o, c, "rope", T * (qw + kvw) / t * rope, T * (qw + kvw) / t * rope);
        tag(o, BIT(ACT_OP_ROPE));
    }
    add_attention(o, m, c, p, a);
    add_gemm(o, c, p, "attn_out", 1, T, o_in, h, 1);
    tag(o, BIT(ACT_OP_O));
    /* bias-dropout-add: r x, r residual, w y (+ mask); backward r dy (+ mask), w dx */
    add_mem(o, c, "attn_residual", T * hs * (3 * a + drop), T * hs * (2 * a + drop));
    tag(o, BIT(ACT_OP_RESID1));
    add_mem(o, c, "mlp_norm", T * hs * norm_f, T * hs * norm_b);
    tag(o, BIT(ACT_OP_NORM2));
    const int swiglu = m->mlp == MLP_SWIGLU;
    add_gemm(o, c, p, "mlp_up", 1, T, h, (swiglu ? 2 : 1) * f / t, 1);
    tag(o, BIT(ACT_OP_UP) | (swiglu ? BIT(ACT_OP_GATE) : 0));
    /* gelu: r x, w y; backward r x, dy, w dx. swiglu: r g, u, w y; backward r g, u, dy, w dg, du;
     * eager swiglu: silu and mul apart, 5a and 9a (kt_norm_fwd_bytes) */
    const double sw_f = p->eager_elementwise ? 5 : 3, sw_b = p->eager_elementwise ? 9 : 5;
    add_mem(o, c, swiglu ? "swiglu" : "gelu", (swiglu ? sw_f : 2) * T * f / t * a,
            (swiglu ? sw_b : 3) * T * f / t * a);
    tag(o, BIT(ACT_OP_ACT));
    add_gemm(o, c, p, "mlp_down", 1, T, f / t, h, 1);
    tag(o, BIT(ACT_OP_DOWN));
    add_mem(o, c, "mlp_residual", T * hs * (3 * a + drop), T * hs * (2 * a + drop));
    tag(o, BIT(ACT_OP_RESID2));
    add_grad_accumulation(o, c, p, 0);
    sum_part(o);
    if (p->recompute == RECOMPUTE_FULL) {
        o->recompute = o->fwd;
    } else if (p->recompute == RECOMPUTE_SELECTIVE) {
        if (m->attention == ATTN_STANDARD) o->recompute = o->attn_core_fwd;
    } else if (p->recompute != RECOMPUTE_NONE) {
        /* the forward of each op the policy replays; a fused GEMM replayed in
         * part (torchtitan's wk alone, w3 alone) runs its linears separately */
        const uint32_t ops = act_replay_ops(m, p);
        for (int i = 0; i < o->n; i++) {
            const uint32_t r = o->op[i].replays;
            if (!(r & ops)) continue;
            if (!(r & ~ops)) {
                o->recompute += o->op[i].fwd;
                continue;
            }
            if (model_is_mla(m) && (r & BIT(ACT_OP_K))) { /* kv_up, half of it */
                const double nh = (double)(m->heads / p->tp), kl = (double)m->kv_lora_rank;
                if (ops & BIT(ACT_OP_K))
                    o->recompute += kt_gemm(c, p, 1, T, nh * (double)m->qk_nope_head_dim, kl);
                if (ops & BIT(ACT_OP_V))
                    o->recompute += kt_gemm(c, p, 1, T, nh * (double)m->v_head_dim, kl);
                continue;
            }
            if (r & ops & BIT(ACT_OP_Q)) o->recompute += kt_gemm(c, p, 1, T, qw / t, h);
            if (r & ops & BIT(ACT_OP_K)) o->recompute += kt_gemm(c, p, 1, T, kvw / t, h);
            if (r & ops & BIT(ACT_OP_V)) o->recompute += kt_gemm(c, p, 1, T, kvw / t, h);
            if (r & ops & BIT(ACT_OP_UP)) o->recompute += kt_gemm(c, p, 1, T, f / t, h);
            if (r & ops & BIT(ACT_OP_GATE)) o->recompute += kt_gemm(c, p, 1, T, f / t, h);
        }
    }
}

void kt_moe_layer(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p,
                  const moe_layout *l, kt_part *o) {
    model_cfg attn = *m; /* the layer without its dense MLP: every MLP op is empty */
    attn.ffn_hidden = 0;
    kt_layer(&attn, c, p, o);
    const int from = o->n;
    const double a = (double)dtype_bytes(p->precision.activations);
    const double T = (double)plan_tokens_per_rank(p), t = (double)p->tp, h = (double)m->hidden;
    const double Td = (double)l->tokens, rows = (double)l->rows;
    const double up = m->mlp == MLP_SWIGLU ? 2 : 1;
    const double sw_f = m->mlp == MLP_SWIGLU ? 3 : 2, sw_b = m->mlp == MLP_SWIGLU ? 5 : 3;
    add_gemm(o, c, p, "moe_router", 1, Td, h, (double)m->experts, 1);
    const double fs = (double)(m->shared_experts * m->expert_ffn_hidden) / t;
    if (fs > 0) {
        add_gemm(o, c, p, "shared_up", 1, T, h, up * fs, 1);
        add_mem(o, c, "shared_act", sw_f * T * fs * a, sw_b * T * fs * a);
        add_gemm(o, c, p, "shared_down", 1, T, fs, h, 1);
    }
    /* permute before the dispatch and after the etp gather, un-permute and
     * weight by the probabilities after the combine: each reads and writes
     * the copies once (moe_utils.py permute / unpermute) */
    add_mem(o, c, "moe_permute", 4 * rows * h * a, 4 * rows * h * a);
    const double e = (double)l->experts_per_rank, fe = (double)(m->expert_ffn_hidden / l->etp);
    const double per = rows / e; /* rows per local expert, the busiest rank */
    add_gemm(o, c, p, "experts_up", e, per, h, up * fe, 1);
    add_mem(o, c, "experts_act", sw_f * rows * fe * a, sw_b * rows * fe * a);
    add_gemm(o, c, p, "experts_down", e, per, fe, h, 1);
    add_grad_accumulation(o, c, p, from);
    const double attn_recompute = o->recompute; /* kt_layer's: norms, attention ops */
    sum_part(o);
    if (p->recompute == RECOMPUTE_FULL) {
        o->recompute = o->fwd;
    } else {
        /* a policy that replays the activation replays the routed and the
         * shared experts' (Megatron-LM --recompute-modules moe_act;
         * moe_act_mlp_bytes drops their outputs) */
        o->recompute = attn_recompute;
        const uint32_t ops = act_replay_ops(m, p);
        if (ops & BIT(ACT_OP_ACT))
            for (int i = from; i < o->n; i++)
                if (!strcmp(o->op[i].name, "experts_act") || !strcmp(o->op[i].name, "shared_act"))
                    o->recompute += o->op[i].fwd;
        /* a policy replaying w1, w3 or w2 (op: w3) replays them in the
         * shared and routed experts (flops.c replay_flops), the fused up
         * GEMM in part */
        const double up_part = ((ops & BIT(ACT_OP_UP) ? 1 : 0) +
                                (up > 1 && (ops & BIT(ACT_OP_GATE)) ? 1 : 0)) / up;
        const int down = (ops & BIT(ACT_OP_DOWN)) != 0;
        for (int i = from; i < o->n && (up_part > 0 || down); i++) {
            const char *nm = o->op[i].name;
            if (!strcmp(nm, "experts_up") || !strcmp(nm, "shared_up"))
                o->recompute += up_part * o->op[i].fwd;
            if (down && (!strcmp(nm, "experts_down") || !strcmp(nm, "shared_down")))
                o->recompute += o->op[i].fwd;
        }
    }
}

void kt_first(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, kt_part *o) {
    memset(o, 0, sizeof *o);
    const double a = (double)dtype_bytes(p->precision.activations);
    const double T = (double)plan_tokens_per_rank(p), h = (double)m->hidden;
    /* gather rows and write them; a learned position table adds a read and an add */
    const double pos = m->position == POS_LEARNED ? 3 : 0;
    add_mem(o, c, "embedding", T * h * a * (2 + pos), T * h * a * (3 + pos));
    o->op[o->n - 1].weights = (double)model_vocab_rows(m, p->tp) * h; /* vocab-parallel table */
    add_grad_accumulation(o, c, p, 0);
    sum_part(o);
}

void kt_last(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, kt_part *o) {
    memset(o, 0, sizeof *o);
    const double a = (double)dtype_bytes(p->precision.activations);
    const double T = (double)plan_tokens_per_rank(p), t = (double)p->tp, h = (double)m->hidden;
    const double V = (double)model_vocab_rows(m, p->tp);
    const double hs = p->sp ? h / t : h;
    add_mem(o, c, "final_norm", T * hs * kt_norm_fwd_bytes(m, p, a),
            T * hs * kt_norm_bwd_bytes(m, p, a));
    add_gemm(o, c, p, "output_head", 1, T, h, V, 1);
    /* vocab-parallel cross-entropy: read the logits, write fp32 softmax (Megatron);
     * backward reads it and writes the logits' gradient */
    add_mem(o, c, "cross_entropy", T * V * (a + 4), T * V * (4 + a));
    add_grad_accumulation(o, c, p, 0);
    sum_part(o);
}

/* The multi-token-prediction modules on the last stage beyond their
 * transformer layer (which counts among the stage's MoE layers), per module
 * (DeepSeek-V3 §2.2; Megatron-Core multi_token_prediction.py at core_v0.12.0,
 * MultiTokenPredictionLayer and its block's forward): the shared embedding
 * of the shifted tokens, enorm and hnorm, eh_proj (column-parallel 2h -> h),
 * the module's final norm, the shared output head and its cross-entropy
 * (kt_last's three ops again). None without mtp_layers. */
void kt_mtp(const model_cfg *m, const cluster_cfg *c, const plan_cfg *p, kt_part *o) {
    memset(o, 0, sizeof *o);
    if (m->mtp_layers <= 0) return;
    const double a = (double)dtype_bytes(p->precision.activations);
    const double T = (double)plan_tokens_per_rank(p), t = (double)p->tp, h = (double)m->hidden;
    const double V = (double)model_vocab_rows(m, p->tp);
    const double hs = p->sp ? h / t : h;
    const double norm_f = kt_norm_fwd_bytes(m, p, a), norm_b = kt_norm_bwd_bytes(m, p, a);
    add_mem(o, c, "mtp_embedding", T * h * a * 2, T * h * a * 3);
    add_mem(o, c, "mtp_norms", 2 * T * hs * norm_f, 2 * T * hs * norm_b);
    add_gemm(o, c, p, "mtp_proj", 1, T, 2 * h, h / t, 1);
    add_mem(o, c, "mtp_final_norm", T * hs * norm_f, T * hs * norm_b);
    add_gemm(o, c, p, "mtp_output_head", 1, T, h, V, 1);
    add_mem(o, c, "mtp_cross_entropy", T * V * (a + 4), T * V * (4 + a));
    add_grad_accumulation(o, c, p, 0);
    sum_part(o);
    const double n = (double)m->mtp_layers;
    o->fwd *= n, o->bwd_in *= n, o->bwd_w *= n;
}

void kt_flash_attn_flops(double bh, double sq, double sk, double d, double *fwd, double *bwd) {
    *fwd = 2.0 * (2.0 * bh * sq * sk * d) * 0.5; /* QK^T and PV, the causal half of each */
    *bwd = 2.5 * *fwd;
}

/* Offloaded optimizer (ZeRO-Offload, Ren et al. 2021): gradients to the host
 * and parameters back over the host link, the step on the CPU at an assumed
 * 50 GB/s of host memory traffic (docs/time.md §2). */
#define KT_HOST_BYTES_PER_S 50e9

double kt_optimizer_bytes(const plan_precision *pr, plan_optimizer opt, int64_t elems) {
    const double k = states_per_param(opt), n = (double)elems;
    const double gb = (double)dtype_bytes(pr->grads), pb = (double)dtype_bytes(pr->params);
    const double mb = (double)dtype_bytes(pr->master), ob = (double)dtype_bytes(pr->optimizer);
    /* read grads, zero them; read+write master (or the params), states; write params */
    return n * (2 * gb + (mb > 0 ? 2 * mb + pb : 2 * pb) + 2 * k * ob);
}

double kt_optimizer(const cluster_cfg *c, const plan_cfg *p, int64_t elems) {
    const plan_precision *pr = &p->precision;
    const double bytes = kt_optimizer_bytes(pr, p->optimizer, elems);
    const double gb = (double)dtype_bytes(pr->grads), pb = (double)dtype_bytes(pr->params);
    if (p->offload_optimizer)
        return (double)elems * (gb + pb) / (c->host_bytes_per_s * c->eff.host) +
               bytes / KT_HOST_BYTES_PER_S;
    const double eff = c->eff.optimizer > 0 ? c->eff.optimizer : c->eff.hbm;
    return bytes / (c->hbm_bytes_per_s * eff);
}
