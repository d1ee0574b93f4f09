/* cli.h — the parasim command's subcommands and their shared helpers. */
#ifndef PS_CLI_H
#define PS_CLI_H

#include <limits.h>
#include <stdio.h>

#include "base/err.h"
#include "spec/plan.h"

/* Exit codes: 0 ok, 1 bad input or failed work, 2 bad command line. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

int cmd_plan(int argc, char **argv);
int cmd_infer(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_validate(int argc, char **argv);
/* `parasim run`'s work on this rank, inside MPI (cmd_run.c): `parasim validate` runs each
 * plan through it. */
int cli_run_main(int argc, char **argv, int rank, int world);
int cmd_sweep(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_emit(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_generate(int argc, char **argv);

/* MPI_Init, body on this rank, then every rank exits with the worst status (run, generate);
 * launch says how to start the command when MPI cannot. */
int cli_mpi_main(const char *cmd, const char *launch, int argc, char **argv,
                 int (*body)(int argc, char **argv, int rank, int world));
/* The largest of every rank's rc, on every rank (a collective: all ranks call it), so
 * that one rank's failure stops them all. */
int cli_mpi_worst(int rc);
/* Ranks on this node (they share its cores and memory). */
int cli_local_ranks(void);
/* Every rank checks the same input and rank 0 speaks: on the others, standard error goes
 * to /dev/null until cli_stderr_restore(the returned descriptor; -1 on rank 0). */
int cli_stderr_quiet(int rank);
void cli_stderr_restore(int saved);

/* Output destination: stdout, or a file written atomically (-o FILE). */
typedef struct {
    FILE *f;
    void *priv;
} cli_out;

int cli_out_open(cli_out *o, const char *path, ps_err *err);
int cli_out_close(cli_out *o, ps_err *err);

/* An output must not replace the input it is made from (`sweep S.yaml -o
 * S.yaml`): CLI_USAGE after printing why when out names the same file as in
 * (atomic_file_same_target), else CLI_OK. NULL or "-" (stdout) never clash. */
int cli_check_not_input(const char *cmd, const char *in, const char *out);

/* Parse a positive integer option value; prints the error itself. */
int cli_int_arg(const char *cmd, const char *opt, const char *value, long long min, long long max,
                long long *out);

/* Parse a size with units ("80 GiB", yget_parse_quantity's bytes) from min to max
 * bytes, range naming them in the message ("1 MiB to 1 PiB"); prints the error itself. */
int cli_size_arg(const char *cmd, const char *opt, const char *value, double min, double max,
                 const char *range, double *out);

/* Plan overrides from the command line: --set k=v (or --set=k=v), and the
 * shorthands --model M / --cluster C for --set model=M / --set cluster=C. */
#define CLI_MAX_OVERRIDES 64
typedef struct {
    plan_override ov[CLI_MAX_OVERRIDES];
    int n;
    char shorthand[2][PATH_MAX + 16]; /* "cluster=" and a path up to PATH_MAX */
} cli_overrides;

/* If argv[*i] is an override option, take it (and its value, advancing *i):
 * returns 1; 0 when it is some other argument; -1 after printing a usage
 * error. with_shorthand: accept --model/--cluster too. */
int cli_override_arg(const char *cmd, cli_overrides *o, int argc, char **argv, int *i,
                     int with_shorthand);

/* Print "parasim CMD: message" to stderr and return code. */
int cli_fail(const char *cmd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
