/* attention.cu — the CUDA twins of kernels/cpu/attention.c (causal GQA attention saving
 * out and the log-sum-exp) and attention_block.c (one ring-attention block: query i sees
 * key j iff kpos[j] <= qpos[i], merged into the running out / lse), the same formulas:
 *   S = scale Q K^T (scale 1/sqrt(D)), lse = log sum exp S, O = exp(S - lse) V;
 *   backward with P = exp(S - lse): dV += P^T dO, dS = P o (dO V^T - Drow),
 *   dQ += scale dS K, dK += scale dS^T Q, Drow = dO . O;
 *   a block's (O_b, lse_b) merged by kern_lse_merge (kern_elem.h).
 * One block of threads per (query row, head, batch row), one thread per channel of the
 * head (D <= 1024, rounded up to a warp), walking the keys the row sees with the online
 * softmax (Milakov & Gimelshein 2018) in the forward; the backward adds each key's dK and
 * dV with atomicAdd (the query heads of a group and all query rows add into the same
 * rows). This is the correctness twin that the cross-backend test holds to the CPU
 * (sums in another order: 1e-5); it reduces one score at a time, so it is slow — the
 * GPU's fast path (tiled, FlashAttention-style) is separate work. */
#include "kcu_launch.h"
#include "kern_cuda.h"
#include "kern_elem.h"

/* The position of row i: pos[i], or i itself (the causal kernel). */
static __device__ __forceinline__ int64_t at(const int64_t *pos, int64_t i) {
    return pos ? pos[i] : i;
}

static __global__ void attn_fwd_kernel(float *out, float *lse, const float *q, const float *k,
                                       const float *v, const int64_t *qpos, const int64_t *kpos,
                                       int64_t Tq, int64_t Tk, int64_t H, int64_t KVH, int64_t D,
                                       int merge) {
    const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, g = h / (H / KVH);
    const int d = threadIdx.x;
    const bool own = d < D;
    const float scale = 1.0f / sqrtf((float)D);
    const int64_t qo = ((b * Tq + i) * H + h) * D, qi = at(qpos, i);
    const float qd = own ? q[qo + d] : 0.0f;
    float m = -INFINITY, l = 0.0f, acc = 0.0f;
    /* positions ascend: the keys a row sees are a prefix of the block */
    for (int64_t j = 0; j < Tk && at(kpos, j) <= qi; j++) {
        const int64_t kv = ((b * Tk + j) * KVH + g) * D;
        const float s = kcu_block_sum(own ? qd * k[kv + d] : 0.0f) * scale;
        const float mn = fmaxf(m, s), corr = expf(m - mn), e = expf(s - mn);
        l = l * corr + e;
        acc = acc * corr + e * (own ? v[kv + d] : 0.0f);
        m = mn;
    }
    float *o = out + qo, *ls = lse + (b * Tq + i) * H + h;
    const float la = merge ? *ls : -INFINITY; /* the running state, read by every thread */
    __syncthreads();
    if (l == 0.0f) { /* no key seen: a block leaves the state, the causal kernel never */
        if (!merge && own) o[d] = 0.0f;
        if (!merge && d == 0) *ls = -INFINITY;
        return;
    }
    const float lb = m + logf(l), ob = acc / l;
    if (la == -INFINITY) {
        if (own) o[d] = ob;
        if (d == 0) *ls = lb;
        return;
    }
    float ca, cb;
    const float nl = kern_lse_merge(la, lb, &ca, &cb);
    if (own) o[d] = ca * o[d] + cb * ob;
    if (d == 0) *ls = nl;
}

static __global__ void attn_bwd_kernel(float *dq, float *dk, float *dv, const float *dout,
                                       const float *q, const float *k, const float *v,
                                       const float *out, const float *lse, const int64_t *qpos,
                                       const int64_t *kpos, int64_t Tq, int64_t Tk, int64_t H,
                                       int64_t KVH, int64_t D) {
    const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, g = h / (H / KVH);
    const int d = threadIdx.x;
    const bool own = d < D;
    const float scale = 1.0f / sqrtf((float)D);
    const int64_t qo = ((b * Tq + i) * H + h) * D, qi = at(qpos, i);
    const float qd = own ? q[qo + d] : 0.0f, dod = own ? dout[qo + d] : 0.0f;
    const float drow = kcu_block_sum(own ? dod * out[qo + d] : 0.0f);
    const float L = lse[(b * Tq + i) * H + h];
    float dqd = 0.0f;
    for (int64_t j = 0; j < Tk && at(kpos, j) <= qi; j++) {
        const int64_t kv = ((b * Tk + j) * KVH + g) * D;
        const float s = kcu_block_sum(own ? qd * k[kv + d] : 0.0f) * scale;
        const float p = expf(s - L);
        const float ds = p * (kcu_block_sum(own ? dod * v[kv + d] : 0.0f) - drow);
        if (!own) continue;
        if (dv) atomicAdd(&dv[kv + d], p * dod);
        if (dk) atomicAdd(&dk[kv + d], scale * ds * qd);
        dqd += ds * k[kv + d];
    }
    if (own && dq) dq[qo + d] += scale * dqd;
}

static dim3 grid(int64_t B, int64_t Tq, int64_t H) {
    return dim3((unsigned)Tq, (unsigned)H, (unsigned)B);
}

static unsigned threads(int64_t D) { return (unsigned)((D + 31) / 32 * 32); }

static bool shape_ok(int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t KVH, int64_t D) {
    return B > 0 && Tq > 0 && Tk > 0 && H > 0 && KVH > 0 && H % KVH == 0 && D > 0 && D <= 1024 &&
           H <= 65535 && B <= 65535;
}

/* (scratch: the CPU kernels' per-thread score rows; unused here, the same signature) */
extern "C" void kcu_attn_fwd(float *out, float *lse, const float *q, const float *k,
                             const float *v, int64_t B, int64_t T, int64_t H, int64_t KVH,
                             int64_t D, float *scratch) {
    (void)scratch;
    if (shape_ok(B, T, T, H, KVH, D))
        attn_fwd_kernel<<<grid(B, T, H), threads(D)>>>(out, lse, q, k, v, NULL, NULL, T, T, H,
                                                        KVH, D, 0);
}

extern "C" void kcu_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                             const float *k, const float *v, const float *out, const float *lse,
                             int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D,
                             float *scratch) {
    (void)scratch;
    if (shape_ok(B, T, T, H, KVH, D))
        attn_bwd_kernel<<<grid(B, T, H), threads(D)>>>(dq, dk, dv, dout, q, k, v, out, lse, NULL,
                                                        NULL, T, T, H, KVH, D);
}

extern "C" void kcu_attn_block_fwd(float *out, float *lse, const float *q, const float *k,
                                   const float *v, const int64_t *qpos, const int64_t *kpos,
                                   int64_t B, int64_t Tq, int64_t Tk, int64_t H, int64_t KVH,
                                   int64_t D, float *scratch) {
    (void)scratch;
    if (shape_ok(B, Tq, Tk, H, KVH, D))
        attn_fwd_kernel<<<grid(B, Tq, H), threads(D)>>>(out, lse, q, k, v, qpos, kpos, Tq, Tk, H,
                                                         KVH, D, 1);
}

extern "C" void kcu_attn_block_bwd(float *dq, float *dk, float *dv, const float *dout,
                                   const float *q, const float *k, const float *v,
                                   const float *out, const float *lse, const int64_t *qpos,
                                   const int64_t *kpos, int64_t B, int64_t Tq, int64_t Tk,
                                   int64_t H, int64_t KVH, int64_t D, float *scratch) {
    (void)scratch;
    if (shape_ok(B, Tq, Tk, H, KVH, D))
        attn_bwd_kernel<<<grid(B, Tq, H), threads(D)>>>(dq, dk, dv, dout, q, k, v, out, lse, qpos,
                                                         kpos, Tq, Tk, H, KVH, D);
}
