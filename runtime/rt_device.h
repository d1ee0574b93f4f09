/* rt_device.h — which accelerators the runtime can use.
 *
 * With a CUDA build, rt_device_list asks the CUDA runtime for its devices and
 * reports the cuBLAS and NCCL versions it linked against; without one, or on a
 * machine with no GPU or driver, it says why there is none (the runtime then
 * uses its CPU backend). Nothing here is simulated.
 */
#ifndef PS_RT_DEVICE_H
#define PS_RT_DEVICE_H

#include <stdint.h>

typedef struct {
    char name[256];
    int64_t memory_bytes;
    int64_t free_bytes;
    int sm_count;
    int cc_major, cc_minor;
} rt_device_info;

/* Fill up to max devices into out and *count. Returns 0 when at least one
 * device is usable; -1 with a reason in why otherwise. */
int rt_device_list(rt_device_info *out, int max, int *count, char *why, int why_len);

/* "CUDA runtime 13.0, cuBLAS 13.0.0, NCCL 2.28.3" or "built without CUDA". */
void rt_device_versions(char *buf, int len);

/* 1 when this binary was built with the CUDA backend. */
int rt_device_cuda_built(void);

/* `run --backend auto`: 1 when it runs on the CUDA backend; 0 when on the CPU
 * backend, with the reason in why (one line). A machine without an NVIDIA
 * driver is told by its device nodes, without loading the CUDA libraries. */
int rt_device_auto_is_cuda(char *why, int why_len);

#endif
