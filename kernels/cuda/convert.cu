/* convert.cu — the CUDA twin of kernels/cpu/convert.c: fp32 -> bf16 rounding to
 * nearest even on the raw bits (kern_bf16_round, kern_elem.h, shared with the CPU),
 * bf16 -> fp32 exact. The two backends give the same bits. */
#include "kcu_launch.h"
#include "kern_cuda.h"
#include "kern_elem.h"

static __global__ void to_bf16_kernel(uint16_t *out, const float *in, int64_t n) {
    KCU_FOR(i, n) out[i] = kern_bf16_round(__float_as_uint(in[i]));
}

static __global__ void to_f32_kernel(float *out, const uint16_t *in, int64_t n) {
    KCU_FOR(i, n) out[i] = __uint_as_float((uint32_t)in[i] << 16);
}

extern "C" void kcu_f32_to_bf16(uint16_t *out, const float *in, int64_t n) {
    if (n > 0) to_bf16_kernel<<<kcu_blocks(n), KCU_THREADS>>>(out, in, n);
}

extern "C" void kcu_bf16_to_f32(float *out, const uint16_t *in, int64_t n) {
    if (n > 0) to_f32_kernel<<<kcu_blocks(n), KCU_THREADS>>>(out, in, n);
}
