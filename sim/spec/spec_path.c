/* spec_path.c — spec name resolution (see spec_path.h). */
#include "spec/spec_path.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PARASIM_SOURCE_DIR
#define PARASIM_SOURCE_DIR "."
#endif
#ifndef PARASIM_INSTALL_DATADIR
#define PARASIM_INSTALL_DATADIR "/usr/local/share/parasim"
#endif

const char *spec_path_data_dir(void) { return PARASIM_SOURCE_DIR; }

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Longest candidate path shown in the list of places tried. */
#define SHOWN_MAX 120

typedef struct {
    char *out;
    int out_len;
    char tried[768];
    int used;
    int errno_seen;              /* the first reason other than "no such file" */
    char errno_path[PS_LOC_FILE_MAX];
} search;

/* Format a candidate path; if readable, copy it to the result and return 1,
 * else remember it (and why, when it exists but cannot be read) for the error
 * message. */
static int try_candidate(search *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int try_candidate(search *s, const char *fmt, ...) {
    char cand[PATH_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cand, sizeof cand, fmt, ap);
    va_end(ap);
    int e;
    if (n < 0 || n >= (int)sizeof cand)
        e = ENAMETOOLONG;
    else if (!access(cand, R_OK))
        e = n < s->out_len ? 0 : ENAMETOOLONG;
    else
        e = errno;
    if (!e) {
        memcpy(s->out, cand, (size_t)n + 1);
        return 1;
    }
    if (e != ENOENT && !s->errno_seen) {
        s->errno_seen = e;
        ps_path_short(cand, s->errno_path, sizeof s->errno_path);
    }
    if (s->used < (int)sizeof s->tried - 1) {
        char shown[SHOWN_MAX];
        int w = snprintf(s->tried + s->used, sizeof s->tried - (size_t)s->used, "%s%s",
                         s->used ? ", " : "", ps_path_short(cand, shown, sizeof shown));
        s->used = w < 0 ? (int)sizeof s->tried - 1 : s->used + w;
        if (s->used > (int)sizeof s->tried - 1) s->used = (int)sizeof s->tried - 1;
    }
    return 0;
}

int spec_path_resolve(const char *name, const char *dir, const char *from_file,
                      const ps_loc *where, const char *field, char *out, int out_len,
                      ps_err *err) {
    search s = {.out = out, .out_len = out_len, .used = 0};
    s.tried[0] = 0;
    int from_len = 1;
    const char *from_dir = ".";
    if (from_file && strrchr(from_file, '/')) {
        from_dir = from_file;
        from_len = (int)(strrchr(from_file, '/') - from_file);
    }
    int is_path = strchr(name, '/') || ends_with(name, ".yaml") || ends_with(name, ".yml") ||
                  ends_with(name, ".json");
    if (is_path) {
        if (try_candidate(&s, "%s", name)) return 0;
        if (name[0] != '/' && try_candidate(&s, "%.*s/%s", from_len, from_dir, name)) return 0;
    } else {
        const char *env = getenv("PARASIM_DATA");
        const char *roots[3] = {env, PARASIM_SOURCE_DIR, PARASIM_INSTALL_DATADIR};
        for (int r = 0; r < 3; r++) {
            if (!roots[r] || !roots[r][0]) continue;
            if (try_candidate(&s, "%s/%s/%s.yaml", roots[r], dir, name) ||
                try_candidate(&s, "%s/%s/%s.json", roots[r], dir, name))
                return 0;
        }
    }
    char shown[SHOWN_MAX];
    ps_path_short(name, shown, sizeof shown);
    if (s.errno_seen) /* it is there but cannot be read: say why */
        return ps_err_at(err, where, field,
                         "expected the name of a spec in %s/ or a path to one, found \"%s\" "
                         "(cannot read %s: %s)",
                         dir, shown, s.errno_path, strerror(s.errno_seen));
    return ps_err_at(err, where, field,
                     "expected the name of a spec in %s/ or a path to one, found \"%s\" (no "
                     "readable file at: %s)",
                     dir, shown, s.tried);
}
