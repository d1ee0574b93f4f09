/* err.h — errors as values.
 *
 * Every fallible function in sim/ returns int (0 = ok, -1 = error) and fills a
 * ps_err with one human-readable line that names where the problem is (file,
 * line and column of the YAML node, or the command-line argument), the field,
 * what was expected and what was found. Library code never prints or exits.
 */
#ifndef PS_ERR_H
#define PS_ERR_H

#include <stdarg.h>

#define PS_ERR_MSG_MAX 1024
#define PS_LOC_FILE_MAX 200

/* Where a value came from: a YAML node (line/col 1-based) or a command-line
 * argument (line == 0, file holds the argument text, e.g. "--set parallel.tp=8"). */
typedef struct {
    char file[PS_LOC_FILE_MAX];
    int line;
    int col;
} ps_loc;

typedef struct {
    char msg[PS_ERR_MSG_MAX];
} ps_err;

/* Format "file:line:col" (or the argument text when line == 0) into buf. */
const char *ps_loc_str(const ps_loc *loc, char *buf, int buf_len);

/* Set err to "LOC: FIELD: MESSAGE". loc or field may be NULL. Returns -1 so that
 * callers can write `return ps_err_at(...)`. */
int ps_err_at(ps_err *err, const ps_loc *loc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Set err to a plain message. Returns -1. */
int ps_err_set(ps_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Set a location from its parts; a file name too long for ps_loc keeps its
 * start and its last component (see ps_path_short). */
void ps_loc_set(ps_loc *loc, const char *file, int line, int col);

/* path into buf, its middle replaced by "..." when it does not fit, keeping
 * the start and the file name, so that a message quoting a long path still has
 * room for its reason. Returns buf. */
const char *ps_path_short(const char *path, char *buf, int buf_len);

#endif
