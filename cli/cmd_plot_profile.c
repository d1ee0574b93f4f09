/* cmd_plot_profile.c — the charts of a run profile (see cmd_plot_profile.h):
 * load the profile (sim/report/plot_profile.c), lay the chart out and draw it
 * with gnuplot (plot_job.c). */
#include "cmd_plot_profile.h"

#include <stdlib.h>
#include <string.h>

#include "plot_job.h"
#include "report/plot_measured.h"
#include "report/plot_memory.h"
#include "report/plot_peaks.h"
#include "report/plot_profile.h"

typedef enum { CHART_MEMORY, CHART_PEAKS, CHART_SCHEDULE } chart;

typedef struct {
    chart which;
    plot_profile prof;
    plot_memory memory;
    plot_peaks peaks;
    plot_measured gantt;
} chart_job;

static int chart_data(FILE *f, const void *ctx, const plot_job *j, const plot_outputs *out) {
    const chart_job *c = ctx;
    (void)j, (void)out;
    switch (c->which) {
    case CHART_MEMORY:
        return plot_memory_write_data(f, &c->memory);
    case CHART_PEAKS:
        return plot_peaks_write_data(f, &c->peaks);
    default:
        return plot_measured_write_data(f, &c->gantt);
    }
}

static int chart_script(FILE *f, const void *ctx, const plot_job *j, const plot_outputs *out) {
    const chart_job *c = ctx;
    switch (c->which) {
    case CHART_MEMORY:
        return plot_memory_script(f, &c->memory, j->data, out);
    case CHART_PEAKS:
        return plot_peaks_script(f, &c->peaks, j->data, out);
    default:
        return plot_measured_script(f, &c->gantt, j->data, out);
    }
}

static int plot_chart(int argc, char **argv, chart which, void (*usage)(FILE *)) {
    static const char *const cmds[] = {"plot memory", "plot peaks", "plot schedule"};
    static const char *const bases[] = {"memory.png", "peaks.png", "schedule.png"};
    const char *cmd = cmds[which];
    plot_args *a = calloc(1, sizeof *a);
    plot_job *j = calloc(1, sizeof *j);
    chart_job *c = calloc(1, sizeof *c);
    int rc = CLI_OK, loaded = 0;
    if (!a || !j || !c) {
        rc = cli_fail(cmd, CLI_FAIL, "out of memory");
        goto done;
    }
    /* schedule comes here with a .json input; its plan options make no sense then */
    rc = plot_args_parse(argc, argv, cmd,
                         which == CHART_SCHEDULE ? PLOT_ARGS_PLAN : PLOT_ARGS_PROFILE, a);
    if (rc == -2) usage(stdout);
    if (rc) {
        rc = rc == -2 ? CLI_OK : rc;
        goto done;
    }
    if (a->ov.n) {
        rc = cli_fail(cmd, CLI_USAGE,
                      "--set, --model and --cluster change a plan; %s is a run "
                      "profile, which records the plan it ran",
                      a->input);
        goto done;
    }
    if (!a->input) {
        rc = cli_fail(cmd, CLI_USAGE,
                      "expected the profile `parasim run -o PROFILE.json` wrote (see parasim "
                      "plot --help)");
        goto done;
    }
    if ((rc = plot_job_targets(j, cmd, a->out, a->format, bases[which]))) goto done;
    ps_err err = {{0}};
    if (plot_profile_load(a->input, &c->prof, &err)) {
        rc = cli_fail(cmd, CLI_FAIL, "%s", err.msg);
        goto done;
    }
    loaded = 1;
    c->which = which;
    if (which == CHART_MEMORY) plot_memory_layout(&c->memory, &c->prof);
    if (which == CHART_PEAKS) plot_peaks_layout(&c->peaks, &c->prof);
    if (which == CHART_SCHEDULE) plot_measured_layout(&c->gantt, &c->prof);
    int events = 0;
    for (int32_t i = 0; i < c->prof.n_ranks; i++)
        events += c->prof.ranks[i].n_events > 0;
    if (which != CHART_PEAKS && !events) {
        rc = cli_fail(cmd, CLI_FAIL, "%s holds no events (event_steps 0): nothing to draw",
                      a->input);
        goto done;
    }
    rc = plot_job_draw(cmd, j, chart_data, chart_script, c);
done:
    if (loaded) plot_profile_free(&c->prof);
    free(c);
    free(j);
    free(a);
    return rc;
}

int cmd_plot_memory(int argc, char **argv, void (*usage)(FILE *)) {
    return plot_chart(argc, argv, CHART_MEMORY, usage);
}

int cmd_plot_peaks(int argc, char **argv, void (*usage)(FILE *)) {
    return plot_chart(argc, argv, CHART_PEAKS, usage);
}

int cmd_plot_schedule_profile(int argc, char **argv, void (*usage)(FILE *)) {
    return plot_chart(argc, argv, CHART_SCHEDULE, usage);
}
