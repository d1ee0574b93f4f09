/* replay.h — walk an execution plan without running it: the predicted memory
 * timeline, the exact communication bytes and an event-driven time
 * (docs/plan-format.md §5).
 *
 * Memory: the live bytes per category after every op, and the peak of each
 * category with the op where it first happens. Inside a fwd/bwd op the
 * op's transient_bytes (activations) and workspace_bytes (workspace) are live
 * on top of what is kept (inside a collective or the optimizer, its
 * workspace_bytes); a fwd's saved bytes count from the op on, a bwd's
 * freed bytes until the op ends.
 *
 * Communication: per (group, collective, phase) the calls, the sizes S and
 * the bytes this rank sends, summed from the ops (no formula of its own).
 *
 * Time: each rank has a compute stream and a communication stream. Compute
 * ops run in program order on the compute stream (alloc/free take no time);
 * a collective starts on the communication stream once the op before it has
 * finished and the stream is free, and the first later compute op that
 * touches one of its buffers (the same unit buffer, or an intersecting range
 * of a flat buffer; the optimizer and zero_grad touch all) waits for it to
 * end. With overlap_dp false every collective blocks the compute stream
 * instead. Op durations are the program's predicted seconds, so the replay
 * needs no cluster: emit again to replay on another one. Every data-parallel
 * rank of a role runs the same ops on equal-sized collectives, so one
 * timeline per role stands for all of them. Pipeline sends and receives
 * (group pp) pair up between the roles, which are replayed in lockstep: a
 * receive holds its stage's compute until the matching send (the peer's next
 * one to it in the same phase) has arrived; a send does not hold its stage.
 * With overlap_pp false the receiver does the transfer: the message is there
 * from the send's start and the receive holds the compute stream for its
 * seconds after that (the CPU runtime's MPI receive copies it).
 * The replay is thereby the pipeline's event simulation, bubble included
 * (docs/plan-format.md §5); unpaired or deadlocked sends/receives are errors.
 *
 * The replay checks the program as it walks: an alloc of a live buffer, a
 * free of a dead one or with other bytes than its alloc, a bwd without its
 * fwd are errors naming the op.
 */
#ifndef PS_REPLAY_H
#define PS_REPLAY_H

#include <stdint.h>

#include "base/err.h"
#include "program/program.h"

typedef struct {
    double start_s, end_s;     /* on its stream, from the start of the program */
    int64_t bytes[MEM_COUNT];  /* live after the op */
    int64_t peak_total;        /* all categories together, inside the op */
} replay_op;

typedef struct {
    int64_t bytes; /* the most live at once */
    int32_t op;    /* the first op where it happens; -1 if the category stays empty */
} replay_peak;

typedef struct {
    comm_group group;
    comm_coll coll;
    comm_phase phase;
    int64_t calls;      /* over the whole program */
    int64_t bytes;      /* sum of the calls' sizes S */
    int64_t sent_bytes; /* sum of what this rank sends */
    double seconds;     /* sum of the calls' durations */
} replay_coll;

#define REPLAY_MAX_COLLS 32

typedef struct {
    double end_s;      /* when the step's last op ends */
    double seconds;    /* end_s minus the previous step's end_s */
    double compute_s;  /* compute-op seconds in the step */
    double comm_s;     /* collective seconds in the step */
    int64_t sent_bytes[GROUP_COUNT];
    int64_t end_bytes[MEM_COUNT]; /* live after the step's last op */
} replay_step;

typedef struct {
    int32_t n_ops;
    replay_op *ops;         /* one per op of the role */
    replay_peak peak[MEM_COUNT];
    replay_peak peak_total; /* all categories together */
    int32_t n_steps;
    replay_step *steps;     /* program steps */
    int n_colls;
    replay_coll colls[REPLAY_MAX_COLLS]; /* in order of first appearance */
    double end_s;           /* end of the role's last op */
    double compute_s, comm_s;
} replay_role;

typedef struct {
    int32_t n_roles;
    replay_role *roles; /* as program.roles */
    double end_s;       /* the last role to finish */
} replay_result;

/* Replay every role of p. Returns 0, or -1 with err naming the first
 * inconsistent op (out is then freed). */
int replay_program(const program *p, replay_result *out, ps_err *err);
void replay_free(replay_result *r);

#endif
