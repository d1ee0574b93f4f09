/* rmsnorm.cu — the CUDA twin of kernels/cpu/rmsnorm.c (same formulas):
 *   rstd[n] = 1 / sqrt(mean_c x[n][c]^2 + eps),  out = (x * rstd) * w;
 *   dx[n][c] += rstd * (w[c] dout[n][c]) - x[n][c] * rstd^3 / C * sum_j w[j] dout[n][j] x[n][j];
 *   dw[c] += sum_n dout[n][c] * x[n][c] * rstd[n].
 * One block per row for out and dx (the row's sums reduced over the block, in another
 * order than the CPU's partial sums: the cross-backend test allows for it); for dw one
 * thread per channel walks the rows in order, as the CPU does, with its products rounded
 * one by one (__fmul_rn: nvcc would fuse them into an FMA), so dw is the CPU's bit for bit. */
#include "kcu_launch.h"
#include "kern_cuda.h"
#include "kern_elem.h"

static __global__ void rms_fwd_kernel(float *out, float *rstd, const float *inp, const float *w,
                                      int64_t C, float eps) {
    const float *x = inp + (int64_t)blockIdx.x * C;
    float *o = out + (int64_t)blockIdx.x * C;
    float ss = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
        ss += x[c] * x[c];
    const float r = kern_rms_rstd(kcu_block_sum(ss), C, eps);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
        o[c] = kern_rms_out(x[c], r, w[c]);
    if (threadIdx.x == 0) rstd[blockIdx.x] = r;
}

static __global__ void rms_bwd_dx_kernel(float *dinp, const float *dout, const float *inp,
                                         const float *w, const float *rstd, int64_t C) {
    const int64_t row = (int64_t)blockIdx.x * C;
    const float *x = inp + row, *dy = dout + row;
    float *dx = dinp + row;
    const float r = rstd[blockIdx.x];
    float dot = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
        dot += w[c] * dy[c] * x[c];
    const float k = kern_rms_k(r, kcu_block_sum(dot), C);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
        dx[c] += kern_rms_dx(r, w[c], dy[c], x[c], k);
}

static __global__ void rms_bwd_dw_kernel(float *dw, const float *dout, const float *inp,
                                         const float *rstd, int64_t N, int64_t C) {
    KCU_FOR(c, C) {
        for (int64_t n = 0; n < N; n++)
            dw[c] += __fmul_rn(__fmul_rn(dout[n * C + c], inp[n * C + c]), rstd[n]); /* no FMA */
    }
}

extern "C" void kcu_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w,
                                int64_t N, int64_t C, float eps) {
    if (N > 0 && C > 0) rms_fwd_kernel<<<(unsigned)N, KCU_THREADS>>>(out, rstd, inp, w, C, eps);
}

extern "C" void kcu_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp,
                                const float *w, const float *rstd, int64_t N, int64_t C) {
    if (N <= 0 || C <= 0) return;
    if (dinp) rms_bwd_dx_kernel<<<(unsigned)N, KCU_THREADS>>>(dinp, dout, inp, w, rstd, C);
    if (dw) rms_bwd_dw_kernel<<<kcu_blocks(C), KCU_THREADS>>>(dw, dout, inp, rstd, N, C);
}
