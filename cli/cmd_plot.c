/* cmd_plot.c — `parasim plot`: dispatches to the charts (docs/plots.md): the
 * Gantt chart of a plan's simulated pipeline schedule and the
 * memory-vs-throughput chart of a sweep's CSV (here), and the charts of a run
 * profile (cmd_plot_profile.c); drawing with gnuplot is plot_job.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd_plot_profile.h"
#include "plot_job.h"
#include "time/eval.h"
#include "spec/plan.h"
#include "report/plot.h"
#include "time/step_sim.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: parasim plot schedule [PLAN.yaml] [--set key.path=value]... [--model M]\n"
            "                             [--cluster C] [-o OUT] [--format png|svg|both]\n"
            "       parasim plot sweep RESULT.csv [--fit-only] [-o OUT] [--format png|svg|both]\n"
            "       parasim plot memory|peaks|schedule PROFILE.json [-o OUT] [--format png|svg|both]\n"
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
            "Charts of a run profile (parasim run -o PROFILE.json):\n"
            "  memory     each rank's memory after every op of the first steps, predicted\n"
            "             (left) and measured (right), stacked by category, phases marked;\n"
            "             one row per rank (per role above 8 ranks)\n"
            "  peaks      each rank's peak per category, predicted and measured bars\n"
            "  schedule   with a .json profile: each stage's ops as the replay predicts them\n"
            "             next to how they ran\n"
            "\n"
            "  -o OUT           image file (default CHART.png: schedule.png, sweep.png, memory.png,\n"
            "                   peaks.png); with --format both\n"
            "                   OUT's .png or .svg ending is replaced by each format's\n"
            "  --format FMT     png (default; svg when OUT ends in .svg), svg or both\n"
            "  --fit-only       sweep: leave out the plans that do not fit (drawn in grey)\n"
            "  --set k=v, --model M, --cluster C   schedule: override plan fields\n"
            "\n"
            "Images are written atomically (temporary file, then rename). PARASIM_GNUPLOT names\n"
            "the gnuplot program if it is not \"gnuplot\" on PATH.\n");
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
    rc = plot_args_parse(argc, argv, cmd, PLOT_ARGS_PLAN, a);
    if (rc == -2) usage(stdout);
    if (rc) {
        rc = rc == -2 ? CLI_OK : rc;
        goto done;
    }
    if ((rc = plot_job_targets(j, cmd, a->out, a->format, "schedule.png"))) goto done;
    ps_err err = {{0}};
    if (plan_load(a->input, a->ov.ov, a->ov.n, spec, &err)) {
        rc = cli_fail(cmd, CLI_FAIL, "%s", err.msg);
        goto done;
    }
    eval_result r;
    eval_plan_spec(spec, &r, stages);
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
    rc = plot_job_draw(cmd, j, gantt_data, gantt_script, &g);
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
    rc = plot_args_parse(argc, argv, cmd, PLOT_ARGS_CSV, a);
    if (rc == -2) usage(stdout);
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
    if ((rc = plot_job_targets(j, cmd, a->out, a->format, "sweep.png"))) goto done;
    ps_err err = {{0}};
    plot_sweep_opts o = {.show_nofit = !a->fit_only};
    if (plot_sweep_load(a->input, &o, &x->s, &err)) {
        rc = cli_fail(cmd, CLI_FAIL, "%s", err.msg);
        goto done;
    }
    loaded = 1;
    x->csv = a->input;
    rc = plot_job_draw(cmd, j, sweep_data, sweep_script, x);
done:
    if (loaded) plot_sweep_free(&x->s);
    free(x);
    free(j);
    free(a);
    return rc;
}

/* The input file of `plot schedule`: the first argument that is not an option or an
 * option's value. */
static const char *schedule_input(int argc, char **argv) {
    static const char *const with_value[] = {"-o", "--output", "--format", "--set", "--model",
                                             "--cluster", NULL};
    for (int i = 2; i < argc; i++) {
        int takes = 0;
        for (int k = 0; with_value[k]; k++) takes |= !strcmp(argv[i], with_value[k]);
        if (takes) i++;
        else if (argv[i][0] != '-' || !argv[i][1]) return argv[i];
    }
    return NULL;
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
    if (!strcmp(argv[1], "schedule")) {
        /* a run profile (.json) gives measured vs predicted; a plan, the simulated schedule */
        const char *in = schedule_input(argc, argv);
        const size_t n = in ? strlen(in) : 0;
        if (n > 5 && !strcmp(in + n - 5, ".json")) return cmd_plot_schedule_profile(argc, argv, usage);
        return plot_schedule(argc, argv);
    }
    if (!strcmp(argv[1], "sweep")) return plot_sweep_cmd(argc, argv);
    if (!strcmp(argv[1], "memory")) return cmd_plot_memory(argc, argv, usage);
    if (!strcmp(argv[1], "peaks")) return cmd_plot_peaks(argc, argv, usage);
    return cli_fail("plot", CLI_USAGE,
                    "unknown chart \"%s\" (expected schedule, sweep, memory or peaks)", argv[1]);
}
