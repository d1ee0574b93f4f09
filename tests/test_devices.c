/* test_devices.c — the CUDA module is loaded only when a device is asked for, then
 * device discovery on a machine with a GPU; the discovery part is skipped (exit 77)
 * with the reason where there is no GPU. */
#include <stdio.h>
#include <string.h>

#include "rt_device.h"

/* 1 when a file whose path holds name is mapped into this process. */
static int mapped(const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    if (!f) return -1;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

int main(void) {
    /* linked with the whole runtime, yet no CUDA library before the first question */
    static const char *const libs[] = {"libcudart", "libcublas", "libnccl", "libparasim-cuda"};
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++)
        if (mapped(libs[i])) {
            printf("FAIL: %s is loaded before any device was asked for\n", libs[i]);
            return 1;
        }
    rt_device_info dev[16];
    int n = 0;
    char why[512], versions[160];
    rt_device_versions(versions, sizeof versions);
    printf("build: %s\n", versions);
    if (rt_device_cuda_built()) {
        /* built with CUDA: the module is opened now (this build machine has the toolkit) */
        if (mapped("libparasim-cuda") != 1 || mapped("libcudart") != 1) {
            printf("FAIL: a CUDA build did not load its module when asked for devices (%s)\n",
                   versions);
            return 1;
        }
        if (!strncmp(versions, "built with CUDA, module not loaded", 34)) {
            printf("FAIL: %s\n", versions);
            return 1;
        }
    }
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
