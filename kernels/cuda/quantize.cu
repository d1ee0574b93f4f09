/* quantize.cu — the CUDA twin of kernels/cpu/quantize.c: absmax or zero-point codes per
 * tensor, row, column or block, 8 or 4 bits, and back. The group statistics (max |x|, or
 * min and max with 0 in the range) are order-free, and the scale, zero point and code of
 * every element come from kern_elem.h's formulas (kern_quant_params, kern_quant_code), the
 * CPU's own: the codes, scales and dequantized values are the CPU's bit for bit (the
 * cross-backend test's tolerance is 0). Pointers are on the device; the spec is read on the
 * host. One block per group for the statistics (a thread per column for QG_COL), then a
 * thread per element (per byte at 4 bits). */
#include "kcu_launch.h"
#include "kern_cuda.h"
#include "kern_elem.h"

/* Statistics of one contiguous group (block g of `len` elements from x + g * len) into
 * scale[g] / zero[g] as parameters. */
static __global__ void fit_runs(float *scale, float *zero, const float *x, int64_t len, int zp,
                                int bits) {
    const float *xg = x + (int64_t)blockIdx.x * len;
    float a = 0.0f, lo = 0.0f, hi = 0.0f;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
        const float v = xg[i];
        a = fmaxf(a, fabsf(v)), lo = fminf(lo, v), hi = fmaxf(hi, v);
    }
    a = kcu_block_max(a), hi = kcu_block_max(hi), lo = -kcu_block_max(-lo);
    if (threadIdx.x == 0)
        kern_quant_params(zp, bits, a, lo, hi, &scale[blockIdx.x], zp ? &zero[blockIdx.x] : NULL);
}

/* Per column: a thread walks its column. */
static __global__ void fit_cols(float *scale, float *zero, const float *x, int64_t R, int64_t C,
                                int zp, int bits) {
    KCU_FOR(c, C) {
        float a = 0.0f, lo = 0.0f, hi = 0.0f;
        for (int64_t r = 0; r < R; r++) {
            const float v = x[r * C + c];
            a = fmaxf(a, fabsf(v)), lo = fminf(lo, v), hi = fmaxf(hi, v);
        }
        kern_quant_params(zp, bits, a, lo, hi, &scale[c], zp ? &zero[c] : NULL);
    }
}

struct qshape {
    int64_t R, C, block;
    int gran, zp, bits;
};

static __device__ __forceinline__ int64_t group_of(const qshape &s, int64_t i) {
    const int64_t r = i / s.C, c = i % s.C;
    switch (s.gran) {
    case QG_ROW: return r;
    case QG_COL: return c;
    case QG_BLOCK: return r * (s.C / s.block) + c / s.block;
    default: return 0;
    }
}

static __device__ __forceinline__ float code_of(const qshape &s, const float *x,
                                                const float *scale, const float *zero, int64_t i,
                                                float qmin, float qmax) {
    const int64_t g = group_of(s, i);
    return kern_quant_code(x[i], scale[g], s.zp ? zero[g] : 0.0f, qmin, qmax);
}

static __global__ void encode8(int8_t *q, const float *x, const float *scale, const float *zero,
                               qshape s, float qmin, float qmax) {
    KCU_FOR(i, s.R * s.C) q[i] = (int8_t)code_of(s, x, scale, zero, i, qmin, qmax);
}

/* Byte j holds elements 2j (low nibble) and 2j + 1 (high; 0 past the end). */
static __global__ void encode4(uint8_t *q, const float *x, const float *scale, const float *zero,
                               qshape s, float qmin, float qmax) {
    const int64_t n = s.R * s.C;
    KCU_FOR(j, (n + 1) / 2) {
        const int lo = (int)code_of(s, x, scale, zero, 2 * j, qmin, qmax) & 0xF;
        const int hi = 2 * j + 1 < n ? (int)code_of(s, x, scale, zero, 2 * j + 1, qmin, qmax) & 0xF : 0;
        q[j] = (uint8_t)(lo | hi << 4);
    }
}

static __global__ void decode(float *x, const void *q, const float *scale, const float *zero,
                              qshape s) {
    const int sgn = s.zp ? 0 : 8; /* (nib ^ 8) - 8 sign-extends a two's complement nibble */
    KCU_FOR(i, s.R * s.C) {
        const int64_t g = group_of(s, i);
        const int code = s.bits == 8 ? ((const int8_t *)q)[i]
                                     : (((((const uint8_t *)q)[i / 2] >> (i % 2 ? 4 : 0)) & 0xF) ^ sgn) - sgn;
        x[i] = ((float)code - (s.zp ? zero[g] : 0.0f)) * scale[g];
    }
}

static qshape shape_of(const quant_spec *s, int64_t R, int64_t C) {
    return qshape{R, C, s->block, (int)s->gran, s->kind == QK_ZEROPOINT, s->bits};
}

extern "C" void kcu_quantize(void *q, float *scale, float *zero, const float *x, int64_t R,
                             int64_t C, const quant_spec *s) {
    if (R <= 0 || C <= 0) return;
    const qshape sh = shape_of(s, R, C);
    if (s->gran == QG_COL)
        fit_cols<<<kcu_blocks(C), KCU_THREADS>>>(scale, zero, x, R, C, sh.zp, s->bits);
    else {
        const int64_t len = s->gran == QG_TENSOR ? R * C : s->gran == QG_ROW ? C : s->block;
        fit_runs<<<(unsigned)(R * C / len), KCU_THREADS>>>(scale, zero, x, len, sh.zp, s->bits);
    }
    float qmin, qmax;
    kern_quant_range(sh.zp, s->bits, &qmin, &qmax);
    if (s->bits == 8)
        encode8<<<kcu_blocks(R * C), KCU_THREADS>>>((int8_t *)q, x, scale, zero, sh, qmin, qmax);
    else
        encode4<<<kcu_blocks((R * C + 1) / 2), KCU_THREADS>>>((uint8_t *)q, x, scale, zero, sh,
                                                                qmin, qmax);
}

extern "C" void kcu_dequantize(float *x, const void *q, const float *scale, const float *zero,
                               int64_t R, int64_t C, const quant_spec *s) {
    if (R > 0 && C > 0) decode<<<kcu_blocks(R * C), KCU_THREADS>>>(x, q, scale, zero, shape_of(s, R, C));
}
