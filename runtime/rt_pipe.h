/* rt_pipe.h — pipeline parallelism in the runtime: which global units a
 * role holds, and the send/recv ops that carry activations and their
 * gradients between stages (docs/runtime.md "Pipeline parallelism").
 *
 * A role lists only its stage's units (program.h); their names keep the
 * global index ("embed" = 0, "layer.i" = i + 1, "head" = L + 1), which is how
 * the runtime's model (rt_model.h) numbers them. (The initial weights of a
 * local flat element are those of its global element: rt_tp_init_values.)
 *
 * The executor runs the ops in program order; it never schedules. A send
 * does not block (MPI_Isend): the stage goes on, and the block it sent is
 * released when the send is done (tested at each later send/recv, waited for
 * at the end of the step). A receive blocks until its message is there. With
 * sends that never wait, a stage blocks only on data it needs, so any op
 * order the schedule simulation can finish (pipe_sched.c) runs without
 * deadlock, however the ranks are scheduled on the cores.
 */
#ifndef PS_RT_PIPE_H
#define PS_RT_PIPE_H

#include <stdint.h>

#include "program/program.h"
#include "rt_backend.h"
#include "rt_mem.h"
#include "rt_model.h"

typedef struct {
    void *req;   /* the backend's handle */
    void *block; /* what it sends (tracked memory, freed when the send is done) */
} rt_pipe_pending;

typedef struct {
    int32_t n_units;
    int32_t *global; /* [n_units]: global unit of each local unit */
    bool has_embed, has_head;
    const rt_backend *be;
    rt_mem *mem;
    rt_group *group; /* the pipeline group: rank = stage */
    rt_pipe_pending *pend;
    int n_pend, cap_pend;
} rt_pipe;

/* The role's global units from their names; errors name the unit. */
int rt_pipe_init(rt_pipe *pp, const program *p, const prog_role *r, const rt_backend *be,
                 rt_mem *mem, rt_group *group, ps_err *err);
/* Release what init took (blocks of unfinished sends stay with rt_mem). */
void rt_pipe_free(rt_pipe *pp);

/* A send or recv op: micro-batch o->mb's activation (phase fwd: the model's
 * hidden stream) or its gradient (phase bwd: the fp32 gradient stream, sent
 * in the activation dtype) to or from stage o->peer. *bytes: the message
 * size. 0, or -1 with err set. */
int rt_pipe_op(rt_pipe *pp, rt_model *m, const prog_op *o, int64_t *bytes, ps_err *err);

/* Wait for this rank's unfinished sends (the end of a step). */
int rt_pipe_drain(rt_pipe *pp, ps_err *err);

#endif
