/* err.c — formatting of error values (see err.h). */
#include "base/err.h"

#include <stdio.h>
#include <string.h>

const char *ps_loc_str(const ps_loc *loc, char *buf, int buf_len) {
    if (!loc || !loc->file[0])
        snprintf(buf, (size_t)buf_len, "(default)");
    else if (loc->line <= 0)
        snprintf(buf, (size_t)buf_len, "%s", loc->file);
    else
        snprintf(buf, (size_t)buf_len, "%s:%d:%d", loc->file, loc->line, loc->col);
    return buf;
}

/* Append to buf at *off, truncating silently: error messages may be cut, never
 * overflow. */
static void append(char *buf, int size, int *off, const char *fmt, ...) {
    va_list ap;
    if (*off >= size - 1) return;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, (size_t)(size - *off), fmt, ap);
    va_end(ap);
    if (n > 0) *off = *off + n < size - 1 ? *off + n : size - 1;
}

int ps_err_at(ps_err *err, const ps_loc *loc, const char *field, const char *fmt, ...) {
    char where[PS_LOC_FILE_MAX + 32];
    va_list ap;
    int off = 0;
    if (!err) return -1;
    err->msg[0] = 0;
    if (loc) append(err->msg, sizeof err->msg, &off, "%s: ", ps_loc_str(loc, where, sizeof where));
    if (field) append(err->msg, sizeof err->msg, &off, "%s: ", field);
    if (off < (int)sizeof err->msg - 1) {
        va_start(ap, fmt);
        vsnprintf(err->msg + off, sizeof err->msg - (size_t)off, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int ps_err_set(ps_err *err, const char *fmt, ...) {
    va_list ap;
    if (!err) return -1;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

const char *ps_path_short(const char *path, char *buf, int buf_len) {
    size_t len = strlen(path), cap = buf_len > 0 ? (size_t)buf_len : 0;
    if (!cap) return buf;
    if (len < cap || cap < 16) {
        snprintf(buf, cap, "%s", path);
        return buf;
    }
    size_t room = cap - 1 - 3; /* bytes of path kept around the "..." */
    const char *slash = strrchr(path, '/');
    size_t tail = slash ? len - (size_t)(slash - path) : len;
    if (tail > room * 2 / 3) tail = room * 2 / 3; /* keep a third for the start */
    size_t head = room - tail;
    /* cut between UTF-8 characters */
    while (head > 0 && ((unsigned char)path[head] & 0xC0) == 0x80)
        head--;
    while (tail > 0 && ((unsigned char)path[len - tail] & 0xC0) == 0x80)
        tail--;
    memcpy(buf, path, head);
    memcpy(buf + head, "...", 3);
    memcpy(buf + head + 3, path + len - tail, tail);
    buf[head + 3 + tail] = 0;
    return buf;
}

void ps_loc_set(ps_loc *loc, const char *file, int line, int col) {
    ps_path_short(file ? file : "", loc->file, (int)sizeof loc->file);
    loc->line = line;
    loc->col = col;
}
