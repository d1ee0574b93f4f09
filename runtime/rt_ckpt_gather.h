/* rt_ckpt_gather.h — `parasim run --save-weights`: after the last step every
 * rank hands over the fp32 weights it updated (its master weights, or its fp32
 * parameters when the plan keeps no master copy), mapped to the one-rank
 * model's flat layout (rt_tp_full_index: the places rt_tp_dump's "params"
 * records name); world rank 0 gathers them, checks that every element arrived
 * exactly once or as identical copies (tp-replicated norms, data-parallel
 * replicas), and writes the checkpoint (rt_ckpt.h, docs/runtime.md
 * "Checkpoints"). Dense models only.
 */
#ifndef PS_RT_CKPT_GATHER_H
#define PS_RT_CKPT_GATHER_H

#include <stdint.h>

#include "program/program.h"
#include "rt_backend.h"
#include "rt_ckpt.h"

/* One rank's records: (one-rank flat index, value), host memory. */
typedef struct {
    int64_t n, cap;
    int64_t *index;
    float *value;
    int failed; /* out of host memory while collecting */
} rt_ckpt_parts;

/* Record role elements [lo, lo + n) of role r (values v) under their one-rank
 * index; vocabulary padding is left out. */
void rt_ckpt_parts_add(rt_ckpt_parts *c, const program *p, const prog_role *r, int ep_rank,
                       int64_t lo, const float *v, int64_t n);
void rt_ckpt_parts_free(rt_ckpt_parts *c);

/* The checkpoint header of program p's model (name, shape, norm_eps,
 * rope_theta, seq as seq_len, steps). */
void rt_ckpt_model_of(const program *p, rt_ckpt_model *m);

/* Every rank of the world calls it: the records go to world rank 0, which
 * writes path. 0 on every rank; 1 on every rank with the same message (a
 * missing or conflicting element, a write that failed); -1 when this rank's
 * send or receive failed (the others may wait for it: the caller aborts). */
int rt_ckpt_gather_write(const rt_ckpt_parts *c, const program *p, const rt_backend *be,
                         rt_group *world, const char *path, ps_err *err);

#endif
