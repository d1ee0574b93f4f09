/* kern_cuda.h — the CUDA twins of kern.h's kernels: the same arguments and the same
 * results (to the rounding of the device's exp and sqrt), on device pointers, launched
 * on the default stream without waiting for them. Each is one .cu in kernels/cuda/
 * named as its .c in kernels/cpu/; they are built into the CUDA module only
 * (libparasim-cuda.so, docs/runtime.md §1) and reached through its table
 * (runtime/rt_device_module.h). tests/test_backend_ops.c runs each against its CPU
 * twin on the same inputs. */
#ifndef PS_KERN_CUDA_H
#define PS_KERN_CUDA_H

#include <stdint.h>

#include "kern_quant.h"

#ifdef __cplusplus
extern "C" {
#endif

void kcu_add(float *out, const float *a, const float *b, int64_t n);
void kcu_swiglu_fwd(float *out, const float *a, const float *b, int64_t n);
void kcu_swiglu_bwd(float *da, float *db, const float *dout, const float *a, const float *b,
                    int64_t n);
void kcu_adamw(float *p, float *m, float *v, const float *g, int64_t n, float lr, float b1,
               float b2, float eps, float wd, int step);
void kcu_embed_fwd(float *out, const int32_t *tokens, const float *wte, int64_t N, int64_t C);
void kcu_embed_bwd(float *dwte, const float *dout, const int32_t *tokens, int64_t N, int64_t C);
void kcu_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int64_t N,
                     int64_t C, float eps);
void kcu_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                     const float *rstd, int64_t N, int64_t C);
void kcu_f32_to_bf16(uint16_t *out, const float *in, int64_t n);
void kcu_bf16_to_f32(float *out, const uint16_t *in, int64_t n);
void kcu_rope_fwd(float *x, int64_t B, int64_t T, int64_t NH, int64_t D, float theta);
void kcu_rope_bwd(float *dx, int64_t B, int64_t T, int64_t NH, int64_t D, float theta);
void kcu_rope_pos_fwd(float *x, const int64_t *pos, int64_t B, int64_t T, int64_t NH, int64_t D,
                      float theta);
void kcu_rope_pos_bwd(float *dx, const int64_t *pos, int64_t B, int64_t T, int64_t NH, int64_t D,
                      float theta);
void kcu_xent_fwd(float *probs, float *losses, const float *logits, const int32_t *targets,
                  int64_t N, int64_t V);
void kcu_xent_bwd(float *dlogits, const float *probs, const int32_t *targets, float scale,
                  int64_t N, int64_t V);
void kcu_attn_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                  int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D, float *scratch);
void kcu_attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                  const float *k, const float *v, const float *out, const float *lse, int64_t B,
                  int64_t T, int64_t H, int64_t KVH, int64_t D, float *scratch);
void kcu_attn_block_fwd(float *out, float *lse, const float *q, const float *k, const float *v,
                        const int64_t *qpos, const int64_t *kpos, int64_t B, int64_t Tq,
                        int64_t Tk, int64_t H, int64_t KVH, int64_t D, float *scratch);
void kcu_attn_block_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q,
                        const float *k, const float *v, const float *out, const float *lse,
                        const int64_t *qpos, const int64_t *kpos, int64_t B, int64_t Tq,
                        int64_t Tk, int64_t H, int64_t KVH, int64_t D, float *scratch);
/* (cuBLAS: a failure is kept for kcu_take_error, which the module's download reports) */
void kcu_matmul_fwd(float *out, const float *inp, const float *w, int64_t N, int64_t C,
                    int64_t OC);
void kcu_matmul_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                    int64_t N, int64_t C, int64_t OC);
/* The first cuBLAS failure since the last call, or NULL; clears it. */
const char *kcu_take_error(void);
/* quantization (kern_quant.h; the spec s on the host, everything else on the device) */
void kcu_quantize(void *q, float *scale, float *zero, const float *x, int64_t R, int64_t C,
                  const quant_spec *s);
void kcu_dequantize(float *x, const void *q, const float *scale, const float *zero, int64_t R,
                    int64_t C, const quant_spec *s);
void kcu_matmul_i8_i32(int32_t *acc, const int8_t *a, const int8_t *b, int64_t N, int64_t C,
                       int64_t OC);
void kcu_matmul_int8_fwd(float *out, const int8_t *xq, const float *xs, const float *xz,
                         quant_gran xg, const int8_t *wq, const float *ws, const float *wz,
                         quant_gran wg, int64_t N, int64_t C, int64_t OC, int32_t *acc);
/* mixture-of-experts dispatch (kern.h) */
void kcu_moe_slots(int32_t *slot, int64_t *count, const int32_t *idx, int64_t N, int64_t K,
                   int64_t E, int64_t cap);
void kcu_moe_permute_fwd(float *buf, const float *x, const int32_t *slot, int64_t N, int64_t K,
                         int64_t H, int64_t rows);
void kcu_moe_permute_bwd(float *dx, const float *dbuf, const int32_t *slot, int64_t N, int64_t K,
                         int64_t H);
void kcu_moe_unpermute_fwd(float *out, const float *buf, const float *gate, const int32_t *slot,
                           int64_t N, int64_t K, int64_t H);
void kcu_moe_unpermute_bwd(float *dbuf, float *dgate, const float *dout, const float *buf,
                           const float *gate, const int32_t *slot, int64_t N, int64_t K,
                           int64_t H);

#ifdef __cplusplus
}
#endif

#endif
