/* cli_mpi.c — the MPI frame of the commands that run on ranks (run, generate, calibrate, validate). */
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "rt_host_cache.h"

int cli_mpi_main(const char *cmd, const char *launch, int argc, char **argv,
                 int (*body)(int argc, char **argv, int rank, int world)) {
    int provided = 0, rank = 0, world = 1;
    rt_host_keep_heap();
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "parasim %s: MPI could not start (%s)\n", cmd, launch);
        return CLI_FAIL;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    /* all ranks agree on the exit code */
    const int worst = cli_mpi_worst(body(argc, argv, rank, world));
    MPI_Finalize();
    return worst;
}

int cli_mpi_worst(int rc) {
    int worst = rc;
    MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

int cli_local_ranks(void) {
    MPI_Comm local;
    int n = 1;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &n);
    MPI_Comm_free(&local);
    return n;
}

int cli_stderr_quiet(int rank) {
    if (rank == 0) return -1;
    fflush(stderr);
    const int saved = dup(2);
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2), close(null);
    return saved;
}

void cli_stderr_restore(int saved) {
    if (saved < 0) return;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}
