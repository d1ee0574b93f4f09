/* rt_device_cuda.cu — CUDA device discovery: the CUDA module (libparasim-cuda.so), the
 * only code that links the CUDA runtime, cuBLAS and NCCL. rt_device.c opens it with
 * dlopen when a command needs a GPU, so that plan, sweep, emit, replay and the CPU
 * runtime never load those libraries (see rt_device.h, rt_device_module.h). */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "kern_cuda.h"
#include "rt_device_module.h"
}

extern "C" int rt_cuda_module_abi(void) { return RT_CUDA_MODULE_ABI; }

extern "C" int rt_cuda_device_list(rt_device_info *out, int max, int *count, char *why, int why_len) {
    int n = 0;
    *count = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(why, (size_t)why_len, "no usable CUDA device: %s (%s)", cudaGetErrorString(e),
                 cudaGetErrorName(e));
        return -1;
    }
    if (n == 0) {
        snprintf(why, (size_t)why_len, "no CUDA device: the driver reports 0 devices");
        return -1;
    }
    for (int i = 0; i < n && i < max; i++) {
        cudaDeviceProp prop;
        memset(&out[i], 0, sizeof out[i]);
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
        snprintf(out[i].name, sizeof out[i].name, "%s", prop.name);
        out[i].memory_bytes = (int64_t)prop.totalGlobalMem;
        out[i].sm_count = prop.multiProcessorCount;
        out[i].cc_major = prop.major;
        out[i].cc_minor = prop.minor;
        size_t free_b = 0, total_b = 0;
        if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
            out[i].free_bytes = (int64_t)free_b;
        *count = i + 1;
    }
    return 0;
}

extern "C" void rt_cuda_device_versions(char *buf, int len) {
    int rt = 0, nccl = 0;
    cudaRuntimeGetVersion(&rt);
    ncclGetVersion(&nccl);
    int cb_major = 0, cb_minor = 0, cb_patch = 0; /* no handle needed, so no GPU either */
    cublasGetProperty(MAJOR_VERSION, &cb_major);
    cublasGetProperty(MINOR_VERSION, &cb_minor);
    cublasGetProperty(PATCH_LEVEL, &cb_patch);
    snprintf(buf, (size_t)len, "CUDA runtime %d.%d, cuBLAS %d.%d.%d, NCCL %d.%d.%d", rt / 1000,
             (rt % 1000) / 10, cb_major, cb_minor, cb_patch, nccl / 10000, (nccl / 100) % 100,
             nccl % 100);
}

static int cuda_fail(cudaError_t e, const char *what, char *why, int why_len) {
    if (e == cudaSuccess) return 0;
    snprintf(why, (size_t)why_len, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
    return -1;
}

static int dev_alloc(void **dev, size_t bytes, char *why, int why_len) {
    return cuda_fail(cudaMalloc(dev, bytes), "cudaMalloc", why, why_len);
}

static void dev_release(void *dev) { cudaFree(dev); }

static int dev_upload(void *dev, const void *host, size_t bytes, char *why, int why_len) {
    return cuda_fail(cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device",
                     why, why_len);
}

static int dev_download(void *host, const void *dev, size_t bytes, char *why, int why_len) {
    /* a kernel's launch or run error surfaces here, named as the kernels', and a cuBLAS
     * call's failure */
    if (cuda_fail(cudaGetLastError(), "kernel launch", why, why_len)) return -1;
    if (const char *e = kcu_take_error()) {
        snprintf(why, (size_t)why_len, "%s", e);
        return -1;
    }
    return cuda_fail(cudaMemcpy(host, dev, bytes, cudaMemcpyDeviceToHost),
                     "cudaMemcpy from device", why, why_len);
}

static int dev_zero(void *dev, size_t bytes, char *why, int why_len) {
    return cuda_fail(cudaMemset(dev, 0, bytes), "cudaMemset", why, why_len);
}

static int dev_mem_info(size_t *free_bytes, size_t *total_bytes, char *why, int why_len) {
    return cuda_fail(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo", why, why_len);
}

static const rt_cuda_kernels kernel_table = {
    dev_alloc,       dev_release,     dev_upload,      dev_download,
    dev_zero,        dev_mem_info,
    kcu_add,         kcu_swiglu_fwd,  kcu_swiglu_bwd,  kcu_adamw,
    kcu_f32_to_bf16, kcu_bf16_to_f32, kcu_embed_fwd,   kcu_embed_bwd,
    kcu_rmsnorm_fwd, kcu_rmsnorm_bwd, kcu_rope_fwd,    kcu_rope_bwd,
    kcu_rope_pos_fwd, kcu_rope_pos_bwd, kcu_xent_fwd,  kcu_xent_bwd,
    kcu_attn_fwd,    kcu_attn_bwd,    kcu_attn_block_fwd, kcu_attn_block_bwd,
    kcu_matmul_fwd,  kcu_matmul_bwd,  kcu_quantize,    kcu_dequantize,
    kcu_matmul_i8_i32, kcu_matmul_int8_fwd, kcu_moe_slots, kcu_moe_permute_fwd,
    kcu_moe_permute_bwd, kcu_moe_unpermute_fwd, kcu_moe_unpermute_bwd,
    rt_cuda_gemm_time, rt_cuda_copy_time,
};

extern "C" const rt_cuda_kernels *rt_cuda_kernel_table(void) { return &kernel_table; }
