/* rt_exec.h — the executor: runs this rank's role of an execution plan for
 * real and measures it (docs/runtime.md).
 *
 * Ops run in program order. Allocations and frees go to the tracked
 * allocator with the op's category; forward and backward ops call the model;
 * collectives call the backend on the op's group and range of the flat
 * parameter space; the optimizer step runs AdamW on the op's range. After
 * each op the executor records the op's measured time, the bytes per
 * category now and the peak inside the op: one event per op, so the profile
 * lines up with the replay event by event.
 */
#ifndef PS_RT_EXEC_H
#define PS_RT_EXEC_H

#include <stdint.h>

#include "program/program.h"
#include "rt_backend.h"
#include "rt_ckpt.h"
#include "rt_group.h"
#include "rt_mem.h"

typedef struct {
    int32_t op;           /* index in the role's op list */
    double start, end;    /* seconds since the run began */
    int64_t current[MEM_COUNT]; /* after the op */
    int64_t peak[MEM_COUNT];    /* inside the op */
    int64_t peak_total;         /* all categories together, inside the op */
    int64_t coll_bytes;         /* collective: the size S handed to the backend */
} rt_event;

typedef struct {
    int64_t calls, bytes; /* bytes: the sizes S handed to the backend, summed */
    double seconds;
} rt_coll_stat;

typedef struct {
    int32_t steps;
    int64_t first_step;   /* steps done before this run (--resume): loss[s] is step
                           * first_step + s + 1 of the training */
    double *loss;         /* [steps] mean token loss over the global batch */
    double *step_seconds; /* [steps] slowest rank */
    double tokens_per_step;
    rt_event *events;     /* [n_events] this rank's */
    int32_t n_events;
    rt_coll_stat coll[GROUP_COUNT][COLL_ALL_TO_ALL + 1]; /* the ep all-to-all included */
    int64_t peak[MEM_COUNT], peak_total;
    int64_t end_of_step0[MEM_COUNT]; /* bytes per category after step 0's last op */
} rt_result;

typedef struct {
    /* called on every rank after each step (rank 0 prints); step counts from 0
     * at the first step of the training, the resumed steps included */
    void (*on_step)(void *ctx, int step, double loss, double seconds, const rt_mem *mem);
    void *ctx;
    int64_t memory_limit_bytes; /* 0: none (fault tests set one) */
    int64_t data_limit_bytes;   /* the most a text corpus may hold; 0: RT_DATA_LIMIT_BYTES */
    double timeout_s;           /* one op's time limit (rt_watchdog.h); 0: none */
    /* write the trained weights here after the last step (rt_ckpt_gather.h;
     * dense models); NULL: none */
    const char *save_weights_path;
    /* --save: write the training state (weights, AdamW m and v) here after the
     * last step and, with save_every K > 0, after every step whose number
     * (counted from the training's first) is a multiple of K; NULL: none */
    const char *save_path;
    int64_t save_every;
    /* --resume: a checked training state (rt_ckpt_check_resume) whose weights
     * and moments the buffers start from; the run's steps continue from its
     * m.steps (Adam's step count, the data position); NULL: a fresh start */
    const rt_ckpt *resume;
    /* distillation (program.distill.on): the teacher's checkpoint, read and checked
     * against the header's shape by the caller before any collective; the run builds
     * the inference engine from it at the teacher's alloc and frees it (rt_ckpt_free) */
    rt_ckpt *teacher;
} rt_options;

/* 0: done. 1: every rank stops with the same message: set-up failed on some
 * rank (a missing corpus, say), the checkpoint could not be assembled or
 * written, or training diverged (a loss or gradient norm
 * that is not finite: the first such op, with its rank). -1: this rank
 * failed during a step; the others may be waiting for it in a collective
 * (the caller aborts). */
int rt_exec_run(const program *p, const rt_backend *be, rt_groups *g, const rt_options *opt,
                rt_result *out, ps_err *err);
void rt_result_free(rt_result *r);

#endif
