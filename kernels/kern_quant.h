/* kern_quant.h — linear quantization kernels (CPU C versions; a CUDA twin will
 * share each signature). The formulas, their sources (Dettmers et al. 2022,
 * "LLM.int8()", §3; ggml's Q8_0 / Q4_0 block formats) and the error bounds are
 * in docs/quantization.md ("Kernels").
 *
 * Matrices are row-major R x C (a linear weight is W[OC][C] as in kern.h, so a
 * "row" of W is one output feature and a "column" one input feature; LLM.int8()
 * writes W as [C][OC], so its "columns of W" are our rows). One file per op:
 * quantize.c (quantize / dequantize, every granularity), matmul_int8.c (int8 x
 * int8 -> int32 and the dequantising linear), int8_decomp.c (LLM.int8()'s
 * mixed decomposition), quant_error.c (reconstruction error).
 */
#ifndef PS_KERN_QUANT_H
#define PS_KERN_QUANT_H

#include <stdint.h>

typedef enum {
    QK_ABSMAX,   /* symmetric: q = round(x / s), s = max|x| / qmax (qmax 127 or 7) */
    QK_ZEROPOINT /* asymmetric: q = round(x / s) + z, s = (max - min) / (2^bits - 1), the
                  * range [min, max] widened to hold 0, so z is an integer code */
} quant_kind;

typedef enum {
    QG_TENSOR, /* one scale for the whole matrix */
    QG_ROW,    /* one per row (R scales) */
    QG_COL,    /* one per column (C scales) */
    QG_BLOCK   /* one per `block` consecutive elements of a row (R * C / block scales) */
} quant_gran;

typedef struct {
    quant_kind kind;
    quant_gran gran;
    int bits;      /* 8 or 4 (4: two per byte, element 2i in the low nibble of byte i) */
    int64_t block; /* QG_BLOCK: 32, 64 or 128; must divide C */
} quant_spec;

/* The largest inner dimension of kern_matmul_i8_i32: C * 128 * 128 < 2^31, so the
 * int32 accumulator cannot overflow on any int8 input. */
#define KERN_I8_C_MAX ((int64_t)131071)

/* NULL when s is valid for an R x C matrix, else what is wrong (a static string):
 * kind or granularity unknown, bits not 8 or 4, or a block that is not positive or
 * does not divide C. The functions below expect a valid spec (groups and bytes
 * return -1 for an invalid one). */
const char *kern_quant_check(const quant_spec *s, int64_t R, int64_t C);
/* Scale entries (and zero points, for QK_ZEROPOINT) of an R x C matrix. */
int64_t kern_quant_groups(const quant_spec *s, int64_t R, int64_t C);
/* Bytes of the quantized values of an R x C matrix (R * C, or ceil(R * C / 2) for 4 bits). */
int64_t kern_quant_bytes(const quant_spec *s, int64_t R, int64_t C);
/* The group (scale index) of element (r, c). */
int64_t kern_quant_group_of(const quant_spec *s, int64_t R, int64_t C, int64_t r, int64_t c);

/* q: kern_quant_bytes bytes (int8, or packed 4-bit two's complement for absmax /
 * unsigned 0..15 for zero-point; 8-bit codes are int8 for both kinds, zero-point
 * codes in [-128, 127]; docs/quantization.md); round to nearest, ties to even; scale, zero:
 * kern_quant_groups floats each (zero: NULL for QK_ABSMAX; zero points are integers
 * held in floats). A group of zeros gets scale 0 and dequantizes to 0. Every element
 * round-trips within scale / 2 of its group. */
void kern_quantize(void *q, float *scale, float *zero, const float *x, int64_t R, int64_t C,
                   const quant_spec *s);
void kern_dequantize(float *x, const void *q, const float *scale, const float *zero, int64_t R,
                     int64_t C, const quant_spec *s);

/* acc[N][OC] = a[N][C] . b[OC][C]^T, exact in int32 (C <= KERN_I8_C_MAX). */
void kern_matmul_i8_i32(int32_t *acc, const int8_t *a, const int8_t *b, int64_t N, int64_t C,
                        int64_t OC);

/* The int8 linear: out[N][OC] = dequant(xq) . dequant(wq)^T, computed as int32 dot
 * products then rescaled (with the zero-point correction terms when xz / wz are
 * given). xq is N x C quantized with granularity xg (QG_TENSOR or QG_ROW: per token),
 * wq is OC x C with wg (QG_TENSOR or QG_ROW: per output feature); 8 bits, absmax or
 * zero-point (xz / wz NULL for absmax). acc: N * OC int32 of scratch. */
void kern_matmul_int8_fwd(float *out, const int8_t *xq, const float *xs, const float *xz,
                          quant_gran xg, const int8_t *wq, const float *ws, const float *wz,
                          quant_gran wg, int64_t N, int64_t C, int64_t OC, int32_t *acc);

/* LLM.int8() mixed-precision decomposition (Dettmers et al. 2022, §3.2, eq. 7):
 * the feature columns c of x[N][C] where any |x[n][c]| >= threshold are multiplied in
 * fp32, against w's fp32 columns (w != NULL) or wq's dequantized columns (w == NULL,
 * as bitsandbytes without fp16 weights); the other columns by vector-wise int8 (x per
 * row absmax over those columns, wq per row absmax: ws). threshold = INFINITY gives
 * plain vector-wise int8; threshold 0 with w gives the fp32 product. Returns the
 * number of outlier columns. scratch: kern_int8_decomp_scratch_bytes(N, C, OC). */
int64_t kern_int8_decomp_scratch_bytes(int64_t N, int64_t C, int64_t OC);
int64_t kern_matmul_int8_decomp_fwd(float *out, const float *x, const float *w,
                                    const int8_t *wq, const float *ws, int64_t N, int64_t C,
                                    int64_t OC, float threshold, void *scratch);

/* Reconstruction error of xhat against x over n elements: the largest |x - xhat|, the
 * mean squared error, and the signal-to-quantization-noise ratio
 * 10 log10(sum x^2 / sum (x - xhat)^2) in dB (+inf when exact). */
typedef struct {
    double max_abs, mse, sqnr_db;
} quant_error;
void kern_quant_error(quant_error *e, const float *x, const float *xhat, int64_t n);

#endif
