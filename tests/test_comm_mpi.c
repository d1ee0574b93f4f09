/* test_comm_mpi.c — the CPU backend's collectives, run under
 * `mpirun -np 3`: every rank checks its own result against values it
 * computes independently (sums of rank-dependent integers, exact in fp32
 * and in bf16 below 256). Covers uneven per-rank counts (a range straddling
 * shards, a rank with nothing), in-place gathers, bf16 sums, broadcast,
 * reduce and send/recv, and the world agreement on a failure.
 * Exit 0 on every rank when all pass; rank 0 prints one line per check. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_backend.h"
#include "rt_group.h"

static int failures, rank, size;

static void check(int ok, const char *what) {
    int all = 0, mine = ok ? 0 : 1;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf("%s %s\n", all ? "FAIL" : "ok  ", what);
    if (all) failures++;
}

static float val(int r, int i) { return (float)(r + 1) * 10.0f + (float)i; }

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const rt_backend *be = &rt_backend_cpu;
    rt_group g = {.comm = MPI_COMM_WORLD, .rank = rank, .size = size, .name = "world"};
    enum { N = 10 };
    float a[N], b[N];
    int ok;

    /* all-reduce: sum over ranks of (r+1)*10 + i */
    for (int i = 0; i < N; i++) a[i] = val(rank, i);
    ok = be->all_reduce(&g, a, N, RT_F32) == 0;
    for (int i = 0; i < N; i++) {
        float want = 0;
        for (int r = 0; r < size; r++) want += val(r, i);
        ok &= a[i] == want;
    }
    check(ok, "all-reduce fp32");

    /* bf16 all-reduce through the user-defined sum (small integers are exact) */
    uint16_t h[N];
    for (int i = 0; i < N; i++) a[i] = (float)(rank + i);
    be->to_bf16(h, a, N);
    ok = be->all_reduce(&g, h, N, RT_BF16) == 0;
    be->from_bf16(b, h, N);
    for (int i = 0; i < N; i++) ok &= b[i] == (float)(size * i + size * (size - 1) / 2);
    check(ok, "all-reduce bf16");

    /* reduce-scatter with uneven counts: rank r gets counts[r] consecutive
     * elements; the last rank gets none */
    int64_t counts[8] = {0}, displs[8] = {0}, total = 0;
    for (int r = 0; r < size; r++) {
        counts[r] = r == size - 1 ? 0 : 2 + r;
        displs[r] = total;
        total += counts[r];
    }
    float send[64], recv[64];
    for (int i = 0; i < total; i++) send[i] = val(rank, i);
    ok = be->reduce_scatter(&g, send, recv, counts, RT_F32) == 0;
    for (int k = 0; k < counts[rank]; k++) {
        float want = 0;
        for (int r = 0; r < size; r++) want += val(r, (int)displs[rank] + k);
        ok &= recv[k] == want;
    }
    check(ok, "reduce-scatter, uneven counts, one rank empty");

    /* all-gather: each rank's part lands at its displacement, out of place and in place */
    float mine[16], all[64];
    for (int k = 0; k < counts[rank]; k++) mine[k] = val(rank, k);
    memset(all, 0, sizeof all);
    ok = be->all_gather(&g, mine, all, counts, displs, RT_F32) == 0;
    for (int r = 0; r < size; r++)
        for (int k = 0; k < counts[r]; k++) ok &= all[displs[r] + k] == val(r, k);
    check(ok, "all-gather, uneven counts");
    memset(all, 0, sizeof all);
    for (int k = 0; k < counts[rank]; k++) all[displs[rank] + k] = val(rank, k);
    ok = be->all_gather(&g, NULL, all, counts, displs, RT_F32) == 0;
    for (int r = 0; r < size; r++)
        for (int k = 0; k < counts[r]; k++) ok &= all[displs[r] + k] == val(r, k);
    check(ok, "all-gather in place");

    /* all-to-all (expert parallelism): block j of rank r's send lands as block r of
     * rank j's receive */
    float blocks[64], got[64];
    for (int j = 0; j < size; j++)
        for (int k = 0; k < 3; k++) blocks[j * 3 + k] = val(rank, j * 10 + k);
    ok = be->all_to_all(&g, blocks, got, 3, RT_F32) == 0;
    for (int r = 0; r < size; r++)
        for (int k = 0; k < 3; k++) ok &= got[r * 3 + k] == val(r, rank * 10 + k);
    check(ok, "all-to-all");

    /* broadcast from the last rank, reduce to rank 1 */
    for (int i = 0; i < N; i++) a[i] = rank == size - 1 ? val(9, i) : -1.0f;
    ok = be->broadcast(&g, a, N, RT_F32, size - 1) == 0;
    for (int i = 0; i < N; i++) ok &= a[i] == val(9, i);
    check(ok, "broadcast");
    for (int i = 0; i < N; i++) a[i] = val(rank, i), b[i] = 0;
    ok = be->reduce(&g, a, b, N, RT_F32, 1) == 0;
    if (rank == 1)
        for (int i = 0; i < N; i++) {
            float want = 0;
            for (int r = 0; r < size; r++) want += val(r, i);
            ok &= b[i] == want;
        }
    check(ok, "reduce");

    /* send/recv around a ring */
    for (int i = 0; i < N; i++) a[i] = val(rank, i);
    const int next = (rank + 1) % size, prev = (rank + size - 1) % size;
    if (rank % 2 == 0) {
        ok = be->send(&g, a, N, RT_F32, next) == 0 && be->recv(&g, b, N, RT_F32, prev) == 0;
    } else {
        ok = be->recv(&g, b, N, RT_F32, prev) == 0 && be->send(&g, a, N, RT_F32, next) == 0;
    }
    for (int i = 0; i < N; i++) ok &= b[i] == val(prev, i);
    check(ok, "send/recv ring");

    /* agreement: rank 1 alone fails; every rank gets its message, with its rank */
    ps_err err = {{0}};
    if (rank == 1) snprintf(err.msg, sizeof err.msg, "disk full");
    ok = rt_world_agree(rank == 1 ? -1 : 0, &err) == -1 && !strcmp(err.msg, "rank 1: disk full");
    check(ok, "agreement names the failing rank");
    /* every rank fails with the same input: no rank prefix */
    snprintf(err.msg, sizeof err.msg, "bad plan");
    ok = rt_world_agree(-1, &err) == -1 && !strcmp(err.msg, "bad plan");
    check(ok, "agreement when all fail");
    ok = rt_world_agree(0, &err) == 0;
    check(ok, "agreement when none fail");

    MPI_Finalize();
    return failures ? 1 : 0;
}
