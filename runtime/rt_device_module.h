/* rt_device_module.h — what the CUDA module (libparasim-cuda.so, built from
 * rt_device_cuda.cu) exports, and what rt_device.c looks up in it with dlsym.
 * The module is the only code that links the CUDA libraries (docs/runtime.md
 * §1, "The CUDA module"). Change RT_CUDA_MODULE_ABI with any of these
 * signatures: a module of another ABI is refused, never called. */
#ifndef PS_RT_DEVICE_MODULE_H
#define PS_RT_DEVICE_MODULE_H

#include <stddef.h>
#include <stdint.h>

#include "kern_quant.h"
#include "rt_device.h"

#define RT_CUDA_MODULE_ABI 4

/* RT_CUDA_MODULE_ABI of the module. */
int rt_cuda_module_abi(void);
/* rt_device_list's contract, with the CUDA runtime. */
int rt_cuda_device_list(rt_device_info *out, int max, int *count, char *why, int why_len);
/* "CUDA runtime 13.0, cuBLAS 13.0.0, NCCL 2.28.3": the versions the module links. */
void rt_cuda_device_versions(char *buf, int len);

/* Device memory and the CUDA kernels (kernels/cuda/kern_cuda.h), on the current device.
 * The memory calls return 0, or -1 with the CUDA error in why; download waits for the
 * kernels launched before it. */
typedef struct {
    int (*alloc)(void **dev, size_t bytes, char *why, int why_len);
    void (*release)(void *dev);
    int (*upload)(void *dev, const void *host, size_t bytes, char *why, int why_len);
    int (*download)(void *host, const void *dev, size_t bytes, char *why, int why_len);
    int (*zero)(void *dev, size_t bytes, char *why, int why_len); /* cudaMemset, in order */
    /* cudaMemGetInfo: what the device has free and in all; the rest of a process's use
     * (context, cuBLAS workspace, NCCL buffers) is total - free - what it allocated */
    int (*mem_info)(size_t *free_bytes, size_t *total_bytes, char *why, int why_len);
    void (*add)(float *out, const float *a, const float *b, int64_t n);
    void (*swiglu_fwd)(float *out, const float *a, const float *b, int64_t n);
    void (*swiglu_bwd)(float *da, float *db, const float *dout, const float *a, const float *b,
                       int64_t n);
    void (*adamw)(float *p, float *m, float *v, const float *g, int64_t n, float lr, float b1,
                  float b2, float eps, float wd, int step);
    void (*f32_to_bf16)(uint16_t *out, const float *in, int64_t n);
    void (*bf16_to_f32)(float *out, const uint16_t *in, int64_t n);
    void (*embed_fwd)(float *out, const int32_t *tokens, const float *wte, int64_t N, int64_t C);
    void (*embed_bwd)(float *dwte, const float *dout, const int32_t *tokens, int64_t N, int64_t C);
    void (*rmsnorm_fwd)(float *out, float *rstd, const float *inp, const float *w, int64_t N,
                        int64_t C, float eps);
    void (*rmsnorm_bwd)(float *dinp, float *dw, const float *dout, const float *inp,
                        const float *w, const float *rstd, int64_t N, int64_t C);
    void (*rope_fwd)(float *x, int64_t B, int64_t T, int64_t NH, int64_t D, float theta);
    void (*rope_bwd)(float *dx, int64_t B, int64_t T, int64_t NH, int64_t D, float theta);
    void (*rope_pos_fwd)(float *x, const int64_t *pos, int64_t B, int64_t T, int64_t NH,
                         int64_t D, float theta);
    void (*rope_pos_bwd)(float *dx, const int64_t *pos, int64_t B, int64_t T, int64_t NH,
                         int64_t D, float theta);
    void (*xent_fwd)(float *probs, float *losses, const float *logits, const int32_t *targets,
                     int64_t N, int64_t V);
    void (*xent_bwd)(float *dlogits, const float *probs, const int32_t *targets, float scale,
                     int64_t N, int64_t V);
    void (*attn_fwd)(float *out, float *lse, const float *q, const float *k, const float *v,
                     int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D, float *scratch);
    void (*attn_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *q,
                     const float *k, const float *v, const float *out, const float *lse,
                     int64_t B, int64_t T, int64_t H, int64_t KVH, int64_t D, float *scratch);
    void (*attn_block_fwd)(float *out, float *lse, const float *q, const float *k,
                           const float *v, const int64_t *qpos, const int64_t *kpos, int64_t B,
                           int64_t Tq, int64_t Tk, int64_t H, int64_t KVH, int64_t D,
                           float *scratch);
    void (*attn_block_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse,
                           const int64_t *qpos, const int64_t *kpos, int64_t B, int64_t Tq,
                           int64_t Tk, int64_t H, int64_t KVH, int64_t D, float *scratch);
    void (*matmul_fwd)(float *out, const float *inp, const float *w, int64_t N, int64_t C,
                       int64_t OC);
    void (*matmul_bwd)(float *dinp, float *dw, const float *dout, const float *inp,
                       const float *w, int64_t N, int64_t C, int64_t OC);
    void (*quantize)(void *q, float *scale, float *zero, const float *x, int64_t R, int64_t C,
                     const quant_spec *s);
    void (*dequantize)(float *x, const void *q, const float *scale, const float *zero, int64_t R,
                       int64_t C, const quant_spec *s);
    void (*matmul_i8_i32)(int32_t *acc, const int8_t *a, const int8_t *b, int64_t N, int64_t C,
                          int64_t OC);
    void (*matmul_int8_fwd)(float *out, const int8_t *xq, const float *xs, const float *xz,
                            quant_gran xg, const int8_t *wq, const float *ws, const float *wz,
                            quant_gran wg, int64_t N, int64_t C, int64_t OC, int32_t *acc);
    void (*moe_slots)(int32_t *slot, int64_t *count, const int32_t *idx, int64_t N, int64_t K,
                      int64_t E, int64_t cap);
    void (*moe_permute_fwd)(float *buf, const float *x, const int32_t *slot, int64_t N,
                            int64_t K, int64_t H, int64_t rows);
    void (*moe_permute_bwd)(float *dx, const float *dbuf, const int32_t *slot, int64_t N,
                            int64_t K, int64_t H);
    void (*moe_unpermute_fwd)(float *out, const float *buf, const float *gate,
                              const int32_t *slot, int64_t N, int64_t K, int64_t H);
    void (*moe_unpermute_bwd)(float *dbuf, float *dgate, const float *dout, const float *buf,
                              const float *gate, const int32_t *slot, int64_t N, int64_t K,
                              int64_t H);
    int (*gemm_time)(int64_t M, int64_t N, int64_t K, int bf16, double *seconds, char *why,
                     int why_len);
    int (*copy_time)(size_t bytes, double *seconds, char *why, int why_len);
} rt_cuda_kernels;

/* Measurements for calibration (rt_device_bench.cu): the mean seconds of one cuBLAS GEMM
 * C (M x N) = A (M x K) B (K x N) in bf16 (fp32 accumulation) or fp32 on random data, and
 * of one device-to-device copy of bytes; 0, or -1 with the reason. */
int rt_cuda_gemm_time(int64_t M, int64_t N, int64_t K, int bf16, double *seconds, char *why,
                      int why_len);
int rt_cuda_copy_time(size_t bytes, double *seconds, char *why, int why_len);

/* The module's table (static, never freed). */
const rt_cuda_kernels *rt_cuda_kernel_table(void);

/* On the parasim side (rt_device.c): the loaded module's table, or NULL with the reason
 * (not built with CUDA, the module not found or not loadable). */
const rt_cuda_kernels *rt_device_cuda_kernels(char *why, int why_len);

/* Device memory as a block cache's source (rt_block_cache.h: 512-byte units, PyTorch's
 * kMinBlockSize; zeroed with cudaMemset), over the table k. */
struct rt_block_source;
void rt_device_block_source(const rt_cuda_kernels *k, struct rt_block_source *out);

#endif
