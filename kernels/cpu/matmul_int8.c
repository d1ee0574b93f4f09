/* matmul_int8.c — int8 x int8 -> int32 matrix product, and the int8 linear that
 * rescales it (kern_quant.h).
 *
 * Formulas (docs/quantization.md, "Kernels"; LLM.int8() §2-3, arXiv 2208.07339):
 *   acc[n][o] = sum_c a[n][c] b[o][c], exact in int32 while C * 128 * 128 < 2^31
 *   (C <= KERN_I8_C_MAX; every partial sum is bounded by the same, so no order of
 *   summation overflows).
 *   With x^ = (xq - zx) sx and w^ = (wq - zw) sw, the linear
 *   out[n][o] = sum_c x^[n][c] w^[o][c]
 *             = sx sw (acc - zx sum_c wq[o][c] - zw sum_c xq[n][c] + C zx zw),
 *   the bracket exact in int64, scaled in double, rounded once to float.
 * Why this way: tiles of 4 rows of a by 16 rows of b, the 4 dot products of a
 * row of b in one loop so that each load of b serves four (2.3x faster than one
 * at a time for N >= 4: 40 against 17 G int8 ops/s on one core of the dev box,
 * where sgemm runs 90 GFLOP/s). The products are written int16 x int16 (each
 * fits) and the loops left to GCC's own vectoriser: an `omp simd` reduction
 * there widens to 32-bit multiplies and runs half as fast. OpenMP over (row
 * block, output column block) tiles, so a decode step (N = 1) still spreads
 * over threads and no two threads write the same element. The weight row sums the zero-point
 * correction needs are kept, as exact floats (|sum| <= 131071 * 128 < 2^24), in out's first row
 * until that row is written last: the kernel allocates nothing beyond the caller's acc.
 */
#include "kern_math.h"
#include "kern_quant.h"

#define I8_TILE 16 /* output columns per tile */
#define I8_ROWS 4  /* rows of a per pass over b */

/* acc[n][o] = a[n] . b[o] for rows [n0, n1) (at most I8_ROWS) and o in [o0, o1):
 * I8_ROWS dot products per pass over a row of b, so each b load serves them all. */
KERN_SIMD_CLONES static void i8_tile(int32_t *acc, const int8_t *a, const int8_t *b, int64_t n0,
                                     int64_t n1, int64_t o0, int64_t o1, int64_t C, int64_t OC) {
    const int8_t *a0 = a + n0 * C;
    if (n1 - n0 == I8_ROWS) {
        const int8_t *a1 = a0 + C, *a2 = a1 + C, *a3 = a2 + C;
        for (int64_t o = o0; o < o1; o++) {
            const int8_t *b_o = b + o * C;
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int64_t c = 0; c < C; c++) {
                const int16_t bc = b_o[c];
                s0 += (int16_t)a0[c] * bc;
                s1 += (int16_t)a1[c] * bc;
                s2 += (int16_t)a2[c] * bc;
                s3 += (int16_t)a3[c] * bc;
            }
            acc[n0 * OC + o] = s0;
            acc[(n0 + 1) * OC + o] = s1;
            acc[(n0 + 2) * OC + o] = s2;
            acc[(n0 + 3) * OC + o] = s3;
        }
        return;
    }
    for (int64_t n = n0; n < n1; n++)
        for (int64_t o = o0; o < o1; o++) {
            const int8_t *a_n = a + n * C, *b_o = b + o * C;
            int32_t s = 0;
            for (int64_t c = 0; c < C; c++)
                s += (int16_t)a_n[c] * (int16_t)b_o[c];
            acc[n * OC + o] = s;
        }
}

void kern_matmul_i8_i32(int32_t *acc, const int8_t *a, const int8_t *b, int64_t N, int64_t C,
                        int64_t OC) {
    if (N <= 0 || OC <= 0) return;
    const int64_t row_blocks = (N + I8_ROWS - 1) / I8_ROWS, tiles = (OC + I8_TILE - 1) / I8_TILE;
#pragma omp parallel for collapse(2) schedule(static) if (N * C * OC >= KERN_GEMM_PAR_MIN)
    for (int64_t nb = 0; nb < row_blocks; nb++)
        for (int64_t t = 0; t < tiles; t++) {
            const int64_t n1 = (nb + 1) * I8_ROWS < N ? (nb + 1) * I8_ROWS : N;
            const int64_t o1 = (t + 1) * I8_TILE < OC ? (t + 1) * I8_TILE : OC;
            i8_tile(acc, a, b, nb * I8_ROWS, n1, t * I8_TILE, o1, C, OC);
        }
}

static int64_t i8_sum(const int8_t *a, int64_t C) {
    int32_t s = 0; /* |s| <= C * 128 < 2^24 */
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < C; c++)
        s += a[c];
    return s;
}

/* Row n of out from acc (wsum: the weight row sums, or NULL when xz is NULL). */
static void i8_row_out(float *out_n, const int32_t *acc_n, const int8_t *xq_n, float sx, float zx,
                       const float *ws, const float *wz, quant_gran wg, const float *wsum,
                       int64_t C, int64_t OC) {
    const int64_t xsum = wz ? i8_sum(xq_n, C) : 0, ix = (int64_t)zx;
    for (int64_t o = 0; o < OC; o++) {
        const int64_t wo = wg == QG_ROW ? o : 0;
        const int64_t iw = wz ? (int64_t)wz[wo] : 0;
        int64_t t = acc_n[o];
        if (wsum) t -= ix * (int64_t)wsum[o];
        if (wz) t += iw * (C * ix - xsum);
        out_n[o] = (float)((double)t * (double)sx * (double)ws[wo]);
    }
}

void kern_matmul_int8_fwd(float *out, const int8_t *xq, const float *xs, const float *xz,
                          quant_gran xg, const int8_t *wq, const float *ws, const float *wz,
                          quant_gran wg, int64_t N, int64_t C, int64_t OC, int32_t *acc) {
    if (N <= 0 || OC <= 0) return;
    kern_matmul_i8_i32(acc, xq, wq, N, C, OC);
    float *wsum = NULL; /* the weight row sums, in out's row 0 */
    if (xz) {
        wsum = out;
#pragma omp parallel for if (C * OC >= KERN_GEMM_PAR_MIN)
        for (int64_t o = 0; o < OC; o++)
            wsum[o] = (float)i8_sum(wq + o * C, C);
    }
#pragma omp parallel for if (N * OC >= (1 << 14))
    for (int64_t n = N - 1; n >= 1; n--) {
        const int64_t xn = xg == QG_ROW ? n : 0;
        i8_row_out(out + n * OC, acc + n * OC, xq + n * C, xs[xn], xz ? xz[xn] : 0.0f, ws, wz, wg,
                   wsum, C, OC);
    }
    /* row 0 last: it reads wsum[o] before writing out[0][o] over it */
    i8_row_out(out, acc, xq, xs[0], xz ? xz[0] : 0.0f, ws, wz, wg, wsum, C, OC);
}
