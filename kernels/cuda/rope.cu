/* rope.cu — the CUDA twin of kernels/cpu/rope.c: the pair (x[i], x[i + D/2]) of every
 * row and head turned by the angle pos * theta^(-2i/D) (kern_rope_angle, the same fp32
 * expression), by the opposite angle in the backward; in place. One thread per pair:
 * each computes its own cos/sin (the CPU shares a table per position; the device's
 * cosf/sinf/powf are within 2 ulp, so the cross-backend test allows 1e-6). */
#include "kcu_launch.h"
#include "kern_cuda.h"
#include "kern_elem.h"

static __global__ void rope_kernel(float *x, const int64_t *pos, int64_t n, int64_t T, int64_t NH,
                                   int64_t D, float theta, float sign) {
    const int64_t half = D / 2;
    KCU_FOR(e, n) {
        const int64_t i = e % half, row = e / half; /* row: (b T + t) NH + h */
        const int64_t t = (row / NH) % T;
        const float a = kern_rope_angle(pos ? pos[t] : t, i, D, theta);
        const float c = cosf(a), s = sign * sinf(a);
        float *x0 = x + row * D + i, *x1 = x0 + half;
        const float u = *x0, w = *x1;
        *x0 = __fsub_rn(__fmul_rn(u, c), __fmul_rn(w, s)); /* the CPU's roundings, no FMA */
        *x1 = __fadd_rn(__fmul_rn(w, c), __fmul_rn(u, s));
    }
}

static void rope(float *x, const int64_t *pos, int64_t B, int64_t T, int64_t NH, int64_t D,
                 float theta, float sign) {
    const int64_t n = B * T * NH * (D / 2);
    if (n > 0) rope_kernel<<<kcu_blocks(n), KCU_THREADS>>>(x, pos, n, T, NH, D, theta, sign);
}

extern "C" void kcu_rope_fwd(float *x, int64_t B, int64_t T, int64_t NH, int64_t D, float theta) {
    rope(x, NULL, B, T, NH, D, theta, 1.0f);
}

extern "C" void kcu_rope_bwd(float *dx, int64_t B, int64_t T, int64_t NH, int64_t D, float theta) {
    rope(dx, NULL, B, T, NH, D, theta, -1.0f);
}

extern "C" void kcu_rope_pos_fwd(float *x, const int64_t *pos, int64_t B, int64_t T, int64_t NH,
                                 int64_t D, float theta) {
    rope(x, pos, B, T, NH, D, theta, 1.0f);
}

extern "C" void kcu_rope_pos_bwd(float *dx, const int64_t *pos, int64_t B, int64_t T, int64_t NH,
                                 int64_t D, float theta) {
    rope(dx, pos, B, T, NH, D, theta, -1.0f);
}
