/* rt_watchdog.c — the op time limit (see rt_watchdog.h). */
#include "rt_watchdog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"

struct rt_watchdog {
    pthread_t thread;
    double timeout_s;
    int rank;
    rt_watchdog_describe describe;
    const void *ctx;
    _Atomic int64_t since_ns; /* when the current op began; 0: between ops */
    _Atomic int32_t what;
    _Atomic int stop;
};

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void *watch(void *arg) {
    rt_watchdog *w = arg;
    const struct timespec tick = {0, 50 * 1000 * 1000};
    const int64_t limit_ns = (int64_t)(w->timeout_s * 1e9);
    int64_t last = now_ns();
    while (!atomic_load(&w->stop)) {
        nanosleep(&tick, NULL);
        const int64_t since = atomic_load(&w->since_ns), now = now_ns();
        /* a gap between two ticks past the limit: this process itself was stopped (SIGSTOP,
         * a debugger) and has just been continued; say so rather than blame the others */
        const int64_t gap = now - last;
        last = now;
        if (!since || now - since < limit_ns) continue;
        char what[512];
        w->describe(w->ctx, atomic_load(&w->what), what, sizeof what);
        if (gap >= limit_ns)
            fprintf(stderr, "parasim run: rank %d: this rank was suspended for %.1f s (SIGSTOP, a "
                            "debugger?) in %s, past the limit of %g s (run --timeout)\n",
                    w->rank, (double)gap * 1e-9, what, w->timeout_s);
        else
            fprintf(stderr, "parasim run: rank %d: %s did not finish within %g s -- a rank "
                            "stopped, died or is far slower (the limit is run --timeout)\n",
                    w->rank, what, w->timeout_s);
        fflush(stderr);
        atomic_file_remove_temporaries();
        /* not MPI_Abort: MPI is not ours to call from this thread (MPI_THREAD_FUNNELED), and
         * the main thread may hold MPI's locks while it waits. A rank that exits without
         * MPI_Finalize makes mpirun end the job (SIGKILL reaches a stopped rank too). */
        _exit(1);
    }
    return NULL;
}

rt_watchdog *rt_watchdog_start(double timeout_s, int rank, rt_watchdog_describe describe,
                               const void *ctx) {
    if (!(timeout_s > 0)) return NULL;
    rt_watchdog *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->timeout_s = timeout_s, w->rank = rank, w->describe = describe, w->ctx = ctx;
    if (pthread_create(&w->thread, NULL, watch, w)) {
        free(w);
        return NULL;
    }
    return w;
}

void rt_watchdog_begin(rt_watchdog *w, int32_t what) {
    if (!w) return;
    atomic_store(&w->what, what);
    atomic_store(&w->since_ns, now_ns());
}

void rt_watchdog_end(rt_watchdog *w) {
    if (w) atomic_store(&w->since_ns, 0);
}

void rt_watchdog_stop(rt_watchdog *w) {
    if (!w) return;
    atomic_store(&w->stop, 1);
    pthread_join(w->thread, NULL);
    free(w);
}
