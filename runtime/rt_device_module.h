/* rt_device_module.h — what the CUDA module (libparasim-cuda.so, built from
 * rt_device_cuda.cu) exports, and what rt_device.c looks up in it with dlsym.
 * The module is the only code that links the CUDA libraries (docs/runtime.md
 * §1, "The CUDA module"). Change RT_CUDA_MODULE_ABI with any of these
 * signatures: a module of another ABI is refused, never called. */
#ifndef PS_RT_DEVICE_MODULE_H
#define PS_RT_DEVICE_MODULE_H

#include "rt_device.h"

#define RT_CUDA_MODULE_ABI 1

/* RT_CUDA_MODULE_ABI of the module. */
int rt_cuda_module_abi(void);
/* rt_device_list's contract, with the CUDA runtime. */
int rt_cuda_device_list(rt_device_info *out, int max, int *count, char *why, int why_len);
/* "CUDA runtime 13.0, cuBLAS 13.0.0, NCCL 2.28.3": the versions the module links. */
void rt_cuda_device_versions(char *buf, int len);

#endif
