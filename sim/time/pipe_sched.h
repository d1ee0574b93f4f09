/* pipe_sched.h — pipeline schedules as explicit per-stage op sequences, simulated
 * event by event (docs/schedule.md).
 *
 * Each stage runs a fixed list of ops — forward (F), backward (B) and, for the
 * zero-bubble schedule, the weight-gradient half of the backward (W) — one at a
 * time, in list order. An op starts when its stage is free and its inputs have
 * arrived: F(mb, g) needs F(mb, g-1), B(mb, g) needs F(mb, g) and B(mb, g+1),
 * W(mb, g) needs B(mb, g), where g = chunk * p + stage is the virtual stage and
 * a dependency between different stages costs t_p2p more (and, with t_recv,
 * holds the receiving stage t_recv before the op). The orders are
 * those of GPipe (AFAB), Megatron-LM's 1F1B and interleaved 1F1B, and ZB-H1
 * (Qi et al. 2023), and DeepSeek's DualPipe (dualpipe.py: v = 2 chunks per
 * stage, chunk 0 of the pipeline fed from stage 0, chunk 1 of the one fed
 * from stage p-1, each B followed by its W or holding it back for later);
 * with uniform times the simulated bubble equals the
 * closed forms of sched_bubble_closed_form (tests/test_sched.c), which is why
 * the closed forms can be used in sweeps and this module for checks, Gantt
 * charts and uneven stages.
 */
#ifndef PS_SCHED_H
#define PS_SCHED_H

#include <stdint.h>
#include <stdio.h>

#include "spec/plan.h"

typedef enum { SCHED_OP_F, SCHED_OP_B, SCHED_OP_W } sched_op_kind; /* W: zero-bubble, DualPipe */
/* DualPipe's op flags. PAIRED, on an F: it and the B after it are one F&B
 * (dualpipe.py _forward_backward_chunk), which starts once both have their
 * inputs and runs them back to back. WHOLE, on a B and the W right after it:
 * a backward without enable_zb, which computes the weight gradient before it
 * sends the input gradient on (its B's output leaves when its W ends). */
enum { SCHED_OP_PAIRED = 1, SCHED_OP_WHOLE = 2 };

typedef struct {
    uint8_t kind;      /* sched_op_kind */
    uint8_t flags;     /* SCHED_OP_PAIRED, SCHED_OP_WHOLE (DualPipe); 0 elsewhere */
    int16_t chunk;     /* model chunk on this stage, 0..v-1 */
    int32_t mb;        /* micro-batch */
    double start, end; /* filled by sched_simulate */
} sched_op;

typedef struct {
    plan_schedule kind;
    /* stages, micro-batches, chunks per stage (v = 1 unless interleaved; DualPipe: v = 2,
     * m even and >= 2p, chunk 0 running micro-batches 0..m/2-1 and chunk 1 m/2..m-1) */
    int64_t p, m, v;
    /* Per stage, time of one chunk-micro-batch: forward, backward input-grad, backward
     * weight-grad. Outside zero-bubble one B op takes t_b + t_w. t_w may be NULL (zeros). */
    const double *t_f, *t_b, *t_w;
    double t_p2p; /* one activation or gradient send between stages: its latency */
    /* Interleaved layouts whose chunks differ (cost/pipe.h, step_time.h chunk): per stage,
     * chunk 0's and chunk v-1's forward, backward and weight-gradient times, [3 s + 0..2];
     * the other chunks take t_f, t_b, t_w. NULL (both): every chunk does. */
    const double *t_first, *t_last;
    /* Transfers not hidden (plan overlap.pp false): an op whose input comes from another
     * stage first spends t_recv receiving it on its own stage, once it has been sent (the
     * replay's receive; the CPU runtime's MPI receive copies the message). 0: none. */
    double t_recv;
} sched_in;

typedef struct {
    double step_time;       /* finish of the last op; every stage starts at 0 */
    double busy_max;        /* busiest stage's compute time */
    double bubble_fraction; /* (step_time - busy_max) / busy_max */
    /* Chunk-micro-batches whose F is done and whose B is not: the activation sets a stage
     * holds at its peak, the count pipe_stage_inflight gives. */
    int64_t peak_inflight[PLAN_MAX_STAGES];
    /* The same, counting a set as live until its W is done (zero-bubble keeps what the weight
     * gradient needs — layer inputs, output gradients — past B; Qi et al. 2023 Table 1). Equal
     * to peak_inflight for the other schedules. */
    int64_t peak_until_w[PLAN_MAX_STAGES];
} sched_out;

/* Ops stage s runs: m*v*2, or m*3 for zero-bubble and DualPipe; -1 if in is invalid. */
int64_t sched_ops_per_stage(const sched_in *in);

/* Stage s's op order (sched_ops_per_stage(in) ops into o; start/end zero): the
 * one definition of each schedule, which sched_simulate times and the
 * execution plan's emitter lowers to ops (program_emit.c). The times in `in`
 * are not read and may be NULL. Returns 0, or -1 for invalid p, m, v, kind or
 * s (the conditions of sched_simulate). */
int sched_stage_order(const sched_in *in, int64_t s, sched_op *o);

/* The most ops (all stages) sched_simulate takes: 2^22, about 100 MiB of ops
 * and 100 MiB of event times, a second or so of simulation. Larger schedules
 * are refused before anything is allocated (the closed forms cover them). */
#define SCHED_MAX_OPS (1LL << 22)

/* Ops of a schedule with p stages, m micro-batches and v chunks (p*m*v*2, or
 * p*m*3 for zero-bubble and DualPipe), saturating at INT64_MAX; for limits and notes. */
int64_t sched_ops_total(plan_schedule kind, int64_t p, int64_t m, int64_t v);

/* Build each stage's op order into ops[s*n + i] (n = sched_ops_per_stage) and simulate it,
 * filling start/end and *out. ops may be NULL (a scratch buffer is used). Returns 0, or -1
 * for invalid input: p outside 1..PLAN_MAX_STAGES, m or v < 1, v != 1 outside the
 * interleaved schedule, interleaved with m % p != 0, a NULL or negative or non-finite time,
 * more than SCHED_MAX_OPS ops, or no memory. */
int sched_simulate(const sched_in *in, sched_op *ops, sched_out *out);

/* Bubble fraction (idle / busy) for uniform times and t_p2p = 0: AFAB and 1F1B (p-1)/m;
 * DualPipe the README's (p/2-1)(F&B + B - 3W) / (m (t_f+t_b+t_w)) with B = t_b + t_w and
 * F&B = t_f + B (not below 0; equal to the simulation when t_f = t_b, docs/schedule.md);
 * interleaved (p-1)/(v m); ZB-H1 ((p-1)(t_f+t_b) - (min(m,p)-1) min(t_w,t_f,t_b)) /
 * (m (t_f+t_b+t_w)), which is the paper's (p-1)(t_f+t_b-t_w)/(m(t_f+t_b+t_w)) when m >= p and
 * t_w <= min(t_f, t_b). NAN for p, m or v < 1 or zero total time. */
double sched_bubble_closed_form(plan_schedule kind, int64_t p, int64_t m, int64_t v, double t_f,
                                double t_b, double t_w);

/* Write the ops as a whitespace table, "stage kind chunk mb start end" per line after '#'
 * header lines (gnuplot skips them). Returns 0, or -1 on invalid input or a write error. */
int sched_write_gantt(FILE *f, const sched_in *in, const sched_op *ops);

#endif
