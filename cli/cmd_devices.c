/* cmd_devices.c — `parasim devices`: accelerators visible to the runtime. */
#include <string.h>

#include "cli.h"
#include "base/fmt.h"
#include "rt_device.h"

int cmd_devices(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: parasim devices\n\nList the CUDA devices the runtime can use, with the "
               "CUDA, cuBLAS and NCCL versions\nthis binary links. Exits 1 when there is none "
               "(the runtime then uses its CPU backend).\n");
        return CLI_OK;
    }
    if (argc > 1) return cli_fail("devices", CLI_USAGE, "unexpected argument \"%s\"", argv[1]);
    char versions[160], why[256];
    rt_device_versions(versions, sizeof versions);
    printf("build: %s\n", versions);
    rt_device_info dev[16];
    int n = 0;
    if (rt_device_list(dev, 16, &n, why, sizeof why)) {
        printf("devices: none — %s\n", why);
        return CLI_FAIL;
    }
    for (int i = 0; i < n; i++) {
        char a[32], b[32];
        printf("  %d: %s, compute capability %d.%d, %d SMs, %s (%s free)\n", i, dev[i].name,
               dev[i].cc_major, dev[i].cc_minor, dev[i].sm_count,
               fmt_bytes(dev[i].memory_bytes, a, sizeof a), fmt_bytes(dev[i].free_bytes, b, sizeof b));
    }
    return CLI_OK;
}
