/* cmd_validate.c — `mpirun -np N parasim validate PLAN.yaml...`: run each plan (as `parasim
 * run` does), then hold its profile to its own prediction (report/validate_profile.h) and
 * draw its memory charts; the exit status says whether every plan stayed within the
 * tolerances (docs/runtime.md §9a). */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "cli.h"
#include "report/validate_profile.h"
#include "run_profile.h"

#define MAX_ARGS 160

static void usage(void) {
    printf("usage: mpirun -np N parasim validate PLAN.yaml... [--tolerance memory=2%%,time=15%%]\n"
           "                                    [--steps K] [--threads T] [--set k=v]...\n"
           "                                    [--out-dir DIR] [--csv FILE] [--no-plots]\n"
           "\n"
           "Run each plan for real on the N ranks (as parasim run does; every plan must have\n"
           "gpus: N), then hold what was measured to what the plan predicts, per rank: the\n"
           "peak memory (total, and the worst category), the calls and bytes of every\n"
           "collective and send, the step time (median of the steps after the first) and the\n"
           "time of each op kind. Prints one block per plan and a summary table; writes each\n"
           "profile and its charts (memory over time, peaks per rank, the measured Gantt\n"
           "next to the predicted) to DIR (default\n"
           "validate-out/) and, with --csv, one row per plan. Exits 1 when a plan's run\n"
           "failed or an error is over its tolerance.\n"
           "\n"
           "  --tolerance T  memory=, time=, bytes= as fractions or percentages (default\n"
           "                 memory=2%%,time=15%%,bytes=0: the peak within 2%% on every rank,\n"
           "                 bytes exact, step time within 15%%)\n"
           "  --steps K      training steps per plan (default 6)\n"
           "  --threads T    compute threads per rank (default 1, as local-cpu prices a rank)\n"
           "  --set k=v      a plan override for every plan (e.g. --set cluster=FILE.yaml)\n");
}

/* The plan's file name without its directory and ".yaml". */
static void stem(const char *path, char *out, size_t len) {
    const char *b = strrchr(path, '/');
    snprintf(out, len, "%s", b ? b + 1 : path);
    char *dot = strrchr(out, '.');
    if (dot && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml"))) *dot = 0;
}

static int validate_main(int argc, char **argv, int rank, int world) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        if (rank == 0) usage();
        return CLI_OK;
    }
    validate_tol tol = {0.02, 0.15, 0};
    const char *plans[64], *dir = "validate-out", *csv = NULL, *steps = "6", *threads = "1";
    const char *sets[MAX_ARGS];
    int n_plans = 0, n_sets = 0, plots = 1, rc = CLI_OK;
    const int quiet = cli_stderr_quiet(rank);
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x;
        ps_err err = {{0}};
        if (!strcmp(a, "--no-plots")) plots = 0;
        else if (!strcmp(a, "--tolerance") || !strcmp(a, "--steps") || !strcmp(a, "--threads") ||
                 !strcmp(a, "--set") || !strcmp(a, "--out-dir") || !strcmp(a, "--csv")) {
            if (!v) {
                rc = cli_fail("validate", CLI_USAGE, "%s: expected a value", a);
                break;
            }
            i++;
            if (!strcmp(a, "--tolerance") && validate_tol_parse(v, &tol, &err))
                rc = cli_fail("validate", CLI_USAGE, "%s", err.msg);
            else if (!strcmp(a, "--steps")) {
                if (cli_int_arg("validate", a, v, 1, 100000, &x)) rc = CLI_USAGE;
                steps = v;
            } else if (!strcmp(a, "--threads")) {
                if (cli_int_arg("validate", a, v, 1, 4096, &x)) rc = CLI_USAGE;
                threads = v;
            } else if (!strcmp(a, "--set")) {
                if (n_sets + 2 > MAX_ARGS - 16) rc = cli_fail("validate", CLI_USAGE, "too many --set");
                else sets[n_sets++] = a, sets[n_sets++] = v;
            } else if (!strcmp(a, "--out-dir")) dir = v;
            else if (!strcmp(a, "--csv")) csv = v;
        } else if (a[0] == '-' && a[1]) {
            rc = cli_fail("validate", CLI_USAGE, "unknown option \"%s\" (see --help)", a);
        } else if (n_plans == (int)(sizeof plans / sizeof plans[0])) {
            rc = cli_fail("validate", CLI_USAGE, "at most 64 plans at once");
        } else {
            plans[n_plans++] = a;
        }
    }
    if (rc == CLI_OK && !n_plans) rc = cli_fail("validate", CLI_USAGE, "expected plan files");
    if (rc == CLI_OK && rank == 0 && mkdir(dir, 0777) && access(dir, W_OK))
        rc = cli_fail("validate", CLI_FAIL, "--out-dir %s: cannot create or write it", dir);
    ps_err err = {{0}};
    if (rc == CLI_OK && rank == 0 && csv && run_profile_check_output(csv, &err))
        rc = cli_fail("validate", CLI_USAGE, "--csv: %s", err.msg); /* before any run */
    cli_stderr_restore(quiet);
    if ((rc = cli_mpi_worst(rc)) != CLI_OK) return rc;

    static validate_result res[64];
    int ok[64] = {0}, failed = 0;
    for (int p = 0; p < n_plans; p++) {
        char name[256], profile[1200];
        stem(plans[p], name, sizeof name);
        snprintf(profile, sizeof profile, "%s/%s.json", dir, name);
        char *av[MAX_ARGS];
        int ac = 0;
        av[ac++] = "run", av[ac++] = (char *)plans[p], av[ac++] = "--quiet";
        av[ac++] = "--steps", av[ac++] = (char *)steps, av[ac++] = "--threads";
        av[ac++] = (char *)threads, av[ac++] = "--backend", av[ac++] = "cpu";
        av[ac++] = "-o", av[ac++] = profile;
        for (int s = 0; s < n_sets; s++) av[ac++] = (char *)sets[s];
        av[ac] = NULL;
        if (rank == 0) {
            printf("== %s\n", plans[p]);
            fflush(stdout);
        }
        const int run_rc = cli_mpi_worst(cli_run_main(ac, av, rank, world));
        if (rank != 0) continue;
        ps_err err = {{0}};
        if (run_rc != CLI_OK) {
            printf("%s: the run failed (exit %d; its message is above)\n", plans[p], run_rc);
            failed++;
            continue;
        }
        if (validate_profile(profile, &res[p], &err)) {
            fprintf(stderr, "parasim validate: %s\n", err.msg);
            failed++;
            continue;
        }
        validate_print(stdout, &res[p], &tol);
        ok[p] = 1;
        failed += validate_over(&res[p], &tol) != 0;
        if (plots) {
            const char *charts[] = {"memory", "peaks", "schedule"};
            for (int c = 0; c < 3; c++) {
                char png[1300];
                snprintf(png, sizeof png, "%s/%s-%s.png", dir, name, charts[c]);
                char *pv[] = {"plot", (char *)charts[c], profile, "-o", png, NULL};
                if (cmd_plot(5, pv) != CLI_OK) failed++;
            }
        }
        fflush(stdout);
    }
    if (rank != 0) return CLI_OK;
    printf("\n%-40s %5s %9s %7s %9s %8s\n", "plan", "ranks", "peak err", "bytes", "step err",
           "within");
    for (int p = 0; p < n_plans; p++) {
        if (!ok[p]) {
            printf("%-40.40s %5s %9s %7s %9s %8s\n", plans[p], "-", "-", "-", "-", "run failed");
            continue;
        }
        const validate_result *r = &res[p];
        printf("%-40.40s %5d %8.2f%% %7s %+8.1f%% %8s\n", plans[p], r->ranks, 100 * r->total_err,
               r->bytes_err == 0 ? "exact" : "off", 100 * r->step_err,
               validate_over(r, &tol) ? "no" : "yes");
    }
    if (csv) {
        atomic_file af;
        ps_err err = {{0}};
        if (atomic_file_open(&af, csv, &err)) {
            fprintf(stderr, "parasim validate: %s\n", err.msg);
            return CLI_FAIL;
        }
        validate_csv_header(af.f);
        for (int p = 0; p < n_plans; p++)
            if (ok[p]) validate_csv_row(af.f, &res[p], &tol);
        if (atomic_file_commit(&af, &err)) {
            fprintf(stderr, "parasim validate: %s\n", err.msg);
            return CLI_FAIL;
        }
    }
    return failed ? CLI_FAIL : CLI_OK;
}

int cmd_validate(int argc, char **argv) {
    return cli_mpi_main("validate", "launch with mpirun -np N", argc, argv, validate_main);
}
