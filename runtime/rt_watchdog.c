/* rt_watchdog.c — the op time limit and the SIGTERM report (see rt_watchdog.h). */
#include "rt_watchdog.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/atomic_file.h"

struct rt_watchdog {
    pthread_t thread;
    int has_thread;
    double timeout_s;
    int rank;
    rt_watchdog_describe describe;
    const void *ctx;
    _Atomic int64_t since_ns; /* when the current op began; 0: between ops */
    _Atomic int32_t what;
    _Atomic int stop;
};

/* ---- text without stdio --------------------------------------------------------- */

void rt_text_str(rt_text *t, const char *s) {
    while (*s && t->n + 1 < t->len) t->buf[t->n++] = *s++;
    t->buf[t->n] = 0;
}

void rt_text_int(rt_text *t, long long v) {
    char d[24];
    int k = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do d[k++] = (char)('0' + u % 10); while ((u /= 10) && k < 23);
    if (v < 0) d[k++] = '-';
    char r[25];
    for (int i = 0; i < k; i++) r[i] = d[k - 1 - i];
    r[k] = 0;
    rt_text_str(t, r);
}

/* ---- the time limit ------------------------------------------------------------- */

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
        rt_text t = {what, sizeof what, 0};
        w->describe(w->ctx, atomic_load(&w->what), &t);
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

/* ---- the SIGTERM report ----------------------------------------------------------- */

/* One watchdog at a time, never freed: a handler on another thread may still
 * read it while rt_watchdog_stop runs; stop waits for handlers that entered. */
static rt_watchdog the_watchdog;
static rt_watchdog *_Atomic current;
static atomic_int handlers_in;
static struct sigaction old_term, old_int;

/* mpirun ends the ranks with SIGTERM when it is interrupted (Ctrl-C on a hung
 * job) and when one rank dies or aborts: say which op this rank was in, then
 * let the signal act as before. (In the second case Open MPI 4.1 stops
 * forwarding the ranks' output first, so the line is often lost.) */
static void on_term(int sig) {
    atomic_fetch_add(&handlers_in, 1); /* before reading current: see rt_watchdog_stop */
    rt_watchdog *w = atomic_load(&current);
    if (w) {
        char buf[768];
        rt_text t = {buf, sizeof buf, 0};
        rt_text_str(&t, "parasim run: rank ");
        rt_text_int(&t, w->rank);
        rt_text_str(&t, sig == SIGTERM ? ": ended by SIGTERM" : ": ended by SIGINT");
        if (atomic_load(&w->since_ns)) {
            rt_text_str(&t, " in ");
            w->describe(w->ctx, atomic_load(&w->what), &t);
        }
        rt_text_str(&t, " (mpirun ends the ranks so when it is interrupted, or when a rank "
                        "died or aborted: its own message names that rank)\n");
        ssize_t k = write(2, buf, t.n);
        (void)k;
    }
    atomic_fetch_sub(&handlers_in, 1); /* done with w */
    atomic_file_remove_temporaries();
    sigaction(sig, sig == SIGTERM ? &old_term : &old_int, NULL);
    raise(sig); /* delivered when this handler returns */
}

static void catch_signal(int sig, struct sigaction *old) {
    struct sigaction sa;
    if (sigaction(sig, NULL, old) || old->sa_handler == SIG_IGN) return;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaction(sig, &sa, NULL);
}

/* ---- start and stop ----------------------------------------------------------------- */

rt_watchdog *rt_watchdog_start(double timeout_s, int rank, rt_watchdog_describe describe,
                               const void *ctx) {
    rt_watchdog *w = &the_watchdog;
    memset(w, 0, sizeof *w);
    w->timeout_s = timeout_s, w->rank = rank, w->describe = describe, w->ctx = ctx;
    if (timeout_s > 0) w->has_thread = pthread_create(&w->thread, NULL, watch, w) == 0;
    atomic_store(&current, w);
    catch_signal(SIGTERM, &old_term);
    catch_signal(SIGINT, &old_int);
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
    /* the previous actions back first, so that no handler sees a freed watchdog */
    struct sigaction now;
    if (sigaction(SIGTERM, NULL, &now) == 0 && now.sa_handler == on_term)
        sigaction(SIGTERM, &old_term, NULL);
    if (sigaction(SIGINT, NULL, &now) == 0 && now.sa_handler == on_term)
        sigaction(SIGINT, &old_int, NULL);
    atomic_store(&current, NULL);
    /* a handler that entered before current was cleared may still be describing
     * an op with the caller's data: wait for it rather than free that data */
    while (atomic_load(&handlers_in) > 0) sched_yield();
    atomic_store(&w->stop, 1);
    if (w->has_thread) pthread_join(w->thread, NULL);
}
