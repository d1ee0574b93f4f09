/* rt_watchdog.h — a per-rank thread that ends the job when one op (or a
 * step's closing reduction) runs past a time limit: a rank that stopped
 * (SIGSTOP, a debugger, a swapped-out host) or died without the others
 * noticing would otherwise leave every other rank waiting in a collective
 * forever (NCCL's watchdog does the same for its communicators).
 *
 * The executor marks what it is doing (begin/end, one word each: no lock);
 * the thread wakes every 50 ms and, past the limit, prints
 * "parasim run: rank N: <what> did not finish within T s -- ..." and exits
 * (status 1) after removing the registered temporary files; mpirun then ends
 * the job. */
#ifndef PS_RT_WATCHDOG_H
#define PS_RT_WATCHDOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct rt_watchdog rt_watchdog;

/* What `what` is, for the message (called on the watchdog's thread: it must
 * only read data that does not change during the run). */
typedef void (*rt_watchdog_describe)(const void *ctx, int32_t what, char *buf, size_t len);

/* timeout_s <= 0: no watchdog (NULL; the other calls accept NULL). NULL also
 * when the thread cannot start (then there is no limit). */
rt_watchdog *rt_watchdog_start(double timeout_s, int rank, rt_watchdog_describe describe,
                               const void *ctx);
void rt_watchdog_begin(rt_watchdog *w, int32_t what);
void rt_watchdog_end(rt_watchdog *w);
void rt_watchdog_stop(rt_watchdog *w);

#endif
