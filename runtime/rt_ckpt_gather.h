/* rt_ckpt_gather.h — `parasim run --save-weights` and `--save`: after the last
 * step (or every K-th) every rank hands over the fp32 weights it updated (its
 * master weights, or its fp32 parameters when the plan keeps no master copy),
 * with `--save` also its AdamW m and v (laid out and sharded as the master
 * weights), mapped to the one-rank
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

/* One rank's records: (one-rank flat index, `arrays` values), host memory. */
typedef struct {
    int arrays; /* 1: the weights (--save-weights); 3: weights, adam_m, adam_v (--save) */
    int64_t n, cap;
    int64_t *index;
    float *value; /* [n][arrays] */
    int failed;   /* out of host memory while collecting */
} rt_ckpt_parts;

/* Record role elements [lo, lo + n) of role r (weights w; with 3 arrays also
 * AdamW's m and v, else NULL) under their one-rank index; vocabulary padding
 * is left out. */
void rt_ckpt_parts_add(rt_ckpt_parts *c, const program *p, const prog_role *r, int ep_rank,
                       int64_t lo, int64_t n, const float *w, const float *m, const float *v);
/* Forget the records (after a write; the buffers stay for the next save). */
void rt_ckpt_parts_clear(rt_ckpt_parts *c);
void rt_ckpt_parts_free(rt_ckpt_parts *c);

/* The checkpoint header of program p's model (name, shape, norm_eps,
 * rope_theta, seq as seq_len, steps = p->steps). */
void rt_ckpt_model_of(const program *p, rt_ckpt_model *m);
/* The training settings of program p a resumed run must share (rt_ckpt_train). */
void rt_ckpt_train_of(const program *p, rt_ckpt_train *t);

/* --resume: the steps a run of total_steps steps (train.steps: the whole
 * training's) has left after checkpoint ck, or -1 with err when ck cannot be
 * resumed (a weights-only file; total_steps steps or more already done). */
int64_t rt_ckpt_resume_steps(const rt_ckpt *ck, int64_t total_steps, const char *path,
                             ps_err *err);
/* --resume: 0 when program p continues ck's training (the model's shape, seed,
 * global_batch, seq, the optimizer's settings, precision); else -1 with err
 * naming the first field that differs, the file's value and the plan's. */
int rt_ckpt_check_resume(const rt_ckpt *ck, const program *p, const char *path, ps_err *err);
/* Distillation: 0 when ck holds the teacher of p's header (p->distill: layers, hidden,
 * heads, kv_heads, head_dim, ffn_hidden, vocab, norm_eps, rope_theta); else -1 with err
 * naming the first field that differs, the file's value and the plan's. */
int rt_ckpt_check_teacher(const rt_ckpt *ck, const program *p, ps_err *err);

/* Every rank of the world calls it: the records go to world rank 0, which
 * writes the training state to state_path (3 arrays; NULL: none) and the
 * weights alone to weights_path (NULL: none), with steps_done in the header.
 * 0 on every rank; 1 on every rank with the same message (a missing or
 * conflicting element, a write that failed); -1 when this rank's send or
 * receive failed (the others may wait for it: the caller aborts). */
int rt_ckpt_gather_write(const rt_ckpt_parts *c, const program *p, int64_t steps_done,
                         const rt_backend *be, rt_group *world, const char *state_path,
                         const char *weights_path, ps_err *err);

#endif
