/* embed.cu — the CUDA twin of kernels/cpu/embed.c: out[n] = wte[tokens[n]]; backward
 * dwte[tokens[n]] += dout[n]. The backward gives each thread one channel and walks the
 * rows in order, as the CPU does: no atomics, and the same sums bit for bit. */
#include "kcu_launch.h"
#include "kern_cuda.h"

static __global__ void embed_fwd_kernel(float *out, const int32_t *tokens, const float *wte,
                                        int64_t N, int64_t C) {
    KCU_FOR(i, N * C) out[i] = wte[(int64_t)tokens[i / C] * C + i % C];
}

static __global__ void embed_bwd_kernel(float *dwte, const float *dout, const int32_t *tokens,
                                        int64_t N, int64_t C) {
    KCU_FOR(c, C) {
        for (int64_t n = 0; n < N; n++)
            dwte[(int64_t)tokens[n] * C + c] += dout[n * C + c];
    }
}

extern "C" void kcu_embed_fwd(float *out, const int32_t *tokens, const float *wte, int64_t N,
                              int64_t C) {
    if (N > 0 && C > 0) embed_fwd_kernel<<<kcu_blocks(N * C), KCU_THREADS>>>(out, tokens, wte, N, C);
}

extern "C" void kcu_embed_bwd(float *dwte, const float *dout, const int32_t *tokens, int64_t N,
                              int64_t C) {
    if (dwte && N > 0 && C > 0)
        embed_bwd_kernel<<<kcu_blocks(C), KCU_THREADS>>>(dwte, dout, tokens, N, C);
}
