/* TEMPORARY (helper gen): rt_ckpt_read / rt_ckpt_free until helper ckpt's rt_ckpt.c is merged. */
#include <stdlib.h>
#include <string.h>
#include "rt_ckpt.h"
int rt_ckpt_read(const char *path, rt_ckpt *ck, ps_err *err) {
    memset(ck, 0, sizeof *ck);
    return ps_err_set(err, "%s: checkpoints are not readable yet", path);
}
void rt_ckpt_free(rt_ckpt *ck) {
    free(ck->data);
    memset(ck, 0, sizeof *ck);
}
