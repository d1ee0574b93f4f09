/* emit_pipe.h — what a pipeline stage holds and runs, for the emitter
 * (program_emit.c; docs/plan-format.md §3 "Pipeline parallelism").
 *
 * Global units are numbered 0 = embedding, 1..L = layers, L+1 = head. Virtual
 * stage g = chunk * pp + stage holds a contiguous run of layers, pipe.c's
 * split (pipe_chunk_layers: even, the plan's pipeline.layers, or Megatron's
 * uneven options, with or without interleaving); the embedding goes with
 * virtual stage 0 and the head with the last, even where they hold no layer.
 * A stage's units are its chunks' units in chunk order, so its local unit
 * order is the global one.
 * The op order of a step is pipe_sched.c's (sched_stage_order): the one
 * definition of each schedule.
 */
#ifndef PS_EMIT_PIPE_H
#define PS_EMIT_PIPE_H

#include <stdint.h>

#include "base/err.h"
#include "spec/plan.h"
#include "time/pipe_sched.h"

typedef struct {
    int64_t p, v, m; /* stages, chunks per stage, micro-batches per step */
    int64_t stage;
    int32_t n_units;   /* units this stage holds */
    int32_t *global;   /* [n_units]: the global unit of each local one */
    int32_t *chunk_lo; /* [v + 1]: chunk c holds local units [chunk_lo[c], chunk_lo[c+1]) */
    int32_t n_layers;  /* of them, layers (zero-bubble splits their backwards) */
    bool zero_bubble;  /* ops hold W (weight-gradient) entries after the B's */
    int64_t n_ops;     /* schedule ops of one step */
    sched_op *ops;     /* [n_ops]: F and B (chunk, micro-batch) in run order */
} emit_pipe;

/* Lay out stage `stage` of a checked plan (pp = 1: one stage, gradient
 * accumulation F0 B0 F1 B1 ...). Returns 0, or -1 with err set: zero-bubble
 * with full recompute or with ZeRO-2/3 over several ranks (a layer's weight
 * gradient would outlive its rebuilt tensors / its unit-gradient buffer), a
 * stage without units, or no memory. */
int emit_pipe_init(const plan_spec *s, int64_t stage, emit_pipe *out, ps_err *err);
void emit_pipe_free(emit_pipe *e);

/* Virtual stage of chunk c, and whether it is the first / last of the pipeline. */
int64_t emit_pipe_virtual(const emit_pipe *e, int64_t chunk);

/* Sends and receives of one step (activations in, out; their gradients out, in). */
int64_t emit_pipe_p2p_per_step(const emit_pipe *e);

#endif
