/* regular_file.h — open a file parasim reads only if it is a regular file.
 *
 * Every input path (a spec, an execution plan, a training corpus) may name a
 * FIFO, a device such as /dev/zero, a socket or a directory; reading one
 * blocks or never ends. The path is examined before it is opened (a device
 * is never opened), then opened without blocking and checked again on the
 * descriptor, so a path swapped for a FIFO in between is refused too
 * (docs/security.md §1). */
#ifndef PS_REGULAR_FILE_H
#define PS_REGULAR_FILE_H

#include <sys/stat.h>

/* "a FIFO", "a character device", "a symbolic link", ... for messages. */
const char *regular_file_kind(mode_t mode);

/* Open path for reading. Returns the descriptor (st filled) when it is a
 * regular file; -1 with errno set when it cannot be opened or examined; -2
 * when it is something else (st filled: regular_file_kind(st->st_mode) names
 * it; nothing was read from it). */
int regular_file_open(const char *path, struct stat *st);

#endif
