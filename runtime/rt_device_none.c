/* rt_device_none.c — device discovery in a build without CUDA (see rt_device.h). */
#include <stdio.h>

#include "rt_device.h"

int rt_device_cuda_built(void) { return 0; }

int rt_device_list(rt_device_info *out, int max, int *count, char *why, int why_len) {
    (void)out;
    (void)max;
    *count = 0;
    snprintf(why, (size_t)why_len,
             "this parasim was built without CUDA (meson setup -Dcuda=enabled needs nvcc)");
    return -1;
}

void rt_device_versions(char *buf, int len) { snprintf(buf, (size_t)len, "built without CUDA"); }
