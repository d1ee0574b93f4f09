/* regular_file.c — open only regular files (see regular_file.h). */
#include "base/regular_file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

const char *regular_file_kind(mode_t mode) {
    return S_ISREG(mode)    ? "a regular file"
           : S_ISLNK(mode)  ? "a symbolic link"
           : S_ISDIR(mode)  ? "a directory"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "a special file";
}

int regular_file_open(const char *path, struct stat *st) {
    /* stat first: a device is refused without opening it (an open may act) */
    if (stat(path, st)) return -1;
    if (!S_ISREG(st->st_mode)) return -2;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (fstat(fd, st)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return -2;
    }
    return fd;
}
