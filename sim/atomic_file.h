/* atomic_file.h — write a file a user keeps so that readers see either the old
 * file or the whole new one: write to a temporary in the same directory,
 * flush and fsync, then rename over the target. */
#ifndef PS_ATOMIC_FILE_H
#define PS_ATOMIC_FILE_H

#include <stdio.h>

#include "err.h"

typedef struct {
    FILE *f;
    char path[1024];
    char tmp[1040];
} atomic_file;

int atomic_file_open(atomic_file *a, const char *path, ps_err *err);
/* Flush, fsync and rename; on failure the temporary is removed. */
int atomic_file_commit(atomic_file *a, ps_err *err);
/* Drop the temporary (after an error while writing). */
void atomic_file_abort(atomic_file *a);

#endif
