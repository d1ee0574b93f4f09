/* quantize.c — linear quantization and dequantization of an R x C fp32 matrix,
 * absmax (symmetric) or zero-point (asymmetric), per tensor, row, column or
 * block of a row, 8 or 4 bits (kern_quant.h).
 *
 * Formulas (docs/quantization.md, "Kernels"; LLM.int8() §2, arXiv 2208.07339;
 * ggml's Q8_0 / Q4_0 for the blocks):
 *   absmax:     s = max|x| / qmax (qmax = 127 or 7), q = clamp(round(x / s), -qmax, qmax),
 *               x^ = q s;
 *   zero-point: lo = min(min x, 0), hi = max(max x, 0), s = (hi - lo) / (qmax - qmin),
 *               z = qmin - round(lo / s) (an integer in [qmin, qmax], held in a float),
 *               q = clamp(round(x / s) + z, qmin, qmax), x^ = (q - z) s,
 *               with [qmin, qmax] = [-128, 127] (8 bits) or [0, 15] (4 bits).
 * round is to nearest, ties to even (torch.round's and CUDA __float2int_rn's rule;
 * ggml's scalar reference rounds ties away, its AVX path to even). Every element
 * is then within s/2 of its group's grid (plus the float rounding of x / s and
 * of q s, a few ulp), and a group of zeros gets s = 0 and dequantizes to 0.
 * The zero-point range always holds 0 (as PyTorch's observers do): z is then an
 * exact small integer, zero is exactly representable, and a constant group
 * round-trips exactly; a group far from 0 pays a coarser s.
 * 4 bits: element i of the row-major matrix goes in byte i/2, the low nibble for
 * even i (absmax codes two's complement, zero-point codes unsigned).
 * Why this way: one pass for the group statistics, one to encode; rows split
 * across OpenMP threads (whole bytes per thread for 4 bits), inner loops simd
 * with rounding by adding and subtracting 1.5 * 2^23 (exact for |v| < 2^22,
 * vectorises, no libm call). The kernel allocates nothing: per-column statistics
 * are gathered in the scale / zero arrays themselves.
 */
#include <math.h>
#include <string.h>

#include "kern_elem.h"
#include "kern_math.h"
#include "kern_quant.h"

/* Elements below which a loop stays on one thread. */
#define QUANT_PAR_MIN (1 << 16)

const char *kern_quant_check(const quant_spec *s, int64_t R, int64_t C) {
    if (s->kind != QK_ABSMAX && s->kind != QK_ZEROPOINT) return "unknown quantization kind";
    if (s->gran < QG_TENSOR || s->gran > QG_BLOCK) return "unknown quantization granularity";
    if (s->bits != 8 && s->bits != 4) return "bits must be 8 or 4";
    if (R < 0 || C < 0) return "negative matrix dimension";
    if (s->gran == QG_BLOCK && (s->block <= 0 || C % s->block != 0))
        return "block must be positive and divide the row length C";
    return NULL;
}

int64_t kern_quant_groups(const quant_spec *s, int64_t R, int64_t C) {
    if (kern_quant_check(s, R, C)) return -1;
    switch (s->gran) {
    case QG_TENSOR:
        return 1;
    case QG_ROW:
        return R;
    case QG_COL:
        return C;
    case QG_BLOCK:
        return R * (C / s->block);
    }
    return -1;
}

int64_t kern_quant_bytes(const quant_spec *s, int64_t R, int64_t C) {
    if (kern_quant_check(s, R, C)) return -1;
    return s->bits == 8 ? R * C : (R * C + 1) / 2;
}

int64_t kern_quant_group_of(const quant_spec *s, int64_t R, int64_t C, int64_t r, int64_t c) {
    (void)R;
    switch (s->gran) {
    case QG_TENSOR:
        return 0;
    case QG_ROW:
        return r;
    case QG_COL:
        return c;
    case QG_BLOCK:
        return r * (C / s->block) + c / s->block;
    }
    return -1;
}

/* The code range of a spec, and the element formulas (kern_elem.h: the CUDA twin's too). */
static void quant_range(const quant_spec *s, float *qmin, float *qmax) {
    kern_quant_range(s->kind == QK_ZEROPOINT, s->bits, qmin, qmax);
}

/* Group statistics over n elements: largest |x| (absmax) or min and max. */
static void quant_stats(const float *x, int64_t n, float *amax, float *mn, float *mx) {
    float a = 0.0f, lo = 0.0f, hi = 0.0f; /* lo, hi start at 0: the range holds 0 */
#pragma omp simd reduction(max : a, hi) reduction(min : lo)
    for (int64_t i = 0; i < n; i++) {
        const float v = x[i], av = fabsf(v);
        a = av > a ? av : a;
        hi = v > hi ? v : hi;
        lo = v < lo ? v : lo;
    }
    *amax = a;
    *mn = lo;
    *mx = hi;
}

/* Scale and zero point of a group from its statistics. */
static void quant_params(const quant_spec *s, float amax, float lo, float hi, float *scale,
                         float *zero) {
    kern_quant_params(s->kind == QK_ZEROPOINT, s->bits, amax, lo, hi, scale, zero);
}

/* Statistics of every group into scale (amax or max) and zero (min), then the
 * parameters in place. */
static void quant_fit(float *scale, float *zero, const float *x, int64_t R, int64_t C,
                      const quant_spec *s) {
    const int zp = s->kind == QK_ZEROPOINT;
    if (s->gran == QG_COL) {
        for (int64_t c = 0; c < C; c++) {
            scale[c] = 0.0f;
            if (zp) zero[c] = 0.0f;
        }
        for (int64_t r = 0; r < R; r++) {
            const float *xr = x + r * C;
            if (zp) {
#pragma omp simd
                for (int64_t c = 0; c < C; c++) {
                    scale[c] = xr[c] > scale[c] ? xr[c] : scale[c];
                    zero[c] = xr[c] < zero[c] ? xr[c] : zero[c];
                }
            } else {
#pragma omp simd
                for (int64_t c = 0; c < C; c++) {
                    const float av = fabsf(xr[c]);
                    scale[c] = av > scale[c] ? av : scale[c];
                }
            }
        }
        for (int64_t c = 0; c < C; c++)
            quant_params(s, scale[c], zp ? zero[c] : 0.0f, scale[c], &scale[c],
                         zp ? &zero[c] : NULL);
        return;
    }
    /* tensor, row, block: each group is a contiguous run of `len` elements */
    const int64_t len = s->gran == QG_TENSOR ? R * C : s->gran == QG_ROW ? C : s->block;
    const int64_t groups = kern_quant_groups(s, R, C);
    if (s->gran == QG_TENSOR) {
        float a = 0.0f, lo = 0.0f, hi = 0.0f;
#pragma omp parallel for reduction(max : a, hi) reduction(min : lo) if (R * C >= QUANT_PAR_MIN)
        for (int64_t r = 0; r < R; r++) {
            float ra, rlo, rhi;
            quant_stats(x + r * C, C, &ra, &rlo, &rhi);
            a = ra > a ? ra : a;
            lo = rlo < lo ? rlo : lo;
            hi = rhi > hi ? rhi : hi;
        }
        quant_params(s, a, lo, hi, scale, zp ? zero : NULL);
        return;
    }
#pragma omp parallel for if (R * C >= QUANT_PAR_MIN)
    for (int64_t g = 0; g < groups; g++) {
        float a, lo, hi;
        quant_stats(x + g * len, len, &a, &lo, &hi);
        quant_params(s, a, lo, hi, &scale[g], zp ? &zero[g] : NULL);
    }
}

/* Codes of x[0..n) with one group's (s, z) (sstride 0) or one group per element
 * (sstride 1, per column), as floats into out. */
static inline void quant_encode_run(float *out, const float *x, int64_t n, const float *sc,
                                    const float *zr, int64_t sstride, float qmin, float qmax) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        out[i] = kern_quant_code(x[i], sc[i * sstride], zr ? zr[i * sstride] : 0.0f, qmin, qmax);
}

/* The scale (and zero) pointers and stride of row r, columns [c0, c1) all in one
 * group or (per column) one each. */
static void quant_row_groups(const quant_spec *s, int64_t C, int64_t r, int64_t c0, int64_t *c1,
                             int64_t *g, int64_t *stride) {
    *stride = 0;
    *g = 0;
    *c1 = C;
    switch (s->gran) {
    case QG_TENSOR:
        break;
    case QG_ROW:
        *g = r;
        break;
    case QG_COL:
        *g = c0;
        *stride = 1;
        break;
    case QG_BLOCK:
        *g = r * (C / s->block) + c0 / s->block;
        *c1 = c0 + s->block;
        break;
    }
}

void kern_quantize(void *q, float *scale, float *zero, const float *x, int64_t R, int64_t C,
                   const quant_spec *s) {
    if (R <= 0 || C <= 0) return;
    const int zp = s->kind == QK_ZEROPOINT;
    float qmin, qmax;
    quant_range(s, &qmin, &qmax);
    quant_fit(scale, zero, x, R, C, s);
    int8_t *q8 = q;
    uint8_t *q4 = q;
    if (s->bits == 4) memset(q4, 0, (size_t)((R * C + 1) / 2));
    /* 4 bits with C odd: a byte may straddle two rows, so one thread */
    const int par = R * C >= QUANT_PAR_MIN && (s->bits == 8 || C % 2 == 0);
#pragma omp parallel for if (par)
    for (int64_t r = 0; r < R; r++) {
        float codes[256];
        for (int64_t c0 = 0; c0 < C;) {
            int64_t c1, g, stride;
            quant_row_groups(s, C, r, c0, &c1, &g, &stride);
            for (int64_t b0 = c0; b0 < c1; b0 += 256) { /* in chunks through `codes` */
                const int64_t n = c1 - b0 < 256 ? c1 - b0 : 256;
                const int64_t gb = g + (b0 - c0) * stride;
                quant_encode_run(codes, x + r * C + b0, n, scale + gb, zp ? zero + gb : NULL,
                                 stride, qmin, qmax);
                const int64_t i0 = r * C + b0;
                if (s->bits == 8) {
#pragma omp simd
                    for (int64_t i = 0; i < n; i++)
                        q8[i0 + i] = (int8_t)codes[i];
                } else if (i0 % 2 == 0 && n % 2 == 0) { /* whole bytes */
                    uint8_t *qb = q4 + i0 / 2;
#pragma omp simd
                    for (int64_t j = 0; j < n / 2; j++)
                        qb[j] = (uint8_t)(((int)codes[2 * j] & 0xF) |
                                          (((int)codes[2 * j + 1] & 0xF) << 4));
                } else {
                    for (int64_t i = 0; i < n; i++) {
                        const uint8_t nib = (uint8_t)((int)codes[i] & 0xF);
                        q4[(i0 + i) / 2] |= (uint8_t)((i0 + i) % 2 ? nib << 4 : nib);
                    }
                }
            }
            c0 = c1;
        }
    }
}

void kern_dequantize(float *x, const void *q, const float *scale, const float *zero, int64_t R,
                     int64_t C, const quant_spec *s) {
    if (R <= 0 || C <= 0) return;
    const int zp = s->kind == QK_ZEROPOINT;
    const int8_t *q8 = q;
    const uint8_t *q4 = q;
    const int sgn = zp ? 0 : 8; /* (nib ^ 8) - 8 sign-extends a two's complement nibble */
#pragma omp parallel for if (R * C >= QUANT_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        for (int64_t c0 = 0; c0 < C;) {
            int64_t c1, g, stride;
            quant_row_groups(s, C, r, c0, &c1, &g, &stride);
            const float *sc = scale + g, *zr = zp ? zero + g : NULL;
            const int64_t i0 = r * C + c0, n = c1 - c0;
            float *xr = x + i0;
            if (s->bits == 8) {
#pragma omp simd
                for (int64_t i = 0; i < n; i++)
                    xr[i] = ((float)q8[i0 + i] - (zr ? zr[i * stride] : 0.0f)) * sc[i * stride];
            } else if (stride == 0 && i0 % 2 == 0 && n % 2 == 0) { /* whole bytes, one group */
                const uint8_t *qb = q4 + i0 / 2;
                const float s0 = sc[0], z0 = zr ? zr[0] : 0.0f;
#pragma omp simd
                for (int64_t j = 0; j < n / 2; j++) {
                    xr[2 * j] = ((float)(((qb[j] & 0xF) ^ sgn) - sgn) - z0) * s0;
                    xr[2 * j + 1] = ((float)(((qb[j] >> 4) ^ sgn) - sgn) - z0) * s0;
                }
            } else {
                for (int64_t i = 0; i < n; i++) {
                    const int64_t e = i0 + i;
                    const int code = (((q4[e / 2] >> (e % 2 ? 4 : 0)) & 0xF) ^ sgn) - sgn;
                    xr[i] = ((float)code - (zr ? zr[i * stride] : 0.0f)) * sc[i * stride];
                }
            }
            c0 = c1;
        }
    }
}
