/* matmul_int8.cu — the CUDA twin of kernels/cpu/matmul_int8.c: acc[n][o] = a[n] . b[o] in
 * int32 (exact: C <= KERN_I8_C_MAX), and the int8 linear that rescales it, out =
 * sx sw (acc - zx sum wq[o] - zw sum xq[n] + C zx zw) with the bracket in int64 and the
 * scaling in double, rounded once to float, as the CPU does: bit for bit the CPU's (the
 * cross-backend test's tolerance is 0). A thread per output element; the row sums the
 * zero-point terms need are recomputed per element (a twin, not the fast path). */
#include "kcu_launch.h"
#include "kern_cuda.h"

static __device__ __forceinline__ int64_t dot_i8(const int8_t *a, const int8_t *b, int64_t C) {
    int32_t s = 0;
    for (int64_t c = 0; c < C; c++) s += (int32_t)a[c] * (int32_t)b[c];
    return s;
}

static __device__ __forceinline__ int64_t sum_i8(const int8_t *a, int64_t C) {
    int32_t s = 0;
    for (int64_t c = 0; c < C; c++) s += a[c];
    return s;
}

static __global__ void i8_i32(int32_t *acc, const int8_t *a, const int8_t *b, int64_t N,
                              int64_t C, int64_t OC) {
    KCU_FOR(e, N * OC) acc[e] = (int32_t)dot_i8(a + (e / OC) * C, b + (e % OC) * C, C);
}

static __global__ void int8_out(float *out, const int32_t *acc, const int8_t *xq, const float *xs,
                                const float *xz, int x_row, const int8_t *wq, const float *ws,
                                const float *wz, int w_row, int64_t N, int64_t C, int64_t OC) {
    KCU_FOR(e, N * OC) {
        const int64_t n = e / OC, o = e % OC, xn = x_row ? n : 0, wo = w_row ? o : 0;
        const int64_t ix = xz ? (int64_t)xz[xn] : 0, iw = wz ? (int64_t)wz[wo] : 0;
        int64_t t = acc[e];
        if (xz) t -= ix * sum_i8(wq + o * C, C);
        if (wz) t += iw * (C * ix - sum_i8(xq + n * C, C));
        out[e] = (float)((double)t * (double)xs[xn] * (double)ws[wo]);
    }
}

extern "C" void kcu_matmul_i8_i32(int32_t *acc, const int8_t *a, const int8_t *b, int64_t N,
                                  int64_t C, int64_t OC) {
    if (N > 0 && OC > 0) i8_i32<<<kcu_blocks(N * OC), KCU_THREADS>>>(acc, a, b, N, C, OC);
}

extern "C" void kcu_matmul_int8_fwd(float *out, const int8_t *xq, const float *xs,
                                    const float *xz, quant_gran xg, const int8_t *wq,
                                    const float *ws, const float *wz, quant_gran wg, int64_t N,
                                    int64_t C, int64_t OC, int32_t *acc) {
    if (N <= 0 || OC <= 0) return;
    kcu_matmul_i8_i32(acc, xq, wq, N, C, OC);
    int8_out<<<kcu_blocks(N * OC), KCU_THREADS>>>(out, acc, xq, xs, xz, xg == QG_ROW, wq, ws, wz,
                                                  wg == QG_ROW, N, C, OC);
}
