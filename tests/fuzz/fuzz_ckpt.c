/* fuzz_ckpt.c — a model checkpoint (runtime/rt_ckpt.h): the magic, the JSON
 * header line with its bounds, the length check and the values, through
 * rt_ckpt_read. The reader takes a path (it checks the file's kind and size
 * before reading), so each input is written to one temporary file first. A
 * checkpoint it accepts must hold the layout's count of finite values, three
 * arrays of them for a training state (version 2: weights, adam_m, adam_v). */
#define _DEFAULT_SOURCE /* mkstemp */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz.h"
#include "rt_ckpt.h"

static char path[64];

static void remove_temporary(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    if (fd < 0) {
        snprintf(path, sizeof path, "/tmp/fuzz-ckpt-XXXXXX");
        fd = mkstemp(path);
        if (fd < 0) abort();
        atexit(remove_temporary);
    }
    if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) abort();
    rt_ckpt ck;
    ps_err err = {{0}};
    if (rt_ckpt_read(path, &ck, &err) == 0) {
        rt_ckpt_layout l;
        rt_ckpt_layout_of(&ck.m, &l);
        if (ck.elems != l.elems) abort();
        const int64_t arrays = ck.has_train ? 3 : 1;
        if (ck.has_train && (ck.adam_m != ck.data + ck.elems || ck.adam_v != ck.adam_m + ck.elems))
            abort();
        for (int64_t k = 0; k < arrays * ck.elems; k++)
            if (!isfinite(ck.data[k])) abort();
        rt_ckpt_free(&ck);
    }
    return 0;
}
