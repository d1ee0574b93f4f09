/* kern_elem.h — per-element formulas that a CPU kernel (kernels/cpu/) and its CUDA
 * twin (kernels/cuda/) both compute, written once so that the two backends round
 * the same way (docs/runtime.md §7; the cross-backend test, tests/test_backend_ops.c,
 * compares them). Plain C that nvcc also compiles: KERN_HD marks what runs on both
 * the host and the device. */
#ifndef PS_KERN_ELEM_H
#define PS_KERN_ELEM_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define KERN_HD static __host__ __device__ __forceinline__
#else
#define KERN_HD static inline
#endif

/* fp32 bits -> bf16, round to nearest even on the raw bits; a NaN keeps its sign and
 * top payload bits and gets the quiet bit (convert.c says why). */
KERN_HD uint16_t kern_bf16_round(uint32_t u) {
    /* both results, then a select (no branch: the CPU loop vectorises) */
    const uint32_t nan = (u >> 16) | 0x0040u, rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? nan : rounded);
}

/* SwiGLU (swiglu.c): out = silu(a) * b, silu(a) = a / (1 + e) with e = exp(-a) from the
 * caller's exp (the CPU's vectorisable kern_expf, the device's expf); backward with
 * s = sigmoid(a): da += dout * b * s * (1 + a (1 - s)), db += dout * silu(a). */
KERN_HD float kern_silu(float a, float e) { return a / (1.0f + e); }
KERN_HD float kern_swiglu_out(float a, float b, float e) { return kern_silu(a, e) * b; }
KERN_HD float kern_swiglu_da(float dout, float a, float b, float s) {
    return dout * b * s * (1.0f + a * (1.0f - s));
}
KERN_HD float kern_swiglu_db(float dout, float silu) { return dout * silu; }

/* RMSNorm (rmsnorm.c) given a row's sums: rstd = 1 / sqrt(ss / C + eps) from ss = sum x^2,
 * out = (x * rstd) * w; backward k = rstd^3 * dot / C from dot = sum w dout x, then
 * dx += rstd * (w dout) - x k. (dw's sum over rows is each kernel's own: the CUDA one
 * must keep nvcc from fusing its products.) */
KERN_HD float kern_rms_rstd(float ss, int64_t C, float eps) {
    return 1.0f / sqrtf(ss / (float)C + eps);
}
KERN_HD float kern_rms_out(float x, float r, float w) { return (x * r) * w; }
KERN_HD float kern_rms_k(float r, float dot, int64_t C) { return r * r * r * dot / (float)C; }
KERN_HD float kern_rms_dx(float r, float w, float dy, float x, float k) {
    return r * (w * dy) - x * k;
}

/* RoPE (rope.c): the angle of pair i at position pos, pos * theta^(-2i/D) in fp32 as
 * Hugging Face's Llama computes inv_freq; the pair (a, b) = (x[i], x[i + D/2]) turns
 * into (a c - b s, b c + a s) with c = cos, s = sin (sign -1: the backward). */
KERN_HD float kern_rope_angle(int64_t pos, int64_t i, int64_t D, float theta) {
    const float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)D);
    return (float)pos * inv_freq;
}

/* Two softmax partials merged by their log-sum-exps (attention_block.c): returns
 * lse' = log(exp(la) + exp(lb)) and the weights ca = exp(la - lse'), cb = exp(lb - lse')
 * of the two outputs; la, lb finite. */
KERN_HD float kern_lse_merge(float la, float lb, float *ca, float *cb) {
    const float mx = la > lb ? la : lb;
    const float lse = mx + logf(expf(la - mx) + expf(lb - mx));
    *ca = expf(la - lse), *cb = expf(lb - lse);
    return lse;
}

/* Linear quantization (quantize.c, kern_quant.h): the code range of a kind (0 absmax,
 * 1 zero-point) and width; round to nearest, ties to even, for |v| < 2^22 (adding and
 * subtracting 1.5 * 2^23); the code of x, clamp(round(x / s) + z, qmin, qmax), 0 when
 * s = 0; and a group's scale and zero point from its largest |x| (absmax) or its min
 * and max (zero-point; the range widened to hold 0). */
KERN_HD void kern_quant_range(int zeropoint, int bits, float *qmin, float *qmax) {
    if (!zeropoint) {
        *qmax = bits == 8 ? 127.0f : 7.0f;
        *qmin = -*qmax;
    } else {
        *qmin = bits == 8 ? -128.0f : 0.0f;
        *qmax = bits == 8 ? 127.0f : 15.0f;
    }
}
KERN_HD float kern_quant_round(float v) { return (v + 12582912.0f) - 12582912.0f; }
KERN_HD float kern_quant_code(float x, float s, float z, float qmin, float qmax) {
    float v = s > 0.0f ? x / s : 0.0f;
    v = v < qmin - z ? qmin - z : v; /* clamped first: the rounding needs |v| < 2^22 */
    v = v > qmax - z ? qmax - z : v;
    return kern_quant_round(v) + z;
}
KERN_HD void kern_quant_params(int zeropoint, int bits, float amax, float lo, float hi,
                               float *scale, float *zero) {
    float qmin, qmax;
    kern_quant_range(zeropoint, bits, &qmin, &qmax);
    if (!zeropoint) {
        *scale = amax / qmax;
        return;
    }
    const float levels = qmax - qmin;
    const float sc = hi / levels - lo / levels; /* hi - lo could overflow */
    float z = 0.0f;
    if (sc > 0.0f) {
        z = qmin - kern_quant_round(lo / sc); /* lo / sc in [-levels, 0] */
        z = z < qmin ? qmin : z;
        z = z > qmax ? qmax : z;
    }
    *scale = sc;
    *zero = z;
}

/* AdamW's scalars for one step, as torch.optim.AdamW computes them (adamw.c):
 * double, then cast to fp32 where PyTorch casts. */
typedef struct {
    float decay, w1, w2, b2, eps, bc2_sqrt, neg_step_size;
    int lerp_low;
} kern_adamw_k;

static inline kern_adamw_k kern_adamw_consts(float lr, float b1, float b2, float eps, float wd,
                                             int step) {
    const double bc1 = 1.0 - pow((double)b1, (double)step);
    const double bc2 = 1.0 - pow((double)b2, (double)step);
    const float w1 = (float)(1.0 - (double)b1); /* lerp weight */
    kern_adamw_k k;
    k.decay = (float)(1.0 - (double)lr * (double)wd);
    k.w1 = w1;
    k.w2 = (float)(1.0 - (double)b2);
    k.b2 = b2;
    k.eps = eps;
    k.bc2_sqrt = (float)sqrt(bc2);
    k.neg_step_size = (float)(-(double)lr / bc1);
    k.lerp_low = fabsf(w1) < 0.5f;
    return k;
}

/* One element of AdamW in PyTorch's fp32 order of operations (lerp's two forms,
 * ATen Lerp.h; addcdiv's p + value * m / denom). */
KERN_HD void kern_adamw_elem(float *p, float *m, float *v, float g, const kern_adamw_k *k) {
    const float pi = *p * k->decay;
    const float mi = k->lerp_low ? *m + k->w1 * (g - *m) : g - (g - *m) * (1.0f - k->w1);
    const float vi = *v * k->b2 + k->w2 * g * g;
    const float denom = sqrtf(vi) / k->bc2_sqrt + k->eps;
    *p = pi + k->neg_step_size * mi / denom;
    *m = mi;
    *v = vi;
}

#endif
