/* kern.h — compute kernels of the Llama-style decoder, CPU (C) versions.
 *
 * Conventions (llm.c style):
 * - fp32, row-major, contiguous. Shapes are plain named ints: N tokens
 *   (B * T), C channels, OC output channels, V vocabulary, H query heads,
 *   KVH key/value heads, D head dim.
 * - Linear weights use PyTorch's layout W[OC][C]: out = inp @ W^T.
 * - Every backward ACCUMULATES (+=) into its gradient outputs (input and
 *   weight gradients alike); callers zero them first. A NULL gradient output
 *   is skipped.
 * - Kernels allocate nothing: scratch comes from the caller, sized by the
 *   *_scratch_floats functions, so that the runtime's tracked allocator sees
 *   every byte.
 * - Multi-threaded with OpenMP where it pays (OMP_NUM_THREADS); GEMMs go to
 *   OpenBLAS (cblas), which the kernels set to one thread (process-wide) and
 *   call from inside their own OpenMP loops: one thread pool for everything.
 * - The one exception to "+=": kern_rope_bwd rotates its argument in place
 *   (the gradient passes through a rotation, so no second buffer is needed).
 * The formulas and their sources are in docs/runtime.md ("Kernels").
 */
#ifndef PS_KERN_H
#define PS_KERN_H

#include <stdint.h>

/* out[N][OC] = inp[N][C] @ w[OC][C]^T */
void kern_matmul_fwd(float *out, const float *inp, const float *w, int64_t N, int64_t C,
                     int64_t OC);
/* dinp[N][C] += dout @ w;  dw[OC][C] += dout^T @ inp */
void kern_matmul_bwd(float *dinp, float *dw, const float *dout, const float *inp,
                     const float *w, int64_t N, int64_t C, int64_t OC);

/* out[N][C] = wte[tokens[n]][C] */
void kern_embed_fwd(float *out, const int32_t *tokens, const float *wte, int64_t N, int64_t C);
/* dwte[tokens[n]] += dout[n] */
void kern_embed_bwd(float *dwte, const float *dout, const int32_t *tokens, int64_t N,
                    int64_t C);

/* RMSNorm (Zhang & Sennrich 2019): rstd[n] = 1/sqrt(mean(x^2) + eps),
 * out = x * rstd * w. rstd is saved for backward. */
void kern_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int64_t N,
                      int64_t C, float eps);
void kern_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp,
                      const float *w, const float *rstd, int64_t N, int64_t C);

/* Rotary position embedding (Su et al. 2021), "rotate half" pairing as in
 * Hugging Face Llama: for i < D/2 the pair is (x[i], x[i + D/2]), angle
 * pos * theta^(-2i/D), pos = t (0..T-1). x is [B][T][NH][D], rotated in place.
 * The backward rotates dx in place by the opposite angle. */
void kern_rope_fwd(float *x, int64_t B, int64_t T, int64_t NH, int64_t D, float theta);
void kern_rope_bwd(float *dx, int64_t B, int64_t T, int64_t NH, int64_t D, float theta);
/* The same with row t at position pos[t] (pos[T]; context parallelism's rows
 * are zig-zag chunks of the sequence). */
void kern_rope_pos_fwd(float *x, const int64_t *pos, int64_t B, int64_t T, int64_t NH, int64_t D,
                       float theta);
void kern_rope_pos_bwd(float *dx, const int64_t *pos, int64_t B, int64_t T, int64_t NH,
                       int64_t D, float theta);

/* Causal grouped-query attention, softmax scale 1/sqrt(D), memory-efficient:
 * only the output and the log-sum-exp of each score row are saved.
 * q, out: [B][T][H][D]; k, v: [B][T][KVH][D] (query head h reads kv head
 * h / (H / KVH); H must be a multiple of KVH); lse: [B][T][H] (natural log).
 * scratch: kern_attn_scratch_floats(T) floats, shared by forward and backward;
 * the size includes one copy per OpenMP thread (omp_get_max_threads() at the
 * time of the call), so size it after setting the thread count. */
int64_t kern_attn_scratch_floats(int64_t T);
void kern_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                   int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D, float *scratch);
/* dq += ..., dk += ..., dv += ... (dk, dv are kv-head shaped: summed over the
 * query heads of a group). */
void kern_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                   const float *k, const float *v, const float *out, const float *lse,
                   int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D, float *scratch);

/* One block of ring attention (context parallelism; attention_block.c):
 * Tq query rows against Tk key/value rows, query i seeing key j iff
 * kpos[j] <= qpos[i] (global positions, each ascending; per batch row the
 * same). q, out: [B][Tq][H][D]; k, v: [B][Tk][KVH][D]; lse: [B][Tq][H].
 * Forward merges the block into the running (out, lse) by the log-sum-exp
 * rule; start from out = 0, lse = -inf. Backward, given the final out and
 * lse: dq += ..., dk += ..., dv += ... (the block's share; NULL skipped).
 * scratch: kern_attn_block_scratch_floats(Tq, Tk, D) floats (per OpenMP
 * thread, as kern_attn_scratch_floats). */
int64_t kern_attn_block_scratch_floats(int64_t Tq, int64_t Tk, int64_t D);
void kern_attn_block_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                         const int64_t *qpos, const int64_t *kpos, int64_t B, int64_t Tq,
                         int64_t Tk, int64_t H, int64_t KVH, int64_t D, float *scratch);
void kern_attn_block_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                         const float *k, const float *v, const float *out, const float *lse,
                         const int64_t *qpos, const int64_t *kpos, int64_t B, int64_t Tq,
                         int64_t Tk, int64_t H, int64_t KVH, int64_t D, float *scratch);

/* SwiGLU (Shazeer 2020): out = silu(a) * b, silu(a) = a / (1 + exp(-a)). */
void kern_swiglu_fwd(float *out, const float *a, const float *b, int64_t n);
void kern_swiglu_bwd(float *da, float *db, const float *dout, const float *a, const float *b,
                     int64_t n);

/* Cross-entropy over V classes: probs = softmax(logits) (saved, fp32),
 * losses[n] = -log probs[n][targets[n]] (computed as logsumexp - logit, so
 * finite even where probs underflows). targets[n] in [0, V): no ignore index. */
void kern_xent_fwd(float *probs, float *losses, const float *logits, const int32_t *targets,
                   int64_t N, int64_t V);
/* dlogits[n] += scale * (probs[n] - onehot(targets[n])); scale = dloss/dlosses[n]
 * (1/tokens of the global batch for a mean loss). */
void kern_xent_bwd(float *dlogits, const float *probs, const int32_t *targets, float scale,
                   int64_t N, int64_t V);

/* out = a + b (the residual stream) */
void kern_add(float *out, const float *a, const float *b, int64_t n);

/* AdamW (Loshchilov & Hutter 2019) exactly as torch.optim.AdamW computes it:
 * p -= lr*wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * p -= (lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
 * step counts from 1. Scalars in double, elements in fp32 in PyTorch's order
 * (m by lerp); the hyperparameters being fp32, 1 - b2 is that of (float)b2. */
void kern_adamw(float *p, float *m, float *v, const float *g, int64_t n, float lr, float b1,
                float b2, float eps, float wd, int step);

/* bf16 <-> fp32. To bf16 rounds to nearest even (NaN stays NaN, made quiet;
 * values that round past the largest bf16, FLT_MAX included, become inf). */
void kern_f32_to_bf16(uint16_t *out, const float *in, int64_t n);
void kern_bf16_to_f32(float *out, const uint16_t *in, int64_t n);

/* ---- mixture of experts (router.c, moe_aux.c, moe_permute.c) ----------------
 * E experts, K chosen per token (top-k), H channels, cap rows per expert. */
/* From router logits [N][E] (kern_matmul_fwd of x and W_r[E][C]): probs =
 * softmax (saved), idx[N][K] the K most probable experts in descending order
 * (ties: the lower index), gate[N][K] their probabilities renormalised to sum 1. */
void kern_router_fwd(float *probs, int32_t *idx, float *gate, const float *logits, int64_t N,
                     int64_t E, int64_t K);
/* dlogits += d/dlogits of dgate[N][K] (NULL: none) and dprobs[N][E] (a gradient on
 * probs, the load-balancing loss's; NULL: none). */
void kern_router_bwd(float *dlogits, const float *dgate, const float *dprobs, const float *probs,
                     const int32_t *idx, const float *gate, int64_t N, int64_t E, int64_t K);
/* Switch load-balancing loss alpha * E * sum_i f_i P_i (Fedus et al. 2021 eq. 4),
 * f_i = count[i] / (N K), P_i = mean_n probs[n][i]; the backward adds
 * scale * dloss/dprobs (count is constant). */
double kern_moe_aux_fwd(const float *probs, const int64_t *count, int64_t N, int64_t E,
                        int64_t K, float alpha);
void kern_moe_aux_bwd(float *dprobs, const int64_t *count, float scale, int64_t N, int64_t E,
                      int64_t K, float alpha);
/* Fixed-capacity dispatch: choice (n, j) gets row slot[n*K + j] = e*cap + its rank among
 * expert e's choices in token order, or -1 past cap (dropped); count[E] = choices per
 * expert before dropping. */
void kern_moe_slots(int32_t *slot, int64_t *count, const int32_t *idx, int64_t N, int64_t K,
                    int64_t E, int64_t cap);
/* buf[rows][H] = 0, then buf[slot[n][j]] = x[n]; backward dx[n] += sum_j dbuf[slot[n][j]]. */
void kern_moe_permute_fwd(float *buf, const float *x, const int32_t *slot, int64_t N, int64_t K,
                          int64_t H, int64_t rows);
void kern_moe_permute_bwd(float *dx, const float *dbuf, const int32_t *slot, int64_t N,
                          int64_t K, int64_t H);
/* out[n] = sum_j gate[n][j] buf[slot[n][j]] (writes out); backward dbuf[slot] += gate dout[n],
 * dgate[n][j] += dout[n] . buf[slot[n][j]] (NULL outputs skipped). */
void kern_moe_unpermute_fwd(float *out, const float *buf, const float *gate, const int32_t *slot,
                            int64_t N, int64_t K, int64_t H);
void kern_moe_unpermute_bwd(float *dbuf, float *dgate, const float *dout, const float *buf,
                            const float *gate, const int32_t *slot, int64_t N, int64_t K,
                            int64_t H);

#endif
