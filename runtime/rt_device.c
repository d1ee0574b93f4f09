/* rt_device.c — device discovery through the CUDA module, opened with dlopen on first
 * use (see rt_device.h, rt_device_module.h). Nothing else in parasim links the CUDA
 * libraries, so commands that never ask for a device (plan, sweep, emit, replay, run
 * on the CPU backend) never load them.
 *
 * The module is looked for, in order, at $PARASIM_CUDA_MODULE, next to the running
 * executable (/proc/self/exe), where meson built it (PS_CUDA_MODULE_BUILD) and where
 * `meson install` puts it (PS_CUDA_MODULE_INSTALL); the first file that exists is
 * opened, and a failure to open it is the reason given (a missing libcudart on a
 * machine without the toolkit, a module of another ABI). */
#include "rt_device.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt_block_cache.h"
#include "rt_device_module.h"

/* ---- device memory as a block cache's source (rt_device_module.h) ---- */

static void *block_alloc(void *ctx, size_t bytes) {
    const rt_cuda_kernels *k = ctx;
    void *p = NULL;
    char why[256];
    return k->alloc(&p, bytes, why, sizeof why) ? NULL : p;
}

static void block_free(void *ctx, void *p, size_t bytes) {
    (void)bytes;
    ((const rt_cuda_kernels *)ctx)->release(p);
}

static int block_zero(void *ctx, void *p, size_t bytes) {
    char why[256];
    return ((const rt_cuda_kernels *)ctx)->zero(p, bytes, why, sizeof why);
}

void rt_device_block_source(const rt_cuda_kernels *k, struct rt_block_source *out) {
    *out = (rt_block_source){block_alloc, block_free, block_zero, (void *)k, 512};
}

int rt_device_cuda_built(void) {
#ifdef PS_CUDA_MODULE_BUILD
    return 1;
#else
    return 0;
#endif
}

#ifdef PS_CUDA_MODULE_BUILD

#define MODULE_NAME "libparasim-cuda.so"

typedef struct {
    int tried, ok;
    char why[512];
    char path[PATH_MAX];
    int (*list)(rt_device_info *, int, int *, char *, int);
    void (*versions)(char *, int);
    const rt_cuda_kernels *kernels;
} cuda_module;

static cuda_module mod;

/* The first candidate path that names an existing file, into mod.path; 0 if one does. */
static int find_module(void) {
    const char *env = getenv("PARASIM_CUDA_MODULE");
    if (env && *env) {
        snprintf(mod.path, sizeof mod.path, "%s", env);
        return 0; /* named by the user: opened, or its error reported */
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash && (size_t)(slash - exe) + sizeof "/" MODULE_NAME <= sizeof mod.path) {
            snprintf(mod.path, sizeof mod.path, "%.*s/%s", (int)(slash - exe), exe, MODULE_NAME);
            if (!access(mod.path, F_OK)) return 0;
        }
    }
    static const char *const fixed[] = {PS_CUDA_MODULE_BUILD, PS_CUDA_MODULE_INSTALL};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!access(fixed[i], F_OK)) {
            snprintf(mod.path, sizeof mod.path, "%s", fixed[i]);
            return 0;
        }
    snprintf(mod.why, sizeof mod.why,
             "the CUDA module (%s) is neither next to this executable, nor at %s or %s "
             "(PARASIM_CUDA_MODULE=PATH names it)",
             MODULE_NAME, PS_CUDA_MODULE_BUILD, PS_CUDA_MODULE_INSTALL);
    return -1;
}

static int load_module(void) {
    if (mod.tried) return mod.ok ? 0 : -1;
    mod.tried = 1;
    if (find_module()) return -1;
    void *h = dlopen(mod.path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(mod.why, sizeof mod.why, "the CUDA module %.300s could not be loaded: %.150s", mod.path,
                 e ? e : "unknown error");
        return -1;
    }
    int (*abi)(void) = (int (*)(void))dlsym(h, "rt_cuda_module_abi");
    mod.list = (int (*)(rt_device_info *, int, int *, char *, int))dlsym(h, "rt_cuda_device_list");
    mod.versions = (void (*)(char *, int))dlsym(h, "rt_cuda_device_versions");
    const rt_cuda_kernels *(*table)(void) =
        (const rt_cuda_kernels *(*)(void))dlsym(h, "rt_cuda_kernel_table");
    if (!abi || !mod.list || !mod.versions || !table || abi() != RT_CUDA_MODULE_ABI) {
        snprintf(mod.why, sizeof mod.why,
                 "the CUDA module %.300s is not this parasim's (expected module ABI %d, found %d)",
                 mod.path, RT_CUDA_MODULE_ABI, abi ? abi() : -1);
        dlclose(h);
        return -1;
    }
    mod.kernels = table();
    mod.ok = 1; /* kept open for the life of the process */
    return 0;
}

int rt_device_list(rt_device_info *out, int max, int *count, char *why, int why_len) {
    *count = 0;
    if (load_module()) {
        snprintf(why, (size_t)why_len, "%s", mod.why);
        return -1;
    }
    return mod.list(out, max, count, why, why_len);
}

const rt_cuda_kernels *rt_device_cuda_kernels(char *why, int why_len) {
    if (load_module()) {
        snprintf(why, (size_t)why_len, "%s", mod.why);
        return NULL;
    }
    return mod.kernels;
}

void rt_device_versions(char *buf, int len) {
    if (load_module())
        snprintf(buf, (size_t)len, "built with CUDA, module not loaded");
    else
        mod.versions(buf, len);
}

/* The driver's device nodes: /dev/nvidiactl (Linux), /dev/dxg (WSL 2). */
static int driver_present(void) {
    return !access("/dev/nvidiactl", F_OK) || !access("/dev/dxg", F_OK);
}

int rt_device_auto_is_cuda(char *why, int why_len) {
    if (!driver_present()) {
        snprintf(why, (size_t)why_len, "no NVIDIA driver on this machine (no /dev/nvidiactl)");
        return 0;
    }
    rt_device_info d[1];
    int n = 0;
    if (rt_device_list(d, 1, &n, why, why_len)) return 0;
    snprintf(why, (size_t)why_len,
             "%d CUDA device%s found (%s), but the CUDA executor does not run training steps "
             "yet",
             n, n == 1 ? "" : "s", d[0].name);
    return 0;
}

#else /* built without CUDA */

int rt_device_auto_is_cuda(char *why, int why_len) {
    snprintf(why, (size_t)why_len,
             "this parasim was built without CUDA (meson setup -Dcuda=enabled needs nvcc)");
    return 0;
}

int rt_device_list(rt_device_info *out, int max, int *count, char *why, int why_len) {
    (void)out;
    (void)max;
    *count = 0;
    snprintf(why, (size_t)why_len,
             "this parasim was built without CUDA (meson setup -Dcuda=enabled needs nvcc)");
    return -1;
}

void rt_device_versions(char *buf, int len) { snprintf(buf, (size_t)len, "built without CUDA"); }

const rt_cuda_kernels *rt_device_cuda_kernels(char *why, int why_len) {
    snprintf(why, (size_t)why_len,
             "this parasim was built without CUDA (meson setup -Dcuda=enabled needs nvcc)");
    return NULL;
}

#endif
