/* atomic_file.h — write a file a user keeps so that readers see either the old
 * file or the whole new one: write to a temporary in the same directory,
 * flush and fsync, then rename over the target.
 *
 * The target must be absent or a regular file: a rename would replace a
 * symbolic link, a device node (/dev/null), a FIFO or a socket with a regular
 * file, and cannot write through them, so they are refused (docs/output.md).
 * Open temporaries are registered; SIGINT, SIGTERM and SIGHUP remove them
 * (then the process dies of the signal as it would have). */
#ifndef PS_ATOMIC_FILE_H
#define PS_ATOMIC_FILE_H

#include <stdio.h>

#include "base/err.h"

typedef struct {
    FILE *f;
    char path[1024];
    char tmp[1040];
    int slot; /* in the registry of temporaries to remove on a signal; -1: none */
} atomic_file;

int atomic_file_open(atomic_file *a, const char *path, ps_err *err);
/* Flush, fsync and rename; on failure the temporary is removed. */
int atomic_file_commit(atomic_file *a, ps_err *err);
/* Drop the temporary (after an error while writing). */
void atomic_file_abort(atomic_file *a);

/* 0 when path is absent or a regular file; otherwise -1 with err saying what
 * it is (the check atomic_file_open makes first). */
int atomic_file_check_target(const char *path, ps_err *err);
/* 1 when the two paths name the same file: the same device and inode when
 * both exist, the same directory (resolved) and name when neither does. */
int atomic_file_same_target(const char *a, const char *b);
/* Unlink every registered temporary. Async-signal-safe: for signal handlers
 * and for the paths that end the process without returning (MPI_Abort). */
void atomic_file_remove_temporaries(void);

#endif
