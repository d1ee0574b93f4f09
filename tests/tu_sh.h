/* tu_sh.h — run a command line for a test: stdout and stderr into out (cap bytes,
 * NUL-terminated), a 300 s limit; returns the exit status (-1 if it did not exit). */
#ifndef PS_TU_SH_H
#define PS_TU_SH_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/wait.h>

#include <cmocka.h>

static inline int tu_sh(char *out, size_t cap, const char *cmd) {
    char full[4200];
    snprintf(full, sizeof full, "timeout 300 %s 2>&1", cmd);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
