/* cmd_plot.c — `parasim plot`: the Gantt chart of a plan's simulated pipeline
 * schedule, and the memory-vs-throughput chart of a sweep's CSV, drawn by
 * gnuplot (docs/plots.md).
 *
 * sim/report/plot.c writes the data and the gnuplot script into a private temporary
 * directory; this file runs gnuplot on them (fork and execvp, no shell), has it
 * draw into temporaries next to the targets, and renames those over the
 * targets only once gnuplot has exited 0 — a reader sees the old image or the
 * whole new one, never a half-drawn file.
 */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "cli.h"
#include "time/eval.h"
#include "spec/plan.h"
#include "report/plot.h"
#include "time/step_sim.h"

#define PATH_MAX_LEN  1024

static void usage(FILE *f) {
    fprintf(f,
            "usage: parasim plot schedule [PLAN.yaml] [--set key.path=value]... [--model M]\n"
            "                             [--cluster C] [-o OUT] [--format png|svg|both]\n"
            "       parasim plot sweep RESULT.csv [--fit-only] [-o OUT] [--format png|svg|both]\n"
            "\n"
            "Draw charts with gnuplot (Debian/Ubuntu package gnuplot-nox; docs/plots.md).\n"
            "\n"
            "  schedule   Gantt chart of the plan's pipeline schedule as the event simulation\n"
            "             runs it: one row per stage, one box per forward, backward and\n"
            "             weight-gradient op, idle time in grey. Plan options as parasim plan;\n"
            "             without PLAN.yaml the built-in default plan is used.\n"
            "  sweep      peak memory per GPU vs tokens/s of every plan in the CSV written by\n"
            "             `parasim sweep --all FILE.csv`, coloured by strategy family (DP only,\n"
            "             TP, PP, TP+PP, CP, CP+TP/PP), shaped by ZeRO stage, with the Pareto\n"
            "             front and the GPU memory capacity; large sweeps are thinned.\n"
            "\n"
            "  -o OUT           image file (default schedule.png / sweep.png); with --format both\n"
            "                   OUT's .png or .svg ending is replaced by each format's\n"
            "  --format FMT     png (default; svg when OUT ends in .svg), svg or both\n"
            "  --fit-only       sweep: leave out the plans that do not fit (drawn in grey)\n"
            "  --set k=v, --model M, --cluster C   schedule: override plan fields\n"
            "\n"
            "Images are written atomically (temporary file, then rename). PARASIM_GNUPLOT names\n"
            "the gnuplot program if it is not \"gnuplot\" on PATH.\n");
}

/* ---- output names ------------------------------------------------------------------------ */

typedef struct {
    char png[PATH_MAX_LEN], svg[PATH_MAX_LEN];                   /* targets; "" if not drawn */
    atomic_file png_out, svg_out; /* the temporaries next to them, which gnuplot draws into */
    char dir[PATH_MAX_LEN], data[PATH_MAX_LEN + 16], script[PATH_MAX_LEN + 16],
        log[PATH_MAX_LEN + 16]; /* the private temporary directory and its files */
} plot_job;

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Resolve the target names from -o and --format (format NULL: from OUT's ending). */
static int job_targets(plot_job *j, const char *cmd, const char *out, const char *format,
                       const char *base) {
    if (!format) format = out && ends_with(out, ".svg") ? "svg" : "png";
    int png = strcmp(format, "svg") != 0, svg = strcmp(format, "png") != 0;
    if (out && !out[0]) return cli_fail(cmd, CLI_USAGE, "-o: expected a file name");
    if (out && strlen(out) >= PATH_MAX_LEN - 8)
        return cli_fail(cmd, CLI_USAGE, "-o: file name too long");
    char stem[PATH_MAX_LEN - 8]; /* room for the ".png"/".svg" ending */
    snprintf(stem, sizeof stem, "%s", out ? out : base);
    if (!out || (png && svg)) {
        if (ends_with(stem, ".png") || ends_with(stem, ".svg")) stem[strlen(stem) - 4] = 0;
        if (png) snprintf(j->png, sizeof j->png, "%s.png", stem);
        if (svg) snprintf(j->svg, sizeof j->svg, "%s.svg", stem);
    } else {
        snprintf(png ? j->png : j->svg, PATH_MAX_LEN, "%s", out);
    }
    return 0;
}

/* ---- the temporary directory and the temporaries next to the targets -------------------- */

static int job_begin(plot_job *j, ps_err *err) {
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !tmpdir[0]) tmpdir = "/tmp";
    if (strlen(tmpdir) > PATH_MAX_LEN - 64) return ps_err_set(err, "TMPDIR is too long");
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

/* Write the data and the script with the given writers, run gnuplot, commit the images. */
typedef int (*write_fn)(FILE *f, const void *ctx, const plot_job *j, const plot_outputs *out);

static int write_file(const char *path, write_fn fn, const void *ctx, const plot_job *j,
                      const plot_outputs *out, ps_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return ps_err_set(err, "%s: cannot create: %s", path, strerror(errno));
    int bad = fn(f, ctx, j, out);
    if (fclose(f)) bad = -1;
    return bad ? ps_err_set(err, "%s: cannot write", path) : 0;
}

static int draw(const char *cmd, plot_job *j, write_fn data, write_fn script, const void *ctx) {
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

typedef struct {
    const char *out, *format, *input;
    cli_overrides ov;
    int fit_only;
} plot_args;

/* Parse argv[2..]; schedule allows plan options, sweep --fit-only. Returns 0, -2 after --help,
 * or an exit code. */
static int parse(int argc, char **argv, int schedule, plot_args *a) {
    const char *cmd = schedule ? "plot schedule" : "plot sweep";
    for (int i = 2, took; i < argc; i++) {
        const char *s = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            usage(stdout);
            return -2;
        } else if (!strcmp(s, "-o") || !strcmp(s, "--output")) {
            if (!next) return cli_fail(cmd, CLI_USAGE, "%s: expected a file name", s);
            a->out = argv[++i];
        } else if (!strcmp(s, "--format") || !strncmp(s, "--format=", 9)) {
            a->format = s[8] == '=' ? s + 9 : next ? argv[++i] : "";
            if (strcmp(a->format, "png") && strcmp(a->format, "svg") && strcmp(a->format, "both"))
                return cli_fail(cmd, CLI_USAGE, "--format: expected png, svg or both, found \"%s\"",
                                a->format);
        } else if (schedule && (took = cli_override_arg(cmd, &a->ov, argc, argv, &i, 1)) != 0) {
            if (took < 0) return CLI_USAGE;
        } else if (!schedule && !strcmp(s, "--fit-only")) {
            a->fit_only = 1;
        } else if (s[0] == '-' && s[1]) {
            return cli_fail(cmd, CLI_USAGE, "unknown option \"%s\" (see parasim plot --help)", s);
        } else if (a->input) {
            return cli_fail(cmd, CLI_USAGE, "expected one %s file, found \"%s\" and \"%s\"",
                            schedule ? "plan" : "CSV", a->input, s);
        } else {
            a->input = s;
        }
    }
    return 0;
}

/* ---- plot schedule ----------------------------------------------------------------------- */

static int gantt_data(FILE *f, const void *ctx, const plot_job *j, const plot_outputs *out) {
    (void)j, (void)out;
    return plot_gantt_write_data(f, ctx);
}

static int gantt_script(FILE *f, const void *ctx, const plot_job *j, const plot_outputs *out) {
    return plot_gantt_script(f, ctx, j->data, out);
}

static int plot_schedule(int argc, char **argv) {
    const char *cmd = "plot schedule";
    plot_args *a = calloc(1, sizeof *a);
    plan_spec *spec = calloc(1, sizeof *spec);
    eval_stage *stages = calloc(PLAN_MAX_STAGES, sizeof *stages);
    step_sim_input *input = calloc(1, sizeof *input);
    plot_job *j = calloc(1, sizeof *j);
    sched_op *ops = NULL;
    int rc = CLI_OK;
    if (!a || !spec || !stages || !input || !j) {
        rc = cli_fail(cmd, CLI_FAIL, "out of memory");
        goto done;
    }
    rc = parse(argc, argv, 1, a);
    if (rc) {
        rc = rc == -2 ? CLI_OK : rc;
        goto done;
    }
    if ((rc = job_targets(j, cmd, a->out, a->format, "schedule.png"))) goto done;
    ps_err err = {{0}};
    if (plan_load(a->input, a->ov.ov, a->ov.n, spec, &err)) {
        rc = cli_fail(cmd, CLI_FAIL, "%s", err.msg);
        goto done;
    }
    eval_result r;
    eval_plan(&spec->model.cfg, &spec->cluster.cfg, &spec->cfg, &r, stages);
    if (eval_check_finite(&r, &err)) {
        rc = cli_fail(cmd, CLI_FAIL, "%s", err.msg);
        goto done;
    }
    step_sim_prepare(&spec->cfg, stages, input);
    int64_t per_stage = sched_ops_per_stage(&input->in);
    if (per_stage < 1) {
        rc = cli_fail(cmd, CLI_FAIL, "the plan's pipeline schedule cannot be simulated");
        goto done;
    }
    if (step_sim_ops(&spec->cfg) > SCHED_MAX_OPS) {
        rc = cli_fail(cmd, CLI_FAIL,
                      "the schedule has %lld ops, more than the %lld the event simulation draws "
                      "(docs/time.md §6): use fewer micro-batches (batch.global / batch.micro)",
                      (long long)step_sim_ops(&spec->cfg), (long long)SCHED_MAX_OPS);
        goto done;
    }
    ops = calloc((size_t)(spec->cfg.pp * per_stage), sizeof *ops);
    step_sim sim;
    if (!ops) {
        rc = cli_fail(cmd, CLI_FAIL, "out of memory (%lld ops)",
                      (long long)(spec->cfg.pp * per_stage));
        goto done;
    }
    if (step_sim_run(&spec->cfg, stages, &r.time, ops, input, &sim)) {
        rc = cli_fail(cmd, CLI_FAIL,
                      "the event simulation of the schedule failed (invalid stage times?)");
        goto done;
    }
    char title[300];
    snprintf(title, sizeof title, "%.200s%s", spec->name,
             a->ov.n ? " (with command-line overrides)" : "");
    plot_gantt g = {.in = &input->in,
                    .ops = ops,
                    .pipeline_s = sim.pipeline,
                    .step_s = sim.step,
                    .bubble_fraction = sim.bubble_fraction,
                    .plan_name = title,
                    .fits = r.fits};
    if (!(g.step_s > 0)) {
        rc = cli_fail(cmd, CLI_FAIL, "the simulated step takes no time; nothing to draw");
        goto done;
    }
    plot_gantt_layout(&g);
    rc = draw(cmd, j, gantt_data, gantt_script, &g);
done:
    free(ops);
    free(j);
    free(input);
    free(stages);
    free(spec);
    free(a);
    return rc;
}

/* ---- plot sweep -------------------------------------------------------------------------- */

typedef struct {
    plot_sweep s;
    const char *csv;
} sweep_job;

static int sweep_data(FILE *f, const void *ctx, const plot_job *j, const plot_outputs *out) {
    (void)j, (void)out;
    return plot_sweep_write_data(f, &((const sweep_job *)ctx)->s);
}

static int sweep_script(FILE *f, const void *ctx, const plot_job *j, const plot_outputs *out) {
    const sweep_job *x = ctx;
    const char *name = strrchr(x->csv, '/');
    return plot_sweep_script(f, &x->s, j->data, name ? name + 1 : x->csv, out);
}

static int plot_sweep_cmd(int argc, char **argv) {
    const char *cmd = "plot sweep";
    plot_args *a = calloc(1, sizeof *a);
    plot_job *j = calloc(1, sizeof *j);
    sweep_job *x = calloc(1, sizeof *x);
    int rc = CLI_OK, loaded = 0;
    if (!a || !j || !x) {
        rc = cli_fail(cmd, CLI_FAIL, "out of memory");
        goto done;
    }
    rc = parse(argc, argv, 0, a);
    if (rc) {
        rc = rc == -2 ? CLI_OK : rc;
        goto done;
    }
    if (!a->input) {
        rc = cli_fail(cmd, CLI_USAGE,
                      "expected the CSV file `parasim sweep --all FILE.csv` wrote (see parasim "
                      "plot --help)");
        goto done;
    }
    if ((rc = job_targets(j, cmd, a->out, a->format, "sweep.png"))) goto done;
    ps_err err = {{0}};
    plot_sweep_opts o = {.show_nofit = !a->fit_only};
    if (plot_sweep_load(a->input, &o, &x->s, &err)) {
        rc = cli_fail(cmd, CLI_FAIL, "%s", err.msg);
        goto done;
    }
    loaded = 1;
    x->csv = a->input;
    rc = draw(cmd, j, sweep_data, sweep_script, x);
done:
    if (loaded) plot_sweep_free(&x->s);
    free(x);
    free(j);
    free(a);
    return rc;
}

int cmd_plot(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "schedule")) return plot_schedule(argc, argv);
    if (!strcmp(argv[1], "sweep")) return plot_sweep_cmd(argc, argv);
    return cli_fail("plot", CLI_USAGE, "unknown chart \"%s\" (expected schedule or sweep)",
                    argv[1]);
}
