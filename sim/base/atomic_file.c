/* atomic_file.c — temporary + fsync + rename (see atomic_file.h). */
#define _DEFAULT_SOURCE /* realpath */
#include "base/atomic_file.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/regular_file.h"

/* ---- the registry of open temporaries, for signal handlers ------------------------ */

enum { REG_SLOTS = 16 };
static char reg_path[REG_SLOTS][sizeof(((atomic_file *)0)->tmp)];
static volatile sig_atomic_t reg_used[REG_SLOTS];
static int reg_signals_set;
static const int reg_signals[] = {SIGINT, SIGTERM, SIGHUP};

void atomic_file_remove_temporaries(void) {
    for (int i = 0; i < REG_SLOTS; i++)
        if (reg_used[i]) unlink(reg_path[i]);
}

/* Remove the temporaries, then die of the signal as if it had not been caught. */
static void on_signal(int sig) {
    int saved = errno;
    atomic_file_remove_temporaries();
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig); /* delivered when the handler returns: the signal is blocked until then */
    errno = saved;
}

/* Catch the terminating signals that still have their default action (an
 * ignored SIGHUP under nohup stays ignored). */
static void reg_install_handlers(void) {
    if (reg_signals_set) return;
    reg_signals_set = 1;
    for (size_t i = 0; i < sizeof reg_signals / sizeof *reg_signals; i++) {
        struct sigaction old, sa;
        if (sigaction(reg_signals[i], NULL, &old) || old.sa_handler != SIG_DFL) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        for (size_t k = 0; k < sizeof reg_signals / sizeof *reg_signals; k++)
            sigaddset(&sa.sa_mask, reg_signals[k]);
        sigaction(reg_signals[i], &sa, NULL);
    }
}

static int reg_add(const char *tmp) {
    reg_install_handlers();
    for (int i = 0; i < REG_SLOTS; i++)
        if (!reg_used[i]) {
            memcpy(reg_path[i], tmp, strlen(tmp) + 1);
            atomic_signal_fence(memory_order_seq_cst); /* the path before the flag */
            reg_used[i] = 1;
            return i;
        }
    return -1; /* more open at once than slots: written, but not removed on a signal */
}

static void reg_drop(atomic_file *a) {
    if (a->slot >= 0) reg_used[a->slot] = 0;
    a->slot = -1;
}

/* ---- the target ------------------------------------------------------------------ */

int atomic_file_check_target(const char *path, ps_err *err) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) return 0; /* a new file (a missing directory fails at the open) */
        return ps_err_set(err, "%s: cannot check the output file: %s", path, strerror(errno));
    }
    if (S_ISREG(st.st_mode)) return 0;
    return ps_err_set(err, "%s: is %s, not a regular file; outputs are written to a temporary "
                           "and renamed over the target, which would replace it (not write "
                           "through it): name a regular file or a new path",
                      path, regular_file_kind(st.st_mode));
}

/* The resolved directory of path and its last component, as "dir/name". */
static int resolved_name(const char *path, char *out, size_t len) {
    char dir[PATH_MAX], real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (!realpath(dir, real)) return -1;
    return snprintf(out, len, "%s/%s", real, name) < (int)len ? 0 : -1;
}

int atomic_file_same_target(const char *a, const char *b) {
    struct stat sa, sb;
    const int ea = lstat(a, &sa) == 0, eb = lstat(b, &sb) == 0;
    if (ea && eb) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (ea != eb) return 0;
    char ra[PATH_MAX + 256], rb[PATH_MAX + 256];
    if (resolved_name(a, ra, sizeof ra) || resolved_name(b, rb, sizeof rb)) return !strcmp(a, b);
    return !strcmp(ra, rb);
}

/* ---- writing ---------------------------------------------------------------------- */

int atomic_file_open(atomic_file *a, const char *path, ps_err *err) {
    memset(a, 0, sizeof *a);
    a->slot = -1;
    if (strlen(path) >= sizeof a->path) return ps_err_set(err, "%s: path too long", path);
    if (atomic_file_check_target(path, err)) return -1;
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(a->tmp);
    if (fd < 0) return ps_err_set(err, "%s: cannot create a temporary file: %s", path, strerror(errno));
    a->slot = reg_add(a->tmp);
    /* mkstemp creates 0600; give the file the mode open() would (0666 & ~umask) */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask)) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        reg_drop(a);
        return ps_err_set(err, "%s: cannot set the file mode: %s", path, strerror(e));
    }
    a->f = fdopen(fd, "w");
    if (!a->f) {
        int e = errno;
        close(fd);
        unlink(a->tmp);
        reg_drop(a);
        return ps_err_set(err, "%s: cannot open: %s", path, strerror(e));
    }
    return 0;
}

int atomic_file_commit(atomic_file *a, ps_err *err) {
    int bad = ferror(a->f) || fflush(a->f) || fsync(fileno(a->f));
    int saved = errno;
    if (fclose(a->f)) bad = 1, saved = errno;
    a->f = NULL;
    /* the target may have been replaced while we wrote: check again, just before */
    if (!bad && atomic_file_check_target(a->path, err)) {
        unlink(a->tmp);
        reg_drop(a);
        return -1;
    }
    if (bad || rename(a->tmp, a->path)) {
        if (!bad) saved = errno;
        unlink(a->tmp);
        reg_drop(a);
        return ps_err_set(err, "%s: cannot write: %s", a->path, strerror(saved));
    }
    reg_drop(a);
    return 0;
}

void atomic_file_abort(atomic_file *a) {
    if (a->f) fclose(a->f);
    a->f = NULL;
    unlink(a->tmp);
    reg_drop(a);
}
