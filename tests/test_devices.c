/* test_devices.c — CUDA device discovery on a machine with a GPU; skipped
 * (exit 77) with the reason where there is none. */
#include <stdio.h>

#include "rt_device.h"

int main(void) {
    rt_device_info dev[16];
    int n = 0;
    char why[256], versions[160];
    rt_device_versions(versions, sizeof versions);
    if (rt_device_list(dev, 16, &n, why, sizeof why)) {
        printf("SKIP: %s (%s)\n", why, versions);
        return 77;
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        printf("device %d: %s, cc %d.%d, %lld bytes, %lld free\n", i, dev[i].name, dev[i].cc_major,
               dev[i].cc_minor, (long long)dev[i].memory_bytes, (long long)dev[i].free_bytes);
        if (dev[i].memory_bytes <= 0 || dev[i].free_bytes <= 0 ||
            dev[i].free_bytes > dev[i].memory_bytes || dev[i].sm_count <= 0 || !dev[i].name[0])
            bad = 1;
    }
    return n > 0 && !bad ? 0 : 1;
}
