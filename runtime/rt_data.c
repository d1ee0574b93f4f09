/* rt_data.c — synthetic and byte-level text data (see rt_data.h). */
#include "rt_data.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fmt.h"
#include "base/regular_file.h"
#include "rt_hash.h"

/* splitmix64: the golden-ratio step, then its finaliser */
static uint64_t mix64(uint64_t z) { return rt_mix64(z + 0x9e3779b97f4a7c15ULL); }

static int too_large(const char *path, int64_t limit, ps_err *err) {
    char b[32];
    fmt_bytes(limit, b, sizeof b);
    return ps_err_set(err, "train.data: \"%s\": the corpus would exceed %s (it is read into "
                           "memory); use a smaller corpus or raise run --data-limit", path, b);
}

/* Append a regular file (regular_file_open: a FIFO or device, named
 * directly or swapped in after a stat, is refused, not read). */
static int append_file(rt_data *d, const char *path, int64_t limit, ps_err *err) {
    struct stat st;
    int fd = regular_file_open(path, &st);
    if (fd == -1)
        return ps_err_set(err, "train.data: cannot read \"%s\": %s (expected a text file or a "
                               "directory of text files)", path, strerror(errno));
    if (fd == -2)
        return ps_err_set(err, "train.data: \"%s\" is %s; expected a regular text file or a "
                               "directory of them", path, regular_file_kind(st.st_mode));
    if (st.st_size > limit - d->len) {
        close(fd);
        return too_large(path, limit, err);
    }
    uint8_t *t = realloc(d->text, (size_t)(d->len + st.st_size + 1));
    if (!t) {
        close(fd);
        return ps_err_set(err, "train.data: out of memory reading \"%s\"", path);
    }
    d->text = t;
    /* read what stat said; a file that grew meanwhile is read up to that size */
    int64_t got = 0;
    while (got < st.st_size) {
        ssize_t n = read(fd, d->text + d->len + got, (size_t)(st.st_size - got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return ps_err_set(err, "train.data: error reading \"%s\": %s", path, strerror(e));
        }
        if (n == 0) break; /* it shrank */
        got += n;
    }
    close(fd);
    d->len += got;
    d->files++;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of a directory, in name order (not recursive; the
 * fortune packages' *.dat index files are binary and skipped, and symlinks
 * are skipped so that no file is read twice). */
static int append_dir(rt_data *d, const char *dir, int64_t limit, ps_err *err) {
    DIR *dp = opendir(dir);
    if (!dp) return ps_err_set(err, "train.data: cannot open directory \"%s\": %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || (l > 4 && !strcmp(e->d_name + l - 4, ".dat"))) continue;
        char **t = realloc(names, sizeof *names * (size_t)(n + 1));
        if (!t) break;
        names = t;
        if (!(names[n] = strdup(e->d_name))) break;
        n++;
    }
    closedir(dp);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n && rc == 0; i++) {
        char path[2048];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        /* regular files only: symlinks (fortunes' X.u8 -> X) would read a file twice */
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) rc = append_file(d, path, limit, err);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

int rt_data_open(rt_data *d, const program *p, int64_t limit_bytes, ps_err *err) {
    memset(d, 0, sizeof *d);
    d->kind = p->data;
    d->seed = p->seed;
    d->vocab = p->vocab;
    d->seq = p->seq;
    if (p->data == DATA_SYNTHETIC) return 0;
    if (p->vocab < 256)
        return ps_err_set(err, "train.data: a text corpus needs a byte-level vocabulary of at "
                               "least 256 tokens; the model has vocab = %lld", (long long)p->vocab);
    struct stat st;
    if (stat(p->data_path, &st) != 0)
        return ps_err_set(err, "train.data: cannot read \"%s\": %s (expected a text file or a "
                               "directory of text files)", p->data_path, strerror(errno));
    const int64_t limit = limit_bytes > 0 ? limit_bytes : RT_DATA_LIMIT_BYTES;
    int rc = S_ISDIR(st.st_mode) ? append_dir(d, p->data_path, limit, err)
                                 : append_file(d, p->data_path, limit, err);
    if (rc == 0 && d->len < p->seq + 1)
        rc = ps_err_set(err, "train.data: \"%s\" holds %lld bytes; a sequence needs %lld",
                        p->data_path, (long long)d->len, (long long)(p->seq + 1));
    if (rc) rt_data_close(d);
    return rc;
}

void rt_data_close(rt_data *d) {
    free(d->text);
    d->text = NULL;
    d->len = 0;
}

void rt_data_batch(const rt_data *d, int64_t first, int64_t n, int32_t *tokens, int32_t *targets) {
    const int64_t T = d->seq;
    for (int64_t j = 0; j < n; j++) {
        uint64_t g = (uint64_t)(first + j);
        int32_t *tk = tokens + j * T, *tg = targets + j * T;
        if (d->kind == DATA_SYNTHETIC) {
            uint64_t base = mix64(d->seed ^ mix64(g));
            int32_t prev = (int32_t)(mix64(base) % (uint64_t)d->vocab);
            for (int64_t t = 0; t < T; t++) {
                int32_t next = (int32_t)(mix64(base + (uint64_t)t + 1) % (uint64_t)d->vocab);
                tk[t] = prev, tg[t] = next, prev = next;
            }
        } else {
            /* a random window of the corpus: T tokens and the T that follow by one */
            int64_t start = (int64_t)(mix64(d->seed ^ mix64(g)) % (uint64_t)(d->len - T));
            for (int64_t t = 0; t < T; t++) tk[t] = d->text[start + t], tg[t] = d->text[start + t + 1];
        }
    }
}
