/* rt_watchdog.h — what a rank was doing when the job goes wrong around it.
 *
 * A per-rank thread ends the job when one op (or a step's closing
 * reduction) runs past a time limit: a rank that stopped (SIGSTOP, a
 * debugger, a swapped-out host) or died without the others noticing would
 * otherwise leave every other rank waiting in a collective forever (NCCL's
 * watchdog does the same for its communicators). And when mpirun ends the
 * ranks with SIGTERM (interrupted, or because some rank died), each rank
 * says which op it was in before it dies.
 *
 * The executor marks what it is doing (begin/end, one atomic word each: no
 * lock); the thread wakes every 50 ms and, past the limit, prints
 * "parasim run: rank N: <what> did not finish within T s -- ..." and exits
 * (status 1) after removing the registered temporary files; mpirun then ends
 * the job. */
#ifndef PS_RT_WATCHDOG_H
#define PS_RT_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>

/* Text built without stdio, for signal handlers: appends what fits, always
 * NUL-terminated (len > 0). */
typedef struct {
    char *buf;
    size_t len, n;
} rt_text;
void rt_text_str(rt_text *t, const char *s);
void rt_text_int(rt_text *t, long long v);

typedef struct rt_watchdog rt_watchdog;

/* What `what` is, for the messages. It runs on the watchdog's thread and in
 * signal handlers: async-signal-safe (rt_text only), reading only data that
 * does not change during the run. */
typedef void (*rt_watchdog_describe)(const void *ctx, int32_t what, rt_text *t);

/* timeout_s <= 0: no time limit (the SIGTERM report stays). One watchdog at
 * a time (static storage: a signal handler may read it until stop returns);
 * the other calls accept NULL. */
rt_watchdog *rt_watchdog_start(double timeout_s, int rank, rt_watchdog_describe describe,
                               const void *ctx);
void rt_watchdog_begin(rt_watchdog *w, int32_t what);
void rt_watchdog_end(rt_watchdog *w);
void rt_watchdog_stop(rt_watchdog *w);

#endif
