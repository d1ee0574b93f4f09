/* plot_job.c — drawing one chart with gnuplot, atomically (see plot_job.h,
 * docs/plots.md §6).
 *
 * sim/report/ writes the data and the gnuplot script into a private temporary
 * directory; this file runs gnuplot on them (fork and execvp, no shell), has it
 * draw into temporaries next to the targets, and renames those over the
 * targets only once gnuplot has exited 0 — a reader sees the old image or the
 * whole new one, never a half-drawn file.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include "plot_job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- output names ------------------------------------------------------------------------ */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Resolve the target names from -o and --format (format NULL: from OUT's ending). */
int plot_job_targets(plot_job *j, const char *cmd, const char *out, const char *format,
                     const char *base) {
    if (!format) format = out && ends_with(out, ".svg") ? "svg" : "png";
    int png = strcmp(format, "svg") != 0, svg = strcmp(format, "png") != 0;
    if (out && !out[0]) return cli_fail(cmd, CLI_USAGE, "-o: expected a file name");
    if (out && strlen(out) >= PLOT_PATH_MAX_LEN - 8)
        return cli_fail(cmd, CLI_USAGE, "-o: file name too long");
    char stem[PLOT_PATH_MAX_LEN - 8]; /* room for the ".png"/".svg" ending */
    snprintf(stem, sizeof stem, "%s", out ? out : base);
    if (!out || (png && svg)) {
        if (ends_with(stem, ".png") || ends_with(stem, ".svg")) stem[strlen(stem) - 4] = 0;
        if (png) snprintf(j->png, sizeof j->png, "%s.png", stem);
        if (svg) snprintf(j->svg, sizeof j->svg, "%s.svg", stem);
    } else {
        snprintf(png ? j->png : j->svg, PLOT_PATH_MAX_LEN, "%s", out);
    }
    return 0;
}

/* ---- the temporary directory and the temporaries next to the targets -------------------- */

static int job_begin(plot_job *j, ps_err *err) {
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !tmpdir[0]) tmpdir = "/tmp";
    if (strlen(tmpdir) > PLOT_PATH_MAX_LEN - 64) return ps_err_set(err, "TMPDIR is too long");
    snprintf(j->dir, sizeof j->dir, "%s/parasim-plot-XXXXXX", tmpdir);
    if (!mkdtemp(j->dir)) {
        int e = errno;
        j->dir[0] = 0;
        return ps_err_set(err, "cannot create a temporary directory in %s: %s", tmpdir,
                          strerror(e));
    }
    snprintf(j->data, sizeof j->data, "%s/data.txt", j->dir);
    snprintf(j->script, sizeof j->script, "%s/plot.gp", j->dir);
    snprintf(j->log, sizeof j->log, "%s/gnuplot.log", j->dir);
    if (j->png[0] && atomic_file_open(&j->png_out, j->png, err)) return -1;
    if (j->svg[0] && atomic_file_open(&j->svg_out, j->svg, err)) return -1;
    return 0;
}

/* Remove what is left: the temporaries of images not renamed, and the directory. */
static void job_end(plot_job *j) {
    if (j->png_out.f) atomic_file_abort(&j->png_out);
    if (j->svg_out.f) atomic_file_abort(&j->svg_out);
    if (j->dir[0]) {
        unlink(j->data);
        unlink(j->script);
        unlink(j->log);
        rmdir(j->dir);
    }
}

/* Rename the drawn image over its target (fsynced first, as every output is). */
static int commit_one(atomic_file *a, ps_err *err) {
    struct stat st;
    if (stat(a->tmp, &st) || st.st_size == 0) {
        atomic_file_abort(a);
        return ps_err_set(err, "%s: gnuplot drew nothing", a->path);
    }
    if (atomic_file_commit(a, err)) return -1;
    printf("parasim plot: wrote %s\n", a->path);
    return 0;
}

static int job_commit(plot_job *j, ps_err *err) {
    if (j->png[0] && commit_one(&j->png_out, err)) return -1;
    if (j->svg[0] && commit_one(&j->svg_out, err)) return -1;
    return 0;
}

/* ---- running gnuplot --------------------------------------------------------------------- */

/* Print the end of gnuplot's messages. */
static void show_log(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    static char buf[4096];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    if (size > (long)sizeof buf - 1)
        fseek(f, size - (long)sizeof buf + 1, SEEK_SET);
    else
        rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (!n) return;
    fprintf(stderr, "gnuplot said:\n%s%s", buf, buf[n - 1] == '\n' ? "" : "\n");
}

/* Start prog on the script, standard output and error into the log; the exec's errno comes
 * back through a close-on-exec pipe, so a missing program is told apart from a failing one.
 * Returns 0 with *pid set, or an errno value. */
static int spawn_gnuplot(const char *prog, const plot_job *j, pid_t *pid) {
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int logfd = open(j->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int pfd[2] = {-1, -1}, rc = 0;
    if (nullfd < 0 || logfd < 0 || pipe(pfd)) {
        rc = errno;
        goto done;
    }
    fcntl(pfd[0], F_SETFD, FD_CLOEXEC);
    fcntl(pfd[1], F_SETFD, FD_CLOEXEC);
    fflush(stdout);
    fflush(stderr);
    *pid = fork();
    if (*pid < 0) {
        rc = errno;
        goto done;
    }
    if (*pid == 0) {
        char *argv[] = {(char *)prog, (char *)j->script, NULL};
        if (dup2(nullfd, 0) >= 0 && dup2(logfd, 1) >= 0 && dup2(logfd, 2) >= 0) execvp(prog, argv);
        int e = errno;
        ssize_t w = write(pfd[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(pfd[1]);
    pfd[1] = -1;
    int e;
    ssize_t n;
    while ((n = read(pfd[0], &e, sizeof e)) < 0 && errno == EINTR)
        continue;
    if (n == (ssize_t)sizeof e) { /* the exec failed: reap the child, report why */
        int st;
        while (waitpid(*pid, &st, 0) < 0 && errno == EINTR)
            continue;
        rc = e;
    }
done:
    if (nullfd >= 0) close(nullfd);
    if (logfd >= 0) close(logfd);
    if (pfd[0] >= 0) close(pfd[0]);
    if (pfd[1] >= 0) close(pfd[1]);
    return rc;
}

static int run_gnuplot(const char *cmd, plot_job *j) {
    const char *prog = getenv("PARASIM_GNUPLOT");
    if (!prog || !prog[0]) prog = "gnuplot";
    pid_t pid = 0;
    int rc = spawn_gnuplot(prog, j, &pid);
    if (rc == ENOENT)
        return cli_fail(cmd, CLI_FAIL,
                        "cannot run \"%s\": not found%s. Install gnuplot (Debian/Ubuntu: "
                        "apt-get install gnuplot-nox) or set PARASIM_GNUPLOT to its path",
                        prog, strchr(prog, '/') ? "" : " on PATH");
    if (rc) return cli_fail(cmd, CLI_FAIL, "cannot run \"%s\": %s", prog, strerror(rc));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return cli_fail(cmd, CLI_FAIL, "waiting for gnuplot: %s", strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return CLI_OK;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
        rc = cli_fail(cmd, CLI_FAIL,
                      "cannot run \"%s\" (exit status 127). Install gnuplot (Debian/Ubuntu: "
                      "apt-get install gnuplot-nox) or set PARASIM_GNUPLOT to its path",
                      prog);
    else if (WIFEXITED(st))
        rc = cli_fail(cmd, CLI_FAIL, "gnuplot failed (exit status %d); no image written",
                      WEXITSTATUS(st));
    else
        rc = cli_fail(cmd, CLI_FAIL, "gnuplot was killed by signal %d; no image written",
                      WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    show_log(j->log);
    return rc;
}

static int write_file(const char *path, plot_write_fn fn, const void *ctx, const plot_job *j,
                      const plot_outputs *out, ps_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return ps_err_set(err, "%s: cannot create: %s", path, strerror(errno));
    int bad = fn(f, ctx, j, out);
    if (fclose(f)) bad = -1;
    return bad ? ps_err_set(err, "%s: cannot write", path) : 0;
}

int plot_job_draw(const char *cmd, plot_job *j, plot_write_fn data, plot_write_fn script,
                  const void *ctx) {
    ps_err err = {{0}};
    int rc = CLI_OK;
    if (job_begin(j, &err)) {
        rc = cli_fail(cmd, CLI_FAIL, "%s", err.msg);
        goto done;
    }
    plot_outputs out = {j->png[0] ? j->png_out.tmp : NULL, j->svg[0] ? j->svg_out.tmp : NULL};
    if (write_file(j->data, data, ctx, j, &out, &err) ||
        write_file(j->script, script, ctx, j, &out, &err)) {
        rc = cli_fail(cmd, CLI_FAIL, "%s", err.msg);
        goto done;
    }
    rc = run_gnuplot(cmd, j);
    if (rc == CLI_OK && job_commit(j, &err)) rc = cli_fail(cmd, CLI_FAIL, "%s", err.msg);
done:
    job_end(j);
    return rc;
}

/* ---- shared option parsing -------------------------------------------------------------- */

int plot_args_parse(int argc, char **argv, const char *cmd, plot_args_kind kind, plot_args *a) {
    static const char *const what[] = {"plan", "CSV", "profile"};
    for (int i = 2, took; i < argc; i++) {
        const char *s = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            return -2;
        } else if (!strcmp(s, "-o") || !strcmp(s, "--output")) {
            if (!next) return cli_fail(cmd, CLI_USAGE, "%s: expected a file name", s);
            a->out = argv[++i];
        } else if (!strcmp(s, "--format") || !strncmp(s, "--format=", 9)) {
            a->format = s[8] == '=' ? s + 9 : next ? argv[++i] : "";
            if (strcmp(a->format, "png") && strcmp(a->format, "svg") && strcmp(a->format, "both"))
                return cli_fail(cmd, CLI_USAGE, "--format: expected png, svg or both, found \"%s\"",
                                a->format);
        } else if (kind == PLOT_ARGS_PLAN &&
                   (took = cli_override_arg(cmd, &a->ov, argc, argv, &i, 1)) != 0) {
            if (took < 0) return CLI_USAGE;
        } else if (kind == PLOT_ARGS_CSV && !strcmp(s, "--fit-only")) {
            a->fit_only = 1;
        } else if (s[0] == '-' && s[1]) {
            return cli_fail(cmd, CLI_USAGE, "unknown option \"%s\" (see parasim plot --help)", s);
        } else if (a->input) {
            return cli_fail(cmd, CLI_USAGE, "expected one %s file, found \"%s\" and \"%s\"",
                            what[kind], a->input, s);
        } else {
            a->input = s;
        }
    }
    return 0;
}
