/* atomic_file.c — temporary + fsync + rename (see atomic_file.h). */
#include "atomic_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int atomic_file_open(atomic_file *a, const char *path, ps_err *err) {
    memset(a, 0, sizeof *a);
    if (strlen(path) >= sizeof a->path) return ps_err_set(err, "%s: path too long", path);
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(a->tmp);
    if (fd < 0) return ps_err_set(err, "%s: cannot create a temporary file: %s", path, strerror(errno));
    /* mkstemp creates 0600; give the file the mode open() would (0666 & ~umask) */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask)) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        return ps_err_set(err, "%s: cannot set the file mode: %s", path, strerror(e));
    }
    a->f = fdopen(fd, "w");
    if (!a->f) {
        close(fd);
        unlink(a->tmp);
        return ps_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    }
    return 0;
}

int atomic_file_commit(atomic_file *a, ps_err *err) {
    int bad = ferror(a->f) || fflush(a->f) || fsync(fileno(a->f));
    int saved = errno;
    if (fclose(a->f)) bad = 1, saved = errno;
    a->f = NULL;
    if (bad || rename(a->tmp, a->path)) {
        if (!bad) saved = errno;
        unlink(a->tmp);
        return ps_err_set(err, "%s: cannot write: %s", a->path, strerror(saved));
    }
    return 0;
}

void atomic_file_abort(atomic_file *a) {
    if (a->f) fclose(a->f);
    a->f = NULL;
    unlink(a->tmp);
}
