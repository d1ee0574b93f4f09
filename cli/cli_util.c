/* cli_util.c — output files and argument helpers shared by subcommands. */
#define _DEFAULT_SOURCE /* realpath */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "cli.h"
#include "spec/yget.h"

int cli_check_not_input(const char *cmd, const char *in, const char *out) {
    if (!in || !out || !strcmp(out, "-")) return CLI_OK;
    /* the input is read through its links: compare the file they lead to (an
     * output that is itself a link is refused when it is opened) */
    char *real_in = realpath(in, NULL);
    const int same = atomic_file_same_target(real_in ? real_in : in, out);
    free(real_in);
    if (!same) return CLI_OK;
    return cli_fail(cmd, CLI_USAGE, "the output %s would replace the input %s: give it another name",
                    out, in);
}

int cli_out_open(cli_out *o, const char *path, ps_err *err) {
    o->priv = NULL;
    o->f = stdout;
    if (!path || !path[0] || (path[0] == '-' && !path[1])) return 0;
    atomic_file *a = malloc(sizeof *a);
    if (!a) return ps_err_set(err, "out of memory");
    if (atomic_file_open(a, path, err)) {
        free(a);
        return -1;
    }
    o->priv = a;
    o->f = a->f;
    return 0;
}

int cli_out_close(cli_out *o, ps_err *err) {
    if (!o->priv) return fflush(stdout) ? ps_err_set(err, "cannot write to standard output") : 0;
    int rc = atomic_file_commit(o->priv, err);
    free(o->priv);
    o->priv = NULL;
    return rc;
}

int cli_fail(const char *cmd, int code, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "parasim %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_int_arg(const char *cmd, const char *opt, const char *value, long long min, long long max,
                long long *out) {
    int64_t v;
    if (!value)
        return cli_fail(cmd, CLI_USAGE, "%s: expected a value, found the end of the arguments", opt);
    if (yget_parse_int(value, &v) || v < min || v > max)
        return cli_fail(cmd, CLI_USAGE, "%s: expected an integer from %lld to %lld, found \"%s\"",
                        opt, min, max, value);
    *out = v;
    return 0;
}

int cli_size_arg(const char *cmd, const char *opt, const char *value, double min, double max,
                 const char *range, double *out) {
    ps_err perr = {{0}};
    if (!value) return cli_fail(cmd, CLI_USAGE, "%s: expected a size such as \"2 GiB\"", opt);
    if (yget_parse_quantity(value, UNIT_BYTES, out, &perr))
        return cli_fail(cmd, CLI_USAGE, "%s: %s", opt, perr.msg);
    if (!(*out >= min && *out <= max))
        return cli_fail(cmd, CLI_USAGE, "%s: expected a size from %s, found \"%s\"", opt, range,
                        value);
    return CLI_OK;
}

int cli_override_arg(const char *cmd, cli_overrides *o, int argc, char **argv, int *i,
                     int with_shorthand) {
    const char *a = argv[*i];
    const int set = !strcmp(a, "--set") || !strncmp(a, "--set=", 6);
    const int shorthand = with_shorthand && (!strcmp(a, "--model") || !strcmp(a, "--cluster"));
    if (!set && !shorthand) return 0;
    const char *v = set && a[5] == '=' ? a + 6 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (!v) {
        cli_fail(cmd, CLI_USAGE, "%s: expected %s", set ? "--set" : a,
                 set ? "key.path=value" : "a name or path");
        return -1;
    }
    if (o->n == CLI_MAX_OVERRIDES) {
        cli_fail(cmd, CLI_USAGE, "--set: at most %d overrides", CLI_MAX_OVERRIDES);
        return -1;
    }
    if (shorthand) { /* --model M is --set model=M */
        int k = a[2] == 'm' ? 0 : 1;
        if (strlen(v) >= PATH_MAX) {
            cli_fail(cmd, CLI_USAGE, "%s: expected a name or a path of at most %d bytes, found %zu bytes",
                     a, PATH_MAX - 1, strlen(v));
            return -1;
        }
        snprintf(o->shorthand[k], sizeof o->shorthand[k], "%s=%s", a + 2, v);
        v = o->shorthand[k];
    }
    o->ov[o->n++].text = v;
    return 1;
}
